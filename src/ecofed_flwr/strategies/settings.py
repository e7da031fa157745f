"""The keyword settings of both EcoFed strategies, checked, with Flower's FedAvg names mapped.

An app switching from Flower's ``FedAvg`` keeps its keywords: those EcoFed takes under
another name are renamed (:data:`FLOWER_RENAMED`), those it does not use are dropped with one
warning naming what replaces each (:data:`FLOWER_UNUSED`), and an unknown one is a TypeError
naming the closest setting.
"""

from __future__ import annotations

import difflib
import inspect
from logging import WARNING
from typing import Any

from flwr.supercore import log

from ecofed_flwr.trainer import TrainerConfig

#: Settings of Flower's FedAvg (both APIs) that EcoFed takes under another name.
FLOWER_RENAMED = {
    "fraction_fit": "fraction_train",
    "min_fit_clients": "min_train_nodes",
    "min_available_clients": "min_available_nodes",
}
_NO_DEVICE_EVAL = "EcoFed evaluates at the server (hold-out and evaluate_fn), never on devices"
_NO_DEVICE_TRAINING = (
    "devices do not train: the server's learning_rate, lr_schedule, batch_size and "
    "local_epochs replace the app's"
)
#: Settings of Flower's FedAvg (both APIs) that EcoFed does not use, and what replaces them.
FLOWER_UNUSED = {
    "fraction_evaluate": _NO_DEVICE_EVAL,
    "min_evaluate_clients": _NO_DEVICE_EVAL,
    "min_evaluate_nodes": _NO_DEVICE_EVAL,
    "on_evaluate_config_fn": _NO_DEVICE_EVAL,
    "evaluate_metrics_aggregation_fn": _NO_DEVICE_EVAL,
    "evaluate_metrics_aggr_fn": _NO_DEVICE_EVAL,
    "on_fit_config_fn": _NO_DEVICE_TRAINING,
    "fit_metrics_aggregation_fn": "uploads carry no training metrics; rounds log the server's",
    "train_metrics_aggr_fn": "uploads carry no training metrics; rounds log the server's",
    "initial_parameters": "the back starts from the split's weights (the app's model is "
    "another model: its weights do not fit the back)",
    "accept_failures": "a failed device is always left out of the round and logged",
    "inplace": "not applicable: EcoFed averages no device weights",
    "arrayrecord_key": "not applicable: EcoFed's messages have their own records",
    "configrecord_key": "not applicable: EcoFed's messages have their own records",
    "weighted_by_key": "not applicable: EcoFed averages no device weights",
}


def split_settings(owner: str, settings: dict[str, Any], parameters: set[str]) -> dict[str, Any]:
    """The keyword settings of a ``from_split``, checked, as ``EcoFedStrategy`` takes them.

    ``trainer="copies"`` becomes ``mode="copies"``; Flower's FedAvg names are renamed
    (:data:`FLOWER_RENAMED`); FedAvg settings EcoFed does not use (:data:`FLOWER_UNUSED`)
    are dropped with one warning that names each and what replaces it.

    ``parameters`` are the strategy's own keyword settings (:func:`keyword_settings`).

    Raises
    ------
    TypeError
        For an unknown setting: names ``owner`` and the closest known setting.
    """
    settings = dict(settings)
    if isinstance(settings.get("trainer"), str):  # the docs' trainer="copies"
        settings["mode"] = settings.pop("trainer")
    for flower, ours in FLOWER_RENAMED.items():
        if flower in settings:
            if ours in settings:
                raise TypeError(f"{owner}() got both {flower!r} and {ours!r}; give {ours!r}")
            settings[ours] = settings.pop(flower)
    unused = {k: settings.pop(k) for k in list(settings) if k in FLOWER_UNUSED}
    known = parameters | (set(TrainerConfig.__dataclass_fields__) - {"seed"})
    unknown = sorted(set(settings) - known)
    if unknown:
        hints = []
        for name in unknown:
            close = difflib.get_close_matches(name, sorted(known | set(FLOWER_RENAMED)), n=1)
            hints.append(f"{name!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        raise TypeError(
            f"{owner}() got unknown setting(s) {', '.join(hints)}; "
            f"known: {', '.join(sorted(known))}"
        )
    if unused:
        log(
            WARNING,
            "%s: the app's settings EcoFed does not use: %s",
            owner,
            "; ".join(f"{k} ({FLOWER_UNUSED[k]})" for k in sorted(unused)),
        )
    return settings


#: Constructor parameters that ``from_split`` fills from the split itself.
FROM_SPLIT = {"back", "fingerprint", "activation_shape", "num_classes", "front_description"}


def keyword_settings(*constructors: Any) -> set[str]:
    """The keyword settings ``from_split`` takes: the constructors' named parameters, less
    ``self``, ``*args``/``**kwargs`` and those the split fills in."""
    names: set[str] = set()
    for constructor in constructors:
        for name, param in inspect.signature(constructor).parameters.items():
            if param.kind not in (param.VAR_KEYWORD, param.VAR_POSITIONAL):
                names.add(name)
    return names - {"self"} - FROM_SPLIT
