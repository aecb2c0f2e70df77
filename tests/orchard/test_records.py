"""The records database on SQLite and on a real PostgreSQL: registry, dead letters, migrations."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from orchard.models import DeadLetter, Device
from orchard.records import Records, Sighting
from orchard.records.schema import metadata
from tests.conftest import unique

NS = 10**9


def letter(t: int, device: str | None, reason: str, payload: bytes = b"{}") -> DeadLetter:
    return DeadLetter(t * NS, f"orchard/s/p1/{device}/telemetry", payload, reason, device, "s", "p1")


def test_devices_upsert_status_and_eui(records: Records) -> None:
    records.upsert_device(Device("ws-1", "s", "p1", "approved", "weather_station", "A1B2", extra={"v": "hongyang"}))
    records.upsert_device(Device("ws-1", "s", "p2", "approved", "weather_station", "a1b2"))  # moved plot
    records.upsert_device(Device("sp-1", "s", "p1", "pending"))
    assert [(d.device, d.plot, d.status) for d in records.devices()] == [("sp-1", "p1", "pending"),
                                                                         ("ws-1", "p2", "approved")]
    assert records.set_device_status("sp-1", "rejected")
    assert not records.set_device_status("nobody", "approved")
    assert records.device_statuses() == {"ws-1": "approved", "sp-1": "rejected"}
    assert set(records.devices_by_eui()) == {"a1b2"}


def test_batch_keeps_newest_sighting_and_presence(records: Records) -> None:
    records.record_batch([], [Sighting("d1", "s", "p1", 100 * NS, "new")], [])
    records.record_batch([], [Sighting("d1", "s", "p1", 50 * NS, "new")], [("d1", "s", "p1", False, 60 * NS)])
    records.record_batch([], [], [("d2", "s", "p2", True, 70 * NS)])  # a last will from a device never seen
    by_id = {d.device: d for d in records.devices()}
    assert by_id["d1"].last_seen_ns == 100 * NS  # an older, late batch does not move it back
    assert by_id["d1"].online is False and by_id["d1"].status == "new"
    assert by_id["d2"].online is True and by_id["d2"].status == "pending"


def test_villages_sharing_one_records_db_each_have_their_ws_p01(records: Records) -> None:
    """Device ids are unique per village: each village's records see, approve and note their own station."""
    sun, hexi = Records("", records.engine, site="sunzigou"), Records("", records.engine, site="hexi")
    for r in (sun, hexi):
        r.upsert_device(Device("ws-p01", r.site or "", "p01", "pending", "weather"))
    assert sun.set_device_status("ws-p01", "approved")
    assert [(d.site, d.status) for d in sun.devices()] == [("sunzigou", "approved")]
    assert [(d.site, d.status) for d in hexi.devices()] == [("hexi", "pending")]
    sun.record_batch([], [Sighting("ws-p01", "sunzigou", "p01", 100 * NS, "new")],
                     [("ws-p01", "hexi", "p01", True, 90 * NS)])
    (s,), (h,) = sun.devices(), hexi.devices()
    assert (s.last_seen_ns, s.online) == (100 * NS, None) and (h.last_seen_ns, h.online) == (None, True)
    refused = DeadLetter(5 * NS, "orchard/hexi/p01/ws-p01/telemetry", b"{}", "out_of_range: rh_pct 140", "ws-p01",
                         "hexi", "p01")
    hexi.record_batch([(refused, False)], [], [])
    assert sun.dead_letters() == [] and len(hexi.dead_letters()) == 1 and len(records.devices()) == 2


def test_dead_letters_filters_and_counts(records: Records) -> None:
    records.record_batch(
        [(letter(1, "d1", "out_of_range: air_temp_c 99 > 60"), False),
         (letter(2, "d1", "bad_json: line 1"), False),
         (letter(3, "d2", "out_of_range: rh_pct -3 < 0"), False),
         (letter(4, None, "bad_topic"), False)],
        [], [])
    assert [x.letter.received_ns for x in records.dead_letters()] == [4 * NS, 3 * NS, 2 * NS, 1 * NS]
    assert [x.letter.device for x in records.dead_letters(kind="out_of_range")] == ["d2", "d1"]
    assert [x.letter.received_ns for x in records.dead_letters(since_ns=2 * NS, until_ns=4 * NS)] == [3 * NS, 2 * NS]
    assert [x.letter.reason for x in records.dead_letters(device="d1", limit=1)] == ["bad_json: line 1"]
    assert records.dead_letter_counts() == {("d1", "out_of_range"): 1, ("d1", "bad_json"): 1,
                                            ("d2", "out_of_range"): 1, (None, "bad_topic"): 1}


def test_held_readings_wait_for_approval_then_replay(records: Records) -> None:
    records.upsert_device(Device("new-1", "s", "p1", "pending"))
    payloads = [b'{"readings": {"air_temp_c": %d}}' % i for i in range(3)]
    records.record_batch([(letter(i, "new-1", "unknown_device: held", p), True) for i, p in enumerate(payloads)],
                         [], [])
    held = records.held("new-1")
    assert [h.letter.payload for h in held] == payloads  # oldest first, bytes intact
    assert records.approved_with_held() == []
    records.set_device_status("new-1", "approved")
    assert records.approved_with_held() == ["new-1"]
    records.mark_replayed([held[0].id, held[1].id], 9 * NS)
    records.unhold([held[2].id])
    assert records.held("new-1") == []
    assert records.approved_with_held() == []


def test_migrations_build_exactly_the_schema(records: Records) -> None:
    with records.engine.connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diffs == []


OLD_SCHEMA = """
CREATE TABLE devices (device TEXT PRIMARY KEY, site TEXT NOT NULL, plot TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'approved', kind TEXT NOT NULL DEFAULT '', dev_eui TEXT UNIQUE, online INTEGER,
    status_changed_ns INTEGER, last_seen_ns INTEGER, first_seen_ns INTEGER, extra TEXT NOT NULL DEFAULT '{}');
CREATE TABLE dead_letters (id INTEGER PRIMARY KEY, received_ns INTEGER NOT NULL, topic TEXT NOT NULL, site TEXT,
    plot TEXT, device TEXT, reason TEXT NOT NULL, payload BLOB NOT NULL, held INTEGER NOT NULL DEFAULT 0,
    replayed_ns INTEGER);
INSERT INTO devices (device, site, plot) VALUES ('old-1', 's', 'p1');
INSERT INTO dead_letters (received_ns, topic, device, reason, payload) VALUES (1, 't', 'old-1', 'bad_json: x', x'00');
"""


def test_a_registry_from_before_migrations_is_adopted(tmp_path: Path) -> None:
    path = tmp_path / "records.sqlite"
    with sqlite3.connect(path) as db:
        db.executescript(OLD_SCHEMA)
    records = Records(f"sqlite:///{path}")
    assert [d.device for d in records.devices()] == ["old-1"]
    assert records.dead_letter_counts() == {("old-1", "bad_json"): 1}
    assert records.dead_letters()[0].letter.payload == b"\x00"


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
def test_services_starting_together_migrate_once(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    url = (f"sqlite:///{tmp_path}/records.sqlite" if backend == "sqlite"
           else request.getfixturevalue("postgres").fresh_database(unique("race")))
    errors: list[BaseException] = []

    def start() -> None:
        try:
            Records(url).close()
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=start) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert Records(url).devices() == []
