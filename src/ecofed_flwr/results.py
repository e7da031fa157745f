"""Results of a run: the JSON file and the accuracy plots."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

RESULTS_FILE = "results.json"
PLOT_FILE = "accuracy.png"
MODEL_FILE = "model.pt"  # the kept classifier (see ecofed_flwr.classifier)


def _finite(value: Any) -> Any:
    # JSON has no NaN: a round without training reports null.
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def summarize(
    config: dict[str, Any], rounds: Sequence[dict[str, Any]], extra: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The results document: config, per-round entries and totals.

    ``final_accuracy`` is the last round's test accuracy unless ``extra`` names the kept
    round's (``best_round`` and its ``final_accuracy``).
    """
    final = rounds[-1] if rounds else {}
    doc = {
        "config": config,
        "rounds": list(rounds),
        "final_accuracy": final.get("accuracy"),
        "total_bytes_up": sum(int(r["bytes_up"]) for r in rounds),
        "total_bytes_down": sum(int(r["bytes_down"]) for r in rounds),
        "total_bytes_up_activations": sum(int(r["bytes_up_activations"]) for r in rounds),
        "total_seconds": sum(float(r["seconds"]) for r in rounds),
    }
    doc.update(extra or {})
    finite: dict[str, Any] = _finite(doc)
    return finite


def write_json(path: str | Path, doc: dict[str, Any]) -> Path:
    """Write ``doc`` atomically (a reader never sees half a file)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(target.suffix + ".tmp")
    tmp.write_text(json.dumps(doc, indent=2) + "\n")
    os.replace(tmp, target)
    return target


def plot_accuracy(doc: dict[str, Any], path: str | Path, title: str = "") -> Path:
    """Accuracy against round and against cumulative bytes (up + down), side by side."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    for key, label, color in (
        ("val_accuracy", "validation (hold-out of the uploads)", "tab:orange"),
        ("accuracy", "test", "tab:blue"),
    ):
        xs, acc, cumulative, total = [], [], [], 0
        for r in doc["rounds"]:
            total += r["bytes_up"] + r["bytes_down"]
            if r.get(key) is not None:
                xs.append(r["round"])
                acc.append(100 * r[key])
                cumulative.append(total / 1e6)
        if xs:
            left.plot(xs, acc, marker="o", color=color, label=label)
            right.plot(cumulative, acc, marker="o", color=color, label=label)
    best = doc.get("best_round")
    if best:
        left.axvline(best, color="grey", ls=":", label=f"kept round {best}")
    left.set_xlabel("round")
    left.xaxis.set_major_locator(MaxNLocator(integer=True))
    left.set_ylabel("accuracy (%)")
    left.set_title("accuracy per round")
    left.legend(fontsize=8)
    right.set_xlabel("cumulative bytes up + down (MB)")
    right.set_ylabel("accuracy (%)")
    right.set_title("accuracy against communication")
    for ax in (left, right):
        ax.grid(alpha=0.3)
    fig.suptitle(title or "EcoFed")
    fig.tight_layout()
    target = Path(path)
    fig.savefig(target, dpi=110)
    plt.close(fig)
    return target
