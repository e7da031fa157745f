"""The lossless zstandard stage (``+zstd[L]``), applied after any family's encoding.

A family encodes to ``codes`` (plus statistics); the stage replaces ``codes`` by
``codes_zstd``, one zstd frame of their bytes (with content size and checksum), and records the
raw length in ``meta["zstd_raw_nbytes"]``. Undoing it checks the frame against the size the
codec's layout dictates before anything is decompressed, so a hostile frame can neither
inflate beyond that size nor carry trailing bytes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import zstandard

from ecofed_flwr.codec.batch import ArraySpec, CodecError, MetaValue, check_array, is_int, meta_int

__all__ = [
    "CODES_KEY",
    "DEFAULT_ZSTD_LEVEL",
    "MAX_DECOMPRESSED_BYTES",
    "RAW_NBYTES_KEY",
    "ZstdStage",
    "frame_bound",
]

#: Upper bound on the decompressed size of one zstd payload. The claimed size comes from the
#: (untrusted) sender; without a cap a tiny frame could make the server allocate terabytes.
MAX_DECOMPRESSED_BYTES = 1 << 33

DEFAULT_ZSTD_LEVEL = 3
#: Array key of the frame (it replaces ``codes``) and meta key of the raw length.
CODES_KEY = "codes_zstd"
RAW_NBYTES_KEY = "zstd_raw_nbytes"


def frame_bound(raw_nbytes: int) -> int:
    """Largest zstd frame (header and checksum included) a compressor emits for ``raw_nbytes``.

    libzstd's ``ZSTD_COMPRESSBOUND`` plus a margin for the frame header and checksum.
    """
    small = ((128 << 10) - raw_nbytes) >> 11 if raw_nbytes < (128 << 10) else 0
    return raw_nbytes + (raw_nbytes >> 8) + small + 32


@dataclass(frozen=True)
class ZstdStage:
    """zstd at ``level`` (1 to 22) over a payload's codes.

    Parameters
    ----------
    level
        Compression level; it changes the frame, never what it decompresses to.
    """

    level: int = DEFAULT_ZSTD_LEVEL

    def __post_init__(self) -> None:
        if not is_int(self.level) or not 1 <= self.level <= 22:
            raise CodecError(f"codec zstd level: expected 1..22, got {self.level!r}")

    @property
    def suffix(self) -> str:
        """Name suffix: ``+zstd`` at the default level, ``+zstdL`` otherwise."""
        return "+zstd" if self.level == DEFAULT_ZSTD_LEVEL else f"+zstd{self.level}"

    def spec(self, raw_nbytes: int) -> ArraySpec:
        """The frame array of codes of ``raw_nbytes`` bytes: 1-D uint8 of worst-case size."""
        return ArraySpec(np.dtype(np.uint8), None, frame_bound(raw_nbytes))

    def compress(self, codes: np.ndarray) -> tuple[np.ndarray, int]:
        """One frame of ``codes``' C-order bytes as a uint8 array, and the raw byte count."""
        raw = np.ascontiguousarray(codes).tobytes()
        comp = zstandard.ZstdCompressor(
            level=self.level, write_checksum=True, write_content_size=True
        ).compress(raw)
        return np.frombuffer(comp, dtype=np.uint8).copy(), len(raw)

    def decompress(
        self,
        data: np.ndarray,
        meta: dict[str, MetaValue],
        dtype: np.dtype[Any],
        shape: tuple[int, int],
    ) -> np.ndarray:
        """The codes ``dtype shape`` held in frame ``data``; :class:`CodecError` unless ``data``
        is one intact frame of exactly those bytes, as ``meta`` says."""
        data = check_array(data, CODES_KEY, np.dtype(np.uint8), None)
        if data.ndim != 1:
            raise CodecError(f"arrays['codes_zstd']: expected a 1-D array, got shape {data.shape}")
        want = shape[0] * shape[1] * dtype.itemsize
        raw_n = meta_int(meta, RAW_NBYTES_KEY, minimum=1)
        if raw_n != want:
            raise CodecError(
                f"meta['zstd_raw_nbytes']: expected {want} (codes {shape} {dtype}), got {raw_n}"
            )
        if raw_n > MAX_DECOMPRESSED_BYTES:
            raise CodecError(
                f"meta['zstd_raw_nbytes']: expected at most {MAX_DECOMPRESSED_BYTES}, got {raw_n}"
            )
        bound = frame_bound(raw_n)
        if data.size > bound:
            raise CodecError(
                f"arrays['codes_zstd']: expected a frame of at most {bound} bytes for {raw_n} "
                f"raw bytes, got {data.size}"
            )
        blob = np.ascontiguousarray(data).tobytes()
        try:
            params = zstandard.get_frame_parameters(blob)
        except zstandard.ZstdError as exc:
            raise CodecError(f"arrays['codes_zstd']: expected a zstd frame, got {exc}") from exc
        if params.content_size != raw_n:
            raise CodecError(
                f"arrays['codes_zstd']: expected a frame of {raw_n} bytes, the frame header "
                f"says {params.content_size}"
            )
        try:
            # One shot into a buffer of exactly the header's content size (checked above to be
            # the layout's size): a frame whose blocks produce more fails instead of growing
            # memory, and allow_extra_data=False refuses bytes after the frame.
            raw = zstandard.ZstdDecompressor().decompress(blob, allow_extra_data=False)
        except zstandard.ZstdError as exc:
            raise CodecError(
                f"arrays['codes_zstd']: expected one intact zstd frame, got {exc}"
            ) from exc
        if len(raw) != raw_n:
            raise CodecError(
                f"arrays['codes_zstd']: expected {raw_n} decompressed bytes, got {len(raw)}"
            )
        return np.frombuffer(raw, dtype=dtype).reshape(shape)
