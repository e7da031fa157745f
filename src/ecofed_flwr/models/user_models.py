"""A user's own ``nn.Sequential`` (or list of named stages) as a registered, splittable model.

One call, :func:`register_sequential`, makes the model known by name to
:func:`~ecofed_flwr.models.create_split`, the profiler and the run config (``model = "<name>"``)
of the process that made the call. Every boundary between two stages is a cut, named after
the stage before it.
"""

from __future__ import annotations

import copy
from collections import OrderedDict
from collections.abc import Callable, Sequence

import torch
from torch import nn

from ecofed_flwr.models.registry import ModelSpec, list_models, register_model
from ecofed_flwr.models.stages import Stages, sequential_stages
from ecofed_flwr.models.weights import WeightSource

__all__ = ["GIVEN_WEIGHTS", "register_sequential"]

GIVEN_WEIGHTS = "given"


def _named_stages(model: nn.Sequential | Sequence[tuple[str, nn.Module]]) -> Stages:
    if isinstance(model, nn.Sequential):
        pairs: list[object] = list(model.named_children())
    elif isinstance(model, nn.Module):
        raise TypeError(
            f"expected an nn.Sequential or a list of (name, module) stages, got a single "
            f"{type(model).__name__}; wrap its parts in nn.Sequential"
        )
    else:
        pairs = list(model)
    stages: Stages = []
    for i, pair in enumerate(pairs):
        if not (isinstance(pair, tuple) and len(pair) == 2):
            raise TypeError(f"stage {i} must be a (name, module) pair, got {pair!r:.80}")
        name, module = pair
        if not isinstance(name, str) or not name or any(c.isspace() for c in name):
            raise ValueError(f"stage {i} needs a non-empty name without spaces, got {name!r}")
        if not isinstance(module, nn.Module):
            raise TypeError(
                f"stage {name!r} must be an nn.Module, got {type(module).__name__}"
                + ("; wrap a function in a Module" if callable(module) else "")
            )
        stages.append((name, module))
    names = [name for name, _ in stages]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ValueError(f"stage names must be unique; repeated: {', '.join(repeated)}")
    if len(stages) < 2:
        raise ValueError(f"a splittable model needs at least 2 stages, got {len(stages)}")
    return stages


def _output_classes(template: nn.Sequential, in_chans: int, input_size: int) -> int:
    """Run a zero image through the stages, naming the stage that fails or the bad output."""
    x = torch.zeros(1, in_chans, input_size, input_size)
    previous = f"the input {tuple(x.shape)}"
    with torch.no_grad():
        for name, stage in template.named_children():
            try:
                x = stage(x)
            except Exception as err:
                raise ValueError(
                    f"stage {name!r} fails on {previous}: {type(err).__name__}: {err}"
                ) from err
            if not isinstance(x, torch.Tensor):
                raise TypeError(
                    f"stage {name!r} returns {type(x).__name__}; every stage must return one "
                    "tensor (the next stage's input)"
                )
            previous = f"the output of {name!r} {tuple(x.shape)}"
    if x.dim() != 2:
        raise ValueError(
            f"the last stage must output class scores of shape (N, classes), got {tuple(x.shape)}"
        )
    return int(x.shape[1])


def _normalisation(values: Sequence[float], in_chans: int, what: str) -> tuple[float, ...]:
    out = tuple(float(v) for v in values)
    if len(out) not in (1, in_chans):
        raise ValueError(f"{what} needs 1 or {in_chans} values, got {len(out)}")
    if what == "std" and min(out) <= 0:
        raise ValueError(f"std must be > 0, got {out}")
    return out


def _builder(template: nn.Sequential) -> Callable[[], nn.Module]:
    def build() -> nn.Module:
        # A fresh, seeded initialisation (create_split seeds the RNG): what "random" means.
        model = copy.deepcopy(template)
        for module in model.modules():
            reset = getattr(module, "reset_parameters", None)
            if callable(reset):
                reset()
        return model

    return build


def _stage_fn(model_name: str, own_classes: int) -> Callable[[nn.Module, int], Stages]:
    def stages(model: nn.Module, num_classes: int) -> Stages:
        if num_classes == own_classes:
            return list(model.named_children())
        try:
            return sequential_stages(model, num_classes)
        except TypeError as err:
            raise ValueError(
                f"model {model_name} outputs {own_classes} classes and {num_classes} were asked "
                f"for; only a final nn.Linear can be replaced ({err})"
            ) from err

    return stages


