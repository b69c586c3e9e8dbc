"""Serve a room: N Streamlit replicas behind nginx, optionally with a coturn TURN server.

    make serve REPLICAS=2                    # http://127.0.0.1:8080
    python -m deploy.serve --replicas 2 --port 8080 [--turn] [--no-restart]

Each replica is `streamlit run app.py` on its own loopback port; nginx (deploy/nginx.conf.template)
fronts them with sticky sessions and WebSocket upgrade. All replicas share one feedback store:
the SQLite file by default (fine on one host), or the PostgreSQL of MOODLENS_DATABASE_URL (every
host). They share one cookie secret, so a session that fails over keeps working (uploads check
an XSRF cookie). A replica that dies is restarted (unless --no-restart); its viewers reconnect
to a live one meanwhile. Ctrl-C stops everything. Nothing here needs the internet.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from deploy.launch import server_command

REPO_ROOT = Path(__file__).resolve().parent.parent
DEPLOY = REPO_ROOT / "deploy"
NGINX_TEMPLATE = DEPLOY / "nginx.conf.template"
TURN_CONFIG = DEPLOY / "turnserver.conf"
TEMP_DIRS = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")


class ServeError(RuntimeError):
    """Something the room cannot start without; the message says what to do."""


def render_nginx_conf(listen: str, replica_ports: list[int], runtime: Path) -> str:
    """The nginx config for replicas on 127.0.0.1:<port>, listening on `listen`."""
    if not replica_ports:
        raise ServeError("a room needs at least one replica")

    def server(port: int, backup: bool = False) -> str:
        health = "backup" if backup else "max_fails=1 fail_timeout=5s"
        return f"        server 127.0.0.1:{port} {health};"

    def replica_group(port: int) -> str:
        """A replica's own group, the others its backups (see the template's maps)."""
        backups = [server(other, backup=True) for other in replica_ports if other != port]
        lines = [f"    upstream replica_{port} {{", server(port), *backups, "        keepalive 8;"]
        return "\n".join([*lines, "    }"])

    servers = "\n".join(server(port) for port in replica_ports)
    routes = "\n".join(f'        "127.0.0.1:{port}" replica_{port};' for port in replica_ports)
    upstreams = "\n".join(replica_group(port) for port in replica_ports)
    text = NGINX_TEMPLATE.read_text()
    return (
        text.replace("@UPSTREAM_SERVERS@", servers)
        .replace("@REPLICA_ROUTES@", routes)
        .replace("@REPLICA_UPSTREAMS@", upstreams)
        .replace("@LISTEN@", listen)
        .replace("@RUNTIME@", str(runtime))
    )


def render_turn_conf(port: int, secret: str, runtime: Path, loopback_peers: bool) -> str:
    """deploy/turnserver.conf for this room: its port, the shared secret, its own pid file."""
    lines = [
        TURN_CONFIG.read_text(),
        f"listening-port={port}",
        f"tls-listening-port={port + 1}",
        f"pidfile={runtime / 'turnserver.pid'}",
        f"userdb={runtime / 'turndb'}",
        "log-file=stdout",
        f"static-auth-secret={secret}",
    ]
    if loopback_peers:
        lines.append("allow-loopback-peers")  # the replicas run on this machine
    return "\n".join(lines) + "\n"


def start_turnserver(
    runtime: Path, port: int, secret: str, loopback_peers: bool = True
) -> subprocess.Popen:
    """coturn on `port` (udp+tcp; TLS on port + 1) with the shared secret; raises ServeError
    with its log when it does not come up."""
    runtime.mkdir(parents=True, exist_ok=True)
    conf = runtime / "turnserver.conf"
    conf.touch(mode=0o600)
    conf.chmod(0o600)  # it holds the shared secret
    conf.write_text(render_turn_conf(port, secret, runtime, loopback_peers))
    log_path = runtime / "turnserver.log"
    with open(log_path, "ab") as log:
        before = log.tell()  # the log is appended to: an earlier start's lines are not this one's
        process = subprocess.Popen(
            [turnserver_binary(), "-c", str(conf)], stdout=log, stderr=subprocess.STDOUT
        )

    def this_start() -> str:
        with open(log_path, "rb") as log:
            log.seek(before)
            return log.read().decode(errors="replace")

    deadline = time.monotonic() + 10
    while "turn server id=" not in this_start():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise ServeError(f"coturn did not start:\n{this_start()[-1500:]}")
        time.sleep(0.1)
    return process


def _debian_binary(name: str, sbin: str, package: str, purpose: str) -> str:
    """The path of a program from a Debian package; ServeError naming the package if absent."""
    found = shutil.which(name) or (sbin if Path(sbin).exists() else None)
    if not found:
        raise ServeError(f"{purpose} is not installed: `apt-get install {package}` (Debian)")
    return found


def nginx_binary() -> str:
    return _debian_binary("nginx", "/usr/sbin/nginx", "nginx-light", "nginx")


def turnserver_binary() -> str:
    return _debian_binary("turnserver", "/usr/bin/turnserver", "coturn", "coturn")


def healthy(url: str, timeout: float = 2.0) -> bool:
    """Whether a Streamlit server at `url` answers its health check."""
    try:
        with urllib.request.urlopen(f"{url}/_stcore/health", timeout=timeout) as reply:
            return reply.status == 200
    except OSError:
        return False


def replica_for(url: str, route: str) -> str:
    """The replica (host:port) nginx at `url` sends a browser with this route cookie to."""
    request = urllib.request.Request(
        f"{url}/_stcore/health", headers={"Cookie": f"moodlens_route={route}"}
    )
    with urllib.request.urlopen(request, timeout=10) as reply:
        return reply.headers["X-Moodlens-Replica"]


@dataclass
class Replica:
    """One `streamlit run app.py` on 127.0.0.1:<port>."""

    index: int
    port: int
    log_path: Path
    process: subprocess.Popen | None = None
    restarts: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def address(self) -> str:
        """How nginx names it (X-Moodlens-Replica, the access log)."""
        return f"127.0.0.1:{self.port}"

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None


@dataclass
class Room:
    """The replicas, nginx in front, and coturn when asked; a context manager."""

    replicas: int = 2
    port: int = 8080
    host: str = "127.0.0.1"  # where nginx listens: 0.0.0.0 to serve other machines
    first_replica_port: int = 8601
    replica_ports: tuple[int, ...] = ()  # explicit ports (tests); else first_replica_port + i
    runtime: Path = REPO_ROOT / "runs" / "serve"
    env: Mapping[str, str] = field(default_factory=dict)
    turn_port: int | None = None  # start coturn on this port (and port + 1 for TLS)
    restart: bool = True
    python: str = sys.executable
    members: list[Replica] = field(default_factory=list)
    nginx: subprocess.Popen | None = None
    turn: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def replica_env(self) -> dict[str, str]:
        """What every replica shares: the cookie secret, the store, the TURN secret."""
        env = {**os.environ, **self.env}
        env.setdefault("STREAMLIT_SERVER_COOKIE_SECRET", secrets.token_urlsafe(32))
        if self.turn_port is not None:
            env.setdefault("MOODLENS_TURN_SECRET", secrets.token_urlsafe(32))
            host = env.get("MOODLENS_TURN_HOST", "127.0.0.1")
            env.setdefault(
                "MOODLENS_TURN_URLS",
                f"turn:{host}:{self.turn_port}?transport=udp,"
                f"turn:{host}:{self.turn_port}?transport=tcp",
            )
        return env

    def __enter__(self) -> Room:
        self.runtime.mkdir(parents=True, exist_ok=True)
        for name in TEMP_DIRS:
            (self.runtime / name).mkdir(exist_ok=True)
            (self.runtime / name).chmod(0o777)  # nginx's workers run as nobody under root
        self._env = self.replica_env()
        try:
            if self.turn_port is not None:
                self._start_turn()
            ports = self.replica_ports or tuple(
                self.first_replica_port + i for i in range(self.replicas)
            )
            self.members = [
                Replica(i, port, self.runtime / f"replica-{i}.log") for i, port in enumerate(ports)
            ]
            for replica in self.members:
                self._start(replica)
            for replica in self.members:
                self.wait_healthy(replica)
            self._start_nginx()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _start(self, replica: Replica) -> None:
        command = server_command(replica.port, self.python)
        log = open(replica.log_path, "ab")  # noqa: SIM115 (the child keeps it)
        replica.process = subprocess.Popen(
            command, cwd=REPO_ROOT, env=self._env, stdout=log, stderr=subprocess.STDOUT
        )
        log.close()

    def wait_healthy(self, replica: Replica, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while not healthy(replica.url):
            if not replica.alive() or time.monotonic() > deadline:
                tail = replica.log_path.read_text(errors="replace")[-1500:]
                raise ServeError(f"replica {replica.index} did not start:\n{tail}")
            time.sleep(0.5)

    def _start_nginx(self) -> None:
        conf = self.runtime / "nginx.conf"
        conf.write_text(
            render_nginx_conf(
                f"{self.host}:{self.port}",
                [r.port for r in self.members],
                self.runtime,
            )
        )
        binary = nginx_binary()
        check = subprocess.run(
            [binary, "-t", "-q", "-p", str(self.runtime), "-c", str(conf)],
            capture_output=True, text=True,
        )  # fmt: skip
        if check.returncode != 0:
            raise ServeError(f"nginx rejected {conf}: {check.stderr.strip()}")
        log = open(self.runtime / "nginx.log", "ab")  # noqa: SIM115
        self.nginx = subprocess.Popen(
            [binary, "-p", str(self.runtime), "-c", str(conf)], stdout=log, stderr=log
        )
        log.close()
        deadline = time.monotonic() + 20
        while not healthy(self.url):
            if self.nginx.poll() is not None or time.monotonic() > deadline:
                tail = (self.runtime / "nginx.log").read_text(errors="replace")[-1500:]
                raise ServeError(f"nginx did not come up on port {self.port}:\n{tail}")
            time.sleep(0.2)

    def _start_turn(self) -> None:
        self.turn = start_turnserver(
            self.runtime, self.turn_port, self._env["MOODLENS_TURN_SECRET"]
        )

    def kill(self, index: int) -> None:
        """SIGKILL one replica, as a crash would (the failover benchmark)."""
        process = self.members[index].process
        if process is not None:
            process.kill()
            process.wait()

    def supervise_once(self) -> list[int]:
        """Restart every replica that died (when `restart`); the indices it restarted."""
        restarted = []
        for replica in self.members:
            if not replica.alive() and self.restart:
                replica.restarts += 1
                self._start(replica)
                restarted.append(replica.index)
        return restarted

    def stop(self) -> None:
        processes = [r.process for r in self.members] + [self.nginx, self.turn]
        for process in processes:
            if process is not None and process.poll() is None:
                process.terminate()
        for process in processes:
            if process is None:
                continue
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--replicas", type=int, default=2)
    parser.add_argument("--port", type=int, default=8080, help="where nginx listens")
    parser.add_argument("--host", default="127.0.0.1", help="0.0.0.0: serve the network")
    parser.add_argument("--first-replica-port", type=int, default=8601)
    parser.add_argument("--turn", action="store_true", help="also start coturn (port 3478)")
    parser.add_argument("--turn-port", type=int, default=3478)
    parser.add_argument("--runtime", type=Path, default=REPO_ROOT / "runs" / "serve")
    parser.add_argument("--no-restart", action="store_true", help="leave dead replicas dead")
    args = parser.parse_args(argv)

    room = Room(
        replicas=args.replicas,
        port=args.port,
        host=args.host,
        first_replica_port=args.first_replica_port,
        runtime=args.runtime,
        turn_port=args.turn_port if args.turn else None,
        restart=not args.no_restart,
    )
    for ending in (signal.SIGTERM, signal.SIGHUP):  # killed, or its terminal closed
        signal.signal(ending, lambda *_: sys.exit(0))
    try:
        with room:
            print(
                f"moodlens: {room.url} -> {args.replicas} replicas "
                f"({', '.join(r.address for r in room.members)})"
                + (f", TURN on udp/tcp {args.turn_port}" if args.turn else "")
                + f"; logs in {args.runtime}. Ctrl-C stops it.",
                flush=True,
            )
            while True:
                for index in room.supervise_once():
                    print(f"replica {index} died: restarted", flush=True)
                time.sleep(1.0)
    except ServeError as error:
        sys.exit(f"make serve: {error}")
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
