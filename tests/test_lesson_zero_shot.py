"""Lesson 04's study on tiny data: the probes, the GKT runs and their figure, the texts and the recorded values, and
a notebook namespace that holds no reference answer."""

from __future__ import annotations

import ast
import importlib
import inspect
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


def test_gkt_variants_change_one_knob_each():
    profile = SimpleNamespace(name="quick")
    variants = lesson.gkt_variants(profile)
    base = replace(gkt.CONFIGS["quick"], run_to_end=True)
    assert variants == {
        lesson.GKT: base,
        lesson.GKT_ENTROPY: replace(base, max_entropy=0.6),
        lesson.GKT_BETA0: replace(base, beta=0.0),
        lesson.GKT_LEAKY: replace(base, gate_threshold=0.5, run_to_end=False),
    }


def test_run_gkt_evaluates_each_student_and_the_rules_model(small_train, mnist_test, monkeypatch):
    monkeypatch.setitem(gkt.CONFIGS, "tiny", TINY_GKT)
    # low at the first checkpoint, then the class comes back; beta = 0 (third) is never low, so its rule never fires
    rates = iter([0.0, 0.5, 0.0, 0.5, 0.5, 0.5, 0.0, 0.5])
    monkeypatch.setattr(gkt, "probe_rate", lambda *args, **kwargs: next(rates))
    test = mnist_test.subset(slice(0, 600))
    splits = class_splits((0,), train=small_train, test=test)
    teacher = build_model("cnn_bn").eval()
    study = lesson.run_gkt(teacher, splits, SimpleNamespace(name="tiny"), small_train.X[:4], device="cpu", seed=0)
    assert list(study.runs) == [lesson.GKT, lesson.GKT_ENTROPY, lesson.GKT_BETA0, lesson.GKT_LEAKY]
    for name, run in study.runs.items():
        assert study.final[name] == unlearning_report(run.final_model, test, (0,), device="cpu")
        assert study.chosen[name] == unlearning_report(run.model, test, (0,), device="cpu")  # the rule's model
        assert all(set(c.metrics) == {"forget", "retain"} for c in run.checkpoints)  # the monitor watched
    fired = [name for name, run in study.runs.items() if run.model is not run.final_model]
    assert fired == [lesson.GKT, lesson.GKT_ENTROPY, lesson.GKT_LEAKY]
    assert study.chosen[lesson.GKT_BETA0] is study.final[lesson.GKT_BETA0]  # no rule fired: nothing new to evaluate
    log = study.log().splitlines()
    assert log[0].startswith(f"{lesson.GKT}: ") and "the rule fired at pseudo-batch 2 (snapshot from 1)" in log[0]
    assert "the rule did not fire" in log[4] and log[5].startswith("    time per phase: generator step ")
    table = study.rule_table({lesson.ORIGINAL: _report(1, 1), lesson.GOLD: _report(0, 1)})
    assert list(table) == [lesson.ORIGINAL, lesson.GOLD, *(f"{name}, rule's model" for name in study.runs)]

    fig = study.plot()
    retain, forget, rate = fig.axes
    assert [line.get_label() for line in retain.get_lines() if not line.get_label().startswith("_")] == list(study.runs)
    first = study.runs[lesson.GKT].checkpoints
    assert list(retain.get_lines()[0].get_ydata()) == [100 * c.metrics["retain"] for c in first]
    assert list(forget.get_lines()[0].get_ydata()) == [100 * c.metrics["forget"] for c in first]
    assert list(rate.get_lines()[0].get_ydata()) == [0.0, 50.0]
    assert any(list(line.get_xdata()) == [2, 2] for line in retain.get_lines())  # where a rule fired
    assert list(rate.get_lines()[-1].get_ydata()) == [100 * TINY_GKT.max_probe_rate] * 2  # the rule's limit
    with pytest.raises(ValueError, match="no monitor metrics"):
        lesson.plot_runs({"bare": replace(study.runs[lesson.GKT_LEAKY], checkpoints=[gkt.Checkpoint(1, 0.0, 1.0)])})


def _study(stopped: bool) -> lesson.GKTStudy:
    """A GKTStudy made by hand: plain GKT retain 95 % / forget 0 %, its rule's model retain 93 %."""
    names = [lesson.GKT, lesson.GKT_ENTROPY, lesson.GKT_BETA0, lesson.GKT_LEAKY]
    final = dict(zip(names, [_report(0.0, 0.95), _report(0.0, 0.96), _report(0.0, 0.94), _report(0.3, 0.9)]))
    chosen = final | {lesson.GKT: _report(0.0, 0.93), lesson.GKT_LEAKY: _report(0.01, 0.88)}
    runs = {
        name: SimpleNamespace(kept_fraction=kept, stop_iteration=None, snapshot_iteration=None)
        for name, kept in zip(names, [0.8, 0.4, 0.8, 0.9])
    }
    runs[lesson.GKT].cost = SimpleNamespace(seconds=12.5)
    if stopped:
        runs[lesson.GKT_LEAKY] = SimpleNamespace(kept_fraction=0.9, stop_iteration=40, snapshot_iteration=30)
    return lesson.GKTStudy(lesson.gkt_variants(SimpleNamespace(name="quick")), runs, final, chosen)


