"""The course's models: the CNN of Shani's and Fabbri's reports (2024; optionally with BatchNorm), LeNet-5 and an
MLP; ResNet-18 for CIFAR-10 (:func:`unlearnlab.data.load_cifar10`)."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from .data import NUM_CLASSES


class CourseCNN(nn.Module):
    """conv32-conv64-fc128-fc64-fc10 on 28x28 digits; ``batchnorm=True`` adds BN (DeepInversion needs it)."""

    def __init__(self, num_classes: int = NUM_CLASSES, batchnorm: bool = False) -> None:
        super().__init__()

        def norm2d(c: int) -> nn.Module:
            return nn.BatchNorm2d(c) if batchnorm else nn.Identity()

        self.conv1 = nn.Conv2d(1, 32, 3, padding=1)
        self.bn1 = norm2d(32)
        self.conv2 = nn.Conv2d(32, 64, 3, padding=1)
        self.bn2 = norm2d(64)
        self.fc1 = nn.Linear(64 * 7 * 7, 128)
        self.bn3 = nn.BatchNorm1d(128) if batchnorm else nn.Identity()
        self.fc2 = nn.Linear(128, 64)
        self.fc3 = nn.Linear(64, num_classes)  # the output layer
        self.pool = nn.MaxPool2d(2)

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        h = self.pool(torch.relu(self.bn1(self.conv1(X))))  # (B, 32, 14, 14)
        h = self.pool(torch.relu(self.bn2(self.conv2(h))))  # (B, 64, 7, 7)
        h = torch.relu(self.bn3(self.fc1(h.flatten(1))))  # (B, 128)
        h = torch.relu(self.fc2(h))  # (B, 64)
        return self.fc3(h)  # logits (B, num_classes)


class LeNet5(nn.Module):
    """LeNet-5 (LeCun et al., 1998) with ReLU and max-pooling, as in the layer-wise partial unlearning paper."""

    def __init__(self, num_classes: int = NUM_CLASSES) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, 5, padding=2)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, num_classes)
        self.pool = nn.MaxPool2d(2)

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        h = self.pool(torch.relu(self.conv1(X)))  # (B, 6, 14, 14)
        h = self.pool(torch.relu(self.conv2(h)))  # (B, 16, 5, 5)
        h = torch.relu(self.fc1(h.flatten(1)))  # (B, 120)
        h = torch.relu(self.fc2(h))  # (B, 84)
        return self.fc3(h)  # (B, num_classes)


class MLP(nn.Module):
    """A fully connected network on flattened 28x28 images."""

    def __init__(self, num_classes: int = NUM_CLASSES, hidden: tuple[int, ...] = (512, 256)) -> None:
        super().__init__()
        sizes = (28 * 28, *hidden)
        layers: list[nn.Module] = [nn.Flatten()]
        for n_in, n_out in zip(sizes[:-1], sizes[1:]):
            layers += [nn.Linear(n_in, n_out), nn.ReLU()]
        layers.append(nn.Linear(sizes[-1], num_classes))
        self.net = nn.Sequential(*layers)

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        return self.net(X)  # (B, num_classes)


def resnet18(num_classes: int = NUM_CLASSES) -> nn.Module:
    """ResNet-18 for 32x32 images, as the unlearning challenge's and SalUn's code build it: torchvision's
    ResNet-18 with a 3x3, stride-1 first convolution and no max-pooling (a 224-pixel stem would shrink CIFAR's
    images to 1x1 before the last stage)."""
    from torchvision.models import resnet18 as torchvision_resnet18

    net = torchvision_resnet18(num_classes=num_classes)
    net.conv1 = nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=1, bias=False)
    net.maxpool = nn.Identity()
    return net


MODELS: dict[str, Callable[..., nn.Module]] = {
    "cnn": lambda **kw: CourseCNN(batchnorm=False, **kw),
    "cnn_bn": lambda **kw: CourseCNN(batchnorm=True, **kw),
    "lenet5": LeNet5,
    "mlp": MLP,
    "resnet18": resnet18,  # 32x32 colour images (CIFAR-10), not the MNIST family
}


def build_model(name: str, **kwargs: object) -> nn.Module:
    """A fresh model by name: ``cnn``, ``cnn_bn``, ``lenet5``, ``mlp`` or ``resnet18`` (kwargs: its constructor)."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}: choose one of {', '.join(map(repr, MODELS))}")
    model = MODELS[name](**kwargs)
    if any(isinstance(m, nn.Conv2d) for m in model.modules()):
        # convolution weights stored channels-last: on a CPU core the course CNN trains about 1.5x and evaluates
        # about 2x faster (benchmarks/bench_pretrain.py); values and shapes are the same, only the layout differs
        model = model.to(memory_format=torch.channels_last)
    return model


def has_batchnorm(model: nn.Module) -> bool:
    """Whether any layer of ``model`` is a BatchNorm layer."""
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters (all, or only those with ``requires_grad``)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
