"""One contract, every adapter: SQLite, InfluxDB, InfluxDB with authentication."""

from __future__ import annotations

import math
import statistics

import pytest

from orchard.models import Point
from orchard.store import TimeSeriesStore
from orchard.store.village import VillageStore

S = 1_000_000_000
MIN = 60 * S
T0 = 1_775_000_000 * S - (1_775_000_000 * S) % (3600 * S)  # an hour boundary in 2026


def pt(device: str, t: int, plot: str = "p1", **fields: float) -> Point:
    return Point("telemetry", {"site": "s", "plot": plot, "device": device}, fields, t)


def test_write_then_read_raw_range_roundtrips(store: TimeSeriesStore) -> None:
    pts = [pt("d1", T0 + i * MIN, air_temp_c=10.0 + i, rh_pct=80.5) for i in range(5)]
    assert store.write(pts).written == 5
    rows = store.range("telemetry", ["air_temp_c", "rh_pct"], T0, T0 + 10 * MIN)
    assert [(r.time_ns, r.values["air_temp_c"], r.values["rh_pct"]) for r in rows] == [
        (T0 + i * MIN, 10.0 + i, 80.5) for i in range(5)
    ]
    assert rows[0].tags == {"site": "s", "plot": "p1", "device": "d1"}


def test_range_is_half_open_and_filters_by_tag(store: TimeSeriesStore) -> None:
    store.write([pt("d1", T0, air_temp_c=1.0), pt("d2", T0, air_temp_c=2.0), pt("d1", T0 + MIN, air_temp_c=3.0)])
    rows = store.range("telemetry", ["air_temp_c"], T0, T0 + MIN, where={"device": "d1"})
    assert [r.values["air_temp_c"] for r in rows] == [1.0]
    both = store.range("telemetry", ["air_temp_c"], T0, T0 + 2 * MIN, where={"device": ["d1", "d2"]})
    assert sorted(r.values["air_temp_c"] for r in both) == [1.0, 2.0, 3.0]
    assert store.range("telemetry", ["air_temp_c"], T0, T0 + 2 * MIN, where={"device": []}) == []


def test_same_series_and_time_twice_is_one_point(store: TimeSeriesStore) -> None:
    store.write([pt("d1", T0, air_temp_c=1.0)])
    store.write([pt("d1", T0, air_temp_c=2.0), pt("d1", T0, air_temp_c=2.0)])
    rows = store.range("telemetry", ["air_temp_c"], T0 - MIN, T0 + MIN)
    assert [(r.time_ns, r.values["air_temp_c"]) for r in rows] == [(T0, 2.0)]
    counted = store.aggregate("telemetry", ["air_temp_c"], ["count"], T0 - MIN, T0 + MIN)
    assert counted[0].values["air_temp_c.count"] == 1


def test_latest_value_per_series_and_field(store: TimeSeriesStore) -> None:
    store.write(
        [
            pt("d1", T0, air_temp_c=1.0, rh_pct=50.0),
            pt("d1", T0 + MIN, air_temp_c=2.0),
            pt("d2", T0 + 5 * MIN, plot="p2", air_temp_c=7.0, rh_pct=60.0),
        ]
    )
    latest = store.latest("telemetry", ["air_temp_c", "rh_pct"])
    got = {(v.tags["device"], v.field): (v.time_ns, v.value) for v in latest}
    assert got == {
        ("d1", "air_temp_c"): (T0 + MIN, 2.0),
        ("d1", "rh_pct"): (T0, 50.0),
        ("d2", "air_temp_c"): (T0 + 5 * MIN, 7.0),
        ("d2", "rh_pct"): (T0 + 5 * MIN, 60.0),
    }
    only_p2 = store.latest("telemetry", ["air_temp_c"], where={"plot": "p2"})
    assert [(v.tags["device"], v.value) for v in only_p2] == [("d2", 7.0)]
    recent = store.latest("telemetry", ["rh_pct"], since_ns=T0 + MIN)
    assert [v.tags["device"] for v in recent] == ["d2"]


