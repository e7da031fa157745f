"""The bytes of every codec, pinned.

Each case encodes a fixed seeded float32 input with one codec name and compares SHA-256 digests
of what comes out against digests recorded from the codec as it stood before the codecs were
split by family (issue #16): every payload array (its dtype, shape and bytes), the metadata
(JSON with sorted keys), the decoded float32 output (whole and a strided slice), and the
``value_range`` and ``error_bound`` arrays. A change to any encoder, decoder, packing, name or
error model shows up here as a changed digest; changing a digest is a wire format change.

The names cover every base of :func:`list_codecs` and the options of the grammar
(``-ch``, ``-clipP``, ``-gN``, ``+zstd[L]``, non-canonical spellings). zstd frames are bytes of
the zstd library: they are compared only under the libzstd version they were recorded with
(``PINNED_ZSTD``); the decompressed codes are compared always.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable

import numpy as np
import pytest
import zstandard

from ecofed_flwr.codec import list_codecs, make_codec

#: libzstd version the ``codes_zstd`` digests were recorded with.
PINNED_ZSTD = (1, 5, 7)


def _main_input() -> np.ndarray:
    """``(23, 4, 3, 3)``: channels of different scales, exact zeros, negatives, outliers."""
    rng = np.random.default_rng(16)
    scale = np.array([0.5, 2.0, 10.0, 1.0]).reshape(1, 4, 1, 1)
    shift = np.array([0.0, 1.0, -3.0, 0.0]).reshape(1, 4, 1, 1)
    x = rng.normal(size=(23, 4, 3, 3)) * scale + shift
    x[:, 3] = np.maximum(x[:, 3], 0.0)  # a post-ReLU channel: many exact zeros
    x[7] = 0.0  # a sample of zeros
    x[12, 2, 1, 1] = 900.0  # a large outlier (within float16 range)
    x[5, 0, 0, 2] = -37.5
    return x.astype(np.float32)


def _flat_input() -> np.ndarray:
    """``(9, 5)``: odd value count per sample (padded packed rows), channels of one value."""
    x = np.random.default_rng(17).standard_t(3, size=(9, 5))
    x[2, 3] = 0.0
    return x.astype(np.float32)


def _scalar_input() -> np.ndarray:
    """``(11,)``: scalar samples (sample shape ``()``), zero among them."""
    return np.linspace(-2.0, 3.0, 11, dtype=np.float32)


INPUTS: dict[str, Callable[[], np.ndarray]] = {
    "main": _main_input,
    "flat": _flat_input,
    "scalar": _scalar_input,
}

BASES = ["fp32", "fp16", "paper", "u8", "u4", "u2", "u1", "lq4", "lq2", "lq1"]
MAIN_VARIANTS = [
    "fp32+zstd",
    "fp16+zstd",
    "fp16+zstd19",
    "paper-ch",
    "paper-g5",
    "paper-g1",
    "paper-g23",
    "paper-g10",  # non-canonical: the paper default, named "paper"
    "paper-ch-g4",
    "paper-clip99",
    "paper-ch-clip97.5",
    "paper+zstd",
    "paper-ch+zstd7",
    "u8-ch",
    "u8-g5",
    "u8-clip99.9",
    "u8+zstd",
    "u8+zstd1",
    "u8+zstd3",  # non-canonical: the default level, named "u8+zstd"
    "u8+zstd19",
    "u4-ch",
    "u4-g10",
    "u4-g100",
    "u4-g100-ch",  # non-canonical order, named "u4-ch-g100"
    "u4-clip75.5",
    "u4-ch-clip99-g7",
    "u4-ch+zstd",
    "u4+zstd22",
    "u2-ch",
    "u2-g10",
    "u2-clip99.9",
    "u2-ch-clip99.9-g5+zstd",
    "u2-clip99.90-ch+zstd3",  # non-canonical, named "u2-ch-clip99.9+zstd"
    "u1-ch",
    "u1-g1",
    "u1-clip90+zstd",
    "lq4-ch",
    "lq4-g5",
    "lq4-ch-g5+zstd",
    "lq2-ch",
    "lq2-g10",
    "lq2-g1",
    "lq2-ch+zstd",
    "lq1-ch",
    "lq1-g7",
    "lq1+zstd",
]
FLAT_VARIANTS = ["paper-ch", "u4-ch", "u2-ch-g4", "u1-ch-clip95", "lq2-ch", "lq1-ch-g2+zstd"]
SCALAR_VARIANTS = ["paper-g4", "u4-g3+zstd", "u2-clip80", "lq2-g5"]

CASES: list[tuple[str, str]] = [
    *[("main", name) for name in [*BASES, *MAIN_VARIANTS]],
    *[("flat", name) for name in [*BASES, *FLAT_VARIANTS]],
    *[("scalar", name) for name in [*BASES, *SCALAR_VARIANTS]],
]


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _array_digest(a: np.ndarray) -> str:
    """``"<dtype> <shape, e.g. 23x36> <sha256 of the C-order bytes>"``."""
    shape = "x".join(map(str, a.shape))
    return f"{a.dtype.str} {shape} {_sha(np.ascontiguousarray(a).tobytes())}"


def digests(x: np.ndarray, name: str) -> dict[str, str]:
    """Digests of everything ``make_codec(name)`` makes of ``x``, by what they are of."""
    codec = make_codec(name)
    batch = codec.encode(x)
    out = {key: _array_digest(a) for key, a in batch.arrays.items()}
    if "codes_zstd" in batch.arrays:
        out["zstd_raw_codes"] = _array_digest(codec.without_lossless(batch).arrays["codes"])
    out["meta"] = _sha(json.dumps(batch.meta, sort_keys=True).encode())
    out["decoded"] = _array_digest(codec.decode(batch))
    out["decoded[::-2]"] = _array_digest(codec.decode(batch, slice(None, None, -2)))
    lo, hi = codec.value_range(batch)
    out["value_range.lo"] = _array_digest(lo)
    out["value_range.hi"] = _array_digest(hi)
    out["error_bound"] = _array_digest(codec.error_bound(batch))
    return out


def _parse(text: str) -> dict[tuple[str, str], dict[str, str]]:
    """``INPUT NAME`` lines, each followed by indented ``WHAT DIGEST`` lines."""
    pins: dict[tuple[str, str], dict[str, str]] = {}
    entry: dict[str, str] = {}
    for line in text.strip().splitlines():
        if line.startswith(" "):
            what, digest = line.strip().split(" ", 1)
            entry[what] = digest
        else:
            key, name = line.split()
            entry = pins.setdefault((key, name), {})
    return pins


@pytest.mark.parametrize(("key", "name"), CASES)
def test_codec_bytes_are_pinned(key: str, name: str) -> None:
    got = digests(INPUTS[key](), name)
    want = dict(PINS[key, name])
    if zstandard.ZSTD_VERSION != PINNED_ZSTD:  # another libzstd may emit another frame
        got.pop("codes_zstd", None)
        want.pop("codes_zstd", None)
    assert got == want


def test_every_listed_codec_is_pinned() -> None:
    assert list_codecs() == BASES
    for key in INPUTS:
        for name in list_codecs():
            assert (key, name) in PINS


def test_inputs_are_what_the_cases_say() -> None:
    x = _main_input()
    assert x.shape == (23, 4, 3, 3) and x.dtype == np.float32
    assert (x == 0).sum() > 40 and (x < 0).sum() > 100 and float(x.max()) == 900.0
    assert (x[7] == 0).all()
    assert (_flat_input() == 0).sum() == 1 and (_scalar_input() == 0).sum() == 1


# Recorded with the codec of commit 6ae6bf8 (src/ecofed_flwr/codec.py, before the split).
PINS = _parse(
    """
main fp32
  codes <f4 23x36 b53f2464ad8e3c372697e5cf4c1a017d070dc63f4fc231dc83c36ac1d6f7212c
  meta 372ce66b324ad7783af2ca1292f0f431842f9f80ba3b9c99cacf71eeeaa15bad
  decoded <f4 23x4x3x3 b53f2464ad8e3c372697e5cf4c1a017d070dc63f4fc231dc83c36ac1d6f7212c
  decoded[::-2] <f4 12x4x3x3 8c7d1a0e2d0e20484d0c1045bcfab3a6ab0e247da987daa0b2f86acb9fbe1d04
  value_range.lo <f8 1x1x1x1 d1075b9cce599aeaf19ca7701e9ccbefed80ba202e300bb00e2bb24cddba1ba2
  value_range.hi <f8 1x1x1x1 25a2bb9e8b123cafaae979f5fc34503fe67d8482f280260011ad677c582acf62
  error_bound <f8 23x4x3x3 943acf629f642c2454918597d58911ece4f4dd744a46caa340358b3010e691f6
main fp16
  codes <f2 23x36 4f6b382dc04d39178156f65c107bb39dfaaf69fc7969edbbecfa654a85771aaf
  meta e9dae1f98ef52e1013d2a9326d08a1357fba2ce737a5bc095713d8a7240d6214
  decoded <f4 23x4x3x3 a978c432ff5d7ca9ada0ec2ff49fc7e8e12a56f1909d4b1784de251a95b7c033
  decoded[::-2] <f4 12x4x3x3 b683ac95fad101b3574488247ef003b10c9809a5ec7cd5ae216265c69d071d6c
  value_range.lo <f8 1x1x1x1 4bc0c850de7958e50805c191a2b0167b01dc0c65213942253872acbdaffb30da
  value_range.hi <f8 1x1x1x1 b0069aa62b1916b0c1bcbb35249b02b222f31a5763bfc2e4095fd566d4d8e152
  error_bound <f8 23x4x3x3 cc2e33664f4ce7eb8c64ad411d2a2e152126fd5b39f882a0fa8c6cb4ab080e33
main paper
  codes |i1 23x36 064c5e9447fae203406a24364db6ddcd931608f6ade052082f8b54fc536d4c0f
  scales <f4 3 7414d3155b1b97c6dc59d5865d78b03392275e771d1367078871007e7ff7e032
  meta d446b6d17e93951e8bf5a0559a8b56342cd974870b8fc32fa179a65d639235e8
  decoded <f4 23x4x3x3 6bd990bb274af64edbd824985065896f9a2991c583db6904f71bbce1de23a181
  decoded[::-2] <f4 12x4x3x3 51615bffb97ff2c82cd8072d074ada4857792ef8ca794982f4fbb29c8231bfb5
  value_range.lo <f8 23x1x1x1 eda80a6dd87bdacef28d3632b12adcf4c21801ae76b8229e589c3cc906fed940
  value_range.hi <f8 23x1x1x1 088854e3c6268f13a702a24b0f0a15948721e3b5643f8af4569818925f5526ab
  error_bound <f8 23x1x1x1 a63e2d055ec9eaa8eccbe56b24e84ad18593bef781b9e1c1bbf0ce8a102468ad
main u8
  codes |u1 23x36 13c0a31aece78184c297e1bf031f214ac5601812bdc487fd724935138bc0468e
  offsets <f4 1 4c2eecd7ac74a89b45d8d90ef8c499927f80d6d283a4e12b2b052af9d3c32a1a
  scales <f4 1 bcbfea163ffcf54da853b10237f8b8b8a53c29fdeb168f2c8a0d423d0c0809ce
  meta ba3296fcae160b997162851bca740fa728700d4a45c369668294d831145735ef
  decoded <f4 23x4x3x3 4dce9f9d3c2d6e86b9f4e758a8243b100275c796200ca4c4e226a4faeb4f8c3d
  decoded[::-2] <f4 12x4x3x3 1715a53adb594e943cda9ffee0b803f49b81bc67707aabb703e3c85297e0a195
  value_range.lo <f8 23x1x1x1 410210fee12669cc92ca05037de41eca514b207922db56ce83bec62089d575f5
  value_range.hi <f8 23x1x1x1 e5d1927e944877ddeb94f7aec90352bb49862b27dd27e6b536e8fea2d0e6663b
  error_bound <f8 23x1x1x1 d6ebaf5255c45e20e54d56a4b5f3455a77a479accb2e7fa024da9fd04eb7a3cc
main u4
  codes |u1 23x18 0b175295ce79c9dc7bbd8344a18153c4658afe7b6b2d8cb3f08558b83fd38bec
  offsets <f4 1 4c2eecd7ac74a89b45d8d90ef8c499927f80d6d283a4e12b2b052af9d3c32a1a
  scales <f4 1 374e135e9cbfb65dfb246eb718c82f04d0bbab06a8a9fb314073687545ae2f3e
  meta ed93d441d3951a081aec4ffd6beeb6b4c77d1329a73950b4eca94171962fbf24
  decoded <f4 23x4x3x3 dc4f83724057ecef909fe70972876a18d8607b2bd8490798d221e99e901459a7
  decoded[::-2] <f4 12x4x3x3 72aecb299dcc2a61186ac1e4274b0e3544db3141d57bc238180cc95fb14e8f50
  value_range.lo <f8 23x1x1x1 410210fee12669cc92ca05037de41eca514b207922db56ce83bec62089d575f5
  value_range.hi <f8 23x1x1x1 3fe91fb5d0df29459a093cd7cac8b5e9fd3b5fa942c4ced5ce441fd048d0503c
  error_bound <f8 23x1x1x1 85145fa4d1ee6a0eb0ff8cd6b4dbea3c0d268bd189fcd26ac4433b765d689fea
main u2
  codes |u1 23x9 be87de60e1f4c57c538383e4661a4c89a9b30a85e579ecc9ac35638ce28c3d6c
  offsets <f4 1 4c2eecd7ac74a89b45d8d90ef8c499927f80d6d283a4e12b2b052af9d3c32a1a
  scales <f4 1 c235e195513b39d9ca01ac21e8d4bedc19b1edd22cdcc3788099ce34f2caa665
  meta 99308898a2808257611d6a6db7cb6dfc44b5c747d15dfbee3d1c3161c821dfcd
  decoded <f4 23x4x3x3 ed07f5608bef04a2f9578389e5b11eb6ccf4f485b8c18025291a87dee08238bb
  decoded[::-2] <f4 12x4x3x3 fd6cc56fab1e6db998fd9b166140a01915d59b9a5cd1b3deb8338980a80943ef
  value_range.lo <f8 23x1x1x1 410210fee12669cc92ca05037de41eca514b207922db56ce83bec62089d575f5
  value_range.hi <f8 23x1x1x1 3fe91fb5d0df29459a093cd7cac8b5e9fd3b5fa942c4ced5ce441fd048d0503c
  error_bound <f8 23x1x1x1 5c25d3106dd3d0125153e58e996468b3a92b9c50aaee2536a63fdc8a02225983
