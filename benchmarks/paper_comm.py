"""paper-comm: bytes per client per round of each protocol in the paper's setting.

The paper's setting: VGG-11, CIFAR-10 shapes, 100 clients x 500 samples, 20 per round, 500 rounds.

VGG-11-BN (CIFAR variant) cut after its second conv block, 100 clients x 500 samples of
3x32x32, 20 clients per round, batch 10, one local epoch, P = 2, int8. Every figure is the
serialized size of the Flower messages each protocol's own code builds for one client
round (random inputs: fp32 and int8 payload sizes do not depend on values), scaled to a
500-round run. Checks FL / EcoFed (about 134x) and DPFL / EcoFed (about 16.3x).

    .venv/bin/python benchmarks/paper_comm.py

Writes benchmarks/results/paper_comm.json and paper_comm.md; takes about two minutes on two
CPU cores (the DPFL and local-loss rounds train VGG-11 for 50 steps each).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import torch

from ecofed_flwr.baselines import communication_report, protocol_config
from ecofed_flwr.codec import make_codec
from ecofed_flwr.config import EcoFedConfig
from ecofed_flwr.models import create_split

RESULTS = Path(__file__).parent / "results"
PROTOCOLS = ("fl", "dpfl", "lgl", "ecofed-paper", "ecofed-best")
# What each protocol moves in one client round (for the table).
MOVES = {
    "fl": "whole model down + up (fp32)",
    "dpfl": "per step: fp32 activations + labels up, fp32 gradient down; front down + up",
    "lgl": "per step: fp32 activations + labels up; front + aux. head down + up",
    "ecofed-paper": "refresh rounds: int8 activations + labels up; replay rounds: nothing",
    "ecofed-best": "once per client: packed activations + labels up; then nothing",
}
TARGETS = {"ratio_fl_to_ecofed_paper": 134.0, "ratio_dpfl_to_ecofed_paper": 16.3}
PAPER = {"ratio_fl_to_ecofed_paper": 133.0, "ratio_dpfl_to_ecofed_paper": 16.0}


def paper_setting() -> EcoFedConfig:
    """The paper's headline setting as run config (inputs are random: no data set needed)."""
    return EcoFedConfig.from_mapping(
        {
            "model": "vgg11_cifar",
            "cut": "block2",
            "weights": "random",
            "input-size": 32,
            "dataset": "synthetic",
            "num-server-rounds": 500,
            "fraction-train": 0.2,
            "batch-size": 10,
            "local-epochs": 1,
            "learning-rate": 0.01,
            "momentum": 0.9,
        }
    )


def activation_bytes_per_sample(cfg: EcoFedConfig, samples: int) -> dict[str, float]:
    """Payload bytes and bits per value of each EcoFed protocol's codec, per sample."""
    shape = create_split(cfg.model, cfg.cut, "random", 10, cfg.input_size).activation_shape
    values = 1
    for d in shape:
        values *= d
    out: dict[str, float] = {}
    for name in PROTOCOLS:
        if name.startswith("ecofed"):
            codec = make_codec(protocol_config(name, cfg).codec)
            nbytes = codec.encoded_nbytes(samples, shape) / samples
            out[name] = nbytes
            out[f"{name}_bits_per_value"] = nbytes * 8 / values
    return out


def assumptions(report: dict[str, Any]) -> list[str]:
    s = report["setting"]
    return [
        f"{s['num_clients']} clients x {s['samples_per_client']} samples, "
        f"{s['clients_per_round']} sampled per round, {s['rounds']} rounds; all clients hold "
        "the same number of samples, so one measured client round stands for every client.",
        "Bytes are the serialized Flower 1.42 messages (every object of the message tree: "
        "metadata with 63-bit run/node ids, record and array headers, 5 MB array chunks), "
        "request and reply; an object repeated inside a message is sent once, as Flower does.",
        "fl: Flower's FedAvg request (state dict incl. BatchNorm buffers + config) and the "
        "FL client's reply (state dict + metrics), fp32, every round a client is sampled.",
        "dpfl: 50 steps of (fp32 activations + uint8 labels up, fp32 gradient down), front "
        "weights down and up; one real round of SplitFed v1 training on random inputs.",
        "lgl: 50 uploads of fp32 activations + labels, front + auxiliary head (avg-pool + "
        "linear) down and up; one real round of local-loss training on random inputs.",
        "ecofed-paper: codec 'paper' (int8, one fp32 scale per 10 samples), refresh every:2: "
        "a sampled client uploads in rounds 1, 3, 5, ... (250 of 500), nothing in the others.",
        "ecofed-best: its preset codec, refresh 'once': each client uploads exactly once in "
        "the run; this assumes every client is sampled at least once in 500 rounds "
        "(probability 1 - 100 x 0.8^500, indistinguishable from 1).",
        "bytes_per_client_round = total bytes of the run / (rounds x clients per round).",
    ]


