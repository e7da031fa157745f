"""codec-sweep: activation codecs through the EcoFed server, chosen on the validation hold-out.

Each (codec, seed) is one short federation of the core server
(:class:`ecofed_flwr.server.EcoFedServer`, the object the Flower strategies drive), run in
process with ``EcoFedServer.run_round``; nothing of the server round is re-implemented here.

- Devices: the app's own partitions (``ecofed_flwr.app.task.client_data`` with the default
  ``EcoFedConfig``, 10 devices of ``SAMPLES_PER_CLIENT`` samples; the seed also draws the
  partition). Each device runs the frozen front once per seed and the activations are reused
  for every codec (a frozen front gives the same activations every time); each codec encodes a
  device's whole upload exactly as the ClientApp does (``codec.encode`` of the front's output).
- Server: every setting from ``ecofed_flwr.defaults`` (refresh once, replay all, pooled
  trainer, lr 0.05 with a cosine schedule, batch 64, a 10 % hold-out, keep the best back),
  except the number of rounds, ``NUM_ROUNDS``.
- Decision metric: the validation accuracy of the kept back on the hold-out of the uploads,
  as the server holds it (decoded with the codec). The winner is the codec with the fewest
  bits per value within 1 point of fp32 (mean over seeds).
- Reported only: test accuracy of the kept back on ``TEST_SAMPLES`` test images (the app's
  seeded subset for seed 0, the same for every run), on the fp32 activations of the server's
  own front (what ``make run`` and ``ecofed evaluate`` score) and on the same activations
  passed through the codec in device-sized uploads (what a back serving devices that send
  coded activations sees).

Bits per value come from the server's ledger: the bytes of the uploads as sent (zstd
included). Runs go codec by codec in the order of ``CODECS`` (all seeds of a codec before the
next), each finished (codec, seed) is stored at once and a rerun skips it.

    .venv/bin/python benchmarks/codec_sweep.py [--seeds 0 1 2 3 4] [--codecs ...] [--fresh]

Writes benchmarks/results/codec_sweep.json, codec_sweep.md and codec_sweep.png.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import zstandard

from ecofed_flwr.app.task import build_split, client_data, num_classes_of, test_set
from ecofed_flwr.codec import Codec, make_codec
from ecofed_flwr.config import EcoFedConfig
from ecofed_flwr.models import SplitModel, run_front
from ecofed_flwr.results import write_json
from ecofed_flwr.server import EcoFedServer
from ecofed_flwr.trainer import evaluate_back

RESULTS = Path(__file__).parent / "results"
NUM_CLIENTS = 10
# Sized for about an hour on two cores shared with other jobs: one run of 1,000 samples per
# device and the full test set took 9 minutes at a load average of 13 (1 CPU-minute and a
# half); half the samples and test images halve it.
SAMPLES_PER_CLIENT = 500
TEST_SAMPLES = 5000
NUM_ROUNDS = 3
WITHIN_POINTS = 1.0
#: Most important first (a sweep cut short still compares these): the fp32 reference, the
#: fitted-levels codec, per-channel clipping at the percentile fitted on one upload (93: the
#: lowest MSE on client 0, seed 0), the current default (u4; +zstd decodes to the same
#: values), the paper's int8, the per-channel 2 bits of the previous sweep and fitted levels
#: at 1 bit. Seven codecs x five seeds (about a minute a run at a load average of 5) fit the
#: hour this sweep may take on two shared cores.
CODECS = [
    "fp32",
    "lq2-ch+zstd",
    "u2-ch-clip93+zstd",
    "u4+zstd",
    "paper",
    "u2-ch+zstd",
    "lq1-ch+zstd",
]
#: The distortion screen of the three 2-bit families for heavy tails, on seed 0's uploads at
#: three cuts of the default model: per-channel clipping at these percentiles, mu-law
#: companding at these mu, fitted levels.
SCREEN_CUTS = ("stage2", "stage3", "stage4")
SCREEN_CLIPS = (99.9, 99.5, 99.0, 98.0, 97.0, 95.0, 93.0, 90.0, 85.0)
SCREEN_MU = (1.0, 4.0, 16.0, 64.0, 255.0)

Devices = dict[str, tuple[np.ndarray, np.ndarray]]


def sweep_config(seed: int) -> EcoFedConfig:
    """The default configuration with the sweep's devices, rounds and ``seed``."""
    return replace(
        EcoFedConfig(),
        samples_per_client=SAMPLES_PER_CLIENT,
        test_samples=TEST_SAMPLES,
        num_server_rounds=NUM_ROUNDS,
        seed=seed,
    )


