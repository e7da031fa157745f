"""A user's own nn.Sequential becomes a splittable model with one call."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator

import pytest
import torch
from torch import nn

from ecofed_flwr.models import (
    create_split,
    get_model_spec,
    list_cuts,
    list_models,
    register_sequential,
    unregister_model,
)

NAME = "test_user_cnn"


def _cnn(num_classes: int = 5) -> nn.Sequential:
    torch.manual_seed(123)
    return nn.Sequential(
        OrderedDict(
            stem=nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU()),
            body=nn.Sequential(nn.Conv2d(4, 6, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)),
            pool=nn.Sequential(nn.AdaptiveAvgPool2d(2), nn.Flatten()),
            head=nn.Linear(24, num_classes),
        )
    )


@pytest.fixture(autouse=True)
def _clean_registry() -> Iterator[None]:
    before = set(list_models())
    yield
    for name in set(list_models()) - before:
        unregister_model(name)


def _trained_statistics(model: nn.Sequential) -> nn.Sequential:
    """Give BatchNorm non-trivial running statistics, as a pre-trained model has."""
    model.train()
    with torch.no_grad():
        model(torch.randn(16, 3, 16, 16) * 3 + 1)
    return model.eval()


def test_splits_at_two_cuts_compose_to_the_registered_model() -> None:
    model = _trained_statistics(_cnn())
    spec = register_sequential(NAME, model, input_size=16, default_cut="body")
    assert spec.default_weights == "given" and NAME in list_models()
    assert list_cuts(NAME) == ["stem", "body", "pool"]
    x = torch.randn(3, 3, 16, 16)
    expected = model(x)
    fingerprints = set()
    for cut, shape in (("stem", (4, 16, 16)), ("pool", (24,))):
        split = create_split(NAME, cut=cut, num_classes=5)
        split.back.eval()
        assert split.cut == cut and split.activation_shape == shape
        with torch.no_grad():
            assert torch.allclose(split.back(split.front(x)), expected, atol=1e-5)
        fingerprints.add(split.fingerprint)
    assert len(fingerprints) == 2  # the fingerprint changes with the cut
    assert create_split(NAME).cut == "body"
    assert create_split(NAME, "stem").fingerprint == create_split(NAME, "stem").fingerprint


def test_registration_copies_the_weights() -> None:
    model = _cnn()
    register_sequential(NAME, model, input_size=16)
    before = create_split(NAME, "stem", num_classes=5).fingerprint
    with torch.no_grad():
        model.stem[0].weight.add_(1.0)
    assert create_split(NAME, "stem", num_classes=5).fingerprint == before


def test_random_weights_are_seeded_and_differ_from_given() -> None:
    register_sequential(NAME, _cnn(), input_size=16)
    given = create_split(NAME, "stem", num_classes=5).fingerprint
    random_a = create_split(NAME, "stem", weights="random", num_classes=5, seed=1)
    random_b = create_split(NAME, "stem", weights="random", num_classes=5, seed=1)
    random_c = create_split(NAME, "stem", weights="random", num_classes=5, seed=2)
    assert random_a.fingerprint == random_b.fingerprint != random_c.fingerprint
    assert random_a.fingerprint != given


def test_list_of_named_stages_and_other_class_counts() -> None:
    stages = list(_cnn().named_children())
    register_sequential(NAME, stages, input_size=16, in_chans=3, mean=(0.1, 0.2, 0.3))
    split = create_split(NAME, "pool", num_classes=3)  # the final Linear is replaced
    assert split.back(split.front(torch.randn(2, 3, 16, 16))).shape == (2, 3)
    assert split.mean == (0.1, 0.2, 0.3) and split.std == (0.5,)


def test_a_registered_model_is_usable_from_the_run_config() -> None:
    from ecofed_flwr.app.task import build_split
    from ecofed_flwr.config import EcoFedConfig

    register_sequential("test_user_cnn_config", _cnn(num_classes=10), input_size=16)
    cfg = EcoFedConfig(
        model="test_user_cnn_config",
        cut="body",
        weights="given",
        input_size=16,
        dataset="synthetic",
    )
    split = build_split(cfg)
    assert split.model_name == "test_user_cnn_config" and split.activation_shape == (6, 8, 8)


def test_duplicate_names_and_replacement() -> None:
    register_sequential(NAME, _cnn(), input_size=16)
    with pytest.raises(ValueError, match="already registered; pick another name or pass replace"):
        register_sequential(NAME, _cnn(), input_size=16)
    with pytest.raises(ValueError, match="already registered"):
        register_sequential("vgg11_cifar", _cnn(), input_size=16)
    register_sequential(NAME, _cnn(num_classes=7), input_size=16, replace=True)
    assert create_split(NAME, "stem", num_classes=7).num_classes == 7
    assert get_model_spec("vgg11_cifar").name == "vgg11_cifar"


def test_unknown_cut_is_refused_with_the_valid_cuts() -> None:
    register_sequential(NAME, _cnn(), input_size=16)
    with pytest.raises(ValueError, match="has no cut 'head'; cuts: stem, body, pool"):
        create_split(NAME, cut="head", num_classes=5)
    with pytest.raises(ValueError, match="default_cut 'nope' is not a cut"):
        register_sequential("test_user_other", _cnn(), input_size=16, default_cut="nope")


@pytest.mark.parametrize(
    ("model", "error", "message"),
    [
        ([("a", nn.Flatten()), ("b", torch.relu)], TypeError, "stage 'b' must be an nn.Module"),
        ([("a", nn.Flatten()), nn.Linear(2, 2)], TypeError, r"stage 1 must be a \(name, module\)"),
        (nn.Linear(2, 2), TypeError, "got a single Linear"),
        (nn.Sequential(nn.Flatten()), ValueError, "at least 2 stages, got 1"),
        ([("a", nn.Flatten()), ("a", nn.Flatten())], ValueError, "repeated: a"),
        ([("a b", nn.Flatten()), ("c", nn.Flatten())], ValueError, "without spaces"),
        (
            [("flat", nn.Flatten()), ("fc", nn.Linear(10, 2))],
            ValueError,
            r"stage 'fc' fails on the output of 'flat' \(1, 768\)",
        ),
        (
            [("conv", nn.Conv2d(3, 2, 3)), ("relu", nn.ReLU())],
            ValueError,
            r"\(N, classes\), got \(1, 2, 14, 14\)",
        ),
    ],
)
def test_bad_models_are_refused(model: object, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        register_sequential(NAME, model, input_size=16)  # type: ignore[arg-type]
    assert NAME not in list_models()


def test_bad_names_and_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="without spaces or ':'"):
        register_sequential("timm:mine", _cnn())
    with pytest.raises(ValueError, match="input_size must be a positive int"):
        register_sequential(NAME, _cnn(), input_size=0)
    with pytest.raises(ValueError, match="mean needs 1 or 3 values, got 2"):
        register_sequential(NAME, _cnn(), mean=(0.5, 0.5))
    with pytest.raises(ValueError, match="std must be > 0"):
        register_sequential(NAME, _cnn(), std=(0.0,))
    with pytest.raises(KeyError, match="no registered model 'never_registered'"):
        unregister_model("never_registered")
