"""Backup and restore of everything the village would miss: the records DB (every table), the time series (every
measurement) and the files (camera snapshots, work-order photos), in one .tar.gz.

The archive is backend-neutral JSON lines, so a backup of SQLite restores into PostgreSQL and one of the embedded
store into InfluxDB (moving a village from a laptop to a server is a backup and a restore). Sessions and sign-in
attempts are left out: they are short-lived, and restoring them would sign people back in.

Restore refuses a records DB or store that already holds data: it is for empty ones (a new server, a disaster).
"""

from __future__ import annotations

import base64
import logging
import os
import sqlite3
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Connection, Engine, Integer, LargeBinary, create_engine, func, insert, select, text

from orchard.logs import event
from orchard.models import FieldValue, Point
from orchard.records import Records
from orchard.records.schema import metadata
from orchard.store import TimeSeriesStore

log = logging.getLogger("orchard.backup")
FORMAT = 1
SKIP_TABLES = {"sessions", "login_attempts"}
CHUNK_NS = 86400 * 1_000_000_000  # time series are read a day at a time: memory stays flat on a year of data
BATCH = 5000
Progress = Callable[[str, int], None]  # (what, how many more)


class BackupError(Exception):
    pass


@dataclass
class Summary:
    rows: dict[str, int] = field(default_factory=dict)  # table -> rows
    points: dict[str, int] = field(default_factory=dict)  # measurement -> rows (one timestamp of one series)
    files: int = 0


def _folders(data_dir: Path, snapshot_dir: Path) -> dict[str, Path]:
    return {"snapshots": snapshot_dir, "photos": data_dir / "photos"}


def _jsonable(row: dict[str, Any], binary: set[str]) -> dict[str, Any]:
    return {str(k): (base64.b64encode(v).decode() if k in binary and v is not None else v) for k, v in row.items()}


def _add_lines(tar: tarfile.TarFile, name: str, lines: Iterator[bytes]) -> None:
    """A member of JSON lines, spooled through a temporary file (a tar member needs its size first): a year of
    readings never sits in memory at once."""
    with tempfile.TemporaryFile() as spool:
        for line in lines:
            spool.write(line)
            spool.write(b"\n")
        info = tarfile.TarInfo(name)
        info.size, info.mtime = spool.tell(), int(time.time())
        spool.seek(0)
        tar.addfile(info, spool)


def _binary_columns(table: Any) -> set[str]:
    return {c.name for c in table.columns if isinstance(c.type, LargeBinary)}


def backup(records: Records, store: TimeSeriesStore, data_dir: Path, snapshot_dir: Path, out: Path,
           progress: Progress = lambda what, n: None) -> Summary:
    """Write the archive (readable by its owner only: it holds password hashes and device credentials). The
    records DB is read in one snapshot, so rows that refer to each other agree even while services write."""
    summary = Summary()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".partial")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # also when a .partial of an earlier run was left with other rights
    with os.fdopen(fd, "wb") as raw, tarfile.open(fileobj=raw, mode="w:gz") as tar:
        with snapshot(records) as conn:
            for table in metadata.sorted_tables:
                if table.name in SKIP_TABLES:
                    continue
                summary.rows[str(table.name)] = 0
                rows = conn.execution_options(stream_results=True).execute(select(table))
                _add_lines(tar, f"records/{table.name}.jsonl", _encoded(rows, table, summary))
                progress(f"records/{table.name}", summary.rows[str(table.name)])
        for m in store.measurements():
            summary.points[m] = 0
            _add_lines(tar, f"timeseries/{m}.jsonl", _points(store, m, summary, progress))
        for name, folder in _folders(data_dir, snapshot_dir).items():
            if folder.is_dir():
                for path in sorted(p for p in folder.rglob("*") if p.is_file()):
                    tar.add(path, f"files/{name}/{path.relative_to(folder)}")
                    summary.files += 1
                progress(f"files/{name}", summary.files)
        manifest = {"format": FORMAT, "created_ns": time.time_ns(), "rows": summary.rows, "points": summary.points,
                    "files": summary.files}
        _add_lines(tar, "manifest.json", iter([orjson.dumps(manifest)]))
    tmp.replace(out)
    event(log, "backup_written", path=str(out), tables=len(summary.rows), rows=sum(summary.rows.values()),
          points=sum(summary.points.values()), files=summary.files)
    return summary


@contextmanager
def snapshot(records: Records) -> Iterator[Connection]:
    """A connection that sees the records DB as of one moment. PostgreSQL: one REPEATABLE READ transaction.
    SQLite: a copy made by SQLite's online backup API in one step (under one read lock), read from there."""
    if records.engine.dialect.name == "postgresql":
        with records.engine.connect() as conn:
            conn = conn.execution_options(isolation_level="REPEATABLE READ")
            with conn.begin():
                yield conn
        return
    source = records.engine.raw_connection()
    with tempfile.TemporaryDirectory(prefix="orchard-backup-") as tmp:
        copy_path = Path(tmp) / "records.sqlite"
        copy = sqlite3.connect(copy_path)
        try:
            source.driver_connection.backup(copy)  # type: ignore[union-attr]
        finally:
            copy.close()
            source.close()
        engine = create_engine(f"sqlite:///{copy_path}")
        try:
            with engine.connect() as conn:
                yield conn
        finally:
            engine.dispose()


