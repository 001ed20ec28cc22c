import numpy as np
import pytest
import torch
from sklearn.metrics import confusion_matrix as sk_confusion

from unlearnlab.config import FULL, QUICK, resolve
from unlearnlab.data import make_loader
from unlearnlab.metrics import confusion_matrix, evaluate, evaluation_from_predictions
from unlearnlab.models import MODELS, build_model, count_parameters, has_batchnorm
from unlearnlab.training import fit, pick_device, progress, seed_everything


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_model_maps_its_images_to_ten_logits(name):
    model = build_model(name).eval()
    image = (3, 32, 32) if name == "resnet18" else (1, 28, 28)  # CIFAR-10's colour images; MNIST's digits
    assert model(torch.zeros(3, *image)).shape == (3, 10)


@pytest.mark.parametrize("name", ["cnn", "cnn_bn", "lenet5"])
def test_channels_last_layout_changes_speed_not_values(name):
    model = build_model(name).eval()  # convolution weights channels-last (the faster layout on a CPU)
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert all(m.weight.is_contiguous(memory_format=torch.channels_last) for m in convs)
    plain = build_model(name).to(memory_format=torch.contiguous_format).eval()
    plain.load_state_dict(model.state_dict())
    assert all(p.is_contiguous() for p in plain.parameters())
    X = torch.randn(16, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(model(X), plain(X), rtol=1e-4, atol=1e-5)
    X.requires_grad_(True)
    model.train()(X).sum().backward()
    # gradients (hooks, masks, ledgers) keep the parameter's shape
    assert all(m.weight.grad.shape == m.weight.shape for m in convs)


def test_batchnorm_variant_and_unknown_name():
    assert has_batchnorm(build_model("cnn_bn")) and not has_batchnorm(build_model("cnn"))
    assert count_parameters(build_model("cnn")) == 429_258  # conv32-conv64-fc128-fc64-fc10 (seed 001)
    with pytest.raises(ValueError, match="unknown model 'resnet'"):
        build_model("resnet")


def test_profiles_resolve():
    assert resolve("quick") is QUICK and resolve("full") is FULL and resolve(QUICK) is QUICK
    assert resolve("auto") is (FULL if torch.cuda.is_available() else QUICK)
    with pytest.raises(ValueError, match="unknown profile 'fast'"):
        resolve("fast")


def test_pick_device():
    assert pick_device("cpu") == torch.device("cpu")
    with pytest.raises(ValueError, match="unknown device"):
        pick_device("gpu0")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA GPU"):
            pick_device("cuda")


def _short_fit(data, seed):
    seed_everything(seed)
    model = build_model("cnn_bn")
    history = fit(model, make_loader(data, 64, shuffle=True, seed=seed), num_epochs=1, lr=1e-3, device="cpu")
    return model, history


def test_same_seed_same_weights(small_train):
    a, history = _short_fit(small_train, seed=0)
    b, _ = _short_fit(small_train, seed=0)
    c, _ = _short_fit(small_train, seed=1)
    for (name, pa), pb in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(pa, pb), name
    assert not torch.equal(a.fc3.weight, c.fc3.weight)
    assert len(history.step_loss) == 8 and len(history.epoch_loss) == 1


def test_seed_zero_is_a_seed():
    seed_everything(0)
    a = torch.rand(3)
    seed_everything(0)
    assert torch.equal(a, torch.rand(3))


def test_fit_learns_and_frozen_batchnorm_keeps_its_statistics(small_train):
    seed_everything(0)
    model = build_model("cnn_bn")
    for p in model.parameters():
        p.requires_grad = False
    model.fc3.requires_grad_(True)
    running = model.bn1.running_mean.clone()
    frozen = model.conv1.weight.clone()
    history = fit(
        model, make_loader(small_train, 64, shuffle=True), num_epochs=3, lr=1e-2, device="cpu", lr_schedule="onecycle"
    )
    assert torch.equal(model.bn1.running_mean, running) and torch.equal(model.conv1.weight, frozen)
    assert history.epoch_loss[-1] < history.epoch_loss[0]


def test_fit_rejects_a_fully_frozen_model_and_unknown_schedule(small_train):
    model = build_model("mlp").requires_grad_(False)
    with pytest.raises(ValueError, match="no trainable parameters"):
        fit(model, make_loader(small_train), device="cpu")
    with pytest.raises(ValueError, match="unknown lr_schedule"):
        fit(build_model("mlp"), make_loader(small_train), device="cpu", lr_schedule="cosine")


def test_confusion_matrix_matches_scikit_learn():
    gen = torch.Generator().manual_seed(0)
    y, pred = torch.randint(0, 10, (500,), generator=gen), torch.randint(0, 10, (500,), generator=gen)
    assert np.array_equal(confusion_matrix(y, pred), sk_confusion(y, pred, labels=range(10)))
    ev = evaluation_from_predictions(y, pred)
    assert ev.accuracy == pytest.approx(float((y == pred).float().mean()))
    assert ev.per_class[3] == pytest.approx(float((pred[y == 3] == 3).float().mean()))


def test_evaluate_reports_absent_classes_as_nan(mnist_test):
    data = mnist_test.subset(mnist_test.y != 6)
    ev = evaluate(build_model("mlp"), make_loader(data, 1000), device="cpu")
    assert np.isnan(ev.per_class[6]) and ev.n == len(data) and ev.confusion.sum() == len(data)


def test_progress_bars_obey_tqdm_disable(monkeypatch):
    monkeypatch.setenv("TQDM_DISABLE", "1")
    with progress(3, "x") as bar:
        assert bar.disable
    monkeypatch.setenv("TQDM_DISABLE", "")
    with progress(3, "x") as bar:
        assert not bar.disable
