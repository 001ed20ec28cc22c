"""Lesson 04's study on tiny data: the probes, the GKT runs and their figure, the texts and the recorded values, and
a notebook namespace that holds no reference answer."""

from __future__ import annotations

import ast
import importlib
import inspect
import math
from dataclasses import replace
from types import ModuleType, SimpleNamespace

import pytest
import torch
from torch import nn

from unlearnlab.course import notebooks as nbs
from unlearnlab.data import TensorData, class_splits
from unlearnlab.lessons import zero_shot as lesson
from unlearnlab.methods import anamnesis, gkt, noise
from unlearnlab.methods.deepinversion import SynthesisResult
from unlearnlab.metrics import UnlearningReport, unlearning_report
from unlearnlab.models import build_model

ROOT = nbs.course_root()
TINY_GKT = replace(
    gkt.CONFIGS["quick"],
    num_iterations=2,
    batch_size=8,
    student_steps=1,
    generator_width=8,
    gate_threshold=0.5,  # a random teacher gives every class about 0.1: the gate keeps all
    check_every=1,
    min_iterations=1,
)


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch):
    """Each test saves its GKT runs in a cache of its own: no test resumes another's run."""
    monkeypatch.setenv("UNLEARNLAB_CACHE", str(tmp_path / "cache"))


def _report(forget: float, retain: float) -> UnlearningReport:
    return UnlearningReport(forget, retain, retain, [retain] * 10)


def one_hot_model() -> nn.Module:
    """A linear model that calls an image class k when its pixel k (of the first ten) is the brightest."""
    model = nn.Sequential(nn.Flatten(), nn.Linear(28 * 28, 10, bias=False))
    with torch.no_grad():
        model[1].weight.zero_()
        model[1].weight[:, :10] = torch.eye(10)
    return model


def images_called(classes: list[int]) -> torch.Tensor:
    """Images (N, 1, 28, 28) that :func:`one_hot_model` calls ``classes``."""
    X = torch.zeros(len(classes), 1, 28, 28)
    X.view(len(classes), -1)[torch.arange(len(classes)), torch.tensor(classes)] = 1.0
    return X


def test_accuracy_monitor_against_hand_counts():
    model = one_hot_model().eval()
    data = TensorData(images_called([0, 0, 2, 3, 4]), torch.tensor([0, 1, 2, 3, 9]))  # forget 1 of 1, retain 2 of 4
    assert lesson.accuracy_monitor(data, (0,), device="cpu")(model) == {"forget": 1.0, "retain": 0.5}
    with pytest.raises(ValueError, match="forget classes and of the others"):
        lesson.accuracy_monitor(data, (5,), device="cpu")


@pytest.mark.parametrize(
    ("called", "expected"),
    [
        ([0, 0, 0, 3, 0, 1], [0, 1, 2, 4]),  # four 0s recognised as 0: the probes are those
        ([0, 5, 0, 3, 6, 1], [0, 1, 2, 4]),  # two recognised (under 3): every image of the class
    ],
)
def test_probes_are_the_recognised_images_of_the_forget_class(monkeypatch, called, expected):
    X = images_called(called)
    y = torch.tensor([0, 0, 0, 3, 0, 1])  # the class each image was dreamed for
    synth = SynthesisResult(TensorData(X, y), seconds=2.0, teacher_acc=0.5)
    seen = {}

    def fake_synthesize(teacher, classes, config, *, device, seed):
        seen.update(classes=classes, config=config, seed=seed)
        return synth

    monkeypatch.setattr(lesson, "synthesize", fake_synthesize)
    monkeypatch.setitem(lesson.PROBES, "tiny", lesson.PROBES["quick"])
    probes = lesson.make_probes(one_hot_model().eval(), (0,), SimpleNamespace(name="tiny"), device="cpu", seed=3)
    assert torch.equal(probes.X, X[expected])
    assert seen == {"classes": None, "config": lesson.PROBES["quick"], "seed": 3}  # all classes, the profile's size
    recognised = sum(c == 0 for c in called[:3] + called[4:5])
    assert (probes.drawn, probes.recognised) == (4, recognised)
    assert str(probes) == (
        f"4 DeepInversion images of class 0, {recognised} recognised by the teacher; {len(expected)} probes; "
        "teacher accuracy on all synthetic images 50 % (2 s)"
    )


