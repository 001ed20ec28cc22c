"""Amnesiac and partial amnesiac unlearning: the ledger, top-k compression, the undo, partial updates (the lesson's
studies are tested in test_lesson_amnesiac.py)."""

import pytest
import torch
from torch import nn

from unlearnlab.data import TensorData
from unlearnlab.methods import amnesiac as A
from unlearnlab.methods import ledger as L
from unlearnlab.training import fit


def test_kept_count_rounds_and_keeps_at_least_one_entry():
    assert [A.kept_count(50, f) for f in (0.0, 0.001, 0.1, 0.33, 1.0)] == [0, 1, 5, 16, 50]
    with pytest.raises(ValueError, match="fraction"):
        A.kept_count(10, 1.5)


def test_top_k_update_keeps_the_largest_magnitudes_exactly():
    update = torch.tensor([[0.5, -3.0, 1.0], [2.0, -0.1, 0.0]])
    kept = A.top_k_update(update, 0.5)  # round(0.5 * 6) = 3 entries: -3, 2, 1
    assert torch.equal(kept, torch.tensor([[0.0, -3.0, 1.0], [2.0, 0.0, 0.0]]))
    assert torch.equal(update, torch.tensor([[0.5, -3.0, 1.0], [2.0, -0.1, 0.0]]))  # input untouched


def test_compress_stores_float16_values_at_int32_indices_and_counts_its_bytes():
    update = torch.tensor([[0.1, -3.0, 1.0], [2.0, -0.2, 0.0]])
    c = A.compress(update, 0.5)
    assert c.indices.tolist() == [1, 2, 3] and c.indices.dtype == torch.int32
    assert c.values.dtype == torch.float16 and c.values.tolist() == [-3.0, 1.0, 2.0]
    assert c.nbytes == 3 * 2 + 3 * 4 == 18
    assert torch.equal(c.dense(), torch.tensor([[0.0, -3.0, 1.0], [2.0, 0.0, 0.0]]))
    assert A.compress(torch.tensor([0.1]), 1.0).dense().item() == 0.0999755859375  # float16 rounding of 0.1


def test_decode_reads_unsorted_flat_indices_row_major_into_a_new_float32_tensor():
    values, indices = torch.tensor([0.5, -3.0], dtype=torch.float16), torch.tensor([7, 1], dtype=torch.int32)
    dense = A.decode(values, indices, (2, 2, 2))
    assert dense.dtype == torch.float32 and dense.shape == (2, 2, 2)
    assert dense.flatten().tolist() == [0.0, -3.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.5]
    assert values.dtype == torch.float16 and indices.dtype == torch.int32  # inputs untouched
    assert torch.equal(A.decode(values[:0], indices[:0], [3]), torch.zeros(3))  # nothing kept: zeros


def test_decode_inverts_compress_up_to_float16_rounding():
    update = torch.randn(4, 3, 3, generator=torch.Generator().manual_seed(0))
    c = A.compress(update, 0.25)
    assert torch.equal(A.decode(c.values, c.indices, c.shape), c.dense())
    torch.testing.assert_close(c.dense(), A.top_k_update(update, 0.25), rtol=1e-3, atol=1e-3)


def test_subtract_updates_leaves_its_inputs_and_unnamed_entries_alone():
    state = {"w": torch.tensor([1.0, 2.0]), "running_mean": torch.tensor([5.0])}
    updates = [{"w": torch.tensor([0.5, -1.0])}, {"w": torch.tensor([0.25, 0.0])}]
    out = A.subtract_updates(state, updates)
    assert torch.equal(out["w"], torch.tensor([0.25, 3.0])) and torch.equal(out["running_mean"], torch.tensor([5.0]))
    assert torch.equal(state["w"], torch.tensor([1.0, 2.0]))
    with pytest.raises(KeyError, match="bias"):
        A.subtract_updates(state, [{"bias": torch.zeros(1)}])


