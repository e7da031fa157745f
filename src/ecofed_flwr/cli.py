"""The ``ecofed`` command line.

Subcommands::

    ecofed profile MODEL [--input-size N] [--weights SOURCE] [--num-classes N] [--json]
    ecofed models
    ecofed codecs
    ecofed run [--app-dir DIR] [--num-supernodes N] [--ray-address ADDR] [--output-root DIR]
               [--run-config K=V ...]
               [--resume RUN_DIR]
    ecofed evaluate RUN_DIR_OR_MODEL [--dataset NAME] [--data-dir DIR] [--test-samples N]
    ecofed supernode [--poll-seconds S] [--warm] FLOWER_SUPERNODE_ARGS...
    ecofed device-executor --runtime-api-address HOST:PORT [--poll-seconds S]

Each subcommand is one ``_add_<name>_parser`` function that registers its arguments and sets
``handler``, a function taking the parsed arguments and returning the exit code; a new
subcommand is one more such function listed in :data:`_SUBCOMMANDS`.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from ecofed_flwr import defaults

__all__ = ["main"]

#: Exit code for errors the user can fix (bad model name, unavailable weights, ...).
EXIT_USAGE = 2

#: Exit code for a federation that started but did not complete (``ecofed run``).
EXIT_FAILED = 1

# Errors that come from what the user asked for; anything else is a bug and keeps its
# traceback. RuntimeError is here because that is what timm raises for an unknown model name
# and torch for an input too small for the model; models.WeightsUnavailableError is one
# (not imported here: `ecofed supernode` must not load torch into the SuperNode's process).
_USER_ERRORS: tuple[type[Exception], ...] = (
    FileNotFoundError,
    KeyError,
    ValueError,
    NotImplementedError,
    RuntimeError,
)

Handler = Callable[[argparse.Namespace], int]
_Subparsers = argparse._SubParsersAction  # argparse exposes no public name for this type


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _format_table(header: Sequence[str], rows: Sequence[Sequence[str]], right: set[int]) -> str:
    """Columns padded to their widest cell; columns in ``right`` are right-aligned (numbers)."""
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        parts = [
            c.rjust(w) if i in right else c.ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ]
        return "  ".join(parts).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(header), rule, *(line(r) for r in rows)])


# ------------------------------------------------------------------------------------ profile


def _add_profile_parser(subparsers: _Subparsers) -> None:
    parser = subparsers.add_parser(
        "profile",
        help="per-cut activation size, device FLOPs and parameters of a model",
        description=(
            "For every cut of MODEL: the activation one sample uploads (values and bytes at "
            "32/8/4/2 bits, group scales excluded), the raw uint8 image it replaces, and the "
            "front's parameters and FLOPs (FlopCounterMode, multiply-add = 2 FLOPs)."
        ),
    )
    parser.add_argument("model", metavar="MODEL", help="registered model or timm:<name>")
    parser.add_argument(
        "--input-size", type=_positive_int, default=None, help="square input size in pixels"
    )
    parser.add_argument(
        "--weights", default=None, help="weight source (default: the model's; see `ecofed models`)"
    )
    parser.add_argument(
        "--num-classes", type=_positive_int, default=10, help="output classes (default: 10)"
    )
    parser.add_argument("--json", action="store_true", help="print a JSON list instead of a table")
    parser.set_defaults(handler=_run_profile)


def _run_profile(args: argparse.Namespace) -> int:
    from ecofed_flwr.profiler import PROFILE_CODECS, profile_cuts

    profiles = profile_cuts(
        args.model, input_size=args.input_size, weights=args.weights, num_classes=args.num_classes
    )
    if args.json:
        print(json.dumps([p.to_dict() for p in profiles], indent=2))
        return 0
    bits = list(PROFILE_CODECS)
    header = [
        "cut",
        "activation",
        "values",
        *(f"B@{b}bit" for b in bits),
        "raw B",
        "ratio@8",
        "front params",
        "front MFLOPs",
    ]
    rows = [
        [
            p.cut,
            "x".join(str(d) for d in p.activation_shape),
            f"{p.values_per_sample:,}",
            *(f"{p.bytes_per_sample[b]:,}" for b in bits),
            f"{p.raw_input_bytes:,}",
            f"{p.activation_to_input_ratio:.3f}",
            f"{p.front_params:,}",
            f"{p.front_flops / 1e6:,.2f}",
        ]
        for p in profiles
    ]
    print(_format_table(header, rows, right=set(range(2, len(header)))))
    return 0


# ------------------------------------------------------------------------------------- models


def _add_models_parser(subparsers: _Subparsers) -> None:
    parser = subparsers.add_parser(
        "models", help="registered models, their cuts and weight sources"
    )
    parser.set_defaults(handler=_run_models)


def _run_models(args: argparse.Namespace) -> int:
    import torch

    from ecofed_flwr.models import get_model_spec, list_cuts, list_models

    blocks = []
    for name in list_models():
        spec = get_model_spec(name)
        # Only the stage names are needed; the meta device skips weight initialisation.
        with torch.device("meta"):
            cuts = list_cuts(name)
        lines = [
            f"{name}",
            f"  input:           {spec.in_chans}x{spec.input_size}x{spec.input_size}",
            f"  cuts:            {', '.join(cuts)}",
            f"  default cut:     {spec.default_cut}",
            f"  default weights: {spec.default_weights}",
            "  weight sources:",
        ]
        sources = {k: v.description for k, v in spec.weights.items()}
        sources.setdefault("random", "seeded initialisation, no pre-training")
        sources["file:PATH"] = "local checkpoint of the whole model"
        width = max(len(k) for k in sources)
        lines += [f"    {k.ljust(width)}  {d}".rstrip() for k, d in sources.items()]
        blocks.append("\n".join(lines))
    print("\n\n".join(blocks))
    return 0


# ------------------------------------------------------------------------------------- codecs


def _add_codecs_parser(subparsers: _Subparsers) -> None:
    parser = subparsers.add_parser("codecs", help="activation codecs and their bit widths")
    parser.set_defaults(handler=_run_codecs)


def _run_codecs(args: argparse.Namespace) -> int:
    from ecofed_flwr.codec import list_codecs, make_codec

    rows = [[name, str(make_codec(name).bits)] for name in list_codecs()]
    print(_format_table(["codec", "bits"], rows, right={1}))
    print("\noptions: BASE[-ch][-clipP][-gN][+zstd[L]] (see ecofed_flwr.codec)")
    return 0


# ---------------------------------------------------------------------------------------- run


def _default_app_dir() -> Path:
    """The working folder if it is a Flower app, else this package's source checkout."""
    cwd = Path.cwd()
    pyproject = cwd / "pyproject.toml"
    if pyproject.is_file() and "[tool.flwr.app" in pyproject.read_text(errors="replace"):
        return cwd
    # src layout: <checkout>/src/ecofed_flwr/cli.py; an editable install points here.
    checkout = Path(__file__).resolve().parents[2]
    return checkout if (checkout / "pyproject.toml").is_file() else cwd


