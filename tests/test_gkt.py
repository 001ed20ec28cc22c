"""Gated Knowledge Transfer (gate, entropy filter, attention transfer, stopping rule) and the anamnesis index."""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import textwrap
import time
from dataclasses import replace
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from unlearnlab.data import TensorData, class_splits
from unlearnlab.methods import gkt as gkt_module
from unlearnlab.methods.anamnesis import RelearnConfig, anamnesis, anamnesis_index, index_from_curves, relearn
from unlearnlab.methods.gkt import (
    CONFIGS,
    Config,
    Generator,
    StoppingRule,
    _generator_step,
    attention_loss,
    attention_map,
    build_networks,
    entropy,
    gate_mask,
    probe_rate,
    record_activations,
    unlearn,
)
from unlearnlab.methods.losses import kd_loss, soft_targets
from unlearnlab.models import build_model


@pytest.fixture(autouse=True)
def own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test saves its GKT runs in a cache of its own: no test resumes another's run."""
    monkeypatch.setenv("UNLEARNLAB_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("UNLEARNLAB_RESUME", raising=False)
    return tmp_path / "cache"


def test_entropy_matches_closed_form():
    probs = torch.tensor([[1.0, 0.0, 0.0], [0.5, 0.5, 0.0], [1 / 3, 1 / 3, 1 / 3]])
    assert torch.allclose(entropy(probs), torch.tensor([0.0, math.log(2), math.log(3)]), atol=1e-6)


def test_gate_drops_forget_probability_at_threshold():
    probs = torch.tensor([[0.005, 0.995, 0.0], [0.01, 0.99, 0.0], [0.9, 0.1, 0.0], [0.0, 0.5, 0.5]])
    assert gate_mask(probs, (0,), 0.01).tolist() == [True, False, False, True]
    # several forget classes: every one of them must be below the threshold
    assert gate_mask(probs, (0, 2), 0.01).tolist() == [True, False, False, False]


def test_entropy_filter_keeps_confident_rows_only():
    probs = torch.tensor([[0.0, 1.0, 0.0], [0.0, 0.5, 0.5], [0.0, 0.9, 0.1]])
    assert gate_mask(probs, (0,), 0.01, max_entropy=0.6).tolist() == [True, False, True]


def test_gate_rejects_bad_input():
    with pytest.raises(ValueError, match="outside"):
        gate_mask(torch.full((2, 10), 0.1), (12,), 0.01)
    with pytest.raises(ValueError, match="batch, classes"):
        gate_mask(torch.full((10,), 0.1), (0,), 0.01)
    with pytest.raises(ValueError, match="empty"):
        gate_mask(torch.full((2, 10), 0.1), (), 0.01)


def test_attention_loss_matches_closed_form():
    gen = torch.Generator().manual_seed(0)
    A_s, A_t = torch.randn(4, 3, 5, 5, generator=gen), torch.randn(4, 3, 5, 5, generator=gen)
    # f(A) = mean over channels of A^2, flattened, divided by its L2 norm
    f_s = (A_s**2).mean(1).reshape(4, -1)
    f_t = (A_t**2).mean(1).reshape(4, -1)
    a_s, a_t = f_s / f_s.norm(dim=1, keepdim=True), f_t / f_t.norm(dim=1, keepdim=True)
    assert torch.allclose(attention_map(A_s), a_s, atol=1e-6)
    expected = ((a_s - a_t) ** 2).mean()
    assert torch.allclose(attention_loss([A_s], [A_t]), expected, atol=1e-7)
    assert torch.allclose(attention_loss([A_s, A_s], [A_t, A_s]), expected, atol=1e-7)
    assert float(attention_loss([A_t], [A_t])) == 0.0


def test_attention_loss_rejects_mismatched_layers():
    A = torch.ones(2, 3, 4, 4)
    with pytest.raises(ValueError, match="same non-zero number"):
        attention_loss([A], [A, A])
    with pytest.raises(ValueError, match="shapes differ"):
        attention_loss([A], [torch.ones(2, 3, 2, 2)])


def kl_teacher_student(student_logits, teacher_logits, temperature=1.0):
    """GKT's divergence, as its module computes it with the package's one KD primitive."""
    return kd_loss(student_logits, soft_targets(teacher_logits, temperature), temperature)


def test_kl_matches_pytorch_batchmean():
    gen = torch.Generator().manual_seed(1)
    s, t = torch.randn(6, 10, generator=gen), torch.randn(6, 10, generator=gen)
    p_t = t.softmax(1)
    manual = (p_t * (p_t.log() - s.log_softmax(1))).sum(1).mean()
    assert torch.allclose(kl_teacher_student(s, t), manual, atol=1e-6)
    assert torch.allclose(kl_teacher_student(s, t), F.kl_div(s.log_softmax(1), p_t, reduction="batchmean"))


def test_kl_at_temperature_matches_closed_form():
    gen = torch.Generator().manual_seed(2)
    s, t = torch.randn(5, 10, generator=gen), torch.randn(5, 10, generator=gen)
    T = 4.0
    p_t, log_p_s = (t / T).softmax(1), (s / T).log_softmax(1)
    manual = T * T * (p_t * (p_t.log() - log_p_s)).sum(1).mean()  # Hinton et al.'s T^2 KL
    assert torch.allclose(kl_teacher_student(s, t, temperature=T), manual, atol=1e-6)
    # two hand-made rows: identical logits give 0; logits (0, log 3) against (0, 0) give KL(0.25, 0.75 || 0.5, 0.5)
    a, b = torch.tensor([[0.0, math.log(3.0)]]), torch.tensor([[0.0, 0.0]])
    assert float(kl_teacher_student(a, a)) == pytest.approx(0.0, abs=1e-7)
    expected = 0.25 * math.log(0.25 / 0.5) + 0.75 * math.log(0.75 / 0.5)
    assert math.isclose(float(kl_teacher_student(b, a)), expected, rel_tol=1e-6)


def test_record_activations_hooks_conv_blocks(small_train: TensorData):
    model = build_model("cnn_bn").eval()
    with record_activations(model, ("bn1", "bn2")) as acts:
        model(small_train.X[:5])
        assert [tuple(a.shape) for a in acts] == [(5, 32, 28, 28), (5, 64, 14, 14)]
    model(small_train.X[:5])  # hooks are removed after the block
    with pytest.raises(ValueError, match="no module 'conv9'"), record_activations(model, ("conv9",)):
        pass


def one_hot_model() -> nn.Module:
    """A linear model that calls an image class k when its pixel k (of the first ten) is the brightest."""
    model = nn.Sequential(nn.Flatten(), nn.Linear(28 * 28, 10, bias=False))
    with torch.no_grad():
        model[1].weight.zero_()
        model[1].weight[:, :10] = torch.eye(10)
    return model


def test_probe_rate_counts_forget_predictions():
    model = one_hot_model().train()
    probes = torch.zeros(10, 1, 28, 28)
    probes.view(10, -1)[torch.arange(10), torch.tensor([0, 0, 0, 3, 4, 5, 6, 7, 8, 9])] = 1.0  # three 0s, one 3
    assert probe_rate(model, probes, (0,)) == 0.3
    assert probe_rate(model, probes, (0, 3)) == 0.4
    assert probe_rate(model, probes, (0, 3), batch_size=3) == 0.4  # batching does not change the count
    assert probe_rate(model, probes, (1,)) == 0.0
    assert model.training  # the model's mode is restored


def test_build_networks_draws_student_and_generator_from_the_seed(small_train: TensorData):
    model = build_model("cnn_bn")
    model(small_train.X[:64])  # train-mode pass: the BN running statistics move away from (0, 1)
    model.eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    config = replace(CONFIGS["quick"], generator_width=8)
    state = torch.get_rng_state()
    nets = build_networks(model, config, torch.device("cpu"), seed=3)
    assert torch.equal(torch.get_rng_state(), state)  # the caller's RNG is untouched
    assert all(torch.equal(model.state_dict()[k], v) for k, v in before.items())  # the teacher is a copy
    torch.manual_seed(3)  # the reference: the student's and then the generator's constructors, from seed 3
    student, generator = build_model("cnn_bn"), Generator(config.z_dim, config.generator_width)
    for name, value in student.state_dict().items():
        assert torch.equal(nets.student.state_dict()[name], value), name  # BN statistics reset to (0, 1) too
    for name, value in generator.state_dict().items():
        assert torch.equal(nets.generator.state_dict()[name], value), name
    assert all(p.requires_grad for p in nets.student.parameters())
    assert not any(p.requires_grad for p in nets.teacher.parameters()) and not nets.teacher.training


def test_stopping_rule_fires_when_the_rate_rises_after_being_low():
    rule = StoppingRule(min_iterations=10, max_rate=0.05)
    rates = [(5, 0.0), (10, 0.5), (15, 0.0), (20, 0.05), (25, 0.2), (30, 0.0)]
    actions = [rule.observe(i, r) for i, r in rates]
    # before min_iterations: ignored; 0.5 at 10 was never preceded by a low rate: a poor student, not a leak
    assert actions == ["continue", "continue", "snapshot", "snapshot", "stop", "continue"]
    assert (rule.snapshot_iteration, rule.stop_iteration) == (20, 25)
    never = StoppingRule(min_iterations=0, max_rate=0.05)
    assert [never.observe(i, r) for i, r in [(1, 0.3), (2, 0.4)]] == ["continue", "continue"]
    assert never.stop_iteration is None and never.snapshot_iteration is None


def test_gate_also_guards_the_generator():
    """A teacher that calls every image the forget class: the gate keeps nothing, so the generator gets no KL
    to climb and (without the BN prior) does not move."""
    teacher = nn.Sequential(nn.Flatten(), nn.Linear(28 * 28, 10)).eval()
    with torch.no_grad():
        teacher[1].weight.zero_()
        teacher[1].bias.copy_(torch.tensor([10.0] + [0.0] * 9))  # p(class 0) ~ 1 for any input
    student = nn.Sequential(nn.Flatten(), nn.Linear(28 * 28, 10))
    generator = Generator(z_dim=8, width=8).train()
    before = {k: v.detach().clone() for k, v in generator.named_parameters()}
    opt = torch.optim.Adam(generator.parameters(), lr=0.1)
    z = torch.randn(16, 8, generator=torch.Generator().manual_seed(0))
    loss = _generator_step(generator, teacher, student, z, opt, (0,), Config(), None)
    assert loss == 0.0
    assert all(torch.equal(p, before[k]) for k, p in generator.named_parameters())
    # the same teacher with the forget class set to 5: every image passes, the generator takes a step
    loss = _generator_step(generator, teacher, student, z, opt, (5,), Config(), None)
    assert loss < 0.0
    assert not torch.equal(generator.fc.weight, before["fc.weight"])


def test_generator_shape_and_standardised_pixels():
    generator = Generator(z_dim=8, width=16).train()
    X = generator.sample(6, torch.Generator().manual_seed(0))
    assert X.shape == (6, 1, 28, 28)
    # the last BatchNorm has no affine parameters: in train mode the batch's pixels have mean 0 and variance 1
    assert abs(float(X.detach().mean())) < 1e-5 and math.isclose(
        float(X.detach().var(unbiased=False)), 1.0, rel_tol=1e-3
    )
    assert generator.fc.out_features == 16 * 7 * 7 and generator.body[2].out_channels == 8


def test_gkt_smoke(small_train: TensorData):
    teacher = build_model("cnn_bn").eval()
    splits = class_splits((0,), train=small_train, test=small_train)
    config = replace(
        CONFIGS["quick"],
        num_iterations=4,
        batch_size=8,
        student_steps=2,
        generator_width=8,
        bn_weight=1.0,  # the generator prior
        temperature=2.0,
        gate_threshold=0.5,  # a random teacher gives every class about 0.1: the gate keeps all
        check_every=2,
        min_iterations=2,
        max_probe_rate=1.0,  # every rate is low: the rule never fires
    )
    calls = []
    probes = small_train.X[:10]
    result = unlearn(
        teacher, splits, config, probes=probes, monitor=lambda m: calls.append(1) or {"x": 1.0}, device="cpu"
    )
    checkpoints = result.checkpoints
    assert [c.iteration for c in checkpoints] == [2, 4] and len(calls) == 2
    assert checkpoints[0].metrics == {"x": 1.0}
    assert result.stop_iteration is None and result.snapshot_iteration is None
    assert result.model is result.final_model  # the rule never fired: the final student
    # the last checkpoint measured the final student: its share of probes whose argmax is class 0
    with torch.no_grad():
        expected = int((result.final_model(probes).argmax(1) == 0).sum()) / len(probes)
    assert checkpoints[-1].probe_rate == expected
    assert set(result.phase_seconds) == {
        "generator step",
        "draw and label",
        "student steps",
        "probes",
        "monitor (evaluation)",
    }
    assert result.cost.seconds > 0 and result.kept_fraction == 1.0
    assert [c.kept_fraction for c in checkpoints] == [1.0, 1.0]
    assert len(result.history.step_loss) == 4 * 2  # every pseudo-batch passed the gate: two student steps each
    no_class = replace(splits, forget_classes=())
    with pytest.raises(ValueError, match="forget_classes is empty"):
        unlearn(teacher, no_class, config)
    with pytest.raises(ValueError, match="temperature"):
        unlearn(teacher, splits, replace(config, temperature=0.0))
    with pytest.raises(ValueError, match="stop_at"):
        unlearn(teacher, splits, replace(config, stop_at=config.num_iterations + 1))


def test_stop_at_cuts_the_run_while_the_rates_anneal_over_the_plan(small_train: TensorData):
    splits = class_splits((0,), train=small_train, test=small_train)
    teacher = build_model("cnn_bn").eval()
    config = replace(CONFIGS["quick"], num_iterations=8, stop_at=3, batch_size=8, student_steps=1, generator_width=8)
    config = replace(config, gate_threshold=0.5, check_every=2)
    result = unlearn(teacher, splits, config, probes=small_train.X[:4])
    assert [c.iteration for c in result.checkpoints] == [2, 3]  # a checkpoint at the cut
    assert len(result.history.step_loss) == 3


def test_mask_forget_gives_the_forget_classes_no_mass_in_the_students_targets(monkeypatch: pytest.MonkeyPatch):
    seen = []
    monkeypatch.setattr(gkt_module, "kd_loss", lambda logits, targets, T: seen.append(targets) or logits.sum() * 0)
    student = nn.Sequential(nn.Flatten(), nn.Linear(4, 3))
    opt = torch.optim.SGD(student.parameters(), lr=0.1)
    X, logits = torch.randn(2, 1, 2, 2), torch.tensor([[2.0, 1.0, 0.0], [0.0, 0.0, 3.0]])
    for mask in (False, True):
        config = replace(CONFIGS["quick"], beta=0.0, temperature=2.0, mask_forget=mask)
        gkt_module._student_step(student, X, logits, [], [], opt, (0,), config)
    assert torch.allclose(seen[0], torch.softmax(logits / 2.0, dim=1))
    assert (seen[1][:, 0] == 0).all() and torch.allclose(seen[1][:, 1:], torch.softmax(logits[:, 1:] / 2.0, dim=1))


def test_gkt_returns_the_snapshot_when_the_rule_fires(small_train: TensorData, monkeypatch: pytest.MonkeyPatch):
    teacher = build_model("cnn_bn").eval()
    splits = class_splits((0,), train=small_train, test=small_train)
    config = replace(
        CONFIGS["quick"],
        num_iterations=6,
        batch_size=8,
        student_steps=1,
        generator_width=8,
        gate_threshold=0.5,
        check_every=1,
    )
    rates = iter([0.9, 0.0, 0.0, 0.5, 0.0, 0.0])  # high (a fresh student), low, low, then the class comes back
    monkeypatch.setattr(gkt_module, "probe_rate", lambda *args, **kwargs: next(rates))
    config = replace(config, min_iterations=1)
    result = unlearn(teacher, splits, config, probes=small_train.X[:4])
    assert result.stop_iteration == 4 and result.snapshot_iteration == 3
    assert [c.iteration for c in result.checkpoints] == [1, 2, 3, 4]  # stopped at the rule
    assert result.model is not result.final_model
    assert not torch.equal(result.model.conv1.weight, result.final_model.conv1.weight)
    assert not result.model._forward_hooks and not result.model.bn1._forward_hooks  # a clean model

    rates = iter([0.9, 0.0, 0.0, 0.5, 0.0, 0.0])
    monkeypatch.setattr(gkt_module, "probe_rate", lambda *args, **kwargs: next(rates))
    to_end = unlearn(teacher, splits, replace(config, run_to_end=True), probes=small_train.X[:4])
    assert to_end.stop_iteration == 4 and len(to_end.checkpoints) == 6


def test_index_from_curves_and_anamnesis_index():
    assert index_from_curves([0.0, 0.96, 0.5, 0.99], [0.0, 0.2, 0.3, 0.96], 0.95) == 1 / 3
    with pytest.raises(ValueError, match="never reaches"):
        index_from_curves([0.0, 0.2], [0.0, 0.96], 0.95)
    assert anamnesis_index(10, 40) == 0.25
    with pytest.raises(ValueError, match="undefined"):
        anamnesis_index(3, 0)
    with pytest.raises(ValueError, match="negative"):
        anamnesis_index(-1, 3)


def test_relearn_counts_steps(small_train: TensorData):
    model = build_model("cnn_bn")
    config = RelearnConfig(max_steps=3, batch_size=16, lr=1e-2)
    result = relearn(model, small_train, small_train.subset(small_train.y == 0), target=2.0, config=config)
    assert result.steps == 3 and not result.reached and len(result.curve) == 4
    easy = relearn(model, small_train, small_train.subset(small_train.y == 0), target=0.0, config=config)
    assert easy.steps == 0 and easy.reached
    rows, gold = anamnesis({"same": model}, model, 1.0, small_train, small_train.subset(small_train.y == 0), config)
    assert rows["same"].relearn.steps == gold.steps == 3 and rows["same"].ain == 1.0


def test_a_run_resumes_from_the_state_before_a_lost_one_and_its_bar_starts_there(small_train, monkeypatch):
    teacher = build_model("cnn_bn").eval()
    splits = class_splits((0,), train=small_train, test=small_train)
    config = replace(
        CONFIGS["quick"], num_iterations=4, batch_size=8, student_steps=1, generator_width=8, check_every=2
    )
    config = replace(config, gate_threshold=0.5)
    first = unlearn(teacher, splits, config)
    saved = gkt_module.saved_run(teacher, config, (0,), 0, None, None, torch.device("cpu"))
    saved.path.unlink()  # the finished state is lost: the one before it stopped at pseudo-batch 2
    bars, real = [], gkt_module.progress
    monkeypatch.setattr(gkt_module, "progress", lambda *args, **kwargs: bars.append(real(*args, **kwargs)) or bars[-1])
    monkeypatch.setenv("TQDM_DISABLE", "0")
    again = unlearn(teacher, splits, config)
    assert (bars[0].initial, bars[0].n, bars[0].total) == (2, 4, 4)  # the time left is counted from pseudo-batch 2
    assert again.history.step_loss == first.history.step_loss and again.checkpoints == first.checkpoints
    pairs = zip(first.final_model.state_dict().values(), again.final_model.state_dict().values())
    assert all(torch.equal(x, y) for x, y in pairs)
    assert saved.load()["run"]["finished"] and saved.path.is_file()


def test_a_cache_that_cannot_be_written_runs_without_saving(small_train, tmp_path, monkeypatch):
    (tmp_path / "file").write_text("not a folder")
    monkeypatch.setenv("UNLEARNLAB_CACHE", str(tmp_path / "file" / "cache"))  # as read-only as a folder gets for root
    splits = class_splits((0,), train=small_train, test=small_train)
    config = replace(CONFIGS["quick"], num_iterations=2, batch_size=8, student_steps=1, generator_width=8)
    result = unlearn(build_model("cnn_bn").eval(), splits, replace(config, gate_threshold=0.5, check_every=1))
    assert [c.iteration for c in result.checkpoints] == [1, 2]


# A tiny GKT run in its own process: a seeded random teacher, random probes, a monitor that records what it saw and
# sleeps, so that the run outlives its first checkpoint. It runs twice (the second call must return the saved result
# at once) and saves the first result, the monitor's calls and the second result's iterations to argv[1].
RUN = """
import sys, time, torch
torch.set_num_threads(1)
from dataclasses import replace
from unlearnlab.data import TensorData, class_splits
from unlearnlab.methods.gkt import CONFIGS, unlearn
from unlearnlab.models import build_model

torch.manual_seed(0)
teacher = build_model("cnn_bn").eval()
data = TensorData(torch.randn(20, 1, 28, 28), torch.arange(20) % 10)
splits = class_splits((0,), train=data, test=data)
config = replace(CONFIGS["quick"], num_iterations=24, batch_size=16, student_steps=2, generator_width=8,
                 gate_threshold=0.5, check_every=2, min_iterations=2, max_probe_rate=0.5)
calls = []

def monitor(student):
    calls.append(1)
    time.sleep(0.05)
    return {"sum": float(sum(p.double().sum() for p in student.parameters()))}

probes = torch.randn(8, 1, 28, 28)
result = unlearn(teacher, splits, config, seed=3, probes=probes, monitor=monitor)
done = len(calls)
again = unlearn(teacher, splits, config, seed=3, probes=probes, monitor=monitor)  # finished: its saved result
same = all(torch.equal(x, y) for x, y in zip(again.final_model.state_dict().values(),
                                             result.final_model.state_dict().values()))
torch.save({"student": result.final_model.state_dict(), "model": result.model.state_dict(),
            "generator": result.generator.state_dict(), "records": [vars(c) for c in result.checkpoints],
            "losses": result.history.step_loss, "stop": result.stop_iteration, "kept": result.kept_fraction,
            "calls": done, "again": (len(calls) - done, same, again.checkpoints == result.checkpoints)}, sys.argv[1])
"""


def _run_gkt(script: Path, out: Path, cache: Path, **env: str) -> subprocess.Popen:
    env = {**os.environ, "UNLEARNLAB_CACHE": str(cache), "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore", **env}
    return subprocess.Popen([sys.executable, str(script), str(out)], env=env)


def test_a_killed_run_resumes_from_its_checkpoint_and_ends_bit_identical(tmp_path: Path):
    script = tmp_path / "run.py"
    script.write_text(textwrap.dedent(RUN))
    whole = _run_gkt(script, tmp_path / "whole.pt", tmp_path / "whole-cache", UNLEARNLAB_RESUME="0")
    cache = tmp_path / "cache"
    killed = _run_gkt(script, tmp_path / "killed.pt", cache)
    saved = cache / "checkpoints" / "gkt"
    deadline = time.monotonic() + 120
    while not any(saved.glob("*.pt")) and killed.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert killed.poll() is None, "the run ended before its first checkpoint could be interrupted"
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    assert not (tmp_path / "killed.pt").exists()
    resumed = _run_gkt(script, tmp_path / "resumed.pt", cache)
    assert whole.wait(timeout=120) == 0 and resumed.wait(timeout=120) == 0

    a, b = (torch.load(tmp_path / name, weights_only=True) for name in ("whole.pt", "resumed.pt"))
    assert a["calls"] == 12 and 0 < b["calls"] < 12  # the resumed run measured only the checkpoints left
    for part in ("student", "model", "generator"):
        assert a[part].keys() == b[part].keys()
        assert all(torch.equal(a[part][k], b[part][k]) for k in a[part]), part
    for part in ("records", "losses", "stop", "kept"):
        assert a[part] == b[part], part
    assert b["again"] == (0, True, True)  # a finished run returns its saved result without training
    assert a["again"] == (12, True, True)  # with UNLEARNLAB_RESUME=0 it trains again, to the same result
