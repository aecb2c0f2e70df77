"""Backup, then restore into empty stores, gives the same data: every records table, every time series, every
file; across backends (SQLite to PostgreSQL and InfluxDB, and back), through `orchard admin backup|restore`."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from app.backup import SKIP_TABLES, BackupError, backup, restore
from app.cli import app
from app.mqttauth import DeviceKeys
from orchard.models import DeadLetter, Point, Signal
from orchard.records import Records
from orchard.records.accounts import Accounts
from orchard.records.alarms import AlarmBook
from orchard.records.audit import AuditLog
from orchard.records.lots import Lots
from orchard.records.people import People, User
from orchard.records.schema import metadata
from orchard.records.workorders import WorkOrders
from orchard.settings import DashboardSettings, Settings
from orchard.site import site_for
from orchard.store import TimeSeriesStore, open_store
from tests.conftest import influx_url, unique
from tests.dashboard.conftest import seed

pytestmark = pytest.mark.integration
NS = 1_000_000_000
JPEG = b"\xff\xd8\xff\xe0" + bytes(range(256)) * 4 + b"\xff\xd9"


def dump_records(records: Records) -> dict[str, list[tuple[Any, ...]]]:
    out = {}
    with records.engine.connect() as conn:
        for t in metadata.sorted_tables:
            if t.name not in SKIP_TABLES:
                out[t.name] = sorted((tuple(r) for r in conn.execute(select(t))), key=repr)
    return out


def dump_store(store: TimeSeriesStore) -> dict[str, list[tuple[Any, ...]]]:
    out = {}
    for m in store.measurements():
        fields = store.field_keys(m)
        lo, hi = store.time_bounds(m) or (0, 0)
        rows = store.range(m, fields, lo, hi + 1)
        out[m] = sorted(((r.time_ns, tuple(sorted(r.tags.items())), tuple(sorted(r.values.items()))) for r in rows),
                        key=repr)
    return out


def dump_files(*folders: Path) -> dict[str, bytes]:
    return {f"{d.name}/{p.relative_to(d)}": p.read_bytes() for d in folders if d.is_dir()
            for p in sorted(d.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def village(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Half a day of 24 devices' readings, and something in every table: people with passwords and plots, an alarm
    with events, a work order with its photo, a lot, device credentials, a dead letter (binary payload), the audit
    log; camera snapshots and a report photo on disk."""
    d = tmp_path_factory.mktemp("backup-src")
    seeded = seed(d, f"sqlite:///{d}/ts.sqlite", 0.5, time.time())
    settings = Settings(data_dir=d, store_url=seeded.store_url)
    records = Records.open(settings)
    now = time.time_ns()
    people = People(records)
    people.upsert(User("wang", "王建国", "farmer", phone="13800000001", channels=("dingtalk", "inbox")))
    people.set_plots("wang", ["p01"], "owns")
    Accounts(records, DashboardSettings()).set_password("wang", "a-long-password-1", now)
    book = AlarmBook(records)
    alarm, _ = book.fire(Signal("sunzigou", "plot:p01", "spring_frost", "critical", "alarm.spring_frost_text",
                                {"plot": "p01", "temp_c": -2.1}, "p01"), now)
    book.ack(alarm.id, "wang", now + NS)
    WorkOrders(records, d / "photos").open(plot="p01", title="霜冻巡查", created_by="wang", now_ns=now,
                                           source="photo", photo=JPEG)
    lots = Lots(records, site_for(settings))
    lot = lots.start("line-1", "p01", "tester", now_ns=now - 60 * NS)
    lots.end(lot.id, "tester", now)
    DeviceKeys(records).issue("ws-p01", "orchard/sunzigou/p01/ws-p01", now)
    AuditLog(records).record("cli:root", "user.add", "wang", now, role="farmer")
    records.record_batch([(DeadLetter(now, "orchard/sunzigou/p01/x/telemetry", b"\x00\xffnot json", "bad_json: x",
                                      "x", "sunzigou", "p01"), True)], [], [])
    store = open_store(seeded.store_url)
    store.write([Point("camera", {"site": "sunzigou", "plot": "p01", "camera": "cam-p01"},
                       {"health": "ok", "motion": 1.5, "objects": 2, "intrusion": ""}, now)])
    store.close()
    snap = settings.snapshot_dir / "cam-p01" / "2026-11-22"
    snap.mkdir(parents=True)
    (snap / "1200.jpg").write_bytes(JPEG)
    (snap / "1200.thumb.jpg").write_bytes(JPEG[:100])
    records.close()
    yield d


