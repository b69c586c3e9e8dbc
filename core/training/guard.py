"""Keep a long training run from being starved: pause it while other heavy work runs.

    with pause_training():      # SIGSTOP every running `core.train`, SIGCONT on the way out
        run_the_benchmark()

On two cores anything heavy beside the ResNet50V2 run halves it; tests, benchmarks and pilots
wrap themselves in this so their numbers (and the run's) are measured on an idle CPU.

A pauser killed inside its block (SIGKILL, the OOM killer, a session ending) runs no `finally`:
a watchdog it starts beside itself (`python -m core.training.guard --watch ...`, in its own
session) sees it die and lets the trainings it stopped go on, unless another pauser is inside.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

TRAINING_MODULES = ("core.train", "core.training.train")


def _stat_after_name(pid: int) -> list[str] | None:
    """/proc/<pid>/stat's fields after the command name (state, parent pid, ...), or None."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def _ancestors(pid: int) -> set[int]:
    """`pid` and every process above it (so a run never pauses its own parent chain)."""
    seen = set()
    while pid > 1 and pid not in seen:
        seen.add(pid)
        fields = _stat_after_name(pid)
        if fields is None:
            break
        pid = int(fields[1])
    return seen


def training_pids() -> list[int]:
    """Processes running `python -m core.train ...` (none on systems without /proc)."""
    mine = _ancestors(os.getpid())
    pids = []
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        words = [a.decode(errors="replace") for a in argv if a]
        is_training = any(
            w == "-m" and i + 1 < len(words) and words[i + 1] in TRAINING_MODULES
            for i, w in enumerate(words)
        )
        if is_training and int(entry.name) not in mine:
            pids.append(int(entry.name))
    return sorted(pids)


PAUSERS_DIR = Path(tempfile.gettempdir()) / "moodlens-training-pausers"


class StopMeter:
    """How long this process has been stopped (a pauser's SIGSTOP): a daemon thread wakes every
    `tick` seconds, and a wake-up more than `slack` seconds late means no thread of the process
    ran meanwhile (a busy CPU delays a waking thread by milliseconds, not a second)."""

    def __init__(self, tick: float = 0.25, slack: float = 1.0) -> None:
        self.tick, self.slack = tick, slack
        self._stopped = 0.0
        self._lock = threading.Lock()
        threading.Thread(target=self._watch, name="stop-meter", daemon=True).start()

    def _watch(self) -> None:
        last = time.monotonic()  # system time: it runs on while the process is stopped
        while True:
            time.sleep(self.tick)
            now = time.monotonic()
            late = now - last - self.tick
            if late > self.slack:
                with self._lock:
                    self._stopped += late
            last = now

    @property
    def seconds(self) -> float:
        with self._lock:
            return self._stopped


_meter: StopMeter | None = None
_meter_lock = threading.Lock()


def stopped_seconds() -> float:
    """Seconds this process has spent stopped since the first call (which starts the meter)."""
    global _meter
    with _meter_lock:
        if _meter is None:
            _meter = StopMeter()
    return _meter.seconds


def _started(pid: int) -> str | None:
    """When `pid` started (clock ticks since boot, /proc/<pid>/stat field 22), or None when
    it is gone: with the pid it names one process, even after the pid is reused."""
    fields = _stat_after_name(pid)
    return fields[19] if fields is not None and len(fields) > 19 else None


def _alive(pid: int, started: str = "") -> bool:
    """Whether `pid` runs (and is the process that started at `started`, when given)."""
    if started:
        return _started(pid) == started
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _marker_started(marker: Path) -> str:
    try:
        return marker.read_text().strip()
    except OSError:
        return ""


def _other_pausers() -> list[int]:
    """Live processes other than this one that are inside a `pause_training` block."""
    others = []
    for marker in PAUSERS_DIR.glob("*"):
        pid = int(marker.name) if marker.name.isdigit() else 0
        if pid and pid != os.getpid() and _alive(pid, _marker_started(marker)):
            others.append(pid)
        elif pid != os.getpid():
            marker.unlink(missing_ok=True)  # left by a pauser that died
    return others


def _continue(pids: Sequence[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGCONT)


def _start_watchdog(paused: Sequence[int]) -> None:
    """A process, in a session of its own, that lets `paused` go on if this one dies inside
    its block (see `watch`)."""
    with contextlib.suppress(OSError):
        subprocess.Popen(
            [sys.executable, "-m", "core.training.guard", "--watch", str(os.getpid()),
             _started(os.getpid()) or "", *map(str, paused)],
            cwd=Path(__file__).resolve().parents[2],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True,
        )  # fmt: skip


def watch(pauser: int, started: str, paused: Sequence[int], poll: float = 0.5) -> None:
    """Wait while `pauser` (the process that started at `started`) is inside its block; if it
    died there (its marker is still on disk), let `paused` go on unless another pauser is in."""
    marker = PAUSERS_DIR / str(pauser)
    while marker.exists() and _alive(pauser, started):
        time.sleep(poll)
    if marker.exists():
        marker.unlink(missing_ok=True)
        if not _other_pausers():
            _continue(paused)


def _wait_until_stopped(pid: int, timeout: float = 2.0) -> bool:
    """Block until `pid` shows as stopped in /proc (True), or it exits, /proc is missing or
    `timeout` seconds pass (False)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        fields = _stat_after_name(pid)
        if fields is None:
            return False
        if fields[0] in ("T", "t"):
            return True
        time.sleep(0.01)
    return False


@contextlib.contextmanager
def pause_training(enabled: bool = True) -> Iterator[list[int]]:
    """SIGSTOP running trainings for the duration of the block; SIGCONT them after, unless
    another process (a test run beside a benchmark) is still inside its own pause."""
    paused: list[int] = []
    from core.settings import Settings

    if not (enabled and Settings.from_env().pause_training):
        yield paused
        return
    PAUSERS_DIR.mkdir(parents=True, exist_ok=True)
    marker = PAUSERS_DIR / str(os.getpid())
    marker.write_text(_started(os.getpid()) or "")
    targets = training_pids()
    if targets:  # first, so no moment passes where this process could die unwatched
        _start_watchdog(targets)
    for pid in targets:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGSTOP)
            paused.append(pid)
    for pid in paused:  # SIGSTOP lands asynchronously: measure only once it has
        _wait_until_stopped(pid)
    try:
        yield paused
    finally:
        marker.unlink(missing_ok=True)
        if not _other_pausers():  # the last pauser out lets the trainings go on
            _continue(training_pids())


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="the watchdog of a pause_training block")
    parser.add_argument("--watch", nargs="+", required=True, metavar="PID",
                        help="the pauser's pid, its start time, then the paused pids")  # fmt: skip
    pauser, started, *paused = parser.parse_args(argv).watch
    watch(int(pauser), started, [int(p) for p in paused])


if __name__ == "__main__":
    main()
