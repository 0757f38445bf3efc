"""The process tree of ``orosflow serve`` from /proc: its descendants, their memory, which of
them are flow runs, and a sampler of the peaks while a burst drains (``serve_burst``)."""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from pathlib import Path


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        tree.setdefault(ppid, []).append(int(entry))
    return tree


def descendants(pid: int) -> list[int]:
    """``pid`` and every process below it (a snapshot of /proc)."""
    tree, out, todo = _children(), [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(tree.get(p, []))
    return out


def _status_kib(pid: int, path: str, key: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/{path}").read_text().splitlines():
            if line.startswith(key):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def rss_bytes(pid: int) -> int:
    return _status_kib(pid, "status", "VmRSS:")


def pss_bytes(pid: int) -> int:
    """Proportional set size: pages shared by forked runs counted once in the sum."""
    return _status_kib(pid, "smaps_rollup", "Pss:")


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
    except OSError:
        return b""


def _parent(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return 0


def is_flow_run(pid: int) -> bool:
    """A flow-run process: a new Python (``python -m prefect.engine``) or a fork of the fork
    server (``OROSFLOW_FLOW_RUN_START=fork``: same command line as its parent)."""
    cmd = _cmdline(pid)
    if b"prefect.engine" in cmd:
        return True
    return b"multiprocessing.forkserver" in cmd and b"multiprocessing.forkserver" in _cmdline(
        _parent(pid)
    )


@dataclass
class Sampler:
    """Samples serve's process tree every ``interval`` s: peak RSS and peak flow-run count."""

    root_pid: int
    interval: float = 0.5
    peak_rss: int = 0
    peak_pss: int = 0
    peak_runs: int = 0
    peak_run_rss: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            pids = descendants(self.root_pid)
            rss = {p: rss_bytes(p) for p in pids}
            runs = [p for p in pids if is_flow_run(p)]
            self.peak_rss = max(self.peak_rss, sum(rss.values()))
            self.peak_pss = max(self.peak_pss, sum(pss_bytes(p) for p in pids))
            self.peak_runs = max(self.peak_runs, len(runs))
            self.peak_run_rss = max([self.peak_run_rss, *(rss[p] for p in runs)])

    def reset(self) -> None:
        self.peak_rss = self.peak_pss = self.peak_runs = self.peak_run_rss = 0

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
