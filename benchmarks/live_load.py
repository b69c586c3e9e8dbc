"""Several viewers on the live page at once, in headless chromium; prints one JSON object.

    python benchmarks/live_load.py [--sessions 1 2 4] [--hold 90] [--sample 5] [--idle 20]
                                   [--fps 15] [--debug-log] [--out result.json]

For each N in --sessions: a fresh `streamlit run app.py`, one chromium whose fake camera plays
a 640x480 video of real FER2013 faces (tests/support/scenes.py), N tabs on /live. It measures
the open pages with no stream (--idle s), presses Start in every tab at once, holds the streams
for --hold s while sampling each page's text every --sample s ("N frames/s analysed", the
Start/Stop button), presses Stop (the Start button must come back), measures the idle pages
again, then presses Start once more (reconnect) and times the first label.

Reported per N: time to first label per session (from its Start click), analysed frames/s
per session over time, which sessions stopped on their own, reconnect times, the server's CPU
(% of one core) and RSS over time, the CPU of all chromium processes together and of the
whole machine (chromium runs on the same cores: it is part of the load, and the server's
share is what the app costs), and the issue's targets (4 sessions: none stops, each >= 5
analysed frames/s, RSS stable after the first minute, every first label within 10 s).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

FPS_RE = re.compile(r"([\d.]+) frames/s analysed")
LABEL_RE = re.compile(r"Detected: (\w+)")
IFRAME = 'iframe[title*="webrtc_streamer"]'
# Logs aiortc/aioice/streamlit-webrtc to the server log (they have no handler of their own):
# why a stream ended shows there (ICE state, consent, worker errors).
DEBUG_SITE = """
import logging, sys, threading
_h = logging.StreamHandler(sys.stderr)
_h.setFormatter(logging.Formatter("%(asctime)s %(threadName)s %(name)s %(levelname)s %(message)s"))
for _name, _level in (("streamlit_webrtc", "DEBUG"), ("aioice", "INFO"), ("aiortc", "INFO")):
    _log = logging.getLogger(_name)
    _log.setLevel(_level)
    _log.addHandler(_h)
    _log.propagate = False


def _probe():
    # Every 5 s: the event loop's worst lag, and the CPU of each kind of thread.
    import os, time
    from collections import defaultdict
    from streamlit.runtime import Runtime

    while not Runtime.exists():
        time.sleep(0.5)
    loop = Runtime.instance()._get_async_objs().eventloop
    tick = os.sysconf("SC_CLK_TCK")
    log = logging.getLogger("streamlit_webrtc.probe")
    last, worst = {}, 0.0
    while True:
        for _ in range(25):
            done = threading.Event()
            t0 = time.monotonic()
            loop.call_soon_threadsafe(done.set)
            done.wait(30)
            worst = max(worst, time.monotonic() - t0)
            time.sleep(0.2)
        names = {
            t.native_id: t.name.split("_")[0].rstrip("0123456789-") for t in threading.enumerate()
        }
        cpu = defaultdict(float)
        for task in os.listdir("/proc/self/task"):
            try:
                f = open(f"/proc/self/task/{task}/stat").read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            now = (int(f[11]) + int(f[12])) / tick
            tid = int(task)
            cpu[names.get(tid, "native")] += now - last.get(tid, 0.0)
            last[tid] = now
        top = sorted(cpu.items(), key=lambda kv: -kv[1])[:8]
        # UDP datagrams waiting in this process's sockets (bytes) and dropped so far.
        inodes = set()
        for fd in os.listdir("/proc/self/fd"):
            try:
                link = os.readlink(f"/proc/self/fd/{fd}")
            except OSError:
                continue
            if link.startswith("socket:["):
                inodes.add(link[8:-1])
        queued = drops = 0
        for table in ("/proc/net/udp", "/proc/net/udp6"):
            for line in open(table).read().splitlines()[1:]:
                cols = line.split()
                if cols[9] in inodes:
                    queued += int(cols[4].split(":")[1], 16)
                    drops += int(cols[12])
        log.warning("loop lag max %.3fs; udp queued %d B, dropped %d; thread CPU s/5s: %s",
                    worst, queued, drops, ", ".join(f"{k}={v:.2f}" for k, v in top))
        worst = 0.0


