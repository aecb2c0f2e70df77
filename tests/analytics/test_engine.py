"""The evaluation cycle against a real store and records DB: raise, update, clear, out of season, inhibition,
silences, bad settings, a failing rule."""

from __future__ import annotations

from datetime import datetime

import pytest

from analytics.engine import Engine, RuleConfigError
from analytics.rules import load
from analytics.rules.base import PlotRule
from orchard.catalogue import TELEMETRY
from orchard.models import DeadLetter, Device, Point
from orchard.records import Records, Sighting
from orchard.records.alarms import AlarmBook
from orchard.site import DeviceConfig, Site
from orchard.store import TimeSeriesStore
from tests.analytics.conftest import ENGINE_SITE

NS = 10**9
MIN = 60 * NS
SITE = ENGINE_SITE


def at(local: str) -> int:
    return int(datetime.fromisoformat(local).replace(tzinfo=SITE.tz).timestamp() * NS)


NIGHT = at("2026-03-15T05:00")


def readings(store: TimeSeriesStore, device: str, plot: str, end: int, minutes: int, **fields: float) -> None:
    store.write([Point(TELEMETRY, {"site": SITE.id, "plot": plot, "device": device}, dict(fields), end - k * MIN)
                 for k in range(minutes)])


def everyone_reports(store: TimeSeriesStore, end: int, temp: float) -> None:
    for d in SITE.devices:
        if d.kind == "weather_station":
            readings(store, d.id, d.plot, end, 60, air_temp_c=temp, rh_pct=70.0, battery_v=3.9)
        else:
            readings(store, d.id, d.plot, end, 60, battery_v=3.9)


def active(book: AlarmBook) -> dict[tuple[str, str], str]:
    return {(a.source, a.type): a.severity for a in book.active()}


def test_frost_raised_then_cleared_then_out_of_season(world: tuple[TimeSeriesStore, Records, AlarmBook]) -> None:
    store, records, book = world
    everyone_reports(store, NIGHT, 4.0)
    readings(store, "ws-p01", "p01", NIGHT, 45, air_temp_c=-2.0, rh_pct=92.0)  # the low plot freezes
    engine = Engine(SITE, store, records, book)
    first = engine.cycle(NIGHT)
    assert active(book) == {("plot:p01", "spring_frost"): "critical"}
    assert [(a.type, how) for a, how in first.changed] == [("spring_frost", "raised")]
    alarm = book.active()[0]
    assert alarm.details["temp_c"] == -2.0 and alarm.details["minutes"] == 44 and alarm.plot == "p01"

    assert engine.cycle(NIGHT + 30 * NS).changed == []  # the same frost again changes nothing

    later = NIGHT + 3 * 3600 * NS  # 08:00, the sun is up
    everyone_reports(store, later, 6.0)
    assert [(a.type, how) for a, how in engine.cycle(later).changed] == [("spring_frost", "cleared")]
    cleared = book.events(alarm.id)[-1]
    assert (cleared.action, cleared.detail["outcome"], cleared.detail["observed_min_c"]) == ("cleared", "frost", -2.0)

    readings(store, "ws-p01", "p01", later + 10 * MIN, 45, air_temp_c=-2.0, rh_pct=92.0)
    engine.cycle(later + 10 * MIN)
    assert ("plot:p01", "spring_frost") in active(book)
    july = at("2026-07-15T05:00")  # the season is over: nothing to watch for
    everyone_reports(store, july, 22.0)
    engine.cycle(july)
    assert ("plot:p01", "spring_frost") not in active(book)


def test_a_soil_probes_air_reading_never_raises_a_frost(world: tuple[TimeSeriesStore, Records, AlarmBook]) -> None:
    """Stored before the device was registered as a soil probe (ingest refuses them since): the plot's frost rule
    still does not read them; the weather station's reading is the plot's air."""
    store, records, book = world
    everyone_reports(store, NIGHT, 4.0)
    probe = next(d for d in SITE.devices if d.plot == "p01" and d.kind == "soil_probe")
    readings(store, probe.id, "p01", NIGHT, 45, air_temp_c=-3.0)  # its soil temperature, misnamed
    Engine(SITE, store, records, book).cycle(NIGHT)
    assert ("plot:p01", "spring_frost") not in active(book)
    readings(store, "ws-p01", "p01", NIGHT, 45, air_temp_c=-2.0)  # the air does freeze: that is seen
    Engine(SITE, store, records, book).cycle(NIGHT + NS)
    assert active(book)[("plot:p01", "spring_frost")] == "critical"


