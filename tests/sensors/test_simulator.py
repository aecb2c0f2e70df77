"""The simulator is deterministic for a seed and plausible for Cangxi."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime

from sensors.simulate import Generator, make_site, sample_points

MARCH = datetime.fromisoformat("2026-03-01T00:00:00+08:00").timestamp()
JULY = datetime.fromisoformat("2026-07-10T00:00:00+08:00").timestamp()


def test_same_seed_same_messages_other_seed_other_weather() -> None:
    site = make_site(24, 7)
    a, b, c = Generator(7, 60), Generator(7, 60), Generator(8, 60)
    msgs_a = [a.payload(d, MARCH + 600 * i, i) for i in range(20) for d in site]
    assert msgs_a == [b.payload(d, MARCH + 600 * i, i) for i in range(20) for d in site]
    assert msgs_a != [c.payload(d, MARCH + 600 * i, i) for i in range(20) for d in make_site(24, 8)]


def test_site_has_both_varieties_and_every_fault() -> None:
    site = make_site(24, 1)
    assert {d.plot.variety for d in site} == {"hongyang", "hayward"}
    assert len({d.plot.plot for d in site}) == 12
    assert set().union(*(d.faults for d in site)) == {"stuck", "spiky", "dropout", "low_battery", "flaky"}


def daily(points: list, device: str, field: str) -> dict[int, list[float]]:  # type: ignore[type-arg]
    out: dict[int, list[float]] = defaultdict(list)
    for p in points:
        if p.tags["device"] == device and field in p.fields:
            out[int((p.time_ns / 1e9 + 8 * 3600) // 86400)].append(p.fields[field])
    return out


def test_spring_has_frost_nights_and_summer_heat_waves() -> None:
    clean = [d.device for d in make_site(24, 1) if d.kind == "weather_station" and not d.faults]
    spring = sample_points(1, 24, 900, MARCH, MARCH + 30 * 86400)
    summer = sample_points(1, 24, 900, JULY, JULY + 30 * 86400)
    spring_min = [min(v) for d in clean for v in daily(spring, d, "air_temp_c").values()]
    summer_max = [max(v) for d in clean for v in daily(summer, d, "air_temp_c").values()]
    assert min(spring_min) < -1.5  # the frost that damages budding kiwifruit
    assert max(summer_max) > 35  # the heat that scorches leaves
    assert sorted(spring_min)[len(spring_min) // 2] > 0  # but most March nights are frost-free
    # Diurnal cycle: afternoons warmer than dawns every day.
    days = daily(summer, clean[0], "air_temp_c")
    assert all(max(v) - min(v) > 2 for v in days.values())


def test_rain_wets_leaves_and_soil_then_dries() -> None:
    pts = sample_points(1, 4, 600, JULY, JULY + 20 * 86400)
    ws = sorted((p.time_ns, p.fields) for p in pts if p.tags["device"] == "ws-p01")
    rainy = [f for _, f in ws if f.get("rain_mm", 0) > 0.2]
    assert rainy and all(f["leaf_wetness_pct"] == 100 for f in rainy)
    vwc = [p.fields["soil_vwc_pct"] for p in pts if p.tags.get("depth_cm") == "20" and p.tags["device"] == "sp-p01"]
    assert max(vwc) - min(vwc) > 5  # wetting and drying, not a flat line


def test_faulty_devices_misbehave() -> None:
    site = make_site(24, 1)
    low = next(d for d in site if "low_battery" in d.faults)
    gen = Generator(1, 300)
    import orjson

    volts = [orjson.loads(gen.payload(low, MARCH + 86400 * k + 3 * 3600, k)).get("battery_v", 9) for k in range(19)]
    assert min(volts) < 3.3
    dropout = next(d for d in site if "dropout" in d.faults)
    assert any(gen.silent(dropout, MARCH + 300 * k) for k in range(2000))
    flaky = next(d for d in site if "flaky" in d.faults)
    assert any(gen.offline(flaky, MARCH + 300 * k) for k in range(200))