main u1
  codes |u1 23x5 45710526de41fc861b75a70dce7f44030dd2e77120c4d5284c0c0b03076a9ad9
  offsets <f4 1 4c2eecd7ac74a89b45d8d90ef8c499927f80d6d283a4e12b2b052af9d3c32a1a
  scales <f4 1 7f74e5c78359cb0f95853b32eed291e610b49f41553a36779aca3c7a89a3a9df
  meta 5078a6ebb930aacfaf23c9cb668047407065da039004f51bcc2de578b8c7b720
  decoded <f4 23x4x3x3 ed07f5608bef04a2f9578389e5b11eb6ccf4f485b8c18025291a87dee08238bb
  decoded[::-2] <f4 12x4x3x3 fd6cc56fab1e6db998fd9b166140a01915d59b9a5cd1b3deb8338980a80943ef
  value_range.lo <f8 23x1x1x1 410210fee12669cc92ca05037de41eca514b207922db56ce83bec62089d575f5
  value_range.hi <f8 23x1x1x1 3fe91fb5d0df29459a093cd7cac8b5e9fd3b5fa942c4ced5ce441fd048d0503c
  error_bound <f8 23x1x1x1 541e12ea28d687b751b99308a5b06d9b773e9a29fda52b276c115acf9a5960c7
main lq4
  codes |u1 23x18 f0736631e98933ccb0030dafc4752c524bc3be0b9779c047924e894989175c86
  offsets <f4 1 abc96321c9c90e622f355d0e37b5ea72bd2a5ebbcbdc86289c173bc54bc7b871
  scales <f4 1x15 6646f73369aa77837f2cd4b72b7c752e63e430241174c6066ace02e39da72096
  meta 2cc058f4ebb75f0cf14d5886f62cc29beebe4c02e47350b6971f49f5305b8f36
  decoded <f4 23x4x3x3 68a010e0c5ce83f597640e3c9fe4ad1a3921f95c137f7c552ad0f8c510ee676d
  decoded[::-2] <f4 12x4x3x3 ed345027c047fa5621bc37591e420a0473e810c31c7d87e9274a97c4964928aa
  value_range.lo <f8 23x1x1x1 f3068d6f70252c5b280e82f4206c9bd52f5f3434fcbc62e52a56de119a4607e1
  value_range.hi <f8 23x1x1x1 3fe91fb5d0df29459a093cd7cac8b5e9fd3b5fa942c4ced5ce441fd048d0503c
  error_bound <f8 23x1x1x1 2246c8c7ded6909b2fb9f620e84699b2757deebdd642a39e0cbbe00184bc339a
main lq2
  codes |u1 23x9 234aeee5a4f51ad479ed58bfc88ae8675e97b6b1be00852849a31e9811dad48e
  offsets <f4 1 dc900aae217bff6a2d2650f72e66105ccc7551010051aafe3f3740a582604cb0
  scales <f4 1x3 66089e37d4684ba2c0a66b4266d32021213396b670a5e8e56be6d8e0c229edff
  meta 8df727842d1b2a4363876d7bf3581b3bd8aa4d63144fd9c6094ce6a2895c10a1
  decoded <f4 23x4x3x3 073e0c46780392d675d6efa5ee0c6cd02d311039f5dbb9494d9f5620dc71e18c
  decoded[::-2] <f4 12x4x3x3 144974026fefd4dfca840d7a90faa8fdc8a0034050001f3ecc5e61c018b7d49b
  value_range.lo <f8 23x1x1x1 e815af4b9bd5a4e5805a4f8e80daba5923d363d4512565dd174a8f8551f8055f
  value_range.hi <f8 23x1x1x1 3fe91fb5d0df29459a093cd7cac8b5e9fd3b5fa942c4ced5ce441fd048d0503c
  error_bound <f8 23x1x1x1 2fce7444fdc2bf16b8e9d388c93bbbdbe547364bfba8506772faf43c806a7e52
main lq1
  codes |u1 23x5 45710526de41fc861b75a70dce7f44030dd2e77120c4d5284c0c0b03076a9ad9
  offsets <f4 1 5ee615d68f882fd45a2ef5094176f22c62107c66b9181ec21d7b31152fa21df2
  scales <f4 1x1 e809a0de9a95e73c8367bbf69ed997a8b0efd53ed334b65937012654be5be3eb
  meta fa5cc9f0ec5425065504e3def0e5280134f6ccee063cc6aee724f42caf9cbb62
  decoded <f4 23x4x3x3 1f5be14931b5669cabf878591f7e16029f33405c4d45fe1013ae89ba609a5cd9
  decoded[::-2] <f4 12x4x3x3 546df54dba6d24101cad1f146067e05707e3f40d05eccad8098f6aca5f018aa5
  value_range.lo <f8 23x1x1x1 d37cdc7776975be8ab94f11df9697368345970568305533846871ff3d8ef9248
  value_range.hi <f8 23x1x1x1 3fe91fb5d0df29459a093cd7cac8b5e9fd3b5fa942c4ced5ce441fd048d0503c
  error_bound <f8 23x1x1x1 4666e286aa7b83a1c2575b0c22c7fae127e082fc8042253bd2963b020b0bb89c
main fp32+zstd
  codes_zstd |u1 2788 f360e9090eefb68b4bfec3c34b53b3e36c070c1e4e756775530d26a37b8a4eba
  zstd_raw_codes <f4 23x36 b53f2464ad8e3c372697e5cf4c1a017d070dc63f4fc231dc83c36ac1d6f7212c
  meta f24d8ea3f4859be1b2c788149eaf2886c50d41301b3fcebb5c6ea6aa19ca808e
  decoded <f4 23x4x3x3 b53f2464ad8e3c372697e5cf4c1a017d070dc63f4fc231dc83c36ac1d6f7212c
  decoded[::-2] <f4 12x4x3x3 8c7d1a0e2d0e20484d0c1045bcfab3a6ab0e247da987daa0b2f86acb9fbe1d04
  value_range.lo <f8 1x1x1x1 d1075b9cce599aeaf19ca7701e9ccbefed80ba202e300bb00e2bb24cddba1ba2
  value_range.hi <f8 1x1x1x1 25a2bb9e8b123cafaae979f5fc34503fe67d8482f280260011ad677c582acf62
  error_bound <f8 23x4x3x3 943acf629f642c2454918597d58911ece4f4dd744a46caa340358b3010e691f6
main fp16+zstd
  codes_zstd |u1 1494 738f324109e10cf2e724cf12c80bf8b32a79b02fbacf3bd78df4ec7ab6ec02fb
  zstd_raw_codes <f2 23x36 4f6b382dc04d39178156f65c107bb39dfaaf69fc7969edbbecfa654a85771aaf
  meta aa3e216104c366510b9585084d8bd1cf2c5d2aa4eb8c6b2ee449d3a1fe89f65b
  decoded <f4 23x4x3x3 a978c432ff5d7ca9ada0ec2ff49fc7e8e12a56f1909d4b1784de251a95b7c033
  decoded[::-2] <f4 12x4x3x3 b683ac95fad101b3574488247ef003b10c9809a5ec7cd5ae216265c69d071d6c
  value_range.lo <f8 1x1x1x1 4bc0c850de7958e50805c191a2b0167b01dc0c65213942253872acbdaffb30da
  value_range.hi <f8 1x1x1x1 b0069aa62b1916b0c1bcbb35249b02b222f31a5763bfc2e4095fd566d4d8e152
  error_bound <f8 23x4x3x3 cc2e33664f4ce7eb8c64ad411d2a2e152126fd5b39f882a0fa8c6cb4ab080e33
main fp16+zstd19
  codes_zstd |u1 1485 b48cdb46055a8dfa7a0b2d55819c47f39b3fdd90e99fbce10bb99ee8e6f773e2
  zstd_raw_codes <f2 23x36 4f6b382dc04d39178156f65c107bb39dfaaf69fc7969edbbecfa654a85771aaf
  meta 7c6b66e1b88a595ddf8f9c65383d6096e927182b5d0c673317f986a22b847dac
  decoded <f4 23x4x3x3 a978c432ff5d7ca9ada0ec2ff49fc7e8e12a56f1909d4b1784de251a95b7c033
  decoded[::-2] <f4 12x4x3x3 b683ac95fad101b3574488247ef003b10c9809a5ec7cd5ae216265c69d071d6c
  value_range.lo <f8 1x1x1x1 4bc0c850de7958e50805c191a2b0167b01dc0c65213942253872acbdaffb30da
  value_range.hi <f8 1x1x1x1 b0069aa62b1916b0c1bcbb35249b02b222f31a5763bfc2e4095fd566d4d8e152
  error_bound <f8 23x4x3x3 cc2e33664f4ce7eb8c64ad411d2a2e152126fd5b39f882a0fa8c6cb4ab080e33
main paper-ch
  codes |i1 23x36 430a8316ee5b55d39d16db2754af7c5bd1bed3c3adb542770d6f0b8c679c1d63
  scales <f4 3x4 cdb93ba60d119301ce4f96497448f426d5807b9406ba5546166186e72ddd45cb
  meta b8508631f31556af274428f6802b383f3cdbea7fc6276c52e5f79bde8847e7b6
  decoded <f4 23x4x3x3 946818e644aef3f202c33585cfc7bca26873c9a24a959eecac912227f6ef9f24
  decoded[::-2] <f4 12x4x3x3 e01a4f33df850557873b1e6ab551bd426fb119d2edc0108907dd1b8c1107ef5d
  value_range.lo <f8 23x4x1x1 1e4ef24456ad7b7c8e1cc6079c004b977f9f1b28689dce5ef7ff2d9f17ec4d86
  value_range.hi <f8 23x4x1x1 d0d739522518d7444b856b77aef0f3485f1b70d359d1857411b2fecf59e979b5
  error_bound <f8 23x4x1x1 6b31976920da0f986909ea51d5ec71a6149972194d6f201e3a4c72938746bc6d
main paper-g5
  codes |i1 23x36 8d745b73746b7be2f3edb9be13eb8725a3c04512fcfdd11097b878239c557c84
  scales <f4 5 a1b7adc2564e63cafc432aba285e6e1bf25f6b13ddb5112573248d0e9458f71c
  meta 2be42a70b9153b7d2aef32698abcc252dbe9cab9cd7820dda527bb0f12df139f
  decoded <f4 23x4x3x3 707aa7ccfbd543c059c7d3d7eba504b1213ebb56d3f1ec79db051c3a700ace39
  decoded[::-2] <f4 12x4x3x3 662ce72f1934be806922a3e81d95107ca6233acaaf07fb43425914b0edbda2de
  value_range.lo <f8 23x1x1x1 6da058709c4d7d3e5db8b20efb09150ad2f6a816467f98497a411af09672844d
  value_range.hi <f8 23x1x1x1 776959a96cd296ec178cf323704b649f1dea3b9aad5485043fcf3d436d1a2b49
  error_bound <f8 23x1x1x1 a76d49fd19eab5b173425652eacc7ef8d3d6189121d29f92898a1da4f239ed36
main paper-g1
  codes |i1 23x36 67688066b381af598751433e44f893fdd266b951ccf06405f90e850bab261209
  scales <f4 23 33eaa5fd87a6d6589a604ad68b6d67b238959811c7aefa61eca3171d78e68da8
  meta a5e9b3602ee3f87485ba5963052a882953f8b4e03fd663e44c06ec9f5edbdc7e
  decoded <f4 23x4x3x3 61431fa533943737c3d97d010015d4fbf002220b1f01fd5c58900488d699d253
  decoded[::-2] <f4 12x4x3x3 a92e609831b28c177e165aaeb19e66ffd91041e52c702cde5b668568428d5d2b
  value_range.lo <f8 23x1x1x1 01422b37436c4e27a8dab8d33cba58495f066b632558a166b2fd64224a4eaa99
  value_range.hi <f8 23x1x1x1 7ac6039c0095f60a86fad083d8c833f3725ebc763c92b6310f78e358aa0bfa6c
  error_bound <f8 23x1x1x1 25d3f11727a5a3326020d9f8a0746e79279da641afc0270fe7b699bddb8bda04
main paper-g23
  codes |i1 23x36 9233ad5984eee7fb7255da5c653e575350e3e8d6ec3df2fb12bb48acbd9772cb
  scales <f4 1 423037f1dbc5b1998f1d5f9c81d05332805eeba9e8e4ef7795d6ab390b4da12b
  meta 91610fab1ad73852e6bb0eda20fce204f32024fcc4371efc254333b3ecbcde59
  decoded <f4 23x4x3x3 b2edd53ddb25453cc48d4bd1180061cd8d5d5c20d0a8fe81849a3dcdd4218a2e
  decoded[::-2] <f4 12x4x3x3 2fba86241e120de9c24036c1cf2def7db2ace88ca18e55c6d99890bab1ca82d3
  value_range.lo <f8 23x1x1x1 21d9172a8c65d4dc647caba4755bbd57ee6e12188316b796bb5237f8634aa702
  value_range.hi <f8 23x1x1x1 305049b3e02368780fa54f2f72e49ac72320efef3797996d0369061e7e19a9c1
  error_bound <f8 23x1x1x1 d033f6683931296c99ee2271cbf428904c06de842405cfc9731b36a9adfd52dd
main paper-g10
  codes |i1 23x36 064c5e9447fae203406a24364db6ddcd931608f6ade052082f8b54fc536d4c0f
  scales <f4 3 7414d3155b1b97c6dc59d5865d78b03392275e771d1367078871007e7ff7e032
  meta d446b6d17e93951e8bf5a0559a8b56342cd974870b8fc32fa179a65d639235e8
  decoded <f4 23x4x3x3 6bd990bb274af64edbd824985065896f9a2991c583db6904f71bbce1de23a181
  decoded[::-2] <f4 12x4x3x3 51615bffb97ff2c82cd8072d074ada4857792ef8ca794982f4fbb29c8231bfb5
  value_range.lo <f8 23x1x1x1 eda80a6dd87bdacef28d3632b12adcf4c21801ae76b8229e589c3cc906fed940
  value_range.hi <f8 23x1x1x1 088854e3c6268f13a702a24b0f0a15948721e3b5643f8af4569818925f5526ab
  error_bound <f8 23x1x1x1 a63e2d055ec9eaa8eccbe56b24e84ad18593bef781b9e1c1bbf0ce8a102468ad
