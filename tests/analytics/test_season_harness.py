"""The season harness (bench/season): its truth follows the literature definitions at their boundaries, its
weather makes the events it is there to test, and a short season through the real engine is scored."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime

import pytest

from bench.season import truth
from bench.season.forecast import HarnessForecast
from bench.season.run import Episode, SeasonRun, figures, harness_plots, run_season
from bench.season.weather import LOCAL, STEP_S, Sample, SeasonWeather

NIGHT = int(datetime(2027, 3, 10, 18, tzinfo=UTC).timestamp()) - LOCAL  # 18:00 local, after 'Hongyang' budbreak


def samples(start_s: int, hours: float, **fields: Callable[[int], float] | float) -> list[Sample]:
    """10-minute samples of one plot; each field a constant or a function of the step number."""
    base = {"air_temp_c": 10.0, "rh_pct": 60.0, "leaf_wetness_pct": 0.0, "rain_mm": 0.0, "wind_gust_ms": 2.0,
            "soil_vwc_pct": 30.0}
    out = []
    for k in range(int(hours * 3600 // STEP_S)):
        values = {f: (v(k) if callable(v) else v) for f, v in (base | fields).items()}
        out.append(Sample(start_s + k * STEP_S, "h01", **values))  # type: ignore[arg-type]
    return out


def found(rows: list[Sample], variety: str = "hongyang") -> list[str]:
    return [e.rule for e in truth.events({"h01": rows}, {"h01": variety}, {"h01": (36.0, 14.0)})]


@pytest.mark.parametrize(("case", "rows", "variety", "expected"), [
    ("30 min at exactly -1.5 C after budbreak", samples(NIGHT, 12, air_temp_c=lambda k: -1.5 if 30 <= k <= 33
                                                               else 2.0), "hongyang", ["spring_frost"]),
    ("20 min at -3 C", samples(NIGHT, 12, air_temp_c=lambda k: -3.0 if 30 <= k <= 32 else 2.0), "hongyang", []),
    ("-1.4 C all night", samples(NIGHT, 12, air_temp_c=-1.4), "hongyang", []),
    ("the same frost before 'Hayward' breaks bud", samples(NIGHT, 12, air_temp_c=-3.0), "hayward", []),
    ("a cold spell 40 h below -1.5 C: one frost, not one per noon", samples(NIGHT, 40, air_temp_c=-4.0),
     "hongyang", ["spring_frost"]),
    ("two frosty nights with a thaw between: two", samples(NIGHT, 36, air_temp_c=lambda k: 5.0 if 60 <= k < 120
                                                            else -3.0), "hongyang", ["spring_frost"] * 2),
], ids=lambda x: x if isinstance(x, str) else "")
def test_frost_truth(case: str, rows: list[Sample], variety: str, expected: list[str]) -> None:
    assert [r for r in found(rows, variety) if r == "spring_frost"] == expected


def test_heat_truth_counts_hours_at_or_above_35() -> None:
    july = int(datetime(2027, 7, 20, tzinfo=UTC).timestamp()) - LOCAL
    hot = samples(july, 24, air_temp_c=lambda k: 35.0 if 66 <= k < 96 else 30.0)  # 11:00-16:00: 5 h at 35.0
    short = samples(july, 24, air_temp_c=lambda k: 36.0 if 66 <= k < 95 else 30.0)  # 4 h 50 min
    assert "heat" in found(hot) and "heat" not in found(short)


def test_psa_truth_is_the_r_index_on_rain_days() -> None:
    """Three cool, humid days at 15 C: M = 72 wet hours at weight 1; R counts it only on a day with > 1 mm."""
    start = int(datetime(2027, 3, 20, tzinfo=UTC).timestamp()) - LOCAL
    day = 86400 // STEP_S
    wet = samples(start, 72, air_temp_c=15.0, rh_pct=90.0, rain_mm=lambda k: 0.2 if k >= 2 * day else 0.0)
    early_rain = samples(start, 72, air_temp_c=15.0, rh_pct=90.0,
                         rain_mm=lambda k: 0.2 if k < day else 0.0)  # rain on day 1 only
    warm = samples(start, 72, air_temp_c=21.0, rh_pct=90.0, rain_mm=0.2)  # mean >= 20 C: no infection
    assert found(wet).count("psa_risk") == 1  # day 3: R = 72; days 1 and 2 had no rain, so R = 0 on them
    assert "psa_risk" not in found(early_rain)  # day 1: R = its own M = 24, under 25; then no rain
    assert "psa_risk" not in found(warm)


def test_the_weather_makes_frost_nights_low_in_the_valley_and_rain() -> None:
    plots = harness_plots(8)
    w = SeasonWeather(5, plots, date(2027, 3, 1), 30)
    lows: dict[str, float] = {}
    rain = 0.0
    for step in w.samples():
        for s in step:
            lows[s.plot] = min(lows.get(s.plot, 99.0), s.air_temp_c)
            rain += s.rain_mm
    assert min(lows.values()) < -1.5  # frost nights happen
    assert lows["h01"] < lows["h08"]  # and the valley floor (400 m) is colder than the hilltop (900 m)
    assert rain > 8 * 10  # March is not dry


def test_a_short_season_through_the_engine_is_scored() -> None:
    """Seed 2's frost night of 2 March on the early varieties: each damaging night is covered by a frost alarm of
    its plot, and the scoring sees the alarms the engine raised."""
    run = run_season(2, date(2027, 3, 1), 3)
    frost = [e for e in run.events if e.rule == "spring_frost"]
    assert {e.plot for e in frost} == {"h01", "h03", "h06", "h07"}  # 'Hongyang' and 'Cuixiang' plots
    (f,) = [x for x in figures([run]) if x.rule == "spring_frost"]
    assert f.events == len(frost) and f.detected == f.events
    assert f.alarms >= f.events and run.cycles == 3 * 48


def test_a_nights_frost_that_comes_back_is_one_event_lasting_to_the_last_run() -> None:
    """-3 C for an hour, a milder hour, -3 C again for an hour: one event, from the first run's 30th minute
    to the second run's end."""
    rows = samples(NIGHT, 12, air_temp_c=lambda k: -3.0 if 30 <= k < 36 or 42 <= k < 48 else 2.0)
    (event,) = [e for e in truth.events({"h01": rows}, {"h01": "hongyang"}, {"h01": (36.0, 14.0)})
                if e.rule == "spring_frost"]
    assert event.start_s == rows[33].time_s and event.end_s == rows[47].time_s