def test_gkt_variants_change_one_cause_each():
    variants = lesson.gkt_variants(SimpleNamespace(name="quick"))
    horizon = lesson.HORIZONS["quick"]
    base = replace(
        gkt.CONFIGS["quick"],
        num_iterations=horizon.planned,
        stop_at=horizon.trained,
        check_every=horizon.check_every,
        min_iterations=horizon.min_iterations,
        run_to_end=True,
    )
    assert base.temperature == 4.0
    assert variants == {
        lesson.GKT: base,
        lesson.NO_ATTENTION: replace(base, beta=0.0),
        lesson.TEMPERATURE: replace(base, temperature=1.0),
        lesson.MASKED: replace(base, mask_forget=True),
        lesson.ENTROPY: replace(base, max_entropy=0.6),
    }
    assert lesson.gkt_variants(SimpleNamespace(name="full"))[lesson.TEMPERATURE].temperature == 4.0  # full: T = 1
    assert [lesson.describe(c) for c in variants.values()] == [
        "GKT, beta=250, T=4",
        "GKT, beta=0, T=4",
        "GKT, beta=250, T=1",
        "GKT, beta=250, T=4, forget class masked",
        "GKT, beta=250, T=4, entropy < 0.6",
    ]
    full = lesson.gkt_variants(SimpleNamespace(name="full"))[lesson.GKT]
    assert (full.num_iterations, full.stop_at, full.batch_size, full.temperature) == (600, 600, 64, 1.0)


def test_run_gkt_evaluates_each_student_and_the_rules_model(small_train, mnist_test, monkeypatch):
    monkeypatch.setitem(gkt.CONFIGS, "tiny", TINY_GKT)
    monkeypatch.setitem(lesson.HORIZONS, "tiny", lesson.Horizon(2, 2, 1, 1))
    # low at the first checkpoint, then the class comes back; the second run is never low, so its rule never fires
    rates = iter([0.0, 0.5, 0.5, 0.5, 0.0, 0.5, 0.0, 0.5, 0.0, 0.5])
    monkeypatch.setattr(gkt, "probe_rate", lambda *args, **kwargs: next(rates))
    test = mnist_test.subset(slice(0, 600))
    splits = class_splits((0,), train=small_train, test=test)
    teacher = build_model("cnn_bn").eval()
    study = lesson.run_gkt(teacher, splits, SimpleNamespace(name="tiny"), small_train.X[:4], device="cpu", seed=0)
    assert list(study.runs) == [lesson.GKT, lesson.NO_ATTENTION, lesson.TEMPERATURE, lesson.MASKED, lesson.ENTROPY]
    assert study.forget_classes == (0,)
    for role, run in study.runs.items():
        assert study.final[role] == unlearning_report(run.final_model, test, (0,), device="cpu")
        assert study.chosen[role] == unlearning_report(run.model, test, (0,), device="cpu")  # the rule's model
        assert all(set(c.metrics) == {"forget", "retain"} for c in run.checkpoints)  # the monitor watched
        assert len(run.checkpoints) == 2  # every run trains to the end
    fired = [role for role, run in study.runs.items() if run.model is not run.final_model]
    assert fired == [lesson.GKT, lesson.TEMPERATURE, lesson.MASKED, lesson.ENTROPY]
    assert study.chosen[lesson.NO_ATTENTION] is study.final[lesson.NO_ATTENTION]  # no rule fired: nothing new
    log = study.log().splitlines()
    assert log[0].startswith("GKT, beta=250, T=4: ") and "the rule fired at pseudo-batch 2 (snapshot from 1)" in log[0]
    assert "the rule did not fire" in log[2] and log[3].startswith("    time per phase: generator step ")
    names = [study.name(role) for role in study.runs]
    table = study.rule_table({lesson.ORIGINAL: _report(1, 1), lesson.GOLD: _report(0, 1)})
    assert list(table) == [lesson.ORIGINAL, lesson.GOLD, *(f"{name}, rule's model" for name in names)]
    finals = study.final_table({lesson.ORIGINAL: _report(1, 1), lesson.GOLD: _report(0, 1)})
    assert list(finals) == [lesson.ORIGINAL, lesson.GOLD, *names]
    assert "T = 1: mean " in study.mass_text(teacher, seed=0) and "T = 4: mean " in study.mass_text(teacher, seed=0)

    fig = study.plot()
    retain, forget, rate = fig.axes
    assert [line.get_label() for line in retain.get_lines() if not line.get_label().startswith("_")] == names
    first = study.runs[lesson.GKT].checkpoints
    assert list(retain.get_lines()[0].get_ydata()) == [100 * c.metrics["retain"] for c in first]
    assert list(forget.get_lines()[0].get_ydata()) == [100 * c.metrics["forget"] for c in first]
    assert list(rate.get_lines()[0].get_ydata()) == [0.0, 50.0]
    assert any(list(line.get_xdata()) == [2, 2] for line in retain.get_lines())  # where a rule fired
    assert list(rate.get_lines()[-1].get_ydata()) == [100 * TINY_GKT.max_probe_rate] * 2  # the rule's limit
    with pytest.raises(ValueError, match="no monitor metrics"):
        lesson.plot_runs({"bare": replace(study.runs[lesson.GKT], checkpoints=[gkt.Checkpoint(1, 0.0, 1.0)])})


