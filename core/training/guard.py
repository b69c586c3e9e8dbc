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
from collections.abc import Iterator
from pathlib import Path

TRAINING_MODULES = ("core.train", "core.training.train")


def _ancestors(pid: int) -> set[int]:
    """`pid` and every process above it (so a run never pauses its own parent chain)."""
    seen = set()
    while pid > 1 and pid not in seen:
        seen.add(pid)
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            break
        pid = int(stat.rsplit(")", 1)[1].split()[1])
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


@contextlib.contextmanager
def pause_training(enabled: bool = True) -> Iterator[list[int]]:
    """SIGSTOP running trainings for the duration of the block; always SIGCONT them after."""
    paused: list[int] = []
    from core.settings import Settings

    if enabled and Settings.from_env().pause_training:
        for pid in training_pids():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGSTOP)
                paused.append(pid)
    try:
        yield paused
    finally:
        for pid in paused:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGCONT)
