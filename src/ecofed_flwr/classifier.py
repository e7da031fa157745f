"""The trained classifier a run keeps: frozen front + trained back in one file, ``model.pt``.

The file holds only tensors and plain values (loaded with ``torch.load(weights_only=True)``:
nothing pickled is ever executed): the front's and the back's state dicts and what is needed
to rebuild the model offline (registered model name, cut, input size, channels,
normalisation, classes, the front's fingerprint, the codec and the run's settings). The
front's tensors are in the file, so no weight download or weight package is needed to load
it; the fingerprint is checked on load.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from ecofed_flwr.data import prepare_images
from ecofed_flwr.models import SplitModel, create_split
from ecofed_flwr.models.split import front_fingerprint
from ecofed_flwr.results import MODEL_FILE

__all__ = ["FORMAT", "MODEL_FILE", "EcoFedClassifier", "load_classifier", "save_classifier"]

FORMAT = "ecofed-classifier/1"


class EcoFedClassifier(nn.Module):
    """Front + back as one classifier, in eval mode.

    Attributes
    ----------
    front : nn.Module
        The frozen front (no gradients).
    back : nn.Module
        The trained back.
    metadata : dict
        Model name, cut, weights the front came from, ``input_size``, ``in_chans``,
        ``mean``, ``std``, ``num_classes``, ``fingerprint``, ``codec``, ``config`` and the
        round the back comes from.
    """

    def __init__(self, front: nn.Module, back: nn.Module, metadata: Mapping[str, Any]) -> None:
        super().__init__()
        self.front = front
        self.back = back
        self.metadata = dict(metadata)
        self.eval()

    def forward(self, x: Tensor) -> Tensor:
        """Logits of inputs prepared like the training data (see :meth:`prepare`)."""
        if x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        return self.back(self.front(x))

    def prepare(self, images: np.ndarray) -> Tensor:
        """uint8 images ``(N, H, W[, C])`` as this model's input (size, channels, mean/std)."""
        m = self.metadata
        return prepare_images(
            images, m["input_size"], m["in_chans"], tuple(m["mean"]), tuple(m["std"])
        )

    @torch.no_grad()
    def predict(self, inputs: Tensor, batch_size: int = 500) -> Tensor:
        """Predicted classes of prepared ``inputs``, computed in batches."""
        self.eval()
        out = [
            self(inputs[i : i + batch_size]).argmax(1) for i in range(0, len(inputs), batch_size)
        ]
        return torch.cat(out) if out else torch.zeros(0, dtype=torch.int64)


def save_classifier(
    path: str | Path,
    split: SplitModel,
    back_state: Mapping[str, Tensor],
    codec: str,
    config: Mapping[str, Any],
    extra: Mapping[str, Any] | None = None,
) -> Path:
    """Write ``split``'s front with ``back_state`` as a classifier file, atomically.

    Parameters
    ----------
    path : str | Path
        Target file (or a folder, which gets :data:`MODEL_FILE`).
    split : SplitModel
        The run's split (its front is saved as is).
    back_state : Mapping[str, Tensor]
        The trained back's state dict.
    codec : str
        The activation codec the back was trained through.
    config : Mapping[str, Any]
        The run's settings (plain values).
    extra : Mapping[str, Any], optional
        More plain metadata (e.g. ``round``, ``val_accuracy``).

    Returns
    -------
    Path
        The written file.
    """
    target = Path(path)
    if target.is_dir():
        target = target / MODEL_FILE
    metadata = {
        "model": split.model_name,
        "cut": split.cut,
        "weights": split.weights,
        "input_size": int(split.input_size),
        "in_chans": int(split.in_chans),
        "mean": [float(v) for v in split.mean],
        "std": [float(v) for v in split.std],
        "num_classes": int(split.num_classes),
        "fingerprint": split.fingerprint,
        "codec": codec,
        "config": dict(config),
        **dict(extra or {}),
    }
    doc = {
        "format": FORMAT,
        "metadata": metadata,
        "front": {k: v.detach().cpu() for k, v in split.front.layers.state_dict().items()},
        "back": {k: v.detach().cpu() for k, v in back_state.items()},
    }
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".tmp")
    torch.save(doc, tmp)
    os.replace(tmp, target)
    return target


def load_classifier(path: str | Path, map_location: str | torch.device = "cpu") -> EcoFedClassifier:
    """Rebuild the classifier saved at ``path`` (a ``model.pt`` or a run folder holding one).

    Only tensors and plain values are read (``weights_only=True``). The model is rebuilt
    from the registry (a model registered in code must be registered again in this process),
    the saved weights are loaded into it and the front's fingerprint is checked.

    Raises
    ------
    FileNotFoundError
        If there is no such file.
    ValueError
        If the file is not an EcoFed classifier or its tensors do not match its metadata.
    """
    source = Path(path)
    if source.is_dir():
        source = source / MODEL_FILE
    if not source.is_file():
        raise FileNotFoundError(f"no EcoFed classifier at {source}")
    try:
        doc = torch.load(source, map_location=map_location, weights_only=True)
    except Exception as err:  # a foreign or damaged file: say which and why
        raise ValueError(f"{source} is not a readable EcoFed classifier: {err}") from err
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        found = doc.get("format") if isinstance(doc, dict) else type(doc).__name__
        raise ValueError(f"{source}: expected format {FORMAT!r}, got {found!r}")
    meta = doc["metadata"]
    split = create_split(
        meta["model"], meta["cut"], "random", meta["num_classes"], meta["input_size"]
    )
    try:
        split.front.layers.load_state_dict(doc["front"])
        split.back.load_state_dict(doc["back"])
    except RuntimeError as err:
        raise ValueError(f"{source}: the saved tensors do not fit {meta['model']}: {err}") from err
    fingerprint = front_fingerprint(
        split.model_name, split.cut, split.input_size, split.front.layers
    )
    if fingerprint != meta["fingerprint"]:
        raise ValueError(
            f"{source}: the front's fingerprint {fingerprint[:16]}... differs from the saved "
            f"{str(meta['fingerprint'])[:16]}...: the file is damaged or was edited"
        )
    split.front.fingerprint = fingerprint
    return EcoFedClassifier(split.front, split.back.to(memory_format=torch.channels_last), meta)
