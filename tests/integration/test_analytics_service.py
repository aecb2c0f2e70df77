"""`orchard analytics` runs a cycle when telemetry arrives (through a real broker), not only once a minute."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from analytics.service import build
from bench.servers import Mosquitto
from orchard.catalogue import TELEMETRY
from orchard.models import Point
from orchard.records.snapshots import SnapshotFiles
from orchard.settings import Settings
from orchard.store import open_store
from tests.conftest import unique
from tests.integration.helpers import publisher, wait_published
from video.service import CameraWorker
from video.service import build as build_cameras
from video.sources import Frame
from video.synthetic import Intruder, SyntheticOrchard

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
    assert service.subscribed.wait(20), "no SUBACK from the broker"
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


class CrossingSource:
    """The synthetic orchard now, with someone crossing the path in snapshots 20-27."""

    def __init__(self) -> None:
        self.orchard, self.n = SyntheticOrchard(4, 640, 360, intruder_nights=0), 0

    def snapshot(self) -> Frame:
        self.n += 1
        someone = Intruder("person", (self.n - 20) / 8) if 20 <= self.n < 28 else None
        now = time.time_ns()
        return Frame(now, image=self.orchard.render(datetime.fromtimestamp(now / 1e9, UTC), someone))

    def close(self) -> None:
        pass


def test_a_night_intruder_reaches_an_alarm_with_its_snapshot(tmp_path: Path, mosquitto: Mosquitto) -> None:
    """The cameras service sees someone on the path at night and says so on MQTT; analytics wakes and raises the
    intrusion alarm with the snapshot that saw it, long before its next full cycle."""
    prefix = unique("o")
    s = Settings(mqtt_url=mosquitto.url, store_url=f"sqlite:///{tmp_path}/ts.sqlite", data_dir=tmp_path,
                 mqtt_prefix=prefix, analytics={"every_s": 600, "min_gap_s": 0},  # type: ignore[arg-type]
                 cameras={"night_sun_deg": 90})  # type: ignore[arg-type]  # always night, whenever CI runs
    analytics = build(s)
    cameras = build_cameras(s)
    cam = next(c for c in cameras.workers if c.cam.id == "cam-p02").cam.model_copy(update={"interval_s": 0.2})
    cameras.workers = [CameraWorker(analytics.engine.site, cam, s.cameras, SnapshotFiles(s.snapshot_dir),
                                    cameras.retention, cameras.report, CrossingSource())]
    threads = [threading.Thread(target=x.run, daemon=True) for x in (analytics, cameras)]
    threads[0].start()
    deadline = time.monotonic() + 20
    while analytics.cycles < 1:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert analytics.subscribed.wait(20), "no SUBACK from the broker"
    threads[1].start()
    deadline = time.monotonic() + 30
    while not (found := [a for a in analytics.engine.book.active() if a.type == "intrusion"]):
        assert time.monotonic() < deadline, "the intrusion did not reach an alarm"
        time.sleep(0.1)
    cameras.stop.set()
    analytics.stop.set()
    analytics.wake.set()
    for t in threads:
        t.join(15)
    alarm = found[0]
    assert alarm.source == "camera:cam-p02" and alarm.plot == "p02" and alarm.severity == "major"
    (photo,) = analytics.engine.book.evidence(alarm.id)
    assert photo.time_ns == alarm.details["snapshot_ns"]
    assert (s.snapshot_dir / photo.path).stat().st_size > 10_000