def device_activations(cfg: EcoFedConfig, split: SplitModel) -> Devices:
    """Each device's front activations and labels, by client id (the front runs once)."""
    devices: Devices = {}
    for partition in range(NUM_CLIENTS):
        data = client_data(cfg, partition, NUM_CLIENTS)
        front_out = run_front(split.front, data.images, cfg.front_batch_size)
        devices[str(partition)] = (front_out.numpy(), np.asarray(data.labels))
    return devices


def through_codec(codec: Codec, activations: torch.Tensor) -> torch.Tensor:
    """``activations`` encoded and decoded in uploads of ``SAMPLES_PER_CLIENT`` samples."""
    parts = [
        codec.decode(codec.encode(activations[start : start + SAMPLES_PER_CLIENT]))
        for start in range(0, len(activations), SAMPLES_PER_CLIENT)
    ]
    return torch.from_numpy(np.concatenate(parts))


def run_codec(
    cfg: EcoFedConfig,
    split: SplitModel,
    devices: Devices,
    test: tuple[torch.Tensor, torch.Tensor],
) -> dict[str, Any]:
    """One federation of ``cfg`` (its codec and seed); the kept back's figures."""
    started, load_before = time.perf_counter(), os.getloadavg()
    codec = make_codec(cfg.codec)
    server = EcoFedServer(
        copy.deepcopy(split.back),
        split.fingerprint,
        split.activation_shape,
        num_classes_of(cfg),
        num_rounds=cfg.num_server_rounds,
        **cfg.server_settings(),
    )

    def upload(client: str) -> tuple[Any, np.ndarray, float]:
        activations, labels = devices[client]
        start = time.perf_counter()
        batch = codec.encode(activations)
        return batch, labels, time.perf_counter() - start

    clients = sorted(devices, key=int)
    for server_round in range(1, cfg.num_server_rounds + 1):
        server.run_round(server_round, clients, upload)
    kept, back = server.best_report, server.result_back()
    assert kept is not None and kept.val_accuracy is not None
    test_activations, test_labels = test
    _, test_fp32 = evaluate_back(back, test_activations, test_labels)
    _, test_coded = evaluate_back(back, through_codec(codec, test_activations), test_labels)
    reports = server.reports
    samples = sum(r.samples_uploaded for r in reports)
    sent = sum(r.bytes_up_activations for r in reports)
    values = math.prod(split.activation_shape)
    return {
        "codec": codec.name,
        "seed": cfg.seed,
        "bits_per_value": 8 * sent / (samples * values),
        "bytes_per_sample": sent / samples,
        "bits_per_value_without_zstd": 8
        * codec.encoded_nbytes(SAMPLES_PER_CLIENT, split.activation_shape)
        / (SAMPLES_PER_CLIENT * values),
        "val_accuracy": kept.val_accuracy,
        "best_round": kept.round,
        "holdout_samples": kept.holdout_samples,
        "test_accuracy_fp32": test_fp32,
        "test_accuracy_coded": test_coded,
        "val_by_round": [r.val_accuracy for r in reports],
        "encode_seconds": sum(sum(r.device_seconds.values()) for r in reports),
        "train_seconds": sum(r.server_train_seconds for r in reports),
        "seconds": time.perf_counter() - started,
        "loadavg_before": list(load_before),
        "loadavg_after": list(os.getloadavg()),
    }


