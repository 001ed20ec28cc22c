"""Grade-deciding checks that never trust the student's kernel (DESIGN.md section 5).

- A **function question** is decided by calling the student's function on inputs drawn at grading time, in a
  sandboxed process that runs the answer cell alone (with the notebook's imports), and comparing what it
  returned, what it did to its inputs and, for losses, its gradient with the package's reference, computed here.
- A **result question** is decided by evaluating the model the notebook handed over (``submit_model``) on the
  real test set, in the grader's own process, with the bars below. The notebooks' result checks call
  :func:`result_conditions` too, so students see exactly the conditions the grader applies.
"""

from __future__ import annotations

import ast
import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

import torch
from torch import nn

from .. import mia, zoo
from ..compare import Yardstick, capstone_specs, capstone_yardstick, pareto_front, tug_of_war
from ..config import Profile, resolve
from ..data import TensorData, load_dataset, load_mnist, relabel
from ..methods import amnesiac as amnesiac_method
from ..methods import anamnesis, deepinversion, distill, gkt, noise, penalty, saliency
from ..methods import pruning as pruning_method
from ..methods import relabel as relabel_method
from ..methods.ledger import ledger_run, notebook_setups
from ..metrics import UnlearningReport, largest_class_drop, unlearning_report
from ..models import build_model
from .probe import model_arg, observe_call

Conditions = list[tuple[str, bool]]
FIRST_CODE_CELL_WITH_IMPORTS = "setup"


@dataclass(frozen=True)
class FunctionQuestion:
    """A question answered by a function: its name, fresh cases, the package's reference and tolerances."""

    function: str  # the name the answer cell defines
    cases: Callable[[torch.Generator], list[dict]]  # inputs drawn at grading time (see probe.observe_call)
    reference: Callable  # the package's implementation, same signature as the student's function
    rtol: float = 1e-5
    atol: float = 1e-6
    unordered_result: bool = False  # the result is a list whose order does not matter


@dataclass(frozen=True)
class ResultQuestion:
    """A question answered by a trained model: the architecture and the conditions it must meet."""

    model: str  # the architecture of the submitted state_dict
    conditions: Callable[[nn.Module, Profile, torch.device | str], Conditions]
    needs: tuple[tuple[int, ...], ...] = field(default=((),))  # zoo models (excluded classes) the exercise loads
    zoo_specs: Callable[[Profile], list[zoo.TrainSpec]] | None = None  # other zoo models it loads, per profile


# ----------------------------------------------------------------------------------------------------------
# Fresh inputs for the function questions


def _randn(gen: torch.Generator, *shape: int, scale: float = 1.0, dtype=torch.float32) -> torch.Tensor:
    return scale * torch.randn(*shape, generator=gen, dtype=dtype)


def _pick(gen: torch.Generator, n: int, k: int = 1) -> list[int]:
    return torch.randperm(n, generator=gen)[:k].tolist()


def _relabel_cases(gen: torch.Generator) -> list[dict]:
    y = torch.randint(0, 10, (64,), generator=gen)
    a, b, c = _pick(gen, 10, 3)
    return [{"args": [y, {a: b}]}, {"args": [y, {a: b, b: a}]}, {"args": [y, {a: b, c: a}]}]


def _freeze_cases(gen: torch.Generator) -> list[dict]:
    seed = int(torch.randint(0, 10_000, (1,), generator=gen))
    return [{"args": [model_arg("cnn_bn", seed)]}, {"args": [model_arg("cnn", seed)]}]


def _saliency_cases(gen: torch.Generator) -> list[dict]:
    shapes = [(4, 3, 3), (7,), (5, 6)]
    total = sum(torch.Size(s).numel() for s in shapes)
    values = torch.randperm(total, generator=gen).float() / total  # distinct scores: no ties at the cut
    scores, start = {}, 0
    for i, shape in enumerate(shapes):
        n = torch.Size(shape).numel()
        scores[f"layer{i}.weight"] = values[start : start + n].view(shape)
        start += n
    return [{"args": [scores, fraction]} for fraction in (0.1, 0.25, 0.6)]