@pytest.mark.parametrize("every_min", [10, 60])
def test_bucketed_aggregates_per_tag_match_python(store: TimeSeriesStore, every_min: int) -> None:
    # Two devices on p1, one on p2, a reading a minute for two hours.
    pts = []
    for i in range(120):
        pts.append(pt("a", T0 + i * MIN, air_temp_c=float(i % 17)))
        pts.append(pt("b", T0 + i * MIN + S, air_temp_c=float((i * 7) % 23)))
        pts.append(pt("c", T0 + i * MIN, plot="p2", air_temp_c=-float(i % 5)))
    store.write(pts)
    fns = ["mean", "min", "max", "last", "sum", "count"]
    every = every_min * MIN
    rows = store.aggregate("telemetry", ["air_temp_c"], fns, T0, T0 + 120 * MIN, every, group_by=["plot"])
    expected = {}
    for plot in ("p1", "p2"):
        for b in range(T0, T0 + 120 * MIN, every):
            mine = sorted(
                (p.time_ns, p.fields["air_temp_c"])
                for p in pts
                if p.tags["plot"] == plot and b <= p.time_ns < b + every
            )
            vals = [v for _, v in mine]
            expected[(plot, b)] = {
                "air_temp_c.mean": statistics.fmean(vals),
                "air_temp_c.min": min(vals),
                "air_temp_c.max": max(vals),
                "air_temp_c.last": mine[-1][1],
                "air_temp_c.sum": sum(vals),
                "air_temp_c.count": len(vals),
            }
    got = {(r.tags["plot"], r.time_ns): r.values for r in rows}
    assert got.keys() == expected.keys()
    for key, want in expected.items():
        for name, value in want.items():
            assert math.isclose(got[key][name], value, rel_tol=1e-9, abs_tol=1e-9), (key, name)


