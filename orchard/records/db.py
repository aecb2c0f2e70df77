"""The records database: one engine per process, migrated to the newest schema before first use.

SQLite (a file in the data dir) by default, PostgreSQL by ORCHARD_DB_URL. SQLite runs in WAL mode with
synchronous=FULL, because ingest acknowledges MQTT messages after its dead letters are committed.
"""

from __future__ import annotations

import fcntl
import os
import stat
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
_MIGRATE_LOCK = 7_206_001  # pg_advisory_xact_lock key: one migrating process at a time


def normalise_url(url: str) -> str:
    """postgresql:// means psycopg 3 (the driver we ship); sqlite:/// paths stay as given."""
    u = make_url(url)
    if u.drivername in ("postgresql", "postgres"):
        u = u.set(drivername="postgresql+psycopg")
    if u.get_backend_name() not in ("sqlite", "postgresql"):
        raise ValueError(f"ORCHARD_DB_URL must be sqlite:///<path> or postgresql://user:pass@host/db, got {url!r}")
    return u.render_as_string(hide_password=False)


def _private(db: Path) -> None:
    """The records DB holds password hashes and phone numbers: its folder 0700, the file 0600 (made so before
    SQLite first writes it; an older, wider one is narrowed). SQLite gives its -wal and -shm the file's mode."""
    db.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    if not db.exists():
        # Only a new file: closing any descriptor of an open SQLite file drops every POSIX lock this process holds
        # on it, under the feet of the other engines' connections (a second Records in one process lost writes).
        os.close(os.open(db, os.O_CREAT | os.O_RDWR, 0o600))
    for target, mode in ((db, 0o600), (db.parent, 0o700)):
        st = target.stat()
        if st.st_uid == os.getuid() and stat.S_IMODE(st.st_mode) & 0o077:
            target.chmod(mode)


def make_engine(url: str) -> Engine:
    url = normalise_url(url)
    if url.startswith("sqlite"):
        path = make_url(url).database
        if path and path != ":memory:":
            _private(Path(path))
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=FULL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        return engine
    return create_engine(url, pool_pre_ping=True)


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest revision; safe when several services start at once."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    if engine.dialect.name == "sqlite":
        path = engine.url.database
        lock_path = Path(f"{path}.migrate.lock") if path and path != ":memory:" else None
        lock = lock_path.open("a") if lock_path else None
        try:
            if lock:
                fcntl.flock(lock, fcntl.LOCK_EX)
            with engine.begin() as conn:
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, "head")
        finally:
            if lock:
                lock.close()
        return
    with engine.begin() as conn:
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _MIGRATE_LOCK})
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