def _encoded(rows: Iterable[Any], table: Any, summary: Summary) -> Iterator[bytes]:
    binary = _binary_columns(table)
    for r in rows:
        summary.rows[str(table.name)] += 1
        yield orjson.dumps(_jsonable(dict(r._mapping), binary))


def _points(store: TimeSeriesStore, m: str, summary: Summary, progress: Progress) -> Iterator[bytes]:
    bounds, fields = store.time_bounds(m), store.field_keys(m)
    if bounds is None or not fields:
        return
    start = bounds[0] - bounds[0] % CHUNK_NS
    while start <= bounds[1]:
        rows = store.range(m, fields, start, start + CHUNK_NS)
        for r in rows:
            yield orjson.dumps({"t": r.time_ns, "tags": dict(r.tags), "f": dict(r.values)})
        summary.points[m] += len(rows)
        progress(f"timeseries/{m}", len(rows))
        start += CHUNK_NS


def _is_empty(engine: Engine) -> bool:
    with engine.connect() as conn:
        return all(conn.execute(select(func.count()).select_from(t)).scalar() == 0
                   for t in metadata.sorted_tables if t.name not in SKIP_TABLES)


def restore(records: Records, store: TimeSeriesStore, data_dir: Path, snapshot_dir: Path, archive: Path,
            progress: Progress = lambda what, n: None) -> Summary:
    if not _is_empty(records.engine):
        raise BackupError("记录库不是空的，恢复只能写入空库 / the records DB is not empty: restore only into an "
                          "empty one (a new ORCHARD_DB_URL or data dir)")
    if store.measurements():
        raise BackupError("时序库不是空的 / the time-series store is not empty: restore only into an empty one")
    store.ensure_ready()
    summary = Summary()
    folders = _folders(data_dir, snapshot_dir)
    with tarfile.open(archive, "r:gz") as tar:
        names = tar.getnames()
        if "manifest.json" not in names:
            raise BackupError(f"{archive} 不是果园备份 / is not an orchard backup (no manifest.json)")
        manifest = orjson.loads(b"".join(_lines(tar, "manifest.json")))
        if manifest.get("format") != FORMAT:
            raise BackupError(f"备份格式 {manifest.get('format')} 不支持 / unsupported backup format")
        for table in metadata.sorted_tables:  # parents before children (foreign keys)
            name = f"records/{table.name}.jsonl"
            if name not in names:
                continue
            binary = _binary_columns(table)
            n = 0
            with records.engine.begin() as conn:  # one table, one transaction, inserted a batch at a time
                for batch in _batches(_lines(tar, name)):
                    rows = [orjson.loads(line) for line in batch]
                    for r in rows:
                        for k in binary:
                            if r.get(k) is not None:
                                r[k] = base64.b64decode(r[k])
                    conn.execute(insert(table), rows)
                    n += len(rows)
            summary.rows[str(table.name)] = n
            progress(f"records/{table.name}", n)
        _reset_sequences(records.engine)
        for name in names:
            if name.startswith("timeseries/") and name.endswith(".jsonl"):
                m = name[len("timeseries/"):-len(".jsonl")]
                summary.points[m] = _restore_points(store, m, _lines(tar, name), progress)
            elif name.startswith("files/"):
                _, folder, rel = name.split("/", 2)
                member = tar.getmember(name)
                if folder not in folders or not member.isfile() or ".." in Path(rel).parts or rel.startswith("/"):
                    continue  # only regular files, only inside our folders
                target = folders[folder] / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                src = tar.extractfile(member)
                assert src is not None
                target.write_bytes(src.read())
                summary.files += 1
    event(log, "backup_restored", path=str(archive), rows=sum(summary.rows.values()),
          points=sum(summary.points.values()), files=summary.files)
    return summary


def _lines(tar: tarfile.TarFile, name: str) -> Iterator[bytes]:
    """The non-empty lines of a member, read as a stream."""
    f = tar.extractfile(name)
    if f is None:
        raise BackupError(f"{name} missing in the archive")
    for line in f:
        if line := line.rstrip(b"\n"):
            yield line


def _batches(lines: Iterator[bytes]) -> Iterator[list[bytes]]:
    batch: list[bytes] = []
    for line in lines:
        batch.append(line)
        if len(batch) >= BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def _restore_points(store: TimeSeriesStore, m: str, lines: Iterator[bytes], progress: Progress) -> int:
    n = 0
    for batch in _batches(lines):
        points = []
        for line in batch:
            d = orjson.loads(line)
            fields: dict[str, FieldValue] = d["f"]
            points.append(Point(m, d["tags"], fields, d["t"]))
        n += _write(store, points)
        progress(f"timeseries/{m}", len(points))
    return n


def _write(store: TimeSeriesStore, batch: list[Point]) -> int:
    result = store.write(batch)
    if result.rejected:
        raise BackupError(f"{len(result.rejected)} points refused by the store, e.g. {result.rejected[0].reason}")
    return len(batch)


def _reset_sequences(engine: Engine) -> None:
    """PostgreSQL hands out ids from a sequence that restored rows did not advance: move each past the max."""
    if engine.dialect.name != "postgresql":
        return
    with engine.begin() as conn:
        for table in metadata.sorted_tables:
            if "id" in table.c and table.c.id.primary_key and isinstance(table.c.id.type, Integer):
                conn.execute(text(f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), "
                                  f"COALESCE((SELECT MAX(id) FROM {table.name}), 0) + 1, false)"))
