"""The apps' task: a small CNN, partitioned image data, training and evaluation.

Shared, unchanged, by the stock apps (FedAvg) and their EcoFed copies, like a Flower app's
``task.py``. The data are a learnable synthetic image set (offline): 28x28 grey images behind
a torchvision transform (``ToTensor`` + ``Normalize``), as an app would load Fashion-MNIST.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms

from ecofed_flwr.data import make_synthetic

NUM_PARTITIONS = 3
NUM_ROUNDS = 3
TRAIN_SAMPLES = 3600  # enough server steps at the default batch (128) in 3 rounds
TEST_SAMPLES = 300

TRANSFORM = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.5,), (0.5,))])


class Net(nn.Module):
    """The app's model: two convolutions and a linear classifier for 1x28x28 images."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 3, padding=1)
        self.conv2 = nn.Conv2d(8, 16, 3, padding=1)
        self.pool = nn.MaxPool2d(2)
        self.fc = nn.Linear(16 * 7 * 7, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(F.relu(self.conv1(x)))
        x = self.pool(F.relu(self.conv2(x)))
        return self.fc(x.flatten(1))


class ImageDataset(Dataset):
    """uint8 images and labels behind a torchvision transform."""

    def __init__(self, images: np.ndarray, labels: np.ndarray) -> None:
        self.images, self.labels, self.transform = images, labels, TRANSFORM

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return self.transform(self.images[index]), int(self.labels[index])


def load_data(partition_id: int, num_partitions: int) -> tuple[DataLoader, DataLoader]:
    """The partition's training and test loaders (an 80/20 cut of its share)."""
    data = make_synthetic(TRAIN_SAMPLES, seed=0, split="train")
    part = np.array_split(np.arange(len(data.labels)), num_partitions)[partition_id]
    cut = int(0.8 * len(part))
    train = ImageDataset(data.images[part[:cut]], data.labels[part[:cut]])
    test = ImageDataset(data.images[part[cut:]], data.labels[part[cut:]])
    return DataLoader(train, batch_size=32, shuffle=True), DataLoader(test, batch_size=64)


def load_test_data() -> DataLoader:
    """The central test set."""
    data = make_synthetic(TEST_SAMPLES, seed=0, split="test")
    return DataLoader(ImageDataset(data.images, data.labels), batch_size=64)


def train_model(net: nn.Module, loader: DataLoader, epochs: int, lr: float) -> float:
    """Train in place with SGD; the mean training loss."""
    optimizer = torch.optim.SGD(net.parameters(), lr=lr, momentum=0.9)
    net.train()
    total, count = 0.0, 0
    for _ in range(epochs):
        for images, labels in loader:
            optimizer.zero_grad()
            loss = F.cross_entropy(net(images), labels)
            loss.backward()
            optimizer.step()
            total, count = total + float(loss) * len(labels), count + len(labels)
    return total / max(count, 1)


@torch.no_grad()
def evaluate_model(net: nn.Module, loader: DataLoader) -> tuple[float, float]:
    """Mean loss and accuracy."""
    net.eval()
    loss, correct, count = 0.0, 0, 0
    for images, labels in loader:
        logits = net(images)
        loss += float(F.cross_entropy(logits, labels, reduction="sum"))
        correct += int((logits.argmax(1) == labels).sum())
        count += len(labels)
    return loss / count, correct / count


def get_weights(net: nn.Module) -> list[np.ndarray]:
    return [v.cpu().numpy() for v in net.state_dict().values()]


def set_weights(net: nn.Module, weights: list[np.ndarray]) -> None:
    state = zip(net.state_dict().keys(), weights, strict=True)
    net.load_state_dict({k: torch.from_numpy(np.asarray(w)) for k, w in state})
