"""Keep a long training run from being starved: pause it while other heavy work runs.

    with pause_training():      # SIGSTOP every running `core.train`, SIGCONT on the way out
        run_the_benchmark()

On two cores anything heavy beside the ResNet50V2 run halves it; tests, benchmarks and pilots
wrap themselves in this so their numbers (and the run's) are measured on an idle CPU.
"""

from __future__ import annotations

import contextlib
import os
import signal
import tempfile
import time
from collections.abc import Iterator
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


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _other_pausers() -> list[int]:
    """Live processes other than this one that are inside a `pause_training` block."""
    others = []
    for marker in PAUSERS_DIR.glob("*"):
        pid = int(marker.name) if marker.name.isdigit() else 0
        if pid and pid != os.getpid() and _alive(pid):
            others.append(pid)
        elif pid != os.getpid():
            marker.unlink(missing_ok=True)  # left by a pauser that died
    return others


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
    marker.touch()
    for pid in training_pids():
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
            for pid in training_pids():
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGCONT)
