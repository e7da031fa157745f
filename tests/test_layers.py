"""The core knows nothing of Flower: no core module imports ``flwr``, directly or through
another module of this package (a static reading of the import statements)."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"

#: The core: everything a round needs without Flower (docs/architecture.md).
CORE = (
    "ecofed_flwr.server",
    "ecofed_flwr.server_state",
    "ecofed_flwr.rounds",
    "ecofed_flwr.nodes",
    "ecofed_flwr.round_log",
    "ecofed_flwr.lifecycle",
    "ecofed_flwr.handshake",
    "ecofed_flwr.buffer",
    "ecofed_flwr.trainer",
    "ecofed_flwr.checkpoint",
    "ecofed_flwr.ledger",
    "ecofed_flwr.config",
    "ecofed_flwr.defaults",
    "ecofed_flwr.batching",
    "ecofed_flwr.schedule",
    "ecofed_flwr.classifier",
    "ecofed_flwr.results",
    "ecofed_flwr.codec",
    "ecofed_flwr.data",
    "ecofed_flwr.models",
)


def _modules() -> dict[str, Path]:
    out = {}
    for path in SRC.rglob("*.py"):
        name = ".".join(path.relative_to(SRC).with_suffix("").parts).removesuffix(".__init__")
        out[name] = path
    return out


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """What ``name`` imports: ``flwr`` or modules of this package (their packages too)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package
                for _ in range(node.level - 1):
                    parent = parent.rpartition(".")[0]
                base = f"{parent}.{base}" if base else parent
            targets = [base, *(f"{base}.{alias.name}" for alias in node.names)]
        for target in targets:
            if target.split(".")[0] == "flwr":
                found.add("flwr")
            parts = target.split(".")
            found |= {".".join(parts[:i]) for i in range(1, len(parts) + 1)} & set(modules)
    own_packages = {".".join(name.split(".")[:i]) for i in range(1, name.count(".") + 1)}
    return (found | (own_packages & set(modules))) - {name}


def _path_to_flower(start: str, graph: dict[str, set[str]]) -> list[str] | None:
    previous: dict[str, str | None] = {start: None}
    todo = [start]
    while todo:
        current = todo.pop(0)
        for nxt in sorted(graph.get(current, ())):
            if nxt in previous:
                continue
            previous[nxt] = current
            if nxt == "flwr":
                path, at = [], nxt
                while at is not None:
                    path.append(at)
                    at = previous[at]
                return path[::-1]
            todo.append(nxt)
    return None


def test_no_core_module_imports_flower() -> None:
    modules = _modules()
    graph = {name: _imports(name, path, modules) for name, path in modules.items()}
    core = [m for m in modules if any(m == c or m.startswith(c + ".") for c in CORE)]
    assert len(core) >= 40  # the listing really covers the core's modules
    leaks = {m: _path_to_flower(m, graph) for m in core}
    assert not {m: p for m, p in leaks.items() if p}, leaks
    # ... and the reading does see Flower where it is imported
    assert _path_to_flower("ecofed_flwr.strategies.ecofed", graph)
    assert _path_to_flower("ecofed_flwr.meter", graph) == ["ecofed_flwr.meter", "flwr"]
