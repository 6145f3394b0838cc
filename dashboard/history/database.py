"""The history database: DATABASE_URL -> an SQLAlchemy engine (psycopg 3 for PostgreSQL, Heroku's postgres://
accepted; SQLite in the cache folder by default), the schema brought up to date by Alembic under a lock (two dynos
starting at once do not race), and database errors worded without the password."""

from __future__ import annotations

import re
import threading
from pathlib import Path
from urllib.parse import quote

import sqlalchemy as sa
from sqlalchemy.engine import URL, Engine, make_url

from dashboard.common.files import locked
from dashboard.errors import ConfigError, DashboardError, scrub

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
_ALEMBIC = threading.Lock()
_LOCK_KEY = 0x6B647368  # "kdsh": the advisory lock PostgreSQL holds while one process migrates


class HistoryError(DashboardError):
    """The history database could not be reached or used (the message never holds its password)."""


def database_url(configured: str | None, cache_dir: Path) -> URL:
    """The SQLAlchemy URL for DATABASE_URL (None: SQLite in the cache folder)."""
    if not configured:
        return make_url(f"sqlite:///{cache_dir / 'history.sqlite3'}")
    text = _last_at(configured.strip())
    text = re.sub(r"^postgres(ql)?(\+psycopg2?)?://", "postgresql+psycopg://", text)
    try:
        url = make_url(text)
    except Exception as exc:
        raise ConfigError(
            "DATABASE_URL is not a database URL; use postgres://… (as Heroku Postgres sets it) or sqlite:///PATH"
        ) from exc
    if url.get_backend_name() not in ("postgresql", "sqlite"):
        raise ConfigError(
            f"DATABASE_URL uses {url.get_backend_name()!r}; use postgres://…, postgresql://… or sqlite:///PATH"
        )
    return url


def _last_at(text: str) -> str:
    """The URL with its password percent-encoded when the password holds an unencoded @: the credentials end at the
    last @ before the host (SQLAlchemy splits at the first, which put the password's tail in the host name)."""
    scheme, sep, rest = text.partition("://")
    netloc, slash, tail = rest.partition("/")
    if not sep or netloc.count("@") < 2:
        return text
    userinfo, host = netloc.rsplit("@", 1)
    user, colon, password = userinfo.partition(":")
    return f"{scheme}://{user}{colon}{quote(password, safe='')}@{host}{slash}{tail}"


def shown(url: URL) -> str:
    """The URL as a page or a log line may show it: no password."""
    if url.get_backend_name() == "sqlite":
        return f"SQLite file {url.database}"
    return f"PostgreSQL {url.host or 'localhost'}:{url.port or 5432}/{url.database or ''}"


def create(url: URL) -> Engine:
    """An engine for url: SQLite in WAL mode with a busy timeout (two processes may write), PostgreSQL with
    pre-ping (a restarted server is reconnected) and short connect timeouts (a down server fails fast)."""
    if url.get_backend_name() == "sqlite":  # nothing is opened or created before the first connection
        engine = sa.create_engine(url, hide_parameters=True, connect_args={"timeout": 30})

        @sa.event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection, _record) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")  # WAL: no fsync per commit, still never corrupt
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        return engine
    return sa.create_engine(
        url,
        hide_parameters=True,
        pool_pre_ping=True,
        pool_size=2,
        max_overflow=4,
        pool_timeout=5,
        # a statement that runs longer than 10 s is cancelled by the server (a read must not hold a thread for long)
        connect_args={
            "connect_timeout": 5,
            "application_name": "keras-dashboard",
            "options": "-c statement_timeout=10000",
        },
    )


def migrate(engine: Engine) -> str:
    """Bring the schema up to the newest revision (Alembic), one process at a time; returns the revision."""
    from alembic.runtime.migration import MigrationContext

    if engine.dialect.name == "sqlite":
        Path(engine.url.database).parent.mkdir(parents=True, exist_ok=True)
        with locked(Path(engine.url.database + ".lock")):
            upgrade_to(engine, "head")
    else:
        upgrade_to(engine, "head", lock=True)
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision() or ""


def upgrade_to(engine: Engine, revision: str, lock: bool = False) -> None:
    """Bring the schema to a revision in one transaction (lock: PostgreSQL's advisory lock, held until commit)."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    # Alembic's `context` is one module-level proxy: two databases migrated at once in one process (two recorders)
    # would see each other's context ("KeyError: 'config'", seen in CI), so one upgrade at a time per process
    with _ALEMBIC, engine.begin() as connection:
        if lock:
            connection.execute(sa.text("SET LOCAL statement_timeout = 0"))  # waiting for another migrator is fine
            connection.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK_KEY})
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def explain(exc: BaseException, url: URL) -> str:
    """A database error in one line a person can act on, with no password, query or parameters in it."""
    original = getattr(exc, "orig", None) or exc
    text = " ".join(str(original).split())
    if url.password:
        text = text.replace(url.password, "[redacted]")
    text = scrub(re.sub(r"password=\S+", "password=[redacted]", text))
    if len(text) > 240:
        text = text[:240] + "…"
    return f"{shown(url)}: {text or type(original).__name__}"
