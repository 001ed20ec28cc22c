import pytest
import torch

from unlearnlab.data import class_splits
from unlearnlab.methods.deepinversion import (
    InversionConfig,
    bn_statistics_loss,
    synthesize,
    total_variation,
)
from unlearnlab.methods.zero_shot_student import (
    StudentConfig,
    ZeroShotConfig,
    deepinversion_unlearn,
    soft_targets_without,
)
from unlearnlab.models import build_model

TINY = InversionConfig(images_per_class=3, batch_per_class=3, steps=4)


def test_total_variation_matches_a_closed_form():
    X = torch.arange(16.0).reshape(1, 1, 4, 4)  # rows step by 4, columns by 1
    assert float(total_variation(X)) == pytest.approx(16.0 + 1.0)
    assert float(total_variation(torch.ones(2, 1, 5, 5))) == 0.0


def test_bn_statistics_loss_is_zero_at_the_running_statistics_and_grows_away_from_them():
    features = torch.randn(64, 3, 5, 5)
    mean, var = features.mean(dim=(0, 2, 3)), features.var(dim=(0, 2, 3), unbiased=False)
    assert float(bn_statistics_loss(features, mean, var)) == pytest.approx(0.0, abs=1e-5)
    shifted = bn_statistics_loss(features + 1.0, mean, var)
    assert float(shifted) == pytest.approx(3**0.5, rel=1e-4)  # ||(1, 1, 1)||_2, variance unchanged


def test_a_model_without_batchnorm_gets_a_clear_error():
    with pytest.raises(ValueError, match="needs a teacher with BatchNorm"):
        synthesize(build_model("cnn"), config=TINY, device="cpu")


def test_synthesis_smoke_leaves_the_teacher_unchanged():
    torch.manual_seed(0)
    teacher = build_model("cnn_bn").eval()
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    result = synthesize(teacher, [1, 2], TINY, device="cpu")
    assert result.data.X.shape == (6, 1, 28, 28) and result.data.y.tolist() == [1, 1, 1, 2, 2, 2]
    assert len(result.step_loss) == 4 and result.images_per_second > 0
    assert all(torch.equal(before[k], v) for k, v in teacher.state_dict().items())
    assert all(p.requires_grad for p in teacher.parameters())


def test_soft_targets_without_the_forget_classes():
    logits = torch.tensor([[2.0, 1.0, 0.5, -1.0]])
    probs = soft_targets_without(logits, [1], temperature=2.0)
    kept = torch.tensor([2.0, 0.5, -1.0]) / 2.0
    expected = kept.softmax(0)
    assert probs[0, 1] == 0 and torch.allclose(probs[0, [0, 2, 3]], expected)
    with pytest.raises(ValueError, match="temperature"):
        soft_targets_without(logits, [1], temperature=0)


def test_deepinversion_unlearn_smoke(mnist_train, mnist_test):
    torch.manual_seed(0)
    teacher = build_model("cnn_bn").eval()
    splits = class_splits([0], mnist_train.subset(slice(0, 300)), mnist_test.subset(slice(0, 300)))
    config = ZeroShotConfig(TINY, StudentConfig(num_epochs=1, batch_size=16))
    result = deepinversion_unlearn(teacher, splits, config, device="cpu")
    synthetic = result.extras["synthesis"].data
    assert 0 not in synthetic.y.tolist() and len(synthetic) == 27 and result.cost.seconds > 0
