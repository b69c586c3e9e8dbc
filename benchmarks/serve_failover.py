"""Replica failover under load, in headless chromium; prints one JSON object.

    python benchmarks/serve_failover.py [--sessions 4] [--before 60] [--after 90] [--sample 5]
                                        [--store postgres|sqlite] [--out result.json]

`deploy.serve.Room`: 2 Streamlit replicas behind nginx, one feedback store (a throwaway
PostgreSQL from Debian's package, as several hosts would share; or the SQLite file). One
chromium with --sessions browser contexts (each its own cookies, so its own sticky route;
routes are picked so the sessions split evenly over the replicas), each on /live with the fake
camera (a 640x480 video of a real FER2013 face). Every session presses Start, waits for its first
label and gives its first song a thumbs-up (a vote; the songs panel records mood events by
itself). After --before s, one replica is SIGKILLed. For --after s every session is sampled:
analysed frames/s, whether it shows "Reconnecting your camera", its Start/Stop state.

Reported: per-session frames/s before and after the kill, the killed replica's sessions' time
to the reconnecting note and to their first label on the other replica, the surviving replica's
sessions' frames/s meanwhile (target >= 5), and the store's votes and mood events before and
after (every row written before the kill must still be there, and rows keep coming after).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.live_load import (
    CpuMeter,
    emit,
    fake_camera_video,
    read_page,
    webrtc_button,
)


def pick_routes(room, n: int) -> list[str]:
    """Route cookie values that put n sessions evenly on the room's replicas."""
    from deploy.serve import replica_for

    per = {r.address: [] for r in room.members}
    quota = -(-n // len(per))
    for i in range(200):
        route = f"viewer-{i}"
        replica = replica_for(room.url, route)
        if len(per[replica]) < quota:
            per[replica].append(route)
        if sum(map(len, per.values())) >= n:
            break
    return [route for routes in zip(*per.values(), strict=False) for route in routes][:n]


def count_rows(url: str) -> dict:
    """Ids of every vote and mood event in the store, and votes per profile."""
    from sqlalchemy import create_engine, select

    from core.music.store import mood_events, votes

    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return {
                "votes": sorted(conn.execute(select(votes.c.id)).scalars()),
                "mood_events": sorted(conn.execute(select(mood_events.c.id)).scalars()),
                "vote_profiles": sorted(conn.execute(select(votes.c.profile)).scalars()),
            }
    finally:
        engine.dispose()


def vote_first_song(page) -> bool:
    """Thumbs-up on the first song shown; False when no song is shown yet."""
    thumbs_up = page.get_by_role("radio", name="Thumbs up").first
    try:
        thumbs_up.wait_for(timeout=30_000)
        thumbs_up.click(timeout=10_000)
        return True
    except Exception:
        return False


def sample(pages, meter: CpuMeter, started: float) -> dict:
    row = {**meter.sample(), "t": round(time.monotonic() - started, 1), "sessions": []}
    for page in pages:
        state = read_page(page)
        row["sessions"].append({k: state[k] for k in ("fps", "label", "reconnecting", "button")})
    return row


def run(args: argparse.Namespace, work: Path, store_url: str, env: dict) -> dict:
    from deploy.serve import Room
    from tests.support.browser import chromium, free_port

    video = fake_camera_video(work / "camera.y4m")
    room = Room(
        replicas=2,
        port=free_port(),
        replica_ports=(free_port(), free_port()),
        runtime=work / "room",
        env=env,
        restart=False,
    )
    result: dict = {"sessions": args.sessions, "replicas": 2, "store": args.store}
    with room, chromium(video) as first_page:
        browser = first_page.context.browser
        routes = pick_routes(room, args.sessions)
        pages, serving = [], []
        for route in routes:
            context = browser.new_context(viewport={"width": 1400, "height": 1000})
            context.grant_permissions(["camera"])
            context.add_cookies([{"name": "moodlens_route", "value": route, "url": room.url}])
            page = context.new_page()
            reply = page.goto(f"{room.url}/live", wait_until="domcontentloaded")
            serving.append(reply.headers["x-moodlens-replica"])
            pages.append(page)
        result["replica_of_session"] = serving
        for i, page in enumerate(pages):
            webrtc_button(page, "Start").wait_for(timeout=120_000)
            profile = page.get_by_role("textbox", name="Profile")  # its own votes and moods
            profile.fill(f"viewer-{i}")
            profile.press("Enter")
        time.sleep(2)
        clicked = []
        for page in pages:
            webrtc_button(page, "Start").click(timeout=30_000)
            clicked.append(time.monotonic())
        first_label = [None] * len(pages)
        while None in first_label and time.monotonic() - clicked[0] < 90:
            for i, page in enumerate(pages):
                if first_label[i] is None and read_page(page)["label"]:
                    first_label[i] = round(time.monotonic() - clicked[i], 1)
            time.sleep(0.25)
        result["first_label_s"] = first_label
        result["voted_before_kill"] = [vote_first_song(page) for page in pages]

        meter = CpuMeter(room.members[0].process.pid)
        started = time.monotonic()
        before = []
        while time.monotonic() - started < args.before:
            time.sleep(args.sample)
            before.append(sample(pages, meter, started))
        rows_before = count_rows(store_url)

        victim = room.members[0]
        moved = [i for i, addr in enumerate(serving) if addr == victim.address]
        stayed = [i for i in range(len(pages)) if i not in moved]
        room.kill(victim.index)
        killed_at = time.monotonic()
        meter = CpuMeter(room.members[1].process.pid)  # the survivor's CPU from now on
        note_s = [None] * len(pages)
        back_s = [None] * len(pages)
        after = []
        next_sample = killed_at + args.sample
        while time.monotonic() - killed_at < args.after:
            for i in moved:
                state = read_page(pages[i])
                now = round(time.monotonic() - killed_at, 1)
                if note_s[i] is None and state["reconnecting"]:
                    note_s[i] = now
                if (
                    back_s[i] is None
                    and note_s[i] is not None
                    and state["label"]
                    and not state["reconnecting"]
                ):
                    back_s[i] = now
            if time.monotonic() >= next_sample:
                after.append(sample(pages, meter, killed_at))
                next_sample += args.sample
            time.sleep(0.25)
        result["voted_after_kill"] = [vote_first_song(pages[i]) for i in moved]
        time.sleep(2)
        rows_after = count_rows(store_url)
        result["samples_before_kill"] = before
        result["samples_after_kill"] = after
        result["killed_replica"] = victim.address
        result["moved_sessions"] = moved
        result["stayed_sessions"] = stayed
        result["reconnecting_note_s"] = [note_s[i] for i in moved]
        result["first_label_on_new_replica_s"] = [back_s[i] for i in moved]
        lost = {
            table: sorted(set(rows_before[table]) - set(rows_after[table]))
            for table in ("votes", "mood_events")
        }
        result["store"] = {
            "votes_before": len(rows_before["votes"]),
            "votes_after": len(rows_after["votes"]),
            "mood_events_before": len(rows_before["mood_events"]),
            "mood_events_after": len(rows_after["mood_events"]),
            "vote_profiles_before": rows_before["vote_profiles"],
            "vote_profiles_after": rows_after["vote_profiles"],
            "lost_rows": lost,
        }
        for i in moved:
            with contextlib.suppress(Exception):
                pages[i].screenshot(path=str(work / f"moved-session-{i}.png"))
    result["summary"] = summarise(result, args)
    return result


def _fps(rows: list[dict], sessions: list[int], since: float = 0.0) -> list[dict]:
    out = []
    for i in sessions:
        values = [r["sessions"][i]["fps"] or 0.0 for r in rows if r["t"] >= since]
        out.append(
            {
                "session": i,
                "min": min(values, default=None),
                "median": statistics.median(values) if values else None,
            }
        )
    return out


def summarise(result: dict, args: argparse.Namespace) -> dict:
    everyone = list(range(result["sessions"]))
    back = [s for s in result["first_label_on_new_replica_s"] if s is not None]
    settled = max(back, default=args.after) + args.sample
    store = result["store"]
    stayed_after = _fps(result["samples_after_kill"], result["stayed_sessions"])
    summary = {
        "fps_before_kill": _fps(result["samples_before_kill"], everyone),
        "fps_after_kill_surviving_replica": stayed_after,
        "fps_after_reconnect_moved_sessions": _fps(
            result["samples_after_kill"], result["moved_sessions"], since=settled
        ),
        "fps_after_reconnect_all_on_one_replica": _fps(
            result["samples_after_kill"], everyone, since=settled
        ),
    }
    summary["targets"] = {
        "moved_sessions_showed_reconnecting": all(
            s is not None for s in result["reconnecting_note_s"]
        ),
        "moved_sessions_came_back": len(back) == len(result["moved_sessions"]),
        "surviving_sessions_at_least_5_fps": all(
            s["min"] is not None and s["min"] >= 5 for s in stayed_after
        ),
        "no_row_lost": not any(store["lost_rows"].values()),
        "rows_keep_coming_after_kill": store["mood_events_after"] > store["mood_events_before"],
    }
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=4)
    parser.add_argument("--before", type=float, default=60.0, help="seconds before the kill")
    parser.add_argument("--after", type=float, default=90.0, help="seconds after the kill")
    parser.add_argument("--sample", type=float, default=5.0)
    parser.add_argument("--store", choices=("postgres", "sqlite"), default="postgres")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()

    from tests.support.browser import browser_or_exit

    browser_or_exit("serve_failover")
    work = Path(tempfile.mkdtemp(prefix="moodlens-failover-"))
    with contextlib.ExitStack() as stack:
        if args.store == "postgres":
            from tests.support.postgres import postgres_cluster

            cluster = stack.enter_context(postgres_cluster())
            url = cluster.create_database("failover")
            env = {"MOODLENS_DATABASE_URL": url}
        else:
            path = work / "feedback.sqlite3"
            url, env = f"sqlite:///{path}", {"MOODLENS_FEEDBACK_DB": str(path)}
        report = {
            "machine": {"cpus": os.cpu_count(), "note": "chromium runs on the same cores"},
            "command": "python benchmarks/serve_failover.py " + " ".join(sys.argv[1:]),
            **run(args, work, url, env),
        }
    emit(report, args.out)


if __name__ == "__main__":
    from core.training.guard import pause_training

    with pause_training():
        main()
