"""The analytics service's bookkeeping of news: which plots a quick cycle covers, and when to look again."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
from paho.mqtt.client import MQTTMessage
from sqlalchemy.exc import OperationalError

from analytics.engine import CycleResult
from analytics.service import Analytics, build, reading_time_ns
from orchard.catalogue import TELEMETRY
from orchard.models import Point
from orchard.records.notices import Draft
from orchard.records.people import User
from orchard.settings import Settings
from orchard.store import open_store

NOW_S = time.time()
NS = 1_000_000_000


@pytest.mark.parametrize(("payload", "expected_s", "from_now"), [
    (b'{"ts": %d, "readings": {}}' % int((NOW_S - 30) * 1000), NOW_S - 30, False),
    (orjson.dumps({"ts": datetime.fromtimestamp(NOW_S - 60, UTC).isoformat().replace("+00:00", "Z")}), NOW_S - 60,
     False),
    (b'{"readings": {"air_temp_c": 1}}', -1, True),  # no ts: ingest stamps it on arrival
    (b'{"ts": %d}' % int((NOW_S + 3600) * 1000), 0, True),  # a clock ahead: never wait for the future
    (b"not json", -1, True),
    (b'{"ts": true}', -1, True),
], ids=["epoch-ms", "iso-8601", "no-ts", "clock-ahead", "not-json", "ts-bool"])  # ids without the time: xdist
# workers must collect the same names
def test_reading_time(payload: bytes, expected_s: float, from_now: bool) -> None:
    expected = time.time() + expected_s if from_now else expected_s
    assert reading_time_ns(payload) / 1e9 == pytest.approx(expected, abs=0.5 if from_now else 0.01)


def message(topic: str, payload: bytes) -> MQTTMessage:
    m = MQTTMessage(topic=topic.encode())
    m.payload = payload
    return m


def test_newer_news_wins_and_unstored_readings_are_looked_at_again() -> None:
    service = Analytics(Settings(), None, None, None, None)  # type: ignore[arg-type]
    t_old, t_new = int((NOW_S - 50) * 1000), int((NOW_S - 2) * 1000)
    service.on_message(None, None, message("orchard/s/p01/ws-p01/telemetry", b'{"ts": %d}' % t_new))  # type: ignore[arg-type]
    service.on_message(None, None, message("orchard/s/p01/ws-p01/telemetry", b'{"ts": %d}' % t_old))  # type: ignore[arg-type]
    service.on_message(None, None, message("orchard/s/p02/sp-p02/telemetry", b'{"ts": %d}' % t_old))  # type: ignore[arg-type]
    assert service.pending["ws-p01"][1] == t_new * 1_000_000  # a late, older message does not hide the new one
    news, service.pending = service.pending, {}
    stored = CycleResult(0, newest_ns={"ws-p01": t_old * 1_000_000, "sp-p02": t_old * 1_000_000})
    service.look_again(news, stored)  # ws-p01's new reading is not in the store yet; sp-p02's is
    assert set(service.pending) == {"ws-p01"} and service.wake.is_set()


def battery_service(tmp_path: Path) -> tuple[Analytics, int]:
    """Analytics on SQLite with an adviser, and a low battery on ws-p04 in the store; returns it and now."""
    s = Settings(store_url=f"sqlite:///{tmp_path}/ts.sqlite", data_dir=tmp_path)
    now = time.time_ns()
    open_store(s.store_url).write([Point(TELEMETRY, {"site": s.site, "plot": "p04", "device": "ws-p04"},
                                         {"battery_v": 3.2}, now - k * 60 * NS) for k in range(5)])
    service = build(s, with_mqtt=False, clock=lambda: now)
    people = service.dispatcher.people
    people.upsert(User("adviser", "农技员", "adviser"))
    people.set_plots("adviser", [p.id for p in service.engine.site.plots], "covers")
    return service, now


def battery_messages(service: Analytics) -> list[str]:
    alarms = [a for a in service.engine.book.active() if a.type == "low_battery"]
    assert len(alarms) == 1
    return [n.user for n in service.dispatcher.outbox.for_alarm(alarms[0].id)]


def test_a_change_recorded_before_the_records_db_broke_is_told_once_it_is_back(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The cycle records the alarm, then the records DB goes away before its messages are queued: the change is
    kept, told at the next cycle, and not told again at the one after."""
    service, _ = battery_service(tmp_path)
    real_queue = service.dispatcher.outbox.queue

    def away(*_: object, **__: object) -> list[int]:
        raise OperationalError("INSERT", {}, ConnectionError("records DB away"))

    monkeypatch.setattr(service.dispatcher.outbox, "queue", away)
    service.run_once()
    assert not service.last_ok and service.steps.failures == {"tell": 1}
    assert battery_messages(service) == []
    monkeypatch.setattr(service.dispatcher.outbox, "queue", real_queue)
    service.run_once()
    assert service.last_ok and battery_messages(service) == ["adviser"]
    service.run_once()
    assert battery_messages(service) == ["adviser"]


def test_changes_of_a_cycle_that_broke_off_are_still_told(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The records DB breaks in the middle of recording a cycle's changes: those recorded before it are told."""
    service, _ = battery_service(tmp_path)
    book = service.engine.book
    real_fire, fired = book.fire, []

    def fire_then_break(signal: object, now_ns: int) -> object:
        if fired:
            raise OperationalError("UPDATE", {}, ConnectionError("records DB away"))
        fired.append(signal)
        return real_fire(signal, now_ns)  # type: ignore[arg-type]

    monkeypatch.setattr(book, "fire", fire_then_break)
    service.run_once()
    assert service.steps.failures.get("evaluate") == 1
    (alarm,) = book.active()
    assert [n.user for n in service.dispatcher.outbox.for_alarm(alarm.id)] == ["adviser"]


def test_the_full_cycle_sends_notices_and_their_reminders(tmp_path: Path) -> None:
    """A notice the village's staff wrote on the dashboard goes out at the next full cycle, not in a quick one;
    a reminder asked for later goes at the cycle after that, to the one who had not read it."""
    service, now = battery_service(tmp_path)
    assert service.notices is not None
    book = service.notices.book
    people = service.dispatcher.people
    people.upsert(User("zhao", "赵主任", "center"))
    people.upsert(User("wang", "王建国", "farmer"))
    n = book.send(people.get("zhao"), Draft("今晚有霜冻"), now)  # type: ignore[arg-type]
    service.run_once(plots={"p04"})  # a quick cycle leaves notices to the full one
    assert book.deliveries(n.id) == []
    service.run_once()
    assert service.last_ok
    assert sorted((d.user, d.kind, d.status) for d in book.deliveries(n.id)) == [
        ("adviser", "notice", "sent"), ("wang", "notice", "sent")]
    book.read(n.id, "adviser", now)
    book.remind(n.id, now)
    service.run_once()
    assert sorted((d.user, d.kind) for d in book.deliveries(n.id)) == [
        ("adviser", "notice"), ("wang", "notice"), ("wang", "reminder")]
