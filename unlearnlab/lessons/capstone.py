"""Lesson 08 (``08_capstone``): every method against retraining from scratch, and a method of the student's own
that must beat fine-tuning inside the retrained models' band."""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, replace

import torch
from torch import nn

from .. import zoo
from ..compare import (
    SCENARIOS,
    CompareResult,
    Reference,
    Scores,
    SeedSetup,
    compare,
    setup_specs,
    summary_lines,
    zoo_setups,
)
from ..compare.forgetting import QualityResult, run_study
from ..compare.run import measure_retraining, splits_for, zoo_spec
from ..compare.scoring import EvalSets, Outputs, score
from ..config import Profile
from ..engine import LOCAL
from ..methods import finetune, registry
from ..metrics import Band, pareto_front, retrained_band, tug_of_war
from .base import (
    Condition,
    FunctionQuestion,
    Headline,
    Lesson,
    ResultQuestion,
    for_profile,
    measured,
    pick,
    same_weights,
)

FORGET = 6  # class forgetting: every training image of this digit
FORGET_FRACTION = 0.1  # random forgetting: this share of the training set, every class mixed
SEEDS = {"quick": 2, "full": 3}  # training seeds per profile (two or more give a band)
# the methods each scenario's table runs: a few fast ones on a 2-core CPU; None = every registered method
METHODS: dict[str, dict[str, tuple[str, ...] | None]] = {
    "quick": {"class": ("relabel", "gradient_ascent", "finetune"), "random": ("gradient_ascent", "finetune")},
    "full": {"class": None, "random": None},
}
# The full tables run every registered method over SEEDS["full"] seeds on the full-size models (the whole training
# set) within the hour a 2-core CPU gets (benchmarks/bench_compare.py --pair-cost measures a pair's cost): each
# method at its CPU-sized (quick) config, with one pass over the training data where that config makes several
ONE_PASS = ("distill", "prune", "l1_sparse", "random_labels")
BASELINE_EPOCHS = 1  # Q3's fine-tuning baseline: one pass over the retain set, in both profiles


def finetune_baseline(profile: Profile) -> finetune.Config:
    """Q3's baseline: fine-tuning on the retain set for :data:`BASELINE_EPOCHS` at the method's learning rate."""
    return replace(for_profile(finetune.CONFIGS, profile), num_epochs=BASELINE_EPOCHS)


def table_configs(profile: Profile) -> dict[str, object]:
    """Each method's config in the tables: the profile's own (by name) in the quick profile; in the full one, the
    quick config (one epoch for the :data:`ONE_PASS` methods); fine-tuning as Q3's baseline in both."""
    baseline = {"finetune": finetune_baseline(profile)}
    if profile.name == "quick":
        return baseline
    configs: dict[str, object] = {}
    for name, spec in registry.METHODS.items():
        quick = spec.module.CONFIGS["quick"]
        configs[name] = replace(quick, num_epochs=1) if name in ONE_PASS else quick
    return configs | baseline


ENTROPY_STANDARD_ERRORS = 2  # the forget set's mean output entropy: two standard errors of its mean (as an accuracy)


def output_entropy(logits: torch.Tensor) -> torch.Tensor:
    """The entropy of each output distribution, H(p_i) = -sum_c p_ic log p_ic in nats; (N, C) logits -> (N,)."""
    log_p = logits.double().log_softmax(1)
    return -(log_p.exp() * log_p).sum(1)


def entropy_band(forget_logits: list[torch.Tensor]) -> Band:
    """The retrained models' band of the forget set's mean output entropy: their spread
    (:func:`unlearnlab.metrics.retrained_band`), widened by two standard errors of one model's mean."""
    per_image = [output_entropy(z) for z in forget_logits]
    noise = max(float(h.std() / math.sqrt(len(h))) for h in per_image)
    return retrained_band([float(h.mean()) for h in per_image], ENTROPY_STANDARD_ERRORS * noise)