def test_an_evening_warning_holds_the_night_and_says_by_day_that_no_frost_came(
        world: tuple[TimeSeriesStore, Records, AlarmBook]) -> None:
    store, records, book = world
    evening = at("2026-03-15T19:00")
    everyone_reports(store, evening, 6.0)
    store.write([Point(TELEMETRY, {"site": SITE.id, "plot": "p01", "device": "ws-p01"},  # 4 -> 1 C, a dry evening
                       {"air_temp_c": 4.0 - 3.0 * k / 120, "rh_pct": 45.0}, evening - (120 - k) * MIN)
                 for k in range(121)])
    engine = Engine(SITE, store, records, book)
    engine.cycle(evening)
    (alarm,) = [a for a in book.active() if a.type == "spring_frost"]
    assert alarm.message == "alarm.spring_frost_predicted_text" and ":" in str(alarm.details["expected_at"])
    night = at("2026-03-16T02:00")  # the projection eased: 2 C and steady; the alarm still covers the night
    everyone_reports(store, night, 2.0)
    engine.cycle(night)
    assert ("plot:p01", "spring_frost") in active(book)
    morning = at("2026-03-16T09:00")
    everyone_reports(store, morning, 8.0)
    assert (alarm.id, "cleared") in [(a.id, how) for a, how in engine.cycle(morning).changed]
    last = book.events(alarm.id)[-1]
    assert last.detail["outcome"] == "no_frost" and last.detail["observed_min_c"] > -1.5


def test_the_night_before_budbreak_is_watched_from_its_noon(world: tuple[TimeSeriesStore, Records, AlarmBook]) -> None:
    """'Hayward' (p03) breaks bud on 15 March: a frost on the 14th's morning is no bud frost, the evening of the
    14th is its first frost night."""
    store, records, book = world
    assert SITE.plot_by_id["p03"].variety == "hayward"
    engine = Engine(SITE, store, records, book)
    for when in ("2026-03-14T11:00", "2026-03-14T21:00"):
        everyone_reports(store, at(when), -3.0)
        engine.cycle(at(when))
        frost = {a.plot for a in book.active() if a.type == "spring_frost"}
        assert ("p03" in frost) is (when.endswith("21:00")), when


def test_a_cold_spells_next_night_is_an_alarm_of_its_own(world: tuple[TimeSeriesStore, Records, AlarmBook]) -> None:
    """Nights run noon to noon: frost still on at noon ends last night's alarm (it was a frost) and starts the
    next one; last night's alarm kept on by a frosty late morning ends once the air is above frost after noon;
    an alarm raised this afternoon stays for its night."""
    store, records, book = world
    engine = Engine(SITE, store, records, book)
    night = at("2026-03-15T23:00")
    everyone_reports(store, night, -3.0)
    engine.cycle(night)
    (first,) = [a for a in book.active() if a.type == "spring_frost" and a.plot == "p01"]
    late_morning = at("2026-03-16T11:30")
    everyone_reports(store, late_morning, -2.0)
    engine.cycle(late_morning)
    assert [a.id for a in book.active() if a.type == "spring_frost" and a.plot == "p01"] == [first.id]
    noon = at("2026-03-16T12:30")
    everyone_reports(store, noon, -2.0)
    changed = [(a.id, how) for a, how in engine.cycle(noon).changed if a.plot == "p01" and a.type == "spring_frost"]
    (second,) = [a for a in book.active() if a.type == "spring_frost" and a.plot == "p01"]
    assert second.id != first.id and second.started_ns == noon
    assert changed == [(first.id, "cleared"), (second.id, "raised")]
    assert book.events(first.id)[-1].detail["outcome"] == "frost"
    afternoon = at("2026-03-17T13:00")  # the day after: -2 C all morning kept the alarm on; now -1.0 C
    everyone_reports(store, at("2026-03-17T11:00"), -2.0)
    engine.cycle(at("2026-03-17T11:00"))
    assert [a.id for a in book.active() if a.type == "spring_frost" and a.plot == "p01"] == [second.id]
    everyone_reports(store, afternoon, -1.0)
    engine.cycle(afternoon)
    assert not [a for a in book.active() if a.type == "spring_frost" and a.plot == "p01"]
    evening = at("2026-03-17T20:00")  # a frost this evening, over by 20:30 at -1.0 C: tonight's alarm holds
    everyone_reports(store, evening, -2.0)
    engine.cycle(evening)
    (third,) = [a for a in book.active() if a.type == "spring_frost" and a.plot == "p01"]
    everyone_reports(store, evening + 30 * MIN, -1.0)
    engine.cycle(evening + 30 * MIN)
    assert [a.id for a in book.active() if a.type == "spring_frost" and a.plot == "p01"] == [third.id]


