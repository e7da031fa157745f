"""Turn uint8 image arrays into normalised float tensors for a model's front-end."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from .errors import DataError

__all__ = ["prepare_images"]

# 4096 images of 3x224x224 float32 would be 2.4 GB; budget the chunk by output elements.
_CHUNK_ELEMENTS = 1 << 24


def _per_channel(values: Sequence[float], channels: int, what: str) -> torch.Tensor:
    vals = [float(v) for v in values]
    if len(vals) == 1:
        vals = vals * channels
    if len(vals) != channels:
        raise DataError(f"{what} has {len(vals)} values, expected 1 or {channels}")
    if not all(np.isfinite(vals)):
        raise DataError(f"{what} must be finite, got {vals}")
    return torch.tensor(vals, dtype=torch.float32).view(1, channels, 1, 1)


def prepare_images(
    images: np.ndarray,
    input_size: int,
    channels: int,
    mean: tuple[float, ...],
    std: tuple[float, ...],
) -> torch.Tensor:
    """Convert uint8 images into a normalised float32 NCHW tensor.

    Steps: scale to [0, 1]; convert grey to RGB by repeating (``channels == 3``) or RGB to
    grey by averaging (``channels == 1``); resize to ``input_size`` x ``input_size`` with
    bilinear interpolation (``antialias=False, align_corners=False``) when the size
    differs; normalise with ``(x - mean) / std`` per channel.

    Parameters
    ----------
    images : numpy.ndarray
        uint8 array ``(N, H, W)`` (grey) or ``(N, H, W, C)`` with ``C`` in {1, 3, 4}
        (a fourth, alpha channel is dropped).
    input_size : int
        Output height and width.
    channels : {1, 3}
        Output channels.
    mean, std : tuple of float
        Per-channel normalisation (length ``channels``, or 1 to broadcast); ``std > 0``.

    Returns
    -------
    torch.Tensor
        float32 tensor of shape ``(N, channels, input_size, input_size)``.

    Raises
    ------
    DataError
        On a non-uint8 or badly shaped input, an unsupported channel count, or bad
        ``mean`` / ``std``.

    Notes
    -----
    Works in chunks, so peak extra memory stays near 64 MB besides the output; resizing
    happens before the grey-to-RGB repeat because bilinear resizing commutes with it and
    costs a third as much on one channel.
    """
    if not isinstance(images, np.ndarray) or images.dtype != np.uint8:
        kind = getattr(images, "dtype", type(images).__name__)
        raise DataError(f"prepare_images expects a uint8 numpy array, got {kind}")
    if images.ndim == 3:
        images = images[..., None]
    if images.ndim != 4:
        raise DataError(
            f"prepare_images expects (N, H, W) or (N, H, W, C) images, got {images.shape}"
        )
    if isinstance(input_size, bool) or not isinstance(input_size, int) or input_size < 1:
        raise DataError(f"input_size must be a positive int, got {input_size!r}")
    if channels not in (1, 3):
        raise DataError(f"channels must be 1 or 3, got {channels!r}")
    in_channels = int(images.shape[-1])
    if in_channels == 4:
        images = images[..., :3]
        in_channels = 3
    if in_channels not in (1, 3):
        raise DataError(f"input images have {in_channels} channels; supported: 1, 3 or 4")
    mean_t = _per_channel(mean, channels, "mean")
    std_t = _per_channel(std, channels, "std")
    if bool((std_t <= 0).any()):
        raise DataError(f"std must be > 0, got {tuple(std)}")
    # (x / 255 - mean) / std == x * scale + shift: one fused multiply-add per element.
    scale = 1.0 / (255.0 * std_t)
    shift = -mean_t / std_t

    n, height, width = (int(s) for s in images.shape[:3])
    out = torch.empty((n, channels, input_size, input_size), dtype=torch.float32)
    per_image = max(channels * input_size * input_size, in_channels * height * width)
    chunk = max(1, _CHUNK_ELEMENTS // per_image)
    resize = (height, width) != (input_size, input_size)
    for start in range(0, n, chunk):
        stop = min(n, start + chunk)
        # astype copies, so read-only (cached) inputs never reach torch.from_numpy.
        x = torch.from_numpy(images[start:stop].astype(np.float32)).permute(0, 3, 1, 2)
        if in_channels == 3 and channels == 1:
            x = x.mean(dim=1, keepdim=True)
        if resize:
            x = F.interpolate(
                x,
                size=(input_size, input_size),
                mode="bilinear",
                align_corners=False,
                antialias=False,
            )
        if x.shape[1] != channels:
            x = x.expand(-1, channels, -1, -1)
        torch.addcmul(shift, x, scale, out=out[start:stop])
    return out
