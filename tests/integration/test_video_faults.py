"""The cameras service's video path through real faults: the records DB away when a clip is due, and the broker
restarted under the service. Real servers throughout (PostgreSQL, Mosquitto, Debian's GStreamer RTSP server);
each alarm sent is counted against the clips stored."""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import orjson
import pytest
from paho.mqtt.client import CallbackAPIVersion, Client

from bench.servers import Mosquitto, Postgres, RtspServer
from orchard.footage import Footage
from orchard.models import Signal
from orchard.records import Records
from orchard.records.alarms import AlarmBook
from orchard.records.snapshots import SnapshotFiles
from orchard.settings import Settings
from tests.conftest import unique
from tests.integration.test_live_video import rtsp_site
from video.service import Cameras, build

pytestmark = [pytest.mark.integration, pytest.mark.slow]
NS = 1_000_000_000


def wait_for(what: str, cond: Callable[[], object], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not cond():
        assert time.monotonic() < deadline, f"waited {timeout_s} s for {what}"
        time.sleep(0.1)


def settings(tmp_path: Path, server: RtspServer, mqtt_url: str, db_url: str | None = None) -> Settings:
    (tmp_path / "site").mkdir(exist_ok=True)
    rtsp_site(tmp_path / "site" / "site.toml", server)
    return Settings(data_dir=tmp_path, store_url=f"sqlite:///{tmp_path}/ts.sqlite", mqtt_url=mqtt_url,
                    mqtt_prefix=unique("orchard"), site_file=tmp_path / "site" / "site.toml", db_url=db_url,
                    cameras={"buffer_s": 90, "clip_before_s": 3, "clip_after_s": 2})  # type: ignore[arg-type]


@contextlib.contextmanager
def running(service: Cameras) -> Iterator[threading.Thread]:
    runner = threading.Thread(target=service.run, daemon=True)
    runner.start()
    try:
        yield runner
    finally:
        service.stop.set()
        runner.join(30)


def publish(url_port: int, topic: str, body: dict[str, object]) -> None:
    pub = Client(CallbackAPIVersion.VERSION2, client_id=unique("pub"))
    pub.connect("127.0.0.1", url_port)
    pub.loop_start()
    pub.publish(topic, orjson.dumps(body), qos=1, retain=True).wait_for_publish(10)
    pub.loop_stop()
    pub.disconnect()


def raised(alarm_id: int, plot: str, started_ns: int) -> dict[str, object]:
    return {"alarm_id": alarm_id, "type": "spring_frost", "severity": "critical", "change": "raised", "active": True,
            "source": f"plot:{plot}", "started_ns": started_ns, "details": {}}


def clips(book: AlarmBook, alarm_id: int) -> list[str]:
    return [r.path for r in book.evidence(alarm_id) if SnapshotFiles.is_clip(r.path)]


def test_a_clip_due_while_the_records_db_is_away_is_attached_when_it_is_back(
        tmp_path: Path, rtsp: Callable[..., RtspServer], mosquitto: Mosquitto, own_postgres: Postgres,
        caplog: pytest.LogCaptureFixture) -> None:
    server = rtsp({"p01": "test", "p02": "test"})
    s = settings(tmp_path, server, mosquitto.url, own_postgres.fresh_database(unique("clipdb")))
    book = AlarmBook(Records.open(s))
    service = build(s)
    caplog.set_level(logging.WARNING, "orchard.cameras")
    with running(service):
        wait_for("the recording", lambda: len(Footage(s.video_dir).segments("cam-p01")) >= 3, 40)
        now = time.time_ns()
        alarm, _ = book.fire(Signal("sunzigou", "plot:p01", "spring_frost", "critical", "alarm.spring_frost_text",
                                    {}, "p01"), now)
        own_postgres.stop(signal.SIGKILL)  # the DB is gone before the clip is due
        publish(mosquitto.port, f"{s.mqtt_prefix}/sunzigou/alerts/p01", raised(alarm.id, "p01", now))
        wait_for("a clip waiting for the DB", lambda: any(r.getMessage() == "clip_retry" for r in caplog.records),
                 40)
        own_postgres.start()
        wait_for("the clip attached after the outage", lambda: clips(book, alarm.id), 60)
        assert len(clips(book, alarm.id)) == 1 and service.clips is not None and service.clips.cut_clips == 1
        assert (s.snapshot_dir / clips(book, alarm.id)[0]).stat().st_size > 10_000
    assert not [r for r in caplog.records if r.getMessage() == "clip_failed"]


def test_clips_still_come_after_the_broker_restarts(tmp_path: Path, rtsp: Callable[..., RtspServer],
                                                    own_mosquitto: Mosquitto) -> None:
    server = rtsp({"p01": "test", "p02": "test"})
    s = settings(tmp_path, server, own_mosquitto.url)
    book = AlarmBook(Records.open(s))
    service = build(s)
    with running(service):
        wait_for("the recording", lambda: len(Footage(s.video_dir).segments("cam-p01")) >= 3, 40)
        first, _ = book.fire(Signal("sunzigou", "plot:p01", "spring_frost", "critical", "alarm.spring_frost_text",
                                    {}, "p01"), time.time_ns())
        publish(own_mosquitto.port, f"{s.mqtt_prefix}/sunzigou/alerts/p01", raised(first.id, "p01", time.time_ns()))
        wait_for("the first clip", lambda: clips(book, first.id), 40)
        own_mosquitto.stop(signal.SIGKILL)  # the broker crashes; no retained message survives (no persistence)
        own_mosquitto.start()
        second, _ = book.fire(Signal("sunzigou", "plot:p02", "spring_frost", "critical", "alarm.spring_frost_text",
                                     {}, "p02"), time.time_ns())
        publish(own_mosquitto.port, f"{s.mqtt_prefix}/sunzigou/alerts/p02", raised(second.id, "p02", time.time_ns()))
        wait_for("the clip after the restart (the service subscribed again)", lambda: clips(book, second.id), 60)
        assert [p.split("/")[0] for p in clips(book, first.id) + clips(book, second.id)] == ["cam-p01", "cam-p02"]
