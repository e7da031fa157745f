"""The report of ``compare.py``: tables, goals and plots from the runs stored so far.

Writes ``compare.json`` (every figure of the tables), ``compare.md`` and ``compare.png``
beside the run folder. Works on a partial benchmark: what is missing is named as missing.
Times are re-priced from each run's stored per-client facts (thread CPU time of device and
server compute, bytes and messages each way), so the time model's table needs no rerun.
"""

from __future__ import annotations

import json
import math
import statistics
from pathlib import Path
from typing import Any

from compare import (
    MAIN,
    PARTITIONS,
    PROTOCOLS,
    TUNED,
    choice,
    convergence,
    plan_state,
    tuning_runs,
)

from ecofed_flwr.baselines import TimeModel
from ecofed_flwr.ledger import BandwidthModel

REFERENCES = ("central", "central-frozen")
DEVICE_FACTORS = (5.0, 15.0, 30.0)
UPLINKS_MBPS = (1.0, 10.0, 100.0)
DOWNLINK_PER_UPLINK = 5.0  # asymmetric access links: 1/5, 10/50, 100/500 Mbit/s
LATENCY_S = 0.05
HEADLINE = (15.0, 10.0)  # device factor, uplink Mbit/s of the goals
#: Two-sided 95 % Student t quantiles by degrees of freedom.
T95 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 8: 2.306, 10: 2.228}


def load_runs(out: Path) -> list[dict[str, Any]]:
    """Every stored run."""
    return [json.loads(p.read_text()) for p in sorted((out / "runs").glob("*.json"))]


def _mean_std(values: list[float]) -> tuple[float | None, float | None]:
    if not values:
        return None, None
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def time_model(factor: float, uplink: float) -> TimeModel:
    """The time model of one cell of the table."""
    link = BandwidthModel(uplink, DOWNLINK_PER_UPLINK * uplink, LATENCY_S)
    return TimeModel(link, device_slowdown=factor)


def cumulative_seconds(doc: dict[str, Any], model: TimeModel) -> list[float]:
    """Estimated time at the end of every round of a stored run under ``model``."""
    total, out = 0.0, []
    for r in doc["rounds"]:
        total += model.estimate_round(
            r["client_facts"],
            r.get("nonblocking_server_seconds", r["server_seconds"]),
        )["estimated_seconds"]
        out.append(total)
    return out


def reach(doc: dict[str, Any], target: float | None) -> int | None:
    """Index of the first round whose validation accuracy reaches ``target``."""
    if target is None:
        return None
    for i, r in enumerate(doc["rounds"]):
        if (r.get("val_accuracy") or 0.0) >= target:
            return i
    return None


def to_target(
    docs: list[dict[str, Any]], target: float | None, model: TimeModel
) -> dict[int, tuple[int, float, int]]:
    """Per seed that reaches ``target``: (bytes, estimated seconds, rounds) until then."""
    out = {}
    for d in docs:
        i = reach(d, target)
        if i is not None:
            out[d["config"]["seed"]] = (
                d["rounds"][i]["cumulative_bytes"],
                cumulative_seconds(d, model)[i],
                i + 1,
            )
    return out


def ratio(base: dict[int, tuple], other: dict[int, tuple], index: int) -> dict[str, Any] | None:
    """``base``'s figure over ``other``'s (means over the seeds both reached the target)."""
    seeds = sorted(set(base) & set(other))
    if not seeds:
        return None
    a = statistics.fmean(base[s][index] for s in seeds)
    b = statistics.fmean(other[s][index] for s in seeds)
    return {"ratio": a / b if b else None, "seeds": seeds}