def weight_similarity(model: nn.Module, other: nn.Module) -> float:
    """Cosine similarity of the two models' parameters, each flattened into one vector (same architecture)."""
    a, b = (torch.cat([p.detach().cpu().flatten() for p in m.parameters()]) for m in (model, other))
    return float(torch.nn.functional.cosine_similarity(a, b, dim=0))


@dataclass
class Yardstick:
    """Q3: what a tuned method must beat on class 6, seed 0."""

    reference: Reference  # the retrained models of every seed and their band
    baseline: Scores  # fine-tuning (``finetune_baseline``) on seed 0, scored against the seed-0 retrained model
    entropy: Band  # the retrained models' band of the forget set's mean output entropy
    original: nn.Module  # seed 0's original: the model Q3 unlearns
    retrained_similarity: float  # weight_similarity(seed 1's retrained model, seed 0's original): another init
    zoo_models: tuple[nn.Module, ...]  # the originals and retrained models: not an answer


@dataclass(frozen=True)
class Placement:
    """Where a model lands on Q3's measures: its scores against retraining and its forget-set output entropy."""

    scores: Scores
    entropy: float  # mean output entropy on the forget set (nats)
    similarity: float  # weight_similarity to seed 0's original


@functools.cache
def _yardstick(profile: Profile, device: str) -> Yardstick:
    """Load the class-6 zoo models of the lesson's seeds, evaluate them and run the fine-tuning baseline, once per
    process (the notebook prints it, its check and the grader's process each reuse their own)."""
    setups = zoo_setups("class", range(for_profile(SEEDS, profile)), profile, (FORGET,), device=device)
    reference = Reference.of([s.retrained for s in setups], setups[0].splits, profile, torch.device(device))
    base = finetune.unlearn(setups[0].original, setups[0].splits, finetune_baseline(profile), device=device, seed=0)
    models = tuple(m for s in setups for m in (s.original, s.retrained))
    entropy = entropy_band([out.forget[0] for out in reference.outputs])
    original, similarity = setups[0].original, weight_similarity(setups[1].retrained, setups[0].original)
    return Yardstick(
        reference, reference.scores(base.model, torch.device(device)), entropy, original, similarity, models
    )


def place(model: nn.Module, judge: Yardstick, device: torch.device | str) -> Placement:
    """``model``'s scores against the seed-0 retrained model and its forget-set output entropy."""
    outputs = Outputs.of(model, judge.reference.sets, torch.device(device))
    entropy = float(output_entropy(outputs.forget[0]).mean())
    return Placement(score(outputs, judge.reference.outputs[0]), entropy, weight_similarity(model, judge.original))


def yardstick(profile: Profile, device: torch.device | str) -> Yardstick:
    """The band and the fine-tuning baseline Q3 is judged against (computed once per process)."""
    return _yardstick(profile, str(device))


def zoo_specs(profile: Profile) -> list[zoo.TrainSpec]:
    """Every zoo model the lesson loads: per seed the original and the retrained models of both scenarios."""
    seeds = for_profile(SEEDS, profile)
    return setup_specs("class", seeds, profile) + setup_specs("random", seeds, profile)[seeds:]


# ----------------------------------------------------------------------------------------------------------
# The study: both tables, timed against one retraining


def plan(profile: Profile) -> str:
    """The profile's seeds and each table's methods and their configs, in words."""
    methods = for_profile(METHODS, profile)
    chosen = "; ".join(f"{s}: {', '.join(methods[s]) if methods[s] else 'every registered method'}" for s in SCENARIOS)
    configs = (
        f"each method at its quick config ({', '.join(ONE_PASS)}: one epoch)"
        if profile.name != "quick"
        else "each method at its quick config"
    )
    return (
        f"profile {profile.name}, seeds 0-{for_profile(SEEDS, profile) - 1}; methods per table: {chosen}; {configs}, "
        f"fine-tuning for {BASELINE_EPOCHS} epoch (Q3's baseline)"
    )


def time_retraining(profile: Profile, device: torch.device) -> float:
    """Seconds to retrain seed 0's class-forgetting model from scratch, timed now (every time ratio divides by it)."""
    return measure_retraining(zoo_spec("cnn_bn", profile, 0, "class", (FORGET,)), device)


