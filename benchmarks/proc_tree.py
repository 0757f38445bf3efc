"""Process trees from /proc: descendants, their memory and CPU, which of them are flow runs, the
machine's CPU, and a sampler of the peaks while a burst drains (``serve_burst``,
``sustained``)."""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK")


def proc_stat(pid: int) -> list[str] | None:
    """/proc/PID/stat's fields after the command name (field 3 on), or None when gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


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
    f = proc_stat(pid)
    return int(f[1]) if f else 0


def is_flow_run(pid: int) -> bool:
    """A flow-run process: a new Python (``python -m prefect.engine``) or a fork of the fork
    server (``OROSFLOW_FLOW_RUN_START=fork``: same command line as its parent)."""
    cmd = _cmdline(pid)
    if b"prefect.engine" in cmd:
        return True
    return b"multiprocessing.forkserver" in cmd and b"multiprocessing.forkserver" in _cmdline(
        _parent(pid)
    )


def cpu_seconds(pid: int) -> float:
    """CPU of ``pid`` and of its children it has reaped (utime, stime, cutime, cstime)."""
    f = proc_stat(pid)
    return sum(int(x) for x in f[11:15]) / CLK_TCK if f else 0.0


def tree_cpu(pid: int) -> float:
    """CPU of a process tree: each live process with the children it reaped, so a flow run
    that ended is counted in its parent (the runner's fork server, the worker)."""
    return sum(cpu_seconds(p) for p in descendants(pid))


def machine_cpu() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot (/proc/stat)."""
    values = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    total = sum(values[:8])  # without guest time, already in user
    return (total - idle) / CLK_TCK, total / CLK_TCK


def postmaster_pid() -> int | None:
    """The local PostgreSQL's postmaster: a ``postgres`` process whose parent is not one."""
    names: dict[int, tuple[str, int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            name = stat[stat.index("(") + 1 : stat.rindex(")")]
            names[int(entry)] = (name, int(stat.rsplit(")", 1)[1].split()[1]))
    for pid, (name, ppid) in names.items():
        if name == "postgres" and names.get(ppid, ("",))[0] != "postgres":
            return pid
    return None


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
