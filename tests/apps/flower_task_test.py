"""A task in the shape of Flower's published app templates (written here, offline).

Like the template's ``task.py``: a Hugging Face data set partitioned with ``flwr_datasets``,
normalised inside a ``with_transform`` function (not in a torch ``Dataset``), loaders that
yield dict batches (``batch["image"]``, ``batch["label"]``), and ``load_data`` with a third
argument, the batch size. The images are a learnable synthetic set held in memory, in place
of a hub download.
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from datasets import ClassLabel, Dataset, Features
from datasets import Image as ImageFeature
from flwr_datasets.partitioner import IidPartitioner
from PIL import Image
from task_test import Net
from torch import nn
from torch.utils.data import DataLoader
from torchvision.transforms import Compose, Normalize, ToTensor

from ecofed_flwr.data import make_synthetic

TRAIN_SAMPLES = 3600
TEST_SAMPLES = 300
RUN_CONFIG = {
    "num-server-rounds": 2,
    "fraction-fit": 1.0,
    "fraction-evaluate": 0.5,
    "local-epochs": 1,
    "learning-rate": 0.05,
    "batch-size": 32,
}

pytorch_transforms = Compose([ToTensor(), Normalize((0.5,), (0.5,))])

__all__ = ["Net", "load_centralized_dataset", "load_data", "test", "train"]


@functools.lru_cache(maxsize=2)
def _images(split: str) -> Dataset:
    """The split as a Hugging Face data set of PIL images (what a hub download gives)."""
    data = make_synthetic(TRAIN_SAMPLES if split == "train" else TEST_SAMPLES, seed=0, split=split)
    features = Features({"image": ImageFeature(), "label": ClassLabel(num_classes=10)})
    rows = {"image": [Image.fromarray(i) for i in data.images], "label": data.labels.tolist()}
    return Dataset.from_dict(rows, features=features)


def apply_transforms(batch: dict) -> dict:
    """Normalise the images of a batch of rows (the app's with_transform function)."""
    batch["image"] = [pytorch_transforms(img) for img in batch["image"]]
    return batch


def load_data(partition_id: int, num_partitions: int, batch_size: int) -> tuple:
    """The partition's training and test loaders (an 80/20 cut of its share)."""
    partitioner = IidPartitioner(num_partitions=num_partitions)
    partitioner.dataset = _images("train")
    partition = partitioner.load_partition(partition_id)
    partition_train_test = partition.train_test_split(test_size=0.2, seed=42)
    partition_train_test = partition_train_test.with_transform(apply_transforms)
    trainloader = DataLoader(partition_train_test["train"], batch_size=batch_size, shuffle=True)
    testloader = DataLoader(partition_train_test["test"], batch_size=batch_size)
    return trainloader, testloader


def load_centralized_dataset() -> DataLoader:
    """The server's test set."""
    dataset = _images("test").with_format("torch").with_transform(apply_transforms)
    return DataLoader(dataset, batch_size=128)


def train(net: nn.Module, trainloader: DataLoader, epochs: int, lr: float, device: str) -> float:
    """Train in place with SGD; the mean training loss per batch."""
    net.to(device)
    optimizer = torch.optim.SGD(net.parameters(), lr=lr, momentum=0.9)
    net.train()
    running_loss = 0.0
    for _ in range(epochs):
        for batch in trainloader:
            images, labels = batch["image"].to(device), batch["label"].to(device)
            optimizer.zero_grad()
            loss = F.cross_entropy(net(images), labels)
            loss.backward()
            optimizer.step()
            running_loss += loss.item()
    return running_loss / (epochs * len(trainloader))


@torch.no_grad()
def test(net: nn.Module, testloader: DataLoader, device: str) -> tuple[float, float]:
    """Mean loss per batch and accuracy."""
    net.to(device)
    net.eval()
    correct, loss = 0, 0.0
    for batch in testloader:
        images, labels = batch["image"].to(device), batch["label"].to(device)
        outputs = net(images)
        loss += F.cross_entropy(outputs, labels).item()
        correct += (outputs.argmax(1) == labels).sum().item()
    return loss / len(testloader), correct / len(testloader.dataset)