def _penalty_cases(gen: torch.Generator) -> list[dict]:
    c1, c2 = _pick(gen, 10, 2)
    huge = torch.zeros(3, 10)
    huge[:, c2] = 60.0  # p = 1 - 5e-26: 1 - p is 0 in float32, the stable form stays finite
    return [
        {"args": [_randn(gen, 12, 10, scale=3.0, dtype=torch.float64), c1], "grad": [0]},
        {"args": [_randn(gen, 5, 10, scale=20.0), c2]},
        {"args": [huge, c2]},
    ]


def _distillation_cases(gen: torch.Generator) -> list[dict]:
    s, t = _randn(gen, 9, 10, scale=4.0, dtype=torch.float64), _randn(gen, 9, 10, scale=4.0, dtype=torch.float64)
    T = float(torch.randint(2, 6, (1,), generator=gen))
    return [{"args": [s, t, T], "grad": [0, 1]}, {"args": [t, t.clone(), 1.0]}]


def _teacher_targets_cases(gen: torch.Generator) -> list[dict]:
    forget, to = _pick(gen, 10, 2)
    return [{"args": [_randn(gen, 7, 10, scale=3.0), T, forget, to]} for T in (1.0, 2.5)]


def _error_max_cases(gen: torch.Generator) -> list[dict]:
    y = torch.randint(0, 10, (5,), generator=gen)
    return [{"args": [_randn(gen, 5, 10), y, _randn(gen, 5, 1, 28, 28), reg]} for reg in (0.0, 0.37)]


def _gate_cases(gen: torch.Generator) -> list[dict]:
    probs = torch.softmax(_randn(gen, 40, 10, scale=4.0), dim=1)
    f1, f2 = _pick(gen, 10, 2)
    return [
        {"args": [probs, [f1], 0.01]},
        {"args": [probs, [f1, f2], 0.05]},
        {"args": [probs, [f1], 0.2], "kwargs": {"max_entropy": 0.5}},
    ]


def _attention_cases(gen: torch.Generator) -> list[dict]:
    shapes = [(3, 4, 6, 6), (3, 8, 3, 3)]
    S, T = [_randn(gen, *s) for s in shapes], [_randn(gen, *s) for s in shapes]
    return [{"args": [S[:1], T[:1]]}, {"args": [S, T]}, {"args": [[2.5 * S[0]], [T[0]]]}]


def _ain_cases(gen: torch.Generator) -> list[dict]:
    def curve(n: int) -> list[float]:
        return torch.rand(n, generator=gen).mul(0.9).tolist() + [0.97, 0.5, 0.99]

    fast = curve(int(torch.randint(1, 4, (1,), generator=gen)))
    slow = curve(int(torch.randint(5, 9, (1,), generator=gen)))
    return [{"args": [fast, slow, 0.95]}, {"args": [slow, slow, 0.95]}]


def _tv_cases(gen: torch.Generator) -> list[dict]:
    return [{"args": [_randn(gen, 3, 2, 5, 7)]}, {"args": [_randn(gen, 2, 1, 28, 28)]}]


def _bn_cases(gen: torch.Generator) -> list[dict]:
    def stats(c: int) -> list[torch.Tensor]:
        return [_randn(gen, c), torch.rand(c, generator=gen) + 0.5]

    return [
        {"args": [_randn(gen, 6, 5, scale=3.0) + 1, *stats(5)]},
        {"args": [_randn(gen, 4, 3, 5, 5), *stats(3)], "kwargs": {"eps": 0.3}},
    ]


def _retain_targets_cases(gen: torch.Generator) -> list[dict]:
    return [{"args": [_randn(gen, 4, 10), _pick(gen, 10, k), T]} for k, T in ((1, 1.0), (2, 4.0))]


def _loss_cases(gen: torch.Generator) -> list[dict]:
    return [
        {"args": [_randn(gen, 7, 10, scale=4.0), torch.randint(0, 10, (7,), generator=gen)]},
        {"args": [_randn(gen, 5, 3, scale=30.0, dtype=torch.float64), torch.randint(0, 3, (5,), generator=gen)]},
    ]