threading.Thread(target=_probe, daemon=True, name="probe").start()
"""


# ----------------------------------------------------------------------------- measuring


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of one process (psutil, else /proc/<pid>/stat)."""
    try:
        import psutil

        times = psutil.Process(pid).cpu_times()
        return times.user + times.system
    except ImportError:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _rss_mb(pid: int) -> float:
    try:
        import psutil

        return psutil.Process(pid).memory_info().rss / 2**20
    except ImportError:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def _chromium_cpu_seconds() -> float:
    """CPU seconds of every live chromium process started under this one (all its tabs,
    the GPU/video-capture/network services)."""
    import psutil

    total = 0.0
    for child in psutil.Process().children(recursive=True):
        try:
            if "chrom" in child.name():
                times = child.cpu_times()
                total += times.user + times.system
        except psutil.Error:
            continue
    return total


def _machine_busy_seconds() -> float:
    """Busy CPU seconds of the whole machine, all cores (everything but idle and iowait)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(fields) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


class CpuMeter:
    """CPU of the server, of chromium and of the machine between successive `sample()`s,
    in % of one core (200% = both cores of a 2-core machine)."""

    def __init__(self, server_pid: int) -> None:
        self.pid = server_pid
        self.start = time.monotonic()
        self._last = self._read()

    def _read(self) -> tuple[float, float, float, float]:
        return (
            time.monotonic(),
            _cpu_seconds(self.pid),
            _chromium_cpu_seconds(),
            _machine_busy_seconds(),
        )

    def sample(self) -> dict:
        now = self._read()
        dt = max(now[0] - self._last[0], 1e-6)
        # A chromium process that exited takes its CPU seconds with it: clamp at 0.
        server, browser, machine = (
            max(0.0, (b - a) / dt * 100) for a, b in zip(self._last[1:], now[1:], strict=True)
        )
        self._last = now
        return {
            "t": round(now[0] - self.start, 1),
            "server_cpu_pct": round(server, 1),
            "chromium_cpu_pct": round(browser, 1),
            "machine_cpu_pct": round(machine, 1),
            "server_rss_mb": round(_rss_mb(self.pid), 1),
        }


# ----------------------------------------------------------------------------- the pages


def fake_camera_video(path: Path, fps: int = 15, seconds: float = 8.0) -> Path:
    """A 640x480 .y4m of one real FER2013 face the detector finds, drifting a few pixels."""
    from core.paths import fer2013_npz
    from core.training.fer_data import load_fer
    from core.vision.faces import FaceBox, FaceDetector
    from tests.support.scenes import detectable_faces, layout, scene, write_y4m

    x, _ = load_fer(fer2013_npz()).get("test")
    pick = detectable_faces(x[:200], FaceDetector(), size=220, limit=1)[0]
    box = layout(1, 220)[0]
    frames = []
    for i in range(int(fps * seconds)):
        dx, dy = (i % 24) - 12 if (i // 24) % 2 == 0 else 12 - (i % 24), (i % 10) - 5
        frames.append(scene([x[pick]], [FaceBox(box.x + dx, box.y + dy, box.w, box.h)], seed=3))
    return write_y4m(frames, path, fps=fps)


def read_page(page) -> dict:
    """What one tab shows now: analysed frames/s, the label, and its Start/Stop button."""
    text = page.evaluate("document.body.innerText")
    fps = FPS_RE.search(text)
    label = LABEL_RE.search(text)
    button = None
    for name in ("Stop", "Start"):
        if webrtc_button(page, name).count():
            button = name
            break
    return {
        "fps": float(fps.group(1)) if fps else None,
        "label": label.group(1) if label else None,
        "looking": "Looking for a face" in text,
        "reconnecting": "Reconnecting your camera" in text,
        "button": button,
    }


def webrtc_button(page, name: str):
    return page.frame_locator(IFRAME).get_by_role("button", name=name)


def open_live_pages(context, url: str, n: int) -> list:
    pages = [context.pages[0]] + [context.new_page() for _ in range(n - 1)]
    for page in pages:
        page.goto(f"{url}/live", wait_until="domcontentloaded")
    for page in pages:
        webrtc_button(page, "Start").wait_for(timeout=120_000)
    return pages


def wait_for_labels(pages, clicked: list[float], timeout: float) -> dict:
    """Seconds from each tab's Start click to its Stop button (the stream connected) and to its
    first 'Detected: <emotion>'."""
    playing: list[float | None] = [None] * len(pages)
    panel: list[float | None] = [None] * len(pages)
    first: list[float | None] = [None] * len(pages)
    deadline = time.monotonic() + timeout
    while any(f is None for f in first) and time.monotonic() < deadline:
        for i, page in enumerate(pages):
            if first[i] is not None:
                continue
            state = read_page(page)
            now = round(time.monotonic() - clicked[i], 1)
            if playing[i] is None and state["button"] == "Stop":
                playing[i] = now
            if panel[i] is None and state["fps"] is not None:
                panel[i] = now  # the page polls the stream: it knows the stream plays
            if state["label"]:
                first[i] = now
        time.sleep(0.25)
    return {"stop_button_s": playing, "panel_s": panel, "first_label_s": first}


def idle_cpu(meter: CpuMeter, seconds: float) -> dict | None:
    """Server CPU with the pages open and no stream running."""
    if seconds <= 0:
        return None
    # First let the server settle (a fresh one loads the emotion model in the background for
    # ~5 s after its first page): idle means nobody streams and nothing is loading.
    settle = time.monotonic()
    meter.sample()
    while time.monotonic() - settle < 30:
        time.sleep(1.0)
        if meter.sample()["server_cpu_pct"] < 5:
            break
    meter.sample()
    time.sleep(seconds)
    sample = meter.sample()
    return {
        "seconds": seconds,
        "settled_after_s": round(time.monotonic() - settle - seconds, 1),
        **{k: v for k, v in sample.items() if k != "t"},
    }


# ----------------------------------------------------------------------------- one run


def run_sessions(n: int, args: argparse.Namespace, video: Path, work: Path) -> dict:
    from tests.support.browser import app_server, chromium

    env = {"MOODLENS_FEEDBACK_DB": str(work / f"feedback-{n}.sqlite3")}
    if args.debug_log:
        site = work / "site"
        site.mkdir(exist_ok=True)
        (site / "sitecustomize.py").write_text(DEBUG_SITE)
        env["PYTHONPATH"] = os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])
    log_path = work / f"server-{n}.log"
    result: dict = {"sessions": n, "hold_s": args.hold, "server_log": str(log_path)}
    with app_server(env, log_path) as (url, server), chromium(video) as first_page:
        meter = CpuMeter(server.pid)
        pages = open_live_pages(first_page.context, url, n)
        result["idle_before_start"] = idle_cpu(meter, args.idle)

        clicked = []
        for page in pages:
            webrtc_button(page, "Start").click(timeout=30_000)
            clicked.append(time.monotonic())
        start = clicked[0]
        started = wait_for_labels(pages, clicked, timeout=min(90, args.hold + 30))
        result["first_label_s"] = started["first_label_s"]
        result["stop_button_s"] = started["stop_button_s"]
        result["panel_s"] = started["panel_s"]

        samples, stopped_at = [], [None] * n
        meter.sample()
        while time.monotonic() - start < args.hold:
            time.sleep(max(0.0, min(args.sample, args.hold - (time.monotonic() - start))))
            row = {**meter.sample(), "t": round(time.monotonic() - start, 1), "sessions": []}
            for i, page in enumerate(pages):
                state = read_page(page)
                row["sessions"].append({"fps": state["fps"], "button": state["button"]})
                if state["button"] == "Start" and stopped_at[i] is None:
                    stopped_at[i] = row["t"]  # it stopped by itself: nobody pressed Stop
            samples.append(row)
            print(json.dumps(row), file=sys.stderr, flush=True)
        result["samples"] = samples
        result["stopped_by_itself_at_s"] = stopped_at

        # Stop every stream: the Start button must come back, and the server go quiet.
        stop_s: list[float | str] = []
        for i, page in enumerate(pages):
            t0 = time.monotonic()
            try:
                if read_page(page)["button"] == "Stop":
                    webrtc_button(page, "Stop").click(timeout=30_000)
                webrtc_button(page, "Start").wait_for(timeout=30_000)
                page.get_by_text(re.compile(r"Press \*?\*?Start")).first.wait_for(timeout=30_000)
                stop_s.append(round(time.monotonic() - t0, 1))
            except Exception as error:  # report it with what the page shows, and go on
                stop_s.append(f"{type(error).__name__}: {read_page(page)}")
                page.screenshot(path=str(work / f"stop-{n}-{i}.png"))
        result["stop_s"] = stop_s
        result["idle_after_stop"] = idle_cpu(meter, args.idle)

        # Reconnect: Start again in every tab, time the first label.
        clicked = []
        for page in pages:
            with contextlib.suppress(Exception):  # a tab that did not stop is reported below
                webrtc_button(page, "Start").click(timeout=30_000)
            clicked.append(time.monotonic())
        result["reconnect_first_label_s"] = wait_for_labels(pages, clicked, 60)["first_label_s"]
        time.sleep(min(10.0, args.sample * 2))
        result["after_reconnect"] = [read_page(page) for page in pages]
        result["after_reconnect_cpu"] = meter.sample()
    result["summary"] = summarise(result)
    return result


def summarise(result: dict) -> dict:
    n = result["sessions"]
    firsts = result["first_label_s"]
    labelled_at = max((f for f in firsts if f is not None), default=0.0)
    # Frames/s once every stream had its first label (the start-up ramp is reported above).
    steady = [row for row in result["samples"] if row["t"] >= labelled_at + 5]
    per_session = []
    for i in range(n):
        values = [row["sessions"][i]["fps"] or 0.0 for row in steady]
        per_session.append(
            {
                "min": min(values, default=None),
                "median": statistics.median(values) if values else None,
            }
        )
    rss = [row["server_rss_mb"] for row in result["samples"]]
    after_minute = [row["server_rss_mb"] for row in result["samples"] if row["t"] >= 60]
    server = [row["server_cpu_pct"] for row in steady]
    browser = [row["chromium_cpu_pct"] for row in steady]
    machine = [row["machine_cpu_pct"] for row in steady]
    stopped = [t for t in result["stopped_by_itself_at_s"] if t is not None]
    summary = {
        "stopped_by_itself": len(stopped),
        "analysed_fps_per_session": per_session,
        "server_cpu_pct_median": statistics.median(server) if server else None,
        "chromium_cpu_pct_median": statistics.median(browser) if browser else None,
        "machine_cpu_pct_median": statistics.median(machine) if machine else None,
        "server_rss_mb_first_last_max": [rss[0], rss[-1], max(rss)] if rss else None,
        "server_rss_growth_after_first_minute_mb": (
            round(after_minute[-1] - after_minute[0], 1) if len(after_minute) > 1 else None
        ),
    }
    mins = [s["min"] for s in per_session]
    summary["targets"] = {
        "none_stops": not stopped,
        "each_at_least_5_fps": bool(mins) and all(m is not None and m >= 5 for m in mins),
        "first_labels_within_10_s": all(f is not None and f <= 10 for f in firsts),
        "rss_stable_after_first_minute": (
            summary["server_rss_growth_after_first_minute_mb"] is not None
            and summary["server_rss_growth_after_first_minute_mb"] < 50
        ),
    }
    return summary


def emit(report: dict, out: Path | None) -> None:
    """Print the report as JSON (and write it to `out` when given)."""
    text = json.dumps(report, indent=1)
    if out:
        out.write_text(text)
    print(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--hold", type=float, default=90.0, help="seconds of streaming")
    parser.add_argument("--sample", type=float, default=5.0, help="seconds between samples")
    parser.add_argument("--idle", type=float, default=20.0, help="seconds of idle-page CPU")
    parser.add_argument("--fps", type=int, default=15, help="the fake camera's frame rate")
    parser.add_argument("--debug-log", action="store_true", help="aiortc/webrtc to the log")
    parser.add_argument("--keep", action="store_true", help="keep the server logs")
    parser.add_argument("--out", type=Path, help="also write the JSON here")
    args = parser.parse_args()

    from tests.support.browser import browser_or_exit

    browser_or_exit("live_load")
    work = Path(tempfile.mkdtemp(prefix="moodlens-live-load-"))
    video = fake_camera_video(work / "camera.y4m", fps=args.fps)
    report = {
        "machine": {"cpus": os.cpu_count(), "note": "chromium runs on the same cores"},
        "fake_camera": {"size": "640x480", "fps": args.fps},
        "runs": [run_sessions(n, args, video, work) for n in args.sessions],
    }
    video.unlink()
    if not args.keep:
        for log in work.glob("server-*.log"):
            log.unlink()
    emit(report, args.out)


if __name__ == "__main__":
    from core.training.guard import pause_training

    with pause_training():
        main()