def _add_run_parser(subparsers: _Subparsers) -> None:
    parser = subparsers.add_parser(
        "run",
        help="run an EcoFed federation on a private local SuperLink (simulation)",
        description=(
            "Start a private Flower SuperLink (simulation runtime, no dependency "
            "installation) on a free port in 47000-47999, run the app with `flwr run "
            "--stream`, check that results.json says completed, copy results.json, "
            "accuracy.png and model.pt to OUTPUT_ROOT/latest/ and stop the SuperLink. "
            "The last line printed is the path of OUTPUT_ROOT/latest/results.json. "
            "With --resume RUN_DIR, a run whose server stopped goes on from its checkpoint "
            "after its last finished round, in RUN_DIR, with its settings and SuperNodes."
        ),
    )
    parser.add_argument(
        "--app-dir",
        type=Path,
        default=None,
        help="Flower app folder (default: the working folder, or this package's checkout)",
    )
    parser.add_argument(
        "--num-supernodes",
        type=_positive_int,
        default=None,
        help="simulated SuperNodes, one data partition each (default: "
        f"{defaults.NUM_SUPERNODES}; with --resume: the run's)",
    )
    parser.add_argument(
        "--client-cpus",
        type=_positive_int,
        default=1,
        help="whole CPUs reserved per ClientApp (default: 1)",
    )
    parser.add_argument(
        "--ray-address",
        default=None,
        metavar="ADDR",
        help=(
            "the Ray that runs the simulated devices: 'local' (a new Ray on this machine, "
            "never a cluster left running here), 'auto' (the cluster started on this machine "
            "with `ray start`) or a cluster's HOST:PORT (default: local; with --resume: the "
            "run's; see docs/scaling.md)"
        ),
    )
    parser.add_argument(
        "--output-root",
        type=Path,
        default=None,
        help="where run-YYYYmmdd-HHMMSS/ and latest/ go (default: APP_DIR/outputs)",
    )
    parser.add_argument(
        "--run-config",
        action="append",
        default=[],
        metavar="K=V",
        help=(
            "run-config overrides in flwr's TOML syntax, repeatable, e.g. "
            "\"num-server-rounds=3 codec='u2'\" (strings in quotes)"
        ),
    )
    parser.add_argument(
        "--resume",
        type=Path,
        default=None,
        metavar="RUN_DIR",
        help=(
            "go on with the run in RUN_DIR (a run folder with a checkpoint/) after its last "
            "finished round; --run-config may then only change settings that leave the "
            "results as they are (e.g. round-timeout; see docs/resume.md)"
        ),
    )
    parser.add_argument(
        "--quiet", action="store_true", help="do not echo flwr's output (it is saved anyway)"
    )
    parser.set_defaults(handler=_run_run)