def raw_tensor_bytes(cfg: EcoFedConfig, samples: int) -> dict[str, float]:
    """Bytes per client round counting bare tensors only (as the paper's arithmetic does)."""
    split = create_split(cfg.model, cfg.cut, "random", 10, cfg.input_size)
    params = sum(p.numel() for p in split.full().parameters())
    front = sum(p.numel() for p in split.front.parameters())
    values = 1
    for d in split.activation_shape:
        values *= d
    return {
        "parameters": params,
        "front_parameters": front,
        "fl": 2 * 4 * params,
        "dpfl": 2 * 4 * values * samples + 2 * 4 * front,
        "ecofed-paper": values * samples / 2,
    }


def explanation(report: dict[str, Any], raw: dict[str, float]) -> str:
    fl = report["bytes_per_exchange"]["fl"]
    dp = report["bytes_per_exchange"]["dpfl"]
    ec = report["bytes_per_exchange"]["ecofed-paper"]
    raw_fl = raw["fl"] / raw["ecofed-paper"]
    raw_dp = raw["dpfl"] / raw["ecofed-paper"]
    return (
        "Counting bare tensors only (the paper's setting: "
        f"{raw['parameters'] / 1e6:.2f} M fp32 parameters "
        f"each way for FL, {raw['front_parameters']:,} front parameters and 500 x 8,192 fp32 "
        "activations and gradients for DPFL, 500 x 8,192 int8 codes every other round for "
        f"EcoFed) gives {raw_fl:.1f}x and {raw_dp:.2f}x. The measured Flower messages add "
        f"what really crosses the wire: FL's {fl['down'] / 1e6:.2f} MB each way include "
        "BatchNorm running statistics and about 0.5 KB of headers per array; an EcoFed "
        f"refresh upload is {ec['up'] / 1e6:.4f} MB (codes, 50 fp32 scales, 500 uint8 labels, "
        f"headers); DPFL's {dp['up'] / 1e6:.2f} MB up and {dp['down'] / 1e6:.2f} MB down "
        f"include labels every step and {dp['messages']} message envelopes. They move the "
        f"ratios by {report['ratio_fl_to_ecofed_paper'] / raw_fl - 1:+.2%} (FL) and "
        f"{report['ratio_dpfl_to_ecofed_paper'] / raw_dp - 1:+.2%} (DPFL). "
        "The paper's 133x and 16x (114x and 13.78x in its first version) "
        "are rounded figures from its own accounting, which it does not give byte for byte; "
        "the bare-tensor arithmetic of its setting gives 134x and 16.3x, which we "
        "reproduce. Ours are "
        f"{report['ratio_fl_to_ecofed_paper'] / 133 - 1:+.1%} and "
        f"{report['ratio_dpfl_to_ecofed_paper'] / 16 - 1:+.1%} from the paper's figures."
    )