def screen(devices: Devices) -> list[dict[str, Any]]:
    """Distortion and size of 2-bit candidates on every device's upload, lowest NMSE first.

    NMSE is the squared error over the variance of the channel in its upload, averaged over
    channels and devices; bits per value are after zstd. Mu-law is not a codec of the
    package, so it is prototyped here (see :func:`mu_law_2bit`).
    """
    candidates = [f"u2-ch-clip{p:g}+zstd" for p in SCREEN_CLIPS] + ["u2-ch+zstd", "lq2-ch+zstd"]
    candidates += [f"mu-law {mu:g} {r}" for mu in SCREEN_MU for r in ("max", "p99.9")]
    rows = []
    for label in candidates:
        nmse, bits = [], []
        for activations, _ in devices.values():
            if label.startswith("mu-law"):
                _, mu, radius = label.split()
                decoded, bits_per_value = mu_law_2bit(activations, float(mu), radius)
            else:
                batch = make_codec(label).encode(activations)
                decoded, bits_per_value = make_codec(label).decode(batch), batch.bits_per_value
            axes = (0, *range(2, activations.ndim))
            error = ((decoded - activations) ** 2).mean(axis=axes)
            nmse.append(float((error / activations.var(axis=axes)).mean()))
            bits.append(bits_per_value)
        rows.append(
            {"candidate": label, "nmse": float(np.mean(nmse)), "bits": float(np.mean(bits))}
        )
    return sorted(rows, key=lambda r: r["nmse"])


def mu_law_2bit(x: np.ndarray, mu: float, radius: str) -> tuple[np.ndarray, float]:
    """Per-channel mu-law quantization of ``x (N, C, ...)`` to 4 levels; decoded values and
    bits per value after zstd (the 2 floats per channel of side information not counted).

    Each channel is centred on its median and scaled by its largest offset (``"max"``) or the
    99.9th percentile of its offsets (``"p99.9"``, beyond which values saturate); ``u`` in
    ``[-1, 1]`` is companded to ``sign(u) log(1 + mu |u|) / log(1 + mu)`` and quantized to the
    midpoints of 4 equal cells.
    """
    axes = (0, *range(2, x.ndim))
    centre = np.median(x, axis=axes, keepdims=True)
    offset = np.abs(x - centre)
    if radius == "max":
        scale = offset.max(axis=axes, keepdims=True)
    else:
        scale = np.percentile(offset, 99.9, axis=axes, keepdims=True)
    u = np.clip((x - centre) / scale, -1, 1)
    t = np.sign(u) * np.log1p(mu * np.abs(u)) / np.log1p(mu)
    codes = np.minimum((t + 1) * 2, 3).astype(np.uint8).reshape(len(x), -1)
    t = ((2 * codes.astype(np.float64) + 1) / 4 - 1).reshape(x.shape)
    decoded = centre + scale * np.sign(t) * np.expm1(np.abs(t) * np.log1p(mu)) / mu
    packed = codes[:, 0::4] << 6 | codes[:, 1::4] << 4 | codes[:, 2::4] << 2 | codes[:, 3::4]
    frame = zstandard.ZstdCompressor(level=3).compress(packed.tobytes())
    return decoded.astype(np.float32), 8 * len(frame) / x.size


def setting(threads: int) -> dict[str, Any]:
    """What every run shares; a stored sweep with another setting is not resumed."""
    cfg = sweep_config(0).to_dict()
    for key in ("codec", "seed", "output-dir"):
        cfg.pop(key)
    return {"config": cfg, "num_clients": NUM_CLIENTS, "torch_threads": threads}


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--codecs", nargs="+", default=CODECS)
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--fresh", action="store_true", help="ignore stored results")
    parser.add_argument(
        "--report", action="store_true", help="only rewrite summary, markdown and plot"
    )
    # On two shared cores, two torch threads per process thrash: 9 samples/s against 80 with
    # one thread at a load average of 14 (measured while preparing this sweep).
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    path = args.out / "codec_sweep.json"
    doc: dict[str, Any] = {"setting": setting(args.threads), "runs": []}
    if path.exists() and not args.fresh:
        stored = json.loads(path.read_text())
        if stored["setting"] != doc["setting"] and not args.report:
            raise SystemExit(f"{path} holds another setting; rerun with --fresh to replace it")
        doc = stored
    if args.report and not doc["runs"]:
        raise SystemExit(f"--report: no runs stored in {path}")
    if not args.report:
        run_missing(doc, path, [make_codec(name).name for name in args.codecs], args.seeds)
        if "screen" not in doc:
            doc["screen"] = screen_cuts()
    doc["summary"] = summarize(doc["runs"])
    write_json(path, doc)
    _markdown(doc, args.out / "codec_sweep.md")
    _plot(doc, args.out / "codec_sweep.png")
    print(f"winner: {doc['summary']['winner']}")


