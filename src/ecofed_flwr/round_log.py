"""What a run says in its log: a line per round, the closing table, the refusals, in one place.

Both Flower strategies and the App log through these functions into Flower's logger
(``flwr``), so the two APIs print the same lines. No Flower import: the logger is looked up
by name.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ecofed_flwr.server import EcoFedServer, RoundReport

__all__ = ["fmt", "log_round", "log_run_summary", "refusal_summary", "short_reason", "strip_ansi"]

LOG = logging.getLogger("flwr")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def fmt(value: float | None) -> str:
    """A metric with 4 decimals, or ``n/a``."""
    return "n/a" if value is None else f"{value:.4f}"


def strip_ansi(text: str) -> str:
    """``text`` without terminal colour codes (simulation sends coloured Ray tracebacks)."""
    return _ANSI.sub("", text)


def short_reason(reason: str | None, limit: int = 300) -> str:
    """A device's error in one line: its last non-empty line (simulation sends whole Ray
    tracebacks, with colour codes), at most ``limit`` characters."""
    lines = [line.strip() for line in strip_ansi(reason or "").splitlines() if line.strip()]
    text = lines[-1] if lines else "(no reason given)"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def refusal_summary(reports: Iterable[RoundReport], excluded: Iterable[str] = ()) -> str:
    """Every distinct refusal reason of a run, once, with how often and for which clients.

    One line however many devices failed the same way (the first device error is logged in
    full when it arrives).
    """
    by_reason: dict[str, list[str]] = {}
    for report in reports:
        for client, reason in report.refused.items():
            by_reason.setdefault(short_reason(reason), []).append(f"{client}@r{report.round}")
    for reason in excluded:
        by_reason.setdefault("excluded: " + short_reason(reason), []).append("-")
    if not by_reason:
        return "no device was asked or answered"
    parts = []
    for reason, where in sorted(by_reason.items(), key=lambda kv: -len(kv[1])):
        shown = ", ".join(where[:5]) + (", ..." if len(where) > 5 else "")
        parts.append(f"{len(where)}x {reason} ({shown})")
    return "; ".join(parts)


def log_round(report: RoundReport, num_rounds: int) -> None:
    """The round's line: validation and test accuracy, bytes, learning rate and seconds."""
    if report.round == 0:
        LOG.info(
            "[ROUND 0/%d] untrained back: test accuracy %s",
            num_rounds,
            fmt(report.metrics.get("accuracy")),
        )
        return
    LOG.info(
        "[ROUND %d/%d] %s val %s | test %s | up %s B (activations %s B) | down %s B | "
        "buffer %s B | lr %.4g | %.1f s (devices %.1f, train %.1f, evaluate %.1f)",
        report.round,
        num_rounds,
        "refresh" if report.refresh else "replay ",
        fmt(report.val_accuracy),
        fmt(report.metrics.get("accuracy")),
        f"{report.bytes_up:,}",
        f"{report.bytes_up_activations:,}",
        f"{report.bytes_down:,}",
        f"{report.buffer_bytes:,}",
        report.learning_rate,
        report.seconds,
        report.exchange_seconds,
        report.server_train_seconds,
        report.evaluate_seconds,
    )


def log_run_summary(server: EcoFedServer, seconds: float) -> None:
    """The closing summary, like Flower's strategies print: one line per round."""
    LOG.info("")
    LOG.info("EcoFed run finished %d round(s) in %.2f s", len(server.reports) - 1, seconds)
    LOG.info("\tround | refresh | val acc | test acc |   bytes up | train samples")
    for r in server.reports:
        LOG.info(
            "\t%5d | %7s | %7s | %8s | %10s | %13d%s",
            r.round,
            "yes" if r.refresh else "no",
            fmt(r.val_accuracy),
            fmt(r.metrics.get("accuracy")),
            f"{r.bytes_up:,}",
            r.train_samples,
            "  <- kept" if r.round == server.best_round and r.round else "",
        )
    best = server.best_report
    LOG.info(
        "\tkept: the back of round %d (val accuracy %s, test accuracy %s); %s B up in all",
        server.best_round,
        fmt(best.val_accuracy if best else None),
        fmt(best.metrics.get("accuracy") if best else None),
        f"{server.ledger.total('up'):,}",
    )
    LOG.info("")