def test_forget_mass_measures_the_targets_on_gated_images():
    """A generator of images the one-hot teacher calls 0 with a known probability: the mass at T = 1 and T = 4."""

    class Fixed(nn.Module):
        def sample(self, n, generator=None):
            return torch.zeros(n, 1, 28, 28)

    teacher = nn.Sequential(nn.Flatten(), nn.Linear(28 * 28, 10))
    with torch.no_grad():
        teacher[1].weight.zero_()
        teacher[1].bias.copy_(torch.tensor([0.0] + [5.0] * 9))  # p_0 = 1 / (1 + 9 e^5) at T = 1
    run = SimpleNamespace(generator=Fixed())
    config = replace(gkt.CONFIGS["quick"], temperature=4.0)
    masses = lesson.forget_mass(teacher, run, config, (0,), images=3)
    at_1, at_4 = 1 / (1 + 9 * math.exp(5)), 1 / (1 + 9 * math.exp(5 / 4))
    assert masses[1.0] == pytest.approx((at_1, at_1)) and masses[4.0] == pytest.approx((at_4, at_4))
    assert at_1 < config.gate_threshold < at_4  # the gate keeps the image; the softened targets give the 0 a lot


def _checkpoints(forget: list[float]) -> list[gkt.Checkpoint]:
    return [gkt.Checkpoint(10 * (i + 1), 0.0, 0.8, {"forget": f, "retain": 0.9}) for i, f in enumerate(forget)]