main paper-ch-g4
  codes |i1 23x36 6628883e924eede3a1fc47ef52c0f97e872c2cf0207bed2b9b8ea6a8dc980d42
  scales <f4 6x4 a19d1c2e744b63570716d375ebfa6391ad0fcf90bfab6c8568ba16d1b0da45f9
  meta 1c3118b8ff344c6895005458f86b6ad986361a8f6d33b783a7b2f1524aa8ee7a
  decoded <f4 23x4x3x3 3ffe05a43dcd71dd73e0c0b6c97d5800db23172b183ed07cdbef1c4a858a65ce
  decoded[::-2] <f4 12x4x3x3 350ab45407bd216d73dcc8c530bcddaea1d8d76544a1e898fc136d61a8219e93
  value_range.lo <f8 23x4x1x1 dcae46a846cfe17e69e13e9efc50831159f5c4df72eb1d828fd3fb4f12aa4713
  value_range.hi <f8 23x4x1x1 cf6db8926daf17ebfd2ca009a5ea2e1e0db23c570d3aa626fb3e710a9f6d551f
  error_bound <f8 23x4x1x1 45c479305f323c4d0ea129f37abb3e8d681757a7d81ee1d41b8528e79e832825
main paper-clip99
  codes |i1 23x36 c36554012b4fcedaadc757628647ce91db26fa63794c89853e6e41b050cd08d1
  scales <f4 3 b7170b9f688396a6947f12a21c93b90ce609801167d4fb3b26c418f725ff517a
  meta b73becddafb4706a009cb02976d47565ec0777aba1f7335c0301814038e52c6e
  decoded <f4 23x4x3x3 28733d01e9ee10b5ba2fc1591aee08575c8a4f253a347cb9a94ad0a4abc89509
  decoded[::-2] <f4 12x4x3x3 2dab923c5a2caedb1f9e3d388672c97667129daf6890641c6ba245fcb5bb7131
  value_range.lo <f8 23x1x1x1 1a18f90dcbf7085519129ff62ef917876c45b8199faf27cd2e198e16f717df81
  value_range.hi <f8 23x1x1x1 b31e6ea853f711d37bd659fece2176f07613383f7f5aa57604c4b3374979e61e
  error_bound <f8 23x1x1x1 0cf68d741d135d2a1f3ebf0fa550b543e333026b2e8ed84a3b2cd6a49a9cf280
main paper-ch-clip97.5
  codes |i1 23x36 a3316b1d7688a6b1487f143657a239ff76284ea2a0243b185496f012f6158392
  scales <f4 3x4 577782eef1a1d0c187ef53eccca28a4960fab9ce1034b600003ca7750eefd161
  meta 5ed6842f82308cfebb18a2870f413e43eea02b0a20c92b75c1816d0f6c9f4db8
  decoded <f4 23x4x3x3 6a8f2070a4d41e33213d2341e8d9ef36a65484e4e54c4cb41965016f8cc485b0
  decoded[::-2] <f4 12x4x3x3 571c4bd1885168591c10e76dc0fe816301ccfbb7f2cc384bd5724444f2536cc1
  value_range.lo <f8 23x4x1x1 61b0f6098530354eea7c56c6a0a5df27f9ec6e556f2c80f907bba7735dfd60ba
  value_range.hi <f8 23x4x1x1 8be2b975510488c91dbf1f2c08b8568a565e3aa6c6fd628617e4f9fd4b5986f4
  error_bound <f8 23x4x1x1 b244289f186d6e60034d806e91e11ce7abe881a371c266ccedbfa8ddf214520d
main paper+zstd
  codes_zstd |u1 470 61e9371821a194011d82f8cf707560147e2c947fa7d2a3d1217612cab138d389
  scales <f4 3 7414d3155b1b97c6dc59d5865d78b03392275e771d1367078871007e7ff7e032
  zstd_raw_codes |i1 23x36 064c5e9447fae203406a24364db6ddcd931608f6ade052082f8b54fc536d4c0f
  meta d8fc21551aaa02c207389f87a8929b5b5a088f8c1eadc80bc33315cd09bbaed3
  decoded <f4 23x4x3x3 6bd990bb274af64edbd824985065896f9a2991c583db6904f71bbce1de23a181
  decoded[::-2] <f4 12x4x3x3 51615bffb97ff2c82cd8072d074ada4857792ef8ca794982f4fbb29c8231bfb5
  value_range.lo <f8 23x1x1x1 eda80a6dd87bdacef28d3632b12adcf4c21801ae76b8229e589c3cc906fed940
  value_range.hi <f8 23x1x1x1 088854e3c6268f13a702a24b0f0a15948721e3b5643f8af4569818925f5526ab
  error_bound <f8 23x1x1x1 a63e2d055ec9eaa8eccbe56b24e84ad18593bef781b9e1c1bbf0ce8a102468ad
main paper-ch+zstd7
  codes_zstd |u1 736 ad55e789f07e444603b4902ba1714e2df61d4b155add24e4916011f01bf352c8
  scales <f4 3x4 cdb93ba60d119301ce4f96497448f426d5807b9406ba5546166186e72ddd45cb
  zstd_raw_codes |i1 23x36 430a8316ee5b55d39d16db2754af7c5bd1bed3c3adb542770d6f0b8c679c1d63
  meta 37a34baacc78cee8dd0e344af95d6505e2c258884a0ad8c92c38a8fbcff27bfa
  decoded <f4 23x4x3x3 946818e644aef3f202c33585cfc7bca26873c9a24a959eecac912227f6ef9f24
  decoded[::-2] <f4 12x4x3x3 e01a4f33df850557873b1e6ab551bd426fb119d2edc0108907dd1b8c1107ef5d
  value_range.lo <f8 23x4x1x1 1e4ef24456ad7b7c8e1cc6079c004b977f9f1b28689dce5ef7ff2d9f17ec4d86
  value_range.hi <f8 23x4x1x1 d0d739522518d7444b856b77aef0f3485f1b70d359d1857411b2fecf59e979b5
  error_bound <f8 23x4x1x1 6b31976920da0f986909ea51d5ec71a6149972194d6f201e3a4c72938746bc6d
main u8-ch
  codes |u1 23x36 54e84b123eb47ba54ebc652b729f18aad4550826426c0a7a1578e2d9afad777e
  offsets <f4 1x4 447c75df2a52654a936127eb36af897799e2a8578ee6bbc34940df731e9c482c
  scales <f4 1x4 e5baa72f794e879eb02a5f3297d738bc748701db77743ebd10f5012f13781e9f
  meta f651b3366eba9bc032093fecaf57ca15921d1c71b00ba6d388ff8cac02eec0a5
  decoded <f4 23x4x3x3 f1592064e569c6942ea417e1fcccfd5423ac4f381c70d6a04cf6c3b277c0cdac
  decoded[::-2] <f4 12x4x3x3 d3777971bb67b4b9d56e52fcba1f9dbc166d811d7cd790924c86a798f34fbdc6
  value_range.lo <f8 23x4x1x1 41e583baee63411ca383ce91d0ba362664e4a087f95b6ed5e56a89558edb7d42
  value_range.hi <f8 23x4x1x1 5655a0dee417c3d9034bd8185e43ab3fab76319ad83b61d726c1709df6b5d7a8
  error_bound <f8 23x4x1x1 6598355e5c585b5f446144953ffdfeb73c0275635569ab99512e8fef28da46a2
main u8-g5
  codes |u1 23x36 26bdb01992e79d76f3e61c667dcf5505202d9da4af3ca310ddb48b7650612c06
  offsets <f4 5 2689e00a556eeb1fd4215ac6e811b79ddcbb91e39219a6f48c5cb3bd53ec468d
  scales <f4 5 2e5cb5de4276274f2634d70c428c0b251edd8db9d81f9f16c93039f08beb9594
  meta 88a8616f2730f8f49f0b44140134105c37d4a1d6a6a15094ac15966962e9cb82
  decoded <f4 23x4x3x3 5ddea8c8bdef9a1b82a14db65654da4fe3f716b7e4ebf0f06b2b330d904d3178
  decoded[::-2] <f4 12x4x3x3 b923efbd884e686677541643859bb18dfee65d9fec800365497171cd90750590
  value_range.lo <f8 23x1x1x1 90c19d5c4b8c9c79b937ad61ac86da3c8f7d122f7f7eef9a14590b30869d1563
  value_range.hi <f8 23x1x1x1 576bc85bd62e06f0049f7907822b183f4659695a0605a858ff89a05dbd51ae75
  error_bound <f8 23x1x1x1 e8642b0655f1b83c6dcd196e99860d00ca69a768d35d039bf1d64e58211c28fd
main u8-clip99.9
  codes |u1 23x36 aa44f2f28cb3638c178ec50324422ba5c22fba524d11082a612a1525197a2d96
  offsets <f4 1 e527c5319175d712469ca34feadf47e95e2643ee3c896224ca416426d276a4f7
  scales <f4 1 c65c92623c72e694e08669e130500fd535b7ac870654b601c841626f9b288351
  meta 8e538c8b56058475763408e0a3c3a1935c77ffc881d4dbc106a3d895af97507b
  decoded <f4 23x4x3x3 c812376bdb7fa3cf1422a9ac8dc973ab4bc0a7da9c85d2d6d3a99a41fd99d192
  decoded[::-2] <f4 12x4x3x3 b4d7a25db9c4be1c0837a53de143033f4a75cfabfbaafa1db79219f45383a22f
  value_range.lo <f8 23x1x1x1 0e79a032bafb8b09a0c62f714d1b3969581ec659d62ab3210dadc577bd42572a
  value_range.hi <f8 23x1x1x1 6fccb5f3233ff41ffbf3560ed93f72ad93e707c3bd93bbb4d21b6239a13eaad0
  error_bound <f8 23x1x1x1 3665e37871b140f85fd5767ca03c0b019cfacc26db3aab4567f72cd39719617b
main u8+zstd
  codes_zstd |u1 299 9c940e46f7b2ae4ca442427a1209e83a9fd62f052623dcf5694e757db04c5ff1
  offsets <f4 1 4c2eecd7ac74a89b45d8d90ef8c499927f80d6d283a4e12b2b052af9d3c32a1a
  scales <f4 1 bcbfea163ffcf54da853b10237f8b8b8a53c29fdeb168f2c8a0d423d0c0809ce
  zstd_raw_codes |u1 23x36 13c0a31aece78184c297e1bf031f214ac5601812bdc487fd724935138bc0468e
  meta f8defd7a9a363f7948d6c9a9e88ada97a5fbd1fcc83777ffdbeed198d1d8ad15
  decoded <f4 23x4x3x3 4dce9f9d3c2d6e86b9f4e758a8243b100275c796200ca4c4e226a4faeb4f8c3d
  decoded[::-2] <f4 12x4x3x3 1715a53adb594e943cda9ffee0b803f49b81bc67707aabb703e3c85297e0a195
  value_range.lo <f8 23x1x1x1 410210fee12669cc92ca05037de41eca514b207922db56ce83bec62089d575f5
  value_range.hi <f8 23x1x1x1 e5d1927e944877ddeb94f7aec90352bb49862b27dd27e6b536e8fea2d0e6663b
  error_bound <f8 23x1x1x1 d6ebaf5255c45e20e54d56a4b5f3455a77a479accb2e7fa024da9fd04eb7a3cc
main u8+zstd1
  codes_zstd |u1 306 83eaa0633fef926dbb4d5d956fc1568e33c82cc1d8a6925eb9e025d4d768adce
  offsets <f4 1 4c2eecd7ac74a89b45d8d90ef8c499927f80d6d283a4e12b2b052af9d3c32a1a
  scales <f4 1 bcbfea163ffcf54da853b10237f8b8b8a53c29fdeb168f2c8a0d423d0c0809ce
  zstd_raw_codes |u1 23x36 13c0a31aece78184c297e1bf031f214ac5601812bdc487fd724935138bc0468e
  meta 507163930a1802a5e08ea603236e4340b4b6b1d8b51edb8919f20776dbf58730
  decoded <f4 23x4x3x3 4dce9f9d3c2d6e86b9f4e758a8243b100275c796200ca4c4e226a4faeb4f8c3d
  decoded[::-2] <f4 12x4x3x3 1715a53adb594e943cda9ffee0b803f49b81bc67707aabb703e3c85297e0a195
  value_range.lo <f8 23x1x1x1 410210fee12669cc92ca05037de41eca514b207922db56ce83bec62089d575f5
  value_range.hi <f8 23x1x1x1 e5d1927e944877ddeb94f7aec90352bb49862b27dd27e6b536e8fea2d0e6663b
  error_bound <f8 23x1x1x1 d6ebaf5255c45e20e54d56a4b5f3455a77a479accb2e7fa024da9fd04eb7a3cc
main u8+zstd3
  codes_zstd |u1 299 9c940e46f7b2ae4ca442427a1209e83a9fd62f052623dcf5694e757db04c5ff1
  offsets <f4 1 4c2eecd7ac74a89b45d8d90ef8c499927f80d6d283a4e12b2b052af9d3c32a1a
  scales <f4 1 bcbfea163ffcf54da853b10237f8b8b8a53c29fdeb168f2c8a0d423d0c0809ce
  zstd_raw_codes |u1 23x36 13c0a31aece78184c297e1bf031f214ac5601812bdc487fd724935138bc0468e
  meta f8defd7a9a363f7948d6c9a9e88ada97a5fbd1fcc83777ffdbeed198d1d8ad15
  decoded <f4 23x4x3x3 4dce9f9d3c2d6e86b9f4e758a8243b100275c796200ca4c4e226a4faeb4f8c3d
  decoded[::-2] <f4 12x4x3x3 1715a53adb594e943cda9ffee0b803f49b81bc67707aabb703e3c85297e0a195
  value_range.lo <f8 23x1x1x1 410210fee12669cc92ca05037de41eca514b207922db56ce83bec62089d575f5
  value_range.hi <f8 23x1x1x1 e5d1927e944877ddeb94f7aec90352bb49862b27dd27e6b536e8fea2d0e6663b
  error_bound <f8 23x1x1x1 d6ebaf5255c45e20e54d56a4b5f3455a77a479accb2e7fa024da9fd04eb7a3cc
