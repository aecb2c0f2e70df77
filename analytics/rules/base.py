"""What a rule is: a plugin of one alarm type that looks at one plot (or one device) at a time and says, for
each source it judges, fire (with a severity and the numbers), clear, or hold (in the hysteresis band, or not
enough data to say).

Each rule's numbers are a pydantic model with the defaults and sources in docs/architecture.md; a site changes
them in site.toml ([rules.<type>]), per plot under [rules.<type>.plots.<plot>]. Texts are i18n keys alarm.<type>
(title), alarm.<type>_text (what and how bad, with the rule's numbers) and alarm.<type>_advice (what to do).
"""

from __future__ import annotations

import builtins
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from pydantic import Field

from analytics.cap import Warning
from analytics.forecast import Forecast
from analytics.window import Readings
from orchard.models import CameraStatus, LineMinute, Severity, Signal
from orchard.records.lots import Lot
from orchard.settings import Section
from orchard.site import CameraConfig, DeviceConfig, LineConfig, Plot, Site

NS = 1_000_000_000
class State(StrEnum):
    """What a rule says about a source: raise (or keep) the alarm, clear it, or leave it as it is."""

    FIRE = "fire"
    CLEAR = "clear"
    HOLD = "hold"


class RuleConfig(Section):

    enabled: bool = Field(True, description="Evaluate this rule at all.")


@dataclass(frozen=True, slots=True)
class Verdict:
    source: str
    type: str
    state: State
    signal: Signal | None = None
    note: Mapping[str, Any] | None = None  # a clear's own words for the alarm's history (the frost that was not)
    # The alarm is about what began at this time (a night from its noon). FIRE: an active alarm raised before it
    # is closed, with `note` as its ending, and a new one raised (a cold spell's next night is its own alarm).
    # CLEAR: only an alarm raised before it clears.
    since_ns: int | None = None


@dataclass(frozen=True, slots=True)
class PlotData:
    """A plot's data for one evaluation cycle (rows sorted by time, times in ns)."""

    plot: Plot
    stage: str  # growth stage today (analytics/stages.py)
    raw: Readings  # last few hours, every device of the plot: time_ns, device, depth_cm, field, value
    hourly: Readings  # last days, plot means per hour: time_ns, field, mean, min, max
    stations: tuple[str, ...]  # weather stations of the plot
    probes: tuple[str, ...]  # soil probes of the plot
    forecast: Forecast | None = None  # the village's weather forecast, when one is configured and fresh
    warnings: tuple[Warning, ...] = ()  # official warnings (CAP), the newest message of each, in force or ended


@dataclass(frozen=True, slots=True)
class DeviceData:
    device: DeviceConfig
    raw: Readings  # last few hours of this device: time_ns, depth_cm, field, value
    last_seen_ns: int | None  # newest reading stored or registered
    online: bool | None  # the device's own last will / birth message, when it sent one


@dataclass(frozen=True, slots=True)
class CameraData:
    camera: CameraConfig
    statuses: tuple[CameraStatus, ...]  # what the cameras service said over the last half hour, oldest first

    @property
    def latest(self) -> CameraStatus | None:
        return self.statuses[-1] if self.statuses else None


@dataclass(frozen=True, slots=True)
class LineData:
    line: LineConfig
    minutes: tuple[LineMinute, ...]  # the grading service's per-minute reports over the last hour, oldest first
    lot: Lot | None  # the lot open on the line now

    def minutes_since(self, start_ns: int) -> list[LineMinute]:
        return [m for m in self.minutes if m.time_ns >= start_ns]


