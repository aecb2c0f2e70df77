"""What only the InfluxDB adapter does: partial writes, database creation, auth and outage errors."""

from __future__ import annotations

import gzip
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import orjson
import pytest

from bench.servers import InfluxDB, free_port
from orchard.models import Point
from orchard.settings import parse_store_url
from orchard.store import StoreError, StoreUnavailable, open_store
from orchard.store.influx import InfluxStore
from tests.conftest import influx2_store, influx_url, unique

T0 = 1_775_000_000_000_000_000
NS = 1_000_000_000


@pytest.mark.integration
def test_database_created_on_first_write(influx: InfluxDB) -> None:
    store = open_store(influx_url(influx, unique("fresh")))
    assert store.write([Point("m", {"d": "x"}, {"f": 1.0}, T0)]).written == 1
    assert [r.values["f"] for r in store.range("m", ["f"], T0, T0 + 1)] == [1.0]


@pytest.mark.integration
@pytest.mark.parametrize("server", ["1.x", "2.x-v1"])
def test_field_type_conflict_names_the_bad_points_and_keeps_the_good(influx: InfluxDB, server: str) -> None:
    """1.x answers a partial write with 400, 2.x with 422; neither says which points: both found by halving."""
    if server == "1.x":
        store = open_store(influx_url(influx, unique("conflict")))
    else:
        store, fake = influx2_store(influx)
    store.ensure_ready()
    store.write([Point("telemetry", {"device": "d0"}, {"air_temp_c": 1.5}, T0)])
    good = [Point("telemetry", {"device": f"d{i}"}, {"air_temp_c": float(i)}, T0 + i) for i in range(1, 40)]
    bad = [
        Point("telemetry", {"device": "bad1"}, {"air_temp_c": "warm"}, T0 + 100),
        Point("telemetry", {"device": "bad2"}, {"air_temp_c": 7}, T0 + 200),
    ]
    batch = [*good[:10], bad[0], *good[10:30], bad[1], *good[30:]]
    result = store.write(batch)
    assert result.written == len(good)
    assert [r.point for r in result.rejected] == bad
    assert all("field type conflict" in r.reason for r in result.rejected)
    stored = store.range("telemetry", ["air_temp_c"], T0 + 1, T0 + 1000)
    assert sorted(r.tags["device"] for r in stored) == sorted(p.tags["device"] for p in good)
    if server != "1.x":
        assert ("/write", 422) in fake.requests  # it was 2.x's answer the adapter handled


@pytest.mark.integration
def test_wrong_password_is_a_clear_error_not_an_outage(influx_auth: InfluxDB) -> None:
    url = influx_auth.url.replace("orchard-admin:", "orchard-admin:wrong")
    store = open_store(url.rsplit("/", 1)[0] + "/x")
    with pytest.raises(StoreError) as e:
        store.write([Point("m", {}, {"f": 1.0}, T0)])
    assert not isinstance(e.value, StoreUnavailable)
    assert "credentials" in str(e.value)


def test_unreachable_server_is_unavailable() -> None:
    store = open_store(f"influxdb://127.0.0.1:{free_port()}/db")
    with pytest.raises(StoreUnavailable):
        store.write([Point("m", {}, {"f": 1.0}, T0)])
    with pytest.raises(StoreUnavailable):
        store.ping()


@pytest.mark.integration
def test_large_write_is_split_into_batches(influx: InfluxDB) -> None:
    store = open_store(influx_url(influx, unique("big")))
    assert isinstance(store, InfluxStore)
    store.batch_lines = 1000
    pts = [Point("m", {"d": str(i % 7)}, {"f": float(i)}, T0 + i) for i in range(4500)]
    assert store.write(pts).written == 4500
    counted = store.aggregate("m", ["f"], ["count"], T0, T0 + 10_000)
    assert counted[0].values["f.count"] == 4500


@pytest.mark.parametrize(("mapped", "ok"), [(["orchard"], True), (["other"], False)])
def test_ensure_ready_on_influxdb_2_v1_api(mapped: list[str], ok: bool) -> None:
    """InfluxDB 2.x answers CREATE DATABASE with an error and lists its DBRP mappings in SHOW DATABASES (imitated
    here: Debian has no 2.x to run). The bucket set up by deploy/influxdb/init is enough; a missing one says how to
    fix it."""
    import httpx

    from orchard.settings import parse_store_url

    seen: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        q = dict(httpx.QueryParams(request.content.decode()))["q"]
        seen.append(q)
        assert request.headers["Authorization"] == "Token t0ken"
        if q.startswith("CREATE DATABASE"):
            return httpx.Response(200, json={"results": [{"statement_id": 0, "error": "not implemented: CREATE"}]})
        return httpx.Response(200, json={"results": [{"statement_id": 0, "series": [
            {"name": "databases", "columns": ["name"], "values": [[m] for m in mapped]}]}]})

    target = parse_store_url("influxdb://influxdb:8086/orchard?token=t0ken")
    store = InfluxStore(target, transport=httpx.MockTransport(answer))  # the adapter's own auth header
    if ok:
        store.ensure_ready()
    else:
        with pytest.raises(StoreError, match="DBRP"):
            store.ensure_ready()
    assert seen == ['CREATE DATABASE "orchard"', "SHOW DATABASES"]


def mock_store(answer: Callable[[httpx.Request], httpx.Response], clock: Callable[[], float] = time.monotonic,
               token: str = "t0ken") -> InfluxStore:
    target = parse_store_url(f"influxdb://influxdb:8181/orchard?token={token}")
    return InfluxStore(target, transport=httpx.MockTransport(answer), clock=clock)


