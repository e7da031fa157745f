"""The README and the pages in docs/ agree with the code they describe.

In every fenced code block: each ``--option`` after ``ecofed SUBCOMMAND`` on the same command
line is an option of that subcommand (read from the CLI's own parser), and each key of a
``--run-config`` value is a setting of ``EcoFedConfig``. In the text around the blocks: each
inline code span that names a path of this repository (``src/...``, ``docs/...``,
``README.md``, ...) names a file or folder that exists, and each relative link points at a
file that exists. Spans with placeholders (``<name>``, ``RUN_DIR``, wildcards) are skipped.
"""

from __future__ import annotations

import argparse
import re
import shlex
from pathlib import Path

import pytest

from ecofed_flwr.cli import build_parser
from ecofed_flwr.config import EcoFedConfig

REPO = Path(__file__).resolve().parents[1]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]

#: Tokens that end a shell command (``|``, ``&&``, ``;``, redirections, sub-shells).
_SEPARATOR_CHARS = set("();<>|&")
_OPTION = re.compile(r"\[?(--[A-Za-z0-9][\w-]*)")
# The value of --run-config: quoted ('...', "..." or, inside a make ARGS string, \"...\"),
# or one bare word.
_RUN_CONFIG = re.compile(r"""--run-config(?:=|\s+)(?:(\\?["'])(.*?)\1|([^\s"']+))""")
_QUOTED = re.compile(r"""(\\?["']).*?\1""")
_KEY = re.compile(r"(?:^|\s)([a-z][a-z0-9-]*)\s*=")
_INLINE_CODE = re.compile(r"`([^`\n]+)`")
_PLAIN_PATH = re.compile(r"[\w.-]+(?:/[\w.-]+)*/?")
_LINK = re.compile(r"\[[^\]\n]*\]\(([^)\s]+)\)")
_PATH_PREFIXES = ("src/", "docs/", "benchmarks/", "scripts/", "tests/")
_ROOT_FILES = {"README.md", "Makefile", "pyproject.toml", "LICENSE"}
_PLACEHOLDERS = ("RUN_DIR", "PATH", "MODEL", "NAME")


def page_id(page: Path) -> str:
    return page.relative_to(REPO).as_posix()


def split_page(text: str) -> tuple[list[str], str]:
    """The fenced code blocks of a Markdown page, and its text outside them."""
    blocks: list[str] = []
    prose: list[str] = []
    block: list[str] | None = None
    fence = ""
    for line in text.splitlines():
        stripped = line.strip()
        if block is None:
            if stripped.startswith(("```", "~~~")):
                fence, block = stripped[:3], []
            else:
                prose.append(line)
        elif stripped.startswith(fence) and not stripped.strip(fence[0]):
            blocks.append("\n".join(block))
            block = None
        else:
            block.append(line)
    assert block is None, "a code block is never closed"
    return blocks, "\n".join(prose)


def command_lines(block: str) -> list[str]:
    """The logical lines of a code block: a line ending in a backslash goes on."""
    lines: list[str] = []
    pending = ""
    for raw in block.splitlines():
        line = raw.rstrip()
        if line.endswith("\\"):
            pending += line[:-1] + " "
        else:
            lines.append(pending + line)
            pending = ""
    if pending:
        lines.append(pending)
    return lines


def shell_words(line: str) -> list[str]:
    """``line`` split as a POSIX shell splits it; comments dropped, operators apart."""
    lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    try:
        return list(lexer)
    except ValueError:  # unbalanced quotes: not a shell line, split it plainly
        return line.split()


def _is_ecofed(words: list[str], i: int) -> bool:
    name = words[i].rsplit("/", 1)[-1]
    return name == "ecofed" or (name == "ecofed_flwr.cli" and i > 0 and words[i - 1] == "-m")


def ecofed_options(line: str) -> list[tuple[str, str]]:
    """``(subcommand, option)`` for each ``--option`` after ``ecofed SUBCOMMAND`` in ``line``."""
    if "ecofed" not in line:
        return []
    words = shell_words(line)
    found: list[tuple[str, str]] = []
    for i in range(len(words) - 1):
        if not _is_ecofed(words, i):
            continue
        subcommand = words[i + 1]
        for word in words[i + 2 :]:
            if word and set(word) <= _SEPARATOR_CHARS:
                break
            match = _OPTION.match(word)
            if match:
                found.append((subcommand, match.group(1)))
    return found


def run_config_keys(block: str) -> list[str]:
    """The keys set by every ``--run-config`` value in ``block``."""
    keys: list[str] = []
    for match in _RUN_CONFIG.finditer(block):
        value = match.group(2) if match.group(1) else match.group(3)
        keys += _KEY.findall(_QUOTED.sub('""', value))
    return keys


def paragraphs(prose: str) -> str:
    """``prose`` with the lines of each paragraph joined, so that a code span or a link that
    wraps onto the next line is read whole; paragraphs stay on lines of their own."""
    return re.sub(r"\n(?!\s*\n)", " ", prose)