def protocol(profile: Profile, retrain_seconds: float, device: torch.device) -> str:
    """What each table scores, in sentences: the retraining time and, per scenario, the sets and their sizes."""
    lines = [f"Retraining from scratch without class {FORGET} took {retrain_seconds:.1f} s on {device} (timed now)."]
    for scenario in SCENARIOS:
        splits = splits_for(scenario, (FORGET,), FORGET_FRACTION, profile)
        scored = EvalSets.from_splits(splits, False, profile)  # fixed subsamples, the same for every model
        lines.append(
            f"{scenario.capitalize()} forgetting: {len(splits.forget):,} images to forget, {len(splits.retain):,} to "
            f"keep; each model is scored on {len(scored.forget):,} forget, {len(scored.retain):,} retain and "
            f"{len(scored.test):,} test images."
        )
    return "\n\n".join(lines)


def scheduler(profile: Profile, device: torch.device) -> str | None:
    """Where the tables' pairs run: the full profile's on a CPU as tasks on a local Dask cluster, one single-threaded
    worker per core (a 2-core CPU runs two pairs at once); the quick ones, and any on a GPU, in this process."""
    return LOCAL if profile.name == "full" and device.type == "cpu" else None


def table(scenario: str, profile: Profile, retrain_seconds: float, device: torch.device) -> CompareResult:
    """The scenario's comparison over the lesson's seeds and methods, fine-tuning configured as Q3's baseline."""
    return compare(
        scenario,
        forget_classes=(FORGET,),
        forget_fraction=FORGET_FRACTION,
        methods=for_profile(METHODS, profile)[scenario],
        seeds=for_profile(SEEDS, profile),
        profile=profile,
        configs=table_configs(profile),
        retrain_seconds=retrain_seconds,
        retrain_seconds_source="timed once in this notebook",
        device=device,
        scheduler=scheduler(profile, device),
    )


# the methods the notebook's forgetting-quality study scores (each costs K unlearning runs, and the full profile's K
# is 256): one that barely moves the model, one that comes closest and one that forgets too much;
# `unlearnlab compare --forgetting-quality` scores every method
QUALITY_METHODS = ("gradient_ascent", "finetune", "random_labels")


def forgetting_quality(profile: Profile, device: torch.device) -> QualityResult:
    """Forgetting quality F of :data:`QUALITY_METHODS`, over the profile's K small models a side
    (:data:`unlearnlab.compare.forgetting.STUDIES`), run where the tables run (:func:`scheduler`)."""
    return run_study(QUALITY_METHODS, profile, device=device, scheduler=scheduler(profile, device))


def quality_reading(result: QualityResult) -> str:
    """What the F table says, in sentences computed from it: F's ceiling at this K and what doing nothing earns,
    each method's place between the two, and how well the ranking from fewer models a side agrees with the one
    from all K (Kendall's tau)."""
    k, ceiling, nothing = result.study.models, result.retrained.quality.score, result.original.quality.score
    lines = [
        f"With K = {k} models a side, K more retrained models score F = {ceiling:.3f} against the first K: the most "
        f"any method can show at this K. The originals, which unlearned nothing, score {nothing:.3f}.",
    ]
    if ceiling > nothing:
        places = ", ".join(
            f"{r.name} {(r.quality.score - nothing) / (ceiling - nothing):+.0%}" for r in result.scored()
        )
        lines.append(
            f"Each method's F as a share of the way from doing nothing (0 %) to retraining (100 %): {places}. Below "
            "0 %, an attacker tells the method's forget-set confidences from retraining's more easily than the "
            "originals': the method forgot too much, or differently, which F counts as surely as forgetting nothing."
        )
    else:
        lines.append(
            "At this K, F does not tell doing nothing from retraining: no method's place between them means much."
        )
    taus = result.ranking_by_models()
    if len(taus) > 1:
        agreement = "; ".join(f"{n} models: {tau:.2f}" for n, tau in taus.items() if n < k)
        lines.append(
            f"The ranking by F from the first n models a side against the one from all {k} (Kendall's tau): "
            f"{agreement}."
        )
    return "\n\n".join(lines)


