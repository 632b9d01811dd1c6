"""Private PostgreSQL and Redis servers for fault tests and load tests: never the shared ones.

Each server lives in its own temporary directory, listens on 127.0.0.1 on a port of
its own, and is stopped and deleted by whoever started it. PostgreSQL refuses to run
as root, so when this runs as root the cluster is created and run as the `postgres`
system user (through `runuser`), in a directory given to that user.

    python deploy/faults/private_servers.py   # starts both, prints their URLs, stops them on Ctrl-C
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PG_BIN = Path(os.environ.get("TIERS_PG_BIN", "/usr/lib/postgresql/15/bin"))
PG_USER = "postgres"  # the system user a root caller runs the cluster as


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def _as_postgres(command: list[str]) -> list[str]:
    if os.geteuid() == 0:
        return ["runuser", "-u", PG_USER, "--", *command]
    return command


class PrivatePostgres:
    """A throw-away PostgreSQL cluster: initdb in a temp dir, trust on loopback, one database."""

    def __init__(self, *, port: int | None = None, database: str = "tiers") -> None:
        self.port = port or free_port()
        self.database = database
        self.root = Path(tempfile.mkdtemp(prefix="tiers-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "postgres.log"
        if os.geteuid() == 0:
            shutil.chown(self.root, PG_USER, PG_USER)

    @property
    def url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{self.database}"

    def _run(self, *arguments: str) -> None:
        command = _as_postgres([str(PG_BIN / arguments[0]), *arguments[1:]])
        subprocess.run(command, check=True, capture_output=True)  # noqa: S603 (our own binaries and arguments)

    def create(self) -> PrivatePostgres:
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync")
        self.start()
        self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", self.database)
        return self

    def start(self) -> None:
        # Durability is traded for speed: the cluster dies with the test anyway.
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c max_connections=200 "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c shared_buffers=128MB"
        )
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60", "-o", options, "start")

    def stop(self, mode: str = "fast") -> None:
        """Stop the server: `fast` disconnects every session; `immediate` is a crash."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop")

    def running(self) -> bool:
        return _answers(self.port)

    def destroy(self) -> None:
        if (self.data / "postmaster.pid").exists():
            with contextlib.suppress(subprocess.CalledProcessError):
                self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)


class PrivateRedis:
    """A throw-away redis-server without persistence: stopping it loses every message it held."""

    def __init__(self, *, port: int | None = None) -> None:
        self.port = port or free_port()
        self.root = Path(tempfile.mkdtemp(prefix="tiers-redis-"))
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> PrivateRedis:
        arguments = ["--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        arguments += ["--dir", str(self.root), "--logfile", str(self.root / "redis.log")]
        server = shutil.which("redis-server") or "redis-server"
        self.process = subprocess.Popen([server, *arguments])  # noqa: S603 (our own arguments)
        deadline = time.monotonic() + 20
        while not _answers(self.port):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not start on {self.port}; see {self.root / 'redis.log'}")
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        """Stop this server (SIGTERM to its own process id), its data lost."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=20)
        self.process = None

    def running(self) -> bool:
        return _answers(self.port)

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


def main() -> int:
    postgres = PrivatePostgres().create()
    redis = PrivateRedis().start()
    print(f"DATABASE_URL={postgres.url}\nREDIS_URL={redis.url}", flush=True)
    try:
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
        signal.sigwait({signal.SIGINT, signal.SIGTERM})
    finally:
        redis.destroy()
        postgres.destroy()
    return 0


if __name__ == "__main__":
    sys.exit(main())