main u8+zstd19
  codes_zstd |u1 260 15d2e81f3aa89a693b29792cc8ea080d7374d38c4fe49dd554dc600c54c925b2
  offsets <f4 1 4c2eecd7ac74a89b45d8d90ef8c499927f80d6d283a4e12b2b052af9d3c32a1a
  scales <f4 1 bcbfea163ffcf54da853b10237f8b8b8a53c29fdeb168f2c8a0d423d0c0809ce
  zstd_raw_codes |u1 23x36 13c0a31aece78184c297e1bf031f214ac5601812bdc487fd724935138bc0468e
  meta 8604a9bacb9eaeb09ed12b4b55e14da7c6105c8dc0cfeb4947c320cde01b4c93
  decoded <f4 23x4x3x3 4dce9f9d3c2d6e86b9f4e758a8243b100275c796200ca4c4e226a4faeb4f8c3d
  decoded[::-2] <f4 12x4x3x3 1715a53adb594e943cda9ffee0b803f49b81bc67707aabb703e3c85297e0a195
  value_range.lo <f8 23x1x1x1 410210fee12669cc92ca05037de41eca514b207922db56ce83bec62089d575f5
  value_range.hi <f8 23x1x1x1 e5d1927e944877ddeb94f7aec90352bb49862b27dd27e6b536e8fea2d0e6663b
  error_bound <f8 23x1x1x1 d6ebaf5255c45e20e54d56a4b5f3455a77a479accb2e7fa024da9fd04eb7a3cc
main u4-ch
  codes |u1 23x18 8e7b452df38ff5c69bc07d1a4a4ce966a343a2b5b88263db82b76e978042fe3e
  offsets <f4 1x4 447c75df2a52654a936127eb36af897799e2a8578ee6bbc34940df731e9c482c
  scales <f4 1x4 b08829796b1ee77cb738551f8daf5531754268c87d6c43fd1446bfab1d7a56eb
  meta 0ae1cbe294298240d701072479990b1e57e8fc6cbcc5073fa7623025cf3ab3c5
  decoded <f4 23x4x3x3 df3904abf0085c2ee9d49dc4c5d8ef3d212ed21060b5c79c2e86a8bca66d5aad
  decoded[::-2] <f4 12x4x3x3 c87cde2199225684e396ec5bdedc8859d0c1597398d94ce0a58582bd5a4505df
  value_range.lo <f8 23x4x1x1 41e583baee63411ca383ce91d0ba362664e4a087f95b6ed5e56a89558edb7d42
  value_range.hi <f8 23x4x1x1 fad5c22964d61de6a4d78a0a57d5bc91a29b2d4c81c82c5d9fea27ed739604c2
  error_bound <f8 23x4x1x1 a5a2e1b394bb3f9594b2de3774c9570cc441fc3306af7907677c370aeac0502b
main u4-g10
  codes |u1 23x18 a2113b6a33dc9df928af369af7d57a28789a67bda7af09c69690098b1337a69f
  offsets <f4 3 cfcdf75a90142473789b619a2cc5ad5a82d20c3f60c22e1cbefd7077a2560cab
  scales <f4 3 fb5acc0285f3e601dc069d0796d0f8c7f42055c788080d593bc51e0268711e25
  meta 6db2455a2f1714a14e181d08efe61379d2cd70aa5e0742ba548154fcc605b52f
  decoded <f4 23x4x3x3 b1ee031e1526152c8a4828e35b8ce9d03d53b23519f2424870920ac7564df061
  decoded[::-2] <f4 12x4x3x3 f963a10a660f0181f25b82ac6beb9e51570852cf88ef6af6e478ff6517d90a99
  value_range.lo <f8 23x1x1x1 2a3712df15284791219407c920ad32e25a5a7bc63af725131f641d1509c5cf33
  value_range.hi <f8 23x1x1x1 2bfadf0b5f5a121d6dac65fea2c21cb95039998cb397f0d8a13ee0be6adf57b1
  error_bound <f8 23x1x1x1 7907d58bc0c483a93a8a04aaee1823e27dc628410543ebfa79034ad8fd5ecf90
main u4-g100
  codes |u1 23x18 0b175295ce79c9dc7bbd8344a18153c4658afe7b6b2d8cb3f08558b83fd38bec
  offsets <f4 1 4c2eecd7ac74a89b45d8d90ef8c499927f80d6d283a4e12b2b052af9d3c32a1a
  scales <f4 1 374e135e9cbfb65dfb246eb718c82f04d0bbab06a8a9fb314073687545ae2f3e
  meta ae4bb23c12d573c6677ddb1c055f44ddf24b0e93a232fe513fecf00c12bece86
  decoded <f4 23x4x3x3 dc4f83724057ecef909fe70972876a18d8607b2bd8490798d221e99e901459a7
  decoded[::-2] <f4 12x4x3x3 72aecb299dcc2a61186ac1e4274b0e3544db3141d57bc238180cc95fb14e8f50
  value_range.lo <f8 23x1x1x1 410210fee12669cc92ca05037de41eca514b207922db56ce83bec62089d575f5
  value_range.hi <f8 23x1x1x1 3fe91fb5d0df29459a093cd7cac8b5e9fd3b5fa942c4ced5ce441fd048d0503c
  error_bound <f8 23x1x1x1 85145fa4d1ee6a0eb0ff8cd6b4dbea3c0d268bd189fcd26ac4433b765d689fea
main u4-g100-ch
  codes |u1 23x18 8e7b452df38ff5c69bc07d1a4a4ce966a343a2b5b88263db82b76e978042fe3e
  offsets <f4 1x4 447c75df2a52654a936127eb36af897799e2a8578ee6bbc34940df731e9c482c
  scales <f4 1x4 b08829796b1ee77cb738551f8daf5531754268c87d6c43fd1446bfab1d7a56eb
  meta 69de3212138cebaaa03e9311a65ad72d9f6a335e43bb95a2634ce891e66fd7d2
  decoded <f4 23x4x3x3 df3904abf0085c2ee9d49dc4c5d8ef3d212ed21060b5c79c2e86a8bca66d5aad
  decoded[::-2] <f4 12x4x3x3 c87cde2199225684e396ec5bdedc8859d0c1597398d94ce0a58582bd5a4505df
  value_range.lo <f8 23x4x1x1 41e583baee63411ca383ce91d0ba362664e4a087f95b6ed5e56a89558edb7d42
  value_range.hi <f8 23x4x1x1 fad5c22964d61de6a4d78a0a57d5bc91a29b2d4c81c82c5d9fea27ed739604c2
  error_bound <f8 23x4x1x1 a5a2e1b394bb3f9594b2de3774c9570cc441fc3306af7907677c370aeac0502b
main u4-clip75.5
  codes |u1 23x18 c2b58bdfeb550c70ff7916cdc420437e9300d5ddd3dbd1febaf9c7d03fac1560
  offsets <f4 1 41af64c928c0cdb137f5566cac38f9a8f97c01534b9b47333c6d7adf5fdfee92
  scales <f4 1 988ccf849944771b0d580a12861435c31fe6bbefacef1fa95266f98e7058f352
  meta 133f5a09cc3d218f2091d0a455290f30813ad1c030a09d304472b71cac7abbca
  decoded <f4 23x4x3x3 f21dcaaaef7c2f7f9f60a76f2f004ce03f2787424d42558421b7c029bd4d4f6b
  decoded[::-2] <f4 12x4x3x3 ce93beda12f4e04da85ee6748d46f52d63beea9ce43576f3ed7d16f0f7ec92a5
  value_range.lo <f8 23x1x1x1 f3b5481201d664148d6407acbe3646fd3b14426bad8dfb5577f0e7f9b60084d5
  value_range.hi <f8 23x1x1x1 22b9e941f55681c0b4b085bd38a0634812549dd4fc61ce0e3c3e2416f2a543c3
  error_bound <f8 23x1x1x1 8814eeb595b156338022cf5ed04390b78216e35a64e31041a69e00231751f69d
main u4-ch-clip99-g7
  codes |u1 23x18 4b756af0533c97d56bfdf8b8d4b06f9e05387019dcd2411d136be81cd8dad55e
  offsets <f4 4x4 9ecbfe8bcc544d982e0670a694d02018ed7a3087ba97f6e291d5b2b023e9fc42
  scales <f4 4x4 f6cfe5aa8d274e2252bc7c8c18290f985257fd87ef8ee651663662369988aa5c
  meta 321124fda53a4f085f82df31c34117b390fb7b322e9d98a158a50f7ef3efc950
  decoded <f4 23x4x3x3 63ebbf97c174ca19df03637dff0772d7578bb41bf50061c4e6234089631009e6
  decoded[::-2] <f4 12x4x3x3 a45363651c10f97fcd6fe7b23d759b9038c0d65694a3f189c991839fdb689afb
  value_range.lo <f8 23x4x1x1 54da974d385d1278523b0ddad32f5dc7611840a4e0334a0600711c3edc4da497
  value_range.hi <f8 23x4x1x1 9d640b506d24f6fec53e3663cd0dba55c16e98199dd5a89adb86b13c9f98de1d
  error_bound <f8 23x4x1x1 f16d38da0ed94516bc58c4feb84c15926bdcf4de00060c51c805b571afd77de5
main u4-ch+zstd
  codes_zstd |u1 371 8914432134ec96faddcdf913114896949423fc06c9b9211b2302125911857d85
  offsets <f4 1x4 447c75df2a52654a936127eb36af897799e2a8578ee6bbc34940df731e9c482c
  scales <f4 1x4 b08829796b1ee77cb738551f8daf5531754268c87d6c43fd1446bfab1d7a56eb
  zstd_raw_codes |u1 23x18 8e7b452df38ff5c69bc07d1a4a4ce966a343a2b5b88263db82b76e978042fe3e
  meta 311ae7356d184328b0bd6420dbf519980949fc0a214e5af1868e2d072c1b3d6e
  decoded <f4 23x4x3x3 df3904abf0085c2ee9d49dc4c5d8ef3d212ed21060b5c79c2e86a8bca66d5aad
  decoded[::-2] <f4 12x4x3x3 c87cde2199225684e396ec5bdedc8859d0c1597398d94ce0a58582bd5a4505df
  value_range.lo <f8 23x4x1x1 41e583baee63411ca383ce91d0ba362664e4a087f95b6ed5e56a89558edb7d42
  value_range.hi <f8 23x4x1x1 fad5c22964d61de6a4d78a0a57d5bc91a29b2d4c81c82c5d9fea27ed739604c2
  error_bound <f8 23x4x1x1 a5a2e1b394bb3f9594b2de3774c9570cc441fc3306af7907677c370aeac0502b
main u4+zstd22
  codes_zstd |u1 95 2909b0c0f0a008db736bf0596cb4b7c72aaccdbd1391d2dfa0e0a08034475b53
  offsets <f4 1 4c2eecd7ac74a89b45d8d90ef8c499927f80d6d283a4e12b2b052af9d3c32a1a
  scales <f4 1 374e135e9cbfb65dfb246eb718c82f04d0bbab06a8a9fb314073687545ae2f3e
  zstd_raw_codes |u1 23x18 0b175295ce79c9dc7bbd8344a18153c4658afe7b6b2d8cb3f08558b83fd38bec
  meta 0dd1749692ed70f623d4a54b6724610bfa4ff36c65d2c66e0f37b4d5c9c5ae16
  decoded <f4 23x4x3x3 dc4f83724057ecef909fe70972876a18d8607b2bd8490798d221e99e901459a7
  decoded[::-2] <f4 12x4x3x3 72aecb299dcc2a61186ac1e4274b0e3544db3141d57bc238180cc95fb14e8f50
  value_range.lo <f8 23x1x1x1 410210fee12669cc92ca05037de41eca514b207922db56ce83bec62089d575f5
  value_range.hi <f8 23x1x1x1 3fe91fb5d0df29459a093cd7cac8b5e9fd3b5fa942c4ced5ce441fd048d0503c
  error_bound <f8 23x1x1x1 85145fa4d1ee6a0eb0ff8cd6b4dbea3c0d268bd189fcd26ac4433b765d689fea
main u2-ch
  codes |u1 23x9 69eb7c96e2dcc33848b708dd300b232e1e06bd17aede170894e9145e9ea33f2e
  offsets <f4 1x4 447c75df2a52654a936127eb36af897799e2a8578ee6bbc34940df731e9c482c
  scales <f4 1x4 abad85b2565c3789a0ffbfa4bdc6b78c603e30cce49c225b2fc2d9f8fb02a4af
  meta f8b3cfcf73a7ddbc700cc7dbe6f7a342be4db9f45fdb9efceb4b4d4bb26a5574
  decoded <f4 23x4x3x3 aab8dbb0676a362fad0acfa1db14162d396c3d4e09ec7991268fdf24dd2fe94b
  decoded[::-2] <f4 12x4x3x3 8a7b7925917dba0acc58bcf55b86ab5c14d62cac213366b23dca341576af11f8
  value_range.lo <f8 23x4x1x1 41e583baee63411ca383ce91d0ba362664e4a087f95b6ed5e56a89558edb7d42
  value_range.hi <f8 23x4x1x1 55e05e89a260d658b2ece55597262c5605a5b543edf0739890e870b9cc65ce2b
  error_bound <f8 23x4x1x1 9daa55c06594aff8f266b109caba1b7849b03cc361aa653da0fc529cd859b602
