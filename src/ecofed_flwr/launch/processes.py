"""The processes a launcher started and everything they spawned, found and stopped with psutil.

A process is told from a later one that got its PID by psutil's identity (PID and creation
time): a remembered process whose PID now belongs to another one is never signalled.
"""

from __future__ import annotations

import collections
import os
import signal
import subprocess
import time
from collections.abc import Iterable
from typing import Any

import psutil

__all__ = ["STOP_TIMEOUT_S", "Spawned", "descendants", "stop_process"]

#: Seconds :func:`stop_process` waits after each SIGTERM.
STOP_TIMEOUT_S = 15.0

_POLL_S = 0.2


def _snapshot() -> dict[int, psutil.Process]:
    """Every process on the machine now, each with ``info["ppid"]``."""
    # process_iter checks each cached Process against the live one (PID and creation time)
    # and leaves out one whose PID was reused, so every entry is the process running now.
    return {p.pid: p for p in psutil.process_iter(["ppid"])}


def _children_map(table: dict[int, psutil.Process]) -> dict[int, list[psutil.Process]]:
    children: dict[int, list[psutil.Process]] = collections.defaultdict(list)
    for proc in table.values():
        ppid = proc.info.get("ppid")
        if isinstance(ppid, int):
            children[ppid].append(proc)
    return children


def descendants(proc: psutil.Process) -> list[psutil.Process]:
    """The processes below ``proc`` now (children, their children, ...); [] if it is gone."""
    try:
        return list(proc.children(recursive=True))
    except psutil.NoSuchProcess:
        return []


def _pgid(proc: psutil.Process) -> int | None:
    """``proc``'s process group, or None (gone, or not a POSIX system)."""
    if not hasattr(os, "getpgid"):
        return None
    try:
        return os.getpgid(proc.pid)
    except OSError:
        return None


class Spawned:
    """The processes ``root`` spawned, remembered across snapshots so that orphans are kept.

    Flower's helpers (``flower-superexec``, ``flwr-serverapp``, ``flwr-simulation``) start
    new sessions, and Ray's agents outlive their parent: once a parent is gone, its children
    are re-parented to init and no longer appear below ``root``. So every :meth:`refresh`
    adds the descendants of ``root`` and of every remembered process still running, and every
    member of a process group led by one of them (such a group was created by our process, so
    all in it are ours). Nothing else is ever included, and a remembered process whose PID now
    belongs to another process is left alone (psutil's identity: PID and creation time).

    Parameters
    ----------
    root : int or psutil.Process
        The process we started (a PID is looked up now, so pass it while that process has
        not been reaped).
    """

    def __init__(self, root: int | psutil.Process) -> None:
        self.root = root if isinstance(root, psutil.Process) else psutil.Process(root)
        self.members: set[psutil.Process] = set()
        # Process groups led by one of ours, by group id: the leader as first seen.
        self.groups: dict[int, psutil.Process] = {}

    def refresh(self) -> None:
        """Add what ``root`` and the remembered processes spawned since the last refresh."""
        table = _snapshot()
        known = {self.root, *self.members}
        alive = [p for p in known if table.get(p.pid) == p]
        children = _children_map(table)
        todo = list(alive)
        while todo:
            for child in children.get(todo.pop().pid, []):
                if child not in known:
                    self.members.add(child)
                    known.add(child)
                    alive.append(child)
                    todo.append(child)
        leaders = {p.pid: p for p in known}
        for proc in alive:
            group = _pgid(proc)
            if group is not None and group in leaders:
                self.groups.setdefault(group, leaders[group])
        # A group whose leader's PID now belongs to another process may be that one's group.
        for group, leader in list(self.groups.items()):
            holder = table.get(group)
            if holder is not None and holder != leader:
                del self.groups[group]
        if not self.groups:
            return
        for proc in table.values():
            if proc not in known and _pgid(proc) in self.groups:
                self.members.add(proc)
                known.add(proc)

    def running(self) -> list[psutil.Process]:
        """Remembered processes still running (zombies are finished: their parent reaps)."""
        found = []
        for proc in self.members:
            try:
                if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                    found.append(proc)
            except psutil.NoSuchProcess:
                pass
        return found


def _signal_all(procs: Iterable[psutil.Process], sig: int) -> None:
    for proc in procs:
        try:
            proc.send_signal(sig)  # raises NoSuchProcess if the PID was reused meanwhile
        except psutil.NoSuchProcess:
            pass


def _root_of(proc: subprocess.Popen[Any]) -> psutil.Process | None:
    """``proc`` as a psutil process, while its PID is still its own (not yet reaped)."""
    if proc.returncode is not None:
        return None  # reaped: the PID may belong to another process by now
    try:
        return psutil.Process(proc.pid)
    except psutil.NoSuchProcess:
        return None


def stop_process(proc: subprocess.Popen[Any], timeout: float = STOP_TIMEOUT_S) -> None:
    """Stop ``proc`` and whatever it spawned; nothing else is touched.

    SIGTERM to ``proc``, SIGKILL after ``timeout`` seconds. Flower's helpers watch their
    parent and exit by themselves about a second later; those still running ``timeout``
    seconds after that (Ray's agents ignore SIGTERM for a while) get SIGTERM, then SIGKILL.
    Only processes found below ``proc`` (see :class:`Spawned`) are signalled, and only while
    their PID is still theirs.

    Parameters
    ----------
    proc : subprocess.Popen
        A process this launcher started.
    timeout : float
        Seconds to wait after each SIGTERM.
    """
    root = _root_of(proc)
    spawned = None if root is None else Spawned(root)
    if spawned is not None:
        spawned.refresh()
    if proc.poll() is None:
        proc.terminate()
        deadline = time.monotonic() + timeout
        while proc.poll() is None and time.monotonic() < deadline:
            if spawned is not None:
                spawned.refresh()  # it may still spawn while shutting down
            time.sleep(_POLL_S)
        if proc.poll() is None:
            proc.kill()
        proc.wait()
    if spawned is None:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        spawned.refresh()
        if not spawned.running():
            return
        time.sleep(_POLL_S)
    for sig in (signal.SIGTERM, signal.SIGKILL):
        spawned.refresh()
        _signal_all(spawned.running(), sig)
        deadline = time.monotonic() + min(timeout, 5.0)
        while spawned.running() and time.monotonic() < deadline:
            time.sleep(_POLL_S)