def _tiny_batches():
    gen = torch.Generator().manual_seed(0)
    return [(torch.randn(4, 3, generator=gen), torch.randint(0, 2, (4,), generator=gen)) for _ in range(3)]


def test_recorder_stores_minus_lr_times_the_gradient_for_plain_sgd():
    torch.manual_seed(0)
    model = nn.Linear(3, 2)
    start = {n: p.detach().clone() for n, p in model.named_parameters()}
    batches = _tiny_batches()
    recorder = L.LedgerRecorder(model, lambda step: step in (0, 2))
    fit(model, batches, optimizer=torch.optim.SGD(model.parameters(), lr=0.5), device="cpu", on_step=recorder)
    ledger = recorder.ledger
    assert ledger.steps == [0, 2] and ledger.total_steps == 3
    reference = nn.Linear(3, 2)
    reference.load_state_dict(start)
    nn.functional.cross_entropy(reference(batches[0][0]), batches[0][1]).backward()
    for name, p in reference.named_parameters():
        torch.testing.assert_close(ledger.updates[0][name], -0.5 * p.grad, rtol=0, atol=1e-7)
    assert ledger.nbytes == 2 * (3 * 2 + 2) * 4 == 64  # two steps of 8 float32 parameters
    assert ledger.bytes_per_step() == 32


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_undoing_every_step_of_a_run_on_forget_batches_only_returns_the_initial_weights(optimizer):
    torch.manual_seed(0)
    model = nn.Linear(3, 2)
    start = {n: p.detach().clone() for n, p in model.named_parameters()}
    setup = L.LedgerSetup(optimizer=optimizer, lr=0.5)
    recorder = L.LedgerRecorder(model, lambda step: True)  # every batch holds a forget sample
    fit(model, _tiny_batches() * 2, optimizer=L.make_optimizer(model, setup), device="cpu", on_step=recorder)
    undone = A.undo(model, recorder.ledger.updates)
    assert not torch.equal(model.weight, start["weight"])
    for name, p in undone.named_parameters():  # exact up to float32 rounding of the differences
        torch.testing.assert_close(p.detach(), start[name], rtol=0, atol=1e-6)


def test_ledger_saves_atomically_and_loads_back(tmp_path):
    ledger = L.Ledger([1, 4], [{"w": torch.ones(2)}, {"w": torch.tensor([0.5, -1.0])}], 6)
    path = tmp_path / "sub" / "ledger.pt"
    ledger.save(path)
    assert [p.name for p in path.parent.iterdir()] == ["ledger.pt"]  # no temporary file left behind
    back = L.Ledger.load(path)
    assert back.steps == [1, 4] and back.total_steps == 6 and back.nbytes == 16
    assert torch.equal(back.updates[1]["w"], torch.tensor([0.5, -1.0]))


def _data(n: int, label: int) -> TensorData:
    return TensorData(torch.arange(n, dtype=torch.float32).view(n, 1, 1, 1) + 100 * label, torch.full((n,), label))


def test_loader_deals_the_forget_images_into_the_chosen_share_of_batches():
    retain, forget = _data(90, 0), _data(10, 6)
    loader = L.LedgerLoader(retain, forget, batch_size=10, affected_share=0.2, seed=0)
    batches = list(loader)
    assert len(loader) == 10 and [len(y) for _, y in batches] == [10] * 10
    assert sum(loader.has_forget) == 2 and [int((y == 6).sum()) for _, y in batches if (y == 6).any()] == [5, 5]
    assert sorted(torch.cat([X for X, _ in batches]).flatten().tolist()) == sorted(
        torch.cat([retain.X, forget.X]).flatten().tolist()
    )
    dropped = list(L.LedgerLoader(retain, forget, 10, 0.2, seed=0, drop_forget=True))
    assert all(torch.equal(b[0], a[0][a[1] != 6]) for a, b in zip(batches, dropped))


