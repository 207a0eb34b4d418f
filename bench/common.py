"""What the benchmarks share: where things live, and timing one contender in a fresh process.

Each contender runs in its own subprocess. Its peak memory is read from /proc while it runs,
two ways:
- RSS: VmHWM, the high-water mark of its resident set, or the sum of VmRSS over it and its
  children for contenders that fork, whichever is larger. Not ru_maxrss: Linux carries the
  parent's resident size over fork and exec into the child's ru_maxrss, so a small child of a
  large parent would be reported as large as the parent.
- PSS: the sum of Pss (/proc/<pid>/smaps_rollup) over the process and its children: what the
  tree really holds in memory. A forked child shares its parent's pages until either writes
  them; the RSS sum counts each shared page once per process, PSS splits it between them.
CPU time comes from os.wait4.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
OUT = BENCH_DIR / "out"
LOGS = OUT / "logs"
# The interpreter that runs the benchmark (the project's venv) runs every contender too.
PYTHON = sys.executable
MIB = 1024 * 1024
POLL_SECONDS = 0.02


def _status_kib(pid: int, *fields: str) -> list[int]:
    values = dict.fromkeys(fields, 0)
    try:
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as status:
            for line in status:
                name, _, rest = line.partition(":")
                if name in values:
                    values[name] = int(rest.split()[0])
    except (OSError, ValueError, IndexError):
        pass
    return [values[name] for name in fields]


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children", encoding="ascii") as listing:
            return [int(child) for child in listing.read().split()]
    except (OSError, ValueError):
        return []


def _pss_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup", encoding="ascii", errors="replace") as rollup:
            for line in rollup:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


def tree_memory(pid: int) -> tuple[int, int]:
    """Bytes: (the larger of the process's own high-water mark and its tree's current resident
    sum, the tree's current proportional set size)."""
    high_water, resident = _status_kib(pid, "VmHWM", "VmRSS")
    proportional = _pss_kib(pid)
    pending = _children(pid)
    while pending:
        child = pending.pop()
        resident += _status_kib(child, "VmRSS")[0]
        proportional += _pss_kib(child)
        pending += _children(child)
    return max(high_water, resident) * 1024, proportional * 1024


def ensure_repo_on_path() -> None:
    """Scripts in bench/ are run by path, so the project's packages are not importable by default."""
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))


@dataclass
class Measurement:
    name: str
    posts: int
    wall: float  # seconds
    cpu: float  # user + system seconds of the process and the children it reaped
    peak_rss: int  # bytes
    peak_pss: int  # bytes
    exit_code: int
    log: str
    notes: dict = field(default_factory=dict)

    @property
    def posts_per_second(self) -> float:
        return self.posts / self.wall if self.wall > 0 else 0.0

    def as_dict(self) -> dict:
        return {**asdict(self), "posts_per_second": self.posts_per_second}


def run_measured(name: str, argv: list[str], *, posts: int, env: dict | None = None, timeout: float) -> Measurement:
    """Run one contender to its end; its output goes to bench/out/logs/<name>.log.

    A contender that outlives `timeout` seconds is killed (with its process group) and reported
    as failed, so a stuck run cannot hold a shared machine.
    """
    LOGS.mkdir(parents=True, exist_ok=True)
    log_path = LOGS / f"{name}.log"
    with log_path.open("wb") as log:
        began = time.perf_counter()
        process = subprocess.Popen(
            argv,
            cwd=REPO,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = began + timeout
        peak = peak_pss = 0
        while True:
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)
            if pid:
                break
            resident, proportional = tree_memory(process.pid)
            peak, peak_pss = max(peak, resident), max(peak_pss, proportional)
            if time.perf_counter() > deadline:
                os.killpg(process.pid, 9)
                pid, status, usage = os.wait4(process.pid, 0)
                break
            time.sleep(POLL_SECONDS)
        wall = time.perf_counter() - began
    process.returncode = os.waitstatus_to_exitcode(status)  # so Popen does not try to reap it again
    return Measurement(
        name=name,
        posts=posts,
        wall=wall,
        cpu=usage.ru_utime + usage.ru_stime,
        peak_rss=peak,
        peak_pss=peak_pss,
        exit_code=process.returncode,
        log=str(log_path.relative_to(REPO)),
    )


def tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def human_bytes(count: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(count) < 1024 or unit == "GiB":
            return f"{count:,.0f} {unit}" if unit == "B" else f"{count:,.1f} {unit}"
        count /= 1024
    return f"{count:,.1f} GiB"