def test_gkt_reading_quotes_the_runs():
    gold = _report(0.0, 0.99)
    text = _study(stopped=True).reading(gold, SimpleNamespace(name="quick")).splitlines()
    assert text[0] == (
        "- **Plain GKT** ended at **95.0 %** retain and **0.0 %** forget accuracy, against 99.0 % and 0.0 % for the "
        "retrained model, without a single real image."
    )
    assert "kept 40 % of the pseudo-images, against 80 % for the gate alone" in text[1]
    assert "96.0 % retain accuracy (+1.0 points against plain GKT" in text[1]
    assert text[2].endswith("0.0 % with β = 250, 0.0 % with β = 0: no leak at this scale.")
    assert text[3] == (
        "- **Gate opened to 0.5**: when the rule fired, at pseudo-batch 40, the student called 30.0 % of the real 0s "
        "a 0; the rule returned the snapshot from pseudo-batch 30, whose forget accuracy is 1.0 % (retain 88.0 %)."
    )
    assert "This run had 60 pseudo-batches of 64 images" in text[4] and "not shown here" in text[4]
    unstopped = _study(stopped=False).reading(gold, SimpleNamespace(name="full")).splitlines()
    assert "the rule did not fire: its probes did not show the leak" in unstopped[3]
    assert unstopped[4].endswith("Compare the two forget curves above: the leak, if any, shows there.")


def _ain(reached: bool) -> lesson.AnamnesisStudy:
    def row(ain: float, steps: int, ok: bool = True) -> anamnesis.AnamnesisRow:
        return anamnesis.AnamnesisRow(ain, anamnesis.RelearnResult(steps, ok))

    rows = {
        lesson.AIN_ORIGINAL: row(0.25, 2),
        lesson.EMMN: row(0.5, 4),
        lesson.AIN_GKT: row(1.25, 10, reached),
        lesson.GKT_BETA0: row(1.0, 8),
    }
    return lesson.AnamnesisStudy(rows, anamnesis.RelearnResult(8, True))


def test_the_anamnesis_text_and_the_summary_table():
    ain = _ain(reached=False)
    assert str(ain).splitlines() == [
        f"{'original (no unlearning)':38s} relearned in   2 steps: AIN 0.25",
        f"{'EMMN (zero-shot)':38s} relearned in   4 steps: AIN 0.50",
        f"{lesson.AIN_GKT:38s} relearned in  10 steps (not reached): AIN 1.25",
        f"{lesson.GKT_BETA0:38s} relearned in   8 steps: AIN 1.00",
        f"{'retrained (gold)':38s} relearned in   8 steps",
    ]
    reports = {lesson.GOLD: _report(0.0, 0.99), lesson.EMMN: _report(0.02, 0.1), lesson.UNSIR: _report(0.0, 0.9)}
    assert lesson.summary_table(reports, _study(stopped=True), ain).splitlines()[2:] == [
        "| retrained (gold) | 99.0 | 0.0 | 1 |",
        "| EMMN (zero-shot) | 10.0 | 2.0 | 0.50 |",
        "| UNSIR (50 real img/class) | 90.0 | 0.0 | |",
        "| GKT (β = 250), rule's model | 93.0 | 0.0 | 1.25 (not reached) |",
    ]


def test_the_recorded_values_are_the_headlines_and_gkt_is_the_rules_model():
    reports = {
        lesson.ORIGINAL: _report(0.99, 0.98),
        lesson.GOLD: _report(0.0, 0.99),
        lesson.EMMN: _report(0.02, 0.1),
        lesson.UNSIR: _report(0.0, 0.9),
    }
    values = lesson.headline_metrics(reports, _study(stopped=True), _ain(reached=False))
    assert set(values) == {h.key for h in lesson.HEADLINES} | {h.reached for h in lesson.HEADLINES if h.reached}
    assert values["gkt_retain_acc"] == pytest.approx(93.0) and values["gkt_final_forget_acc"] == 0.0  # rule's, final
    assert values["gkt_seconds"] == 12.5 and values["unsir_retain_acc"] == pytest.approx(90.0)
    assert values["ain_gkt"] == 1.25 and values["ain_gkt_reached"] is False and values["ain_emmn"] == 0.5


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
    anamnesis.steps_to_reach,
    anamnesis.anamnesis_index,
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
        "from unlearnlab.methods.anamnesis import steps_to_reach as helper",
    ):
        assert any(_holds_a_reference(obj) for obj in imported_objects(source).values()), source