class Rule:
    type: ClassVar[str]
    Config: ClassVar[builtins.type[RuleConfig]] = RuleConfig
    stages: ClassVar[frozenset[str] | None] = None  # growth stages it applies in; None: all year
    # A rule about the coming hours (tonight's frost) applies as well while the stage this many hours ahead is
    # among its stages: the evening before budbreak's date warns of the frost on its first morning.
    stage_ahead_h: ClassVar[float] = 0.0
    severity_order: ClassVar[tuple[str, ...]] = ("warning", "major", "critical")

    def shares(self, cfg: Any) -> Iterable[tuple[str, float]]:
        """(reading, threshold) pairs whose hourly share of readings at or above it the rule reads
        (data.hourly, row `share_field(reading, threshold)`): how long the air stood at or above 35 C."""
        return ()

    def signal(self, site: Site, source: str, severity: Severity | str, **params: Any) -> Verdict:
        """Fire with these numbers (rounded for the texts); `plot` and `device` among them also file the alarm.
        The alarm's text is alarm.<type>_text, or alarm.<type>_<variant>_text with text="<variant>"; its
        placeholders must all be among the numbers."""
        variant = str(params.pop("text", ""))
        # Numbers as plain Python numbers (a numpy float is a float, but not one the alarm's JSON history takes).
        plain = {k: v.item() if isinstance(v, np.generic) else v for k, v in params.items()}
        rounded = {k: round(v, 2) if isinstance(v, float) else v for k, v in plain.items()}
        message = f"alarm.{self.type}_{variant}_text" if variant else f"alarm.{self.type}_text"
        signal = Signal(site.id, source, self.type, Severity(severity), message, rounded, params.get("plot"),
                        params.get("device"))
        return Verdict(source, self.type, State.FIRE, signal)

    @staticmethod
    def since(v: Verdict, since_ns: int, **closing: Any) -> Verdict:
        """The fired verdict about what began at since_ns: an active alarm raised before it is closed, with
        `closing` in its history, and a new one raised."""
        note = {k: x.item() if isinstance(x, np.generic) else x for k, x in closing.items()} or None
        return replace(v, since_ns=since_ns, note=note) if v.state == State.FIRE else v

    def graded(self, site: Site, source: str, value: float, *, warning: float, major: float, clear: float,
               rising: bool, threshold_key: str, **params: Any) -> Verdict:
        """The common two-level rule: fire at the warning or major level (rising: at or above it; falling: below
        it), clear beyond `clear` (rising: below it; falling: at or above it), hold in between. The level that
        fired is given as `threshold_key`."""
        for severity, level in (("major", major), ("warning", warning)):
            if (value >= level) if rising else (value < level):
                return self.signal(site, source, severity, **{threshold_key: level}, **params)
        calm = value < clear if rising else value >= clear
        return self.clear(source) if calm else self.hold(source)

    def clear(self, source: str, *, since_ns: int | None = None, **note: Any) -> Verdict:
        """Clear; `note` (plain numbers and words) goes into the alarm's history with the clearing. since_ns:
        clear only an alarm raised before it (last night's), and leave one raised since as it is."""
        plain = {k: v.item() if isinstance(v, np.generic) else v for k, v in note.items()}
        return Verdict(source, self.type, State.CLEAR, note=plain or None, since_ns=since_ns)

    def hold(self, source: str) -> Verdict:
        return Verdict(source, self.type, State.HOLD)


class PlotRule(Rule):
    def evaluate(self, site: Site, data: PlotData, cfg: Any, now_ns: int) -> Iterable[Verdict]:
        raise NotImplementedError


class DeviceRule(Rule):
    # Dead-letter reason kinds the rule reads: the engine counts them per device once a full cycle and hands
    # them over as context["failures"] (device -> orchard.records.Failures); absent in a quick cycle.
    letter_kinds: ClassVar[frozenset[str]] = frozenset()

    def evaluate(self, site: Site, data: DeviceData, cfg: Any, now_ns: int,
                 context: Mapping[str, Any]) -> Iterable[Verdict]:
        raise NotImplementedError


class CameraRule(Rule):
    def evaluate(self, site: Site, data: CameraData, cfg: Any, now_ns: int) -> Iterable[Verdict]:
        raise NotImplementedError


class LineRule(Rule):
    def evaluate(self, site: Site, data: LineData, cfg: Any, now_ns: int) -> Iterable[Verdict]:
        raise NotImplementedError


def line_source(line: str) -> str:
    return f"line:{line}"


def camera_source(camera: str) -> str:
    return f"camera:{camera}"


def series(rows: pd.DataFrame, col: str = "value") -> pd.Series:
    """One reading's rows as a time-indexed series (ns), averaged over devices and depths per instant."""
    if rows.empty:
        return pd.Series(dtype=float)
    return rows.groupby("time_ns")[col].mean().sort_index()


def plot_source(plot: Plot) -> str:
    return f"plot:{plot.id}"


def device_source(device: str) -> str:
    return f"device:{device}"


def coldest(data: PlotData) -> pd.Series:
    """Per instant, the lowest air temperature of the plot's stations."""
    return data.raw.of("air_temp_c").groupby("time_ns")["value"].min().sort_index()


def minutes_below(t: pd.Series, limit: float) -> float:
    """How long the series has been at or below `limit` without a break, up to its last point."""
    above = t[t > limit]
    since = t.index[0] if above.empty else above.index[-1]
    run = t[t.index > since] if not above.empty else t
    if run.empty:
        return 0.0
    return float((t.index[-1] - run.index[0]) / NS / 60)
