"""Fixtures several test files share: a file imports those it uses.

Named ``*_test.py`` so that ``flwr run`` leaves it out of a FAB (a ``conftest.py`` would go in)
and pytest does not collect it (``python_files = ["test_*.py"]``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from ecofed_flwr.baselines.wire import task_identity
from ecofed_flwr.models import create_split


@pytest.fixture
def flower_task_identity() -> Iterator[None]:
    """Flower's task identity set, as inside a run: messages record their sender, and outside
    a Flower run none is set. Use with ``pytestmark = pytest.mark.usefixtures(...)``."""
    with task_identity():
        yield


@pytest.fixture(scope="module", name="split")
def tiny_split_fixture() -> Any:
    """``split``: the tiny test split (``tiny_cnn`` cut at ``block1``, random weights, 10
    classes, 16 px, seed 0), built once per module; a module may define its own instead."""
    return create_split("tiny_cnn", "block1", "random", 10, 16, seed=0)
