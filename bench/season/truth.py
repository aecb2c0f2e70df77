"""What really happened in a season, by the literature's definitions (docs/architecture.md "The kiwifruit
numbers"), computed from the weather the harness wrote and nothing the rules compute:

- damaging frost: air at or below -1.5 C for 30 minutes, from budbreak to fruit set (buds and flowers);
- heat: 5 hours or more at or above 35 C in a day (leaf scorch), counted from the readings;
- drought: soil water below 70% of the available water (between wilting point and field capacity), in the
  growing season;
- Psa high-risk day: the R index of Beresford, Tyson & Henshall (2017, Phytopathology 107:184) at or above 25,
  the level Froud, Cogger & Beresford (2018, Acta Hortic. 1218) found associated with severe canker. R is the
  3-day accumulation of the M index (an hourly temperature function summed over wet hours, RH > 81% standing in
  for leaf wetness as in their R') on days with more than 1 mm of rain, and zero on other days; the temperature
  function of the design notes (optimum 15 C, none at or beyond 5 and 25 C) and no infection on days whose mean
  is 20 C or more.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta

from analytics.stages import stage
from bench.season.weather import LOCAL, STEP_S, Sample

FROST_C, FROST_MIN = -1.5, 30
FROST_STAGES = frozenset({"budbreak", "flowering", "fruit_set"})
HEAT_C, HEAT_HOURS = 35.0, 5
DROUGHT_SHARE = 0.70
PSA_R, PSA_RH, PSA_RAIN_MM = 25.0, 81.0, 1.0
GROWING = frozenset({"budbreak", "flowering", "fruit_set", "fruit_growth", "maturation"})


@dataclass(frozen=True, slots=True)
class Event:
    """One damaging event on one plot: when it began (s) and the day or night it belongs to."""

    rule: str  # the alarm type that should warn of it
    plot: str
    start_s: int
    key: str  # the night, day or episode, for reports
    value: float  # how bad: the minimum, the hot hours, the lowest share of water, the R index
    end_s: int = 0  # frost: the end of the night's last damaging run (an alarm raised while it lasts is right)


def local_date(t_s: int, shift_h: float = 0) -> date:
    return datetime.fromtimestamp(t_s + LOCAL - shift_h * 3600, UTC).date()


def psa_weight(t_c: float) -> float:
    return max(0.0, 1 - ((t_c - 15.0) / 10.0) ** 2)


def events(series: Mapping[str, Sequence[Sample]], varieties: Mapping[str, str],
           water: Mapping[str, tuple[float, float]]) -> list[Event]:
    """Every truth event of every plot. water: plot -> (field capacity, wilting point) in VWC %."""
    out: list[Event] = []
    for plot, samples in series.items():
        out += _frost(plot, samples, varieties[plot])
        out += _heat(plot, samples, varieties[plot])
        out += _drought(plot, samples, varieties[plot], *water[plot])
        out += _psa(plot, samples)
    return sorted(out, key=lambda e: (e.start_s, e.plot, e.rule))


def _frost(plot: str, samples: Sequence[Sample], variety: str) -> list[Event]:
    """One event per night (noon to noon) with a run of 30 minutes at or below -1.5 C; it begins when the run
    reaches 30 minutes (the damage is done from then). A run that goes on across noon (a cold spell whose day
    stays below -1.5 C) is the one event it began as: the damage was done, and warned of, the night before. The
    event ends with the night's last run of 30 minutes (the frost that came back after a milder hour is still
    that night's frost: an alarm raised for it is not a false one)."""
    need = FROST_MIN // (STEP_S // 60)  # samples after the first one of a run: 3 steps of 10 minutes
    nights: dict[date, Event] = {}
    run_start: int | None = None
    counted = False  # this run is already an event
    owner: date | None = None  # the night whose event this run belongs to
    for s in samples:
        night = local_date(s.time_s, 12)
        if s.air_temp_c <= FROST_C:
            run_start = s.time_s if run_start is None else run_start
            steps = (s.time_s - run_start) // STEP_S
            if steps >= need and not counted and night not in nights \
                    and stage(variety, local_date(s.time_s)) in FROST_STAGES:
                low = min(x.air_temp_c for x in samples if local_date(x.time_s, 12) == night)
                nights[night] = Event("spring_frost", plot, s.time_s, str(night), low, s.time_s)
                counted, owner = True, night
            elif steps >= need and not counted and night in nights:
                counted, owner = True, night  # the night's frost back after a milder spell
            if counted and owner is not None:
                nights[owner] = replace(nights[owner], end_s=s.time_s)
        else:
            run_start, counted, owner = None, False, None
    return list(nights.values())


def _heat(plot: str, samples: Sequence[Sample], variety: str) -> list[Event]:
    by_day: dict[date, list[Sample]] = {}
    for s in samples:
        by_day.setdefault(local_date(s.time_s), []).append(s)
    out = []
    for day, rows in by_day.items():
        hot = [s for s in rows if s.air_temp_c >= HEAT_C]
        hours = len(hot) * STEP_S / 3600
        if hours >= HEAT_HOURS:
            out.append(Event("heat", plot, hot[0].time_s, str(day), hours))
    return out


def _drought(plot: str, samples: Sequence[Sample], variety: str, fc: float, wp: float) -> list[Event]:
    """One event per episode below 70% of the available water in the growing season; an episode ends when the
    soil is back above 75% (so one dry spell is one event, not one per rain shower)."""
    low, back = wp + DROUGHT_SHARE * (fc - wp), wp + 0.75 * (fc - wp)
    out: list[Event] = []
    dry = False
    for s in samples:
        if not dry and s.soil_vwc_pct < low and stage(variety, local_date(s.time_s)) in GROWING:
            dry = True
            out.append(Event("drought", plot, s.time_s, str(local_date(s.time_s)), s.soil_vwc_pct))
        elif dry and s.soil_vwc_pct >= back:
            dry = False
    return out


def _psa(plot: str, samples: Sequence[Sample]) -> list[Event]:
    days: dict[date, list[Sample]] = {}
    for s in samples:
        days.setdefault(local_date(s.time_s), []).append(s)
    m: dict[date, float] = {}
    for day, rows in days.items():
        mean = sum(s.air_temp_c for s in rows) / len(rows)
        if mean >= 20:
            m[day] = 0.0
            continue
        m[day] = sum(psa_weight(s.air_temp_c) for s in rows if s.rh_pct > PSA_RH or s.rain_mm > 0) * STEP_S / 3600
    out = []
    for day, rows in days.items():
        rain = sum(s.rain_mm for s in rows)
        r = sum(m.get(day - timedelta(days=k), 0.0) for k in range(3)) if rain > PSA_RAIN_MM else 0.0
        if r >= PSA_R:
            out.append(Event("psa_risk", plot, rows[0].time_s, str(day), round(r, 1)))
    return out
