"""A room (deploy/serve.py): nginx over real Streamlit replicas, sticky sessions, WebSocket
upgrade, failover to a live replica, and coturn relaying only for the app's credentials."""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
import urllib.request
from pathlib import Path

import pytest

from core.settings import Settings
from deploy.serve import Room, ServeError, render_nginx_conf, start_turnserver
from tests.support.browser import free_port
from tests.support.tools import tool_missing


def _require(binary: str, package: str) -> None:
    if shutil.which(binary) is None and not Path(f"/usr/sbin/{binary}").exists():
        tool_missing(f"{binary} is not installed (make test installs Debian's {package} as root)")


def _get(url: str, route: str | None = None) -> tuple[int, str, str | None]:
    """(status, the replica nginx chose, the route cookie it set) for one request."""
    headers = {"Cookie": f"moodlens_route={route}"} if route else {}
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=10) as reply:
        cookie = reply.headers.get("Set-Cookie", "")
        value = cookie.split(";")[0].split("=", 1)[1] if "moodlens_route=" in cookie else None
        return reply.status, reply.headers["X-Moodlens-Replica"], value


@pytest.fixture(scope="module")
def room(tmp_path_factory):
    _require("nginx", "nginx-light")
    runtime = tmp_path_factory.mktemp("room")
    with Room(
        replicas=2,
        port=free_port(),
        replica_ports=(free_port(), free_port()),
        runtime=runtime,
        env={"MOODLENS_FEEDBACK_DB": str(runtime / "feedback.sqlite3")},
        restart=False,
    ) as started:
        yield started


def test_nginx_accepts_the_rendered_config_for_any_number_of_replicas(tmp_path):
    _require("nginx", "nginx-light")
    conf = tmp_path / "nginx.conf"
    conf.write_text(render_nginx_conf("127.0.0.1:18080", [18601, 18602, 18603], tmp_path))
    text = conf.read_text()
    # The route-hash group, and each replica's own group with the other two as its backups.
    assert text.count("server 127.0.0.1:186") == 3 + 3 * 3 and text.count(" backup;") == 3 * 2
    assert not re.search(r"@[A-Z_]+@", text)  # every placeholder filled
    check = subprocess.run(
        ["nginx", "-t", "-p", str(tmp_path), "-c", str(conf)], capture_output=True, text=True
    )
    assert check.returncode == 0, check.stderr


def test_a_browser_sticks_to_one_replica_and_browsers_spread_over_both(room):
    status, first, route = _get(f"{room.url}/")
    assert status == 200 and route  # a first visit gets a route id
    for _ in range(5):  # its page, scripts and health checks all reach the same replica
        assert _get(f"{room.url}/_stcore/health", route)[1] == first
    replicas = {_get(f"{room.url}/_stcore/health", f"viewer-{i}")[1] for i in range(16)}
    assert replicas == {r.address for r in room.members}


def test_the_session_websocket_is_upgraded_through_nginx_to_the_sticky_replica(room):
    from tornado.httpclient import HTTPRequest
    from tornado.websocket import websocket_connect

    route = "viewer-ws"
    replica = _get(f"{room.url}/_stcore/health", route)[1]

    async def handshake() -> tuple[int, str]:
        request = HTTPRequest(
            room.url.replace("http", "ws") + "/_stcore/stream",
            headers={"Cookie": f"moodlens_route={route}", "Origin": room.url},
        )
        connection = await websocket_connect(request, subprotocols=["streamlit"])
        try:
            return connection.headers.get("X-Moodlens-Replica"), connection.selected_subprotocol
        finally:
            connection.close()

    answered_by, protocol = asyncio.run(asyncio.wait_for(handshake(), 20))
    assert answered_by == replica
    assert protocol == "streamlit"


def _visit(url: str, cookies: dict[str, str]) -> tuple[str, dict[str, str]]:
    """One request of a browser holding `cookies`: (the replica that answered, the browser's
    cookies after it)."""
    header = "; ".join(f"{name}={value}" for name, value in cookies.items())
    request = urllib.request.Request(url, headers={"Cookie": header} if header else {})
    with urllib.request.urlopen(request, timeout=10) as reply:
        pairs = (c.split(";")[0].split("=", 1) for c in reply.headers.get_all("Set-Cookie") or [])
        answered = reply.headers["X-Moodlens-Replica"].split(",")[-1].strip()
        return answered, {**cookies, **dict(pairs)}


def test_a_killed_replica_fails_over_and_its_viewers_stay_where_they_moved(room):
    # Last in the module: it kills a replica of the shared room.
    health = f"{room.url}/_stcore/health"
    before, cookies = _visit(health, {})
    assert cookies["moodlens_replica"] == before and cookies["moodlens_route"]
    dead = next(r for r in room.members if r.address == before)
    room.kill(dead.index)
    after, cookies = _visit(health, cookies)
    assert after != before  # answered by the other replica, which holds the session now
    assert cookies["moodlens_replica"] == after
    room.restart = True
    assert room.supervise_once() == [dead.index]
    room.wait_healthy(dead)
    assert dead.restarts == 1 and dead.alive()
    # Back up, the old replica does not get this viewer's requests again (its uploads would
    # reach a server without its session); a new viewer can still land on it.
    for _ in range(3):
        assert _visit(health, cookies)[0] == after
    assert before in {_visit(health, {"moodlens_route": f"new-{i}"})[0] for i in range(16)}


async def _gather_candidates(port: int, username: str, password: str) -> list[str]:
    import aioice

    connection = aioice.Connection(
        ice_controlling=True,
        turn_server=("127.0.0.1", port),
        turn_username=username,
        turn_password=password,
        turn_transport="udp",
        use_ipv6=False,
    )
    try:
        await asyncio.wait_for(connection.gather_candidates(), 15)
        return [candidate.type for candidate in connection.local_candidates]
    finally:
        await connection.close()


def test_a_failed_coturn_start_is_not_taken_for_the_last_good_one(tmp_path, monkeypatch):
    """The log is appended to: the previous start's "turn server id=" must not pass the wait."""
    import deploy.serve

    (tmp_path / "turnserver.log").write_text("0: : turn server id=1 created\n")  # last start
    monkeypatch.setattr(deploy.serve, "turnserver_binary", lambda: shutil.which("false"))
    with pytest.raises(ServeError, match="coturn did not start") as failed:
        start_turnserver(tmp_path, free_port(), secret="room-secret")
    assert "turn server id=1" not in str(failed.value)


def test_coturn_relays_for_the_apps_short_lived_credentials_only(tmp_path):
    _require("turnserver", "coturn")
    port = free_port()
    turn = start_turnserver(tmp_path, port, secret="room-secret")
    try:
        settings = Settings(
            turn_urls=(f"turn:127.0.0.1:{port}?transport=udp",), turn_secret="room-secret"
        )
        server = settings.ice_servers()[-1]
        assert "room-secret" not in str(server)
        relayed = asyncio.run(_gather_candidates(port, server["username"], server["credential"]))
        assert "relay" in relayed
        wrong = Settings(turn_urls=settings.turn_urls, turn_secret="another-secret").ice_servers()
        refused = asyncio.run(
            _gather_candidates(port, wrong[-1]["username"], wrong[-1]["credential"])
        )
        assert "relay" not in refused
        expired = settings.ice_servers(now=0)[-1]  # credentials from 1970 have expired
        stale = asyncio.run(_gather_candidates(port, expired["username"], expired["credential"]))
        assert "relay" not in stale
    finally:
        turn.terminate()
        turn.wait(timeout=10)
