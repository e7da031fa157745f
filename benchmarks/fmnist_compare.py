"""fmnist-compare: the five protocols on Fashion-MNIST, IID and non-IID, in one harness.

Same model (the default front and cut), data, partition, seed, rounds and byte accounting for
`fl`, `dpfl`, `lgl`, `ecofed-paper` and `ecofed-best`. Reports accuracy per round, cumulative
bytes and estimated time, and for a stated target accuracy the rounds, bytes and estimated
time to reach it. The data budget is small so that all ten runs fit in 30 minutes on two CPU
cores: figures are for this budget, not converged accuracies.

    .venv/bin/python benchmarks/fmnist_compare.py [--samples-per-client 200] [--rounds 5]

Writes benchmarks/results/fmnist_compare.json, fmnist_compare.md and fmnist_compare.png.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from ecofed_flwr.baselines import Setting, TimeModel, results_table, run_protocols
from ecofed_flwr.config import EcoFedConfig
from ecofed_flwr.ledger import BandwidthModel

RESULTS = Path(__file__).parent / "results"
PROTOCOLS = ["fl", "dpfl", "lgl", "ecofed-paper", "ecofed-best"]
PARTITIONS = {"iid": "iid", "non-iid": "dirichlet:0.1"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--samples-per-client", type=int, default=200)
    parser.add_argument("--clients", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--test-samples", type=int, default=2000)
    parser.add_argument("--target", type=float, default=0.70)
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--work", type=Path, default=Path("outputs/fmnist-compare"))
    args = parser.parse_args()
    time_model = TimeModel(BandwidthModel(uplink_mbps=10, downlink_mbps=50, latency_s=0.05))
    started = time.perf_counter()
    doc: dict[str, Any] = {"partitions": {}, "target_accuracy": args.target}
    for label, partitioning in PARTITIONS.items():
        config = EcoFedConfig.from_mapping(
            {
                "partitioning": partitioning,
                "samples-per-client": args.samples_per_client,
                "test-samples": args.test_samples,
                "num-server-rounds": args.rounds,
                "fraction-train": 0.5,
                "output-dir": str((args.work / label).resolve()),
            }
        )
        setting = Setting(
            config=config,
            num_clients=args.clients,
            time_model=time_model,
            target_accuracy=args.target,
            server_threads=1,
            engine="loopback",
        )
        results = run_protocols(PROTOCOLS, setting)
        doc["partitions"][label] = {"partitioning": partitioning, "protocols": results}
        table = results_table(results)
        print(f"\n## {label} ({partitioning})\n\n{table}", flush=True)
    doc["wall_seconds"] = time.perf_counter() - started
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "fmnist_compare.json").write_text(json.dumps(_compact(doc), indent=2) + "\n")
    md = [f"Target accuracy {100 * args.target:.0f}%. {_assumptions(doc)}", ""]
    for label, part in doc["partitions"].items():
        md += [f"### {label} ({part['partitioning']})", "", results_table(part["protocols"]), ""]
    (args.out / "fmnist_compare.md").write_text("\n".join(md))
    _plot(doc, args.out / "fmnist_compare.png")
    print(f"wall {doc['wall_seconds']:.0f} s; {args.out / 'fmnist_compare.json'}")


def _compact(doc: dict[str, Any]) -> dict[str, Any]:
    # The per-message ledgers stay in each run's own folder; the summary keeps the rest.
    out = json.loads(json.dumps(doc))
    for part in out["partitions"].values():
        for result in part["protocols"].values():
            result.pop("ledger", None)
    return out


def _assumptions(doc: dict[str, Any]) -> str:
    first = next(iter(doc["partitions"].values()))["protocols"]
    model = next(iter(first.values())).get("time_model", {})
    return f"Time model: {json.dumps(model)}."


def _plot(doc: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    parts = list(doc["partitions"].items())
    fig, axes = plt.subplots(len(parts), 2, figsize=(12, 4.2 * len(parts)), squeeze=False)
    for row, (label, part) in enumerate(parts):
        for name, result in part["protocols"].items():
            rounds = result["rounds"]
            acc = [100 * (r["accuracy"] or 0) for r in rounds]
            cum_bytes = [max(r["cumulative_bytes"], 1) / 1e6 for r in rounds]
            cum_time = [r["cumulative_estimated_seconds"] / 60 for r in rounds]
            axes[row][0].plot(cum_bytes, acc, marker="o", label=name)
            axes[row][1].plot(cum_time, acc, marker="o", label=name)
        axes[row][0].set_xscale("log")
        axes[row][0].set_xlabel("cumulative bytes up + down (MB, log scale)")
        axes[row][1].set_xlabel("estimated time (minutes)")
        for ax in axes[row]:
            ax.set_ylabel("test accuracy (%)")
            ax.set_title(f"{label} ({part['partitioning']})")
            ax.axhline(100 * doc["target_accuracy"], color="grey", ls=":", lw=1)
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


if __name__ == "__main__":
    main()
