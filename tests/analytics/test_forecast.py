"""The weather forecast: Open-Meteo's answers (tests/fixtures/forecast, served by an httpx.MockTransport, no
network), the feed that keeps the latest one and gives none when it is down or stale, and the frost and heat
pre-warnings the afternoon before, each with its chance."""

from __future__ import annotations

import logging
from pathlib import Path

import httpx
import orjson
import pytest

from analytics.engine import Engine
from analytics.forecast import Forecast, ForecastError, ForecastFeed, chance_at_or_below, feed_for
from analytics.forecast.openmeteo import OpenMeteo
from analytics.forecast.saved import SavedForecast
from analytics.rules.base import PlotData
from analytics.window import Readings
from orchard.records import Records
from orchard.records.alarms import AlarmBook, alarm_text
from orchard.settings import ForecastSettings
from orchard.store import open_store
from tests.analytics.test_rules import PLOT, RULES, SITE, at, hourly, raw, said

FIXTURES = Path(__file__).parents[1] / "fixtures" / "forecast"
NS = 10**9


def answer(name: str) -> bytes:
    return (FIXTURES / f"{name}.json").read_bytes()


def served(name: str, status: int = 200, seen: list[httpx.Request] | None = None) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        if seen is not None:
            seen.append(request)
        return httpx.Response(status, content=answer(name), headers={"content-type": "application/json"})
    return httpx.MockTransport(handler)


def forecast_of(name: str) -> Forecast:
    return OpenMeteo(transport=served(name)).fetch(*SITE.centre)


