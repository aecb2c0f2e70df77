"""`orchard analytics` runs a cycle when telemetry arrives (through a real broker), not only once a minute."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from analytics.service import build
from orchard.catalogue import TELEMETRY
from orchard.localservers import Mosquitto
from orchard.models import Point
from orchard.settings import Settings
from orchard.store import open_store
from tests.conftest import unique
from tests.integration.helpers import publisher, wait_published

pytestmark = pytest.mark.integration
NS = 10**9


def test_new_telemetry_triggers_a_cycle_that_raises_the_alarm(tmp_path: Path, mosquitto: Mosquitto) -> None:
    prefix = unique("o")
    s = Settings(mqtt_url=mosquitto.url, store_url=f"sqlite:///{tmp_path}/ts.sqlite", data_dir=tmp_path,
                 mqtt_prefix=prefix, analytics={"every_s": 600, "min_gap_s": 0})  # type: ignore[arg-type]
    service = build(s)
    runner = threading.Thread(target=service.run, daemon=True)
    runner.start()
    deadline = time.monotonic() + 20
    while service.cycles < 1:  # the first cycle runs at start
        assert time.monotonic() < deadline
        time.sleep(0.05)
    time.sleep(0.5)  # subscribed by now
    assert not [a for a in service.engine.book.active() if a.type == "low_battery"]

    now = time.time_ns()
    store = open_store(s.store_url)  # a failing battery on p04, as ingest would have stored it ...
    store.write([Point(TELEMETRY, {"site": s.site, "plot": "p04", "device": "ws-p04"},
                       {"battery_v": 3.0, "air_temp_c": 8.0}, now - k * 60 * NS) for k in range(5)])
    pub = publisher(mosquitto.url)  # ... and the message that says so
    wait_published(pub, [pub.publish(f"{prefix}/{s.site}/p04/ws-p04/telemetry", b"{}", qos=1)])
    deadline = time.monotonic() + 10  # far sooner than every_s (600 s): the message woke it
    while not any(a.type == "low_battery" for a in service.engine.book.active()):
        assert time.monotonic() < deadline, "telemetry did not trigger a cycle"
        time.sleep(0.05)
    service.stop.set()
    service.wake.set()
    runner.join(10)
    pub.loop_stop()