def _mask_cases(gen: torch.Generator) -> list[dict]:
    return [
        {"args": [[_randn(gen, 4, 1, 3, 3), _randn(gen, 6, 12, scale=0.2), _randn(gen, 5)], 0.5]},
        {"args": [[_randn(gen, 9, 8, scale=3.0), _randn(gen, 3, 9)], 0.3]},
        {"args": [[_randn(gen, 10)], 0.0]},
    ]


def _relabel_reference(y: torch.Tensor, mapping: dict[int, int]) -> torch.Tensor:
    return relabel(TensorData(torch.zeros(len(y), 1, 1, 1), y), mapping).y


def _ain_reference(curve_unlearned: list[float], curve_retrained: list[float], target: float) -> float:
    steps = anamnesis.steps_to_reach
    return anamnesis.anamnesis_index(steps(curve_unlearned, target), steps(curve_retrained, target))


# ----------------------------------------------------------------------------------------------------------
# Result questions: one set of conditions for the check cell and the grader


def _same(a: nn.Module, b: nn.Module, prefix_ok: tuple[str, ...] = ()) -> bool:
    """Whether every state entry not starting with one of ``prefix_ok`` is bit-identical in ``a`` and ``b``."""
    sa, sb = a.state_dict(), b.state_dict()
    return all(torch.equal(v.cpu(), sb[k].cpu()) for k, v in sa.items() if not k.startswith(prefix_ok))


def _changed_entries(model: nn.Module, original: nn.Module) -> tuple[int, int]:
    """How many conv/linear entries differ from the original, and how many there are."""
    new, old = saliency.candidate_parameters(model), saliency.candidate_parameters(original)
    changed = sum(int((new[n].detach().cpu() != p.detach().cpu()).sum()) for n, p in old.items())
    return changed, sum(p.numel() for p in old.values())


@functools.cache
def _test_set() -> TensorData:
    """The real MNIST test set, read once per process."""
    return load_mnist(train=False)


def _report(model: nn.Module, forget: tuple[int, ...], relabel: dict | None, device: torch.device | str):
    return unlearning_report(model, _test_set(), forget, relabel=relabel, device=device)


@functools.cache
def _zoo_report(profile: Profile, exclude: tuple[int, ...], forget: tuple[int, ...], device: str) -> UnlearningReport:
    """A zoo model's report, computed once per process: the grader scores every submission against it."""
    relabel = {6: 3} if forget == (6,) else None
    return _report(zoo.get("cnn_bn", profile, device=device, exclude_classes=exclude).model, forget, relabel, device)


def _references(profile: Profile, device: torch.device | str) -> list[UnlearningReport]:
    """The original's and the retrained model's reports (forget class 6): a class's loss is measured below both."""
    return [_zoo_report(profile, exclude, (6,), str(device)) for exclude in ((), (6,))]


def relabel_conditions(model: nn.Module, profile: Profile, device: torch.device | str = "cpu") -> Conditions:
    """Notebook 01, Q3: class 6 gone, 6 read as 3, only fc3 changed, no other class hurt (largest_class_drop)."""
    target, max_drop = {"quick": (0.985, 1.0), "full": (0.9925, 0.5)}[profile.name]
    original = zoo.pretrained("cnn_bn", profile, device=device)
    references, after = _references(profile, device), _report(model, (6,), {6: 3}, device)
    return [
        ("every parameter and BatchNorm statistic but fc3's is the original's", _same(model, original, ("fc3.",))),
        ("class 6 on the original labels is at most 1 %", after.per_class[6] <= 0.01),
        ("accuracy on the modified labels reaches the profile's target", after.relabelled_acc >= target),
        (
            "no other class falls more than the profile's limit (1 point quick, 0.5 full) below both the original "
            "and the retrained model",
            largest_class_drop(after, references, (6,))[0] <= max_drop,
        ),
    ]


