"""`streamlit run app.py`, with the live page's heavy imports done while the server starts.

    python -m deploy.launch [streamlit run options]   # what `make run` and `make serve` run

Streamlit runs a page's script only once a browser has connected and loaded the frontend
(~1 s here); a fresh server then spends ~1 s importing pandas, SQLAlchemy, streamlit-webrtc,
aiortc, PyAV, OpenCV and plotly before the live page can show anything. Here a background thread
imports them as soon as the process starts, in parallel with the browser loading the frontend,
so the first page finds them in `sys.modules` (benchmarks/cold_start.py measures it). The
emotion model still loads in the background after the first page (app.py).
"""

from __future__ import annotations

import importlib
import logging
import sys
import threading
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
# What the live page and pages/common.py import, heaviest first (python -X importtime).
WARM_MODULES = (
    "pages.common",
    "aiortc",  # not streamlit_webrtc: a component must be declared in the script run
    "av",
    "core.vision.live",
    "core.vision.faces",
    "core.analytics.charts",
    "plotly.graph_objects",
)
_log = logging.getLogger(__name__)


def wait_for_server(timeout: float = 60.0) -> bool:
    """Block until Streamlit's runtime has started (components declared on import register
    with it, and importing now no longer slows the server's own start-up)."""
    import time

    from streamlit.runtime import Runtime
    from streamlit.runtime.runtime import RuntimeState

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if Runtime.exists() and Runtime.instance().state != RuntimeState.INITIAL:
            return True
        time.sleep(0.05)
    return False


def warm_imports(modules: tuple[str, ...] = WARM_MODULES, wait: bool = True) -> list[str]:
    """Import `modules` once the server runs; the ones that failed (the page imports them
    again and shows why)."""
    if wait and not wait_for_server():
        return list(modules)
    failed = []
    for name in modules:
        try:
            importlib.import_module(name)
        except Exception as error:  # a page imports it again and shows the error
            _log.debug("warm import of %s failed: %s", name, error)
            failed.append(name)
    return failed


def server_command(port: int, python: str = sys.executable, launcher: bool = True) -> list[str]:
    """The command line of a headless server on 127.0.0.1:`port` (no usage stats, no file
    watcher), as the Room's replicas and the tests start it. It starts through this launcher,
    as `make run` does; `launcher=False` runs plain `streamlit run app.py`."""
    start = ["-m", "deploy.launch"] if launcher else ["-m", "streamlit", "run", "app.py"]
    return [
        python, *start,
        "--server.port", str(port),
        "--server.address", "127.0.0.1",
        "--server.headless", "true",
        "--browser.gatherUsageStats", "false",
        "--server.fileWatcherType", "none",
    ]  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    if str(REPO_ROOT) not in sys.path:
        sys.path.insert(0, str(REPO_ROOT))
    threading.Thread(target=warm_imports, name="warm-imports", daemon=True).start()
    from streamlit.web import cli

    args = sys.argv[1:] if argv is None else argv
    sys.argv = ["streamlit", "run", str(REPO_ROOT / "app.py"), *args]
    cli.main()


if __name__ == "__main__":
    main()