def test_open_meteo_asks_for_the_hours_the_rules_read_and_parses_them() -> None:
    seen: list[httpx.Request] = []
    f = OpenMeteo(transport=served("open-meteo-frost-night", seen=seen), models="cma_grapes_global").fetch(31.7, 106.0)
    q = seen[0].url.params
    assert seen[0].url.host == "api.open-meteo.com" and seen[0].url.path == "/v1/forecast"
    assert q["hourly"].split(",") == ["temperature_2m", "relative_humidity_2m", "wind_speed_10m", "cloud_cover"]
    assert (q["wind_speed_unit"], q["timeformat"], q["forecast_hours"], q["models"]) == ("ms", "unixtime", "48",
                                                                                          "cma_grapes_global")
    assert len(f.hours) == 51 and f.source == "open-meteo"
    coldest = min(f.hours, key=lambda h: h.air_temp_c if h.air_temp_c is not None else 99)
    assert (coldest.air_temp_c, coldest.time_s) == (-3.4, at("2027-03-15T06:00") // NS)
    assert (coldest.rh_pct, coldest.wind_ms, coldest.cloud_pct) == (92.0, 0.8, 5.0)


@pytest.mark.parametrize(
    ("case", "transport", "says"),
    [
        ("a misspelt variable: HTTP 400 with Open-Meteo's reason", served("open-meteo-error", 400), "tempeture_2m"),
        ("a proxy's HTML error page", httpx.MockTransport(lambda r: httpx.Response(502, text="<html>bad gateway")),
         "HTTP 502"),
        ("nobody answers", httpx.MockTransport(lambda r: (_ for _ in ()).throw(httpx.ConnectError("refused"))),
         "did not answer"),
        ("JSON that is no forecast", httpx.MockTransport(lambda r: httpx.Response(200, json={"hourly": {}})),
         "no hourly times"),
        ("times as ISO text (timeformat lost)", httpx.MockTransport(lambda r: httpx.Response(
            200, json={"hourly": {"time": ["2027-03-14T03:00"], "temperature_2m": [4.0]}})), "epoch seconds"),
    ],
)
def test_a_failed_forecast_says_why(case: str, transport: httpx.MockTransport, says: str) -> None:
    with pytest.raises(ForecastError, match=says):
        OpenMeteo(transport=transport).fetch(31.7, 106.0)


class Counting:
    """A source that answers with a fixture, or fails while `down` is set, counting its fetches."""

    name = "counting"

    def __init__(self, fixture: str) -> None:
        self.fixture, self.down, self.fetches = fixture, False, 0

    def fetch(self, latitude: float, longitude: float) -> Forecast:
        self.fetches += 1
        if self.down:
            raise ForecastError("the forecast service did not answer (ConnectError)")
        return forecast_of(self.fixture)


def test_the_feed_refreshes_when_due_and_gives_none_when_down_or_stale(caplog: pytest.LogCaptureFixture) -> None:
    src = Counting("open-meteo-frost-night")
    feed = ForecastFeed(src, 31.7, 106.0, refresh_s=3600, retry_s=600, max_age_s=6 * 3600)
    t0 = at("2027-03-14T14:00") / NS
    assert feed.latest(t0, fetch=False) is None and src.fetches == 0  # a quick cycle never fetches
    assert feed.latest(t0) is not None and src.fetches == 1
    assert feed.latest(t0 + 1800) is not None and src.fetches == 1  # not due yet
    src.down = True
    caplog.set_level(logging.WARNING, "orchard.analytics.forecast")
    assert feed.latest(t0 + 3600) is not None and src.fetches == 2  # failed: the hour-old one still serves
    assert feed.latest(t0 + 3900) is not None and src.fetches == 2  # retried only after retry_s
    assert feed.latest(t0 + 4300) is not None and src.fetches == 3
    assert [r.getMessage() for r in caplog.records] == ["forecast_failed"]  # once per outage, not per try
    assert feed.latest(t0 + 6 * 3600 + 1) is None  # older than max_age: no pre-warnings from it
    src.down = False
    assert feed.latest(t0 + 7 * 3600) is not None


def test_a_saved_forecast_that_ran_out_is_none(tmp_path: Path) -> None:
    path = tmp_path / "forecast.json"
    path.write_bytes(answer("open-meteo-frost-night"))
    feed = ForecastFeed(SavedForecast(path), 31.7, 106.0)
    assert feed.latest(at("2027-03-14T15:00") / NS) is not None
    # Two days later the same file reaches only a few hours ahead: no use for tonight.
    assert ForecastFeed(SavedForecast(path), 31.7, 106.0).latest(at("2027-03-16T08:00") / NS) is None
    assert ForecastFeed(SavedForecast(tmp_path / "none.json"), 31.7, 106.0).latest(0) is None


def test_chance_of_a_value_at_or_below_a_threshold() -> None:
    assert chance_at_or_below(-1.5, -1.5, 2.0) == pytest.approx(0.5)
    assert chance_at_or_below(-3.5, -1.5, 2.0) == pytest.approx(0.841, abs=0.001)  # one spread below
    assert chance_at_or_below(2.5, -1.5, 2.0) == pytest.approx(0.023, abs=0.001)  # two spreads above


def verdict(rule: str, stage: str, now: int, fc: Forecast | None, temp_c: float, **cfg: object) -> object:
    data = PlotData(PLOT, stage, Readings.from_frame(raw(now, 90, air_temp_c=temp_c, rh_pct=60)),
                    Readings.from_frame(hourly(now, 30, air_temp_c=temp_c)), ("ws-p01",), ("sp-p01",), fc)
    cls = RULES[rule]
    (v,) = cls().evaluate(SITE, data, cls.Config(**cfg), now)  # type: ignore[attr-defined]
    return v


@pytest.mark.parametrize(
    ("case", "now", "fixture", "cfg", "expected"),
    [
        ("16:30, a clear night to -3.4 C forecast", "2027-03-14T16:30", "open-meteo-frost-night", {}, "fire:warning"),
        ("13:30: before the afternoon's pre-warning hour", "2027-03-14T13:30", "open-meteo-frost-night", {}, "hold"),
        ("16:30, an overcast night at 5.5 C", "2027-03-14T16:30", "open-meteo-mild-night", {}, "hold"),
        ("16:30, -3.4 C but the plot's nights run 2 C warmer", "2027-03-14T16:30", "open-meteo-frost-night",
         {"forecast_offset_c": 2.0}, "hold"),
        ("16:30, forecast pre-warnings switched off", "2027-03-14T16:30", "open-meteo-frost-night",
         {"forecast": False}, "hold"),
        ("16:30, no forecast at all", "2027-03-14T16:30", None, {}, "hold"),
        ("14:30, the forecast's frost more than 10 h ahead: tonight's alarm is raised later", "2027-03-14T14:30",
         "open-meteo-frost-night", {}, "hold"),
        ("05:00, before dawn: the forecast's night is the readings' to judge now", "2027-03-15T05:00",
         "open-meteo-frost-night", {}, "hold"),
        ("16:30, the frost more than 6 h ahead: not yet", "2027-03-14T16:30", "open-meteo-frost-night",
         {"forecast_lead_h": 6}, "hold"),
        ("22:00, the frost within 6 h", "2027-03-14T22:00", "open-meteo-frost-night", {"forecast_lead_h": 6},
         "fire:warning"),
    ],
)
def test_frost_pre_warning_the_afternoon_before(case: str, now: str, fixture: str | None, cfg: dict[str, object],
                                                 expected: str) -> None:
    t = at(now)
    v = verdict("spring_frost", "budbreak", t, forecast_of(fixture) if fixture else None, 9.0, **cfg)
    assert said(v) == expected, (case, v)  # type: ignore[arg-type]


def test_the_frost_pre_warning_says_when_and_how_sure() -> None:
    v = verdict("spring_frost", "budbreak", at("2027-03-14T16:30"), forecast_of("open-meteo-frost-night"), 9.0)
    assert v.signal is not None  # type: ignore[attr-defined]
    d = v.signal.details  # type: ignore[attr-defined]
    assert (d["forecast_min_c"], d["expected_at"], d["chance_pct"]) == (-3.4, "06:00", 83)  # 1.9 C under: 0.95 spreads
    words = alarm_text(v.signal, "zh", SITE)  # type: ignore[attr-defined]
    assert "-3.4°C" in words.text and "06:00" in words.text and "83%" in words.text


@pytest.mark.parametrize(
    ("case", "now", "fixture", "expected", "day"),
    [
        ("15:00, seven hours to 37.2 C tomorrow", "2027-07-20T15:00", "open-meteo-heat", "fire:warning", "明天"),
        ("11:00, the hot hours still to come today are few", "2027-07-20T11:00", "open-meteo-heat", "clear", None),
        ("15:00, a mild forecast (March's)", "2027-07-20T15:00", "open-meteo-mild-night", "clear", None),
    ],
)
def test_heat_pre_warning_for_the_next_day(case: str, now: str, fixture: str, expected: str,
                                           day: str | None) -> None:
    f = forecast_of(fixture)
    if fixture != "open-meteo-heat":  # the March hours moved to July: a cool day forecast
        shift = at("2027-07-20T11:00") // NS - f.hours[0].time_s
        f = Forecast(f.source, f.fetched_s, tuple(type(h)(h.time_s + shift, h.air_temp_c, h.rh_pct, h.wind_ms,
                                                            h.cloud_pct) for h in f.hours))
    v = verdict("heat", "fruit_growth", at(now), f, 30.0)
    assert said(v) == expected, (case, v)  # type: ignore[arg-type]
    if day is not None:
        words = alarm_text(v.signal, "zh", SITE)  # type: ignore[attr-defined]
        assert day in words.text and "7 小时" in words.text and "37.2°C" in words.text


def test_the_site_works_unchanged_when_the_forecast_service_is_down(tmp_path: Path) -> None:
    """The engine with a forecast feed whose service refuses: the cycle runs, the readings' own frost alarm is
    raised (p02), no pre-warning; with the service back, the pre-warning comes from the next full cycle."""
    store = open_store(f"sqlite:///{tmp_path}/ts.sqlite")
    store.ensure_ready()
    records = Records.in_data_dir(tmp_path)
    book = AlarmBook(records)
    up = {"ok": False}

    def handler(request: httpx.Request) -> httpx.Response:
        if not up["ok"]:
            raise httpx.ConnectError("connection refused")
        return httpx.Response(200, content=answer("open-meteo-frost-night"))

    feed = ForecastFeed(OpenMeteo(transport=httpx.MockTransport(handler)), *SITE.centre, retry_s=60)
    engine = Engine(SITE, store, records, book, rules={"spring_frost": RULES["spring_frost"]}, forecast=feed)
    now = at("2027-03-14T16:30")
    from orchard.models import Point

    store.write([Point("telemetry", {"site": SITE.id, "plot": p.id, "device": f"ws-{p.id}"},
                       {"air_temp_c": 9.0 if p.id != "p02" else -2.0, "rh_pct": 60.0}, now - m * 60 * NS)
                 for p in SITE.plots for m in range(0, 60)])
    engine.cycle(now)
    frost = {a.plot: a.message for a in book.active() if a.type == "spring_frost"}
    assert frost == {"p02": "alarm.spring_frost_text"}  # the frost going on now; nothing from the forecast
    up["ok"] = True
    engine.cycle(now + 120 * NS, plots={"p01"})  # a quick cycle does not fetch
    assert {a.plot for a in book.active() if a.type == "spring_frost"} == {"p02"}
    engine.cycle(now + 180 * NS)
    frost = {a.plot: a.message for a in book.active() if a.type == "spring_frost"}
    assert frost["p01"] == "alarm.spring_frost_forecast_text" and frost["p02"] == "alarm.spring_frost_text"
    assert frost["p03"] == "alarm.spring_frost_forecast_text"  # 'Hayward' buds break on the 15th: its first night
    store.close()
    records.close()


def test_settings_build_the_feed_they_name(tmp_path: Path) -> None:
    assert feed_for(ForecastSettings(), 31.7, 106.0) is None  # off by default
    feed = feed_for(ForecastSettings(provider="file", file=tmp_path / "f.json"), 31.7, 106.0)
    assert feed is not None and isinstance(feed.source, SavedForecast)
    with pytest.raises(ValueError, match="ORCHARD_FORECAST__FILE"):
        feed_for(ForecastSettings(provider="file"), 31.7, 106.0)
    assert orjson.loads(answer("open-meteo-error"))["error"] is True
