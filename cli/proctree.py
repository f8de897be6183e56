"""Process trees read from ``/proc`` (Linux): who descends from whom, how much
memory they hold, and a way to stop all of them.

The launcher uses this to stop every process ``make run`` started, including
ones that left its process group (servers that call ``setsid``) or were
orphaned by a parent that died first; ``bench/stack.py`` and the tests use it
to measure and to check that nothing is left. Elsewhere than Linux the tree
is just the direct children the caller knows about.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")
PR_SET_CHILD_SUBREAPER = 36
PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


@dataclass(frozen=True)
class Proc:
    """One process, identified by pid and start time (pids are reused)."""

    pid: int
    ppid: int
    start: int  # clock ticks after boot
    state: str
    cmdline: str

    @property
    def key(self) -> tuple[int, int]:
        return (self.pid, self.start)


def read_proc(pid: int) -> Proc | None:
    """The process ``pid``, or ``None`` if it is gone (or not readable)."""
    try:
        stat = (PROC / str(pid) / "stat").read_text()
        raw = (PROC / str(pid) / "cmdline").read_bytes()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # The command name may hold spaces and parentheses: split after the last ')'.
    rest = stat[stat.rindex(")") + 2 :].split()
    cmd = raw.replace(b"\0", b" ").decode(errors="replace").strip()
    return Proc(pid=pid, ppid=int(rest[1]), state=rest[0], start=int(rest[19]), cmdline=cmd)


def all_procs() -> list[Proc]:
    out: list[Proc] = []
    if not PROC.is_dir():
        return out
    for entry in PROC.iterdir():
        if entry.name.isdigit():
            p = read_proc(int(entry.name))
            if p is not None:
                out.append(p)
    return out


def descendants(pid: int) -> list[Proc]:
    """Every living descendant of ``pid`` (children, their children, ...)."""
    by_parent: dict[int, list[Proc]] = {}
    for p in all_procs():
        by_parent.setdefault(p.ppid, []).append(p)
    out: list[Proc] = []
    todo = [pid]
    while todo:
        for child in by_parent.get(todo.pop(), []):
            out.append(child)
            todo.append(child.pid)
    return out


def alive(procs: Iterable[Proc]) -> list[Proc]:
    """Those of ``procs`` still running (same pid and start time, not a zombie)."""
    out = []
    for p in procs:
        now = read_proc(p.pid)
        if now is not None and now.start == p.start and now.state not in ("Z", "X"):
            out.append(now)
    return out


def rss_bytes(pid: int) -> int:
    """Resident memory of one process (0 if it is gone)."""
    try:
        fields = (PROC / str(pid) / "statm").read_text().split()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return 0
    return int(fields[1]) * PAGE


def pss_bytes(pid: int) -> int:
    """Proportional set size of one process: its resident pages, each page
    shared with others counted as its share (0 if gone or unreadable)."""
    try:
        for line in (PROC / str(pid) / "smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) * 1024
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        pass
    return 0


def tree_rss(pid: int, *, include_self: bool = True) -> dict[int, int]:
    """Resident bytes of ``pid`` and each descendant, by pid."""
    pids = ([pid] if include_self else []) + [p.pid for p in descendants(pid)]
    return {p: rss_bytes(p) for p in pids}


def become_subreaper() -> bool:
    """Make orphaned descendants re-parent to this process rather than to
    init, so they stay in its tree and can be found and stopped."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return int(libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)) == 0
    except (OSError, AttributeError):
        return False


def reap(*, exclude: Iterable[int] = ()) -> None:
    """Collect this process's exited children (orphans handed to a subreaper),
    except ``exclude``: the ones a ``Popen`` object waits for itself."""
    skip, me = set(exclude), os.getpid()
    for p in all_procs():
        if p.ppid == me and p.state == "Z" and p.pid not in skip:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(p.pid, os.WNOHANG)


def signal_all(procs: Iterable[Proc], signum: int) -> None:
    for p in alive(procs):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(p.pid, signum)


def stop_tree(
    pid: int,
    *,
    first: Iterable[int] = (),
    grace_s: float = 6.0,
    poll_s: float = 0.1,
    exclude: Iterable[int] = (),
) -> list[Proc]:
    """Stop every descendant of ``pid``: SIGTERM to ``first`` (the services,
    which then stop their own children), then SIGTERM to every descendant
    still running after half the grace, SIGKILL to any left at the end.
    ``exclude``: children not to reap here (see ``reap``). Returns what had
    to be killed."""
    exclude = set(exclude)
    seen: dict[tuple[int, int], Proc] = {p.key: p for p in descendants(pid)}
    for child in first:
        with contextlib.suppress(ProcessLookupError):
            os.kill(child, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    termed = False
    while True:
        reap(exclude=exclude)
        seen.update({p.key: p for p in descendants(pid)})
        left = alive(seen.values())
        if not left:
            return []
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        if not termed and remaining <= grace_s / 2:
            signal_all(left, signal.SIGTERM)
            termed = True
        time.sleep(poll_s)
    signal_all(left, signal.SIGKILL)
    end = time.monotonic() + 2.0
    while alive(left) and time.monotonic() < end:
        reap(exclude=exclude)
        time.sleep(poll_s)
    reap(exclude=exclude)
    return left
