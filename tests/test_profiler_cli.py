"""Per-cut profiles and the ``ecofed`` command line."""

from __future__ import annotations

import json

import pytest

from ecofed_flwr.cli import main
from ecofed_flwr.models import create_split, get_model_spec, list_cuts
from ecofed_flwr.profiler import CutProfile, profile_cuts

REQUIRED_KEYS = {
    "cut",
    "activation_shape",
    "values_per_sample",
    "bytes_per_sample",
    "raw_input_bytes",
    "front_params",
    "front_flops",
    "back_params",
    "activation_to_input_ratio",
}


@pytest.fixture(scope="module")
def vgg_profiles() -> list[CutProfile]:
    return profile_cuts("vgg11_cifar", input_size=32)


def test_vgg11_block2_profile(vgg_profiles: list[CutProfile]) -> None:
    assert [p.cut for p in vgg_profiles] == list_cuts("vgg11_cifar")
    p = {q.cut: q for q in vgg_profiles}["block2"]
    assert p.activation_shape == [128, 8, 8]
    assert p.values_per_sample == 8192
    assert p.bytes_per_sample == {"32": 32768, "8": 8192, "4": 4096, "2": 2048}
    assert p.raw_input_bytes == 3 * 32 * 32 == 3072
    assert p.activation_to_input_ratio == pytest.approx(8192 / 3072)
    # Parameters only (BN running statistics are buffers):
    # conv1 3*64*9 + 64 = 1,792; bn1 2*64 = 128; conv2 64*128*9 + 128 = 73,856; bn2 2*128 = 256.
    assert p.front_params == 1792 + 128 + 73856 + 256 == 76032
    # Hand count, 2 FLOPs per multiply-add; FlopCounterMode skips bias, BN, ReLU and pooling:
    # conv1 3->64, 3x3, output 32x32: 64*32*32 outputs * 3*9 MACs = 1,769,472 MACs
    # conv2 64->128, 3x3, output 16x16 (after the 2x2 pool): 128*16*16 * 64*9 = 18,874,368 MACs
    hand_flops = 2 * (64 * 32 * 32 * 3 * 9 + 128 * 16 * 16 * 64 * 9)
    assert hand_flops == 41_287_680
    assert p.front_flops == pytest.approx(hand_flops, rel=0.05)


def test_profile_matches_a_split_built_at_that_cut(vgg_profiles: list[CutProfile]) -> None:
    # The profiler slices one build; each cut must agree with create_split at that cut.
    for p in (vgg_profiles[0], vgg_profiles[4], vgg_profiles[-1]):
        split = create_split("vgg11_cifar", cut=p.cut, input_size=32)
        assert list(split.activation_shape) == p.activation_shape
        assert sum(t.numel() for t in split.front.parameters()) == p.front_params
        assert sum(t.numel() for t in split.back.parameters()) == p.back_params
    flops = [p.front_flops for p in vgg_profiles]
    assert flops == sorted(flops) and flops[0] > 0


def test_to_dict_is_a_copy(vgg_profiles: list[CutProfile]) -> None:
    d = vgg_profiles[0].to_dict()
    assert set(d) == REQUIRED_KEYS
    d["activation_shape"].append(0)
    assert vgg_profiles[0].activation_shape == [64, 16, 16]


def test_cli_profile_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["profile", "vgg11_cifar", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["cut"] for r in rows] == list_cuts("vgg11_cifar")
    for row in rows:
        assert set(row) >= REQUIRED_KEYS
        assert set(row["bytes_per_sample"]) == {"32", "8", "4", "2"}


def test_cli_profile_table_lists_every_cut(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["profile", "vgg11_cifar", "--input-size", "32"]) == 0
    out = capsys.readouterr().out
    first_column = [line.split()[0] for line in out.splitlines()[2:]]
    assert first_column == list_cuts("vgg11_cifar")
    assert "128x8x8" in out and "76,032" in out


def test_cli_errors_are_one_line_with_exit_code_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["profile", "no_such_model"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and "no_such_model" in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert main(["profile", "vgg11_cifar", "--weights", "nope"]) == 2
    assert capsys.readouterr().err.startswith("error:")


def test_cli_efficientnet_lite0_offline(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    argv = ["profile", "tf_efficientnet_lite0", "--input-size", "32", "--json"]
    # No --weights: the model's default source is the offline `imagenet` package.
    assert get_model_spec("tf_efficientnet_lite0").default_weights == "imagenet"
    assert main(argv) == 0
    rows = {r["cut"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["stage3"]["activation_shape"] == [40, 4, 4]
    assert rows["stage3"]["bytes_per_sample"]["8"] == 640
    # Online-only weights fail fast and cleanly offline.
    assert main([*argv, "--weights", "hub"]) == 2
    assert capsys.readouterr().err.startswith("error:")


def test_cli_models_and_codecs(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["codecs"]) == 0
    out = capsys.readouterr().out
    assert "u4" in out and "fp32" in out
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert "vgg11_cifar" in out and "stage3" in out and "imagenet" in out