@pytest.mark.parametrize("target", ["sqlite", "postgresql+influxdb"])
def test_backup_then_restore_gives_the_same_data(village: Path, target: str, tmp_path: Path,
                                                 request: pytest.FixtureRequest) -> None:
    src = Settings(data_dir=village, store_url=f"sqlite:///{village}/ts.sqlite")
    archive = tmp_path / "orchard-backup.tar.gz"
    records, store = Records.open(src), open_store(src.store_url)
    summary = backup(records, store, src.data_dir, src.snapshot_dir, archive)
    assert summary.rows["users"] == 1 and summary.points["telemetry"] > 10_000 and summary.files == 3
    before = dump_records(records), dump_store(store), dump_files(src.snapshot_dir, src.data_dir / "photos")
    records.close()
    store.close()

    dst_dir = tmp_path / "restored"
    if target == "sqlite":
        dst = Settings(data_dir=dst_dir, store_url=f"sqlite:///{dst_dir}/ts.sqlite")
    else:
        pg = request.getfixturevalue("postgres")
        dst = Settings(data_dir=dst_dir, db_url=pg.fresh_database(unique("restore")),
                       store_url=influx_url(request.getfixturevalue("influx"), unique("restore")))
    records, store = Records.open(dst), open_store(dst.store_url)
    store.ensure_ready()
    restore(records, store, dst.data_dir, dst.snapshot_dir, archive)
    after = dump_records(records), dump_store(store), dump_files(dst.snapshot_dir, dst.data_dir / "photos")
    assert after[0] == before[0]  # every table, row for row (bytes of dead letters included)
    assert after[1] == before[1]  # every measurement, point for point
    assert after[2] == before[2]  # every file, byte for byte
    # the restored village works on: new rows get new ids, the password still signs in
    AuditLog(records).record("cli:root", "restored", "", time.time_ns())
    assert len({e.id for e in AuditLog(records).entries()}) == 2
    assert Accounts(records, DashboardSettings()).login("wang", "a-long-password-1", "t", time.time_ns())
    with pytest.raises(BackupError, match="not empty"):
        restore(records, store, dst.data_dir, dst.snapshot_dir, archive)  # only into empty stores
    records.close()
    store.close()


def test_restore_refuses_what_is_not_a_backup(tmp_path: Path) -> None:
    import tarfile

    bad = tmp_path / "x.tar.gz"
    with tarfile.open(bad, "w:gz") as tar:
        (tmp_path / "a.txt").write_text("hi")
        tar.add(tmp_path / "a.txt", "a.txt")
    records, store = Records.in_data_dir(tmp_path / "d"), open_store(f"sqlite:///{tmp_path}/ts.sqlite")
    with pytest.raises(BackupError, match="manifest"):
        restore(records, store, tmp_path / "d", tmp_path / "d" / "snapshots", bad)


def test_admin_backup_and_restore_commands(village: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run = CliRunner().invoke
    monkeypatch.setenv("ORCHARD_DATA_DIR", str(village))
    monkeypatch.setenv("ORCHARD_STORE_URL", f"sqlite:///{village}/ts.sqlite")
    archive = tmp_path / "b.tar.gz"
    done = run(app, ["admin", "backup", str(archive)])
    assert done.exit_code == 0, done.output
    assert archive.exists() and "备份完成" in done.output
    target = tmp_path / "new"
    monkeypatch.setenv("ORCHARD_DATA_DIR", str(target))
    monkeypatch.setenv("ORCHARD_STORE_URL", f"sqlite:///{target}/ts.sqlite")
    done = run(app, ["admin", "restore", str(archive)])
    assert done.exit_code == 0, done.output
    assert People(Records.in_data_dir(target)).get("wang") is not None
    again = run(app, ["admin", "restore", str(archive)])
    assert again.exit_code == 2 and "not empty" in again.output
    photo = next((target / "photos").rglob("*.jpg"))
    assert photo.read_bytes() == JPEG


def test_backup_is_one_snapshot_while_services_write(records: Records, tmp_path: Path) -> None:
    """Alarms are raised and their trail written as fast as the records DB takes them while the backup runs: the
    archive is one moment of the DB (every event's alarm is in it, no alarm without its first event), restores
    into an empty DB with its foreign keys checked, and is readable by its owner only."""
    import threading

    book = AlarmBook(records)
    stop = threading.Event()
    fired: list[int] = []

    def write() -> None:
        k = 0
        while not stop.is_set() and k < 20_000:
            alarm, _ = book.fire(Signal("s", f"plot:p{k}", "heat", "major", "alarm.heat_text"), (k + 1) * NS)
            book.comment(alarm.id, "adviser", f"note {k}", (k + 2) * NS)
            fired.append(alarm.id)
            k += 1

    for i in range(50):
        book.fire(Signal("s", f"plot:seed{i}", "heat", "major", "alarm.heat_text"), NS)
    writer = threading.Thread(target=write, daemon=True)
    store = open_store(f"sqlite:///{tmp_path}/ts.sqlite")
    writer.start()
    while len(fired) < 20:  # the writer is under way before the backup starts
        time.sleep(0.01)
    try:
        backup(records, store, tmp_path, tmp_path / "snapshots", tmp_path / "b.tar.gz")
    finally:
        stop.set()
        writer.join(30)
    assert fired  # it wrote while the backup ran
    assert (tmp_path / "b.tar.gz").stat().st_mode & 0o777 == 0o600

    target = Records(f"sqlite:///{tmp_path}/restored.sqlite")
    restore(target, open_store(f"sqlite:///{tmp_path}/ts2.sqlite"), tmp_path / "r", tmp_path / "r" / "snapshots",
            tmp_path / "b.tar.gz")
    restored = dump_records(target)
    alarm_ids = {row[0] for row in restored["alarms"]}
    event_alarms = [row[1] for row in restored["alarm_events"]]
    assert set(event_alarms) <= alarm_ids  # no event of an alarm the archive does not hold
    raised = {row[1] for row in restored["alarm_events"] if row[4] == "raised"}
    assert raised == alarm_ids  # and no alarm without its first event
    target.close()
