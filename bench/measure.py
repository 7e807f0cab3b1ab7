"""Run a command in a child process and measure its wall time and peak resident memory.

Peak RSS comes from ``wait4``'s resource usage, the kernel's high-water mark of the child and of
every descendant it waited for, so a driver that forks (fastText training, tokenizers' threads)
is measured whole. The child runs in its own session so that a timeout stops its whole tree.
"""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

POLL_SECONDS = 0.2
TAIL_CHARS = 2_000


@dataclass(frozen=True, kw_only=True)
class Measured:
    """What a child process did.

    Attributes:
        returncode: exit status (negative: killed by that signal).
        seconds: wall time from start to exit.
        peak_rss_mb: the kernel's peak resident set size of the child tree, in MiB.
        cpu_seconds: user + system CPU time of the child tree (comparable under load, unlike
            wall time).
        stdout: everything the child printed on stdout.
        stderr_tail: the last characters of its stderr (the whole of it is in the log file).
        timed_out: the child was stopped after ``timeout`` seconds.
    """

    returncode: int
    seconds: float
    peak_rss_mb: float
    stdout: str
    cpu_seconds: float = 0.0
    stderr_tail: str
    timed_out: bool = False

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out

    def error(self, what: str) -> str | None:
        """None when the child succeeded, else one paragraph naming ``what`` failed and why."""
        if self.ok:
            return None
        if self.timed_out:
            return f"{what} timed out after {self.seconds:.0f} s"
        last = [line for line in self.stderr_tail.splitlines() if line.strip()]
        return f"{what} exited with status {self.returncode}: " + (last[-1] if last else "")


def run_measured(
    cmd: Sequence[str],
    *,
    log: Path,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float | None = None,
    nice: int = 0,
) -> Measured:
    """Run ``cmd``, stderr appended to ``log``; return its exit status, time and peak RSS.

    Args:
        cmd: the program and its arguments.
        log: file the child's stderr goes to (created; parent directories too).
        env: the child's environment (default: ours).
        cwd: the child's working directory.
        timeout: seconds after which the child's session is killed.
        nice: niceness added to the child.
    """
    log.parent.mkdir(parents=True, exist_ok=True)
    out_path = log.with_suffix(".stdout")
    started = time.perf_counter()
    with log.open("w", encoding="utf-8") as err, out_path.open("w", encoding="utf-8") as out:
        proc = subprocess.Popen(
            ["nice", "-n", str(nice), *cmd] if nice else list(cmd),  # nice execs: same pid
            stdout=out,
            stderr=err,
            env=dict(env) if env is not None else None,
            cwd=cwd,
            start_new_session=True,
        )
        status, rusage, timed_out = _wait(proc, started, timeout)
    seconds = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)  # wait4 reaped it: tell Popen
    return Measured(
        returncode=proc.returncode,
        seconds=seconds,
        peak_rss_mb=rusage.ru_maxrss / 1024,  # Linux reports KiB
        cpu_seconds=rusage.ru_utime + rusage.ru_stime,
        stdout=out_path.read_text(encoding="utf-8", errors="replace"),
        stderr_tail=_tail(log),
        timed_out=timed_out,
    )


def _wait(
    proc: subprocess.Popen[bytes], started: float, timeout: float | None
) -> tuple[int, resource.struct_rusage, bool]:
    timed_out = False
    while True:
        pid, status, rusage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            return status, rusage, timed_out
        if timeout is not None and not timed_out and time.perf_counter() - started > timeout:
            timed_out = True
            os.killpg(proc.pid, signal.SIGKILL)
        time.sleep(POLL_SECONDS)


def _tail(path: Path) -> str:
    text = path.read_text(encoding="utf-8", errors="replace")
    return text[-TAIL_CHARS:]
