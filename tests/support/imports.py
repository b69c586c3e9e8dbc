"""What a fresh interpreter has imported after running a snippet (lazy-package checks)."""

from __future__ import annotations

import subprocess
import sys

from core.paths import REPO_ROOT

HEAVY_MODULES = ("tensorflow", "keras", "plotly", "pandas", "sklearn", "spotipy")


def heavy_modules_after(code: str, watch: tuple[str, ...] = HEAVY_MODULES) -> list[str]:
    """The modules of `watch` loaded once `code` has run in a new Python process."""
    probe = f"import sys\n{code}\nprint(sorted(m for m in {watch!r} if m in sys.modules))"
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, cwd=REPO_ROOT
    )
    assert result.returncode == 0, result.stderr
    return eval(result.stdout.strip().splitlines()[-1])  # a printed list of names
