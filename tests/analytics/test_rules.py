"""The rule pack, table-driven on synthetic series: each case names what the rule must say, boundaries included."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pytest

from analytics.rules import load
from analytics.rules.base import DeviceData, PlotData, Verdict
from analytics.window import Readings, Slices, Window
from orchard import i18n
from orchard.models import Point
from orchard.records import Failures
from orchard.records.alarms import alarm_text
from orchard.site import SHIPPED, DeviceConfig, Site, load_site
from orchard.store import open_store

RULES = load()
SITE: Site = load_site(SHIPPED / "sunzigou" / "site.toml")
PLOT = SITE.plot_by_id["p01"]  # 'Hongyang', field capacity and wilting point from plots.geojson
NS = 10**9
MIN = 60 * NS
TZ = SITE.tz


def at(local: str) -> int:
    return int(datetime.fromisoformat(local).replace(tzinfo=TZ).timestamp() * NS)


def raw(now: int, minutes: int, **fields: Callable[[int], float] | float) -> pd.DataFrame:
    """One reading a minute for `minutes` up to now; each field a constant or a function of minutes before now."""
    rows = []
    for back in range(minutes - 1, -1, -1):
        for f, v in fields.items():
            rows.append((now - back * MIN, "p01", "ws-p01", "", f, v(back) if callable(v) else v))
    return pd.DataFrame(rows, columns=["time_ns", "plot", "device", "depth_cm", "field", "value"])


def hourly(now: int, hours: int, **fields: Callable[[int], float] | float) -> pd.DataFrame:
    """Hourly plot means (min = max = mean) for `hours` up to now; functions take hours before now."""
    rows = []
    for back in range(hours - 1, -1, -1):
        for f, v in fields.items():
            x = v(back) if callable(v) else v
            rows.append((now - back * 3600 * NS, f, x, x, x))
    return pd.DataFrame(rows, columns=["time_ns", "field", "mean", "min", "max"])


def plot_verdict(rule: str, stage: str, now: int, raw_df: pd.DataFrame | None = None,
                 hourly_df: pd.DataFrame | None = None, **cfg: Any) -> Verdict:
    cls = RULES[rule]
    data = PlotData(PLOT, stage, Readings.from_frame(raw_df if raw_df is not None else raw(now, 0)),
                    Readings.from_frame(hourly_df if hourly_df is not None else hourly(now, 0)), ("ws-p01",),
                    ("sp-p01",))
    (v,) = cls().evaluate(SITE, data, cls.Config(**cfg), now)  # type: ignore[attr-defined]
    return v


def said(v: Verdict) -> str:
    """'fire:<severity>', 'clear' or 'hold'; a fired alarm's texts must fill in both languages. A clear of only
    an alarm raised before a time (last night's) leaves an alarm raised since as it is: 'hold'."""
    if v.state == "clear" and v.since_ns is not None:
        return "hold"
    if v.signal is None:
        return v.state
    for lang in i18n.LANGS:
        words = alarm_text(v.signal, lang, SITE)
        assert words.text != v.signal.message and "{" not in words.text and words.advice, words
    return f"{v.state}:{v.signal.severity}"


FROST_NIGHT = at("2026-03-15T05:00")
EVENING = at("2026-03-15T20:00")
MORNING = at("2026-03-16T09:00")


@pytest.mark.parametrize(
    ("case", "now", "fields", "expected"),
    [
        ("40 min at -2.0 C", FROST_NIGHT, {"air_temp_c": -2.0, "rh_pct": 90}, "fire:critical"),
        ("exactly -1.5 C for exactly 30 min", FROST_NIGHT,
         {"air_temp_c": lambda b: -1.5 if b <= 30 else 2.0, "rh_pct": 90}, "fire:critical"),
        ("-1.6 C for 10 min", FROST_NIGHT, {"air_temp_c": lambda b: -1.6 if b < 10 else 1.0, "rh_pct": 90},
         "fire:major"),
        ("+0.5 C steady in saturated air: no frost ahead (the wet-bulb alert is opt-in)", FROST_NIGHT,
         {"air_temp_c": 0.5, "rh_pct": 95}, "hold"),
        ("+2.5 C steady in dry air: wet-bulb -1.2, but no frost ahead", FROST_NIGHT,
         {"air_temp_c": 2.5, "rh_pct": 50}, "hold"),
        ("0 C steady at night: no frost ahead in a steady air (the freezing-air warning is opt-in)", FROST_NIGHT,
         {"air_temp_c": 0.0, "rh_pct": 80}, "hold"),
        ("+5 C on a dry evening: wet-bulb -0.2, but no frost in that air", EVENING,
         {"air_temp_c": 5.0, "rh_pct": 35}, "hold"),
        ("evening 2 C falling 2 C/h, dew point -6: projected -2.8", EVENING,
         {"air_temp_c": lambda b: 2.0 + 2.0 * b / 60, "rh_pct": 55}, "fire:warning"),
        ("evening 6 C falling 1.5 C/h: projected +2.4, a cool night", EVENING,
         {"air_temp_c": lambda b: 6.0 + 1.5 * b / 60, "rh_pct": 48}, "hold"),
        ("evening 9 C steady, moist: a night's alarm is not cleared before day", EVENING,
         {"air_temp_c": 9.0, "rh_pct": 70}, "hold"),
        ("morning, 6 C and rising", MORNING, {"air_temp_c": lambda b: 6.0 - b / 30, "rh_pct": 70}, "clear"),
        ("-0.8 C, no humidity sensor: no projection, no warning", FROST_NIGHT, {"air_temp_c": -0.8}, "hold"),
        ("-1.4 C steady: just above the threshold, held", FROST_NIGHT, {"air_temp_c": -1.4, "rh_pct": 99}, "hold"),
    ],
)
def test_spring_frost(case: str, now: int, fields: dict[str, Any], expected: str) -> None:
    v = plot_verdict("spring_frost", "budbreak", now, raw(now, 90, **fields))
    assert said(v) == expected, (case, v)


def test_the_wet_bulb_alert_is_there_for_those_who_protect_on_it() -> None:
    saturated = raw(FROST_NIGHT, 90, air_temp_c=0.5, rh_pct=95)
    assert said(plot_verdict("spring_frost", "budbreak", FROST_NIGHT, saturated)) == "hold"
    v = plot_verdict("spring_frost", "budbreak", FROST_NIGHT, saturated, wet_bulb_alert=True)
    assert said(v) == "fire:warning" and v.signal is not None and v.signal.message == "alarm.spring_frost_wet_bulb_text"


def test_a_freezing_evening_warns_of_the_night_with_the_hour_of_the_minimum() -> None:
    """Opt-in (cold_day_c): off by default, it only added false alarms on the season harness."""
    evening = at("2026-03-15T16:30")
    frozen = raw(evening, 90, air_temp_c=-0.5, rh_pct=60)
    assert said(plot_verdict("spring_frost", "budbreak", evening, frozen)) == "hold"
    v = plot_verdict("spring_frost", "budbreak", evening, frozen, cold_day_c=0.0)
    assert said(v) == "fire:warning" and v.signal is not None
    assert v.signal.message == "alarm.spring_frost_cold_day_text"
    assert v.signal.details["expected_at"] == "07:06"  # the next sunrise
    for hour in ("10:00", "15:00"):  # by day a cold spell's air is no warning yet: tonight's alarm is raised tonight
        day = at(f"2026-03-15T{hour}")
        assert said(plot_verdict("spring_frost", "budbreak", day, raw(day, 90, air_temp_c=-0.5),
                                 cold_day_c=0.0)) != "fire:warning"


@pytest.mark.parametrize(
    ("case", "now", "temp", "expected"),
    [
        ("08:30, -1.0 C: the sun is up, the air not safe yet", "08:30", -1.0, "hold"),
        ("11:30, -1.0 C on a cold spell's morning: the night's alarm holds to noon", "11:30", -1.0, "hold"),
        ("12:30, -1.0 C: from noon, last night's alarm is over", "12:30", -1.0, "hold"),
        ("11:00, -2.0 C: a frost going on now is no night that is over", "11:00", -2.0, "fire:critical"),
        ("08:30, +1.0 C: safely above frost", "08:30", 1.0, "clear"),
    ],
)
def test_a_frost_alarm_covers_one_night(case: str, now: str, temp: float, expected: str) -> None:
    t = at(f"2026-03-16T{now}")
    v = plot_verdict("spring_frost", "budbreak", t, raw(t, 90, air_temp_c=temp, rh_pct=70))
    assert said(v) == expected, (case, v)


def test_spring_frost_holds_on_stale_data_and_says_its_numbers() -> None:
    stale = raw(FROST_NIGHT - 20 * MIN, 60, air_temp_c=-3.0, rh_pct=90)
    assert said(plot_verdict("spring_frost", "budbreak", FROST_NIGHT, stale)) == "hold"
    v = plot_verdict("spring_frost", "budbreak", FROST_NIGHT, raw(FROST_NIGHT, 60, air_temp_c=-2.0, rh_pct=90),
                     frost_c=-1.8)  # a site setting moves the threshold
    assert said(v) == "fire:critical" and v.signal and v.signal.details["threshold_c"] == -1.8
    v = plot_verdict("spring_frost", "budbreak", FROST_NIGHT, raw(FROST_NIGHT, 60, air_temp_c=-2.0, rh_pct=90),
                     frost_c=-2.5)
    assert said(v) == "hold"


@pytest.mark.parametrize(
    ("variety_critical", "temp", "expected"),
    [(-10.0, -10.5, "fire:critical"), (-10.0, -10.0, "fire:critical"), (-10.0, -8.0, "fire:warning"),
     (-10.0, -6.5, "hold"), (-10.0, -5.0, "clear"), (-11.0, -10.5, "fire:warning")],
)
def test_winter_freeze(variety_critical: float, temp: float, expected: str) -> None:
    now = at("2026-01-10T06:00")
    v = plot_verdict("winter_freeze", "dormancy", now, raw(now, 60, air_temp_c=temp),
                     critical_c={"hongyang": variety_critical})
    assert said(v) == expected


JULY_EVENING = at("2026-07-20T19:00")
TEN_MIN = 10 * MIN


def hot(hours_back: tuple[float, float], c: float = 36.0) -> Callable[[int], float]:
    """c between `hours_back` (from, to) hours before now, 30 C otherwise; takes minutes before now."""
    return lambda m: c if hours_back[0] * 60 <= m < hours_back[1] * 60 else 30.0


@pytest.mark.parametrize(
    ("case", "temp", "expected"),
    [
        ("6 hot hours today", hot((2, 8)), "fire:major"),
        ("exactly 5 hours at exactly 35 C", hot((2, 7), 35.0), "fire:major"),
        ("yesterday and today 6 h each", lambda m: max(hot((2, 8))(m), hot((26, 32))(m)), "fire:critical"),
        ("2.5 hours at 36 C: heat building", hot((0, 2.5)), "fire:warning"),
        ("35.5 C for the last half hour: not yet a warning", hot((0, 0.5), 35.5), "hold"),
        ("1.9 hours at 36 C: the hour under way counts its 17 minutes", hot((0, 1.9)), "hold"),
        # Ten hours whose maxima touched 35 C: one reading in six each, 1.7 hours in all.
        ("one hot reading an hour for 10 hours", lambda m: 35.5 if m < 600 and m % 60 == 0 else 33.0, "hold"),
        ("a cool day", lambda m: 29.0, "clear"),
    ],
)
@pytest.mark.parametrize("path", ["refresh", "read"])
def test_heat_counts_the_hours_the_readings_stood_at_35(tmp_path: Path, case: str, temp: Callable[[int], float],
                                                         expected: str, path: str) -> None:
    """Through the window the engine reads (SQLite store), a reading every 10 minutes for three days, 17 minutes
    into the hour: a full cycle (past hours from the store, the hour under way from the raw readings it keeps)
    and a quick one (everything from the store)."""
    store = open_store(f"sqlite:///{tmp_path}/ts.sqlite")
    now = JULY_EVENING + 17 * MIN
    store.write([Point("telemetry", {"site": "s", "plot": "p01", "device": "ws-p01"}, {"air_temp_c": temp(back)},
                       now - back * MIN) for back in range(0, 72 * 60, 10)])
    cfg = RULES["heat"].Config()
    window = Window(store, ["air_temp_c"], ["air_temp_c"], 3, 96, list(RULES["heat"]().shares(cfg)))
    raw_df, hourly_df = window.refresh(now) if path == "refresh" else window.read(now, {"plot": "p01"})
    data = PlotData(PLOT, "fruit_growth", Readings(Slices(raw_df, ["plot", "field"]), "p01"),
                    Readings(Slices(hourly_df, ["plot", "field"]), "p01"), ("ws-p01",), ())
    (v,) = RULES["heat"]().evaluate(SITE, data, cfg, now)  # type: ignore[attr-defined]
    assert said(v) == expected, (case, v)


NOV = at("2026-11-20T12:00")


@pytest.mark.parametrize(
    ("case", "temp", "wet_hours", "rain_today_mm", "expected"),
    [
        ("60 wet hours at 14 C, 3 mm today ('Hongyang': major from R 33)", 14.0, 60, 3.0, "fire:major"),
        ("30 wet hours at 14 C, 3 mm today: R about 30", 14.0, 30, 3.0, "fire:warning"),
        ("the same 30 wet hours, no rain today: R is 0", 14.0, 30, 0.0, "clear"),
        ("the same, 0.9 mm today: not a rain day", 14.0, 30, 0.9, "clear"),
        ("20 wet hours at 15 C, rain today: between clear and warning", 15.0, 20, 3.0, "hold"),
        ("wet and raining but warm, daily mean 22 C", 22.0, 60, 3.0, "clear"),
        ("wet and raining but cold, 4 C", 4.0, 60, 3.0, "clear"),
    ],
)
def test_psa(case: str, temp: float, wet_hours: int, rain_today_mm: float, expected: str) -> None:
    """Beresford's R on a plot with a leaf-wetness sensor, at noon: the rain of this morning's six hours."""
    h = hourly(NOV, 60, air_temp_c=temp, rh_pct=70.0, leaf_wetness_pct=lambda b: 90.0 if b < wet_hours else 10.0,
               rain_mm=lambda b: rain_today_mm / 6 if b < 6 else 0.0)
    assert said(plot_verdict("psa_risk", "post_harvest", NOV, hourly_df=h)) == expected, case


def test_psa_without_a_wetness_sensor_uses_humidity_and_needs_a_day_and_a_half() -> None:
    humid = hourly(NOV, 60, air_temp_c=14.0, rh_pct=lambda b: 90.0 if b < 40 else 60.0,
                   rain_mm=lambda b: 0.5 if b < 4 else 0.0)
    assert said(plot_verdict("psa_risk", "post_harvest", NOV, hourly_df=humid)) == "fire:major"  # R 39.6, 'Hongyang'
    short = hourly(NOV, 30, air_temp_c=14.0, rh_pct=95.0, rain_mm=0.5)
    assert said(plot_verdict("psa_risk", "post_harvest", NOV, hourly_df=short)) == "hold"


def test_psa_applies_in_fruit_growth_too() -> None:
    """Infection happens whenever it is cool and wet: the rule is no longer switched off after flowering."""
    assert RULES["psa_risk"].stages is None  # the engine evaluates it in every stage
    june = at("2026-06-10T12:00")
    h = hourly(june, 60, air_temp_c=16.0, rh_pct=92.0, rain_mm=lambda b: 1.0 if b < 3 else 0.0)
    assert said(plot_verdict("psa_risk", "fruit_growth", june, hourly_df=h)) == "fire:major"


@pytest.mark.parametrize(
    ("stage", "words"),
    [("dormancy", "剪口"), ("budbreak", "伤流"), ("flowering", "伤流"), ("fruit_set", "新梢"),
     ("fruit_growth", "新梢"), ("maturation", "新梢"), ("post_harvest", "叶痕")],
)
def test_psa_advice_says_what_to_do_in_this_season(stage: str, words: str) -> None:
    """Winter: pruning wounds; spring: the main season, sap bleeding; after fruit set: shoots; leaf fall: scars."""
    h = hourly(NOV, 60, air_temp_c=14.0, rh_pct=90.0, rain_mm=lambda b: 1.0 if b < 3 else 0.0)
    v = plot_verdict("psa_risk", stage, NOV, hourly_df=h)
    assert v.signal is not None
    advice = alarm_text(v.signal, "zh", SITE).advice
    assert words in advice and advice != i18n.t("alarm.psa_risk_advice", "zh"), (stage, advice)


def test_psa_text_names_the_susceptible_variety_only_where_it_grows() -> None:
    h = hourly(NOV, 60, air_temp_c=14.0, rh_pct=90.0, rain_mm=lambda b: 1.0 if b < 3 else 0.0)
    other = next(p for p in SITE.plots if p.variety != "hongyang")
    texts = []
    for plot in (PLOT, other):
        data = PlotData(plot, "post_harvest", Readings.from_frame(raw(NOV, 0)), Readings.from_frame(h), ("ws",), ())
        (v,) = RULES["psa_risk"]().evaluate(SITE, data, RULES["psa_risk"].Config(), NOV)  # type: ignore[attr-defined]
        assert v.signal is not None
        texts.append(alarm_text(v.signal, "zh", SITE).text)
    assert PLOT.variety == "hongyang" and "红阳" in texts[0] and "红阳" not in texts[1]


def soil_at(available_pct: float) -> float:
    return PLOT.wilting_point_pct + (PLOT.field_capacity_pct - PLOT.wilting_point_pct) * available_pct / 100


@pytest.mark.parametrize(("available", "expected"),
                         [(40, "fire:major"), (50, "fire:warning"), (69.9, "fire:warning"), (72, "hold"),
                          (75, "clear"), (95, "clear")])
def test_drought(available: float, expected: str) -> None:
    now = at("2026-07-20T10:00")
    v = plot_verdict("drought", "fruit_growth", now, raw(now, 60, soil_vwc_pct=soil_at(available)))
    assert said(v) == expected


@pytest.mark.parametrize(("hours", "expected"), [(80, "fire:major"), (30, "fire:warning"), (10, "hold"), (0, "clear")])
def test_waterlogging(hours: int, expected: str) -> None:
    now = at("2026-06-20T10:00")
    wet, dry = PLOT.field_capacity_pct + 6, PLOT.field_capacity_pct - 5
    h = hourly(now, 96, soil_vwc_pct=lambda b: wet if b < hours else dry)
    assert said(plot_verdict("waterlogging", "fruit_growth", now, hourly_df=h)) == expected


@pytest.mark.parametrize(("gust", "expected"), [(21.0, "fire:major"), (20.0, "fire:major"), (15.0, "fire:warning"),
                                                (13.0, "hold"), (10.0, "clear")])
def test_wind(gust: float, expected: str) -> None:
    now = at("2026-04-02T15:00")
    v = plot_verdict("wind", "budbreak", now, raw(now, 60, wind_gust_ms=lambda b: gust if b == 5 else 3.0))
    assert said(v) == expected


STATION = DeviceConfig(id="ws-p01", plot="p01", kind="weather_station", interval_s=60)
NOW = at("2026-05-01T12:00")


def device_verdict(rule: str, df: pd.DataFrame, last_seen: int | None = NOW, online: bool | None = None,
                   context: dict[str, Any] | None = None) -> Verdict:
    cls = RULES[rule]
    data = DeviceData(STATION, Readings.from_frame(df), last_seen, online)
    (v,) = cls().evaluate(SITE, data, cls.Config(), NOW, context or {})  # type: ignore[attr-defined]
    return v


@pytest.mark.parametrize(("last_seen", "online", "expected"),
                         [(NOW - 4 * MIN, None, "fire:warning"), (NOW - 3 * MIN, None, "clear"),
                          (None, None, "fire:warning"), (NOW - MIN, False, "fire:warning"), (NOW, True, "clear")])
def test_offline(last_seen: int | None, online: bool | None, expected: str) -> None:
    assert said(device_verdict("device_offline", raw(NOW, 0), last_seen, online)) == expected


@pytest.mark.parametrize(("volts", "expected"), [(3.0, "fire:major"), (3.2, "fire:warning"), (3.4, "hold"),
                                                 (3.6, "clear")])
def test_low_battery(volts: float, expected: str) -> None:
    assert said(device_verdict("low_battery", raw(NOW, 30, battery_v=volts))) == expected


def test_low_battery_ignores_one_cold_dip() -> None:
    assert said(device_verdict("low_battery", raw(NOW, 30, battery_v=lambda b: 3.0 if b == 0 else 3.7))) == "clear"


@pytest.mark.parametrize(("pct", "expected"), [(8.0, "fire:major"), (15.0, "fire:warning"), (25.0, "hold"),
                                               (60.0, "clear")])
def test_low_battery_in_percent_for_devices_that_report_only_that(pct: float, expected: str) -> None:
    assert said(device_verdict("low_battery", raw(NOW, 30, battery_pct=pct))) == expected


@pytest.mark.parametrize(("case", "failures", "last_seen", "expected"), [
    ("a quick cycle does not count dead letters", None, NOW, "hold"),
    ("no failure", {}, NOW, "clear"),
    ("every uplink fails since", {"ws-p01": Failures(4, NOW - 50 * MIN, NOW - 5 * MIN, "bad_crc: x")}, NOW - 60 * MIN,
     "fire:major"),
    ("one bad frame among good ones", {"ws-p01": Failures(1, NOW - 20 * MIN, NOW - 20 * MIN, "bad_crc: x")}, NOW,
     "fire:warning"),
    ("the last failure 59 min ago", {"ws-p01": Failures(1, NOW - 59 * MIN, NOW - 59 * MIN, "codec_error: x")}, NOW,
     "fire:warning"),
    ("the last failure 61 min ago", {"ws-p01": Failures(1, NOW - 61 * MIN, NOW - 61 * MIN, "codec_error: x")}, NOW,
     "clear"),
    ("another device's failures", {"ws-p02": Failures(3, NOW - 9 * MIN, NOW - MIN, "codec_error: x")}, NOW, "clear"),
])
def test_decode_failed(case: str, failures: dict[str, Failures] | None, last_seen: int, expected: str) -> None:
    context = {} if failures is None else {"failures": failures}
    assert said(device_verdict("decode_failed", raw(NOW, 0), last_seen, context=context)) == expected


@pytest.mark.parametrize(("minutes", "expected"), [(150, "fire:warning"), (60, "clear")])
def test_stuck(minutes: int, expected: str) -> None:
    df = raw(NOW, 170, air_temp_c=lambda b: 12.3 if b < minutes else 10 + np.sin(b / 7))
    assert said(device_verdict("stuck_value", df)) == expected


@pytest.mark.parametrize(("spike_min_ago", "expected"), [(10, "fire:warning"), (100, "hold"), (None, "clear")])
def test_spike(spike_min_ago: int | None, expected: str) -> None:
    df = raw(NOW, 170, air_temp_c=lambda b: 30.0 if b == spike_min_ago else 12.0 + b / 100)
    assert said(device_verdict("spike", df)) == expected


@pytest.mark.parametrize(("own", "others", "expected"),
                         [(12.0, [5.0, 5.5, 6.0, 7.0], "fire:warning"), (8.0, [5.0, 5.5, 6.0, 7.0], "clear"),
                          (9.2, [5.0, 5.5, 6.0, 5.0], "hold"), (12.0, [5.0, 6.0], "hold")])
def test_neighbours(own: float, others: list[float], expected: str) -> None:
    context = {"plot_air": {"p01": own, **{f"p{i + 2:02d}": t for i, t in enumerate(others)}}}
    assert said(device_verdict("neighbour_disagreement", raw(NOW, 60, air_temp_c=own), context=context)) == expected


def daily_cycle(b: int) -> float:
    return 15 + 6 * np.sin(2 * np.pi * ((JULY_EVENING // (3600 * NS) - b) % 24) / 24)


@pytest.mark.parametrize(("case", "last", "expected"), [
    ("the usual day", None, "clear"),
    ("the last hour 12 C off its daily cycle", 12.0, "fire:info"),
    ("the last hour 0.6 C off: past the clear line, short of an anomaly", 0.6, "hold"),
])
def test_anomaly_against_the_daily_cycle(case: str, last: float | None, expected: str) -> None:
    noise = np.random.default_rng(3).normal(0, 0.3, 96)
    h = hourly(JULY_EVENING, 96, air_temp_c=lambda b: daily_cycle(b) + noise[b] + (last or 0.0) * (b == 0))
    assert said(plot_verdict("anomaly", "fruit_growth", JULY_EVENING, hourly_df=h)) == expected, case


def test_a_rules_numpy_numbers_reach_the_alarm_as_plain_numbers() -> None:
    """numpy scalars from a rule's arithmetic: a numpy float is a float, but the alarm's JSON history refuses it."""
    v = RULES["heat"]().signal(SITE, "plot:p01", "warning", plot="p01", temp_c=np.float64(35.126),
                               hours=np.int64(5))
    assert v.signal is not None
    assert type(v.signal.details["temp_c"]) is float and v.signal.details["temp_c"] == 35.13
    assert type(v.signal.details["hours"]) is int
    orjson.dumps(dict(v.signal.details))  # what AlarmBook.fire writes
