"""Where the repo's files live, and where the read-only shared data sits beside it."""

from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
MODELS_DIR = REPO_ROOT / "models"
DATA_DIR = REPO_ROOT / "data"
RUNS_DIR = REPO_ROOT / "runs"
# What benchmarks/ scripts measured (JSON), and the progress records of runs still training.
BENCHMARK_RESULTS_DIR = REPO_ROOT / "benchmarks" / "results"
STARTER_CATALOG = DATA_DIR / "starter_catalog.csv"
DEFAULT_SHARED_DATA = REPO_ROOT.parent / "shared" / "data"


def shared_data_dir() -> Path:
    """The shared data folder (`MOODLENS_SHARED_DATA`, else `../shared/data` beside the repo)."""
    from core.settings import Settings  # settings imports this module: import at call time

    return Settings.from_env().shared_data or DEFAULT_SHARED_DATA


def fer2013_npz() -> Path:
    """Path of the shared FER2013 arrays (may not exist on a user's machine)."""
    return shared_data_dir() / "fer2013" / "fer2013.npz"