def penalty_conditions(model: nn.Module, profile: Profile, device: torch.device | str = "cpu") -> Conditions:
    """Notebook 02, Q3: class 6 gone, class 3 learned, at most the chosen share of weights changed, no other class
    hurt (below both the original and the retrained model, as in notebook 01)."""
    class3, modified, max_drop = {"quick": (0.985, 0.97, 3.0), "full": (0.99, 0.99, 0.5)}[profile.name]
    fraction = penalty.CONFIGS[profile.name].fraction
    original = zoo.pretrained("cnn_bn", profile, device=device)
    references, after = _references(profile, device), _report(model, (6,), {6: 3}, device)
    changed, total = _changed_entries(model, original)  # the mask chooses round(fraction * total) entries
    conv_linear = tuple(f"{n}." for n, m in original.named_modules() if isinstance(m, saliency.CANDIDATE_LAYERS))
    return [
        ("class 6 on the original labels is at most 1 %", after.per_class[6] <= 0.01),
        ("class 3 reaches the profile's target", after.per_class[3] >= class3),
        ("accuracy on the modified labels reaches the profile's target", after.relabelled_acc >= modified),
        (
            "no other class falls more than the profile's limit (3 points quick, 0.5 full) below both the original "
            "and the retrained model",
            largest_class_drop(after, references, (3, 6))[0] <= max_drop,
        ),
        (
            "unchosen weights are bit-identical to the original (at most the chosen share changed, BN untouched)",
            changed <= round(fraction * total) and _same(model, original, conv_linear),
        ),
    ]


def distill_conditions(model: nn.Module, profile: Profile, device: torch.device | str = "cpu") -> Conditions:
    """Notebook 03, Q3: the distilled student forgets 6, reads it as 3 and keeps the other classes (measured below
    both the teacher and the retrained model, as in notebook 01)."""
    max_forget, modified, max_drop = {"quick": (0.01, 0.96, 4.0), "full": (0.005, 0.992, 0.5)}[profile.name]
    references, after = _references(profile, device), _report(model, (6,), {6: 3}, device)
    return [
        ("class 6 on the original labels is below the profile's limit", after.per_class[6] <= max_forget),
        ("accuracy on the modified labels reaches the profile's target", after.relabelled_acc >= modified),
        (
            "no class other than 3 and 6 falls more than the profile's limit (4 points quick, 0.5 full) below both "
            "the teacher and the retrained model",
            largest_class_drop(after, references, (3, 6))[0] <= max_drop,
        ),
    ]


def zero_shot_conditions(model: nn.Module, profile: Profile, device: torch.device | str = "cpu") -> Conditions:
    """Notebook 05, Q4: a new network that forgets class 0 and keeps the rest, on real test images."""
    bar = {"quick": 0.95, "full": 0.97}[profile.name]
    teacher = zoo.pretrained("cnn_bn", profile, device=device)
    gold = zoo.retrained((0,), "cnn_bn", profile, device=device)
    result = _report(model, (0,), None, device)
    return [
        (
            "train a new network: `student` must be neither the teacher nor the retrained model",
            not _same(model, teacher) and not _same(model, gold),
        ),
        ("the forget class is at most 1 % on real test images", result.forget_acc <= 0.01),
        ("retain accuracy on real test images reaches the profile's bar", result.retain_acc >= bar),
    ]


@functools.cache
def _memorising_data() -> tuple[TensorData, TensorData, TensorData]:
    """Notebook 06's forget, retain and test sets (Fashion-MNIST), read once per process."""
    splits = zoo.memorising_splits()
    return splits.forget, splits.retain, splits.test


def _membership(model: nn.Module, device: torch.device | str) -> mia.MembershipReport:
    return mia.membership_report(model, *_memorising_data(), device=device)


@functools.cache
def _retrained_band(profile: Profile, device: str) -> list[mia.MembershipReport]:
    """The retrained models' reports (one per training seed), computed once per process (notebook 06 shows them)."""
    specs = zoo.memorising_specs(profile)[1:]
    return [_membership(zoo.get_spec(spec, device).model, device) for spec in specs]


# notebook 06: (widening of the retrained models' simple_mia range on each side, accuracy points below their mean)
MIA_BARS = {"quick": (0.02, 2.0), "full": (0.01, 1.0)}


def retrained_reports(profile: str | Profile, device: torch.device | str = "cpu") -> list[mia.MembershipReport]:
    """Notebook 06's retrained models' membership reports, one per seed of the profile (what the band is made of)."""
    return _retrained_band(resolve(profile), str(device))