def register_sequential(
    name: str,
    model: nn.Sequential | Sequence[tuple[str, nn.Module]],
    *,
    default_cut: str | None = None,
    input_size: int = 32,
    in_chans: int = 3,
    mean: Sequence[float] = (0.5,),
    std: Sequence[float] = (0.5,),
    replace: bool = False,
) -> ModelSpec:
    """Register a user's own sequential classifier as a splittable model.

    After this call, ``create_split(name, cut=...)`` cuts the model after the named stage,
    and a run config with ``model = "<name>"`` uses it, in this process. Register it in a
    module that every process of a run imports (the app module of the ServerApp and the
    ClientApp), since simulation and deployment run clients in other processes.

    Parameters
    ----------
    name : str
        Registry name: non-empty, without spaces or ``:``, not already registered.
    model : nn.Sequential or sequence of (str, nn.Module)
        The whole classifier as stages run one after another; the children of an
        ``nn.Sequential`` (named ``"0"``, ``"1"``... unless built from an ``OrderedDict``), or
        explicit ``(name, module)`` pairs. The last stage outputs ``(N, classes)`` scores.
        The modules are copied (to the CPU) at registration; later changes to them do not
        reach the registry.
    default_cut : str, optional (default: the first stage)
        The cut used when none is given.
    input_size : int, default 32
        Square input size in pixels the model is built for.
    in_chans : int, default 3
        Input channels (the data pipeline feeds 1 or 3).
    mean, std : sequence of float, default (0.5,) and (0.5,)
        Input normalisation, 1 or ``in_chans`` values; the default maps pixels to [-1, 1].
    replace : bool, default False
        Allow replacing an existing entry of the same name.

    Returns
    -------
    ModelSpec
        The registry entry. Its weight sources: ``"given"`` (the default: the weights the
        modules held at registration, BatchNorm statistics included), ``"random"`` (every
        layer with ``reset_parameters`` re-initialised from the seed) and ``"file:PATH"``.

    Raises
    ------
    TypeError
        If ``model`` is not an ``nn.Sequential`` or a sequence of pairs, a stage is not an
        ``nn.Module``, or a stage returns something other than one tensor.
    ValueError
        For a bad or taken name, fewer than 2 stages, repeated or empty stage names, an
        unknown ``default_cut``, bad normalisation, or a model that fails on a zero input
        of ``(1, in_chans, input_size, input_size)`` (the message names the stage) or does
        not end in ``(N, classes)`` scores.

    Notes
    -----
    Asking for a different number of classes than the model outputs replaces its final
    ``nn.Linear`` by a new, seeded one, as for the built-in models.
    """
    if not isinstance(name, str) or not name or any(c.isspace() or c == ":" for c in name):
        raise ValueError(f"model name must be non-empty, without spaces or ':', got {name!r}")
    if name in list_models() and not replace:
        raise ValueError(
            f"model {name!r} is already registered; pick another name or pass replace=True"
        )
    for what, value in (("input_size", input_size), ("in_chans", in_chans)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{what} must be a positive int, got {value!r}")
    stages = _named_stages(model)
    cut_names = [stage_name for stage_name, _ in stages[:-1]]
    cut = default_cut if default_cut is not None else cut_names[0]
    if cut not in cut_names:
        raise ValueError(
            f"default_cut {cut!r} is not a cut of {name}; cuts: {', '.join(cut_names)}"
        )
    mean_values = _normalisation(mean, in_chans, "mean")
    std_values = _normalisation(std, in_chans, "std")
    template = copy.deepcopy(nn.Sequential(OrderedDict(stages))).to("cpu")
    # Eval mode for the probe, so BatchNorm statistics stay as registered; train mode after,
    # like every freshly built model.
    own_classes = _output_classes(template.eval(), in_chans, input_size)
    template.train()
    given = WeightSource(
        kind="state",
        state=template.state_dict(),  # the template is private and never trained
        description="the weights the model held when it was registered",
    )
    return register_model(
        ModelSpec(
            name=name,
            build=_builder(template),
            stages=_stage_fn(name, own_classes),
            default_cut=cut,
            input_size=input_size,
            in_chans=in_chans,
            mean=mean_values,
            std=std_values,
            weights={GIVEN_WEIGHTS: given},
            default_weights=GIVEN_WEIGHTS,
        )
    )