def repo_paths(prose: str) -> list[str]:
    """Inline code spans of ``prose`` that name a path of this repository."""
    paths: list[str] = []
    for span in _INLINE_CODE.findall(paragraphs(prose)):
        text = span.strip()
        if text in _ROOT_FILES:
            paths.append(text)
        elif (
            text.startswith(_PATH_PREFIXES)
            and _PLAIN_PATH.fullmatch(text)
            and ".." not in text
            and not any(p in text for p in _PLACEHOLDERS)
        ):
            paths.append(text)
    return paths


def relative_links(prose: str) -> list[str]:
    """Targets of the Markdown links in ``prose`` that are files of this repository."""
    targets: list[str] = []
    for target in _LINK.findall(paragraphs(prose)):
        if re.match(r"[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
            continue  # https:, mailto:, or an anchor on the same page
        targets.append(target.split("#", 1)[0])
    return targets


@pytest.fixture(scope="module")
def cli_options() -> dict[str, set[str]]:
    """Each ``ecofed`` subcommand and its option strings, from the CLI's parser."""
    # argparse has no public way to list subcommands and their options.
    for action in build_parser()._actions:
        if isinstance(action, argparse._SubParsersAction):
            options = {
                name: set(parser._option_string_actions) for name, parser in action.choices.items()
            }
            # `ecofed supernode` hands every option it does not know to flower-supernode.
            from flwr.supernode.cli.flower_supernode import _parse_args_run_supernode

            options["supernode"] |= set(_parse_args_run_supernode()._option_string_actions)
            return options
    raise AssertionError("the ecofed parser has no subcommands")


@pytest.mark.parametrize("page", PAGES, ids=page_id)
def test_ecofed_options_shown_exist(page: Path, cli_options: dict[str, set[str]]) -> None:
    blocks, _ = split_page(page.read_text(encoding="utf-8"))
    unknown = [
        f"ecofed {subcommand} {option}"
        for block in blocks
        for line in command_lines(block)
        for subcommand, option in ecofed_options(line)
        if subcommand in cli_options and option not in cli_options[subcommand]
    ]
    assert not unknown, f"{page_id(page)} shows options the CLI does not have: {unknown}"


@pytest.mark.parametrize("page", PAGES, ids=page_id)
def test_run_config_keys_shown_are_settings(page: Path) -> None:
    blocks, _ = split_page(page.read_text(encoding="utf-8"))
    settings = set(EcoFedConfig().to_dict())
    unknown = [key for block in blocks for key in run_config_keys(block) if key not in settings]
    assert not unknown, f"{page_id(page)} sets run-config keys that are no settings: {unknown}"


@pytest.mark.parametrize("page", PAGES, ids=page_id)
def test_repository_paths_named_exist(page: Path) -> None:
    _, prose = split_page(page.read_text(encoding="utf-8"))
    missing = [path for path in repo_paths(prose) if not (REPO / path).exists()]
    assert not missing, f"{page_id(page)} names paths that do not exist: {missing}"


@pytest.mark.parametrize("page", PAGES, ids=page_id)
def test_relative_links_resolve(page: Path) -> None:
    _, prose = split_page(page.read_text(encoding="utf-8"))
    broken = [link for link in relative_links(prose) if not (page.parent / link).exists()]
    assert not broken, f"{page_id(page)} links to files that do not exist: {broken}"


def test_the_scanners_read_shell_lines_as_a_shell_does() -> None:
    line = ".venv/bin/ecofed evaluate outputs/latest --json | jq --raw  # --not-an-option"
    assert ecofed_options(line) == [("evaluate", "--json")]
    assert ecofed_options("python -m ecofed_flwr.cli run [--resume RUN_DIR]") == [
        ("run", "--resume")
    ]
    assert ecofed_options("from ecofed_flwr.cli import build_parser") == []
    make_line = 'make run ARGS="--run-config \'seed=1 codec=\\"u2\\"\'"'
    assert run_config_keys(make_line) == ["seed", "codec"]
    flwr_line = "flwr run . --run-config \"output-dir='/srv/a=b' resume=true\" --stream"
    assert run_config_keys(flwr_line) == ["output-dir", "resume"]
    assert run_config_keys("ecofed run [--run-config K=V ...]") == []
    prose = "see `src/ecofed_flwr/cli.py`, `docs/<page>.md`, `outputs/latest` and `LICENSE`"
    assert repo_paths(prose) == ["src/ecofed_flwr/cli.py", "LICENSE"]
    links = "[a](docs/cli.md#top), [b](https://flower.ai), [c](#here)"
    assert relative_links(links) == ["docs/cli.md"]


def test_the_checks_find_what_the_pages_show() -> None:
    # Guards the scanners against silently matching nothing in the real pages.
    pages = [split_page(page.read_text(encoding="utf-8")) for page in PAGES]
    blocks = [block for page_blocks, _ in pages for block in page_blocks]
    shown = [o for b in blocks for line in command_lines(b) for o in ecofed_options(line)]
    assert ("profile", "--input-size") in shown and ("run", "--resume") in shown
    assert "num-server-rounds" in [key for block in blocks for key in run_config_keys(block)]
    _, readme = pages[0]
    assert "docs/settings.md" in relative_links(readme)
    assert "benchmarks/results/default_sweep.md" in repo_paths(readme)