def mia_band(profile: Profile, device: torch.device | str = "cpu") -> tuple[float, float]:
    """The simple_mia interval a good method must land in: the retrained models' range, widened by the margin."""
    margin = MIA_BARS[profile.name][0]
    scores = [r.simple_mia for r in _retrained_band(profile, str(device))]
    return min(scores) - margin, max(scores) + margin


def mia_conditions(model: nn.Module, profile: Profile, device: torch.device | str = "cpu") -> Conditions:
    """Notebook 06, Q3: the unlearned model's MIA in the retrained band, its accuracies near the retrained ones."""
    points = MIA_BARS[profile.name][1] / 100
    band = _retrained_band(profile, str(device))
    low, high = mia_band(profile, device)
    after = _membership(model, device)
    retain = sum(r.retain_acc for r in band) / len(band)
    test = sum(r.test_acc for r in band) / len(band)
    gold = [zoo.get_spec(spec, device).model for spec in zoo.memorising_specs(profile)]
    return [
        ("the model is unlearned: neither the original nor a retrained model", not any(_same(model, g) for g in gold)),
        ("simple_mia on the forget set lies in the retrained models' band", low <= after.simple_mia <= high),
        (
            "retain accuracy at most the profile's limit (2 points quick, 1 full) below the retrained models' mean",
            after.retain_acc >= retain - points,
        ),
        (
            "test accuracy at most the profile's limit (2 points quick, 1 full) below the retrained models' mean",
            after.test_acc >= test - points,
        ),
    ]


def _tow_cases(gen: torch.Generator) -> list[dict]:
    acc, ref = torch.rand(3, generator=gen).tolist(), torch.rand(3, generator=gen).tolist()
    return [{"args": [acc, ref]}, {"args": [ref, acc]}, {"args": [ref, list(ref)]}]


def _pareto_cases(gen: torch.Generator) -> list[dict]:
    """Tables on a coarse grid, so that ties and equal entries occur; names in random order."""

    def table(n: int, axes: int) -> dict[str, tuple[float, ...]]:
        values = torch.randint(0, 4, (n, axes), generator=gen).float() / 4
        return {f"m{k}": tuple(row.tolist()) for k, row in zip(_pick(gen, 100, n), values)}

    duplicated = table(5, 2)
    duplicated["twin"] = duplicated[pareto_front(duplicated)[0]]  # equal to a front entry: both stay
    return [{"args": [table(8, 2)]}, {"args": [table(6, 3)]}, {"args": [duplicated]}]


@functools.cache
def _capstone(profile: Profile, device: str) -> Yardstick:
    """Notebook 08's band and fine-tuning baseline, computed once per process."""
    return capstone_yardstick(profile, device)


def capstone_conditions(model: nn.Module, profile: Profile, device: torch.device | str = "cpu") -> Conditions:
    """Notebook 08, Q3: an unlearned model inside the retrained models' band on the three accuracies (class 6),
    closer to retraining (a higher ToW) than the fine-tuning baseline on seed 0."""
    yardstick = _capstone(profile, str(device))
    ours = yardstick.reference.scores(model, device)
    bands = yardstick.reference.bands
    return [
        (
            "hand over an unlearned model: neither an original nor a retrained model from the zoo",
            not any(_same(model, m) for m in yardstick.zoo_models),
        ),
        ("forget accuracy inside the retrained models' band", bands["forget_acc"].contains(ours.forget_acc)),
        ("retain accuracy inside the retrained models' band", bands["retain_acc"].contains(ours.retain_acc)),
        ("test accuracy inside the retrained models' band", bands["test_acc"].contains(ours.test_acc)),
        ("closer to retraining than fine-tuning: a higher ToW than the baseline's", ours.tow > yardstick.baseline.tow),
    ]


def _top_k_cases(gen: torch.Generator) -> list[dict]:
    # fraction * numel is never a half, so round() has no tie to break; random values have no equal magnitudes
    shapes_and_fractions = [((4, 3, 3), 0.1), ((7,), 0.3), ((5, 6), 0.02), ((3,), 0.1), ((2, 5), 1.0)]
    return [{"args": [_randn(gen, *shape), fraction]} for shape, fraction in shapes_and_fractions]


