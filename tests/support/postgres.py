"""A throwaway PostgreSQL server for the tests, from Debian's `postgresql` package.

    with postgres_cluster() as cluster:          # initdb + pg_ctl start in a temp dir
        url = cluster.create_database("t1")      # postgresql+psycopg://moodlens:...@127.0.0.1:N/t1

The cluster listens on 127.0.0.1 on a free port (its unix socket stays in the temp dir), uses a
random password, and is stopped and removed on exit. PostgreSQL refuses to run as root, so under
root the cluster belongs to the `postgres` user the Debian package creates and its commands run
through `runuser` (or `su`). When no server can be started the caller is skipped with the reason
(``MOODLENS_REQUIRE_POSTGRES=1`` turns that into a failure, for CI that must test PostgreSQL).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import secrets
import shlex
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from glob import glob
from pathlib import Path

from tests.support.tools import tool_missing

NOT_FOUND = "PostgreSQL server binaries not found: apt-get install postgresql"
SUPERUSER = "moodlens"
START_TIMEOUT_S = 60


def find_bindir() -> Path | None:
    """The newest Debian PostgreSQL server bin dir (with initdb and pg_ctl), or one on PATH."""

    def version(path: str) -> tuple[int, ...]:
        return tuple(int(n) for n in re.findall(r"\d+", Path(path).parent.name))

    candidates = sorted(glob("/usr/lib/postgresql/*/bin"), key=version, reverse=True)
    if initdb := shutil.which("initdb"):
        candidates.append(str(Path(initdb).parent))
    for candidate in candidates:
        if all((Path(candidate) / tool).is_file() for tool in ("initdb", "pg_ctl", "postgres")):
            return Path(candidate)
    return None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PostgresCluster:
    """initdb'd data dir + a running postmaster; `url()` and `create_database()` for tests."""

    def __init__(self, bindir: Path, root: Path, owner: str | None) -> None:
        self.bindir, self.root, self.owner = bindir, root, owner
        self.data = root / "data"
        self.sockets = root / "sockets"
        self.log = root / "postgres.log"
        self.password = secrets.token_hex(12)
        self.port = 0
        self._databases = 0

    def _run(self, *argv: str | Path, timeout: float = START_TIMEOUT_S) -> None:
        command = [str(a) for a in argv]
        if self.owner is not None:  # running as root: the cluster's owner runs its tools
            if runuser := shutil.which("runuser"):
                command = [runuser, "-u", self.owner, "--", *command]
            else:
                command = ["su", self.owner, "-s", "/bin/sh", "-c", shlex.join(command)]
        result = subprocess.run(
            command, capture_output=True, text=True, timeout=timeout, cwd=self.root
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"{' '.join(command)} failed ({result.returncode}): "
                f"{(result.stderr or result.stdout).strip()[-1500:]}"
            )

    def init(self) -> None:
        self.sockets.mkdir()
        pwfile = self.root / "pwfile"
        pwfile.write_text(self.password + "\n")
        if self.owner is not None:
            entry = pwd.getpwnam(self.owner)
            for path in (self.root, self.sockets, pwfile):
                os.chown(path, entry.pw_uid, entry.pw_gid)
        os.chmod(pwfile, 0o600)
        self._run(
            self.bindir / "initdb",
            "-D",
            self.data,
            "-U",
            SUPERUSER,
            f"--pwfile={pwfile}",
            "--auth-host=scram-sha-256",
            "--auth-local=trust",
            "--encoding=UTF8",
            "--locale=C.UTF-8",
            "--no-sync",
        )
        pwfile.unlink()

    def start(self) -> None:
        """pg_ctl start on a free port; retried on a new port if another process took it."""
        for attempt in range(3):
            self.port = free_port()
            options = " ".join(
                (
                    "-c listen_addresses=127.0.0.1",
                    f"-p {self.port}",
                    f"-c unix_socket_directories={self.sockets}",
                    "-c fsync=off -c full_page_writes=off -c synchronous_commit=off",
                    "-c max_connections=200",
                )
            )
            try:
                self._run(
                    self.bindir / "pg_ctl", "-D", self.data, "-l", self.log, "-o", options,
                    "-w", "-t", str(START_TIMEOUT_S), "start",
                )  # fmt: skip
                return
            except RuntimeError:
                if attempt == 2:
                    raise

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            with contextlib.suppress(Exception):
                self._run(self.bindir / "pg_ctl", "-D", self.data, "-m", "immediate", "-w", "stop")

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://{SUPERUSER}:{self.password}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str | None = None) -> str:
        """A new empty database; its URL."""
        import psycopg

        if name is None:
            self._databases += 1
            name = f"test_{self._databases}"
        plain = self.url().replace("postgresql+psycopg://", "postgresql://")
        with psycopg.connect(plain, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def drop_database(self, name: str) -> None:
        import psycopg

        plain = self.url().replace("postgresql+psycopg://", "postgresql://")
        with psycopg.connect(plain, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _unavailable(reason: str) -> None:
    tool_missing(reason, "MOODLENS_REQUIRE_POSTGRES")


@contextlib.contextmanager
def postgres_cluster() -> Iterator[PostgresCluster]:
    """A started throwaway cluster; stopped and removed afterwards. Skips when impossible."""
    bindir = find_bindir()
    if bindir is None:
        _unavailable(NOT_FOUND)
    owner = None
    if os.geteuid() == 0:
        try:
            owner = pwd.getpwnam("postgres").pw_name
        except KeyError:
            _unavailable("Running as root and there is no `postgres` user to run PostgreSQL as")
    root = Path(tempfile.mkdtemp(prefix="moodlens-pg-"))
    cluster = PostgresCluster(bindir, root, owner)
    try:
        try:
            cluster.init()
            cluster.start()
        except (RuntimeError, OSError, subprocess.TimeoutExpired) as error:
            log = cluster.log.read_text()[-1500:] if cluster.log.exists() else ""
            _unavailable(f"PostgreSQL could not start: {error} {log}".strip())
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(root, ignore_errors=True)
