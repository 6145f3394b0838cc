"""A real PostgreSQL server for the tests: Debian's PostgreSQL 15 binaries, a private data folder, a loopback port
and a password (so the tests can check it never leaks). PostgreSQL refuses to run as root: as root (CI) the
server runs as the unprivileged postgres account via runuser."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.helpers import free_port

BIN = Path(os.environ.get("POSTGRES_BIN", "/usr/lib/postgresql/15/bin"))
AVAILABLE = (BIN / "initdb").exists()
WHY_NOT = f"PostgreSQL binaries not found in {BIN} (apt-get install postgresql-15, or set POSTGRES_BIN)"


def _as_owner(command: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


@dataclass
class Postgres:
    folder: Path
    port: int
    password: str

    @property
    def url(self) -> str:
        """DATABASE_URL as Heroku sets it (postgres://)."""
        return f"postgres://dashboard:{self.password}@127.0.0.1:{self.port}/history"

    def _ctl(self, *args: str) -> None:
        subprocess.run(
            _as_owner([str(BIN / "pg_ctl"), "-D", str(self.folder / "data"), "-w", *args]),
            check=True,
            capture_output=True,
            timeout=60,
        )

    def start(self) -> None:
        options = f"-p {self.port} -k {self.folder} -h 127.0.0.1 -c fsync=off"
        self._ctl("-o", options, "-l", str(self.folder / "server.log"), "start")

    def stop(self) -> None:
        self._ctl("-m", "fast", "stop")

    def remove(self) -> None:
        try:
            self.stop()
        except subprocess.CalledProcessError:
            pass
        shutil.rmtree(self.folder, ignore_errors=True)


def start_postgres() -> Postgres:
    """initdb in a fresh folder, start the server, create the dashboard role (with a password) and database."""
    folder = Path(tempfile.mkdtemp(prefix="pg-"))
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres", "postgres")
    password = "pg-" + secrets.token_hex(12)
    server = Postgres(folder, free_port(), password)
    (folder / "pw").write_text(password + "\n")
    if os.geteuid() == 0:
        shutil.chown(folder / "pw", "postgres", "postgres")
    subprocess.run(
        _as_owner(
            [
                str(BIN / "initdb"),
                "-D",
                str(folder / "data"),
                "-U",
                "dashboard",
                "--pwfile",
                str(folder / "pw"),
                "-A",
                "scram-sha-256",
                "--no-sync",
            ]
        ),
        check=True,
        capture_output=True,
        timeout=120,
    )
    (folder / "pw").unlink()
    server.start()
    env = {**os.environ, "PGPASSWORD": password}
    subprocess.run(
        [str(BIN / "createdb"), "-h", "127.0.0.1", "-p", str(server.port), "-U", "dashboard", "history"],
        check=True,
        capture_output=True,
        env=env,
        timeout=60,
    )
    return server


def postgres_or_skip() -> None:
    if not AVAILABLE:
        if os.environ.get("REQUIRE_BROWSER"):  # CI: nothing skips
            pytest.fail(f"REQUIRE_BROWSER is set but {WHY_NOT}")
        print(WHY_NOT)
        pytest.skip(WHY_NOT)


def running_postgres(label: str):
    """A module's PostgreSQL server, as a fixture body (`yield from`): its password watched by the secret scan, its
    log scanned after (label names it in the scan)."""
    from tests.support.secretscan import SCANNED, watch

    postgres_or_skip()
    server = start_postgres()
    watch(server.password)
    yield server
    SCANNED.append((label, (server.folder / "server.log").read_text(errors="replace")))
    server.remove()


def new_database(server: Postgres) -> str:
    """The URL of a new, empty database on server."""
    import time

    import sqlalchemy as sa

    from dashboard.history.database import database_url

    name = f"t{time.monotonic_ns()}"
    admin = sa.create_engine(database_url(server.url, None), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text(f"CREATE DATABASE {name}"))
    admin.dispose()
    return server.url.rsplit("/", 1)[0] + "/" + name