def _run_run(args: argparse.Namespace) -> int:
    from ecofed_flwr.launch import LaunchError, run_local_federation

    try:
        run_local_federation(
            app_dir=args.app_dir or _default_app_dir(),
            run_config=args.run_config,
            num_supernodes=args.num_supernodes,
            output_root=args.output_root,
            client_cpus=args.client_cpus,
            stream=not args.quiet,
            resume=args.resume,
            ray_address=args.ray_address,
        )
    except LaunchError as err:
        # Not a usage error: the messages carry log tails, so keep their line breaks.
        print(f"error: {err}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("interrupted; the SuperLink was stopped", file=sys.stderr)
        return 130
    return 0


# ----------------------------------------------------------------------------------- evaluate


def _add_evaluate_parser(subparsers: _Subparsers) -> None:
    parser = subparsers.add_parser(
        "evaluate",
        help="accuracy of a saved classifier (a run folder or its model.pt) on a test set",
        description=(
            "Load the classifier a run kept (front + trained back, weights only) and print "
            "its accuracy on the test split of the run's data set, prepared as in training "
            "(or of --dataset)."
        ),
    )
    parser.add_argument("path", type=Path, metavar="RUN_DIR_OR_MODEL")
    parser.add_argument("--dataset", default=None, help="data set (default: the run's)")
    parser.add_argument("--data-dir", default=None, help="data folder (default: the run's)")
    parser.add_argument(
        "--test-samples",
        type=int,
        default=None,
        help="test samples, 0 for all (default: the run's test-samples)",
    )
    parser.add_argument("--json", action="store_true", help="print a JSON object")
    parser.set_defaults(handler=_run_evaluate)


def _run_evaluate(args: argparse.Namespace) -> int:
    import torch

    from ecofed_flwr.classifier import load_classifier
    from ecofed_flwr.config import EcoFedConfig
    from ecofed_flwr.data import load_dataset

    model = load_classifier(args.path)
    run = dict(model.metadata.get("config", {}))
    if args.dataset is not None:
        run["dataset"] = args.dataset
    if args.data_dir is not None:
        run["data-dir"] = args.data_dir
    if args.test_samples is not None:
        run["test-samples"] = args.test_samples
    cfg = EcoFedConfig.from_mapping({k: v for k, v in run.items() if k in EcoFedConfig().to_dict()})
    test = load_dataset(cfg.dataset, "test", data_dir=cfg.data_dir or None, seed=cfg.seed)
    indices = cfg.test_indices(len(test))
    if indices is not None:
        test = test.subset(indices)
    dataset = cfg.dataset
    inputs = model.prepare(test.images)
    labels = torch.as_tensor(test.labels, dtype=torch.int64)
    correct = int((model.predict(inputs) == labels).sum())
    accuracy = correct / max(len(labels), 1)
    result = {
        "model_path": str(args.path),
        "dataset": dataset,
        "samples": len(labels),
        "accuracy": accuracy,
        "round": model.metadata.get("round"),
        "val_accuracy": model.metadata.get("val_accuracy"),
    }
    if args.json:
        print(json.dumps(result))
    else:
        print(
            f"{args.path}: accuracy {accuracy:.4f} ({correct}/{len(labels)}) on {dataset} test "
            f"(back of round {result['round']}, val accuracy {result['val_accuracy']})"
        )
    return 0


# -------------------------------------------------------------------- supernode, device-executor

#: Subcommands that hand all their arguments to another program's parser.
_PASS_THROUGH = ("supernode", "device-executor")


def _add_device_parsers(subparsers: _Subparsers) -> None:
    # Registered for `ecofed --help` and the docs' checks; main() hands these subcommands'
    # arguments to their own programs before parsing (flower-supernode's are not known here).
    from ecofed_flwr.launch.supernode import (
        EXECUTOR_DESCRIPTION,
        SUPERNODE_DESCRIPTION,
        add_executor_arguments,
        add_supernode_arguments,
    )

    add_supernode_arguments(
        subparsers.add_parser(
            "supernode",
            help="flower-supernode with short polls and, with --warm, a warm ClientApp executor",
            description=SUPERNODE_DESCRIPTION,
        )
    )
    add_executor_arguments(
        subparsers.add_parser(
            "device-executor",
            help="run a SuperNode's ClientApp tasks in one warm process (--isolation process)",
            description=EXECUTOR_DESCRIPTION,
        )
    )


def _run_pass_through(command: str, rest: list[str]) -> int:
    # Errors in their options are one line; a failure of the running node keeps its traceback.
    from ecofed_flwr.launch.supernode import SupernodeUsageError

    try:
        _pass_through(command, rest)
    except SupernodeUsageError as err:
        print(f"error: {_error_message(err)}", file=sys.stderr)
        return EXIT_USAGE
    except SystemExit as exc:
        if exc.code is None or isinstance(exc.code, int):
            return exc.code or 0
        print(exc.code, file=sys.stderr)
        return EXIT_USAGE
    return 0


def _pass_through(command: str, rest: list[str]) -> None:
    if command == "supernode":
        from ecofed_flwr.launch.supernode import main as supernode_main

        supernode_main(rest)
    else:
        from ecofed_flwr.device_executor import main as executor_main

        executor_main(rest)


# --------------------------------------------------------------------------------------- main

_SUBCOMMANDS: tuple[Callable[[_Subparsers], None], ...] = (
    _add_profile_parser,
    _add_models_parser,
    _add_codecs_parser,
    _add_run_parser,
    _add_evaluate_parser,
    _add_device_parsers,
)


def build_parser() -> argparse.ArgumentParser:
    """The ``ecofed`` argument parser with every subcommand registered."""
    parser = argparse.ArgumentParser(
        prog="ecofed",
        description="EcoFed split federated learning: model, cut and codec tools, local runs.",
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in _SUBCOMMANDS:
        add(subparsers)
    return parser


def _error_message(err: Exception) -> str:
    # str(KeyError) wraps its message in quotes; the message itself reads better.
    text = str(err.args[0]) if isinstance(err, KeyError) and err.args else str(err)
    return " ".join(text.split()) or type(err).__name__


def main(argv: list[str] | None = None) -> int:
    """Run the ``ecofed`` command line.

    Parameters
    ----------
    argv : list[str], optional
        Arguments without the program name (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        Exit code: 0 on success, 2 on a usage error (bad arguments, unknown model,
        unavailable weights, bad run-config override), reported as one ``error: ...`` line
        on stderr; 1 when ``ecofed run`` starts a federation that fails.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in _PASS_THROUGH:
        return _run_pass_through(argv[0], argv[1:])
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        # argparse exits on --help (0) and bad arguments (2); return the code instead.
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    handler: Handler = args.handler
    try:
        return handler(args)
    except _USER_ERRORS as err:
        print(f"error: {_error_message(err)}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