def test_daily_buckets_follow_the_site_time_zone(store: TimeSeriesStore) -> None:
    # Asia/Shanghai is UTC+8: local midnight is 16:00 UTC, i.e. GROUP BY time(1d, -8h).
    day = 24 * 3600 * S
    midnight_local = (T0 // day) * day - 8 * 3600 * S
    store.write([pt("a", midnight_local - MIN, air_temp_c=1.0), pt("a", midnight_local + MIN, air_temp_c=5.0)])
    rows = store.aggregate(
        "telemetry", ["air_temp_c"], ["max"], midnight_local - day, midnight_local + day, day, offset_ns=-8 * 3600 * S
    )
    assert [(r.time_ns, r.values["air_temp_c.max"]) for r in rows] == [
        (midnight_local - day, 1.0),
        (midnight_local, 5.0),
    ]


def test_aggregate_without_interval_is_one_bucket_stamped_at_start(store: TimeSeriesStore) -> None:
    store.write([pt("a", T0 + i * MIN, air_temp_c=float(i)) for i in range(10)])
    rows = store.aggregate("telemetry", ["air_temp_c"], ["count", "max"], T0, T0 + 10 * MIN)
    assert [(r.time_ns, r.values) for r in rows] == [(T0, {"air_temp_c.count": 10, "air_temp_c.max": 9.0})]


def test_at_least_counts_only_the_values_at_or_above(store: TimeSeriesStore) -> None:
    """How long a plot's air stood at 35 C or above, per hour: the readings at or above it, and their count."""
    hour = 60 * MIN
    temps = [34.9, 35.0, 36.2, 33.0]  # the first hour: two of four at or above 35
    store.write([pt("a", T0 + i * 15 * MIN, air_temp_c=v, rh_pct=40.0) for i, v in enumerate(temps)]
                + [pt("b", T0 + hour + MIN, air_temp_c=30.0)]  # the second hour: none
                + [pt("c", T0 + 2 * hour, plot="p2", air_temp_c=35.5)])
    rows = store.aggregate("telemetry", ["air_temp_c"], ["count", "min", "last"], T0, T0 + 3 * hour, hour,
                           group_by=["plot"], at_least=35.0)
    assert [(r.tags["plot"], r.time_ns, r.values) for r in sorted(rows, key=lambda r: r.time_ns)] == [
        ("p1", T0, {"air_temp_c.count": 2, "air_temp_c.min": 35.0, "air_temp_c.last": 36.2}),
        ("p2", T0 + 2 * hour, {"air_temp_c.count": 1, "air_temp_c.min": 35.5, "air_temp_c.last": 35.5}),
    ]
    with pytest.raises(ValueError, match="one field"):
        store.aggregate("telemetry", ["air_temp_c", "rh_pct"], ["count"], T0, T0 + hour, at_least=35.0)


def test_tag_values(store: TimeSeriesStore) -> None:
    store.write([pt("d1", T0, plot="p1", air_temp_c=1.0), pt("d2", T0, plot="p2", air_temp_c=1.0)])
    assert store.tag_values("telemetry", "plot") == ["p1", "p2"]
    assert store.tag_values("telemetry", "device", where={"plot": "p2"}) == ["d2"]
    assert store.tag_values("nothing_here", "plot") == []


def test_what_a_backup_walks(store: TimeSeriesStore) -> None:
    assert store.measurements() == [] and store.time_bounds("telemetry") is None
    store.write([pt("d1", T0, plot="p1", air_temp_c=1.0), pt("d1", T0 + 5 * S, plot="p1", rh_pct=80.0),
                 Point("camera", {"camera": "c1"}, {"health": "ok"}, T0 + 9 * S)])
    assert store.measurements() == ["camera", "telemetry"]
    assert store.field_keys("telemetry") == ["air_temp_c", "rh_pct"]
    assert store.time_bounds("telemetry") == (T0, T0 + 5 * S)
    assert store.time_bounds("camera") == (T0 + 9 * S, T0 + 9 * S)


HOSTILE = [
    "a,b=c d",  # line-protocol separators
    'q"uote\'s',  # both quote kinds
    "back\\slash",
    "x' OR '1'='1",  # InfluxQL injection in a literal
    '" OR 1=1 --',
    "村 3号园",  # Chinese and a space
]


@pytest.mark.parametrize("value", HOSTILE)
def test_metacharacters_in_tags_are_escaped_both_ways(store: TimeSeriesStore, value: str) -> None:
    store.write([Point("telemetry", {"plot": value, "device": "d"}, {"air_temp_c": 1.5}, T0)])
    store.write([Point("telemetry", {"plot": "other", "device": "d"}, {"air_temp_c": 9.0}, T0)])
    assert value in store.tag_values("telemetry", "plot")
    rows = store.range("telemetry", ["air_temp_c"], T0, T0 + 1, where={"plot": value})
    assert [(r.tags["plot"], r.values["air_temp_c"]) for r in rows] == [(value, 1.5)]
    latest = store.latest("telemetry", ["air_temp_c"], where={"plot": value})
    assert [v.value for v in latest] == [1.5]


def test_metacharacters_in_measurement_and_field_names(store: TimeSeriesStore) -> None:
    m, f = 'odd "measure",ment', "field=with space"
    store.write([Point(m, {"t": "v"}, {f: 2.5}, T0)])
    assert [r.values[f] for r in store.range(m, [f], T0, T0 + 1)] == [2.5]
    assert store.aggregate(m, [f], ["sum"], T0, T0 + 1)[0].values[f"{f}.sum"] == 2.5


def test_points_without_writable_fields_are_rejected_not_lost_silently(store: TimeSeriesStore) -> None:
    good = pt("d1", T0, air_temp_c=1.0)
    nan = pt("d1", T0 + MIN, air_temp_c=float("nan"))
    result = store.write([good, nan])
    assert result.written == 1
    assert [r.point for r in result.rejected] == [nan]
    assert "no writable field" in result.rejected[0].reason


def test_a_village_reads_only_its_own_p1_from_a_shared_store(store: TimeSeriesStore) -> None:
    """Two villages write to one store, both with a plot p1 and a device d1: each village's view reads its own
    readings only, in every kind of read; what belongs to no village (ingest's counters) is read by all."""
    a, b = VillageStore(store, "a"), VillageStore(store, "b")
    a.write([Point("telemetry", {"site": "a", "plot": "p1", "device": "d1"}, {"air_temp_c": 1.0}, T0)])
    b.write([Point("telemetry", {"site": "b", "plot": "p1", "device": "d1"}, {"air_temp_c": -3.0}, T0)])
    store.write([Point("ingest_stats", {"client_id": "ingest"}, {"received": 7.0}, T0)])
    assert [r.values["air_temp_c"] for r in a.range("telemetry", ["air_temp_c"], T0, T0 + MIN)] == [1.0]
    assert [v.value for v in b.latest("telemetry", ["air_temp_c"])] == [-3.0]
    (row,) = a.aggregate("telemetry", ["air_temp_c"], ["min"], T0, T0 + MIN, group_by=["plot"])
    assert row.values["air_temp_c.min"] == 1.0
    assert b.tag_values("telemetry", "site") == ["b"]
    assert [r.values["received"] for r in b.range("ingest_stats", ["received"], T0, T0 + MIN)] == [7.0]
    both = a.range("telemetry", ["air_temp_c"], T0, T0 + MIN, where={"site": ["a", "b"]})  # named: as asked
    assert sorted(r.values["air_temp_c"] for r in both) == [-3.0, 1.0]
