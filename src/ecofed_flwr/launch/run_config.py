"""The run config a launch passes to ``flwr run``: checked before anything starts, written in
``flwr``'s TOML syntax, and the settings that resume an earlier run."""

from __future__ import annotations

import json
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ecofed_flwr.launch.errors import LaunchUsageError

__all__ = [
    "LAUNCH_FILE",
    "launched_with",
    "resolve_run_config",
    "resume_settings",
    "toml_string",
    "toml_value",
]

#: File of a run folder that records how the launcher ran it (read by ``--resume``).
LAUNCH_FILE = "launch.json"


def _app_section(app_dir: Path) -> dict[str, Any]:
    pyproject = app_dir / "pyproject.toml"
    try:
        with pyproject.open("rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        raise LaunchUsageError(f"no pyproject.toml in {app_dir}: not a Flower app") from None
    except tomllib.TOMLDecodeError as err:
        raise LaunchUsageError(f"{pyproject}: {err}") from err
    app = data.get("tool", {}).get("flwr", {}).get("app")
    if not isinstance(app, dict):
        raise LaunchUsageError(f"{pyproject} has no [tool.flwr.app] section: not a Flower app")
    return app


def resolve_run_config(app_dir: Path, overrides: Sequence[str]) -> dict[str, Any]:
    """The run config that ``flwr run`` will use: the app's defaults with ``overrides``.

    Checked before anything starts, so that a typo is a usage error and not a failed run
    found minutes later (the ServerApp would only fail once it reads the config).

    Parameters
    ----------
    app_dir : Path
        The Flower app (folder of ``pyproject.toml``).
    overrides : Sequence[str]
        ``--run-config`` values in ``flwr``'s syntax (``"k1=1 k2='text'"``) or one TOML file.

    Returns
    -------
    dict[str, Any]
        Merged flat run config.

    Raises
    ------
    LaunchUsageError
        On a malformed override, an unknown key, ``output-dir`` or ``resume`` (the launcher
        owns them) or, for the EcoFed app, a value :class:`~ecofed_flwr.config.EcoFedConfig`
        rejects.
    """
    import click
    from flwr.common.config import flatten_dict, parse_config_args

    if any(value.strip().endswith(".toml") for value in overrides):
        # flwr accepts a TOML file only as the sole --run-config, and the launcher always
        # adds output-dir.
        raise LaunchUsageError("--run-config: pass key=value pairs, not a TOML file")
    app = _app_section(app_dir)
    defaults = flatten_dict(app.get("config", {}))
    try:
        parsed = parse_config_args(list(overrides)) if overrides else {}
    except (click.ClickException, ValueError, OSError) as err:
        message = err.format_message() if isinstance(err, click.ClickException) else str(err)
        raise LaunchUsageError(f"--run-config: {message}") from err
    unknown = sorted(set(parsed) - set(defaults))
    if unknown:
        raise LaunchUsageError(f"--run-config: unknown keys {unknown}; known: {sorted(defaults)}")
    if "output-dir" in parsed:
        raise LaunchUsageError(
            "--run-config: output-dir is set by the launcher; use --output-root instead"
        )
    if "resume" in parsed:
        raise LaunchUsageError("--run-config: resume is set by the launcher; use --resume RUN_DIR")
    merged = {**defaults, **parsed}
    components = app.get("components", {})
    if str(components.get("serverapp", "")).startswith("ecofed_flwr."):
        from ecofed_flwr.config import ConfigError, EcoFedConfig

        try:
            EcoFedConfig.from_mapping(merged)
        except ConfigError as err:
            raise LaunchUsageError(f"--run-config: {err}") from err
    return merged


def toml_string(text: str) -> str:
    """``text`` as a quoted TOML string that ``flwr run --run-config`` keeps whole."""
    # flwr splits --run-config on whitespace unless the value is quoted, and its quoted form
    # cannot contain its own quote character.
    if "'" not in text:
        return f"'{text}'"
    if '"' not in text:
        return json.dumps(text)
    raise LaunchUsageError(f"path {text!r} contains both quote characters")


def toml_value(value: Any) -> str:
    """``value`` in the TOML syntax of ``flwr run --run-config`` (bool, number or string)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return toml_string(value)
    raise LaunchUsageError(f"cannot pass {value!r} as a run-config value")


def launched_with(run_dir: Path, key: str) -> Any:
    """``key`` of the run folder's :data:`LAUNCH_FILE` (how ``ecofed run`` started the run),
    or None when the run was not started by this launcher (e.g. plain ``flwr run``)."""
    try:
        launch = json.loads((run_dir / LAUNCH_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return launch.get(key) if isinstance(launch, dict) else None


def resume_settings(
    app_dir: Path, run_dir: Path, run_config: Sequence[str], num_supernodes: int | None
) -> tuple[int, list[str]]:
    """The SuperNodes and ``--run-config`` values that resume the run in ``run_dir``.

    Raises
    ------
    LaunchUsageError
        If ``run_dir`` holds no checkpoint, or the arguments change what the run computes.
    """
    from ecofed_flwr.checkpoint import Checkpointer, CheckpointError
    from ecofed_flwr.config import resume_differences

    try:
        last_round, extra = Checkpointer(run_dir).peek()
    except CheckpointError as err:
        raise LaunchUsageError(f"--resume {run_dir}: {err}") from err
    saved = extra.get("config")
    if not isinstance(saved, dict):
        raise LaunchUsageError(f"--resume {run_dir}: the checkpoint holds no run settings")
    nodes = launched_with(run_dir, "num_supernodes")  # None: not started by this launcher
    if not isinstance(nodes, int) or isinstance(nodes, bool) or nodes < 1:
        if num_supernodes is None:
            raise LaunchUsageError(
                f"--resume {run_dir}: no {LAUNCH_FILE} says how many SuperNodes the run had; "
                "pass --num-supernodes (the same as the run's: partitions depend on it)"
            )
        nodes = num_supernodes
    elif num_supernodes is not None and num_supernodes != nodes:
        raise LaunchUsageError(
            f"--num-supernodes: the run in {run_dir} had {nodes} (partitions depend on it), "
            f"got {num_supernodes}"
        )
    pairs = [f"{k}={toml_value(v)}" for k, v in saved.items() if k not in ("output-dir", "resume")]
    overrides = [*pairs, *run_config]
    changed = resume_differences(saved, resolve_run_config(app_dir, overrides))
    if changed:
        raise LaunchUsageError(
            "--run-config: a resumed run keeps the settings that decide its results; "
            "changed: " + "; ".join(changed)
        )
    print(f"Resuming {run_dir} after round {last_round} of its checkpoint", flush=True)
    return nodes, overrides
