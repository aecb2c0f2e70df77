"""What only the InfluxDB adapter does: partial writes, database creation, auth and outage errors."""

from __future__ import annotations

import pytest

from orchard.localservers import InfluxDB, free_port
from orchard.models import Point
from orchard.store import StoreError, StoreUnavailable, open_store
from orchard.store.influx import InfluxStore
from tests.conftest import influx_url, unique

T0 = 1_775_000_000_000_000_000


def test_database_created_on_first_write(influx: InfluxDB) -> None:
    store = open_store(influx_url(influx, unique("fresh")))
    assert store.write([Point("m", {"d": "x"}, {"f": 1.0}, T0)]).written == 1
    assert [r.values["f"] for r in store.range("m", ["f"], T0, T0 + 1)] == [1.0]


def test_field_type_conflict_names_the_bad_points_and_keeps_the_good(influx: InfluxDB) -> None:
    store = open_store(influx_url(influx, unique("conflict")))
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
    store = InfluxStore(target, client=httpx.Client(base_url=target.base_url, transport=httpx.MockTransport(answer),
                                                    headers={"Authorization": "Token t0ken"}))
    if ok:
        store.ensure_ready()
    else:
        with pytest.raises(StoreError, match="DBRP"):
            store.ensure_ready()
    assert seen == ['CREATE DATABASE "orchard"', "SHOW DATABASES"]