def run_missing(doc: dict[str, Any], path: Path, names: list[str], seeds: list[int]) -> None:
    """Run every (codec, seed) that ``doc`` lacks, codec by codec, storing each at once."""
    done = {(r["codec"], r["seed"]) for r in doc["runs"]}
    todo = [(name, seed) for name in names for seed in seeds if (name, seed) not in done]
    test: tuple[torch.Tensor, torch.Tensor] | None = None
    devices: dict[int, tuple[SplitModel, Devices]] = {}
    for name, seed in todo:
        cfg = sweep_config(seed)
        if seed not in devices:
            split = build_split(cfg)
            devices[seed] = split, device_activations(cfg, split)
        split, acts = devices[seed]
        if test is None:  # the same test images for every seed: seed 0's subset
            images, labels = test_set(sweep_config(0))
            test = run_front(split.front, images, cfg.front_batch_size), labels
        row = run_codec(replace(cfg, codec=name), split, acts, test)
        doc["runs"].append(row)
        write_json(path, doc)
        print(
            f"{name:>20} seed {seed}: val {100 * row['val_accuracy']:.2f} % "
            f"(round {row['best_round']}), test {100 * row['test_accuracy_fp32']:.2f} % "
            f"fp32 / {100 * row['test_accuracy_coded']:.2f} % coded, "
            f"{row['bits_per_value']:.3f} bits/value, {row['seconds']:.0f} s, "
            f"load {row['loadavg_after'][0]:.1f}",
            flush=True,
        )


def screen_cuts() -> dict[str, Any]:
    """:func:`screen` on seed 0's uploads at each of ``SCREEN_CUTS``."""
    out: dict[str, Any] = {}
    for cut in SCREEN_CUTS:
        cfg = replace(sweep_config(0), cut=cut)
        split = build_split(cfg)
        out[cut] = {
            "activation_shape": list(split.activation_shape),
            "candidates": screen(device_activations(cfg, split)),
        }
    return out


def _mean_std(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for a single value), in percent."""
    pct = 100 * np.asarray(values, dtype=np.float64)
    return float(pct.mean()), float(pct.std(ddof=1)) if len(pct) > 1 else 0.0


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Per codec: mean ± std over seeds, the paired gap to fp32, and the winner."""
    by_codec: dict[str, dict[int, dict[str, Any]]] = {}
    for run in runs:
        by_codec.setdefault(run["codec"], {})[run["seed"]] = run
    reference = by_codec.get("fp32", {})
    rows = []
    for name, seeds in by_codec.items():
        seed_runs = [seeds[s] for s in sorted(seeds)]
        paired = [s for s in sorted(seeds) if s in reference]
        gaps = [seeds[s]["val_accuracy"] - reference[s]["val_accuracy"] for s in paired]
        gap = _mean_std(gaps) if gaps else (math.nan, math.nan)
        row: dict[str, Any] = {
            "codec": name,
            "seeds": sorted(seeds),
            "bits_per_value": float(np.mean([r["bits_per_value"] for r in seed_runs])),
            "bits_per_value_without_zstd": seed_runs[0]["bits_per_value_without_zstd"],
            "bytes_per_sample": float(np.mean([r["bytes_per_sample"] for r in seed_runs])),
            "val_vs_fp32_points": gap,
            "within": bool(gaps) and gap[0] >= -WITHIN_POINTS,
        }
        for key in ("val_accuracy", "test_accuracy_fp32", "test_accuracy_coded"):
            row[key] = _mean_std([r[key] for r in seed_runs])
        rows.append(row)
    rows.sort(key=lambda r: -r["bits_per_value"])
    within = [r for r in rows if r["within"]]
    winner = min(within, key=lambda r: r["bits_per_value"])["codec"] if within else None
    return {"codecs": rows, "within_points": WITHIN_POINTS, "winner": winner}


