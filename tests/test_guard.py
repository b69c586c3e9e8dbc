"""core.training.guard: benchmarks and tests pause a running training, and the last one out
resumes it (two pausers at once must not wake it early)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from core.training import guard
from core.training.guard import training_pids


def _state(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


@pytest.fixture
def fake_training(tmp_path, monkeypatch):
    """A process whose command line is `python -m core.train ...` (it only sleeps)."""
    if not Path("/proc").exists():
        pytest.skip("needs /proc (Linux)")
    monkeypatch.delenv("MOODLENS_NO_PAUSE", raising=False)
    package = tmp_path / "core"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "train.py").write_text("import time\ntime.sleep(60)\n")
    process = subprocess.Popen(
        [sys.executable, "-m", "core.train", "--resume", "runs/x"], cwd=tmp_path
    )
    for _ in range(50):
        if process.pid in training_pids():
            break
        time.sleep(0.1)
    # Only this fake is paused: a real run training beside the tests stays in conftest's hands.
    monkeypatch.setattr(guard, "training_pids", lambda: [process.pid])
    yield process.pid
    process.kill()
    process.wait()


def test_a_training_is_paused_inside_the_block_and_resumed_after(fake_training):
    assert fake_training in training_pids()
    with guard.pause_training() as paused:
        assert fake_training in paused
        assert _state(fake_training) == "T"
    assert _state(fake_training) in "SR"


def test_the_last_pauser_out_resumes_the_training(fake_training, tmp_path):
    holder = subprocess.Popen(
        [sys.executable, "-c", "import time\nfrom core.training import guard\n"
         f"guard.training_pids = lambda: [{fake_training}]\n"
         "with guard.pause_training():\n    print('paused', flush=True)\n    time.sleep(3)\n"],
        stdout=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parents[1],
    )  # fmt: skip
    assert holder.stdout.readline().strip() == "paused"
    with guard.pause_training():
        assert _state(fake_training) == "T"
    assert _state(fake_training) == "T"  # the other pauser is still measuring
    holder.wait(timeout=30)
    assert _state(fake_training) in "SR"


def test_a_pauser_killed_inside_its_block_does_not_leave_the_training_stopped(
    fake_training, tmp_path
):
    env = {**os.environ, "TMPDIR": str(tmp_path)}  # its own markers: not this test run's pause
    holder = subprocess.Popen(
        [sys.executable, "-c", "import time\nfrom core.training import guard\n"
         f"guard.training_pids = lambda: [{fake_training}]\n"
         "with guard.pause_training():\n    print('paused', flush=True)\n    time.sleep(60)\n"],
        stdout=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parents[1], env=env,
    )  # fmt: skip
    assert holder.stdout.readline().strip() == "paused"
    assert _state(fake_training) == "T"
    holder.kill()  # SIGKILL: no finally runs
    holder.wait(timeout=10)
    for _ in range(100):  # the watchdog polls twice a second
        if _state(fake_training) in "SR":
            break
        time.sleep(0.1)
    assert _state(fake_training) in "SR"
    assert not list((tmp_path / "moodlens-training-pausers").glob("*"))  # its marker cleared


def test_a_marker_whose_pid_now_names_another_process_is_not_a_pauser(tmp_path, monkeypatch):
    monkeypatch.setattr(guard, "PAUSERS_DIR", tmp_path)
    parent = os.getppid()  # alive, but not the process that wrote the marker
    (tmp_path / str(parent)).write_text("1")  # started one tick after boot: someone else
    (tmp_path / "1").write_text(guard._started(1) or "")  # a live pauser, really
    assert guard._other_pausers() == [1]
    assert not (tmp_path / str(parent)).exists()


def test_the_stop_meter_counts_the_time_a_process_spent_stopped():
    probe = subprocess.Popen(
        [sys.executable, "-c", "import time\nfrom core.training.guard import stopped_seconds\n"
         "stopped_seconds()\nprint('ready', flush=True)\ntime.sleep(4)\n"
         "print(stopped_seconds(), flush=True)\n"],
        stdout=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parents[1],
    )  # fmt: skip
    assert probe.stdout.readline().strip() == "ready"
    time.sleep(0.5)
    os.kill(probe.pid, signal.SIGSTOP)
    time.sleep(2.0)
    os.kill(probe.pid, signal.SIGCONT)
    stopped = float(probe.stdout.readline())
    probe.wait(timeout=10)
    assert 1.5 < stopped < 2.5  # the two seconds stopped, not the four it ran