def test_offline_device_mutes_its_readings_and_gateway_mutes_its_devices(
        world: tuple[TimeSeriesStore, Records, AlarmBook]) -> None:
    store, records, book = world
    gw = DeviceConfig(id="gw-1", plot="p01", kind="gateway")
    devices = tuple(d.model_copy(update={"gateway": "gw-1"}) if d.plot == "p02" else d for d in SITE.devices)
    site = Site(site=SITE.site, plots=SITE.plots, devices=(*devices, gw))
    everyone_reports(store, NIGHT, 5.0)
    readings(store, "ws-p03", "p03", NIGHT, 30, air_temp_c=5.0, battery_v=3.0)  # dying battery ...
    records.record_batch([], [Sighting("ws-p03", SITE.id, "p03", NIGHT, "approved")],
                         [("ws-p03", SITE.id, "p03", False, NIGHT)])  # ... and its last will says offline
    records.upsert_device(Device("gw-1", SITE.id, "p01", "approved", "gateway"))
    Engine(site, store, records, book).cycle(NIGHT + 10 * MIN)
    found = active(book)
    assert found[("device:ws-p03", "device_offline")] == "warning"
    assert ("device:ws-p03", "low_battery") not in found  # muted: the device is offline
    assert found[("device:gw-1", "device_offline")] == "warning"
    assert ("device:ws-p02", "device_offline") not in found  # muted: its gateway is offline
    # Every other device reported until NIGHT and is now 10 minutes silent: offline too, and not muted.
    assert found[("device:ws-p01", "device_offline")] == "warning"


def codec_error(records: Records, device: str, plot: str, when: int) -> None:
    records.record_batch([(DeadLetter(when, "application/a/device/0004a30b001c0530/event/log", b"{}",
                                      "codec_error: ChirpStack's codec failed on this device's uplink: TypeError: "
                                      "bytes[9] is undefined", device, SITE.id, plot), False)], [], [])


def test_an_undecodable_device_says_so_instead_of_looking_offline(
        world: tuple[TimeSeriesStore, Records, AlarmBook]) -> None:
    store, records, book = world
    everyone_reports(store, NIGHT, 5.0)
    # ws-p03's uplinks still arrive, but since NIGHT ChirpStack's codec throws on each: nothing is stored.
    for k in range(1, 10):
        codec_error(records, "ws-p03", "p03", NIGHT + k * MIN)
    engine = Engine(SITE, store, records, book)
    engine.cycle(NIGHT + 10 * MIN)
    found = active(book)
    assert found[("device:ws-p03", "decode_failed")] == "major"  # nothing stored since the first failure
    assert ("device:ws-p03", "device_offline") not in found  # held: the device is not offline
    assert found[("device:ws-p01", "device_offline")] == "warning"  # the others are silent indeed
    (alarm,) = [a for a in book.active() if a.type == "decode_failed"]
    assert alarm.details["count"] == 9 and "bytes[9] is undefined" in str(alarm.details["reason"])

    # The codec is fixed: readings come again; an hour after the last failure the alarm clears.
    later = NIGHT + 75 * MIN
    everyone_reports(store, later, 5.0)
    engine.cycle(later - 10 * MIN)
    # Stored again but failed within the hour: warning by now, but a drop waits out the engine's dwell.
    assert active(book)[("device:ws-p03", "decode_failed")] == "major"
    engine.cycle(later)
    assert ("device:ws-p03", "decode_failed") not in active(book)


def test_a_severity_drop_waits_out_the_dwell_a_rise_does_not(
        world: tuple[TimeSeriesStore, Records, AlarmBook]) -> None:
    store, records, book = world
    engine = Engine(SITE, store, records, book)
    everyone_reports(store, NIGHT, 5.0)
    readings(store, "ws-p05", "p05", NIGHT, 10, air_temp_c=5.0, battery_v=3.0)  # major
    engine.cycle(NIGHT)
    assert active(book)[("device:ws-p05", "low_battery")] == "major"
    t = NIGHT
    for _ in range(5):  # the battery reads 3.2 V (warning) for 50 minutes: the alarm stays major
        t += 10 * MIN
        everyone_reports(store, t, 5.0)
        readings(store, "ws-p05", "p05", t, 10, air_temp_c=5.0, battery_v=3.2)
        engine.cycle(t)
        assert active(book)[("device:ws-p05", "low_battery")] == "major", (t - NIGHT) // MIN
    t += 25 * MIN  # 65 minutes since the first warning-level reading: now it drops
    everyone_reports(store, t, 5.0)
    readings(store, "ws-p05", "p05", t, 25, air_temp_c=5.0, battery_v=3.2)
    engine.cycle(t)
    assert active(book)[("device:ws-p05", "low_battery")] == "warning"
    t += 10 * MIN  # and a rise counts at once
    everyone_reports(store, t, 5.0)
    readings(store, "ws-p05", "p05", t, 10, air_temp_c=5.0, battery_v=3.0)
    assert [(a.type, how) for a, how in engine.cycle(t).changed] == [("low_battery", "restored")]
    assert active(book)[("device:ws-p05", "low_battery")] == "major"