def _markdown(doc: dict[str, Any], path: Path) -> None:
    summary, runs = doc["summary"], doc["runs"]
    cfg = doc["setting"]["config"]
    loads = [r["loadavg_after"][0] for r in runs]
    lines = [
        f"{NUM_CLIENTS} devices x {cfg['samples-per-client']} samples ({cfg['dataset']}, "
        f"{cfg['partitioning']}), front {cfg['model']} cut {cfg['cut']} ({cfg['weights']}), "
        f"{cfg['num-server-rounds']} rounds, {cfg['test-samples']} test images; server: "
        f"refresh {cfg['refresh']}, replay {cfg['replay']}, {cfg['trainer']} trainer, lr "
        f"{cfg['learning-rate']:g} ({cfg['lr-schedule']}), batch {cfg['batch-size']}, hold-out "
        f"{cfg['validation-fraction']:.0%}, keep {cfg['keep']} (the defaults when it ran); "
        f"{len(runs)} runs, {sum(r['seconds'] for r in runs) / 60:.0f} min, "
        f"{doc['setting']['torch_threads']} torch thread(s), load average "
        f"{min(loads):.1f}-{max(loads):.1f} on 2 shared cores.",
        "",
        "Sorted by bits per value. The decision metric is the validation accuracy of the kept back "
        "(hold-out of the uploads, decoded with the codec); test accuracy is reported only. "
        "Mean ± sample std over seeds; the gap to fp32 is paired by seed.",
        "",
        "| codec | bits/value (as sent) | bits/value without zstd | bytes/sample | seeds | "
        "val acc (%) | vs fp32 val (pp) | test acc, fp32 test acts (%) | "
        "test acc, coded test acts (%) | within 1 pp |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in summary["codecs"]:
        gap = r["val_vs_fp32_points"]
        lines.append(
            f"| {r['codec']} | {r['bits_per_value']:.3f} | "
            f"{r['bits_per_value_without_zstd']:.3f} | {r['bytes_per_sample']:.1f} | "
            f"{len(r['seeds'])} | {_pm(r['val_accuracy'])} | {gap[0]:+.2f} ± {gap[1]:.2f} | "
            f"{_pm(r['test_accuracy_fp32'])} | {_pm(r['test_accuracy_coded'])} | "
            f"{'yes' if r['within'] else 'no'} |"
        )
    lines += ["", f"Winner (fewest bits/value within 1 pp of fp32 validation): {summary['winner']}"]
    cuts = doc.get("screen", {})
    if not cuts:
        path.write_text("\n".join(lines) + "\n")
        return
    shapes = [f"{cut} ({'x'.join(map(str, c['activation_shape']))})" for cut, c in cuts.items()]
    lines += [
        "",
        "Distortion screen of 2-bit candidates on seed 0's uploads at three cuts: normalised "
        "MSE per channel (bits per value after zstd), sorted by the sweep's cut "
        f"({cfg['cut']}):",
        "",
        "| candidate | " + " | ".join(shapes) + " |",
        "|---|" + "---:|" * len(cuts),
    ]
    nmse = {cut: {r["candidate"]: r for r in c["candidates"]} for cut, c in cuts.items()}
    for row in cuts[cfg["cut"]]["candidates"]:
        cells = [nmse[cut][row["candidate"]] for cut in cuts]
        lines.append(
            f"| {row['candidate']} | "
            + " | ".join(f"{r['nmse']:.4f} ({r['bits']:.2f})" for r in cells)
            + " |"
        )
    path.write_text("\n".join(lines) + "\n")


def _pm(pair: list[float] | tuple[float, float]) -> str:
    return f"{pair[0]:.2f} ± {pair[1]:.2f}"


def _plot(doc: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = doc["summary"]["codecs"]
    fig, ax = plt.subplots(figsize=(8, 4.8))
    for key, label, marker in (
        ("val_accuracy", "validation (decision)", "o"),
        ("test_accuracy_coded", "test, coded test activations", "s"),
        ("test_accuracy_fp32", "test, fp32 test activations", "^"),
    ):
        bits = [r["bits_per_value"] for r in rows]
        mean = [r[key][0] for r in rows]
        std = [r[key][1] for r in rows]
        fill = "full" if key == "val_accuracy" else "none"
        ax.errorbar(bits, mean, yerr=std, fmt=marker, fillstyle=fill, capsize=3, label=label)
    for r in rows:
        ax.annotate(r["codec"], (r["bits_per_value"], r["val_accuracy"][0]), fontsize=7)
    fp32 = next((r for r in rows if r["codec"] == "fp32"), None)
    if fp32 is not None:
        line = fp32["val_accuracy"][0] - WITHIN_POINTS
        ax.axhline(line, color="tab:red", ls="--", lw=1, label="fp32 validation - 1 pp")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("bits per value as sent (zstd included), log scale")
    ax.set_ylabel("accuracy (%), mean ± std over seeds")
    ax.set_title("EcoFed accuracy against activation codec size")
    ax.legend(fontsize=8, loc="lower right")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    main()
