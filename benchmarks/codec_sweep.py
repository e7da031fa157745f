"""codec-sweep: every activation codec on real activations of the default front.

For each codec: the measured bits per value of the clients' uploads, and the accuracy EcoFed
reaches when the server trains the back on the decoded activations (the same replay buffer and
trainer the strategy uses, in-process, same seed and schedule for every codec), against fp32
activations. Names the smallest bits per value within 1 percentage point of fp32.

    .venv/bin/python benchmarks/codec_sweep.py [--train-samples 3000] [--epochs 2]

Writes benchmarks/results/codec_sweep.json, codec_sweep.md and codec_sweep.png.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from ecofed_flwr.buffer import ReplayBuffer
from ecofed_flwr.codec import make_codec
from ecofed_flwr.config import EcoFedConfig
from ecofed_flwr.data import load_dataset, partition_indices, prepare_images
from ecofed_flwr.models import create_split
from ecofed_flwr.trainer import BackTrainer, evaluate_back, run_front

RESULTS = Path(__file__).parent / "results"
# Lossy schemes first; "+zstd" variants decode to the same values as their base (checked).
CODECS = [
    "fp32", "fp16", "paper", "u8", "u4", "u2", "u1",
    "u4-ch", "u2-ch", "u1-ch", "u2-ch-clip99.9",
    "u8+zstd", "u4+zstd", "u2+zstd", "u2-ch+zstd", "u1-ch+zstd",
]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--train-samples", type=int, default=3000)
    parser.add_argument("--test-samples", type=int, default=10000)
    parser.add_argument("--clients", type=int, default=10)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    cfg = EcoFedConfig()  # the default model, cut, weights, trainer settings of `make run`
    torch.manual_seed(cfg.seed)
    split = create_split(cfg.model, cfg.cut, cfg.weights, 10, cfg.input_size, cfg.seed)
    initial_back = {k: v.clone() for k, v in split.back.state_dict().items()}
    train = load_dataset(cfg.dataset, "train", num_samples=args.train_samples, seed=cfg.seed)
    test = load_dataset(cfg.dataset, "test", seed=cfg.seed)
    test = test.subset(np.arange(min(args.test_samples, len(test))))

    def prepare(images: np.ndarray) -> torch.Tensor:
        return prepare_images(images, split.input_size, split.in_chans, split.mean, split.std)

    started = time.perf_counter()
    train_acts = run_front(split.front, prepare(train.images)).numpy()
    test_acts = run_front(split.front, prepare(test.images))
    test_labels = torch.from_numpy(np.asarray(test.labels, dtype=np.int64))
    print(f"front activations {split.activation_shape}: {time.perf_counter() - started:.1f} s")
    parts = partition_indices(train.labels, args.clients, "iid", seed=cfg.seed)

    rows: list[dict[str, object]] = []
    decoded_of: dict[str, np.ndarray] = {}
    for name in CODECS:
        codec = make_codec(name)
        buffer = ReplayBuffer(codec)
        nbytes = values = 0
        encode_s = 0.0
        for client, idx in enumerate(parts):
            t = time.perf_counter()
            batch = codec.encode(train_acts[idx])
            encode_s += time.perf_counter() - t
            nbytes, values = nbytes + batch.nbytes, values + batch.num_values
            buffer.put(str(client), batch, train.labels[idx], round=1)
        decoded = np.concatenate(
            [codec.decode(buffer.get(str(c)).batch) for c in range(len(parts))]
        )
        base = name.split("+")[0]
        reused = "+" in name and base in decoded_of
        if reused and np.array_equal(decoded, decoded_of[base]):
            # A lossless stage: identical decoded values, so identical training and accuracy.
            accuracy, loss, train_s = next(
                (r["accuracy"], r["loss"], r["train_seconds"]) for r in rows if r["codec"] == base
            )
        else:
            split.back.load_state_dict(initial_back)
            trainer = BackTrainer(split.back, cfg.trainer_config())
            t = time.perf_counter()
            for epoch in range(1, args.epochs + 1):
                trainer.train_round(buffer, buffer.clients(), epoch)
            train_s = time.perf_counter() - t
            loss, accuracy = evaluate_back(trainer.back, test_acts, test_labels)
        decoded_of[name] = decoded
        error = float(np.abs(decoded - np.concatenate([train_acts[i] for i in parts])).max())
        row = {
            "codec": name,
            "bits_per_value": 8 * nbytes / values,
            "bytes_per_sample": nbytes / len(train.labels),
            "accuracy": float(accuracy),  # type: ignore[arg-type]
            "loss": float(loss),  # type: ignore[arg-type]
            "max_abs_error": error,
            "encode_seconds": encode_s,
            "train_seconds": float(train_s),  # type: ignore[arg-type]
            "accuracy_from": base if reused else name,
        }
        rows.append(row)
        print(
            f"{name:>16}  {row['bits_per_value']:7.3f} bits/value  "
            f"{row['bytes_per_sample']:8.1f} B/sample  accuracy {100 * row['accuracy']:.2f}%  "
            f"max error {error:.4f}",
            flush=True,
        )
    fp32 = next(r for r in rows if r["codec"] == "fp32")["accuracy"]
    within = [r for r in rows if fp32 - r["accuracy"] <= 0.01]  # type: ignore[operator]
    best = min(within, key=lambda r: r["bits_per_value"])  # type: ignore[arg-type,return-value]
    doc = {
        "setting": {
            "model": cfg.model, "cut": cfg.cut, "weights": cfg.weights,
            "activation_shape": list(split.activation_shape), "dataset": cfg.dataset,
            "train_samples": len(train.labels), "test_samples": len(test.labels),
            "clients": args.clients, "epochs": args.epochs, "trainer": cfg.trainer,
            "batch_size": cfg.batch_size, "learning_rate": cfg.learning_rate,
            "raw_input_bytes_per_sample": int(np.prod(train.images.shape[1:])),
        },
        "codecs": rows,
        "fp32_accuracy": fp32,
        "best_within_1pp": best["codec"],
        "best_bits_per_value": best["bits_per_value"],
        "wall_seconds": time.perf_counter() - started,
    }  # fmt: skip
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "codec_sweep.json").write_text(json.dumps(doc, indent=2) + "\n")
    _markdown(doc, args.out / "codec_sweep.md")
    _plot(doc, args.out / "codec_sweep.png")
    print(f"smallest bits/value within 1 pp of fp32 ({100 * fp32:.2f}%): {best['codec']} "
          f"at {best['bits_per_value']:.3f} bits/value")  # fmt: skip
    print(args.out / "codec_sweep.json")


def _markdown(doc: dict, path: Path) -> None:
    lines = [
        "| codec | bits/value | bytes/sample | accuracy (%) | vs fp32 (pp) | max abs error |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in doc["codecs"]:
        lines.append(
            f"| {r['codec']} | {r['bits_per_value']:.3f} | {r['bytes_per_sample']:.1f} | "
            f"{100 * r['accuracy']:.2f} | {100 * (r['accuracy'] - doc['fp32_accuracy']):+.2f} | "
            f"{r['max_abs_error']:.4f} |"
        )
    path.write_text("\n".join(lines) + "\n")


def _plot(doc: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.5))
    for r in doc["codecs"]:
        ax.scatter(r["bits_per_value"], 100 * r["accuracy"], color="tab:blue")
        ax.annotate(r["codec"], (r["bits_per_value"], 100 * r["accuracy"]), fontsize=7)
    ax.axhline(100 * doc["fp32_accuracy"] - 1, color="tab:red", ls="--", label="fp32 - 1 pp")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("bits per value (log scale)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title("EcoFed accuracy against activation codec size")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    main()
