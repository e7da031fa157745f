"""default-sweep: choose the defaults of `make run` on the validation hold-out.

Each candidate (cut, codec, rounds, learning rate) runs the whole EcoFed server, the same
:class:`ecofed_flwr.server.EcoFedServer` the Flower strategy drives, in process: the devices'
data are the app's own partitions (``ecofed_flwr.app.task.client_data``), each device runs
the frozen front and the codec exactly as the ClientApp does, and the server buffers, holds
out, trains and selects. Candidates are ranked by the validation accuracy of the kept back
(the hold-out cut from the uploads); the test accuracy is recorded beside it, for reporting
only. Each finished candidate is stored at once, so a rerun resumes.

    .venv/bin/python benchmarks/default_sweep.py [--seeds 0] [--fresh]

Writes benchmarks/results/default_sweep.json and default_sweep.md.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ecofed_flwr.app.task import build_split, client_data, num_classes_of, test_set
from ecofed_flwr.codec import make_codec
from ecofed_flwr.config import EcoFedConfig
from ecofed_flwr.models import run_front
from ecofed_flwr.server import EcoFedServer
from ecofed_flwr.trainer import evaluate_back

RESULTS = Path(__file__).parent / "results"
NUM_CLIENTS = 10

#: (cut, codec, rounds, learning rate, batch size); everything else is EcoFedConfig's default.
CANDIDATES: list[tuple[str, str, int, float, int]] = [
    ("stage3", "u4", 5, 0.05, 64),
    ("stage4", "u4", 5, 0.05, 64),
    ("stage3", "u4", 5, 0.1, 128),
    ("stage3", "u2", 5, 0.05, 64),
    ("stage2", "u2", 5, 0.05, 64),
    ("stage3", "u4", 8, 0.05, 64),
]


def run_candidate(cfg: EcoFedConfig) -> dict[str, Any]:
    """One EcoFed run of ``cfg`` in process; its per-round validation and test figures."""
    split = build_split(cfg)
    codec = make_codec(cfg.codec)
    images, labels = test_set(cfg)
    test_acts = run_front(split.front, images, cfg.front_batch_size)
    server = EcoFedServer(
        back=copy.deepcopy(split.back),
        fingerprint=split.fingerprint,
        activation_shape=split.activation_shape,
        num_classes=num_classes_of(cfg),
        num_rounds=cfg.num_server_rounds,
        evaluate_fn=lambda b: dict(
            zip(("loss", "accuracy"), evaluate_back(b, test_acts, labels), strict=True)
        ),
        **cfg.server_settings(),
    )
    bytes_per_sample: list[float] = []

    def upload(client: str) -> tuple[Any, np.ndarray, float]:
        data = client_data(cfg, int(client), NUM_CLIENTS)
        start = time.perf_counter()
        batch = codec.encode(run_front(split.front, data.images, cfg.front_batch_size))
        bytes_per_sample.append(batch.nbytes / batch.num_samples)
        return batch, np.asarray(data.labels), time.perf_counter() - start

    started = time.perf_counter()
    clients = [str(i) for i in range(NUM_CLIENTS)]
    for r in range(1, cfg.num_server_rounds + 1):
        report = server.run_round(r, clients, upload)
        print(
            f"  round {r:2d}: val {report.val_accuracy:.4f} test "
            f"{report.metrics.get('accuracy', float('nan')):.4f} "
            f"lr {report.learning_rate:.4f} {report.seconds:.1f} s",
            flush=True,
        )
    best = server.best_report
    assert best is not None
    return {
        "config": cfg.to_dict(),
        "val_accuracy": best.val_accuracy,
        "test_accuracy": best.metrics.get("accuracy"),
        "best_round": best.round,
        "activation_bytes_per_sample": float(np.mean(bytes_per_sample)),
        "val_by_round": [r.val_accuracy for r in server.reports],
        "test_by_round": [r.metrics.get("accuracy") for r in server.reports],
        "seconds": time.perf_counter() - started,
        "torch_threads": torch.get_num_threads(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--fresh", action="store_true", help="ignore stored results")
    parser.add_argument("--report", action="store_true", help="only rewrite the markdown")
    args = parser.parse_args()
    path = args.out / "default_sweep.json"
    doc: dict[str, Any] = {"runs": []}
    if path.exists() and not args.fresh:
        doc = json.loads(path.read_text())
    done = {(r["key"], r["seed"]) for r in doc["runs"]}
    base = EcoFedConfig()
    for cut, codec, rounds, lr, batch in [] if args.report else CANDIDATES:
        key = f"{cut}/{codec}/{rounds}r/lr{lr:g}" + (f"/b{batch}" if batch != 64 else "")
        for seed in args.seeds:
            if (key, seed) in done:
                continue
            print(f"{key} seed {seed}", flush=True)
            cfg = replace(
                base,
                cut=cut,
                codec=codec,
                num_server_rounds=rounds,
                learning_rate=lr,
                batch_size=batch,
                seed=seed,
            )
            load = os.getloadavg()[0]
            row = {"key": key, "seed": seed, "load_at_start": load, **run_candidate(cfg)}
            doc["runs"].append(row)
            args.out.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(doc, indent=2) + "\n")
            print(
                f"{key} seed {seed}: val {row['val_accuracy']:.4f} (round {row['best_round']}), "
                f"test {row['test_accuracy']:.4f}, {row['activation_bytes_per_sample']:.0f} "
                f"B/sample, {row['seconds']:.0f} s",
                flush=True,
            )
    _markdown(doc, args.out / "default_sweep.md")
    print(path)


def _markdown(doc: dict[str, Any], path: Path) -> None:
    by_key: dict[str, list[dict[str, Any]]] = {}
    for row in doc["runs"]:
        by_key.setdefault(row["key"], []).append(row)
    ranked = sorted(by_key.items(), key=lambda kv: -np.mean([r["val_accuracy"] for r in kv[1]]))
    lines = [
        "Ranked by validation accuracy (hold-out of the uploads); test accuracy reported only.",
        "",
        "| candidate (cut/codec/rounds/lr[/batch]) | seeds | val acc (%) | test acc (%) | "
        "bytes/sample | seconds |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for key, rows in ranked:
        val = [100 * r["val_accuracy"] for r in rows]
        test = [100 * r["test_accuracy"] for r in rows]
        lines.append(
            f"| {key} | {len(rows)} | {np.mean(val):.2f} | {np.mean(test):.2f} | "
            f"{np.mean([r['activation_bytes_per_sample'] for r in rows]):.0f} | "
            f"{np.mean([r['seconds'] for r in rows]):.0f} |"
        )
    path.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