def _undo_cases(gen: torch.Generator) -> list[dict]:
    state = {"fc.weight": _randn(gen, 3, 4), "fc.bias": _randn(gen, 3), "bn.running_mean": _randn(gen, 3)}
    updates = [{"fc.weight": _randn(gen, 3, 4, scale=0.1), "fc.bias": _randn(gen, 3, scale=0.1)} for _ in range(3)]
    updates.append({"fc.weight": _randn(gen, 3, 4, scale=0.1)})  # a step may name only some parameters
    return [{"args": [state, updates]}, {"args": [state, updates[:1]]}, {"args": [state, []]}]


def amnesiac_conditions(model: nn.Module, profile: Profile, device: torch.device | str = "cpu") -> Conditions:
    """Notebook 07, Q3: the CNN of the ledger run forgets class 6 with a partial undo and keeps the rest.

    Quick bar 95 %: the quick original reaches about 96.6 % on the other classes, and the best partial undos of
    the quick sweep 95.6 to 96.8 % (benchmarks/results/amnesiac_quick.json); full: the issue's 98.5 %.
    """
    retain_bar = {"quick": 0.95, "full": 0.985}[profile.name]
    run = ledger_run(notebook_setups(profile)["cnn"], device)
    after = _report(model, (run.setup.forget_class,), None, device)
    return [
        (
            "neither the original nor the retrained model",
            not _same(model, run.model) and not _same(model, run.retrained),
        ),
        ("at most 1 % of the test 6s are read as 6", after.forget_acc <= 0.01),
        ("retain accuracy reaches the profile's bar", after.retain_acc >= retain_bar),
    ]


QUESTIONS: dict[tuple[str, str], FunctionQuestion | ResultQuestion] = {
    ("01_relabel_freeze", "q1"): FunctionQuestion("relabel_targets", _relabel_cases, _relabel_reference),
    ("01_relabel_freeze", "q2"): FunctionQuestion(
        "freeze_all_but_output",
        _freeze_cases,
        partial(relabel_method.freeze_all_but, trainable=["fc3"]),
        unordered_result=True,
    ),
    ("01_relabel_freeze", "q3"): ResultQuestion("cnn_bn", relabel_conditions, needs=((), (6,))),
    ("02_penalty_loss", "q1"): FunctionQuestion("saliency_mask", _saliency_cases, saliency.top_fraction_mask),
    ("02_penalty_loss", "q2"): FunctionQuestion("bounded_penalty_loss", _penalty_cases, penalty.bounded_penalty),
    ("02_penalty_loss", "q3"): ResultQuestion("cnn_bn", penalty_conditions, needs=((), (6,))),
    ("03_distillation", "q1"): FunctionQuestion("distillation_loss", _distillation_cases, distill.distillation_loss),
    ("03_distillation", "q2"): FunctionQuestion(
        "teacher_targets",
        _teacher_targets_cases,
        lambda z, T, f, to: distill.move_class_mass(distill.soft_targets(z, T), f, to),
    ),
    ("03_distillation", "q3"): ResultQuestion("cnn_bn", distill_conditions, needs=((), (6,))),
    ("04_zero_shot", "q1"): FunctionQuestion(
        "error_max_objective", _error_max_cases, noise.error_max_objective, rtol=1e-4, atol=1e-4
    ),
    ("04_zero_shot", "q2"): FunctionQuestion("keep_mask", _gate_cases, gkt.gate_mask),
    ("04_zero_shot", "q3"): FunctionQuestion("at_loss", _attention_cases, gkt.attention_loss, rtol=1e-4),
    ("04_zero_shot", "q4"): FunctionQuestion("ain_from_curves", _ain_cases, _ain_reference),
    ("05_deepinversion", "q1"): FunctionQuestion("tv_prior", _tv_cases, deepinversion.total_variation),
    ("05_deepinversion", "q2"): FunctionQuestion(
        "bn_stat",
        _bn_cases,
        lambda f, m, v, eps=1e-5: deepinversion.bn_statistics_loss(f, m, v, True, eps),
        rtol=1e-4,
    ),
    ("05_deepinversion", "q3"): FunctionQuestion(
        "retain_targets", _retain_targets_cases, distill.soft_targets_without, atol=1e-6
    ),
    ("05_deepinversion", "q4"): ResultQuestion("cnn_bn", zero_shot_conditions, needs=((), (0,))),
    ("07_amnesiac", "q1"): FunctionQuestion("top_k_update", _top_k_cases, amnesiac_method.top_k_update),
    ("07_amnesiac", "q2"): FunctionQuestion("undo_updates", _undo_cases, amnesiac_method.subtract_updates),
    ("07_amnesiac", "q3"): ResultQuestion("cnn", amnesiac_conditions, needs=()),
    ("06_mia_pruning", "q1"): FunctionQuestion("sample_losses", _loss_cases, mia.losses_from_logits),
    ("06_mia_pruning", "q2"): FunctionQuestion("magnitude_masks", _mask_cases, pruning_method.global_magnitude_masks),
    ("06_mia_pruning", "q3"): ResultQuestion("cnn", mia_conditions, needs=(), zoo_specs=zoo.memorising_specs),
    ("08_capstone", "q1"): FunctionQuestion("tow_score", _tow_cases, tug_of_war),
    ("08_capstone", "q2"): FunctionQuestion("pareto_names", _pareto_cases, pareto_front, unordered_result=True),
    ("08_capstone", "q3"): ResultQuestion("cnn_bn", capstone_conditions, needs=(), zoo_specs=capstone_specs),
}
# the zoo models each exercise loads, trained before any submission's clock starts
NEEDS: dict[str, tuple[tuple[int, ...], ...]] = {"04_zero_shot": ((), (0,))}
# other cached models an exercise loads (not zoo models), trained by these before grading
WARMERS: dict[str, Callable[[str | Profile], None]] = {"07_amnesiac": amnesiac_method.warm_cache}


