"""Cold start of the live page: server start to the Start button in chromium; prints JSON.

    python benchmarks/cold_start.py [--runs 3] [--label] [--returning] [--compare-plain]

Each run starts a fresh server (a new process: nothing cached) while a headless chromium is
already up, opens /live as soon as the server answers, and times, from the process start:
the health endpoint answering, the page rendered (its title and the camera panel), the WebRTC
component's frame attached, its Start button showing, and (with --label) the first
'Detected: <emotion>' after pressing Start at once (the model must be loaded by then).
Every server gets a new port, so the browser's cache is cold each time (a first visit);
`--returning` serves every run on one port and visits once before the runs, as a viewer
who opened the app before (the browser's HTTP and compiled-code caches are warm).
Starts the server as `make run` does (`python -m deploy.launch`); `--compare-plain` alternates
each run with one started as plain `streamlit run app.py`. Reports every run and the medians.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


IFRAME = 'iframe[title*="webrtc_streamer"]'


def one_start(
    page, work: Path, index: int, label: bool, port: int | None = None, launcher: bool = True
) -> dict:
    from tests.support.browser import app_server, wait_until_healthy

    env = {"MOODLENS_FEEDBACK_DB": str(work / f"feedback-{index}.sqlite3")}
    t0 = time.monotonic()
    with app_server(
        env, work / f"server-{index}.log", ready=False, port=port, launcher=launcher
    ) as (
        url,
        process,
    ):
        wait_until_healthy(url, process, interval=0.05)
        row = {"health_s": round(time.monotonic() - t0, 2)}
        page.goto(f"{url}/live", wait_until="domcontentloaded")
        page.get_by_text("Frames are analysed in memory").first.wait_for(timeout=120_000)
        row["page_rendered_s"] = round(time.monotonic() - t0, 2)
        page.locator(IFRAME).wait_for(state="attached", timeout=120_000)
        row["component_frame_s"] = round(time.monotonic() - t0, 2)
        start = page.frame_locator(IFRAME).get_by_role("button", name="Start")
        start.wait_for(timeout=120_000)
        row["start_button_s"] = round(time.monotonic() - t0, 2)
        if label:
            start.click()
            page.get_by_text(re.compile(r"Detected: \w+")).first.wait_for(timeout=120_000)
            row["first_label_s"] = round(time.monotonic() - t0, 2)
        page.goto("about:blank")
    return row


def medians(runs: list[dict]) -> dict:
    return {f"median_{key}": round(statistics.median(r[key] for r in runs), 2) for key in runs[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--label", action="store_true", help="also time the first label")
    parser.add_argument(
        "--returning", action="store_true", help="one origin for every run, visited once before"
    )
    parser.add_argument(
        "--compare-plain",
        action="store_true",
        help="alternate each run with one started as plain `streamlit run app.py`",
    )
    args = parser.parse_args()

    from benchmarks.live_load import fake_camera_video
    from tests.support.browser import browser_or_exit, chromium, free_port

    browser_or_exit("cold_start")
    work = Path(tempfile.mkdtemp(prefix="moodlens-cold-start-"))
    video = fake_camera_video(work / "camera.y4m", seconds=4) if args.label else None
    with chromium(video) as page:
        page.goto("about:blank")
        port = free_port() if args.returning else None
        if port:
            one_start(page, work, -1, args.label, port)  # the earlier visit: fills the caches
        runs, plain = [], []
        for i in range(args.runs):  # alternated, so both see the same machine and browser
            runs.append(one_start(page, work, i, args.label, port))
            if args.compare_plain:
                plain.append(one_start(page, work, 100 + i, args.label, port, launcher=False))
    report = {
        "command": "python benchmarks/cold_start.py " + " ".join(sys.argv[1:]),
        "browser_cache": "warm (a returning viewer)" if port else "cold (a first visit)",
        "started_with": "python -m deploy.launch (make run)",
        "runs": runs,
        **medians(runs),
    }
    if plain:
        report["plain_streamlit_run"] = {"runs": plain, **medians(plain)}
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    from core.training.guard import pause_training

    with pause_training():
        main()
