"""Run docs/deploy.md: every ```sh block, in order, against scratch databases and ports.

What keeps the guide true (issue 16): an operator's copy-paste, done by a program before each
release (``make check-deploy``; not part of ``make test``/CI: it takes minutes, runs as root and
needs the local PostgreSQL at 127.0.0.1:5432 with trust auth for root, ``runuser`` and ``curl``).

- Block 1 (the site values) runs unchanged; then scratch values are exported over it: a
  temporary directory for ``$ETC_DIR``/``$VAR_DIR``, a fresh clone of this working copy (with
  its uncommitted changes) as ``$OROSFLOW_HOME``, databases and roles ``prefect_check_<pid>`` /
  ``orosflow_check_<pid>`` on 127.0.0.1, free ports, and a relay on loopback. Every later block
  starts with those values loaded, as "each new terminal starts by pasting it".
- Blocks that begin ``# long-running:`` are started in the background (their own session, log
  in the scratch directory) instead of occupying a terminal; every other block runs with
  ``bash -e -o pipefail`` and must exit 0 within its time limit.
- The relay is a real aiosmtpd on loopback requiring STARTTLS (a self-signed certificate made
  here, passed as ``$INTERNAL_CA`` so the guide's ``ca.pem`` trusts it) and AUTH with the
  scratch ``$SMTP_USER``/``$SMTP_PASSWORD``; every accepted mail is kept by Message-ID.
- Where a block cannot run unchanged here, SUBSTITUTIONS lists the exact text replaced and why;
  a substitution that no longer matches the guide fails the check.
- After the last block, the worker-kill step of section 7: N reports are submitted with the
  guide's command, one worker holding flow runs is sent ``kill -9``, and every report must get
  exactly one mail (one Message-ID) within 2 minutes of the kill.

Every process started here and every scratch database and role is removed at the end, also on
failure or Ctrl-C. Exit status 1 and the failing block's output tail when anything fails.

    .venv/bin/python docs/check_deploy.py [--keep] [--reports N] [--guide COPY-OF-deploy.md]
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import email
import email.policy
import json
import logging
import os
import re
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from orosflow.core.smtp_capture import MailCapture, self_signed_certificate  # noqa: E402

GUIDE = ROOT / "docs" / "deploy.md"
_LOAD = 'set -a; . "$ETC_DIR/env"; set +a'
PG = ["psql", "-h", "127.0.0.1", "-p", "5432", "-U", "root", "-d", "test", "-v", "ON_ERROR_STOP=1"]
KILL_DEADLINE = 120.0  # seconds after the kill: the guide's promise (step 7)
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"  # a fresh root shell's

# (block number, text in the guide, replacement, why): each must match exactly once.
SUBSTITUTIONS: list[tuple[int, str, str, str]] = [
    (
        2,
        "apt-get install -y postgresql python3 python3-venv make curl ca-certificates"
        " libpango-1.0-0 libpangoft2-1.0-0",
        "apt-get install -s postgresql python3 python3-venv make curl ca-certificates"
        " libpango-1.0-0 libpangoft2-1.0-0"
        ' | tee "$CHECK_DIR/apt.txt"; grep -q " 0 newly installed" "$CHECK_DIR/apt.txt"',
        "apt-get -s (simulate): the packages must already be installed; the check does not "
        "change the machine's package state",
    ),
]


@dataclass
class Block:
    number: int
    line: int  # in deploy.md
    text: str
    mode: str = "not run"  # ran | adapted | background | skipped | not run (after a failure)
    status: str = "-"
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    @property
    def first_line(self) -> str:
        """The block's first line, after the settings-loading and cd lines most blocks share."""
        lines = [ln for ln in self.text.splitlines() if ln.strip()]
        own = [ln for ln in lines if ln not in (_LOAD, 'cd "$OROSFLOW_HOME"')]
        first = (own or lines or [""])[0]
        return first if len(first) <= 58 else first[:55] + "..."

    @property
    def long_running(self) -> bool:
        return self.text.lstrip().startswith("# long-running")


class CheckFailed(Exception):
    pass