def _study(back: dict[str, int | None], stopped: bool = True) -> lesson.GKTStudy:
    """A GKTStudy made by hand: each run's forget class comes back at ``back[role]`` (None: never)."""
    variants = lesson.gkt_variants(SimpleNamespace(name="quick"))
    runs, final = {}, {}
    for role in variants:
        at = back.get(role)
        forget = [0.0] * 6 if at is None else [0.0] * (at // 10 - 1) + [0.5] * (7 - at // 10)
        runs[role] = SimpleNamespace(checkpoints=_checkpoints(forget), stop_iteration=None, snapshot_iteration=None)
        final[role] = _report(forget[-1], 0.95)
    runs[lesson.GKT].cost = SimpleNamespace(seconds=12.5)
    if stopped:
        runs[lesson.GKT].stop_iteration, runs[lesson.GKT].snapshot_iteration = 40, 30
    chosen = final | {lesson.GKT: _report(0.0, 0.93)}
    return lesson.GKTStudy(variants, runs, final, chosen, (0,))


def test_came_back_is_the_first_checkpoint_over_the_level():
    run = SimpleNamespace(checkpoints=_checkpoints([0.0, 0.05, 0.06, 0.0]))
    assert lesson.came_back(run) == 30 and lesson.came_back(run, level=0.1) is None


def test_gkt_reading_quotes_the_runs_and_the_verdict_follows_them():
    gold = _report(0.0, 0.99)
    text = _study({lesson.GKT: 40, lesson.NO_ATTENTION: 20}).reading(gold).splitlines()
    assert text[0].startswith("Each run trained 150 pseudo-batches of 64 images (its learning rates anneal over 600);")
    assert text[2] == (
        "- **GKT, beta=250, T=4**: the forget class came back at pseudo-batch **40** (at the end 50.0 % forget, "
        "95.0 % retain accuracy)."
    )
    assert text[4].startswith("- **GKT, beta=250, T=1**: the forget class did not come back (at the end 0.0 %")
    assert text[6].startswith("- **GKT, beta=250, T=4, entropy < 0.6**: the forget class did not come back")
    assert text[7] == (
        "- **Stopping rule** (GKT, beta=250, T=4): it fired at pseudo-batch 40 and returned the snapshot from "
        "pseudo-batch 30: 0.0 % forget, 93.0 % retain accuracy."
    )
    assert text[-1] == (
        "**Verdict.** GKT, beta=250, T=4 leaked at pseudo-batch 40. Changed in GKT, beta=0, T=4, the class still "
        "came back (pseudo-batch 20): the attention term is not needed for the leak. Changed in GKT, beta=250, T=1, "
        "the leak did not come back: the temperature is needed for it. Changed in GKT, beta=250, T=4, forget class "
        "masked, the leak did not come back: the forget class's share of the soft targets is needed for it."
    )
    assert "did not fire" in _study({}, stopped=False).reading(gold)
    assert _study({}).verdict() == (
        "**Verdict.** GKT, beta=250, T=4's forget class did not come back within 150 pseudo-batches: no leak to "
        "explain in this run."
    )
    only_gkt = _study({lesson.GKT: 40}).verdict()
    assert "Changed in GKT, beta=0, T=4, the leak did not come back: the attention term is needed for it." in only_gkt


def _ain(reached: bool) -> lesson.AnamnesisStudy:
    def row(ain: float, steps: int, ok: bool = True) -> anamnesis.AnamnesisRow:
        return anamnesis.AnamnesisRow(ain, anamnesis.RelearnResult(steps, ok))

    rows = {
        lesson.AIN_ORIGINAL: row(0.25, 2),
        lesson.EMMN: row(0.5, 4),
        lesson.AIN_GKT: row(1.25, 10, reached),
        lesson.AIN_GKT_FINAL: row(0.375, 3),
        lesson.AIN_MASKED: row(1.0, 8),
    }
    return lesson.AnamnesisStudy(rows, anamnesis.RelearnResult(8, True))


def test_the_anamnesis_text_and_the_summary_table():
    ain = _ain(reached=False)
    assert str(ain).splitlines() == [
        f"{'original (no unlearning)':38s} relearned in   2 steps: AIN 0.25",
        f"{'EMMN (zero-shot)':38s} relearned in   4 steps: AIN 0.50",
        f"{lesson.AIN_GKT:38s} relearned in  10 steps (not reached): AIN 1.25",
        f"{lesson.AIN_GKT_FINAL:38s} relearned in   3 steps: AIN 0.38",
        f"{lesson.AIN_MASKED:38s} relearned in   8 steps: AIN 1.00",
        f"{'retrained (gold)':38s} relearned in   8 steps",
    ]
    reports = {lesson.GOLD: _report(0.0, 0.99), lesson.EMMN: _report(0.02, 0.1), lesson.UNSIR: _report(0.0, 0.9)}
    assert lesson.summary_table(reports, _study({lesson.GKT: 40}), ain).splitlines()[2:] == [
        "| retrained (gold) | 99.0 | 0.0 | 1 |",
        "| EMMN (zero-shot) | 10.0 | 2.0 | 0.50 |",
        "| UNSIR (50 real img/class) | 90.0 | 0.0 | |",
        "| GKT, beta=250, T=4, the rule's model | 93.0 | 0.0 | 1.25 (not reached) |",
        "| GKT, beta=250, T=4, final student | 95.0 | 50.0 | 0.38 |",
        "| GKT, beta=250, T=4, forget class masked, final student | 95.0 | 0.0 | 1.00 |",
        "| GKT, beta=250, T=4, entropy < 0.6, final student | 95.0 | 0.0 | |",
    ]


def test_the_recorded_values_are_the_headlines_and_gkt_is_the_rules_model():
    reports = {
        lesson.ORIGINAL: _report(0.99, 0.98),
        lesson.GOLD: _report(0.0, 0.99),
        lesson.EMMN: _report(0.02, 0.1),
        lesson.UNSIR: _report(0.0, 0.9),
    }
    values = lesson.headline_metrics(reports, _study({lesson.GKT: 40}), _ain(reached=False))
    assert set(values) == {h.key for h in lesson.HEADLINES} | {h.reached for h in lesson.HEADLINES if h.reached}
    assert values["gkt_retain_acc"] == pytest.approx(93.0) and values["gkt_final_forget_acc"] == 50.0  # rule's, final
    assert values["gkt_seconds"] == 12.5 and values["unsir_retain_acc"] == pytest.approx(90.0)
    assert values["ain_gkt"] == 1.25 and values["ain_gkt_reached"] is False and values["ain_emmn"] == 0.5
    assert values["ain_gkt_final"] == 0.375 and values["gkt_masked_final_forget_acc"] == 0.0
    assert values["gkt_entropy_retain_acc"] == 95.0 and values["gkt_entropy_final_forget_acc"] == 0.0


def test_emmn_study_reads_its_runs():
    teacher = one_hot_model().eval()
    standin = TensorData(images_called([1, 2, 3] * 6), torch.tensor([1, 2, 3] * 6))
    runs = {
        lesson.EMMN: SimpleNamespace(retain_standin=standin, repair=SimpleNamespace(epoch_loss=[0.5]), cost=None),
        lesson.UNSIR: SimpleNamespace(cost=SimpleNamespace(seconds=3.0)),
    }
    runs[lesson.EMMN].cost = SimpleNamespace(seconds=10.4)
    study = lesson.EMMNStudy(runs, {lesson.EMMN: _report(0.0, 0.1), lesson.UNSIR: _report(0.0, 0.95)})
    assert study.timing() == "EMMN took 10 s, UNSIR 3 s"
    text, grid = study.standin_check(teacher, "cpu")
    with torch.no_grad():
        loss = float(nn.functional.cross_entropy(teacher(standin.X), standin.y))
    assert text.splitlines() == [
        f"the original model's loss on its own error-minimising noise: {loss:.4f}",
        "repair-pass losses (zero-shot): [0.5]",
    ]
    assert len([ax for ax in grid.axes if ax.images]) == 9
    reading = study.reading(_report(0.0, 0.99))
    assert "UNSIR reached **95.0 %**: 85.0 points more than zero-shot EMMN, still 4.0 points below" in reading
    assert study.reading(_report(0.0, 0.955)).endswith("within a point of the retrained model.")


# ----------------------------------------------------------------------------------------------------------
# The notebook's namespace: no reference answer, and no module that holds one


REFERENCES = (
    noise.error_max_objective,
    gkt.gate_mask,
    gkt.attention_loss,
    anamnesis.index_from_curves,
    *(q.reference for q in lesson.LESSON.questions.values()),
)


def _holds_a_reference(obj: object, depth: int = 2) -> bool:
    """Whether ``obj`` is a reference answer, or a module that reaches one within ``depth`` attribute steps."""
    if any(obj is ref for ref in REFERENCES):
        return True
    if depth == 0 or not isinstance(obj, ModuleType) or not obj.__name__.startswith("unlearnlab"):
        return False
    if any(value is lesson.LESSON or isinstance(value, type(lesson.LESSON)) for _, value in inspect.getmembers(obj)):
        return True  # a lesson record holds its questions' references
    return any(_holds_a_reference(value, depth - 1) for _, value in inspect.getmembers(obj))


def imported_objects(source: str) -> dict[str, object]:
    """What each import statement in ``source`` binds, by the name it binds."""
    bound = {}
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                top = alias.name.split(".")[0]
                bound[alias.asname or top] = importlib.import_module(alias.name if alias.asname else top)
        elif isinstance(node, ast.ImportFrom):
            module = importlib.import_module(node.module)
            for alias in node.names:
                value = getattr(module, alias.name, None)
                if value is None:
                    value = importlib.import_module(f"{node.module}.{alias.name}")
                bound[alias.asname or alias.name] = value
    return bound


def _code(path) -> str:
    return "\n".join(cell.source for cell in nbs.read(path).cells if cell.cell_type == "code")


@pytest.mark.parametrize("folder", ["solutions", "exercises"])
def test_the_notebook_imports_no_reference_answer(folder):
    bound = imported_objects(_code(ROOT / folder / "04_zero_shot.ipynb"))
    assert "run_gkt" in bound and "make_probes" in bound  # the study comes from the lesson, by name
    assert not [name for name, obj in bound.items() if _holds_a_reference(obj)]


def test_the_namespace_check_catches_a_method_module_or_the_lesson():
    old_setup = "from unlearnlab.methods import gkt as gkt_lib\nfrom unlearnlab.methods import noise as noise_lib"
    assert sorted(n for n, obj in imported_objects(old_setup).items() if _holds_a_reference(obj)) == [
        "gkt_lib",
        "noise_lib",
    ]
    for source in (
        "from unlearnlab.lessons import zero_shot",
        "import unlearnlab.lessons.zero_shot as lesson",
        "from unlearnlab.methods.anamnesis import index_from_curves as helper",
    ):
        assert any(_holds_a_reference(obj) for obj in imported_objects(source).values()), source