main u2-g10
  codes |u1 23x9 eef59d6c4ab5e53709d53b4994c536134be1f216e1cccd8dfbd1b7f9e2a66284
  offsets <f4 3 cfcdf75a90142473789b619a2cc5ad5a82d20c3f60c22e1cbefd7077a2560cab
  scales <f4 3 7e3bcd2818275b192332e6d4c22b8d0ef954d9a465ea7473ac2b46bfbcbc7c08
  meta f031b1335a1c420d8f03d513bfbf71c8432fb82260d989969eaa0dd1b47d3a1b
  decoded <f4 23x4x3x3 56f30bba8a00852e413ef01e6ce6e90f23fad111b0f01792a76d19b42e8b1923
  decoded[::-2] <f4 12x4x3x3 a79f732857d33f8ab3eaa4d9673ec1812ce6ef742d8b64840d439aa246c7cfdb
  value_range.lo <f8 23x1x1x1 2a3712df15284791219407c920ad32e25a5a7bc63af725131f641d1509c5cf33
  value_range.hi <f8 23x1x1x1 72bc7c16168348f66a76fa75d976945bf123368258387f10b1902847337f968f
  error_bound <f8 23x1x1x1 d41d4d92be45f13c2aca19b524ed46fba17f4158605cd9ce5339b51573d15728
main u2-clip99.9
  codes |u1 23x9 20f3ebdeee7e03ff292fe46962c6edbdc88cd75c5341eb4507d0f1a7823f03e0
  offsets <f4 1 e527c5319175d712469ca34feadf47e95e2643ee3c896224ca416426d276a4f7
  scales <f4 1 a36ced6f63939c0d1846f7e80c219b93096705f87b5596225c5dae75a22a8261
  meta de59276e1818d7808c08e00c82c9b637c8e791b01c9a33aad4d2dc323ceb8092
  decoded <f4 23x4x3x3 48b61a9e23aaa165cf878c96c3966858d32b2bddaa327484f0c72b9190fbadb2
  decoded[::-2] <f4 12x4x3x3 582582e4614c7892e156db4ad50751389d8081ad38db88fd4458bb1f984d1281
  value_range.lo <f8 23x1x1x1 0e79a032bafb8b09a0c62f714d1b3969581ec659d62ab3210dadc577bd42572a
  value_range.hi <f8 23x1x1x1 469fe9e08b777d33be67876bd2d807a5723595d8c8f6ff4680c99bba09d7c9a2
  error_bound <f8 23x1x1x1 cc2f1f513dda9343d09d5797917c5277df9247c9daa1dbd9d71e80273b3effb4
main u2-ch-clip99.9-g5+zstd
  codes_zstd |u1 220 22889cbcddcdcabac36ad8a25bfebf72edb96783548af96bbff9b45f17707def
  offsets <f4 5x4 8a5023206cb4e9f41a002e509be3f3d00431daec37cd7784a3e733c5faed0a67
  scales <f4 5x4 0865b3c69f8619e3c280faf31a0a515c4648e5047daef9b3c678d888b690e5f6
  zstd_raw_codes |u1 23x9 ba970b99c758cd89da26930a4ebc8f5e679b8e6d508469ebf619e7d9864c277a
  meta 248425c68901a64f4ae1fb8eae38bcc8252381934b8bc908cdae89930f87d673
  decoded <f4 23x4x3x3 9be63970dee7bb03db6887918a883a82234a6d8fed5948525a55fd45912a7cd9
  decoded[::-2] <f4 12x4x3x3 2d908dc6e139974db2f0ceb64cdb20b0ba7dc3b1a056e148eb7597b24874e50a
  value_range.lo <f8 23x4x1x1 558c340f0c40587f56ed9cb3a6e59885dceb80967c70f9223ff5464c2415b436
  value_range.hi <f8 23x4x1x1 c53d0e7b30f27995cc9268b0ab7ad873cffee368013eb6dca788ca9631f00151
  error_bound <f8 23x4x1x1 37eff8daaa12fa2152d0cb7ac3eb598ffda44c2346b5ceda4cbdd3c80d4b47b8
main u2-clip99.90-ch+zstd3
  codes_zstd |u1 178 1ebb83eb0ec09ab4dbec839ad1de51f8ffd1f2ab40a5550b94c9ef9fc154b6e4
  offsets <f4 1x4 85befe52c3723243334b86caaebfa14a0a51fd3b27ba6755b6c7ac05fb8fef7d
  scales <f4 1x4 411db0d892c4b3300db3ee4eb05991dbc3624fa89aadd86c7306a3a871050fac
  zstd_raw_codes |u1 23x9 f7f73b111781d6997c0110b17ca80fa83515f09a99a6b74aff295f9fe06e8dab
  meta 8f47c05de6b72966b59b743e58dbe659fe565ff7287a4269ead996bf328bd06e
  decoded <f4 23x4x3x3 fe4d7959978f4fef8373d7998f3bfe66b1885e0c2cbf8b6fe18dca67650f5153
  decoded[::-2] <f4 12x4x3x3 a9103397897ea18ed0ab4f76c05e153963eb01729e49995824b9ffc2e88cdf6a
  value_range.lo <f8 23x4x1x1 a536ffd28749cff994c6d6180711e1f02546166c4fceeedd7676047cec88c18b
  value_range.hi <f8 23x4x1x1 7c42016ef601c94b07aeb20abec4298456cb87a2f383602063dc6dbc65760355
  error_bound <f8 23x4x1x1 0a2f46341c6d49ec47df49f7ccceb3766523d48f155a70820cc73e85511ff2b2
main u1-ch
  codes |u1 23x5 63b383fe018fb6035efbe4d17205f45b827c70d1c150350649bb616ea4923e35
  offsets <f4 1x4 447c75df2a52654a936127eb36af897799e2a8578ee6bbc34940df731e9c482c
  scales <f4 1x4 1d454c1cf7e7d93147ccfc822c4bfe3f773eafe6dc7c2c40616a1a47ddd145fe
  meta 2ee70558855b950df5ab5739fc17aef625bdb57c4b171b03d29b8117bbe841bf
  decoded <f4 23x4x3x3 673d02fc0241d824bb21c1e042795aaf6d17b8eb59dbdd52433acd2c5be683b0
  decoded[::-2] <f4 12x4x3x3 67e04294a417ff2941b78b9b88f79beba0f3bea3d48589c5ec7b793c4ba64e15
  value_range.lo <f8 23x4x1x1 41e583baee63411ca383ce91d0ba362664e4a087f95b6ed5e56a89558edb7d42
  value_range.hi <f8 23x4x1x1 ae6c3fc72d842d0a0fe8ce1e5c4b9e495a7c2a3aa79aff330cdd563c1180c43f
  error_bound <f8 23x4x1x1 91c272294f5b3393a67a3e57d92107c0b1730256cdb9825ec29fca9889343841
main u1-g1
  codes |u1 23x5 314637bb2a23cb48aaf634cd168135d8738bf3092586eeca43b720b8eb422315
  offsets <f4 23 160fe29a0235f48aaedf5111d60a064a7a718356861ecf355df869a5990dba47
  scales <f4 23 9fe9f2149e09259e907607334317e137fb308e4c87c1b0698e6fe717e807d21a
  meta c5549b863d7ae3cd95311319a55074f6801f55868b7f963aca8b4f46f6ce8f5c
  decoded <f4 23x4x3x3 a608b180941cc5d40ef4dd2da23e862bdae86e09c4ab2ee9395e401c3a64c501
  decoded[::-2] <f4 12x4x3x3 70fc3edda9053caf89c79b4b95d94ee92bff54c44007f2bb361746ee8053c478
  value_range.lo <f8 23x1x1x1 dfa02672c1fa4c99b8255c8e157860ef2dd05ace596e60f9f79c09154108f24f
  value_range.hi <f8 23x1x1x1 11f4799e5f8ca38e7614f667bada953461e8946ff64c97310385346b4116e9f1
  error_bound <f8 23x1x1x1 f71d76df1717ce19d80e9f659ac5324acd12d0140b4ba2c022b152db1a97efc5
main u1-clip90+zstd
  codes_zstd |u1 117 e1737d8600fa0f7685071560d9d68c786230ca8d92b18e289e1b131d2a18e633
  offsets <f4 1 f4ac7ff7c2e1ece8cfb9cf8dcd5a9c20b71ca5037bc7046e609069d5b49f1ac7
  scales <f4 1 3f26e9295d8a418e4f26246b2e2ffb530966cf7739945a8cb456f245b0c85719
  zstd_raw_codes |u1 23x5 94e745e4b62667dd8a55acabc7358d2f499d245c7d943f003daa3517a6229cac
  meta c7b1d4bd3a19db123fc9263fa8cceb6b0c5ea2c9933f6064aa108799f9c51062
  decoded <f4 23x4x3x3 1bbef12daba811d9afbd70d88a46fe0a64c5756196df9f5bf99a793e4fca17ef
  decoded[::-2] <f4 12x4x3x3 c0e4a15b9b5292256de82dfa658c6cd4d6d76b858c0d6f5648e70b9b14e2b347
  value_range.lo <f8 23x1x1x1 7d0b6240549386b984358727303b516f7b842b3fe0ab8350496fda13644b58e4
  value_range.hi <f8 23x1x1x1 eeeff687b6e2cff8d0bd36f9d12e18570b0057f5aaa0ec33e92b98e96b523b87
  error_bound <f8 23x1x1x1 bcfe233ccd6c547303e498c388697092a2614e380f1a92846724ba7040965bee
main lq4-ch
  codes |u1 23x18 883e2d32e58c313c212d8d9f3574f395ec9e15568a2bfe78de19efd966a9fb42
  offsets <f4 1x4 71099760c71905b5118f92da3f3742b1851d172491c528c1485784e55307bb39
  scales <f4 1x4x15 f59c3adba27b64956e5337b9da761f7c2b99585e1861ff23c4fac0fb21df5a63
  meta 3f872902686638d0663f31e32f816cb605a543ddb80b46557d67bd72ba678405
  decoded <f4 23x4x3x3 f6853ca869008d0c1d0021ece4d1e305d83e84379ca4952e10e1a450b5abfc70
  decoded[::-2] <f4 12x4x3x3 c457384da8da449dd92ac67a01c185bf752bce1017374aecd6577c00a943a788
  value_range.lo <f8 23x4x1x1 db52e7d0c20323b58aeffd0aaff5081b5654ffc55fbd99f6e5b87558a207798d
  value_range.hi <f8 23x4x1x1 8fd793a935ba0d9b9f0a785bdde16e951888fd7e48c40b85e42ff96fe4e976f3
  error_bound <f8 23x4x1x1 64e56cb3919a9d797d14accd7f8014377705b68ce673f7d1565c132112ab01d4
main lq4-g5
  codes |u1 23x18 de509330d4f5111f1b96a99ec73b4b1fb6b1411e368ddbdb318ea32cad36eab6
  offsets <f4 5 7825e0b4796b19979b8495b61d99d4418ff4efcdfa144f3c63d8cc18b0f24681
  scales <f4 5x15 7173be8248a146b177b7648938e116b3aeb9bf9559fe3a23b142a6b4e935585e
  meta 2eb8716210b40ab1590082537694ff401ae54b18c1a1531aac285570f982cbcf
  decoded <f4 23x4x3x3 92fbaa65eb55a5ebb8209875bd0b7899ac4fb2cbc541c1fe232b67a4fc564a18
  decoded[::-2] <f4 12x4x3x3 31af5781cb311f70c06903af535847024d9144fdd32055f33df30e544f9353b6
  value_range.lo <f8 23x1x1x1 ef19666778fefbb121566809fddba3883160b2650e918d36eb39941483e1dc84
  value_range.hi <f8 23x1x1x1 c9f12edf14abc74c2e3c7c033ab0f9691fd56a9b586735b07165b3dc9c67d529
  error_bound <f8 23x1x1x1 6c90b0af0b3d8364d997c155771a4a40869a318ad37c039dc9e10ce0e88a44ef
main lq4-ch-g5+zstd
  codes_zstd |u1 428 01898c8ef8d74f897c87bccbd29a837279a48387660f6a34023805336a8d60a7
  offsets <f4 5x4 075f1084c5ed3227f04cd1aa76dd7af4e137e07cd993000f372fa2c342135a88
  scales <f4 5x4x15 5cd1e97fa8e688ff2ca500dfc37cb81aec4f0ddc365e500204a6b10d358c08ca
  zstd_raw_codes |u1 23x18 f111eacbd8fa488bf5d4eb032d5b86622a7102cc7eee04c1f5f2a1af7bb9ad8c
  meta cc29744e986c1d77ce8fc234a9b7341b12f583985f9c3f19482e88636a0f2862
  decoded <f4 23x4x3x3 fc5724e71a5952c088d3d4ae021f9581fae1a6c3a20f9e5ece6b575407668d2b
  decoded[::-2] <f4 12x4x3x3 2a6a1c4a12231c32d06a994f36631e56e41953152dd214ca23d642e34eff2ca0
  value_range.lo <f8 23x4x1x1 a29553a493a533b077570e8a467314e609d66966d33a30e1a15f57bbff8b094c
  value_range.hi <f8 23x4x1x1 20b13b0f2876019f07bb720dc92c9670efb3d103712555a2a6913818457424cf
  error_bound <f8 23x4x1x1 41fb68cafee12d36e172e871bb8c30902f8c559a633addb9fb327fd49371eda9
main lq2-ch
  codes |u1 23x9 79a779b82671429e345fd6aa051ce0515b76743d69556390dd5827d4fdf60f44
  offsets <f4 1x4 3526782cf94ba9c214126dad371fc3440f770e2183fddbba6946f8327226965d
  scales <f4 1x4x3 1c12a74b2299ba26c3d984cb8e587963111ae95eea7633875328a3b0911d08bd
  meta cdf282032777fb88fb226d81d4afe3e80cc3cac5f478b4eb45c18e80e448d7c9
  decoded <f4 23x4x3x3 82b91603447e540900ce6709f89459deaf2cee38ade7dbbd45443f303d455972
  decoded[::-2] <f4 12x4x3x3 82a36b7a59d74883652ab787638e9940d55cfd99dbc9318938c93fe6d8b188d8
  value_range.lo <f8 23x4x1x1 f2331a633e79abf1f5f80ff39724c00a7d861c7769ce791922d8eecae65423b6
  value_range.hi <f8 23x4x1x1 111132941a1c5a82cc55d2941659d3b40a4f19bd8466ac463f8be0117981626a
  error_bound <f8 23x4x1x1 77a431edfa40624ad5674a473fa493b13854810f21a8173b767df93f0419ace2