def result_conditions(
    exercise: str, grade_id: str, model: nn.Module, profile: str | Profile = "auto", device: torch.device | str = "cpu"
) -> Conditions:
    """The conditions a result question's model must meet (the check cell and the grader both call this)."""
    question = QUESTIONS[(exercise, grade_id)]
    if not isinstance(question, ResultQuestion):
        raise ValueError(f"{exercise} {grade_id} is a function question, not a result question")
    return question.conditions(model, resolve(profile), device)


def reference_name(exercise: str, grade_id: str) -> str | None:
    """The public name of the package function a function question is checked against (None for local helpers)."""
    question = QUESTIONS.get((exercise, grade_id))
    if not isinstance(question, FunctionQuestion):
        return None
    fn = getattr(question.reference, "func", question.reference)  # a functools.partial
    name = getattr(fn, "__name__", "")
    return name if name.isidentifier() and not name.startswith("_") else None


def models_needed(exercise: str) -> set[tuple[int, ...]]:
    """Excluded-class tuples of the cnn_bn zoo models that ``exercise`` loads."""
    needed = set(NEEDS.get(exercise, ()))
    for (name, _), question in QUESTIONS.items():
        if name == exercise and isinstance(question, ResultQuestion):
            needed |= set(question.needs)
    return needed


def specs_needed(exercise: str, profile: str | Profile = "auto") -> list[zoo.TrainSpec]:
    """The other zoo models (beyond cnn_bn's) that ``exercise`` loads under ``profile``."""
    return [
        spec
        for (name, _), question in QUESTIONS.items()
        if name == exercise and isinstance(question, ResultQuestion) and question.zoo_specs is not None
        for spec in question.zoo_specs(resolve(profile))
    ]


def warm_cache(exercises: list[str], profile: str | Profile = "auto") -> None:
    """Extract the data and train (once) every model the exercises load, so no submission's clock pays for it
    (and a sandbox with a read-only cache finds everything it needs)."""
    for train in (True, False):
        load_mnist(train=train)
    for exercise in exercises:
        for exclude in sorted(models_needed(exercise)):
            zoo.get("cnn_bn", profile, exclude_classes=exclude)
        if exercise in WARMERS:
            WARMERS[exercise](profile)
        for spec in specs_needed(exercise, profile):
            load_dataset(spec.dataset, train=True)
            load_dataset(spec.dataset, train=False)
            zoo.get_spec(spec)


