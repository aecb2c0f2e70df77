"""Backtest before changing a rule: the engine over stored history with an injected clock, against the alarms
the village had. The village's history here: three March nights on two plots of the shipped site, one frost
(p01 down to -2.5 C) and one cold night that stayed above freezing (p02 down to +0.5 C)."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from analytics.engine import Engine
from analytics.replay import Change, replay
from analytics.rules import load, with_settings
from app.cli import app
from orchard.models import Point
from orchard.records import Records
from orchard.records.alarms import AlarmBook
from orchard.store import open_store
from tests.analytics.test_rules import SITE, at

NS = 10**9
START, END = at("2027-03-14T00:00"), at("2027-03-17T00:00")
LOWS = {("p01", "2027-03-15"): -2.5, ("p02", "2027-03-15"): 0.5}
STEP_S = 1800


def temp(plot: str, t_ns: int) -> float:
    """10 C at 14:00, the night's minimum at 05:00 (3 C unless LOWS says), straight lines between."""
    from datetime import datetime, timedelta

    local = datetime.fromtimestamp(t_ns / NS, SITE.tz)
    h = local.hour + local.minute / 60
    day = local.date() if h < 14 else local.date() + timedelta(days=1)  # the night this evening leads into
    low = LOWS.get((plot, day.isoformat()), 3.0)
    if 5 <= h < 14:
        return low + (10 - low) * (h - 5) / 9
    gone = (h - 14) if h >= 14 else (h + 10)
    return 10 - (10 - low) * gone / 15


@pytest.fixture(scope="module")
def village(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The store with the three nights, and the records DB with what the engine raised live (a cycle
    every half hour, as the replays run)."""
    root = tmp_path_factory.mktemp("village")
    store = open_store(f"sqlite:///{root}/ts.sqlite")
    store.ensure_ready()
    store.write([Point("telemetry", {"site": SITE.id, "plot": plot, "device": f"ws-{plot}"},
                       {"air_temp_c": round(temp(plot, t), 2), "rh_pct": 70.0}, t)
                 for plot in ("p01", "p02") for t in range(START - 6 * 3600 * NS, END, 600 * NS)])
    records = Records.in_data_dir(root)
    pack = load()
    engine = Engine(SITE, store, records, AlarmBook(records), rules={"spring_frost": pack["spring_frost"]})
    for t in range(START, END + 1, STEP_S * NS):
        engine.cycle(t)
    store.close()
    records.close()
    return root


def run(root: Path, *sets: str) -> tuple[list[tuple[str, str | None, str]], object]:
    store = open_store(f"sqlite:///{root}/ts.sqlite")
    records = Records.in_data_dir(root)
    try:
        was = AlarmBook(records).between(START, END)
        r = replay(SITE, store, START, END, step_s=STEP_S, rules=["spring_frost"], sets=sets, was=was, work=root)
    finally:
        store.close()
        records.close()
    return [(d.change.value, (d.would or d.was).plot, (d.would or d.was).severity) for d in r.differences], r  # type: ignore[union-attr]


def test_the_site_own_settings_replay_what_was_raised(village: Path) -> None:
    diffs, r = run(village)
    assert diffs == [("same", "p01", "critical")]  # the frost night, nothing else
    assert r.cycles == 145  # type: ignore[attr-defined]


def test_a_threshold_raised_shows_the_alarms_it_would_add(village: Path) -> None:
    """With damage already at +1 C, p02's cold night would have been a frost alarm too (and p01's raised earlier
    in its night)."""
    diffs, _ = run(village, "spring_frost.frost_c=1.0")
    assert sorted(diffs) == [("moved", "p01", "critical"), ("new", "p02", "critical")]


def test_a_threshold_lowered_shows_the_alarms_it_would_drop(village: Path) -> None:
    diffs, _ = run(village, "spring_frost.frost_c=-4", "spring_frost.cold_day_c=-4")
    assert diffs == [("gone", "p01", "critical")]


def test_a_warning_moved_by_a_setting_is_moved_not_new(village: Path) -> None:
    """Per plot: p01's evening projection warns at once with the warning margin at +1 C above the threshold,
    an hour or more before the frost alarm that was raised."""
    diffs, r = run(village, "spring_frost.plots.p01.predict_margin_c=1.0")
    assert diffs == [("moved", "p01", "critical")]
    (d,) = r.differences  # type: ignore[attr-defined]
    assert d.change == Change.MOVED and d.shift_min is not None and d.shift_min <= -60


@pytest.mark.parametrize(("item", "says"), [("frost_c=-2", "rule.param=value"), ("spring_frost.=1", "rule.param"),
                                            ("=3", "rule.param")])
def test_a_setting_that_is_not_rule_param_value_says_how_to_write_it(item: str, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        with_settings(SITE, [item])


def test_settings_are_read_as_toml_values() -> None:
    site = with_settings(SITE, ["spring_frost.frost_c=-2", "spring_frost.predict=false", "heat.plots.p03.hours=4",
                                "psa_risk.note=hello"])
    assert site.rules["spring_frost"] == {"frost_c": -2, "predict": False}
    assert site.rules["heat"] == {"plots": {"p03": {"hours": 4}}}
    assert site.rules["psa_risk"] == {"note": "hello"} and SITE.rules == {}  # the site itself unchanged


def test_the_command_prints_the_differences_as_json(village: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORCHARD_STORE_URL", f"sqlite:///{village}/ts.sqlite")
    monkeypatch.setenv("ORCHARD_DATA_DIR", str(village))
    out = CliRunner().invoke(app, ["analytics", "replay", "--from", "2027-03-14", "--to", "2027-03-17",
                                   "--rule", "spring_frost", "--set", "spring_frost.frost_c=1.0", "--step-min", "30",
                                   "--json"])
    assert out.exit_code == 0, out.output
    report = orjson.loads(out.stdout.strip().splitlines()[-1])
    assert (report["new"], report["same"], report["gone"], report["moved"]) == (1, 0, 0, 1)
    new = next(d for d in report["differences"] if d["change"] == "new")
    assert new["would"]["plot"] == "p02" and new["would"]["raised"].startswith("03-15")
    bad = CliRunner().invoke(app, ["analytics", "replay", "--from", "2027-03-14", "--to", "2027-03-17",
                                   "--rule", "hail"])
    assert bad.exit_code == 2 and "unknown rules: hail" in bad.output