main lq2-g10
  codes |u1 23x9 97a5c924420e5abed5d922ca1a488b047c11fda3e76f473c17e5709f993474b1
  offsets <f4 3 db0023852061a8e1bdbf0022bd74ca87fb1cdc458cf5d62216b2816c02ea7d08
  scales <f4 3x3 11955afd4332481be2d6e4ebd31e36d80a8464ec4de015b53f8493b0c7e76f71
  meta 0f58a9dd13169f27ebcce32d0bf97c8806c16b6089cf077c91cb2543cc44f932
  decoded <f4 23x4x3x3 b5feddc4c8dafc090174551537d3b02807d2df844c01573ea1642889beb5d2f7
  decoded[::-2] <f4 12x4x3x3 aa565bae17bf29c1dc98e1f4efe39215618b23badc0718d26ccf27977b8d1de2
  value_range.lo <f8 23x1x1x1 63b445793523d465156cb19fc9a2469d91a2225b98603846087d01a332dbf50b
  value_range.hi <f8 23x1x1x1 d03e7a19fd1ca4281a00b215613c6668f95c0b0966fa19ab6c6685283233bcdd
  error_bound <f8 23x1x1x1 5a61c6440b01593c088dd48586da9a3c2b1cd31073c80bf0c3599f8c1660f6ab
main lq2-g1
  codes |u1 23x9 70e34c80848d6ce6a15f98a3bce7761faa2be510c6a3005459d77dfc3a8e19ff
  offsets <f4 23 40855fb031cf0331f80a146b321f3c4057aed3deddfec1f91d90dedac82295af
  scales <f4 23x3 8dd57e3ab827fffe414087bd6b72602eb62c1c35455ce86f8c4cfa00565b56a2
  meta 59415ee2d5c1e13d0d1c2ad6f9d1c3b376b2b9e96071e94115d608e6a58a32bf
  decoded <f4 23x4x3x3 7dc924db605592db8acf39e50c61a81db99f0ede4c068c35fbb5b345adf20cf2
  decoded[::-2] <f4 12x4x3x3 e5bb17307b67793a64110067c9ece6b66102b421a8f89e4a84f2b770277bedcd
  value_range.lo <f8 23x1x1x1 1f2aaa858909a96b275536ad5cb98b047039dc45796905589dbc6d1a90e8fb57
  value_range.hi <f8 23x1x1x1 75826735be05c061d39dd13d7cb32cdcc52639e6634fbc370312f7f894d6f640
  error_bound <f8 23x1x1x1 7a9c093ce5c2efbe1c66ba618c7b1e3bdb2dfe0e001dec25c056bb3ad2f482f1
main lq2-ch+zstd
  codes_zstd |u1 220 80d6d61e4b112d96482131176a1cdb2435edacc6b510168e80822f51af9f0753
  offsets <f4 1x4 3526782cf94ba9c214126dad371fc3440f770e2183fddbba6946f8327226965d
  scales <f4 1x4x3 1c12a74b2299ba26c3d984cb8e587963111ae95eea7633875328a3b0911d08bd
  zstd_raw_codes |u1 23x9 79a779b82671429e345fd6aa051ce0515b76743d69556390dd5827d4fdf60f44
  meta c5cf6513a93eeb57a39b9c1978634980d7cc52b583044eb16c99f0154eeb3d17
  decoded <f4 23x4x3x3 82b91603447e540900ce6709f89459deaf2cee38ade7dbbd45443f303d455972
  decoded[::-2] <f4 12x4x3x3 82a36b7a59d74883652ab787638e9940d55cfd99dbc9318938c93fe6d8b188d8
  value_range.lo <f8 23x4x1x1 f2331a633e79abf1f5f80ff39724c00a7d861c7769ce791922d8eecae65423b6
  value_range.hi <f8 23x4x1x1 111132941a1c5a82cc55d2941659d3b40a4f19bd8466ac463f8be0117981626a
  error_bound <f8 23x4x1x1 77a431edfa40624ad5674a473fa493b13854810f21a8173b767df93f0419ace2
main lq1-ch
  codes |u1 23x5 563d20ab07483c74664076882d22dfc354134a87dae6f65fab39cc16e76e9748
  offsets <f4 1x4 fe7074eb3b1c08eb7ff2ecef17ea663c506ab2acd48750601c3b533631c1243e
  scales <f4 1x4x1 fe021ee540bb5ace31d96c8e4aa065c238d61fc84292969c23a81217c1427c23
  meta 0ba408349bd449eb0df432a9204739dc7b8a9738aeddc3dec9736876241a0842
  decoded <f4 23x4x3x3 dc412db3467c4118de518aca96f848d5c9a4fb217f3fa74b0c798365c900de1c
  decoded[::-2] <f4 12x4x3x3 fbbf8fd6506f2154b8f84f0603a8c1a6e03bf1af4975eca9645d6233ad313580
  value_range.lo <f8 23x4x1x1 14c3bc727b09c52d34e700182930146fcd252322f74488b3c8f101bb3b615c27
  value_range.hi <f8 23x4x1x1 00d4c722d3255b29c63cbcbd102f62b1d106ace66cf52f3fd9a79cff003fd6b2
  error_bound <f8 23x4x1x1 88ed54632f3cb0666cc30dc03e5c99ee52c143fb39853eaacd2db2dc822cebf8
main lq1-g7
  codes |u1 23x5 afa0d5191c41ce84fd600aa4820cd24e008f88b8f9dfe305b6f619b87d6d6a14
  offsets <f4 4 d690ff81538680211bd2433f7513259d72dddb2e4905249f4dd98a6a21d10880
  scales <f4 4x1 43d40b2e416f738220c48e76ae8e2a11ac27da315b571dabd5e6d26561521c39
  meta febb50a2b31799ffc81e191d82a01b2f6dce512bbc4bc4818b25ee66abf96e91
  decoded <f4 23x4x3x3 22f95d5dfb863643d7049aad30a0eb2547cc8861fe3ed09625b6b19099ef5425
  decoded[::-2] <f4 12x4x3x3 6c3c905147a2b08a4d595935d6a0b8befbd033da009a0a83b0e84010f4f5192e
  value_range.lo <f8 23x1x1x1 cee701c1f31865f9a6c5f4cd4c443e4fbd92a728aebcdc969505c8b8bef1c016
  value_range.hi <f8 23x1x1x1 99bd0d4ec0832bcbd795b1bb48d89399077180c6a49961f0d44a85bde9cbfc77
  error_bound <f8 23x1x1x1 29f9e6aeec156446cdeccd6b4f7a323726e2dc940f5dc959a920f67b023038fc
main lq1+zstd
  codes_zstd |u1 25 2f1f57541cb2bf4038ab09ef1f279aa6240994d732f94ef3b0339b451c25b5f8
  offsets <f4 1 5ee615d68f882fd45a2ef5094176f22c62107c66b9181ec21d7b31152fa21df2
  scales <f4 1x1 e809a0de9a95e73c8367bbf69ed997a8b0efd53ed334b65937012654be5be3eb
  zstd_raw_codes |u1 23x5 45710526de41fc861b75a70dce7f44030dd2e77120c4d5284c0c0b03076a9ad9
  meta d5fa56699c7d4909adc70edca38924db0174d0f7432400c601b6c0674012a767
  decoded <f4 23x4x3x3 1f5be14931b5669cabf878591f7e16029f33405c4d45fe1013ae89ba609a5cd9
  decoded[::-2] <f4 12x4x3x3 546df54dba6d24101cad1f146067e05707e3f40d05eccad8098f6aca5f018aa5
  value_range.lo <f8 23x1x1x1 d37cdc7776975be8ab94f11df9697368345970568305533846871ff3d8ef9248
  value_range.hi <f8 23x1x1x1 3fe91fb5d0df29459a093cd7cac8b5e9fd3b5fa942c4ced5ce441fd048d0503c
  error_bound <f8 23x1x1x1 4666e286aa7b83a1c2575b0c22c7fae127e082fc8042253bd2963b020b0bb89c
flat fp32
  codes <f4 9x5 8f569c5f7cbcbc7acd1eb11ab3bf135419ebcf322167c5ce7232a3add86e5447
  meta 398f53e5d532a611d1b1bca479c5923d03d7ad7e73fe2749deb6a415d7f5e494
  decoded <f4 9x5 8f569c5f7cbcbc7acd1eb11ab3bf135419ebcf322167c5ce7232a3add86e5447
  decoded[::-2] <f4 5x5 7a9c55eafe5fc266b0c3a41534c292be900082f1d0be57d2fe25efef732d3f6a
  value_range.lo <f8 1x1 d1075b9cce599aeaf19ca7701e9ccbefed80ba202e300bb00e2bb24cddba1ba2
  value_range.hi <f8 1x1 25a2bb9e8b123cafaae979f5fc34503fe67d8482f280260011ad677c582acf62
  error_bound <f8 9x5 56794cfe639f98604cd1296057942d833b400965ee5e4080e4bf606567d74b4e
flat fp16
  codes <f2 9x5 8387a4c8c1451599f294fdd6cd39639ce7b74d9b8ea54d97f72f4e246d366921
  meta 052fecd65ff8e459624e8378b0293bc0c35e00a8ef7d0488b94b5154058e43fb
  decoded <f4 9x5 4e309da255a848ff0a46989d7ac27cd6f9bd5108d2cbb9b06000abc0988fd70e
  decoded[::-2] <f4 5x5 d33f6e9f37f0e8d40a9996426dfd2ca22be50a87c03fcf76422e81592bfb98d8
  value_range.lo <f8 1x1 4bc0c850de7958e50805c191a2b0167b01dc0c65213942253872acbdaffb30da
  value_range.hi <f8 1x1 b0069aa62b1916b0c1bcbb35249b02b222f31a5763bfc2e4095fd566d4d8e152
  error_bound <f8 9x5 9666fbf5811b57d3ced3196c5dcd89464fe1ab60da7cd73159db5cee8ba8d958
flat paper
  codes |i1 9x5 b83b5740fd70310f081a70f002c006df4b286725a8d36333478879aae84d9371
  scales <f4 1 5f7c22e80dab61ec48414c1cb29a09ba8067c08e991b7053dbc4aa6d49b53f62
  meta 246103d3de9121129259494d3731276e2d24343c6d17272d2d6691c19edcfb4f
  decoded <f4 9x5 29f50a392ec9f9fe95b72e071bac855627e2e584124c205587b5a9aaf31445f1
  decoded[::-2] <f4 5x5 67596a30f2039e61f32b57cad0575f5af190b304b4cac1c2a521eae8a23bb7f0
  value_range.lo <f8 9x1 0a8e1e5354770750489e9800ee069b3693c79f9fd2c929989fa3c61abe34593d
  value_range.hi <f8 9x1 8550b57ec036b268424dbf80848e2e4e9ea3cab67c24b02d6289036d1b361e73
  error_bound <f8 9x1 1bea34e2550976cb93762c1e113be85024674ab82daff02d84ab2a4f5868e4a7
flat u8
  codes |u1 9x5 7845da5143f5352b559dc00027d3dd2a3bccee12c456155b837cb259e490db52
  offsets <f4 1 c26c9350b7fc14378c8b6f66276b2654fcb2679b19012fb1c37d28f57d65e490
  scales <f4 1 9a2c4879841e3d3edb8ee4b0e52b9cf1cf64f5d10ec48518171558532950a0f8
  meta 8a47af4cc2acca3a70b99b9851edb9af5c70c0023bc99b57b8393d2ccc888ae9
  decoded <f4 9x5 955ad1f32bb86027158ac50d795cd2da7342dc4816ecab38583410f3acac66a3
  decoded[::-2] <f4 5x5 fac546660a7a4feac50d67360241f0c1e89078fd18c37ecd72f9a3419ba6320c
  value_range.lo <f8 9x1 80e5c3bd6edab493e15a90498d340e3a99c4a65efbaaf38996c7611e0ddb0be8
  value_range.hi <f8 9x1 ab6e395e08885ada27457ffc277ea23d1f5713aab1c68f4a9aef477a16a60469
  error_bound <f8 9x1 c81cc4c0466fbd55fb48b792a290f4099ca7b216d0d6e162a1fa2b2b48ab5bbf
flat u4
  codes |u1 9x3 1efef00fa6fc8a2160dde1f90cbfcb4154fede77da84c48dffbd06be0aa1d0ad
  offsets <f4 1 c26c9350b7fc14378c8b6f66276b2654fcb2679b19012fb1c37d28f57d65e490
  scales <f4 1 18c3ac426ec2922d50d963daf0527a057a9c1f035451dd71ecd1101b39e5420e
  meta e3b840ec05a38feae9b62b5cc7270d8c0cad097389793e4fed1ed9a3733b727b
  decoded <f4 9x5 f7bc83430afbc889cbacbc16cc71ec09bf0020b00e54a0ddaf4efdfbb0a17770
  decoded[::-2] <f4 5x5 67ecfdad7f070c108790490e1b97da5c83e5fa0539179a076a23c0620fa3278e
  value_range.lo <f8 9x1 80e5c3bd6edab493e15a90498d340e3a99c4a65efbaaf38996c7611e0ddb0be8
  value_range.hi <f8 9x1 ac317d0dd4845a66e8ef4766ee9391aa3d55301800fea70b7b95801aedc56869
  error_bound <f8 9x1 a326becc62adb0dddf36ce0efd4d9e42b301d3fbd4185c5687bbfdf38d7a5394
flat u2
  codes |u1 9x2 611f7da9f01cd81ddb730864f2e3c9faa95fb1ea8f0bbc81238893328b218730
  offsets <f4 1 c26c9350b7fc14378c8b6f66276b2654fcb2679b19012fb1c37d28f57d65e490
  scales <f4 1 8da71ab89991cb6ce8f94c44f876ed10f8420683d5e919b6bb42cbd80a0e18d9
  meta e0e248bd91a1741cb784b563127a09fb44308f91f07bf26baa0ba9378528bc9f
  decoded <f4 9x5 b79ff01dac583736c4b175ab54b0685c82bab94e31e489ddc7bc73ae1cd31542
  decoded[::-2] <f4 5x5 deae23c4e9fd3249115f3192e9d1385b44a0845efa870477d77c454e9d9aa53b
  value_range.lo <f8 9x1 80e5c3bd6edab493e15a90498d340e3a99c4a65efbaaf38996c7611e0ddb0be8
  value_range.hi <f8 9x1 ac317d0dd4845a66e8ef4766ee9391aa3d55301800fea70b7b95801aedc56869
  error_bound <f8 9x1 1fe5eb77b0fdf99920f3712b304a189d4e0c16638ce1558f1292c931348d03f3