@pytest.mark.parametrize(("raised_h", "false"), [
    (-3, 0),  # the evening before the onset: a warning
    (2, 0),  # while the night's frost is on (it came back after a milder spell): right, not false
    (6, 1),  # after the night's last damaging run, and no frost in the next 12 h: false
], ids=["before", "during", "after"])
def test_an_alarm_is_false_only_with_no_frost_on_or_to_come(raised_h: int, false: int) -> None:
    onset = NIGHT + 6 * 3600
    run = SeasonRun(0, 1, 7, [truth.Event("spring_frost", "h01", onset, "night", -3.0, onset + 4 * 3600)],
                    [Episode("spring_frost", "h01", onset + raised_h * 3600, onset + 9 * 3600)], 0.0, 0)
    (f,) = [x for x in figures([run]) if x.rule == "spring_frost"]
    assert (f.alarms, f.false_alarms) == (1, false)


def test_the_harness_forecast_is_the_run_available_on_the_clock() -> None:
    """Runs every 6 h, available 4 h after they are issued, 48 hourly values from the hour after the issue."""
    w = SeasonWeather(5, harness_plots(8), date(2027, 3, 1), 5)
    issued = (w.start_s // (6 * 3600) + 8) * 6 * 3600  # a run time (00, 06, 12 or 18 UTC) two days in
    now = [float(issued + 4 * 3600 - 1)]  # a second before that run is out
    fc = HarnessForecast(w, lambda: now[0])
    before = fc.fetch(31.7, 106.0)
    now[0] += 1
    after = fc.fetch(31.7, 106.0)
    assert after.fetched_s == int(now[0]) and before.fetched_s == after.fetched_s - 6 * 3600
    assert len(after.hours) == 48 and after.hours[0].time_s == after.fetched_s - 4 * 3600 + 3600
    assert [h.air_temp_c for h in before.hours[6:]] != [h.air_temp_c for h in after.hours[:42]]  # a new run's errors