def test_silence_keeps_a_maintenance_window_quiet(world: tuple[TimeSeriesStore, Records, AlarmBook]) -> None:
    store, records, book = world
    everyone_reports(store, NIGHT, 5.0)
    readings(store, "ws-p05", "p05", NIGHT, 60, air_temp_c=5.0, battery_v=3.0)
    book.silence(plot=None, device="ws-p05", rule="low_battery", starts_ns=NIGHT - 3600 * NS,
                 ends_ns=NIGHT + 3600 * NS, reason="换电池 battery swap", created_by="center-zhao", now_ns=NIGHT)
    engine = Engine(SITE, store, records, book)
    result = engine.cycle(NIGHT)
    assert ("device:ws-p05", "low_battery") not in active(book) and result.muted == 1
    everyone_reports(store, NIGHT + 2 * 3600 * NS, 5.0)
    readings(store, "ws-p05", "p05", NIGHT + 2 * 3600 * NS, 60, air_temp_c=5.0, battery_v=3.0)
    engine.cycle(NIGHT + 2 * 3600 * NS)  # the window is over and the battery was not swapped
    assert active(book)[("device:ws-p05", "low_battery")] == "major"


@pytest.mark.parametrize(
    ("rules", "message"),
    [({"spring_frost": {"frost_c": "cold"}}, "spring_frost"), ({"hail": {}}, "unknown rules"),
     ({"heat": {"temp_c": 36, "plots": {"p99": {"temp_c": 34}}}}, "p99"),
     ({"wind": {"gust": 3}}, "wind")],
)
def test_bad_rule_settings_say_what_to_fix(rules: dict[str, object], message: str,
                                            world: tuple[TimeSeriesStore, Records, AlarmBook]) -> None:
    store, records, book = world
    with pytest.raises(RuleConfigError, match=message):
        Engine(SITE.model_copy(update={"rules": rules}), store, records, book)


def test_per_plot_settings_override_the_site(world: tuple[TimeSeriesStore, Records, AlarmBook]) -> None:
    store, records, book = world
    everyone_reports(store, NIGHT, -1.0)  # -1 C everywhere: above the default -1.5 C
    site = SITE.model_copy(update={"rules": {"spring_frost": {"cold_day_c": -5.0, "predict": False,
                                                              "plots": {"p07": {"frost_c": -0.5}}}}})
    Engine(site, store, records, book).cycle(NIGHT)
    assert [k for k in active(book) if k[1] == "spring_frost"] == [("plot:p07", "spring_frost")]


def test_a_failing_rule_is_counted_and_the_others_still_run(world: tuple[TimeSeriesStore, Records, AlarmBook]) -> None:
    store, records, book = world

    class Broken(PlotRule):
        type = "broken"

        def evaluate(self, *args: object) -> list:  # type: ignore[override,type-arg]
            raise ZeroDivisionError("bug")

    everyone_reports(store, NIGHT, 5.0)
    readings(store, "ws-p01", "p01", NIGHT, 45, air_temp_c=-2.0, rh_pct=92.0)
    result = Engine(SITE, store, records, book, {**load(), "broken": Broken}).cycle(NIGHT)
    assert result.errors == {"broken": len(SITE.plots)}
    assert ("plot:p01", "spring_frost") in active(book)


def test_window_rolls_hours_forward_like_a_fresh_read(world: tuple[TimeSeriesStore, Records, AlarmBook]) -> None:
    from analytics.window import Window

    store, _, _ = world
    t0 = at("2026-03-15T00:00")
    for h in range(8):  # a reading every 10 minutes for 8 hours on two plots
        for k in range(6):
            for plot in ("p01", "p02"):
                readings(store, f"ws-{plot}", plot, t0 + (h * 60 + k * 10) * MIN, 1, air_temp_c=float(h + k))
    rolling = Window(store, ["air_temp_c"], ["air_temp_c"], raw_hours=1, hourly_hours=4)
    for minutes in range(30, 8 * 60, 25):  # cycles every 25 minutes through the hours
        now = t0 + minutes * MIN
        raw, hourly = rolling.refresh(now)
        fresh_raw, fresh_hourly = Window(store, ["air_temp_c"], ["air_temp_c"], 1, 4).refresh(now)
        key = ["plot", "time_ns"]
        assert raw.sort_values(key, ignore_index=True)[["plot", "time_ns", "value"]].equals(
            fresh_raw.sort_values(key, ignore_index=True)[["plot", "time_ns", "value"]])
        assert hourly.sort_values(key, ignore_index=True)[["plot", "time_ns", "mean"]].equals(
            fresh_hourly.sort_values(key, ignore_index=True)[["plot", "time_ns", "mean"]])
