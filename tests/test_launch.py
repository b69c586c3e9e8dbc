"""deploy.launch: `streamlit run app.py` with the live page's imports warmed at server start."""

from __future__ import annotations

import subprocess
import sys

from core.paths import REPO_ROOT
from deploy.launch import WARM_MODULES


def test_warm_imports_reports_what_failed_and_keeps_going() -> None:
    code = (
        "import sys; from deploy.launch import warm_imports; "
        "failed = warm_imports(('no_such_module_for_moodlens', 'colorsys'), wait=False); "
        "print(failed, 'colorsys' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "['no_such_module_for_moodlens'] True"


def test_every_warmed_module_imports_outside_a_script_run() -> None:
    """What the thread imports must not need a running script (streamlit_webrtc declares a
    component on import, so it is not in the list)."""
    assert "streamlit_webrtc" not in WARM_MODULES
    code = "from deploy.launch import warm_imports; print(warm_imports(wait=False))"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    ).stdout
    assert out.strip().splitlines()[-1] == "[]"