def _paired(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Test accuracy of ``a`` minus ``b``, seed by seed, with a 95 % t interval (pp)."""
    by_seed = {d["config"]["seed"]: d["selected_accuracy"] for d in b}
    diffs = {
        d["config"]["seed"]: 100 * (d["selected_accuracy"] - by_seed[d["config"]["seed"]])
        for d in a
        if d["config"]["seed"] in by_seed
    }
    if not diffs:
        return None
    values = [diffs[s] for s in sorted(diffs)]
    mean, std = _mean_std(values)
    half = None
    if len(values) > 1 and std is not None:
        half = T95.get(len(values) - 1, 1.96) * std / math.sqrt(len(values))
    return {
        "per_seed_pp": {str(s): diffs[s] for s in sorted(diffs)},
        "mean_pp": mean,
        "std_pp": std,
        "ci95_pp": None if half is None or mean is None else [mean - half, mean + half],
    }


def summarize_runs(out: Path) -> dict[str, Any]:
    """Tuning choices, convergence, targets, finals, paired differences, times and goals."""
    scale = json.loads((out / "scale.json").read_text())
    runs = load_runs(out)
    targets = (
        json.loads((out / "targets.json").read_text()) if (out / "targets.json").exists() else {}
    )
    states = plan_state(out, scale, list(PROTOCOLS))
    summary: dict[str, Any] = {
        "scale": scale,
        "runs_stored": len(runs),
        "plan": {
            state: sum(1 for _, s in states if s == state)
            for state in ("done", "failed", "running", "pending", "waiting")
        },
        "failed_runs": sorted(spec.run_id for spec, s in states if s == "failed"),
        "costs": _costs(runs),
        "targets": targets,
        "host_reference": _maybe_json(out / "host_reference.json"),
        "time_model": {
            "device_factors": DEVICE_FACTORS,
            "uplinks_mbps": UPLINKS_MBPS,
            "downlink_per_uplink": DOWNLINK_PER_UPLINK,
            "latency_s_per_message": LATENCY_S,
            "headline": {"device_factor": HEADLINE[0], "uplink_mbps": HEADLINE[1]},
            "formula": next((d["time_model"]["formula"] for d in runs), None),
            "gpu_server": "absent: no GPU was measured for this back (none was lent)",
        },
        "partitions": {},
    }
    for part in PARTITIONS:
        summary["partitions"][part] = _partition(out, scale, runs, part, targets.get(part))
    summary["goals"] = _goals(summary["partitions"])
    summary["lq2_decision"] = _lq2_decision(summary["partitions"])
    return summary


def _maybe_json(path: Path) -> Any:
    return json.loads(path.read_text()) if path.exists() else None


def _costs(runs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Measured cost per protocol: wall and CPU seconds per run and per round, host, load."""
    out: dict[str, dict[str, Any]] = {}
    for protocol in PROTOCOLS:
        docs = [d for d in runs if d["protocol"] == protocol]
        if not docs:
            continue
        rounds = sum(len(d["rounds"]) for d in docs)
        out[protocol] = {
            "runs": len(docs),
            "wall_seconds": sum(d["harness_seconds"] for d in docs),
            "cpu_seconds": sum(d["harness_cpu_seconds"] for d in docs),
            "wall_seconds_per_round": sum(d["harness_seconds"] for d in docs) / rounds,
            "host_gflops": statistics.fmean(
                (d["host_before"]["gemm_gflops"] + d["host_after"]["gemm_gflops"]) / 2 for d in docs
            ),
            "load_1min": statistics.fmean(
                (d["host_before"]["loadavg"][0] + d["host_after"]["loadavg"][0]) / 2 for d in docs
            ),
        }
    return out


def _partition(
    out: Path,
    scale: dict[str, Any],
    runs: list[dict[str, Any]],
    part: str,
    target_entry: dict[str, Any] | None,
) -> dict[str, Any]:
    target = None if target_entry is None else target_entry.get("target_val_accuracy")
    tuning: dict[str, Any] = {}
    for protocol in TUNED:
        points = []
        for spec in tuning_runs(scale, part, protocol):
            doc = next((d for d in runs if d["run_id"] == spec.run_id), None)
            points.append(
                {
                    "learning-rate": spec.learning_rate,
                    "local-epochs": spec.local_epochs,
                    "val_accuracy": None if doc is None else doc["selected_val_accuracy"],
                }
            )
        pick = choice(out, scale, part, protocol)
        tuning[protocol] = {
            "points": points,
            "chosen": None
            if pick is None
            else {"learning-rate": pick.learning_rate, "local-epochs": pick.local_epochs},
        }
    verdicts = {p: convergence(out, scale, part, p) for p in ("fl", "ecofed-best")}
    finals = {
        p: [
            d
            for d in runs
            if d["partition"] == part and d["phase"] == "final" and d["protocol"] == p
        ]
        for p in PROTOCOLS
    }
    rows: dict[str, Any] = {}
    for protocol, docs in finals.items():
        if docs:
            rows[protocol] = _row(docs, target)
    headline = time_model(*HEADLINE)
    reached = {p: to_target(docs, target, headline) for p, docs in finals.items() if docs}
    for base in ("fl", "dpfl"):
        if base not in rows:
            continue
        for protocol, row in rows.items():
            if protocol in REFERENCES:  # no devices, no bytes: no ratio to speak of
                continue
            for key, index in (("bytes", 0), ("seconds", 1)):
                r = ratio(reached[base], reached[protocol], index)
                row[f"{key}_ratio_{base}"] = None if r is None else r["ratio"]
                row[f"{key}_ratio_{base}_seeds"] = None if r is None else r["seeds"]
    paired = {}
    for name in ("ecofed-best", "ecofed-best-lq2", "ecofed-paper"):
        if finals.get(name) and finals.get("fl"):
            paired[f"{name} - fl"] = _paired(finals[name], finals["fl"])
    if finals.get("ecofed-best-lq2") and finals.get("ecofed-best"):
        paired["ecofed-best-lq2 - ecofed-best"] = _paired(
            finals["ecofed-best-lq2"], finals["ecofed-best"]
        )
    return {
        "target": target_entry,
        "tuning": tuning,
        "convergence": verdicts,
        "protocols": rows,
        "paired_test_differences": paired,
        "time_table": _time_table(finals, target),
    }


def _row(docs: list[dict[str, Any]], target: float | None) -> dict[str, Any]:
    test, test_std = _mean_std([d["selected_accuracy"] for d in docs])
    val = _mean_std([d["selected_val_accuracy"] for d in docs])[0]
    totals = [d["totals"] for d in docs]
    headline = time_model(*HEADLINE)
    reached = to_target(docs, target, headline)
    row: dict[str, Any] = {
        "seeds": sorted(d["config"]["seed"] for d in docs),
        "learning_rate": docs[0]["config"]["learning-rate"],
        "local_epochs": docs[0]["config"]["local-epochs"],
        "batch_size": docs[0]["config"]["batch-size"],
        "rounds": len(docs[0]["rounds"]),
        "codec": docs[0]["config"]["codec"] if docs[0]["protocol"].startswith("ecofed") else None,
        "test_accuracy_mean": test,
        "test_accuracy_std": test_std,
        "val_accuracy_mean": val,
        "selected_rounds": [d["selected_round"] for d in docs],
        "total_mb": statistics.fmean(t["bytes"] / 1e6 for t in totals),
        "mb_per_client_round": statistics.fmean(
            t["mean_bytes_per_client_round"] / 1e6 for t in totals
        ),
        "device_cpu_seconds": statistics.fmean(t["device_seconds"] for t in totals),
        "server_cpu_seconds": statistics.fmean(t["server_seconds"] for t in totals),
        "estimated_seconds": statistics.fmean(cumulative_seconds(d, headline)[-1] for d in docs),
        "reached_target": f"{len(reached)}/{len(docs)}",
        "reached_seeds": sorted(reached),
    }
    if reached:  # means over the seeds that reached it (how many: reached_target)
        row["rounds_to_target"] = statistics.fmean(r[2] for r in reached.values())
        row["bytes_to_target"] = statistics.fmean(r[0] for r in reached.values())
        row["seconds_to_target"] = statistics.fmean(r[1] for r in reached.values())
    return row


def _time_table(
    finals: dict[str, list[dict[str, Any]]], target: float | None
) -> list[dict[str, Any]]:
    """Estimated time to target per device factor and uplink: the mean over the seeds that
    reached it, and the ratios of fl and dpfl to ecofed-best over the seeds both reached."""
    table = []
    for factor in DEVICE_FACTORS:
        for uplink in UPLINKS_MBPS:
            model = time_model(factor, uplink)
            cell: dict[str, Any] = {"device_factor": factor, "uplink_mbps": uplink}
            times = {}
            for protocol in ("fl", "dpfl", "ecofed-best", "ecofed-best-lq2", "ecofed-paper"):
                times[protocol] = to_target(finals.get(protocol) or [], target, model)
                values = [v[1] for v in times[protocol].values()]
                cell[protocol] = statistics.fmean(values) if values else None
                cell[f"{protocol}_seeds"] = sorted(times[protocol])
            for base in ("fl", "dpfl"):
                r = ratio(times[base], times["ecofed-best"], 1)
                cell[f"ratio_{base}_to_ecofed_best"] = None if r is None else r["ratio"]
                cell[f"ratio_{base}_seeds"] = None if r is None else r["seeds"]
            table.append(cell)
    return table


def _goals(partitions: dict[str, Any]) -> dict[str, Any]:
    goals: dict[str, Any] = {}
    for part, data in partitions.items():
        rows = data["protocols"]
        best, fl = rows.get("ecofed-best"), rows.get("fl")
        if not best or not fl:
            continue
        diff = data["paired_test_differences"].get("ecofed-best - fl") or {}
        mean = diff.get("mean_pp")
        need = -1.0 if part == "iid" else 0.0
        headline = next(
            (c for c in data["time_table"] if (c["device_factor"], c["uplink_mbps"]) == HEADLINE),
            {},
        )
        goals[part] = {
            "accuracy_rule": "ecofed-best - fl >= -1 pp (IID) / >= 0 pp (Dirichlet 0.1), "
            "mean of the paired test differences",
            "ecofed_best_minus_fl_pp": mean,
            "accuracy_met": mean is not None and mean >= need,
            "bytes_ratio_fl": best.get("bytes_ratio_fl"),
            "bytes_1000x_fl_met": (best.get("bytes_ratio_fl") or 0) >= 1000,
            "bytes_ratio_dpfl": best.get("bytes_ratio_dpfl"),
            "bytes_100x_dpfl_met": (best.get("bytes_ratio_dpfl") or 0) >= 100,
            "time_ratio_fl": headline.get("ratio_fl_to_ecofed_best"),
            "time_20x_fl_met": (headline.get("ratio_fl_to_ecofed_best") or 0) >= 20,
        }
    return goals


def _lq2_decision(partitions: dict[str, Any]) -> dict[str, Any]:
    """lq2-ch+zstd becomes the default if within 1 pp of u4 on validation, both partitions."""
    gaps = {}
    for part, data in partitions.items():
        rows = data["protocols"]
        if "ecofed-best" in rows and "ecofed-best-lq2" in rows:
            gaps[part] = 100 * (
                rows["ecofed-best-lq2"]["val_accuracy_mean"]
                - rows["ecofed-best"]["val_accuracy_mean"]
            )
    complete = len(gaps) == len(partitions)
    return {
        "val_gap_pp_lq2_minus_u4": gaps,
        "rule": "switch when lq2 - u4 >= -1 pp (mean validation accuracy of the finals) on both "
        "partitions",
        "switch": complete and all(g >= -1.0 for g in gaps.values()),
        "complete": complete,
    }


# ---------------------------------------------------------------- markdown


def _pct(v: float | None, std: float | None = None) -> str:
    if v is None:
        return "-"
    return f"{100 * v:.2f} ± {100 * std:.2f}" if std is not None else f"{100 * v:.2f}"


def _num(v: float | None, fmt: str) -> str:
    return "-" if v is None else format(v, fmt)


def markdown(summary: dict[str, Any]) -> str:
    """The report as markdown."""
    plan = summary["plan"]
    lines = [
        f"Plan: {plan['done']} runs stored, {plan['failed']} failed, {plan['running']} running, "
        f"{plan['pending']} pending, {plan['waiting']} not yet known.",
    ]
    if summary["failed_runs"]:
        lines.append(f"Failed runs (not data points): {', '.join(summary['failed_runs'])}.")
    lines += [
        "",
        "### Measured cost (one torch thread per run, two runs at a time)",
        "",
        "| protocol | runs | wall s | CPU s | wall s per round | host GFLOP/s | load (1 min) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for protocol, c in summary["costs"].items():
        lines.append(
            f"| {protocol} | {c['runs']} | {c['wall_seconds']:.0f} | {c['cpu_seconds']:.0f} | "
            f"{c['wall_seconds_per_round']:.1f} | {c['host_gflops']:.0f} | {c['load_1min']:.1f} |"
        )
    for part, data in summary["partitions"].items():
        lines += [
            "",
            f"## {part} ({PARTITIONS[part]})",
            "",
            "### Tuning (validation accuracy, %, tuning seed)",
            "",
        ]
        for protocol, t in data["tuning"].items():
            cells = ", ".join(
                f"lr {p['learning-rate']:g}/e{p['local-epochs']}: {_pct(p['val_accuracy'])}"
                for p in t["points"]
            )
            pick = t["chosen"]
            chosen = (
                "pending"
                if pick is None
                else f"lr {pick['learning-rate']:g}, e{pick['local-epochs']}"
            )
            lines.append(f"- {protocol}: {cells} -> **{chosen}**")
        lines += ["", "### Convergence (best validation accuracy, tuning seed)", ""]
        for protocol, v in data["convergence"].items():
            if v is None:
                lines.append(f"- {protocol}: pending")
                continue
            lines.append(
                f"- {protocol}: {v['rounds']} rounds {_pct(v['best_val_accuracy'])} %, "
                f"{v['rounds_doubled']} rounds {_pct(v['best_val_accuracy_doubled'])} % "
                f"(gain {v['gain_pp']:+.2f} pp): "
                f"{'converged' if v['converged'] else 'NOT converged'}; finals use "
                f"{v['final_rounds']} rounds"
            )
        target = data["target"] or {}
        lines += [
            "",
            f"Target (validation accuracy): {_pct(target.get('target_val_accuracy'))} %"
            f" ({target.get('rule', 'pending')}; from {target.get('from_best_val_accuracy')}, "
            f"fixed {target.get('fixed_at', '-')}).",
            "",
            "### Finals (test accuracy once, at the round chosen on validation)",
            "",
            "| protocol | lr, epochs, batch, rounds | seeds | test acc. (%) | val acc. (%) | "
            "MB total | MB per client-round | reached | MB to target | est. s to target | "
            "bytes fl / x | bytes dpfl / x | time fl / x |",
            "|---|---|---|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|",
        ]
        for protocol in PROTOCOLS:
            r = data["protocols"].get(protocol)
            if r is None:
                continue
            codec = f", {r['codec']}" if r["codec"] else ""
            lines.append(
                f"| {protocol}{codec} | {r['learning_rate']:g}, {r['local_epochs']}, "
                f"{r['batch_size']}, {r['rounds']} | {','.join(map(str, r['seeds']))} | "
                f"{_pct(r['test_accuracy_mean'], r['test_accuracy_std'])} | "
                f"{_pct(r['val_accuracy_mean'])} | {r['total_mb']:.3f} | "
                f"{r['mb_per_client_round']:.4f} | {r['reached_target']} "
                f"({','.join(map(str, r['reached_seeds'])) or '-'}) | "
                f"{_num(_div(r.get('bytes_to_target'), 1e6), '.3f')} | "
                f"{_num(r.get('seconds_to_target'), '.0f')} | "
                f"{_ratio(r.get('bytes_ratio_fl'))} | {_ratio(r.get('bytes_ratio_dpfl'))} | "
                f"{_ratio(r.get('seconds_ratio_fl'))} |"
            )
        notes = [
            f"{protocol}: seeds {r['bytes_ratio_fl_seeds']}"
            for protocol, r in data["protocols"].items()
            if protocol != "fl" and r.get("bytes_ratio_fl_seeds")
        ]
        if notes:
            lines += [
                "",
                "To-target columns are means over the seeds that reached the target; ratios "
                "to fl use the seeds both reached (" + "; ".join(notes) + ").",
            ]
        lines += ["", "### Paired test differences (pp, same seed and partition)", ""]
        for name, p in data["paired_test_differences"].items():
            if p is None:
                continue
            ci = p["ci95_pp"]
            ci_text = "-" if ci is None else f"[{ci[0]:+.2f}, {ci[1]:+.2f}]"
            seeds = ", ".join(f"s{s}: {v:+.2f}" for s, v in p["per_seed_pp"].items())
            lines.append(
                f"- {name}: mean {_num(p['mean_pp'], '+.2f')} pp, 95 % CI {ci_text} ({seeds})"
            )
        lines += [
            "",
            "### Estimated time to target (s) by device factor and uplink (downlink 5x uplink, "
            f"{LATENCY_S * 1000:.0f} ms per message)",
            "",
            "| device factor | uplink Mbit/s | fl | dpfl | ecofed-best | ecofed-best-lq2 | "
            "ecofed-paper | fl / ecofed-best | dpfl / ecofed-best |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for c in data["time_table"]:
            lines.append(
                f"| {c['device_factor']:g} | {c['uplink_mbps']:g} | {_num(c['fl'], '.0f')} | "
                f"{_num(c['dpfl'], '.0f')} | {_num(c['ecofed-best'], '.0f')} | "
                f"{_num(c['ecofed-best-lq2'], '.0f')} | {_num(c['ecofed-paper'], '.0f')} | "
                f"{_num(c['ratio_fl_to_ecofed_best'], '.1f')} | "
                f"{_num(c['ratio_dpfl_to_ecofed_best'], '.1f')} |"
            )
    if summary["goals"]:
        lines += ["", "## Goals (ecofed-best against fl and dpfl)", ""]
        for part, g in summary["goals"].items():
            lines.append(
                f"- {part}: accuracy ecofed-best - fl "
                f"{_num(g['ecofed_best_minus_fl_pp'], '+.2f')} pp "
                f"({'met' if g['accuracy_met'] else 'NOT met'}); bytes to target "
                f"{_num(g['bytes_ratio_fl'], ',.0f')}x fewer than fl (>= 1,000x: "
                f"{'met' if g['bytes_1000x_fl_met'] else 'NOT met'}), "
                f"{_num(g['bytes_ratio_dpfl'], ',.0f')}x fewer than dpfl (>= 100x: "
                f"{'met' if g['bytes_100x_dpfl_met'] else 'NOT met'}); time to target "
                f"{_num(g['time_ratio_fl'], '.1f')}x less than fl at device factor 15, 10 Mbit/s "
                f"(>= 20x: {'met' if g['time_20x_fl_met'] else 'NOT met'})"
            )
    d = summary["lq2_decision"]
    lines += [
        "",
        f"lq2-ch+zstd against u4 (validation, pp): {d['val_gap_pp_lq2_minus_u4']}; "
        f"rule: {d['rule']}; "
        f"switch: {d['switch'] if d['complete'] else 'pending'}.",
        "",
        "GPU-server column: absent (no GPU was lent to measure this back on).",
    ]
    return "\n".join(lines) + "\n"


def _ratio(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.0f}" if value >= 100 else f"{value:.2g}" if value < 1 else f"{value:.1f}"


def _div(value: float | None, by: float) -> float | None:
    return None if value is None else value / by


# ---------------------------------------------------------------- plot


def plot(out: Path, summary: dict[str, Any], path: Path) -> None:
    """Mean validation accuracy of the finals against cumulative bytes and estimated time."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = [d for d in load_runs(out) if d["phase"] == "final"]
    parts = [p for p in PARTITIONS if any(d["partition"] == p for d in runs)]
    if not parts:
        return
    fig, axes = plt.subplots(len(parts), 2, figsize=(14, 4.8 * len(parts)), squeeze=False)
    headline = time_model(*HEADLINE)
    for row, part in enumerate(parts):
        target = (summary["partitions"][part]["target"] or {}).get("target_val_accuracy")
        for protocol in PROTOCOLS:
            docs = [d for d in runs if d["partition"] == part and d["protocol"] == protocol]
            if not docs:
                continue
            n = min(len(d["rounds"]) for d in docs)
            acc = [
                statistics.fmean(100 * (d["rounds"][i]["val_accuracy"] or 0) for d in docs)
                for i in range(n)
            ]
            if protocol in REFERENCES:
                for ax in axes[row]:
                    ax.axhline(max(acc), ls="--", lw=0.8, color="grey")
                    ax.annotate(
                        f"{protocol} (best)",
                        (0.01, max(acc)),
                        xycoords=("axes fraction", "data"),
                        fontsize=7,
                        color="grey",
                    )
                continue
            xb = [
                statistics.fmean(max(d["rounds"][i]["cumulative_bytes"], 1) for d in docs) / 1e6
                for i in range(n)
            ]
            xt = [
                statistics.fmean(cumulative_seconds(d, headline)[i] for d in docs) / 60
                for i in range(n)
            ]
            style = "-" if protocol in MAIN else ":"
            axes[row][0].plot(xb, acc, style, marker=".", label=protocol)
            axes[row][1].plot(xt, acc, style, marker=".", label=protocol)
        labels = (
            "cumulative bytes up + down (MB, log scale)",
            "estimated time, device factor 15, 10/50 Mbit/s (min, log scale)",
        )
        for col, label in enumerate(labels):
            ax = axes[row][col]
            ax.set_xscale("log")
            if target is not None:
                ax.axhline(100 * target, color="black", ls=":", lw=1)
            ax.set_xlabel(label)
            ax.set_ylabel("validation accuracy (%), mean over seeds")
            ax.set_title(f"{part}: finals")
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def write_report(out: Path) -> dict[str, Any]:
    """Write ``compare.json``, ``compare.md`` and ``compare.png`` beside ``out``."""
    summary = summarize_runs(out)
    (out.parent / f"{out.name}.json").write_text(json.dumps(summary, indent=1) + "\n")
    text = markdown(summary)
    (out.parent / f"{out.name}.md").write_text(text)
    plot(out, summary, out.parent / f"{out.name}.png")
    print(text)
    return summary