def test_partial_update_adds_the_top_k_of_the_change_per_layer():
    torch.manual_seed(0)
    original, changed = nn.Linear(4, 2), nn.Linear(4, 2)
    mixed = A.partial_update(original, changed, 0.25)
    diff = changed.weight.detach() - original.weight.detach()
    torch.testing.assert_close(mixed.weight, original.weight + A.top_k_update(diff, 0.25), rtol=0, atol=0)
    torch.testing.assert_close(mixed.bias, original.bias + A.top_k_update(changed.bias - original.bias, 0.25))
    only_bias = A.partial_update(original, changed, 1.0, layers=["bias"])
    assert torch.equal(only_bias.weight, original.weight) and torch.equal(only_bias.bias, changed.bias)


def test_partial_ledger_bytes_and_layers():
    ledger = L.Ledger([0, 1], [{"a.weight": torch.randn(10, 10), "b.bias": torch.randn(4)}] * 2, 2)
    partial = A.partial_ledger(ledger, 0.1)  # per step: 10 of 100 and 1 of 4 entries, 6 bytes each
    assert partial.nbytes == 2 * (10 + 1) * 6 == 132 and ledger.nbytes == 2 * 104 * 4
    assert set(A.partial_ledger(ledger, 0.1, layers=["b."]).updates[0]) == {"b.bias"}
    with pytest.raises(ValueError, match="no recorded parameter"):
        A.partial_ledger(ledger, 0.1, layers=["fc9"])


TINY_SETUP = L.LedgerSetup(model="mlp", others=600, forget_size=40, num_epochs=1, batch_size=32)


@pytest.fixture(scope="module")
def tiny_run():
    return L.train_with_ledger(TINY_SETUP, "cpu")


def test_ledger_run_trains_once_then_loads_the_same_run(tmp_path, monkeypatch):
    monkeypatch.setenv("UNLEARNLAB_CACHE", str(tmp_path))
    first = L.ledger_run(TINY_SETUP, "cpu")
    assert [p.name for p in (tmp_path / "amnesiac").glob("*.pt")] == [f"mlp-{TINY_SETUP.key()}.pt"]

    def no_training(*args, **kwargs):
        raise AssertionError("should have been loaded from the cache")

    monkeypatch.setattr(L, "train_with_ledger", no_training)
    again = L.ledger_run(TINY_SETUP, "cpu")
    for model in ("model", "retrained"):
        before, after = getattr(first, model).state_dict(), getattr(again, model).state_dict()
        assert all(torch.equal(before[k], after[k]) for k in before)
    assert again.ledger.steps == first.ledger.steps and again.ledger.total_steps == first.ledger.total_steps
    for a, b in zip(first.ledger.updates, again.ledger.updates, strict=True):
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert (again.seconds, again.retrain_seconds) == (first.seconds, first.retrain_seconds)


def test_tiny_run_records_only_batches_with_forget_images_and_the_unlearn_contract(tiny_run):
    ledger = tiny_run.ledger
    n = len(tiny_run.data.splits.retain) + len(tiny_run.data.splits.forget)
    assert n == 641 and ledger.total_steps == 21 and len(ledger.steps) == 3  # ceil(641 / 32), ceil(0.1 * 21)
    before = {k: v.clone() for k, v in tiny_run.model.state_dict().items()}
    result = A.unlearn(tiny_run.model, tiny_run.data.splits, A.Config(fraction=1.0), ledger=ledger, device="cpu")
    assert all(torch.equal(v, tiny_run.model.state_dict()[k]) for k, v in before.items())  # input untouched
    assert result.cost.stored_bytes == ledger.nbytes == 3 * 535_818 * 4  # 3 steps of the MLP's float32 weights
    partial = A.unlearn(tiny_run.model, tiny_run.data.splits, "quick", ledger=ledger, device="cpu")
    assert partial.cost.stored_bytes == A.partial_ledger(ledger, 0.1).nbytes and partial.fraction == 0.1
