"""The analytics service's bookkeeping of news: which plots a quick cycle covers, and when to look again."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import orjson
import pytest
from paho.mqtt.client import MQTTMessage

from analytics.engine import CycleResult
from analytics.service import Analytics, reading_time_ns
from orchard.settings import Settings

NOW_S = time.time()


@pytest.mark.parametrize(("payload", "expected_s", "from_now"), [
    (b'{"ts": %d, "readings": {}}' % int((NOW_S - 30) * 1000), NOW_S - 30, False),
    (orjson.dumps({"ts": datetime.fromtimestamp(NOW_S - 60, UTC).isoformat().replace("+00:00", "Z")}), NOW_S - 60,
     False),
    (b'{"readings": {"air_temp_c": 1}}', -1, True),  # no ts: ingest stamps it on arrival
    (b'{"ts": %d}' % int((NOW_S + 3600) * 1000), 0, True),  # a clock ahead: never wait for the future
    (b"not json", -1, True),
    (b'{"ts": true}', -1, True),
])
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
