"""The engine tests' world: a fresh SQLite store and records DB with the village's devices registered."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from orchard.models import Device
from orchard.records import Records
from orchard.records.alarms import AlarmBook
from orchard.site import SHIPPED, load_site
from orchard.store import TimeSeriesStore, open_store
from tests.analytics.receivers import HttpReceiver

# Cameras have their own tests (test_cameras.py): here they would only add their offline alarms.
ENGINE_SITE = load_site(SHIPPED / "sunzigou" / "site.toml").model_copy(update={"cameras": ()})


def at(local: str) -> int:
    """A local time of the village (its time zone), as epoch ns: "2026-03-15T04:10"."""
    return int(datetime.fromisoformat(local).replace(tzinfo=ENGINE_SITE.tz).timestamp() * 1_000_000_000)


@pytest.fixture
def http_receiver() -> Iterator[HttpReceiver]:
    """Real HTTP receivers on loopback for the channels (tests/analytics/receivers.py)."""
    r = HttpReceiver().start()
    yield r
    r.stop()


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[TimeSeriesStore, Records, AlarmBook]]:
    store = open_store(f"sqlite:///{tmp_path}/ts.sqlite")
    store.ensure_ready()
    records = Records(f"sqlite:///{tmp_path}/records.sqlite")
    for d in ENGINE_SITE.devices:
        records.upsert_device(Device(d.id, ENGINE_SITE.id, d.plot, "approved", d.kind))
    yield store, records, AlarmBook(records)
    store.close()
    records.close()
