"""Splittable classifiers: a registry of models with named cuts, weight sources, the split."""

from ecofed_flwr.models.registry import (
    ModelSpec,
    get_model_spec,
    list_models,
    register_model,
    unregister_model,
)
from ecofed_flwr.models.split import (
    FrozenFront,
    SplitModel,
    create_split,
    front_fingerprint,
    list_cuts,
    run_front,
    split_identity,
)
from ecofed_flwr.models.user_models import GIVEN_WEIGHTS, register_sequential
from ecofed_flwr.models.weights import WeightSource, WeightsUnavailableError

__all__ = [
    "GIVEN_WEIGHTS",
    "FrozenFront",
    "ModelSpec",
    "SplitModel",
    "WeightSource",
    "WeightsUnavailableError",
    "create_split",
    "front_fingerprint",
    "get_model_spec",
    "list_cuts",
    "list_models",
    "register_model",
    "register_sequential",
    "run_front",
    "split_identity",
    "unregister_model",
]
