"""1,000 malformed or hostile payloads: ingest keeps running and every one is in the dead-letter with its reason."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.servers import InfluxDB, Mosquitto
from orchard.records import Records
from orchard.store import open_store
from tests.conftest import influx_url, unique
from tests.integration.helpers import IngestProcess, publisher, wait_published

pytestmark = pytest.mark.integration

NOW_MS = int(time.time() * 1000)


def _dumps(obj: object) -> bytes:
    return json.dumps(obj).encode()  # the stdlib writes integers of any size, as a hostile device might
# Line-protocol and InfluxQL metacharacters (MQTT itself forbids + and # in a published topic).
METACHARS = [",", " ", "=", '"', "'", "\\", ";", "*", "$", "`", "{", "(", ")", "|", "x" * 65]

wrong_type = st.one_of(st.text(max_size=10), st.booleans(), st.none(), st.lists(st.integers(), max_size=3),
                       st.dictionaries(st.text(max_size=5), st.integers(), max_size=2))
out_of_range = st.one_of(
    st.floats(min_value=60.0001, max_value=1e308),
    st.floats(max_value=-40.0001, min_value=-1e308),
    st.integers(min_value=61, max_value=10**30),
)


@st.composite
def hostile(draw: st.DrawFn, prefix: str) -> tuple[str, bytes]:
    """(topic, payload), each refused by construction; `kind` picks the way it is broken."""
    ok_topic = f"{prefix}/site/plot/{draw(st.sampled_from(['d1', 'd2', 'd3']))}/telemetry"
    kind = draw(st.sampled_from(["type", "range", "nan", "json", "huge", "id", "shape", "time", "name"]))
    if kind == "type":
        return ok_topic, _dumps({"ts": NOW_MS, "readings": {"air_temp_c": draw(wrong_type)}})
    if kind == "range":
        return ok_topic, _dumps({"readings": {"air_temp_c": draw(out_of_range)}})
    if kind == "nan":
        bad = draw(st.sampled_from(["NaN", "Infinity", "-Infinity", "1e999"]))
        return ok_topic, b'{"readings": {"rh_pct": ' + bad.encode() + b"}}"
    if kind == "json":
        raw = draw(st.binary(min_size=0, max_size=200))
        return ok_topic, b"\xff" + raw  # never valid UTF-8 JSON
    if kind == "huge":
        size = draw(st.integers(min_value=64 * 1024 + 1, max_value=1024 * 1024))
        return ok_topic, b'{"readings": {"air_temp_c": 1.0}, "pad": "' + b"x" * size + b'"}'
    if kind == "id":
        meta = draw(st.sampled_from(METACHARS))
        where = draw(st.sampled_from(["site", "plot", "device"]))
        ids = {"site": "site", "plot": "plot", "device": "d1"}
        ids[where] = f"a{meta}b"
        topic = f"{prefix}/{ids['site']}/{ids['plot']}/{ids['device']}/telemetry"
        return topic, _dumps({"readings": {"air_temp_c": 1.0}})
    if kind == "shape":
        body = draw(st.sampled_from([b"[]", b'"text"', b"42", b"{}", b'{"readings": []}', b'{"readings": {}}',
                                     b'{"readings": "air_temp_c=1"}', b"null"]))
        return ok_topic, body
    if kind == "time":
        ts = draw(st.one_of(
            # a day ahead: NOW_MS is taken when the suite is collected, minutes before this test runs
            st.integers(min_value=NOW_MS + 86_400_000, max_value=NOW_MS + 10**12),  # future
            st.integers(min_value=0, max_value=946_684_799_999),  # seconds sent as ms, or 1970
            st.sampled_from(["yesterday", "2026-13-45T00:00:00Z", "2026-04-01T02:10:00"]),  # bad / naive
        ))
        return ok_topic, _dumps({"ts": ts, "readings": {"air_temp_c": 1.0}})
    name = draw(st.text(min_size=1, max_size=20).filter(lambda s: s not in ("air_temp_c",)))
    name = name if name not in ("rh_pct", "rain_mm") else name + "_x"
    return ok_topic, _dumps({"readings": {f"{name}\"'": 1.0}})


def test_thousand_hostile_payloads_all_dead_lettered(tmp_path: Path, mosquitto: Mosquitto, influx: InfluxDB) -> None:
    prefix = unique("o")
    url = influx_url(influx, unique("db"))
    # Byte for byte and every one: no payload cap and no throttle here (tests/sensors/test_dead_letter_flood.py
    # holds those to their bounds).
    ingest = IngestProcess(tmp_path, mosquitto.url, url, prefix, ORCHARD_RETENTION__DEAD_LETTER_PAYLOAD_BYTES="2000000",
                           ORCHARD_RETENTION__DEAD_LETTERS_PER_DEVICE_MIN="100000")
    ingest.start()
    pub = publisher(mosquitto.url)
    sent: list[tuple[str, bytes]] = []

    @settings(max_examples=1000, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(msg=hostile(prefix))
    def publish_one(msg: tuple[str, bytes]) -> None:
        sent.append(msg)

    publish_one()
    sent = sent[:1000]
    assert len(sent) == 1000, "hypothesis drew fewer than 1,000 examples"
    infos = [pub.publish(topic, payload, qos=1) for topic, payload in sent]
    wait_published(pub, infos)
    # A good reading after the storm still goes through.
    good = _dumps({"ts": NOW_MS, "readings": {"air_temp_c": 21.5}})
    wait_published(pub, [pub.publish(f"{prefix}/site/plot/after/telemetry", good, qos=1)])

    records = Records.in_data_dir(Path(ingest.env["ORCHARD_DATA_DIR"]))
    deadline = time.monotonic() + 60
    while True:
        letters = [d for d in records.dead_letters(limit=5000) if d.letter.topic.startswith(prefix)]
        if len(letters) >= len(sent) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert ingest.alive(), ingest.log.read_text()[-3000:]
    # Every payload is there, byte for byte, with a reason.
    assert sorted((d.letter.topic, d.letter.payload) for d in letters) == sorted(sent)
    assert all(d.letter.reason and ":" in d.letter.reason for d in letters)
    kinds = {d.letter.reason.split(":")[0] for d in letters}
    assert {"bad_json", "too_large", "bad_id", "out_of_range", "bad_reading", "future_timestamp"} <= kinds
    store = open_store(url)
    rows = store.range("telemetry", ["air_temp_c"], 0, 2**62)
    assert [(r.tags["device"], r.values["air_temp_c"]) for r in rows] == [("after", 21.5)]
    assert not math.isnan(rows[0].values["air_temp_c"])
    ingest.stop()