def reading(result: CompareResult) -> str:
    """What the table says, as a markdown list of sentences computed from it."""
    return "\n".join(f"- {line}" for line in summary_lines(result))


def front(result: CompareResult) -> str:
    """Every method's gap to retraining (1 - ToW) and time ratio, its Pareto-front members marked."""
    points = {r.method: (1 - r.mean["tow"], r.time_ratio) for r in result.rows if not r.failed and r.time_ratio}
    on_front = pareto_front(points)
    return "\n".join(
        f"{name:16s} 1 - ToW {gap:.4f}  time {ratio:6.3f} x retraining  {'front' if name in on_front else ''}"
        for name, (gap, ratio) in points.items()
    )


def q3_setup(profile: Profile, device: torch.device) -> SeedSetup:
    """Seed 0's class-forgetting setup: ``original`` (the model Q3 unlearns) and ``splits``."""
    return zoo_setups("class", [0], profile, (FORGET,), device=device)[0]


def _lines(judge: Yardstick, mine: Placement | None) -> str:
    """Q3's measures beside their retrained bands (``mine``: a model's values in a column of their own)."""
    rows = [f"{'measure':26s} {'yours' if mine else '':>8s}   retrained band"]
    for label, value, band, unit, digits in _measures(mine, judge):
        scale, pct = (100, " %") if unit == "%" else (1, "")
        yours = f"{scale * value:8.{digits}f}" if mine else " " * 8
        rows.append(f"{label:26s} {yours}   [{scale * band.low:.{digits}f}, {scale * band.high:.{digits}f}]{pct}")
    js = f"{mine.scores.js:.4f}" if mine else "below"
    rows.append(
        f"JS divergence to the retrained model {js}; two retrained seeds': {judge.reference.bands['js'].high:.4f}"
    )
    ours = f"{mine.scores.tow:.4f}" if mine else "above"
    rows.append(f"ToW {ours}; the fine-tuning baseline's on seed 0: {judge.baseline.tow:.4f}")
    ours = f"{mine.similarity:.4f}" if mine else "above"
    rows.append(
        f"weight cosine similarity to the original {ours}; a model retrained from another initialisation: "
        f"{judge.retrained_similarity:.4f}"
    )
    return "\n".join(rows)


def targets(profile: Profile, device: torch.device) -> str:
    """Q3's targets: every retrained band, the fine-tuning baseline's ToW, the similarity bar and the budget."""
    budget = (
        f"budget: at most {profile.num_epochs} passes over the retain set, as many as retraining makes over the "
        "whole training set"
    )
    return f"{_lines(yardstick(profile, device), None)}\n{budget}"


def placement(model: nn.Module, profile: Profile, device: torch.device) -> tuple[Scores, str]:
    """Where ``model`` lands against Q3's yardstick: its scores, and its values beside each target."""
    judge = yardstick(profile, device)
    mine = place(model, judge, device)
    return mine.scores, _lines(judge, mine)


def headline_values(class_run: CompareResult, random_run: CompareResult, retrain_seconds: float) -> dict[str, float]:
    """The values the notebook records, by the keys of :data:`HEADLINES` (Q3's ``my_tow`` is recorded by the cell
    that shows the student's own placement, so an unanswered Q3 costs nothing else)."""

    def best(run: CompareResult):
        rows = [r for r in run.rows if r.method not in ("original", "retrained") and not r.failed]
        return max(rows, key=lambda r: r.mean["tow"])

    class_best, random_best = best(class_run), best(random_run)
    return {
        "class_best_tow": class_best.mean["tow"],
        "class_best_time_ratio": class_best.time_ratio,
        "class_finetune_tow": class_run.row("finetune").mean["tow"],
        "class_retrained_forget_acc": 100 * class_run.row("retrained").mean["forget_acc"],
        "random_best_tow": random_best.mean["tow"],
        "random_finetune_tow": random_run.row("finetune").mean["tow"],
        "random_retrained_forget_acc": 100 * random_run.row("retrained").mean["forget_acc"],
        "retrain_seconds": retrain_seconds,
        "class_compare_seconds": class_run.seconds,
        "random_compare_seconds": random_run.seconds,
    }


