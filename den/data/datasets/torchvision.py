"""torchvision's datasets: downloaded when online, read from ``stream.root`` otherwise."""

from __future__ import annotations

from den.config.registry import DATASETS
from den.data.sources import TorchvisionLayout

MNIST = TorchvisionLayout("mnist", "MNIST", "raw", "MNIST", 10)
CIFAR10 = TorchvisionLayout("cifar10", "cifar-10-batches-py", None, "CIFAR10", 10)

for layout in (
    MNIST,
    TorchvisionLayout("fashion_mnist", "FashionMNIST", "raw", "FashionMNIST", 10),
    CIFAR10,
    TorchvisionLayout("cifar100", "cifar-100-python", None, "CIFAR100", 100),
):
    DATASETS.register(layout.name)(layout)
