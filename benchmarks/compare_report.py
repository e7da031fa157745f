"""The report of ``compare.py``: tables, goals and plots from the runs stored so far.

Writes ``<out>/../compare.json`` (every figure of the tables), ``compare.md`` and
``compare.png`` next to the run folder. Works on a partial benchmark: what is missing is
named as missing.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

PROTOCOL_ORDER = (
    "fl",
    "fl-back",
    "dpfl",
    "lgl",
    "ecofed-paper",
    "ecofed-best",
    "central",
    "central-frozen",
)
REFERENCES = ("central", "central-frozen")
ECOFED = ("ecofed-paper", "ecofed-best")
PLATEAU_PP = 0.3


def _mean_std(values: list[float]) -> tuple[float | None, float | None]:
    if not values:
        return None, None
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def _reach(doc: dict[str, Any], target: float) -> dict[str, Any] | None:
    """The first round whose test accuracy reaches ``target``: its cumulative figures."""
    for r in doc["rounds"]:
        if (r["accuracy"] or 0.0) >= target:
            return {
                "round": r["round"],
                "bytes": r["cumulative_bytes"],
                "seconds_cpu_server": r["cumulative_estimated_seconds"],
                "seconds_gpu_server": r.get("cumulative_estimated_seconds_gpu"),
            }
    return None


def load_runs(out: Path) -> list[dict[str, Any]]:
    """Every stored run (retries pending included, marked by ``retry``)."""
    runs = []
    for path in sorted((out / "runs").glob("*.json")):
        runs.append(json.loads(path.read_text()))
    return runs


def summarize_runs(out: Path) -> dict[str, Any]:
    """Tuning choices, per-partition figures, targets, ratios and goals."""
    scale = json.loads((out / "scale.json").read_text())
    runs = load_runs(out)
    tuning: dict[str, list[dict[str, Any]]] = {}
    for doc in runs:
        if doc["phase"] == "tune":
            tuning.setdefault(doc["protocol"], []).append(
                {
                    "learning-rate": doc["config"]["learning-rate"],
                    "batch-size": doc["config"]["batch-size"],
                    "val_accuracy": doc["selected_val_accuracy"],
                    "test_accuracy": doc["selected_accuracy"],
                    "host_flagged": doc["host_flagged"],
                }
            )
    grid = len(scale["learning-rates"]) * len(scale["batch-sizes"])
    chosen = {}
    for protocol, points in tuning.items():
        if len(points) == grid:
            best = max(
                points, key=lambda p: -1.0 if p["val_accuracy"] is None else p["val_accuracy"]
            )
            chosen[protocol] = {k: best[k] for k in ("learning-rate", "batch-size")}
    # Final runs: the chosen values on every seed and partition (the tuning run of the first
    # seed, IID, is that seed's final run).
    finals: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for doc in runs:
        protocol = doc["protocol"]
        pick = chosen.get(protocol)
        if pick is None or doc.get("retry"):
            continue
        if (doc["config"]["learning-rate"], doc["config"]["batch-size"]) != (
            pick["learning-rate"],
            pick["batch-size"],
        ):
            continue
        finals.setdefault(doc["partition"], {}).setdefault(protocol, []).append(doc)
    partitions = {}
    for part, by_protocol in finals.items():
        partitions[part] = _partition_summary(by_protocol)
    return {
        "scale": scale,
        "costs": _costs(runs),
        "runs_stored": len(runs),
        "runs_planned": _planned(scale),
        "tuning": tuning,
        "chosen": chosen,
        "partitions": partitions,
        "goals": _goals(partitions),
        "time_model": next((d["time_model"] for d in runs), None),
        "host_reference": json.loads((out / "host_reference.json").read_text())
        if (out / "host_reference.json").exists()
        else None,
    }


def _costs(runs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Measured cost per protocol: seconds per run and per round, host speed and load."""
    out: dict[str, dict[str, Any]] = {}
    for protocol in PROTOCOL_ORDER:
        docs = [d for d in runs if d["protocol"] == protocol]
        if not docs:
            continue
        out[protocol] = {
            "runs": len(docs),
            "seconds_per_run": statistics.fmean(d["harness_seconds"] for d in docs),
            "cpu_seconds_per_run": statistics.fmean(
                d.get("harness_cpu_seconds", float("nan")) for d in docs
            ),
            "cpu_share": statistics.fmean(
                d.get("harness_cpu_seconds", float("nan")) / d["harness_seconds"] for d in docs
            ),
            "seconds_per_round": statistics.fmean(
                d["harness_seconds"] / len(d["rounds"]) for d in docs
            ),
            "host_gflops": statistics.fmean(
                (d["host_before"]["gemm_gflops"] + d["host_after"]["gemm_gflops"]) / 2 for d in docs
            ),
            "load_1min": statistics.fmean(
                (d["host_before"]["loadavg"][0] + d["host_after"]["loadavg"][0]) / 2 for d in docs
            ),
            "flagged": sum(1 for d in docs if d["host_flagged"]),
        }
    return out


