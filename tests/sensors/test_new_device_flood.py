"""A flood of invented device ids (a broken gateway, a stolen service account) in hold mode: the registry takes
only `new_devices_per_hour` of them; the rest are dead letters, themselves throttled; and the devices page stays
a page: the pending list shows 20 at a time, its held readings counted in one query."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import orjson
from streamlit.testing.v1 import AppTest

from orchard.models import Device
from orchard.records import Records
from orchard.settings import Settings
from orchard.store import open_store
from sensors.spool import Spool
from sensors.writer import BatchWriter
from tests.conftest import Seeded

NS = 1_000_000_000


def test_five_thousand_new_ids_add_at_most_the_hours_allowance(tmp_path: Path) -> None:
    s = Settings(data_dir=tmp_path, store_url=f"sqlite:///{tmp_path}/ts.sqlite", unknown_devices="hold",
                 ingest={"new_devices_per_hour": 200})  # type: ignore[arg-type]
    writer = BatchWriter(s, open_store(s.store_url), Records.open(s), Spool(tmp_path / "spool"))
    now = [1_800_000_000 * NS]
    writer.new_devices.clock = writer.throttle.clock = lambda: now[0]
    body = orjson.dumps({"readings": {"air_temp_c": 5.0}})
    for start in range(0, 5000, 500):
        writer.handle([(f"orchard/sunzigou/p01/fake{k:05d}/telemetry", body, now[0])
                       for k in range(start, start + 500)])
    writer.tick(final=True)
    statuses = writer.records.device_statuses()
    assert len(statuses) == 200 and set(statuses.values()) == {"pending"}
    refused = [x for x in writer.records.dead_letters(limit=10_000)
               if x.letter.reason.startswith("too_many_new_devices")]
    assert refused and all(x.letter.device not in statuses for x in refused)
    now[0] += 3601 * NS  # an hour later, the next ones are let in again
    writer.handle([("orchard/sunzigou/p01/later/telemetry", body, now[0])])
    assert writer.records.device_statuses()["later"] == "pending"


def test_the_pending_list_is_paged(run_app: Callable[..., AppTest], tmp_path: Path) -> None:
    records = Records.in_data_dir(tmp_path)
    for k in range(5000):
        records.upsert_device(Device(f"fake{k:05d}", "sunzigou", "p01", "pending", "soil_probe",
                                     last_seen_ns=time.time_ns() - k * NS))
    records.close()
    started = time.perf_counter()
    at = run_app(Seeded(tmp_path, f"sqlite:///{tmp_path}/ts.sqlite"), "devices")
    seconds = time.perf_counter() - started
    approve = [b for b in at.button if b.key and b.key.startswith("approve_")]
    assert [b.key for b in approve[:2]] == ["approve_fake00000", "approve_fake00001"]  # most recently seen first
    assert len(approve) == 20 and any("共 5000 台待审批" in c.value for c in at.caption)
    assert seconds < 10, seconds  # it took 13 s with every one on the page