# ----------------------------------------------------------------------------------------------------------
# Q3


# what each side of a band means, per measure: (below the band, above it)
HINTS = {
    "forget-set accuracy": ("", "the forget set is still recognised: forget more"),
    "retain-set accuracy": ("the method damaged the images it should keep: gentler or fewer steps", ""),
    "test accuracy": (
        "the other digits lost accuracy: gentler or fewer steps",
        "test 6s are still recognised: forget more",
    ),
    "MIA score": (
        "the forget set now has higher losses than unseen 6s (over-forgetting): push less",
        "the attack still tells the forget set from unseen 6s: forget more",
    ),
    "threshold AUC": (
        "the forget set now has higher losses than unseen 6s (over-forgetting): push less",
        "the forget set's losses are still lower than unseen 6s': forget more",
    ),
    "forget-set output entropy": (
        "surer on the forgotten images than a retrained model: is every 6 sent to one digit?",
        "less sure on the forgotten images than a retrained model, which picks a digit for each 6: hiding class 6 "
        "or spreading its images over every class is not what retraining does",
    ),
}


def _measures(mine: Placement | None, judge: Yardstick) -> list[tuple[str, float, Band, str, int]]:
    """Q3's banded measures: (label, ``mine``'s value (nan without a model), retrained band, unit, decimals)."""
    bands, nan = judge.reference.bands, math.nan
    s = mine.scores if mine else None
    return [
        ("forget-set accuracy", s.forget_acc if s else nan, bands["forget_acc"], "%", 2),
        ("retain-set accuracy", s.retain_acc if s else nan, bands["retain_acc"], "%", 2),
        ("test accuracy", s.test_acc if s else nan, bands["test_acc"], "%", 2),
        ("MIA score", s.mia if s else nan, bands["mia"], "", 3),
        ("threshold AUC", s.auc if s else nan, bands["auc"], "", 3),
        ("forget-set output entropy", mine.entropy if mine else nan, judge.entropy, "", 3),
    ]


def _band_conditions(label: str, value: float, band: Band, unit: str, digits: int) -> list[Condition]:
    """Two conditions keeping ``value`` inside ``band``, each with the hint of its side."""
    low, high = HINTS[label]
    return [
        measured(
            f"{label} not below the retrained band{f' ({low})' if low else ''}", value, ">=", band.low, unit, digits
        ),
        measured(
            f"{label} not above the retrained band{f' ({high})' if high else ''}", value, "<=", band.high, unit, digits
        ),
    ]


def conditions(model: nn.Module, profile: Profile, device: torch.device | str = "cpu") -> list[Condition]:
    """Q3: a model unlearned from seed 0's original (not a zoo model, and closer to the original's weights than a
    model retrained from another initialisation is: training anew is not an answer), inside the retrained models'
    band on the three accuracies (class 6), on both views of the membership attack (MIA score and threshold AUC,
    two-sided) and on the forget set's output distribution (its mean entropy: a model that only masks class 6 is
    far less sure on the 6s than a retrained one; and its JS divergence to the retrained model's outputs, no more
    than two retrained seeds differ by), and closer to retraining (a higher ToW) than the fine-tuning
    baseline on seed 0."""
    judge = yardstick(profile, device)
    mine = place(model, judge, device)
    return [
        Condition(
            "hand over an unlearned model: neither an original nor a retrained model from the zoo",
            not any(same_weights(model, m) for m in judge.zoo_models),
        ),
        measured(
            "unlearned from the original, not trained anew: weights closer to the original's (cosine similarity) "
            "than those of a model retrained from another initialisation",
            mine.similarity,
            ">=",
            judge.retrained_similarity,
            unit="",
            digits=4,
        ),
        *(c for measure in _measures(mine, judge) for c in _band_conditions(*measure)),
        measured(
            "the forget set's outputs as close to the retrained model's as another retrained seed's: JS divergence "
            "within the retrained band (masking class 6, sharpened or not, leaves the original's view of the other "
            "digits, not the one retraining learns)",
            mine.scores.js,
            "<=",
            judge.reference.bands["js"].high,
            unit="",
            digits=4,
        ),
        measured(
            "closer to retraining than fine-tuning: a higher ToW than the baseline's",
            mine.scores.tow,
            ">=",
            judge.baseline.tow,
            unit="",
            digits=4,
        ),
    ]


