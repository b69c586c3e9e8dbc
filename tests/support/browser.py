"""Helpers for the end-to-end tests: serve the app on 127.0.0.1 and drive Debian's chromium."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from core.paths import REPO_ROOT
from deploy.launch import server_command
from tests.support.tools import tool_missing

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def require_browser() -> None:
    """Skip (with the reason) when chromium or playwright is missing."""
    if not Path(CHROMIUM).exists():
        tool_missing("Debian chromium is not installed (make test installs it when run as root)")
    pytest.importorskip("playwright.sync_api", reason="playwright is in requirements-dev.txt")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_healthy(
    url: str,
    process: subprocess.Popen,
    timeout: float = 90.0,
    interval: float = 0.5,
    log_path: Path | None = None,
) -> None:
    """Block until the Streamlit server at `url` answers its health check; raise (with the
    tail of its log) if it exits or `timeout` seconds pass first."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as reply:
                if reply.status == 200:
                    return
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            tail = log_path.read_text(errors="replace")[-2000:] if log_path else ""
            raise RuntimeError(f"streamlit did not start: {tail}")
        time.sleep(interval)


def browser_or_exit(tool: str) -> None:
    """For benchmarks (outside pytest): exit with the reason when chromium or playwright is
    missing."""
    try:
        require_browser()
    except BaseException as skip:  # pytest.skip raises an exception outside pytest
        sys.exit(f"{tool}: {skip}")


@contextmanager
def serve_app(env: dict[str, str], log_path: Path) -> Iterator[str]:
    """Run `streamlit run app.py` on a free loopback port; yields its base URL."""
    with app_server(env, log_path) as (url, _process):
        yield url


@contextmanager
def app_server(
    env: dict[str, str],
    log_path: Path,
    ready: bool = True,
    port: int | None = None,
    launcher: bool = True,
) -> Iterator[tuple[str, subprocess.Popen]]:
    """`serve_app`, also yielding the server process (the benchmarks measure its CPU). With
    `ready=False` it yields as soon as the process is started, before /_stcore/health answers.
    `port` (default: a free one) fixes the origin, so a browser that visited before has its
    cache. It starts as `make run` does (`python -m deploy.launch`); `launcher=False` runs plain
    `streamlit run app.py`."""
    port = port or free_port()
    command = server_command(port, launcher=launcher)
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            command, cwd=REPO_ROOT, env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT
        )
        url = f"http://127.0.0.1:{port}"
        try:
            if ready:
                wait_until_healthy(url, process, log_path=log_path)
            yield url, process
        finally:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()


@contextmanager
def chromium(video: Path | None = None, allow_camera: bool = True):
    """A headless Debian chromium with a fake camera playing `video` (a .y4m file)."""
    from playwright.sync_api import sync_playwright

    args = [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--use-fake-device-for-media-stream",
    ]
    if allow_camera:
        args.append("--use-fake-ui-for-media-stream")
    else:
        args.append("--deny-permission-prompts")
    if video is not None:
        args.append(f"--use-file-for-fake-video-capture={video}")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=args)
        try:
            context = browser.new_context(viewport={"width": 1400, "height": 1000})
            if allow_camera:
                context.grant_permissions(["camera"])
            yield context.new_page()
        finally:
            browser.close()
