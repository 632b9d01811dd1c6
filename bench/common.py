"""What every benchmark shares: a description of the machine, the results file, and a fresh database."""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import platform
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"
TOOLS_VENV = Path(__file__).resolve().parent / ".venv-tools"
TOOLS_REQUIREMENTS = ROOT / "requirements-bench.txt"

# The only database a benchmark ever creates, drops or writes; never `tiers` or `test_tiers`.
DATABASE = "tiers_bench"
SERVER_URL = "postgres://postgres@127.0.0.1:5432"
DATABASE_URL = f"{SERVER_URL}/{DATABASE}"


def machine() -> dict[str, Any]:
    """The facts a figure depends on."""
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        memory_kib = int(Path("/proc/meminfo").read_text().split()[1])
    except (OSError, ValueError, IndexError):
        memory_kib = 0
    try:
        postgres = subprocess.run(["psql", "--version"], capture_output=True, text=True, check=False).stdout.strip()
    except OSError:
        postgres = "not found"
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(memory_kib / 1024 / 1024, 1),
        "python": platform.python_version(),
        "postgres": postgres,
        "platform": platform.platform(),
    }


def record(name: str, figures: dict[str, Any]) -> dict[str, Any]:
    """Append one result line to bench/results/<name>.jsonl and return it."""
    RESULTS.mkdir(exist_ok=True)
    line = {
        "benchmark": name,
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "machine": machine(),
        **figures,
    }
    with (RESULTS / f"{name}.jsonl").open("a") as results:
        results.write(json.dumps(line, ensure_ascii=False) + "\n")
    return line


def setup_django() -> None:
    """Point Django at the bench database with the test settings, then set it up (once per process)."""
    import django

    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    os.environ["DJANGO_SETTINGS_MODULE"] = "tests.settings"
    os.environ["DATABASE_URL"] = DATABASE_URL  # before setup: tests/settings.py only sets defaults
    django.setup()


def create_database() -> None:
    """Drop and create the bench database, migrate it, and leave Django set up on it."""
    import psycopg
    from psycopg import sql

    with psycopg.connect(f"{SERVER_URL}/postgres", autocommit=True) as server:
        server.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(DATABASE)))
        server.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DATABASE)))
    setup_django()
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", verbosity=0)
    connection.close()


def tools_venv() -> Path:
    """bench/.venv-tools with requirements-bench.txt (the peers and the load generator), made or refreshed when
    the file changed; returns its bin directory. The project's own venv is never touched."""
    stamp = TOOLS_VENV / ".requirements-sha256"
    wanted = hashlib.sha256(TOOLS_REQUIREMENTS.read_bytes()).hexdigest()
    python = TOOLS_VENV / "bin" / "python"
    if not python.exists() or not stamp.exists() or stamp.read_text().strip() != wanted:
        print(f"setup: installing {TOOLS_REQUIREMENTS.name} into {TOOLS_VENV.relative_to(ROOT)}", flush=True)
        if not python.exists():
            subprocess.run([sys.executable, "-m", "venv", str(TOOLS_VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--upgrade", "pip"], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", "-r", str(TOOLS_REQUIREMENTS)], check=True)
        stamp.write_text(wanted + "\n")
    return python.parent


def table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A plain-text table, columns padded to their widest cell."""
    cells = [[str(cell) for cell in header], *[[str(cell) for cell in row] for row in rows]]
    widths = [max(len(row[column]) for row in cells) for column in range(len(header))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)) for row in cells]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def revision(*paths: str) -> str:
    """The commit measured, with `+changes` when the given paths differ from it in the working tree."""

    def git(*arguments: str) -> str:
        return subprocess.run(["git", *arguments], cwd=ROOT, capture_output=True, text=True, check=False).stdout

    commit = git("rev-parse", "--short", "HEAD").strip() or "unknown"
    return commit + ("+changes" if git("status", "--porcelain", "--", *paths).strip() else "")


def recreate_named_database(name: str) -> str:
    """Drop and create a benchmark's own database (its name must end in `_bench`); return its URL."""
    import psycopg
    from psycopg import sql

    if not name.endswith("_bench"):
        raise ValueError(f"a benchmark only drops databases named *_bench, not {name!r}")
    with psycopg.connect(f"{SERVER_URL}/postgres", autocommit=True) as server:
        server.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        server.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return f"{SERVER_URL}/{name}"


def drop_named_database(name: str) -> None:
    """Drop a benchmark's own database (named `*_bench`) if it exists."""
    import psycopg
    from psycopg import sql

    if not name.endswith("_bench"):
        raise ValueError(f"a benchmark only drops databases named *_bench, not {name!r}")
    with psycopg.connect(f"{SERVER_URL}/postgres", autocommit=True) as server:
        server.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_gunicorn(
    gunicorn: Path | str,
    app: str,
    *,
    port: int,
    env: dict[str, str],
    log: Path,
    cwd: Path | str = ROOT,
    workers: int = 2,
    ready_path: str = "/",
    timeout: float = 60.0,
) -> subprocess.Popen[bytes]:
    """Start gunicorn (sync workers) on 127.0.0.1:port, its output appended to log; return once ready_path answers."""
    import http.client
    import time

    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as output:
        process = subprocess.Popen(
            [
                str(Path(gunicorn).resolve()),
                app,
                "--bind",
                f"127.0.0.1:{port}",
                "--workers",
                str(workers),
                "--worker-class",
                "sync",
                "--no-control-socket",
            ],
            cwd=str(cwd),
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn {app} exited; see {log}:\n{log.read_text()[-2000:]}")
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        try:
            connection.request("GET", ready_path)
            connection.getresponse().read()
            return process
        except OSError:
            time.sleep(0.2)
        finally:
            connection.close()
    stop_process(process)
    raise RuntimeError(f"gunicorn {app} did not answer on port {port} within {timeout:.0f} s; see {log}")


def stop_process(process: subprocess.Popen[bytes], grace: float = 10.0) -> None:
    """Stop a server this benchmark started (SIGTERM, then SIGKILL), by its own process id."""
    import signal

    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