flat u1
  codes |u1 9x1 67f67e7d37363258fe9987d887e2f2d01ee40bc2bd1f1a3008e17068010f2304
  offsets <f4 1 c26c9350b7fc14378c8b6f66276b2654fcb2679b19012fb1c37d28f57d65e490
  scales <f4 1 8a33b97f7ff20803729c60ce488379bc8ada0a469551742d9e60e00eeecc3145
  meta 8624169fe93ad9b388df8353b84c1668976a86f328a5c5982d39491bc2566f39
  decoded <f4 9x5 7322fe2f9081402b284dc46a72fbf455588f42493f389a13a9aa0be796d5420a
  decoded[::-2] <f4 5x5 9875b8b3bd55088c7881eb7619803e7862bb327dd055b84fb4618eee39de88f4
  value_range.lo <f8 9x1 80e5c3bd6edab493e15a90498d340e3a99c4a65efbaaf38996c7611e0ddb0be8
  value_range.hi <f8 9x1 1c9f7d031ac6a9ce46f508d17b5f69e1d1fc12e7d139f2eacc98395df0eea875
  error_bound <f8 9x1 ef547a7cea78672a60b388bac01fb77c9b5b992bcb3cd04e9fc637ec9d8221d6
flat lq4
  codes |u1 9x3 3422e69c1501c7feeca37f3c41aceaa55410299aafb48f5e60ba584b7c213fb3
  offsets <f4 1 c26c9350b7fc14378c8b6f66276b2654fcb2679b19012fb1c37d28f57d65e490
  scales <f4 1x15 1b37acd0937863ba938332e6e99553836d88541bb1a191d8017fb917a6444332
  meta 7e610f61eead77209078f836e81e82f6f28266bef9e839b85bbe674a3294c9a3
  decoded <f4 9x5 b800f8908d1c457859545cb3d58555c2023aa75af19234c8590868bf7f82a127
  decoded[::-2] <f4 5x5 4fc0c2e2f4a008aa4eace3752df64cacb8a4400da36d947f81e1d8522cdd8e42
  value_range.lo <f8 9x1 80e5c3bd6edab493e15a90498d340e3a99c4a65efbaaf38996c7611e0ddb0be8
  value_range.hi <f8 9x1 34d89327a22889a438bcef2321f650f8a7589bf08d661424834921799df07277
  error_bound <f8 9x1 c5fcc22b559ed2063981c7ab9c04eada121af33ffe02ca6bef0e8f17357aed01
flat lq2
  codes |u1 9x2 d838e3db8ef7e76f51345ffdc26e6a328496f2460c5b7621b915090b00ac4a91
  offsets <f4 1 a462bbdc0aba351c47c509a8d67ab62ee3bc8b072c477a3e556779a01f89be2f
  scales <f4 1x3 5bbf2a462a15e8cd7b74b32688729193ac6d83777eb444b3769835bbeb94ab86
  meta 54f357fa97481aed7d10aa72842838fbb351ed6c2ed021213bc1f2917fdccf33
  decoded <f4 9x5 6045d9af2e221e429478010d108f5f22ca1eeb00e2fd38e3045f950d5104c90a
  decoded[::-2] <f4 5x5 2b9fd958ecea3f140f23aaf0728df23a3e442d5d742becdb0c417192e77c3bbd
  value_range.lo <f8 9x1 aa3018d6b9ea6e4958b9ccfbe52fd8e14e415904c07ebb19230b86af5eb9743f
  value_range.hi <f8 9x1 0a99453effd49736d0cf301c05011cf267dedeef214b21765a70653a4d13d4ad
  error_bound <f8 9x1 4659df903ee2d2ff197bc48bf095c71806a9044b773f466c8f8da5ff960fbd1d
flat lq1
  codes |u1 9x1 5811895a184bbbd08f71538157397218ec188be4ccfe681687e7a94dd50d2930
  offsets <f4 1 f1acad87d040aa74fa8f4f2c5349ea0668e1430aee08bde53343b90534e8b3cf
  scales <f4 1x1 c7d63074b37585d8ca925d21b29d61f67df561ecc6eaf74ce9da9f2b0ceebb43
  meta c8ba320a7bea354d64ef7cc53bd581a8c2e910896ac8857ac384af55a908b6f8
  decoded <f4 9x5 d33012d581fa0a1014e789b5bc53bc283e57aedb398be07a24f2548c30ca15b0
  decoded[::-2] <f4 5x5 f3240b09e2474ba9933c169507dc943583535489511daf44106041987d8a5e81
  value_range.lo <f8 9x1 8a50b296c0946f1ddf43c4c6e89464cd61a5e6d31eec2bade184d2d0638e5d58
  value_range.hi <f8 9x1 707fa9a6ebfd5aec946105cbf3c83b8cdc20b3b7cd1c194b29691a96a3ffbb2b
  error_bound <f8 9x1 e2c84b52ea8a10f23ad6e5b3a86fa13c6db40c31fb7b3d0bd8855181c7c902ca
flat paper-ch
  codes |i1 9x5 9382b3e763cc69914aaac78c8dc30f1714bed203769d244516c769cf3f583690
  scales <f4 1x5 a994864241fbb3d2d06bfc08964f7c38a75e171eeccea8810feed09d78c490cf
  meta 8264001feb113b30fc15c530e02c0f754058bcab14682992372c979e211f7a75
  decoded <f4 9x5 49948d2b8c4f08480a3431f7a9438325486b400ad88a8988ecea9f0f846f96ba
  decoded[::-2] <f4 5x5 f180683e63b1accdf7d706b6a058c9e2fc85c0042708a5acb7e69553dd5d16fa
  value_range.lo <f8 9x5 7b18b326e1d98269ad2b2215a844600e0b6eef847edb4042316146cb83469b6f
  value_range.hi <f8 9x5 01d14a079f6443ab9761b3679e05c143d6158bc8a3f16764bfe31c8569104765
  error_bound <f8 9x5 8c1c1e50b585e26c1806feb1f1025e8c23b00b3b205a1902bc8967b947e82bed
flat u4-ch
  codes |u1 9x3 078e9188dad9df03680412aa357322967500dec23f995cd447a37480b2689e64
  offsets <f4 1x5 80c8058918430dd1a6d2f6a2101fd6eaaf1a8d1641d3040dd09b93968c4d874a
  scales <f4 1x5 0aa7a371207784ae825d11d16f3a79bf653c394970bf7fe9ae52d17643d69c9e
  meta 7aa7230dba64010c39dafab066b81950ccbb06f55a956fd425c48591fcbef110
  decoded <f4 9x5 86c92f20ef84b642f977030c925332de084262a8628f73af52b92be9bd7e56bb
  decoded[::-2] <f4 5x5 b48513179ac56e2fae8a896ea2b95eaeec220325ec899570ea02cca096fc864e
  value_range.lo <f8 9x5 538b0a82117ed972898130730a62fd159f8872fd3063db9a1f20e616d870da7e
  value_range.hi <f8 9x5 159d9ee299e5ece13e69c75205399e2c4a45c078fc076de7e36a7ff0be323bd5
  error_bound <f8 9x5 32f7af96498436542371d8cbaf87d59fa7cef57b4db9fbbee1654e7c16a6e337
flat u2-ch-g4
  codes |u1 9x2 b760379a7f394f48e57862de97d2e335aa10b961cf56c3838f7126a946bc43da
  offsets <f4 3x5 b8462d004edea723570047869901b941d59fa054a318db97d92313cf62298ef3
  scales <f4 3x5 e17a48414165e74d344390f7dab38770cefca2b37251497bb9a8062b6e7ca13c
  meta 3643d3e6c117683f4f263dff2230ddf0ffedea08abb2ba26d1368f965e7a100d
  decoded <f4 9x5 faf72278878e233efc3c9b26e67de0de1ac4d5497f6a4ea527a9e316c9cc4903
  decoded[::-2] <f4 5x5 21d1f65f2e12e2052637a5ac3751eb05944c8efb581170714d603f13fec3e78c
  value_range.lo <f8 9x5 cab0a8831801b2da7f65969e1a9f89dc905868b65a1554d4333c5682206e6e79
  value_range.hi <f8 9x5 fe7efcb0ad3963009ef6c97e4f183b405c6ba754dafa8074e8a71a201d7d4001
  error_bound <f8 9x5 c01aafc3532c3aadee0223dad0fc58e6e1359f6c5a619fa8ef597108530197b3
flat u1-ch-clip95
  codes |u1 9x1 a1ae4e397d9f40bcbb2450fe4810c9c7607ebb5eef91d06df1fd68fad9ad9e47
  offsets <f4 1x5 f33616ee00a06b55b9151b3789ab66d4258053ebba26aae7e0d4328604d069f8
  scales <f4 1x5 cb36c271f5b3baec4934a733ac967e361cc3e3cdd9487c9e1e800e38247a6bc7
  meta 7d0aa06fb42a1f83456e134d593fecb782e230970bf8bd0a05d2cdc8b02c85e8
  decoded <f4 9x5 2e046da01743fa62ac2ebb098e84a530ecd7bf295eee7b77230ca3d54e214dbe
  decoded[::-2] <f4 5x5 dab939bc4d99f8469654d4d4a119db843398f1ada4b2e9faad8bc61901a58e14
  value_range.lo <f8 9x5 990868724dc5d0d5a3eb6454415b0c76cdd9139e27a9d3e253026613e0205e11
  value_range.hi <f8 9x5 0ca6d810fe60a91b53b775ac8dc9f7a802b5c3dd7717d938cd02a46d9dd155dc
  error_bound <f8 9x5 3e13fd8749d160153c169c92b62832accf3f3811e94490cc1ee444072c38bc88
flat lq2-ch
  codes |u1 9x2 56bad8c8dde29324bc69dd14a40350cd5d510f66cf731d36de92cf429291b475
  offsets <f4 1x5 0b1b28f0fa85502dd5e235bb28b730603f537835b2710b4347f10ed15e71c53d
  scales <f4 1x5x3 591ab0897ac84a7f03611b91c095712ec5e7a52fd1849bb73dbb199e585c2b0c
  meta 7a1259e9665ba172da4b28ed7b7d253ab1733426bc46a741b0454fa9d89e6ec2
  decoded <f4 9x5 a63026446be0699a374e7cf17e19cbc3808f4fdccc7e820fb7ce6e5890a523e9
  decoded[::-2] <f4 5x5 c00a8005ae0364345c9f0a2ed316d7e3faa876f461a93c3222c8bab0f14dbc2e
  value_range.lo <f8 9x5 63866a8fd530721385a0534ec40a2c5a89b57eb93fddec801221e3e788549a84
  value_range.hi <f8 9x5 654b3d30d52eddf04a3d8d58fe2c3c75c24f12f4989712bfe57b4fe883fe8a01
  error_bound <f8 9x5 0fe5cc5b56f11c939ba08932f0e5665fb4196b7c731ba318084f218d0c839466
flat lq1-ch-g2+zstd
  codes_zstd |u1 22 43f03286ca3c55fd693207b50dfd97981bae414ea762adb2958bed26625e7352
  offsets <f4 5x5 23e08ce7cae6fc9ab83c3aa50499071ea637448a2800237cd826f413092a8430
  scales <f4 5x5x1 440da70cab7d4331c31d44483e6be4686713f73e20f7feee0389e284a3304c87
  zstd_raw_codes |u1 9x1 3cb0021022ab4d0b2caba6bda02eba25814f3fc1c0715189a85e759092e6626d
  meta c6a91990addbc867314efac6a89eeb29ee0d45156a636b189515838b51032307
  decoded <f4 9x5 06a3afd0cd9ffb4ed337efd4cb8c03e9b6e9501e05a70d3f4f391fcd966e121e
  decoded[::-2] <f4 5x5 71371a402280e892570b25829c0747eae986732accc889640ada5b6e9102bbfd
  value_range.lo <f8 9x5 25dea74c42ed195ededd0118e9c74bf65eba9ec641cae8ef5d746d63bf94b39d
  value_range.hi <f8 9x5 1d9d81db9bd0c98f7e69e9ac43b47d8cd25202e52ae7303c0f697c58edb2bbbe
  error_bound <f8 9x5 926d726885d7f6d252a15582ac53ecc3abc832186b8ee129259dff99e5f1ad82
scalar fp32
  codes <f4 11x1 5a446a4c29c1272c34324607c142ccecb22a9d823af3502318c712e93c76aa38
  meta 2ed0943d1ac5c64ca45a0cf232d2e64d45af29685aa386ad034529c01df926d5
  decoded <f4 11 5a446a4c29c1272c34324607c142ccecb22a9d823af3502318c712e93c76aa38
  decoded[::-2] <f4 6 8fab6fb1bc9a8e2bc1127bc6214bcdb64089a0348c9ebab46683890069799514
  value_range.lo <f8 1 d1075b9cce599aeaf19ca7701e9ccbefed80ba202e300bb00e2bb24cddba1ba2
  value_range.hi <f8 1 25a2bb9e8b123cafaae979f5fc34503fe67d8482f280260011ad677c582acf62
  error_bound <f8 11 73a4511ca00a0c8c74b37e71f4a58f0a82acd499385aa02a24e272844df836b2
scalar fp16
  codes <f2 11x1 17163aa0ff1dd9f723f217f8303e64dc8b27d612f11532b432e04f19f8bf76d1
  meta 13ac57480be40444d493a96a05662af5720bc152ba377d8578a8e6e6131013ce
  decoded <f4 11 5a446a4c29c1272c34324607c142ccecb22a9d823af3502318c712e93c76aa38
  decoded[::-2] <f4 6 8fab6fb1bc9a8e2bc1127bc6214bcdb64089a0348c9ebab46683890069799514
  value_range.lo <f8 1 4bc0c850de7958e50805c191a2b0167b01dc0c65213942253872acbdaffb30da
  value_range.hi <f8 1 b0069aa62b1916b0c1bcbb35249b02b222f31a5763bfc2e4095fd566d4d8e152
  error_bound <f8 11 77ea6db5522a4132bc440d6a069279b3b37b42baf718c06c8b5ebeb2162cf745