def markdown(report: dict[str, Any], per_sample: dict[str, float]) -> str:
    rounds = report["setting"]["rounds"]
    lines = [
        "| protocol | what moves | up per exchange (MB) | down per exchange (MB) | "
        f"exchanges per client in {rounds} rounds | bytes per client per round (MB) | "
        f"total over {rounds} rounds (GB) | vs ecofed-paper |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    ref = report["bytes_per_client_round"]["ecofed-paper"]
    for name in PROTOCOLS:
        ex = report["bytes_per_exchange"][name]
        per_round = report["bytes_per_client_round"][name]
        lines.append(
            f"| {name} | {MOVES[name]} | {ex['up'] / 1e6:.3f} | {ex['down'] / 1e6:.3f} | "
            f"{report['exchanges_per_client'][name]:g} | {per_round / 1e6:.3f} | "
            f"{report['total_bytes'][name] / 1e9:.2f} | {per_round / ref:.2f}x |"
        )
    lines += [
        "",
        f"- FL / EcoFed (paper mode): **{report['ratio_fl_to_ecofed_paper']:.1f}x** "
        "(target 134 +- 5%; the paper reports 133x)",
        f"- DPFL / EcoFed (paper mode): **{report['ratio_dpfl_to_ecofed_paper']:.2f}x** "
        "(target 16.3 +- 5%; the paper reports 16x)",
        f"- Activation payload per sample: ecofed-paper {per_sample['ecofed-paper']:.1f} B "
        f"({per_sample['ecofed-paper_bits_per_value']:.3f} bits/value), ecofed-best "
        f"{per_sample['ecofed-best']:.1f} B ({per_sample['ecofed-best_bits_per_value']:.3f} "
        "bits/value); a raw 3x32x32 uint8 image is 3,072 B.",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--num-clients", type=int, default=100)
    parser.add_argument("--samples-per-client", type=int, default=500)
    parser.add_argument("--clients-per-round", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=500)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (shared CPUs)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    cfg = paper_setting()
    report = communication_report(
        cfg,
        PROTOCOLS,
        num_clients=args.num_clients,
        samples_per_client=args.samples_per_client,
        clients_per_round=args.clients_per_round,
        rounds=args.rounds,
    )
    per_sample = activation_bytes_per_sample(cfg, args.samples_per_client)
    raw = raw_tensor_bytes(cfg, args.samples_per_client)
    checks = {
        key: {
            "value": report[key],
            "target": target,
            "paper": PAPER[key],
            "within_5_percent": abs(report[key] / target - 1) <= 0.05,
        }
        for key, target in TARGETS.items()
    }
    doc = {
        "experiment": "paper-comm",
        **report,
        f"total_bytes_{args.rounds}_rounds": report["total_bytes"],
        "activation_bytes_per_sample": per_sample,
        "checks": checks,
        "assumptions": assumptions(report),
        "bare_tensor_bytes_per_client_round": raw,
        "explanation": explanation(report, raw),
        "seconds": time.perf_counter() - started,
    }
    table = markdown(report, per_sample)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "paper_comm.json").write_text(json.dumps(doc, indent=2) + "\n")
    notes = "\n".join(f"- {a}" for a in doc["assumptions"])
    (args.out / "paper_comm.md").write_text(
        f"# paper-comm\n\n{table}\n\n## Assumptions\n\n{notes}\n\n"
        f"## Why ours differs from the paper\n\n{doc['explanation']}\n"
    )
    plot(doc, args.out / "paper_comm.png")
    print(table)
    print(f"\nwrote {args.out / 'paper_comm.json'} in {doc['seconds']:.0f} s")
    if not all(c["within_5_percent"] for c in checks.values()):
        raise SystemExit("a ratio is more than 5% from its target: see checks in the JSON")


def plot(doc: dict[str, Any], path: Path) -> None:
    """Bytes per client per round of each protocol (log scale), with the ratio to paper mode."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    per_round = doc["bytes_per_client_round"]
    names = list(per_round)
    values = [per_round[n] / 1e6 for n in names]
    fig, ax = plt.subplots(figsize=(8, 4.2))
    bars = ax.bar(names, values, color="tab:blue")
    paper = per_round["ecofed-paper"]
    for bar, name in zip(bars, names, strict=True):
        ax.annotate(
            f"{per_round[name] / 1e6:,.3f} MB\n{per_round[name] / paper:.3g}x",
            (bar.get_x() + bar.get_width() / 2, bar.get_height()),
            ha="center", va="bottom", fontsize=8,
        )  # fmt: skip
    ax.set_yscale("log")
    ax.set_ylabel("bytes per client per round (MB, log scale)")
    ax.set_title("paper-comm: VGG-11 cut at block2, 500 samples per client, 20 of 100 per round")
    ax.set_ylim(top=max(values) * 20)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    main()
