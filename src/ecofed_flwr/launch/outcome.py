"""A run's outcome (``flwr run`` exits 0 whatever happens), its summary, and what ``flwr run``
packages of the app folder."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ecofed_flwr.launch.errors import LaunchUsageError, RunFailedError
from ecofed_flwr.launch.logs import format_tails
from ecofed_flwr.results import RESULTS_FILE

__all__ = ["check_outcome", "keep_out_of_package", "summary_lines"]


def check_outcome(run_dir: Path, logs: Sequence[Path] = ()) -> dict[str, Any]:
    """The results of the run in ``run_dir``, if it completed.

    ``flwr run`` exits 0 whatever happens to the run, so the outcome is read from the
    results file the ServerApp writes: ``"status": "completed"`` only after the last round.

    Parameters
    ----------
    run_dir : Path
        The run's ``output-dir``.
    logs : Sequence[Path]
        Logs whose tails go into the error message.

    Returns
    -------
    dict[str, Any]
        The results document.

    Raises
    ------
    RunFailedError
        If ``results.json`` is missing, unreadable or not completed.
    """
    path = run_dir / RESULTS_FILE
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RunFailedError(
            f"the run wrote no {path} (it failed before its first round)" + format_tails(logs)
        ) from None
    except (OSError, json.JSONDecodeError) as err:
        raise RunFailedError(f"cannot read {path}: {err}" + format_tails(logs)) from err
    status = doc.get("status") if isinstance(doc, dict) else None
    if status != "completed":
        rounds = len(doc.get("rounds", [])) if isinstance(doc, dict) else 0
        failure = doc.get("failure") if isinstance(doc, dict) else None
        raise RunFailedError(
            f"the run did not complete: {path} has status {status!r} after {rounds} round(s)"
            + (f": {failure}" if failure else "")
            + format_tails(logs)
        )
    return dict(doc)


def summary_lines(doc: Mapping[str, Any], wall_seconds: float) -> list[str]:
    """A few human lines about a completed run."""
    accuracy = doc.get("final_accuracy")
    acc_text = f"{accuracy:.4f}" if isinstance(accuracy, int | float) else "n/a"
    server_s = doc.get("wall_seconds")
    server_text = f" (ServerApp {server_s:.1f} s)" if isinstance(server_s, int | float) else ""
    ray = doc.get("ray")
    ray_lines = []
    if isinstance(ray, Mapping):
        ray_lines.append(
            f"devices ran on Ray {ray.get('address') or '(local)'}: {ray.get('nodes')} node(s), "
            f"{ray.get('cpus', 0):g} CPUs, {ray.get('gpus', 0):g} GPUs"
        )
    return [
        f"EcoFed run completed: {len(doc.get('rounds', []))} round(s), final accuracy {acc_text}",
        f"bytes up {int(doc.get('total_bytes_up', 0)):,} "
        f"(activations {int(doc.get('total_bytes_up_activations', 0)):,}), "
        f"bytes down {int(doc.get('total_bytes_down', 0)):,}",
        *ray_lines,
        f"wall {wall_seconds:.1f} s{server_text}",
    ]


def keep_out_of_package(app_dir: Path, output_root: Path) -> bool:
    """Make ``flwr run`` leave ``output_root`` out of the app's package; True if it had to.

    ``flwr run`` packages the app folder less what its ``.gitignore`` excludes. An output
    root inside the app folder that the ``.gitignore`` does not exclude would carry every
    earlier run (logs, checkpoints, Flower's home, copies of the app) into the next run's
    package, until Flower refuses it (path depth or size). Such a root is added to the
    app's ``.gitignore``, and the user is told.
    """
    try:
        relative = output_root.resolve().relative_to(app_dir.resolve())
    except ValueError:
        return False  # outside the app folder: never packaged
    if relative == Path("."):
        raise LaunchUsageError(
            f"the output root {output_root} is the app folder itself: choose a folder inside "
            "it (e.g. outputs/) or outside it"
        )
    gitignore = app_dir / ".gitignore"
    text = gitignore.read_text(encoding="utf-8") if gitignore.is_file() else ""
    probe = f"{relative.as_posix()}/run/results.json"
    if not _packaged(text, probe):
        return False
    line = f"/{relative.as_posix()}/"
    with gitignore.open("a", encoding="utf-8") as handle:
        handle.write(("" if not text or text.endswith("\n") else "\n") + line + "\n")
    print(
        f"note: added {line} to {gitignore}: flwr run packages the app folder, and run "
        "outputs inside it must stay out of the package",
        flush=True,
    )
    return True


def _packaged(gitignore: str, path: str) -> bool:
    """Whether Flower's packaging rules keep ``path`` with this ``.gitignore``."""
    try:
        from flwr.cli.utils import filter_paths_for_publish
    except ImportError:  # another Flower: judge by the .gitignore alone
        import pathspec

        spec = pathspec.PathSpec.from_lines("gitwildmatch", gitignore.splitlines())
        return not spec.match_file(path)
    files: dict[str, Path | bytes] = {".gitignore": gitignore.encode(), path: b"{}"}
    try:
        return path in filter_paths_for_publish(files)
    except Exception:  # e.g. a path deeper than Flower allows: it must be kept out anyway
        return True
