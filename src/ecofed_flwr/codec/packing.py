"""Bit packing of sub-byte codes: one byte-aligned row per sample, first code in the MSBs.

``u*`` and ``lq*`` codes of ``b < 8`` bits are packed ``8 // b`` to a byte; each sample's row is
padded to whole bytes with zero codes, so any slice of samples unpacks without touching the
others. 8-bit codes are stored as they are.
"""

from __future__ import annotations

import numpy as np

__all__ = ["UNPACK_LUT", "pack", "packed_row_nbytes", "unpack"]


def packed_row_nbytes(values: int, bits: int) -> int:
    """Bytes of one packed row of ``values`` codes of ``bits`` bits: ``ceil(values*bits/8)``."""
    return -(-values * bits // 8)


def pack(codes: np.ndarray, bits: int) -> np.ndarray:
    """Pack ``(N, V)`` uint8 codes < 2**bits into byte-aligned rows ``(N, ceil(V*bits/8))``."""
    if bits == 8:
        return codes
    n, v = codes.shape
    if bits == 1:
        return np.packbits(codes, axis=1)
    per_byte = 8 // bits
    nbytes = -(-v // per_byte)
    if v != nbytes * per_byte:
        padded = np.zeros((n, nbytes * per_byte), dtype=np.uint8)
        padded[:, :v] = codes
        codes = padded
    c = codes.reshape(n, nbytes, per_byte)
    # A loop over the (at most 4) code slots of a byte, each step vectorised over all samples.
    out = c[:, :, 0] << np.uint8(bits * (per_byte - 1))
    for j in range(1, per_byte):
        out |= c[:, :, j] << np.uint8(bits * (per_byte - 1 - j))
    return out


def _unpack_lut(bits: int, dtype: type[np.generic]) -> np.ndarray:
    """Table ``(256, 8 // bits)``: the codes held in each possible byte, MSB first."""
    per_byte = 8 // bits
    shifts = np.arange(per_byte - 1, -1, -1) * bits
    return ((np.arange(256)[:, None] >> shifts) & ((1 << bits) - 1)).astype(dtype)


#: One table lookup turns a packed byte straight into float32 codes (u*: scaled next) or level
#: indices (lq*): a single pass instead of shift, mask and cast passes over a broadcast with a
#: tiny inner axis (3-6x slower).
UNPACK_LUT = {(b, np.dtype(t)): _unpack_lut(b, t) for b in (1, 2, 4) for t in (np.float32, np.intp)}


def unpack(packed: np.ndarray, bits: int, values: int, dtype: type[np.generic]) -> np.ndarray:
    """Inverse of :func:`pack` for rows of ``values`` codes, as ``dtype (n, values)``."""
    if bits == 8:
        return packed.astype(dtype)
    lut = UNPACK_LUT[bits, np.dtype(dtype)]
    out = np.take(lut, packed, axis=0).reshape(packed.shape[0], packed.shape[1] * lut.shape[1])
    return out if out.shape[1] == values else out[:, :values]
