"""Records that are not time series: the device registry and the dead-letter store, in the records database
(orchard/records/db.py: SQLite by default, PostgreSQL by ORCHARD_DB_URL; tables in orchard/records/schema.py).

Every write is one transaction: ingest acknowledges MQTT messages after it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Engine, bindparam, case, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from orchard.models import DeadLetter, Device
from orchard.records import db
from orchard.records.schema import dead_letters as L
from orchard.records.schema import devices as D
from orchard.records.schema import reason_kind
from orchard.settings import Settings


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


@dataclass(frozen=True, slots=True)
class Failures:
    """One device's dead letters of some kinds over a period: how many, the first and last, the last reason."""

    count: int
    first_ns: int
    last_ns: int
    reason: str


class Records:
    def __init__(self, url: str, engine: Engine | None = None, site: str | None = None) -> None:
        self.engine = engine or db.make_engine(url)
        # The village whose devices and dead letters these are (villages sharing one records DB each have a
        # ws-p01); None: every village's. The other books have their own village (AlarmBook, People, WorkOrders).
        self.site = site
        db.migrate(self.engine)

    @classmethod
    def open(cls, settings: Settings) -> Records:
        """The records DB, with every village's devices (ingest, which files each device under the village its
        topic names, and the operator's commands)."""
        return cls(settings.records_url)

    @classmethod
    def village(cls, settings: Settings) -> Records:
        """The records DB, with the devices and dead letters of this process's village (ORCHARD_SITE) only: what
        the analytics engine judges and a village's dashboard shows."""
        return cls(settings.records_url, site=settings.site)

    @classmethod
    def in_data_dir(cls, data_dir: Path, site: str | None = None) -> Records:
        """The default SQLite file of a data dir (what `open` uses when ORCHARD_DB_URL is not set)."""
        return cls(f"sqlite:///{data_dir}/records.sqlite", site=site)

    def _dev(self, stmt: Any) -> Any:
        """A devices query cut to this village."""
        return stmt.where(D.c.site == self.site) if self.site is not None else stmt

    def _letters(self, conds: list[Any]) -> list[Any]:
        """Dead letters of this village, and those whose topic named no village."""
        return [*conds, L.c.site.is_(None) | (L.c.site == self.site)] if self.site is not None else conds

    def close(self) -> None:
        self.engine.dispose()

    def _upsert(self, table: Any) -> Any:
        """INSERT ... ON CONFLICT, in the dialect at hand (both SQLite and PostgreSQL speak it)."""
        return (postgresql.insert if self.engine.dialect.name == "postgresql" else sqlite.insert)(table)

    # -- devices ----------------------------------------------------------------------------------------------
    def upsert_device(self, d: Device) -> None:
        row = {"device": d.device, "site": d.site, "plot": d.plot, "status": d.status, "kind": d.kind,
               "dev_eui": d.dev_eui, "extra": orjson.dumps(dict(d.extra)).decode(), "profile": d.profile}
        stmt = self._upsert(D).values(**row)
        stmt = stmt.on_conflict_do_update(index_elements=[D.c.site, D.c.device],
                                          set_={k: stmt.excluded[k] for k in row if k not in ("device", "site")})
        with self.engine.begin() as conn:
            conn.execute(stmt)

    def set_device_status(self, device: str, status: str) -> bool:
        with self.engine.begin() as conn:
            return conn.execute(self._dev(update(D).where(D.c.device == device)).values(status=status)).rowcount == 1

    def devices(self) -> list[Device]:
        cols = (D.c.device, D.c.site, D.c.plot, D.c.status, D.c.kind, D.c.dev_eui, D.c.online, D.c.last_seen_ns,
                D.c.extra, D.c.profile, D.c.unmapped, D.c.clock_skew_s)
        with self.engine.connect() as conn:
            rows = conn.execute(self._dev(select(*cols)).order_by(D.c.site, D.c.plot, D.c.device)).all()
        return [Device(r[0], r[1], r[2], r[3], r[4], r[5], None if r[6] is None else bool(r[6]), r[7],
                       orjson.loads(r[8]), r[9], tuple(orjson.loads(r[10])) if r[10] else (), r[11]) for r in rows]

    def note_clock_skew(self, device: str, skew_s: int) -> None:
        """Its uplinks carry a gateway time this far off the network server's: they are filed at the server's."""
        with self.engine.begin() as conn:
            conn.execute(self._dev(update(D).where(D.c.device == device)).values(clock_skew_s=skew_s))

    def note_unmapped(self, device: str, fields: Sequence[str], day: str) -> bool:
        """Record the payload fields a device's profile does not know, at most once per device and day (a
        new field is worth a look, not a dead letter per uplink). True when this was the day's first report."""
        with self.engine.begin() as conn:
            done = conn.execute(self._dev(update(D).where(D.c.device == device, (D.c.unmapped_day.is_(None))
                                                          | (D.c.unmapped_day != day)))
                                .values(unmapped=orjson.dumps(sorted(fields)).decode(), unmapped_day=day))
            return bool(done.rowcount)

    def note_payloads(self, payloads: Sequence[tuple[str, int, str, bytes]]) -> None:
        """(device, received_ns, topic, payload): the last payload each device sent, for the devices page."""
        if not payloads:
            return
        stmt = (self._dev(update(D).where(D.c.device == bindparam("dev")))
                .values(last_payload=bindparam("payload"), last_payload_ns=bindparam("ns"),
                        last_topic=bindparam("topic")))
        with self.engine.begin() as conn:
            conn.execute(stmt, [{"dev": d, "ns": t, "topic": topic, "payload": p} for d, t, topic, p in payloads])

    def last_payload(self, device: str) -> tuple[int, str, bytes] | None:
        """(received_ns, topic, payload) of the device's last stored payload, if ingest has noted one."""
        with self.engine.connect() as conn:
            row = conn.execute(self._dev(select(D.c.last_payload_ns, D.c.last_topic, D.c.last_payload)
                                         .where(D.c.device == device))).first()
        if row is None or row[2] is None:
            return None
        return int(row[0]), str(row[1]), bytes(row[2])

    def device_statuses(self) -> dict[str, str]:
        with self.engine.connect() as conn:
            return {r[0]: r[1] for r in conn.execute(self._dev(select(D.c.device, D.c.status)))}

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
        seen = [{"device": s.device, "site": s.site, "plot": s.plot, "status": s.status, "first_seen_ns": s.time_ns,
                 "last_seen_ns": s.time_ns} for s in sightings]
        told = [{"device": dev, "site": site, "plot": plot, "status": "pending", "online": online,
                 "status_changed_ns": t} for dev, site, plot, online, t in presence]
        with self.engine.begin() as conn:
            if letters:
                conn.execute(insert(L), [
                    {"received_ns": dl.received_ns, "topic": dl.topic, "site": dl.site, "plot": dl.plot,
                     "device": dl.device, "kind": reason_kind(dl.reason), "reason": dl.reason,
                     "payload": dl.payload, "held": held, "payload_size": dl.payload_size,
                     "payload_sha256": dl.payload_sha256} for dl, held in letters])
            if seen:
                stmt = self._upsert(D)
                newest = case((stmt.excluded.last_seen_ns > func.coalesce(D.c.last_seen_ns, 0),
                               stmt.excluded.last_seen_ns), else_=D.c.last_seen_ns)
                conn.execute(stmt.on_conflict_do_update(index_elements=[D.c.site, D.c.device],
                                                        set_={"last_seen_ns": newest}), seen)
            if told:
                stmt = self._upsert(D)
                conn.execute(stmt.on_conflict_do_update(
                    index_elements=[D.c.site, D.c.device],
                    set_={"online": stmt.excluded.online, "status_changed_ns": stmt.excluded.status_changed_ns}),
                    told)

    # -- dead letters -----------------------------------------------------------------------------------------
    def dead_letters(
        self, *, device: str | None = None, since_ns: int | None = None, until_ns: int | None = None,
        kind: str | None = None, limit: int = 1000,
    ) -> list[StoredDeadLetter]:
        """Newest first; kind is the reason's text before the first colon (``out_of_range``)."""
        conds = []
        if device is not None:
            conds.append(L.c.device == device)
        if since_ns is not None:
            conds.append(L.c.received_ns >= since_ns)
        if until_ns is not None:
            conds.append(L.c.received_ns < until_ns)
        if kind is not None:
            conds.append(L.c.kind == kind)
        return self._select_letters(self._letters(conds), L.c.id.desc(), limit)

    def _select_letters(self, conds: list[Any], order: Any, limit: int | None) -> list[StoredDeadLetter]:
        stmt = select(L.c.id, L.c.received_ns, L.c.topic, L.c.payload, L.c.reason, L.c.device, L.c.site, L.c.plot,
                      L.c.held, L.c.replayed_ns, L.c.payload_size, L.c.payload_sha256
                      ).where(*conds).order_by(order).limit(limit)
        with self.engine.connect() as conn:
            rows = conn.execute(stmt).all()
        return [StoredDeadLetter(r[0], DeadLetter(r[1], r[2], bytes(r[3]), r[4], r[5], r[6], r[7], r[10], r[11]),
                                 bool(r[8]), r[9]) for r in rows]

    def dead_letter_counts(self) -> dict[tuple[str | None, str], int]:
        """(device, reason kind) -> count; the reason kind is the text before the first colon."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(L.c.device, L.c.kind, func.count()).where(*self._letters([]))
                                .group_by(L.c.device, L.c.kind)).all()
        return {(d, k): n for d, k, n in rows}

    def failures(self, kinds: Sequence[str], since_ns: int) -> dict[str, Failures]:
        """Per device: its dead letters of these reason kinds received since then (ingest files them under the
        registered device, so a device's codec errors are found here by its id)."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(L.c.device, func.count(), func.min(L.c.received_ns), func.max(L.c.received_ns))
                                .where(*self._letters([L.c.received_ns >= since_ns, L.c.kind.in_(list(kinds)),
                                                       L.c.device.is_not(None)]))
                                .group_by(L.c.device)).all()
            out = {}
            for device, n, first, last in rows:
                reason = conn.execute(select(L.c.reason).where(*self._letters([
                    L.c.device == device, L.c.received_ns == last, L.c.kind.in_(list(kinds))])).limit(1)).scalar()
                out[str(device)] = Failures(int(n), int(first), int(last), str(reason or ""))
        return out

    def held(self, device: str) -> list[StoredDeadLetter]:
        """A device's readings waiting for its approval, oldest first (the order they are replayed in)."""
        return self._select_letters(self._letters([L.c.device == device, L.c.held.is_(True),
                                                   L.c.replayed_ns.is_(None)]), L.c.id, None)

    def held_counts(self, devices: Sequence[str]) -> dict[str, int]:
        """How many readings each of these devices has waiting, in one query (the pending list's page)."""
        if not devices:
            return {}
        stmt = (select(L.c.device, func.count()).where(*self._letters([
            L.c.device.in_(list(devices)), L.c.held.is_(True), L.c.replayed_ns.is_(None)])).group_by(L.c.device))
        with self.engine.connect() as conn:
            return {r[0]: int(r[1]) for r in conn.execute(stmt)}

    def approved_with_held(self) -> list[str]:
        """Approved devices that still have held readings waiting to be replayed."""
        stmt = (self._dev(select(D.c.device).distinct()
                          .join_from(L, D, (L.c.device == D.c.device) & (L.c.site == D.c.site))
                          .where(L.c.held.is_(True), L.c.replayed_ns.is_(None), D.c.status == "approved"))
                .order_by(D.c.device))
        with self.engine.connect() as conn:
            return [r[0] for r in conn.execute(stmt)]

    def unhold(self, ids: Sequence[int]) -> None:
        if ids:
            with self.engine.begin() as conn:
                conn.execute(update(L).where(L.c.id.in_(list(ids))).values(held=False))

    def mark_replayed(self, ids: Sequence[int], when_ns: int) -> None:
        if ids:
            with self.engine.begin() as conn:
                conn.execute(update(L).where(L.c.id.in_(list(ids))).values(replayed_ns=when_ns))
