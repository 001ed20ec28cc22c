"""Global magnitude pruning, prune-then-fine-tune and the l1-sparse fine-tune, against hand computations and torch."""

import copy
import math

import pytest
import torch
from torch import nn
from torch.nn.utils import prune

from unlearnlab.data import random_splits
from unlearnlab.methods import l1_sparse as L
from unlearnlab.methods import pruning as P
from unlearnlab.models import build_model


def _tiny() -> nn.Module:
    """A Conv2d(1, 1, 2) with small weights and a Linear(4, 1) with mostly large ones: 8 weights in all."""
    model = nn.Sequential(nn.Conv2d(1, 1, 2), nn.Flatten(), nn.Linear(4, 1))
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([0.1, -0.2, 0.3, 0.05]).view(1, 1, 2, 2))
        model[2].weight.copy_(torch.tensor([[1.0, -2.0, 0.5, -0.01]]))
        model[0].bias.fill_(0.001)
        model[2].bias.fill_(-0.002)
    return model


def _same_state(a: nn.Module, b: nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_global_pruning_keeps_the_largest_weights_over_all_layers_by_hand():
    model = _tiny()
    before = copy.deepcopy(model)
    pruned = P.global_magnitude_prune(model, 0.5)
    # the 4 smallest |w| of all 8 are 0.01, 0.05, 0.1, 0.2: three of them in the conv layer. Per-layer pruning
    # would have kept two conv weights; the global ranking keeps only 0.3 there.
    assert pruned[0].weight.flatten().tolist() == pytest.approx([0.0, 0.0, 0.3, 0.0])
    assert pruned[2].weight.flatten().tolist() == pytest.approx([1.0, -2.0, 0.5, 0.0])
    assert pruned[0].bias.item() == pytest.approx(0.001) and pruned[2].bias.item() == pytest.approx(-0.002)
    assert P.sparsity(pruned) == 0.5 and P.layer_sparsity(pruned) == {"0": 0.75, "2": 0.25}
    assert _same_state(model, before) and not hasattr(model[0], "weight_orig")  # the input is untouched
    assert set(pruned.state_dict()) == set(model.state_dict())  # plain weights: no weight_orig, no mask
    assert not any(isinstance(h, prune.BasePruningMethod) for h in pruned[0]._forward_pre_hooks.values())


@pytest.mark.parametrize("amount", [0.0, 0.3, 0.9, 0.99])
def test_sparsity_is_exact_on_the_course_cnn(amount):
    torch.manual_seed(0)
    model = build_model("cnn")
    weights = torch.cat([m.weight.detach().abs().flatten() for m in model.modules() if isinstance(m, P.PRUNABLE)])
    assert len(weights) == 428_960
    pruned = P.global_magnitude_prune(model, amount)
    zeros = sum(int((m.weight == 0).sum()) for m in pruned.modules() if isinstance(m, P.PRUNABLE))
    assert zeros == round(amount * 428_960)
    # the survivors are exactly the largest |w|: every kept weight >= every pruned one
    kept = torch.cat([m.weight.detach().abs().flatten() for m in pruned.modules() if isinstance(m, P.PRUNABLE)])
    if zeros:
        assert weights[kept == 0].max() <= weights[kept != 0].min()
        assert torch.equal(kept.sort().values[zeros:], weights.sort().values[zeros:])


def test_fc1_holds_93_percent_of_the_course_cnn_weights():
    share = P.weight_share(build_model("cnn"))
    # conv1 1*32*9, conv2 32*64*9, fc1 3136*128, fc2 128*64, fc3 64*10
    total = 288 + 18_432 + 401_408 + 8_192 + 640
    assert share == pytest.approx({n: c / total for n, c in zip(share, (288, 18_432, 401_408, 8_192, 640))})
    assert share["fc1"] == pytest.approx(0.9358, abs=1e-4)


def test_masks_by_hand_and_as_torch_prunes():
    weights = [torch.tensor([[0.1, -0.2], [0.3, 0.05]]), torch.tensor([1.0, -2.0, 0.5, -0.01])]
    before = [w.clone() for w in weights]
    masks = P.global_magnitude_masks(weights, 0.5)  # prune 0.01, 0.05, 0.1, 0.2
    assert [m.tolist() for m in masks] == [[[False, False], [True, False]], [True, True, True, False]]
    assert all(torch.equal(w, b) for w, b in zip(weights, before)) and masks[0].dtype == torch.bool
    # torch's global_unstructured (on a contiguous copy: it cannot flatten channels-last weights) gives the masks
    # that apply_global_mask puts on the course CNN, layer by layer
    torch.manual_seed(1)
    model = build_model("cnn")
    plain = copy.deepcopy(model).to(memory_format=torch.contiguous_format)
    prune.global_unstructured(
        [(m, "weight") for _, m in P.prunable_weights(plain)], pruning_method=prune.L1Unstructured, amount=0.37
    )
    P.apply_global_mask(model, 0.37)
    pairs = zip(P.prunable_weights(plain), P.prunable_weights(model))
    assert all(torch.equal(theirs.weight_mask, ours.weight_mask) for (_, theirs), (_, ours) in pairs)
    assert sum(int((m.weight_mask == 0).sum()) for _, m in P.prunable_weights(model)) == round(0.37 * 428_960)
    with pytest.raises(ValueError, match="no weights given"):
        P.global_magnitude_masks([], 0.5)


@pytest.mark.parametrize("amount", [-0.1, 1.0, 1.5])
def test_bad_sparsity_is_a_clear_error(amount):
    with pytest.raises(ValueError, match=r"sparsity must be in \[0, 1\)"):
        P.global_magnitude_prune(_tiny(), amount)


def test_a_model_without_conv_or_linear_layers_is_a_clear_error():
    with pytest.raises(ValueError, match="no Conv2d or Linear layer"):
        P.global_magnitude_prune(nn.Sequential(nn.ReLU()), 0.5)


@pytest.fixture()
def tiny_splits(mnist_train, mnist_test):
    """40 training images (4 forgotten) and 100 test images."""
    return random_splits(0.1, mnist_train.subset(slice(0, 40)), mnist_test.subset(slice(0, 100)), seed=0)


def test_prune_then_finetune_keeps_the_mask_and_the_input(tiny_splits):
    torch.manual_seed(0)
    model = build_model("cnn")
    before = copy.deepcopy(model)
    config = P.Config(sparsity=0.8, num_epochs=2, batch_size=16)
    result = P.unlearn(model, tiny_splits, config, device="cpu", seed=0)
    assert _same_state(model, before)
    zeros = sum(int((m.weight == 0).sum()) for m in result.model.modules() if isinstance(m, P.PRUNABLE))
    assert zeros == round(0.8 * 428_960) and result.sparsity == zeros / 428_960
    assert set(result.model.state_dict()) == set(model.state_dict())
    # the mask is the one-shot pruning's: fine-tuning moved weights but never revived a pruned one
    one_shot = P.global_magnitude_prune(model, 0.8)
    for a, b in zip(P.prunable_weights(one_shot), P.prunable_weights(result.model)):
        assert torch.equal(a[1].weight == 0, b[1].weight == 0)
    assert not torch.equal(one_shot.fc1.weight, result.model.fc1.weight)
    assert len(result.history.step_loss) == 2 * 3 and result.cost.seconds > 0  # 36 retain images, batches of 16


def test_l1_step_loss_by_hand():
    model = nn.Sequential(nn.Flatten(), nn.Linear(2, 2))
    with torch.no_grad():
        model[1].weight.copy_(torch.tensor([[1.0, -2.0], [0.5, 0.0]]))
        model[1].bias.copy_(torch.tensor([0.1, -0.3]))
    X, y = torch.ones(1, 1, 1, 2), torch.tensor([0])
    l1 = 1.0 + 2.0 + 0.5 + 0.0 + 0.1 + 0.3
    ce = math.log(1 + math.exp(1.1))  # logits (-0.9, 0.2), true class 0: -log(e^-0.9 / (e^-0.9 + e^0.2))
    loss_fn = L.l1_sparse_step(alpha=0.5, total_steps=4)
    # gamma_t = 0.5 * (1 - t / 4): 0.5, 0.375, 0.25, 0.125, then 0
    for gamma in (0.5, 0.375, 0.25, 0.125, 0.0):
        assert loss_fn(model, X, y).item() == pytest.approx(ce + gamma * l1, rel=1e-6)
    with pytest.raises(ValueError, match="total_steps must be positive"):
        L.l1_sparse_step(0.1, 0)


def test_l1_sparse_finetune_shrinks_the_weights_and_leaves_the_input(tiny_splits):
    torch.manual_seed(0)
    model = build_model("cnn")
    before = copy.deepcopy(model)
    plain = L.unlearn(model, tiny_splits, L.Config(alpha=0.0, num_epochs=1, batch_size=16), device="cpu")
    sparse = L.unlearn(model, tiny_splits, L.Config(alpha=1e-3, num_epochs=1, batch_size=16), device="cpu")
    assert _same_state(model, before)
    # same data order and steps; only the penalty differs, and it pulls the L1 norm down
    assert L.l1_norm(sparse.model).item() < L.l1_norm(plain.model).item()
    assert len(sparse.history.step_loss) == 3 and sparse.cost.seconds > 0
    with pytest.raises(ValueError, match="no config named 'medium'"):
        L.unlearn(model, tiny_splits, "medium", device="cpu")