def _planned(scale: dict[str, Any]) -> int:
    grid = len(scale["learning-rates"]) * len(scale["batch-sizes"])
    # Per protocol: the grid, plus every (seed, partition) but the first seed's IID run.
    return len(PROTOCOL_ORDER) * (grid + 2 * len(scale["seeds"]) - 1)


def _partition_summary(by_protocol: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    rows: dict[str, dict[str, Any]] = {}
    for protocol, docs in by_protocol.items():
        acc = [d["selected_accuracy"] for d in docs if d["selected_accuracy"] is not None]
        final = [d["final_accuracy"] for d in docs if d["final_accuracy"] is not None]
        gains = [d["validation_gain_last_fifth"] for d in docs]
        mean, std = _mean_std(acc)
        t = [d["totals"] for d in docs]
        rows[protocol] = {
            "seeds": sorted(d["config"]["seed"] for d in docs),
            "accuracy_mean": mean,
            "accuracy_std": std,
            "final_accuracy_mean": _mean_std(final)[0],
            "best_accuracy_mean": _mean_std([d["best_accuracy"] for d in docs])[0],
            "best_accuracy_min": min(d["best_accuracy"] for d in docs),
            "validation_gain_last_fifth_pp": [None if g is None else 100 * g for g in gains],
            "plateau": all(g is not None and 100 * g < PLATEAU_PP for g in gains),
            "mb_per_client_round": statistics.fmean(
                x["mean_bytes_per_client_round"] / 1e6 for x in t
            ),
            "total_mb": statistics.fmean(x["bytes"] / 1e6 for x in t),
            "estimated_seconds": statistics.fmean(x["estimated_seconds"] for x in t),
            "estimated_seconds_gpu": statistics.fmean(x.get("estimated_seconds_gpu", 0) for x in t),
            "device_seconds": statistics.fmean(x["device_seconds"] for x in t),
            "server_seconds": statistics.fmean(x["server_seconds"] for x in t),
            "harness_seconds": statistics.fmean(d["harness_seconds"] for d in docs),
            "host_flagged": [d["run_id"] for d in docs if d["host_flagged"]],
            "learning_rate": docs[0]["config"]["learning-rate"],
            "batch_size": docs[0]["config"]["batch-size"],
        }
    target, rule = _target(rows)
    if target is not None:
        for protocol, docs in by_protocol.items():
            if protocol in REFERENCES:
                continue
            reached = [_reach(d, target) for d in docs]
            hits = [r for r in reached if r is not None]
            row = rows[protocol]
            row["reached_target"] = f"{len(hits)}/{len(docs)}"
            for key in ("bytes", "seconds_cpu_server", "seconds_gpu_server"):
                values = [r[key] for r in hits if r[key] is not None]
                row[f"{key}_to_target"] = (
                    statistics.fmean(values) if values and len(hits) == len(docs) else None
                )
        for base in ("fl", "dpfl"):
            if base not in rows:
                continue
            for row in rows.values():
                for key in ("bytes", "seconds_cpu_server", "seconds_gpu_server"):
                    a, b = rows[base].get(f"{key}_to_target"), row.get(f"{key}_to_target")
                    row[f"{key}_ratio_{base}"] = a / b if a and b else None
    return {"target_accuracy": target, "target_rule": rule, "protocols": rows}


def _target(rows: dict[str, dict[str, Any]]) -> tuple[float | None, str]:
    fl = rows.get("fl", {}).get("accuracy_mean")
    if fl is None:
        return None, "fl has no finished run yet"
    target = 0.97 * fl
    reached = [rows[p]["best_accuracy_min"] for p in ECOFED if p in rows]
    if reached and min(reached) < target:
        return min(reached), "the highest test accuracy every run of both EcoFed variants reaches"
    return target, "97 % of fl's converged accuracy"


def _goals(partitions: dict[str, Any]) -> dict[str, Any]:
    goals: dict[str, Any] = {}
    for part, summary in partitions.items():
        rows = summary["protocols"]
        best, fl = rows.get("ecofed-best"), rows.get("fl")
        if not best or not fl:
            continue
        gap = 100 * (fl["accuracy_mean"] - best["accuracy_mean"])
        bytes_ratio = best.get("bytes_ratio_fl")
        time_ratio = best.get("seconds_gpu_server_ratio_fl")
        goals[part] = {
            "accuracy_gap_pp_fl_minus_ecofed_best": gap,
            "within_1pp": gap <= 1.0,
            "bytes_ratio_fl": bytes_ratio,
            "bytes_100x": bytes_ratio is not None and bytes_ratio >= 100,
            "gpu_time_ratio_fl": time_ratio,
            "gpu_time_20x": time_ratio is not None and time_ratio >= 20,
        }
    return goals


def _pct(mean: float | None, std: float | None = None) -> str:
    if mean is None:
        return "-"
    return f"{100 * mean:.2f} ± {100 * std:.2f}" if std is not None else f"{100 * mean:.2f}"


def _num(value: float | None, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def markdown(summary: dict[str, Any]) -> str:
    """The report as markdown tables."""
    lines = [
        f"Runs stored: {summary['runs_stored']} of {summary['runs_planned']} planned "
        "(plus reruns of flagged runs).",
        "",
        "### Measured cost per run (one thread; CPU share = CPU seconds / wall seconds, "
        "below 1 when other jobs took the core; host speed and load averaged over the probes "
        "before and after each run)",
        "",
        "| protocol | runs | s per run | CPU s per run | CPU share | s per round | "
        "host GFLOP/s | load (1 min) | flagged |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for protocol, cost in summary["costs"].items():
        lines.append(
            f"| {protocol} | {cost['runs']} | {cost['seconds_per_run']:.0f} | "
            f"{cost['cpu_seconds_per_run']:.0f} | {cost['cpu_share']:.2f} | "
            f"{cost['seconds_per_round']:.1f} | "
            f"{cost['host_gflops']:.0f} | "
            f"{cost['load_1min']:.1f} | {cost['flagged']} |"
        )
    lines += [
        "",
        "### Tuning (IID, first seed; validation accuracy (%) of the val-chosen round)",
        "",
    ]
    scale = summary["scale"]
    grid = [(lr, b) for lr in scale["learning-rates"] for b in scale["batch-sizes"]]
    lines.append(
        "| protocol | " + " | ".join(f"lr {lr:g}, b {b}" for lr, b in grid) + " | chosen |"
    )
    lines.append("|---|" + "---:|" * len(grid) + "---|")
    for protocol in PROTOCOL_ORDER:
        points = {
            (p["learning-rate"], p["batch-size"]): p for p in summary["tuning"].get(protocol, [])
        }
        if not points:
            continue
        cells = []
        for key in grid:
            point = points.get(key)
            if point is None:
                cells.append("pending")
            else:
                flag = " (flagged)" if point["host_flagged"] else ""
                cells.append(_pct(point["val_accuracy"]) + flag)
        pick = summary["chosen"].get(protocol)
        chosen = f"lr {pick['learning-rate']:g}, b {pick['batch-size']}" if pick else "pending"
        lines.append(f"| {protocol} | " + " | ".join(cells) + f" | {chosen} |")
    for part, data in summary["partitions"].items():
        rows = data["protocols"]
        target = data["target_accuracy"]
        lines += [
            "",
            f"### {part}",
            "",
            f"Target accuracy: {_pct(target)} % ({data['target_rule']}).",
            "",
            "| protocol | lr, batch | seeds | accuracy (%) | final (%) | plateau (gain last "
            "fifth, pp) | MB per client-round | MB to target | est. time to target, CPU server "
            "(s) | est. time to target, GPU server (s) | bytes fl / x | bytes dpfl / x | time "
            "fl / x (GPU server) | time dpfl / x (GPU server) |",
            "|---|---|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for protocol in PROTOCOL_ORDER:
            row = rows.get(protocol)
            if row is None:
                continue
            gains = ", ".join(_num(g, ".2f") for g in row["validation_gain_last_fifth_pp"])
            plateau = f"{'yes' if row['plateau'] else 'no'} ({gains})"
            lines.append(
                f"| {protocol} | {row['learning_rate']:g}, {row['batch_size']} | "
                f"{','.join(map(str, row['seeds']))} | "
                f"{_pct(row['accuracy_mean'], row['accuracy_std'])} | "
                f"{_pct(row['final_accuracy_mean'])} | {plateau} | "
                f"{_num(row['mb_per_client_round'], '.4f')} | "
                f"{_num(_div(row.get('bytes_to_target'), 1e6), '.3f')} | "
                f"{_num(row.get('seconds_cpu_server_to_target'), '.0f')} | "
                f"{_num(row.get('seconds_gpu_server_to_target'), '.0f')} | "
                f"{_num(row.get('bytes_ratio_fl'), '.1f')} | "
                f"{_num(row.get('bytes_ratio_dpfl'), '.1f')} | "
                f"{_num(row.get('seconds_gpu_server_ratio_fl'), '.2f')} | "
                f"{_num(row.get('seconds_gpu_server_ratio_dpfl'), '.2f')} |"
            )
    if summary["goals"]:
        lines += ["", "### Goals (ecofed-best against fl)", ""]
        for part, goal in summary["goals"].items():
            lines.append(
                f"- {part}: accuracy gap {goal['accuracy_gap_pp_fl_minus_ecofed_best']:+.2f} pp "
                f"(within 1 pp: {'met' if goal['within_1pp'] else 'NOT met'}); bytes to target "
                f"{_num(goal['bytes_ratio_fl'], '.0f')}x fewer (>= 100x: "
                f"{'met' if goal['bytes_100x'] else 'NOT met'}); estimated time to target, GPU "
                f"server, {_num(goal['gpu_time_ratio_fl'], '.1f')}x faster (>= 20x: "
                f"{'met' if goal['gpu_time_20x'] else 'NOT met'})"
            )
    return "\n".join(lines) + "\n"


def _div(value: float | None, by: float) -> float | None:
    return None if value is None else value / by


def plot(out: Path, summary: dict[str, Any], path: Path) -> None:
    """Mean test accuracy against cumulative bytes and estimated time, per partition."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = [d for d in load_runs(out) if not d.get("retry")]
    parts = [p for p in ("iid", "non-iid") if p in summary["partitions"]]
    if not parts:
        return
    fig, axes = plt.subplots(len(parts), 3, figsize=(17, 4.6 * len(parts)), squeeze=False)
    columns = (
        ("cumulative_bytes", 1e6, "cumulative bytes up + down (MB, log scale)"),
        ("cumulative_estimated_seconds", 60, "estimated time, server on this CPU (min, log)"),
        ("cumulative_estimated_seconds_gpu", 60, "estimated time, GPU server (min, log)"),
    )
    for row, part in enumerate(parts):
        rows = summary["partitions"][part]["protocols"]
        for protocol in PROTOCOL_ORDER:
            if protocol not in rows or protocol in REFERENCES:
                continue
            pick = (rows[protocol]["learning_rate"], rows[protocol]["batch_size"])
            docs = [
                d
                for d in runs
                if d["partition"] == part
                and d["protocol"] == protocol
                and (d["config"]["learning-rate"], d["config"]["batch-size"]) == pick
            ]
            if not docs:
                continue
            n = min(len(d["rounds"]) for d in docs)
            acc = [
                statistics.fmean(100 * (d["rounds"][i]["accuracy"] or 0) for d in docs)
                for i in range(n)
            ]
            for col, (key, unit, _) in enumerate(columns):
                xs = [
                    statistics.fmean(max(d["rounds"][i].get(key) or 0, 1) for d in docs) / unit
                    for i in range(n)
                ]
                axes[row][col].plot(xs, acc, marker=".", label=protocol)
        for ref in REFERENCES:
            if ref in rows and rows[ref]["accuracy_mean"] is not None:
                for ax in axes[row]:
                    ax.axhline(100 * rows[ref]["accuracy_mean"], ls="--", lw=0.8, color="grey")
                    ax.annotate(
                        ref,
                        (0, 100 * rows[ref]["accuracy_mean"]),
                        xycoords=("axes fraction", "data"),
                        fontsize=7,
                        color="grey",
                    )
        target = summary["partitions"][part]["target_accuracy"]
        for col, (_, _, label) in enumerate(columns):
            ax = axes[row][col]
            ax.set_xscale("log")  # protocols differ by orders of magnitude on every axis
            if target is not None:
                ax.axhline(100 * target, color="black", ls=":", lw=1)
            ax.set_xlabel(label)
            ax.set_ylabel("test accuracy (%)")
            ax.set_title(f"{part}: mean over seeds")
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def write_report(out: Path) -> dict[str, Any]:
    """Write ``compare.json``, ``compare.md`` and ``compare.png`` beside ``out``."""
    summary = summarize_runs(out)
    base = out.parent / out.name
    base.parent.mkdir(parents=True, exist_ok=True)
    (out.parent / f"{out.name}.json").write_text(json.dumps(summary, indent=1) + "\n")
    (out.parent / f"{out.name}.md").write_text(markdown(summary))
    plot(out, summary, out.parent / f"{out.name}.png")
    print(markdown(summary))
    return summary
