"""The embedded store: SQLite in WAL mode, one writer process and any number of reader processes.

Narrow layout (one row per field value) so any measurement, tag set and field set fits without migrations,
and so the same series, field and timestamp written twice is one row (idempotent, as in InfluxDB).
Tag filters and grouping run in Python over the small series table; the big points table is read by its
primary key (series, field, time).
"""

from __future__ import annotations

import sqlite3
import threading
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson

from orchard.models import FieldValue, Point
from orchard.store.base import (
    Aggregate,
    LatestValue,
    Rejected,
    Row,
    StoreUnavailable,
    Where,
    WriteResult,
    check_at_least,
    where_items,
)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS series (
    id INTEGER PRIMARY KEY,
    measurement TEXT NOT NULL,
    tags TEXT NOT NULL,
    UNIQUE (measurement, tags)
);
CREATE TABLE IF NOT EXISTS points (
    series_id INTEGER NOT NULL,
    field TEXT NOT NULL,
    time_ns INTEGER NOT NULL,
    value,
    PRIMARY KEY (series_id, field, time_ns)
) WITHOUT ROWID;
"""


class SQLiteStore:
    def __init__(self, path: Path, *, busy_timeout_s: float = 30.0) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        # One connection guarded by a lock: Streamlit and ingest call from several threads.
        self._db = sqlite3.connect(path, timeout=busy_timeout_s, check_same_thread=False, isolation_level=None)
        self._lock = threading.Lock()
        self._series_ids: dict[tuple[str, str], int] = {}
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            # FULL: a commit survives power loss, so an MQTT ack after write() is a promise kept.
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)

    def ping(self) -> None:
        try:
            with self._lock:
                self._db.execute("SELECT 1").fetchone()
        except sqlite3.Error as e:
            raise StoreUnavailable(f"SQLite store {self.path} unusable: {e}") from e

    def ensure_ready(self) -> None:
        """The schema is created on open."""

    # -- writing ----------------------------------------------------------------------------------------------
    def _series_id(self, measurement: str, tags: str) -> int:
        key = (measurement, tags)
        sid = self._series_ids.get(key)
        if sid is None:
            self._db.execute(
                "INSERT INTO series (measurement, tags) VALUES (?, ?) ON CONFLICT DO NOTHING", key
            )
            sid = self._db.execute(
                "SELECT id FROM series WHERE measurement = ? AND tags = ?", key
            ).fetchone()[0]
            self._series_ids[key] = sid
        return sid

    def write(self, points: Sequence[Point]) -> WriteResult:
        rows: list[tuple[int, str, int, Any]] = []
        rejected: list[Rejected] = []
        written = 0
        try:
            with self._lock:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    for p in points:
                        vals = [(k, v) for k, v in p.fields.items() if _storable(v)]
                        if not vals:
                            rejected.append(Rejected(p, "point has no writable field (all empty or not finite)"))
                            continue
                        sid = self._series_id(p.measurement, _tags_key(p.tags))
                        rows.extend((sid, k, p.time_ns, v) for k, v in vals)
                        written += 1
                    self._db.executemany(
                        "INSERT INTO points VALUES (?, ?, ?, ?) "
                        "ON CONFLICT DO UPDATE SET value = excluded.value",
                        rows,
                    )
                    self._db.execute("COMMIT")
                except BaseException:
                    self._db.execute("ROLLBACK")
                    self._series_ids.clear()  # ids created in the rolled-back transaction are gone
                    raise
        except sqlite3.Error as e:
            raise StoreUnavailable(f"SQLite write failed: {e}") from e
        return WriteResult(written=written, rejected=tuple(rejected))

    # -- reading ----------------------------------------------------------------------------------------------
    def _series(self, measurement: str, where: Where | None) -> dict[int, dict[str, str]]:
        wanted = where_items(where)
        with self._lock:
            found = self._db.execute("SELECT id, tags FROM series WHERE measurement = ?", (measurement,)).fetchall()
        out: dict[int, dict[str, str]] = {}
        for sid, raw in found:
            tags = orjson.loads(raw)
            if all(tags.get(k) in values for k, values in wanted):
                out[sid] = tags
        return out

    def _select(self, sql: str, series: dict[int, Any], fields: Sequence[str], args: Sequence[Any]) -> list[Any]:
        sids, flds = list(series), list(fields)
        sql = sql.format(sids=_marks(sids), fields=_marks(flds))
        with self._lock:
            return self._db.execute(sql, [*sids, *flds, *args]).fetchall()

    def latest(
        self, measurement: str, fields: Sequence[str], where: Where | None = None, since_ns: int | None = None
    ) -> list[LatestValue]:
        series = self._series(measurement, where)
        if not series or not fields:
            return []
        # SQLite's documented bare-column rule: with a single max(), `value` comes from the max row.
        rows = self._select(
            "SELECT series_id, field, max(time_ns), value FROM points "
            "WHERE series_id IN ({sids}) AND field IN ({fields}) AND time_ns >= ? GROUP BY series_id, field",
            series, fields, [since_ns if since_ns is not None else -(2**63)],
        )
        return [LatestValue(series[sid], f, t, v) for sid, f, t, v in rows]

    def aggregate(
        self,
        measurement: str,
        fields: Sequence[str],
        fns: Sequence[Aggregate],
        start_ns: int,
        end_ns: int,
        every_ns: int | None = None,
        group_by: Sequence[str] = (),
        where: Where | None = None,
        offset_ns: int = 0,
        at_least: float | None = None,
    ) -> list[Row]:
        check_at_least(fields, at_least)
        series = self._series(measurement, where)
        if not series or not fields or not fns:
            return []
        every = int(every_ns) if every_ns else None
        off = int(offset_ns) % every if every else 0
        bucket = "((time_ns - ?) / ?) * ? + ?" if every else "?"
        bucket_args: list[Any] = [off, every, every, off] if every else [start_ns]
        # Per series partials, combined per group below: exact for every function, any grouping.
        parts = self._select_buckets(bucket, bucket_args, series, fields, start_ns, end_ns, at_least)
        acc: dict[tuple[tuple[tuple[str, str], ...], int, str], list[Any]] = {}
        for sid, f, b, n, s, lo, hi in parts:
            gkey = tuple((g, series[sid][g]) for g in group_by if g in series[sid])
            a = acc.setdefault((gkey, b, f), [0, 0.0, None, None, None, None])
            a[0] += n
            a[1] += s or 0
            a[2] = lo if a[2] is None else min(a[2], lo)
            a[3] = hi if a[3] is None else max(a[3], hi)
        if "last" in fns:
            for sid, f, b, t, v in self._select_last(bucket, bucket_args, series, fields, start_ns, end_ns, at_least):
                gkey = tuple((g, series[sid][g]) for g in group_by if g in series[sid])
                a = acc[(gkey, b, f)]
                if a[4] is None or t > a[4]:
                    a[4], a[5] = t, v
        grouped: dict[tuple[tuple[tuple[str, str], ...], int], dict[str, FieldValue]] = defaultdict(dict)
        for (gkey, b, f), (n, s, lo, hi, _, last) in acc.items():
            values = {"mean": s / n, "min": lo, "max": hi, "last": last, "sum": s, "count": n}
            for fn in fns:
                grouped[(gkey, b)][f"{f}.{fn}"] = values[fn]
        rows = [Row(b, dict(gkey), vals) for (gkey, b), vals in grouped.items()]
        rows.sort(key=lambda r: (sorted(r.tags.items()), r.time_ns))
        return rows

    def _select_buckets(
        self, bucket: str, bucket_args: list[Any], series: dict[int, Any], fields: Sequence[str], start: int, end: int,
        at_least: float | None = None,
    ) -> list[Any]:
        sids, flds = list(series), list(fields)
        sql = (
            f"SELECT series_id, field, {bucket} AS b, count(value), sum(value), min(value), max(value) "
            f"FROM points WHERE series_id IN ({_marks(sids)}) AND field IN ({_marks(flds)}) "
            "AND time_ns >= ? AND time_ns < ?" + (" AND value >= ?" if at_least is not None else "")
            + " GROUP BY series_id, field, b"
        )
        floor = [at_least] if at_least is not None else []
        with self._lock:
            return self._db.execute(sql, [*bucket_args, *sids, *flds, start, end, *floor]).fetchall()

    def _select_last(
        self, bucket: str, bucket_args: list[Any], series: dict[int, Any], fields: Sequence[str], start: int, end: int,
        at_least: float | None = None,
    ) -> list[Any]:
        sids, flds = list(series), list(fields)
        sql = (
            f"SELECT series_id, field, {bucket} AS b, max(time_ns), value "
            f"FROM points WHERE series_id IN ({_marks(sids)}) AND field IN ({_marks(flds)}) "
            "AND time_ns >= ? AND time_ns < ?" + (" AND value >= ?" if at_least is not None else "")
            + " GROUP BY series_id, field, b"
        )
        floor = [at_least] if at_least is not None else []
        with self._lock:
            return self._db.execute(sql, [*bucket_args, *sids, *flds, start, end, *floor]).fetchall()

    def range(
        self,
        measurement: str,
        fields: Sequence[str],
        start_ns: int,
        end_ns: int,
        where: Where | None = None,
    ) -> list[Row]:
        series = self._series(measurement, where)
        if not series or not fields:
            return []
        found = self._select(
            "SELECT series_id, time_ns, field, value FROM points WHERE series_id IN ({sids}) "
            "AND field IN ({fields}) AND time_ns >= ? AND time_ns < ?",
            series, fields, [start_ns, end_ns],
        )
        merged: dict[tuple[int, int], dict[str, FieldValue]] = defaultdict(dict)
        for sid, t, f, v in found:
            merged[(sid, t)][f] = v
        rows = [Row(t, series[sid], vals) for (sid, t), vals in merged.items()]
        rows.sort(key=lambda r: (sorted(r.tags.items()), r.time_ns))
        return rows

    def tag_values(self, measurement: str, key: str, where: Where | None = None) -> list[str]:
        return sorted({tags[key] for tags in self._series(measurement, where).values() if key in tags})

    def measurements(self) -> list[str]:
        with self._lock:
            rows = self._db.execute("SELECT DISTINCT measurement FROM series s WHERE EXISTS "
                                    "(SELECT 1 FROM points p WHERE p.series_id = s.id)").fetchall()
        return sorted(r[0] for r in rows)

    def field_keys(self, measurement: str) -> list[str]:
        with self._lock:
            rows = self._db.execute("SELECT DISTINCT field FROM points WHERE series_id IN "
                                    "(SELECT id FROM series WHERE measurement = ?)", (measurement,)).fetchall()
        return sorted(r[0] for r in rows)

    def time_bounds(self, measurement: str) -> tuple[int, int] | None:
        with self._lock:
            lo, hi = self._db.execute("SELECT MIN(time_ns), MAX(time_ns) FROM points WHERE series_id IN "
                                      "(SELECT id FROM series WHERE measurement = ?)", (measurement,)).fetchone()
        return None if lo is None else (int(lo), int(hi))

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _tags_key(tags: Any) -> str:
    return orjson.dumps({k: v for k, v in tags.items() if k and v}, option=orjson.OPT_SORT_KEYS).decode()


def _storable(v: object) -> bool:
    if isinstance(v, float):
        return v == v and v not in (float("inf"), float("-inf"))
    return isinstance(v, int | str)


def _marks(items: Sequence[Any]) -> str:
    return ",".join("?" * len(items))