scalar paper
  codes |i1 11x1 baf71ee6f603cf78303cbddc2c471927d61658769e2438769a2094279d9621ff
  scales <f4 2 2b2f896ebd73e04542e1bf66f064b08742eddd68f7d346eaca3b547f1dd05b25
  meta 09174e08a0d222d19d268106d652a4941ab16ea917b326346d6b5175e02828b0
  decoded <f4 11 93b9723663ae85f445de121811120ab1b14de1177f486b722a40f628c43a4734
  decoded[::-2] <f4 6 7c43758a795df6fa5c9f2f23bd4d65542f7892d098df459b0624b385876ed4cb
  value_range.lo <f8 11 99de10df6f734f853c494060dd0be494ca45cbb64e8500d08082b3c5b9871df8
  value_range.hi <f8 11 a4b2af121720541c97f508559850a011d4ebfc34923ca41765a75e6cb79be1a9
  error_bound <f8 11 2da71ab5603881ad25de4ec2dab6739eef6f700f945f01a8dd2f579c146d236d
scalar u8
  codes |u1 11x1 23d4a62c472809938989db1256eb6c46b188fdaddb772c6dcf380833a2eb394d
  offsets <f4 1 e4767380eb5e2fc046bce28b8b2a30c81c733be1a56203cd9499066086617f6c
  scales <f4 1 a6baabd091faf19492792a0fb0b2e222b52fcbe6cddd582c1a955c21a21e9b8f
  meta 209fda79df425e314426d4fb6336f7eab301a00d16bee3e66f6d106b6c0c20c9
  decoded <f4 11 9d301e595099c8e055cfb87fe6fbfd5f90f98b81b48ef14fee491718c869a745
  decoded[::-2] <f4 6 8fab6fb1bc9a8e2bc1127bc6214bcdb64089a0348c9ebab46683890069799514
  value_range.lo <f8 11 1144b40b7aa777f18ad0ebe4dab65d716c5b4087f3eb2932c24d491d1ff4c178
  value_range.hi <f8 11 61f55d293d3c7db57d52364018cc6aad8c94f2ee6befba1dcce24660e1e1b001
  error_bound <f8 11 8fdfff637dda7540848dd74e1d16d9679cb733adcf781ba5374672cf3a1068a6
scalar u4
  codes |u1 11x1 c361e7b69baa29f835b1f2863b51c47d20aab7ed60d7c3f2cdd03212d2b7609f
  offsets <f4 1 e4767380eb5e2fc046bce28b8b2a30c81c733be1a56203cd9499066086617f6c
  scales <f4 1 74777d619667e6e4446ced0f1b2757da66086196bacecd1c7d029af0d558a630
  meta a029a0e32b0bac70ccbf52dbea5b8cd133f755ba1729b6ecc0d41ad24332d363
  decoded <f4 11 644b3c2b06ee5bb794413e5b732f04a38ce3f8e2c4a00b7140aec81fd00061a5
  decoded[::-2] <f4 6 8fab6fb1bc9a8e2bc1127bc6214bcdb64089a0348c9ebab46683890069799514
  value_range.lo <f8 11 1144b40b7aa777f18ad0ebe4dab65d716c5b4087f3eb2932c24d491d1ff4c178
  value_range.hi <f8 11 3a6e8a767c2b9110f6dc4d6f3a2cca63345cf178d52fdc9303cb85712bf59ca5
  error_bound <f8 11 ab5097a6b316899200df54a07b3d229261c7b34e39be8dcb77d73c9dd7632ee2
scalar u2
  codes |u1 11x1 07023e706a149d6bf4003aa4efd14088eedc79c288edff81cb24ea1267935079
  offsets <f4 1 e4767380eb5e2fc046bce28b8b2a30c81c733be1a56203cd9499066086617f6c
  scales <f4 1 102dcb97d4eb352605efc893a5ebdb8dbf573451bafe020be880d31989216143
  meta b7cf21372fe7649c5a82e15b4fe9beba20b532a17725fbbd85face300b7b0259
  decoded <f4 11 c66907acfd7ee19b44a910539a533c1dfdbfbfb39a5ecd7e5303c2407affad31
  decoded[::-2] <f4 6 63c2736eb8aec5842dd2c1b952be8875178ebc15d177c3609f88e11816f6fcf9
  value_range.lo <f8 11 1144b40b7aa777f18ad0ebe4dab65d716c5b4087f3eb2932c24d491d1ff4c178
  value_range.hi <f8 11 b4a0033aca1cf86c9742f0b3b79e8cc3e3488343dcc5b19a3d35a26d0a81c85a
  error_bound <f8 11 d756f9731aa66b6a1730c75ba38b43271c2973db601f7fa30006c1b7ad7cf50a
scalar u1
  codes |u1 11x1 c4bb92d3d4206d95ceb0cfc9ac656bf1fe4143c81cebdc679fbf53236dc08179
  offsets <f4 1 e4767380eb5e2fc046bce28b8b2a30c81c733be1a56203cd9499066086617f6c
  scales <f4 1 fca31f1667a6aa1bba12fca4e4ea1becd503379d80da3213af07f6cc5702828d
  meta 1b6d257085d1c1c78a8cc99290f0ce925a21e4596383cfc17e38d6f9fcc48964
  decoded <f4 11 af815c20f8077127e0152fe368dad22d9e6e6af1b3aecca74601dda7756882e4
  decoded[::-2] <f4 6 86ab2720739756e71a08b23d7c7bf7bdf62f2dcd65491ebca1d6f4a22379969b
  value_range.lo <f8 11 1144b40b7aa777f18ad0ebe4dab65d716c5b4087f3eb2932c24d491d1ff4c178
  value_range.hi <f8 11 ed9b83df3dafccefbfa0c45dd3e1f270b3b39dba101a2cf910d809e77576040f
  error_bound <f8 11 fab29a0a5f5baf95cfed98656ea2e4e04ae11145c9599c185c53e4983b13080e
scalar lq4
  codes |u1 11x1 ea704d6c705d5a747327462fd435810a565b7b8c82189d9490238ced9706b7a3
  offsets <f4 1 e4767380eb5e2fc046bce28b8b2a30c81c733be1a56203cd9499066086617f6c
  scales <f4 1x15 a942fe5cadcff1d7e7e182bd3be84070ff0f7f4b14f269e44abe316fd0b66336
  meta c191494d77b8044b8a15fac0f900366c6cfa3aa71e395109360ca13be3fbcd84
  decoded <f4 11 5a446a4c29c1272c34324607c142ccecb22a9d823af3502318c712e93c76aa38
  decoded[::-2] <f4 6 8fab6fb1bc9a8e2bc1127bc6214bcdb64089a0348c9ebab46683890069799514
  value_range.lo <f8 11 1144b40b7aa777f18ad0ebe4dab65d716c5b4087f3eb2932c24d491d1ff4c178
  value_range.hi <f8 11 ed9b83df3dafccefbfa0c45dd3e1f270b3b39dba101a2cf910d809e77576040f
  error_bound <f8 11 3c4c2497fb60fa67acffe54dc1db618cefad1e7c74e84bc94bc89645676f0804
scalar lq2
  codes |u1 11x1 997579d7c782bba2e69da1e9ecd55589b9186ec9e966e6ff39289953f81685fd
  offsets <f4 1 f5f9ddc37d9d4bd436e2292667542851f94944c3266113957e9887cf5ce08092
  scales <f4 1x3 1c431bb3a1afe90f4efc0728f57b7ed03d1aaaf82390d7e835b23d46d6c12d7c
  meta addf9e7e062016d07e9fbc7784764ca8e4cc1c5a2b87734529a85e5c0808f66c
  decoded <f4 11 1cd41c1fbfc540ed3e3b89f48aba80153a7b896c5bd8f89629f777a201073fa4
  decoded[::-2] <f4 6 93972c724994e6a5288b6159b764d6c069d2a7413ebaf196ec47ea118a94a5fd
  value_range.lo <f8 11 1db7b17117d252ef6eba0a8e352b17a8e24df80a5709c985791e5c31c39438dd
  value_range.hi <f8 11 c1139a2df7595bde5875786108c78d5e029c3c9b91ab4939a1049154e4a16eb1
  error_bound <f8 11 b464f796394729b9c74ddfb40debca326843d2b8637769e153ed96be06a986ad
scalar lq1
  codes |u1 11x1 c4bb92d3d4206d95ceb0cfc9ac656bf1fe4143c81cebdc679fbf53236dc08179
  offsets <f4 1 accdb4bb2acbc6f54c90bfd9199701013573082c919461ac70872e410a4bd44d
  scales <f4 1x1 ca60ae75597973fcca3f22e23f970db85eae1c3450c8b55ceaad0106c4a9761f
  meta 7de8d23f0a4fe5bfb249ef578cbc717c667a93b9b2e2effd573ae0ea570d3f0f
  decoded <f4 11 db31da87157a458c077517ce9f907b62f09b0c06eafd9631cca37065030e4391
  decoded[::-2] <f4 6 e2fa481895e320b48d54f42b8f85f8d4c98547d747ec27b4e9b30c5f26d8a0bc
  value_range.lo <f8 11 b1a2ae8ce7ae00660e27588faadca15c0357c13b9eaa7d523230bdbc39c9da77
  value_range.hi <f8 11 91e8b382892ace1db204fc42a47049d01d66b77e088bd7aac4ceaf25b8ba068e
  error_bound <f8 11 0042d26e7c0aaeb72bcdda912fab5deec7b6940ad734f20212044ad78aa0a1ac
scalar paper-g4
  codes |i1 11x1 5661181bdf102129c24f1f159fc69200a6b2b02a906852e8ef768b22263cebff
  scales <f4 3 93ef8fafafaae8de7b6d02f27ddf9dedbcbeacb352e113ecc41ce763a680c842
  meta c7492b2b5eeb2296eca5ec03c15989d394795c76e8580ea7d08f73681f7144e4
  decoded <f4 11 d5ba07e3bc2484dc4d7d09b0be4bbc2b980f80f1505da184e73cd1b7631d6de0
  decoded[::-2] <f4 6 69f9e6cda0954825e14a47ec74ede8c4372cac6d8298d981aff4303eb8311bec
  value_range.lo <f8 11 f8970712a6adee964427d69c199ba6060801e90620065b390c8bcba2e270c7c4
  value_range.hi <f8 11 8b0784f045d45797814594e70aff3d2ba5eee03504fce050b993e363ad933bd5
  error_bound <f8 11 fb375d350ab2e154dd3571e2b136c8738c45023224613eda184e75fb289a5b37
scalar u4-g3+zstd
  codes_zstd |u1 24 14cd55d16d343dceba7a54fe683f223ecbbb38bfe7958a9da33b7aabef73d454
  offsets <f4 4 72981e03a74f0074d76b3fd25415bb1efe2a58323e4ae7adec33968dc719338f
  scales <f4 4 e2bc9fd49a53745db4c24837b280af34faecc9411889e1b258d02031c08a787a
  zstd_raw_codes |u1 11x1 93c792964217404ef7499342dd8db465bb7d2a4cdfc22805edaaaedfbe2ded4e
  meta 9120b8e5af252a99e4c9a0f7457159f644cb0efdc5ca23e3d982f243735ceff1
  decoded <f4 11 1fe44a1a12f8873a11be16dfa21223be4e82b32cfd3c40b2b1d17f521457e6b1
  decoded[::-2] <f4 6 a78b1f3b789919c09b1558449f20d422d76d8dfeb182cb6fbf630f121b092241
  value_range.lo <f8 11 f6e68b33bdf2b632b96eb7aef3f0340c077b1cc8b2b99e320a7728de2d41d327
  value_range.hi <f8 11 df75fa560875eb6b50dac6f304d7f12ee9feb9dde9c776bd4cc3033234f1f532
  error_bound <f8 11 18eb7bd42e230d673cb9fb526c08589f4117398a79d67ae003db8549cf62f385
scalar u2-clip80
  codes |u1 11x1 2be1732c14e378501a38f9689293d9888c4974fb06814b4592b4bcd950aaeda9
  offsets <f4 1 c68830a25204a09f8e77aada6bc5807f607cccaaa0ebb2a7122d317584478a8b
  scales <f4 1 e00e5eb9444182f352323374ef4e08ebcb784725fdd4fd612d7730540b3e0c8c
  meta 8a56550e428814f5446196472cdb1a56bbccdbd2db6d776e07eef3ec1ef74013
  decoded <f4 11 a74edc700ebb928c3680b2247c59c8a149f3f471b1d610cbb99aee2fc3a28a18
  decoded[::-2] <f4 6 1d68304bd38e55dc9b11dbc2ac54c3cad216ee8c4500d4479c78069bbf2a7d1a
  value_range.lo <f8 11 484a1189f8d1b5af7f07676dff0bf43c3594a6b759678aeb0a0ad58d263652af
  value_range.hi <f8 11 91e8b382892ace1db204fc42a47049d01d66b77e088bd7aac4ceaf25b8ba068e
  error_bound <f8 11 81585b1e6ecb1369b3717563b43db86c95aee24032e2705771bbcf3a6d4b28bd
scalar lq2-g5
  codes |u1 11x1 eed07fca96636f6dc9a790c6e1e09dffd240b4b7343d6a0efb3a55824eeafcfb
  offsets <f4 3 71318e4810ea9746f10ded5e7159504b779573b38bef5e3498bd121d0c93a3ba
  scales <f4 3x3 6a171f1fb5ae28b6cbd9c55b8de729726929379e96f77ed2004301c09a294e74
  meta 427e4fcd0ac091805b29fd733b23075fb849792a53540da1b84134ddde2abbc7
  decoded <f4 11 dcc246fc83b2249f6292bcec820a8b6d26456c26175631dccdf1c364cd1d0983
  decoded[::-2] <f4 6 cae7abcfa821429ecc68605ebb14984d345ea6f70021932e3f625cb2ebdcc828
  value_range.lo <f8 11 bc989bcbe00ff1a4ac8438b17a35ceb7d3f97db1a308c4551813fe173b175e10
  value_range.hi <f8 11 ca012be2ae47bb574ff73eee3251619d4d1a13e639f4e31995fe7b355b699495
  error_bound <f8 11 22049022051765d6b423336ccf553840488ca845218661399b2f110164f78d49
"""
)