# ----------------------------------------------------------------------------------------------------------
# Verdicts


def answer_imports(cells_before: list[str]) -> str:
    """The top-level import statements of the notebook's code before an answer cell (its namespace to be)."""
    lines = []
    for source in cells_before:
        try:
            tree = ast.parse(source)
        except SyntaxError:
            continue
        lines += [ast.unparse(node) for node in tree.body if isinstance(node, (ast.Import, ast.ImportFrom))]
    return "\n".join(lines)


def _compare(expected, observed, question: FunctionQuestion, where: str) -> str | None:
    """``None`` when ``observed`` matches ``expected``, else where it differs."""
    if isinstance(expected, torch.Tensor):
        if not isinstance(observed, torch.Tensor):
            return f"{where}: expected a tensor, got {type(observed).__name__}"
        if observed.shape != expected.shape:
            return f"{where}: expected shape {tuple(expected.shape)}, got {tuple(observed.shape)}"
        if not expected.is_floating_point():  # labels and masks: exact, and a mask must be bool
            kind_ok = observed.dtype == torch.bool if expected.dtype == torch.bool else not observed.is_floating_point()
            exact = kind_ok and torch.equal(observed.to(expected.dtype), expected)
            return None if exact else f"{where}: wrong values"
        if not observed.is_floating_point():
            return f"{where}: expected floating-point values"
        close = torch.allclose(observed.double(), expected.double(), question.rtol, question.atol, equal_nan=True)
        return None if close else f"{where}: wrong values"
    if isinstance(expected, float) and isinstance(observed, (int, float, torch.Tensor)):
        value = float(observed) if not isinstance(observed, torch.Tensor) or observed.numel() == 1 else None
        ok = value is not None and abs(value - expected) <= question.atol + question.rtol * abs(expected)
        return None if ok else f"{where}: wrong value"
    if isinstance(expected, dict):
        if not isinstance(observed, dict) or set(observed) != set(expected):
            return f"{where}: expected a dict with keys {sorted(expected)}"
        return next(
            (d for k in expected if (d := _compare(expected[k], observed[k], question, f"{where}[{k!r}]"))), None
        )
    if isinstance(expected, list):
        if not isinstance(observed, list) or len(observed) != len(expected):
            return f"{where}: expected a list of {len(expected)}"
        return next(
            (d for i, (e, o) in enumerate(zip(expected, observed)) if (d := _compare(e, o, question, f"{where}[{i}]"))),
            None,
        )
    return None if observed == expected and type(observed) is type(expected) else f"{where}: wrong value"


def compare_observations(question: FunctionQuestion, expected: list[dict], observed: list) -> str | None:
    """``None`` when every case matches the reference, else a hint naming the first difference."""
    if not isinstance(observed, list) or len(observed) != len(expected):
        return "the answer could not be called on the grading inputs"
    for n, (want, got) in enumerate(zip(expected, observed), start=1):
        if not isinstance(got, dict) or "error" in got:
            error = got.get("error") if isinstance(got, dict) else "no result"
            return f"on grading input {n}, {question.function} raised {error}"
        if question.unordered_result and isinstance(got.get("result"), list):
            got = {**got, "result": sorted(got["result"], key=str)}
            want = {**want, "result": sorted(want["result"], key=str)}
        for part, label in (
            ("result", "its result"),
            ("args", "its inputs afterwards (change nothing in place)"),
            ("grads", "the gradient"),
        ):
            if part in want and (diff := _compare(want[part], got.get(part), question, label)):
                return f"on grading input {n}, {question.function}: {diff}"
    return None


def reference_observations(question: FunctionQuestion, cases: list[dict]) -> list[dict]:
    """What the package's reference does on each case (computed in the grader's process)."""
    return [observe_call(question.reference, case) for case in cases]


def load_submitted_model(question: ResultQuestion, path) -> nn.Module:
    """The submitted ``state_dict`` in a fresh model; plain tensors only (``weights_only``), strict keys."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    model = build_model(question.model)
    model.load_state_dict(state, strict=True)
    return model.eval()