def lines_of(request: httpx.Request) -> list[str]:
    return gzip.decompress(request.content).decode().splitlines()


def test_influxdb_3_partial_write_names_exactly_the_rejected_lines() -> None:
    """3.x answers a partial write with 400 and the rejected lines by number (influxdb3 write API); those points
    are rejected with the server's reason, the rest sent again once (idempotent), no halving."""
    written: list[list[str]] = []

    def answer(request: httpx.Request) -> httpx.Response:
        got = lines_of(request)
        written.append(got)
        bad = [i + 1 for i, x in enumerate(got) if "bad" in x]
        if not bad:
            return httpx.Response(204)
        return httpx.Response(400, json={"error": "partial write of line protocol occurred", "data": [
            {"original_line": got[n - 1], "line_number": n, "error_message": "invalid column type for column "
             "'air_temp_c', expected Float, got String"} for n in bad]})

    points = [Point("telemetry", {"device": f"d{i}"}, {"air_temp_c": float(i)}, T0 + i) for i in range(20)]
    points[3] = Point("telemetry", {"device": "bad3"}, {"air_temp_c": "warm"}, T0 + 3)
    points[17] = Point("telemetry", {"device": "bad17"}, {"air_temp_c": "hot"}, T0 + 17)
    result = mock_store(answer).write(points)
    assert [r.point for r in result.rejected] == [points[3], points[17]]
    assert all("expected Float, got String" in r.reason for r in result.rejected)
    assert result.written == 18 and [len(w) for w in written] == [20, 18]


@pytest.mark.integration
def test_credentials_refused_by_2x_is_a_clear_error_not_an_outage(influx: InfluxDB) -> None:
    store, fake = influx2_store(influx)
    store._http.headers["Authorization"] = "Token wrong"
    with pytest.raises(StoreError) as e:
        store.write([Point("m", {}, {"f": 1.0}, T0)])
    assert not isinstance(e.value, StoreUnavailable)
    assert "unauthorized access" in str(e.value) and "ORCHARD_STORE_URL" in str(e.value)
    assert fake.requests == [("/write", 401)]


@pytest.mark.integration
def test_retry_after_holds_every_request_until_it_has_passed(influx: InfluxDB) -> None:
    """503 with Retry-After (2.x under load; 429 from a limiter): an outage, and nothing is sent before the time
    it named (the clock is injected), then writes go through again."""
    store, fake = influx2_store(influx)
    now = [1000.0]
    store.clock = lambda: now[0]
    fake.busy(30)
    point = [Point("m", {"d": "x"}, {"f": 1.0}, T0)]
    with pytest.raises(StoreUnavailable, match="retry after"):
        store.write(point)
    sent = len(fake.requests)
    now[0] += 20
    with pytest.raises(StoreUnavailable, match="Retry-After"):
        store.write(point)
    assert len(fake.requests) == sent  # held back: the server was not asked again
    fake.busy(0)
    now[0] += 15
    assert store.write(point).written == 1


@pytest.mark.parametrize(("header", "seconds"), [("7", 7.0), ("", 5.0), ("junk", 5.0), ("99999", 300.0)])
def test_retry_after_values(header: str, seconds: float) -> None:
    now = [0.0]
    store = mock_store(lambda r: httpx.Response(429, headers={"Retry-After": header} if header else {}),
                       clock=lambda: now[0])
    with pytest.raises(StoreUnavailable):
        store.ping()
    assert store.not_before == seconds


def test_a_batch_too_large_for_the_server_is_split() -> None:
    sizes: list[int] = []

    def answer(request: httpx.Request) -> httpx.Response:
        sizes.append(len(lines_of(request)))
        return httpx.Response(413 if sizes[-1] > 4 else 204, json={"code": "request too large", "message": "x"})

    points = [Point("m", {"d": str(i)}, {"f": float(i)}, T0 + i) for i in range(10)]
    assert mock_store(answer).write(points).written == 10
    assert sizes == [10, 5, 2, 3, 5, 2, 3]


@pytest.mark.integration
def test_ingest_stores_the_good_points_of_a_2x_partial_write_and_dead_letters_the_bad(
        tmp_path: Path, influx: InfluxDB) -> None:
    """Through 2.x's 422: the batch is not diverted to the spool; the good readings are stored, the bad one is a
    dead letter naming the server's reason."""
    from orchard.records import Records
    from orchard.settings import Settings
    from sensors.spool import Spool
    from sensors.writer import BatchWriter

    store, _ = influx2_store(influx)
    now = time.time_ns()  # field types are per shard: the conflicting text field goes in the same week
    store.write([Point("telemetry", {"site": "s", "plot": "p", "device": "old"}, {"rh_pct": "text"}, now - NS)])
    s = Settings(data_dir=tmp_path, unknown_devices="accept")  # type: ignore[arg-type]
    records = Records.open(s)
    writer = BatchWriter(s, store, records, Spool(tmp_path / "spool"))
    good = [(f"orchard/s/p/d{i}/telemetry", orjson.dumps({"readings": {"air_temp_c": 5.0 + i}}), now + i)
            for i in range(5)]
    bad = ("orchard/s/p/bad/telemetry", orjson.dumps({"readings": {"air_temp_c": 9.0, "rh_pct": 60.0}}), now + 9)
    writer.handle([*good[:2], bad, *good[2:]])
    assert len(writer.spool) == 0
    (letter,) = records.dead_letters()
    assert letter.letter.device == "bad" and "field type conflict" in letter.letter.reason
    stored = store.range("telemetry", ["air_temp_c"], now - NS, now + NS)
    assert sorted(r.tags["device"] for r in stored) == [f"d{i}" for i in range(5)]
    records.close()