def blocks(path: Path) -> list[Block]:
    """Every ```sh block of the guide, in order, numbered from 1."""
    text = path.read_text(encoding="utf-8")
    found = []
    for m in re.finditer(r"^```sh\n(.*?)^```", text, re.S | re.M):
        found.append(Block(len(found) + 1, text.count("\n", 0, m.start()) + 1, m.group(1)))
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tail(path: Path, chars: int = 4000) -> str:
    try:
        return path.read_text(errors="replace")[-chars:]
    except FileNotFoundError:
        return "(no output)"


def become_subreaper() -> None:
    """Flow runs outlive a killed worker; as the subreaper they become our children, so the
    cleanup finds (and ends) them too."""
    with contextlib.suppress(Exception):
        ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER


def descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def _stat(pid: int) -> list[str]:
    """State, ppid, … of a process; ["X"] when it is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return ["X"]


def alive(pid: int) -> bool:
    return _stat(pid)[0] not in ("Z", "X")


def children_of(pid: int) -> list[int]:
    """Live child processes: a process worker's are its flow runs."""
    return [
        int(e.name)
        for e in Path("/proc").iterdir()
        if e.name.isdigit() and _stat(int(e.name))[1:2] == [str(pid)] and alive(int(e.name))
    ]


class Check:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.tag = f"check_{os.getpid()}"
        self.dir = Path(tempfile.mkdtemp(prefix="orosflow-check-deploy-"))
        self.logs = self.dir / "logs"
        self.logs.mkdir()
        self.home = self.dir / "orosflow"
        self.site = self.dir / "site.sh"
        self.background: dict[int, subprocess.Popen[bytes]] = {}
        self.killed: set[int] = set()
        self.relay: MailCapture | None = None
        self.extra: list[tuple[str, str, str, str, float]] = []  # the table's non-block rows
        self.password = "Sm@tt:p/w%1 " + secrets.token_hex(3)  # URL-special, with a space
        self.smtp_user, self.smtp_password = "orosflow", "relä-lösen:" + secrets.token_hex(4)

    # --- set-up -------------------------------------------------------------------------
    def clone(self) -> None:
        """A fresh clone of this working copy, with its uncommitted changes, as $OROSFLOW_HOME
        (make install then builds .tools/ and .venv/ from nothing)."""
        subprocess.run(
            ["git", "clone", "-q", "--no-hardlinks", str(ROOT), str(self.home)], check=True
        )
        diff = subprocess.run(
            ["git", "-C", str(ROOT), "diff", "HEAD", "--binary"], capture_output=True, check=True
        ).stdout
        if diff:
            subprocess.run(["git", "-C", str(self.home), "apply"], input=diff, check=True)
        untracked = subprocess.run(
            ["git", "-C", str(ROOT), "ls-files", "--others", "--exclude-standard", "-z"],
            capture_output=True,
            check=True,
        ).stdout.split(b"\0")
        for name in filter(None, untracked):
            src, dst = ROOT / name.decode(), self.home / name.decode()
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst)

    def start_relay(self) -> None:
        certs = self.dir / "relay"
        certs.mkdir()
        self.cert, key = self_signed_certificate(certs)
        self.relay = MailCapture(
            self.dir / "mail",
            port=free_port(),
            tls=(self.cert, key),
            credentials=(self.smtp_user, self.smtp_password),
        ).start()

    def scratch_values(self) -> dict[str, str]:
        assert self.relay
        return {
            "OROSFLOW_HOME": str(self.home),
            "ETC_DIR": str(self.dir / "etc"),
            "VAR_DIR": str(self.dir / "var"),
            "DB_HOST": "127.0.0.1",
            "PREFECT_DB": f"prefect_{self.tag}",
            "PREFECT_DB_USER": f"prefect_{self.tag}",
            "PREFECT_DB_PASSWORD": self.password,
            "APP_DB": f"orosflow_{self.tag}",
            "APP_DB_USER": f"orosflow_{self.tag}",
            "APP_DB_PASSWORD": self.password[::-1],
            "PREFECT_HOSTNAME": "127.0.0.1",
            "PREFECT_BIND": "127.0.0.1",
            "PREFECT_PORT": str(free_port()),
            "SMTP_HOST": "127.0.0.1",
            "SMTP_PORT": str(self.relay.port),
            "SMTP_USER": self.smtp_user,
            "SMTP_PASSWORD": self.smtp_password,
            "INTERNAL_CA": str(self.cert),
            "TEST_MAIL_TO": "drift@kommun.example.se",
            "PORTAL_BIND": "127.0.0.1",
            "PORTAL_PORT": str(free_port()),
            "PORTAL_URL": "http://127.0.0.1",
        }

    def environment(self) -> dict[str, str]:
        """A fresh root login's environment: nothing of this process's venv, Prefect or
        Orosflow settings leaks into the blocks."""
        keep = ("HOME", "LANG", "LC_ALL", "TERM", "USER", "LOGNAME")
        # The machine's own package-index and CA settings (make install's uv and pip need
        # them where the index sits behind a proxy); the guide's settings file replaces
        # SSL_CERT_FILE for every Orosflow and Prefect process.
        machine = ("PIP_", "UV_", "SSL_CERT_", "CURL_CA_BUNDLE", "REQUESTS_CA_BUNDLE")
        env = {
            k: v
            for k, v in os.environ.items()
            if k in keep
            or k.upper().endswith("_PROXY")
            or (k.startswith(machine) and k != "UV_PROJECT_ENVIRONMENT")
        }
        env.update(PATH=PATH, CHECK_DIR=str(self.dir), LANG=env.get("LANG", "C.UTF-8"))
        return env

    # --- blocks -------------------------------------------------------------------------
    def script(self, block: Block) -> str:
        text = block.text
        for number, old, new, why in SUBSTITUTIONS:
            if number != block.number:
                continue
            if text.count(old) != 1:
                raise CheckFailed(
                    f"block {number}: the substitution no longer matches the guide: {old!r}"
                )
            text = text.replace(old, new)
            block.mode = "adapted"
            block.notes.append(why)
        if block.number == 1:
            # The guide's values, then the scratch ones over them, saved for every block.
            overrides = "".join(
                f"export {k}={shlex.quote(v)}\n" for k, v in self.scratch_values().items()
            )
            block.mode = "adapted"
            block.notes.append("scratch values exported after it (see the module docstring)")
            return (
                f"set -eo pipefail\n{text}\n{overrides}export -p > {shlex.quote(str(self.site))}\n"
            )
        return f"set -eo pipefail\n. {shlex.quote(str(self.site))}\n{text}"

    def run_block(self, block: Block) -> None:
        path = self.dir / "blocks" / f"{block.number:02d}.sh"
        path.parent.mkdir(exist_ok=True)
        block.mode = "ran"
        path.write_text(self.script(block))
        log = self.logs / f"block-{block.number:02d}.log"
        started = time.monotonic()
        if block.long_running:
            proc = subprocess.Popen(
                ["bash", "--noprofile", "--norc", str(path)],
                env=self.environment(),
                stdout=log.open("wb"),
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
            self.background[block.number] = proc
            block.mode, block.status = "background", f"pid {proc.pid}"
            time.sleep(1)
            self.check_background()
            return
        limit = 1200 if "make install" in block.text else 600
        proc = subprocess.Popen(
            ["bash", "--noprofile", "--norc", str(path)],
            env=self.environment(),
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            rc = proc.wait(limit)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            rc = -1
            block.notes.append(f"timed out after {limit} s")
        block.seconds = time.monotonic() - started
        block.status = str(rc)
        if rc != 0:
            raise CheckFailed(
                f"block {block.number} (deploy.md line {block.line}) exit {rc}:\n{tail(log)}"
            )
        self.check_background()

    def check_background(self) -> None:
        for number, proc in self.background.items():
            if number not in self.killed and proc.poll() is not None:
                log = self.logs / f"block-{number:02d}.log"
                raise CheckFailed(
                    f"block {number} (long-running) exited with {proc.returncode}:\n{tail(log)}"
                )

    def after(self, block: Block) -> None:
        """What the guide says to check by eye, checked."""
        assert self.relay
        if "orosflow mail test" in block.text:
            got = [m for m in self.relay.messages() if m["To"] == "drift@kommun.example.se"]
            if len(got) != 1 or got[0]["Subject"] != "Orosflow: testmeddelande":
                raise CheckFailed(f"the relay got {len(got)} test mails, expected 1")
            block.notes.append("the relay (STARTTLS + AUTH required) accepted the test mail")
        if "orosflow submit" in block.text and "receipt.json" in block.text:
            receipt = json.loads(self.shell('cat "$VAR_DIR/receipt.json"'))
            ref = receipt["reports"][0]["reference"]
            mails = self.mails_by_reference().get(ref, [])
            if len(mails) != 1:
                raise CheckFailed(f"the relay got {len(mails)} notifications for {ref}, expected 1")
            block.notes.append(f"the relay got exactly one notification for {ref}")

    # --- the worker-kill step -----------------------------------------------------------
    def shell(self, command: str, timeout: float = 300) -> str:
        out = subprocess.run(
            [
                "bash",
                "--noprofile",
                "--norc",
                "-c",
                f'set -eo pipefail; . {shlex.quote(str(self.site))}; set -a; . "$ETC_DIR/env";'
                f' set +a; cd "$OROSFLOW_HOME"; {command}',
            ],
            env=self.environment(),
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if out.returncode:
            raise CheckFailed(
                f"{command}: exit {out.returncode}\n{out.stdout[-2000:]}{out.stderr[-2000:]}"
            )
        return out.stdout

    def mails_by_reference(self) -> dict[str, set[str]]:
        assert self.relay
        found: dict[str, list[str]] = {}
        for path in sorted(self.relay.directory.glob("*.eml")):
            msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
            found.setdefault(str(msg["X-Orosflow-Reference"]), []).append(str(msg["Message-ID"]))
        return found  # type: ignore[return-value]

    def worker_kill(self, workers: list[int]) -> None:
        started = time.monotonic()
        n = self.args.reports
        refs: list[str] = []
        pids = {number: self.background[number].pid for number in workers}
        submit = f"for i in $(seq 1 {n}); do .venv/bin/orosflow submit examples/report.json; done"
        sub = subprocess.Popen(
            [
                "bash",
                "--noprofile",
                "--norc",
                "-c",
                f'set -eo pipefail; . {shlex.quote(str(self.site))}; set -a; . "$ETC_DIR/env";'
                f' set +a; cd "$OROSFLOW_HOME"; {submit}',
            ],
            env=self.environment(),
            stdout=subprocess.PIPE,
            stderr=(self.logs / "kill-submit.log").open("wb"),
            text=True,
        )
        # Kill the worker with the most flow runs in flight once it holds two (or, failing
        # that, at least one once every report is submitted).
        victim = None
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            running = {number: len(children_of(pid)) for number, pid in pids.items()}
            busiest = max(running, key=lambda k: running[k])
            if running[busiest] >= 2 or (sub.poll() is not None and running[busiest]):
                victim = busiest
                break
            time.sleep(0.3)
        if victim is None:
            raise CheckFailed("no flow run started within 10 minutes of the submissions")
        in_flight = running[victim]
        os.kill(pids[victim], signal.SIGKILL)  # the worker only, as `kill -9 <pid>`
        self.killed.add(victim)
        killed_at = time.monotonic()
        out, _ = sub.communicate(timeout=600)
        if sub.returncode:
            raise CheckFailed(f"submitting failed:\n{tail(self.logs / 'kill-submit.log')}")
        for receipt in re.findall(r"^\{.*?^\}", out, re.S | re.M):
            refs += [r["reference"] for r in json.loads(receipt)["reports"]]
        if len(refs) < n:
            raise CheckFailed(f"{len(refs)} references from {n} submissions:\n{out[-2000:]}")
        while time.monotonic() < killed_at + KILL_DEADLINE:
            mails = self.mails_by_reference()
            if all(mails.get(r) for r in refs):
                break
            time.sleep(1)
        mailed_after = time.monotonic() - killed_at
        time.sleep(10)  # a second mail would arrive now
        mails = self.mails_by_reference()
        counts = {r: len(mails.get(r, [])) for r in refs}
        ids = {r: len(set(mails.get(r, []))) for r in refs}
        note = (
            f"{n} reports; worker of block {victim} killed with {in_flight} run(s) in flight "
            f"({sum(running.values())} in all); mails per report {sorted(counts.values())}, "
            f"all within {mailed_after:.1f} s of the kill"
        )
        print("worker-kill step:", note, flush=True)
        status = "0"
        if any(c != 1 for c in counts.values()) or any(c != 1 for c in ids.values()):
            status = "1"
        elif mailed_after > KILL_DEADLINE:
            status = "1"
        self.extra.append(
            ("K", "kill -9 one worker, N reports", "ran", status, time.monotonic() - started)
        )
        self.kill_note = note
        if status != "0":
            raise CheckFailed(
                f"worker-kill step: {note}\n{tail(self.logs / f'block-{victim:02d}.log')}"
            )

    # --- clean-up -----------------------------------------------------------------------
    def cleanup(self) -> None:
        if self.relay:
            with contextlib.suppress(Exception):
                self.relay.stop()
        me = os.getpid()
        for sig in (signal.SIGTERM, signal.SIGKILL):
            pids = descendants(me)
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, sig)
            end = time.monotonic() + 15
            while time.monotonic() < end and any(alive(p) for p in descendants(me)):
                time.sleep(0.3)
            reap()
        sql = []
        for name in (f"prefect_{self.tag}", f"orosflow_{self.tag}"):
            sql += [
                f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)',
                f'DROP ROLE IF EXISTS "{name}"',
            ]
        for statement in sql:
            out = subprocess.run([*PG, "-c", statement], capture_output=True, text=True)
            if out.returncode:
                print(f"clean-up: {statement}: {out.stderr.strip()}", file=sys.stderr)
        if self.args.keep:
            print(f"scratch directory kept: {self.dir}")
        else:
            shutil.rmtree(self.dir, ignore_errors=True)


def reap() -> None:
    with contextlib.suppress(ChildProcessError):
        while os.waitpid(-1, os.WNOHANG)[0]:
            pass


def table(rows: list[tuple[str, str, str, str, float]]) -> str:
    head = "first line (after the settings and cd lines)"
    lines = [f"{'#':>3}  {head:<58}  {'how':<10}  {'exit':<10}  {'s':>6}"]
    for number, first, mode, status, seconds in rows:
        lines.append(f"{number:>3}  {first:<58}  {mode:<10}  {status:<10}  {seconds:6.1f}")
    return "\n".join(lines)


def main() -> int:
    # aiosmtpd 1.4 logs a warning about its own AUTH internals on every login.
    logging.getLogger("mail.log").setLevel(logging.ERROR)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keep", action="store_true", help="keep the scratch directory")
    parser.add_argument("--reports", type=int, default=5, help="reports for the worker-kill step")
    parser.add_argument("--guide", type=Path, default=GUIDE, help="another copy of the guide")
    args = parser.parse_args()

    def interrupted(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupted)
    become_subreaper()
    check = Check(args)
    todo = blocks(args.guide)
    t0 = time.monotonic()
    failure = None
    try:
        print(f"docs/deploy.md: {len(todo)} sh blocks; scratch directory {check.dir}", flush=True)
        check.clone()
        check.start_relay()
        for block in todo:
            print(
                f"[{time.monotonic() - t0:6.1f} s] block {block.number}: {block.first_line}",
                flush=True,
            )
            check.run_block(block)
            check.after(block)
        workers = [b.number for b in todo if "worker start" in b.text and b.long_running]
        if len(workers) < 2:
            raise CheckFailed(f"the guide starts {len(workers)} workers, the kill step needs 2")
        print(f"[{time.monotonic() - t0:6.1f} s] worker-kill step", flush=True)
        check.worker_kill(workers)
        check.check_background()
    except CheckFailed as exc:
        failure = str(exc)
    except KeyboardInterrupt:
        failure = "interrupted"
    finally:
        check.cleanup()
    rows = [(str(b.number), b.first_line, b.mode, b.status, b.seconds) for b in todo]
    print()
    print(table(rows + check.extra))
    for block in todo:
        for note in block.notes:
            print(f"  block {block.number}: {note}")
    if getattr(check, "kill_note", None):
        print(f"  worker-kill: {check.kill_note}")
    print(f"total {time.monotonic() - t0:.0f} s")
    if failure:
        print(f"\nFAILED: {failure}", file=sys.stderr)
        return 1
    print("docs/deploy.md: every block ran")
    return 0


if __name__ == "__main__":
    sys.exit(main())
