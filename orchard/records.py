"""Records that are not time series: the device registry and the dead-letter store.

SQLite under ORCHARD_DATA_DIR for now (the alarm issue moves records to SQLAlchemy with PostgreSQL as an option);
every write is one transaction with synchronous=FULL, because ingest acknowledges MQTT messages after it.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import orjson

from orchard.models import DeadLetter, Device

_SCHEMA = """
CREATE TABLE IF NOT EXISTS devices (
    device TEXT PRIMARY KEY,
    site TEXT NOT NULL,
    plot TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'approved',   -- approved | new (accepted unknown) | pending | rejected
    kind TEXT NOT NULL DEFAULT '',
    dev_eui TEXT UNIQUE,
    online INTEGER,
    status_changed_ns INTEGER,
    last_seen_ns INTEGER,
    first_seen_ns INTEGER,
    extra TEXT NOT NULL DEFAULT '{}'
);
CREATE TABLE IF NOT EXISTS dead_letters (
    id INTEGER PRIMARY KEY,
    received_ns INTEGER NOT NULL,
    topic TEXT NOT NULL,
    site TEXT,
    plot TEXT,
    device TEXT,
    reason TEXT NOT NULL,
    payload BLOB NOT NULL,
    held INTEGER NOT NULL DEFAULT 0,     -- waiting for the device to be approved
    replayed_ns INTEGER                  -- set when a held payload went into the store
);
CREATE INDEX IF NOT EXISTS dead_letters_device ON dead_letters (device, received_ns);
CREATE INDEX IF NOT EXISTS dead_letters_time ON dead_letters (received_ns);
"""


@dataclass(frozen=True, slots=True)
class StoredDeadLetter:
    id: int
    letter: DeadLetter
    held: bool
    replayed_ns: int | None


@dataclass(frozen=True, slots=True)
class Sighting:
    """Where and when ingest last heard from a device, written once per batch."""

    device: str
    site: str
    plot: str
    time_ns: int
    status: str  # the status a first sighting registers the device with


class Records:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._db = sqlite3.connect(path, timeout=30, check_same_thread=False, isolation_level=None)
        self._lock = threading.Lock()
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)

    @classmethod
    def in_data_dir(cls, data_dir: Path) -> Records:
        return cls(data_dir / "records.sqlite")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- devices ----------------------------------------------------------------------------------------------
    def upsert_device(self, d: Device) -> None:
        with self._lock:
            self._db.execute(
                "INSERT INTO devices (device, site, plot, status, kind, dev_eui, extra) VALUES (?,?,?,?,?,?,?) "
                "ON CONFLICT (device) DO UPDATE SET site=excluded.site, plot=excluded.plot, status=excluded.status,"
                " kind=excluded.kind, dev_eui=excluded.dev_eui, extra=excluded.extra",
                (d.device, d.site, d.plot, d.status, d.kind, d.dev_eui, orjson.dumps(dict(d.extra)).decode()),
            )

    def set_device_status(self, device: str, status: str) -> bool:
        with self._lock:
            cur = self._db.execute("UPDATE devices SET status = ? WHERE device = ?", (status, device))
        return cur.rowcount == 1

    def devices(self) -> list[Device]:
        with self._lock:
            rows = self._db.execute(
                "SELECT device, site, plot, status, kind, dev_eui, online, last_seen_ns, extra FROM devices "
                "ORDER BY site, plot, device"
            ).fetchall()
        return [
            Device(r[0], r[1], r[2], r[3], r[4], r[5], None if r[6] is None else bool(r[6]), r[7], orjson.loads(r[8]))
            for r in rows
        ]

    def device_statuses(self) -> dict[str, str]:
        with self._lock:
            return dict(self._db.execute("SELECT device, status FROM devices").fetchall())

    def devices_by_eui(self) -> dict[str, Device]:
        return {d.dev_eui.lower(): d for d in self.devices() if d.dev_eui}

    # -- what ingest writes per batch -------------------------------------------------------------------------
    def record_batch(
        self,
        letters: Sequence[tuple[DeadLetter, bool]],
        sightings: Iterable[Sighting],
        presence: Iterable[tuple[str, str, str, bool, int]],
    ) -> None:
        """Dead letters (with their held flag), last-seen times and online/offline changes, in one commit."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.executemany(
                    "INSERT INTO dead_letters (received_ns, topic, site, plot, device, reason, payload, held) "
                    "VALUES (?,?,?,?,?,?,?,?)",
                    [
                        (dl.received_ns, dl.topic, dl.site, dl.plot, dl.device, dl.reason, dl.payload, int(held))
                        for dl, held in letters
                    ],
                )
                self._db.executemany(
                    "INSERT INTO devices (device, site, plot, status, first_seen_ns, last_seen_ns) "
                    "VALUES (?,?,?,?,?,?) ON CONFLICT (device) DO UPDATE SET "
                    "last_seen_ns = max(coalesce(last_seen_ns, 0), excluded.last_seen_ns)",
                    [(s.device, s.site, s.plot, s.status, s.time_ns, s.time_ns) for s in sightings],
                )
                self._db.executemany(
                    "INSERT INTO devices (device, site, plot, status, online, status_changed_ns) "
                    "VALUES (?,?,?,'pending',?,?) ON CONFLICT (device) DO UPDATE SET "
                    "online = excluded.online, status_changed_ns = excluded.status_changed_ns",
                    [(dev, site, plot, int(online), t) for dev, site, plot, online, t in presence],
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    # -- dead letters -----------------------------------------------------------------------------------------
    def dead_letters(
        self, *, device: str | None = None, since_ns: int | None = None, until_ns: int | None = None,
        kind: str | None = None, limit: int = 1000,
    ) -> list[StoredDeadLetter]:
        """Newest first; kind is the reason's text before the first colon (``out_of_range``)."""
        conds: list[str] = []
        args: list[object] = []
        if device is not None:
            conds.append("device = ?")
            args.append(device)
        if since_ns is not None:
            conds.append("received_ns >= ?")
            args.append(since_ns)
        if until_ns is not None:
            conds.append("received_ns < ?")
            args.append(until_ns)
        if kind is not None:
            conds.append("(reason = ? OR substr(reason, 1, length(?) + 1) = ? || ':')")
            args.extend([kind, kind, kind])
        return self._select_letters(conds, args, "id DESC", limit)

    def _select_letters(self, conds: list[str], args: list[object], order: str, limit: int) -> list[StoredDeadLetter]:
        sql = "SELECT id, received_ns, topic, payload, reason, device, site, plot, held, replayed_ns FROM dead_letters"
        if conds:
            sql += " WHERE " + " AND ".join(conds)
        sql += f" ORDER BY {order} LIMIT ?"
        with self._lock:
            rows = self._db.execute(sql, [*args, limit]).fetchall()
        return [
            StoredDeadLetter(r[0], DeadLetter(r[1], r[2], bytes(r[3]), r[4], r[5], r[6], r[7]), bool(r[8]), r[9])
            for r in rows
        ]

    def dead_letter_counts(self) -> dict[tuple[str | None, str], int]:
        """(device, reason kind) -> count; the reason kind is the text before the first colon."""
        with self._lock:
            rows = self._db.execute(
                "SELECT device, CASE WHEN instr(reason, ':') > 0 THEN substr(reason, 1, instr(reason, ':') - 1) "
                "ELSE reason END AS kind, count(*) FROM dead_letters GROUP BY device, kind"
            ).fetchall()
        return {(d, k): n for d, k, n in rows}

    def held(self, device: str) -> list[StoredDeadLetter]:
        """A device's readings waiting for its approval, oldest first (the order they are replayed in)."""
        return self._select_letters(["device = ?", "held = 1", "replayed_ns IS NULL"], [device], "id", -1)

    def approved_with_held(self) -> list[str]:
        """Approved devices that still have held readings waiting to be replayed."""
        with self._lock:
            rows = self._db.execute(
                "SELECT DISTINCT d.device FROM dead_letters l JOIN devices d ON d.device = l.device "
                "WHERE l.held = 1 AND l.replayed_ns IS NULL AND d.status = 'approved' ORDER BY d.device"
            ).fetchall()
        return [r[0] for r in rows]

    def unhold(self, ids: Sequence[int]) -> None:
        with self._lock:
            self._db.executemany("UPDATE dead_letters SET held = 0 WHERE id = ?", [(i,) for i in ids])

    def mark_replayed(self, ids: Sequence[int], when_ns: int) -> None:
        with self._lock:
            self._db.executemany("UPDATE dead_letters SET replayed_ns = ? WHERE id = ?", [(when_ns, i) for i in ids])