def _tow_cases(gen: torch.Generator) -> list[dict]:
    acc, ref = torch.rand(3, generator=gen).tolist(), torch.rand(3, generator=gen).tolist()
    return [{"args": [acc, ref]}, {"args": [ref, acc]}, {"args": [ref, list(ref)]}]


def _pareto_cases(gen: torch.Generator) -> list[dict]:
    """Tables on a coarse grid, so that ties and equal entries occur; names in random order."""

    def table(n: int, axes: int) -> dict[str, tuple[float, ...]]:
        values = torch.randint(0, 4, (n, axes), generator=gen).float() / 4
        return {f"m{k}": tuple(row.tolist()) for k, row in zip(pick(gen, 100, n), values)}

    duplicated = table(5, 2)
    duplicated["twin"] = duplicated[pareto_front(duplicated)[0]]  # equal to a front entry: both stay
    return [{"args": [table(8, 2)]}, {"args": [table(6, 3)]}, {"args": [duplicated]}]


HEADLINES = (
    Headline(
        "class_best_tow",
        "class 6: the method closest to retraining, ToW against the retrained model (mean over seeds)",
        unit="",
        reference="1 = the retrained model's three accuracies (Zhao et al., 2024)",
        digits=4,
        summary=True,
    ),
    Headline("class_best_time_ratio", "class 6: that method's time over retraining's, timed in the run", unit=""),
    Headline("class_finetune_tow", "class 6: fine-tuning on the retain set (the Q3 baseline), ToW", unit="", digits=4),
    Headline("class_retrained_forget_acc", "class 6: the retrained models' accuracy on the forget set", unit="%"),
    Headline(
        "random_best_tow",
        "random 10 %: the method closest to retraining, ToW (mean over seeds)",
        unit="",
        digits=4,
        summary=True,
    ),
    Headline("random_finetune_tow", "random 10 %: fine-tuning on the retain set, ToW", unit="", digits=4),
    Headline(
        "random_retrained_forget_acc",
        "random 10 %: the retrained models' accuracy on the forget set (the target, not 0 %)",
        unit="%",
    ),
    Headline("my_tow", "the Q3 model: ToW against the seed-0 retrained model", unit="", digits=4),
    Headline("retrain_seconds", "retraining from scratch without class 6, timed in the run", unit="s", digits=1),
    Headline("class_compare_seconds", "the class comparison's wall-clock time", unit="s", digits=0),
    Headline("random_compare_seconds", "the random comparison's wall-clock time", unit="s", digits=0),
)


def warm_cache(profile: Profile, device: torch.device) -> None:
    """Run the notebook's two comparisons and its forgetting-quality study once into the cache: every (method,
    seed) pair is saved when it ends, so a notebook that asks for the same pairs, such as a submission in the
    grading sandbox (which cannot write the cache), loads them. Retraining is timed by the notebook itself; any
    positive time serves here (it divides the time ratios, and is no part of a pair's key)."""
    for scenario in SCENARIOS:
        table(scenario, profile, 1.0, device)
    forgetting_quality(profile, device)


LESSON = Lesson(
    stem="08_capstone",
    questions={
        "q1": FunctionQuestion("tow_score", _tow_cases, tug_of_war),
        "q2": FunctionQuestion("pareto_names", _pareto_cases, pareto_front, unordered_result=True),
        "q3": ResultQuestion("cnn_bn", conditions),
    },
    headlines=HEADLINES,
    zoo_specs=zoo_specs,
    warm=warm_cache,
)
