"""One evaluation cycle: read the store once, run every applicable rule on every plot and device, then raise,
update or clear alarms.

Two grouped reads serve all rules (analytics/window.py): the last few hours of the readings rules use (raw), and
hourly plot means with min/max over the last days; both fetched incrementally. A rule outside its growth stages
clears its alarms (the season is over); inhibited (the device is offline, or its gateway is) and silenced
signals are held, never raised. A rule that raises an exception holds its sources and is counted, so one bad
rule never stops the others.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from analytics.cap.feed import WarningFeed
from analytics.evidence import Evidence
from analytics.forecast import ForecastFeed
from analytics.rules import RULES, load
from analytics.rules.base import (
    CameraData,
    CameraRule,
    DeviceData,
    DeviceRule,
    LineData,
    LineRule,
    PlotData,
    PlotRule,
    Rule,
    RuleConfig,
    State,
    Verdict,
)
from analytics.stages import stage
from analytics.window import Readings, Slices, Window
from orchard.logs import event
from orchard.models import (
    CAMERA_MEASUREMENT,
    INGEST_STATS,
    LINE_MEASUREMENT,
    SEVERITIES,
    Alarm,
    CameraStatus,
    Device,
    LineMinute,
    Severity,
    Signal,
)
from orchard.records import Records
from orchard.records.alarms import AlarmBook
from orchard.records.lots import Lots
from orchard.records.workorders import WorkOrders
from orchard.site import DeviceConfig, Site
from orchard.store import TimeSeriesStore

log = logging.getLogger("orchard.analytics")
NS = 1_000_000_000
RAW_HOURS = 3  # stuck readings (2 h), spikes (cleared after 3 h), frost duration and evening trend
HOURLY_HOURS = 96  # heat streaks, the 3-day Psa index, waterlogging
RAW_FIELDS = ("air_temp_c", "rh_pct", "leaf_wetness_pct", "rain_mm", "wind_gust_ms", "soil_vwc_pct", "battery_v",
              "battery_pct", "canopy_temp_c")  # the hourly fields among them: the hour under way is summed from these
LINE_MINUTES = 60  # grading-line reports read per cycle: the reject window and the still limit fit in it
CAMERA_MINUTES = 30  # camera reports read per cycle: the intrusion hold and the offline limit fit in it
OFFLINE = ("device_offline", "camera_offline")  # what mutes the other alarms of the same device or camera
# ...except these: an intrusion seen just before a camera went dark (its power cut, say) is what matters most
UNMUTED = (*OFFLINE, "intrusion")
AIR_FIELDS = ("air_temp_c", "rh_pct", "leaf_wetness_pct", "rain_mm", "wind_gust_ms", "canopy_temp_c")
LETTER_HOURS = 24  # dead letters counted per cycle for the device rules that read them (decode_failed)
HOURLY_FIELDS = ("air_temp_c", "rh_pct", "leaf_wetness_pct", "rain_mm", "soil_vwc_pct")


class RuleConfigError(ValueError):
    """The site file's [rules] section names an unknown rule or a bad setting; the message says which."""


@dataclass(frozen=True)
class Configs:
    """Each rule's settings for the site, and per plot where the site file overrides them."""

    site_wide: Mapping[str, RuleConfig]
    per_plot: Mapping[tuple[str, str], RuleConfig]

    def get(self, rule: str, plot: str | None) -> RuleConfig:
        return self.per_plot.get((rule, plot or ""), self.site_wide[rule])


def configs_for(site: Site, rules: Mapping[str, type[Rule]]) -> Configs:
    unknown = sorted(set(site.rules) - set(rules))
    if unknown:
        raise RuleConfigError(f"站点文件 [rules] 中有未知规则 / unknown rules in the site file: {', '.join(unknown)}; "
                              f"known: {', '.join(sorted(rules))}")
    site_wide: dict[str, RuleConfig] = {}
    per_plot: dict[tuple[str, str], RuleConfig] = {}
    for name, cls in rules.items():
        raw = dict(site.rules.get(name, {}))
        plots = raw.pop("plots", {})
        try:
            site_wide[name] = cls.Config(**raw)
            for plot, override in plots.items():
                if plot not in site.plot_by_id:
                    raise RuleConfigError(f"[rules.{name}.plots.{plot}]: no such plot")
                per_plot[(name, plot)] = cls.Config(**{**raw, **override})
        except ValidationError as e:
            detail = "; ".join(f"{'.'.join(str(x) for x in err['loc'])}: {err['msg']}" for err in e.errors())
            raise RuleConfigError(f"规则设置有误 / bad settings for rule {name}: {detail}") from None
    return Configs(site_wide, per_plot)


@dataclass
class CycleResult:
    now_ns: int
    seconds: float = 0.0
    changed: list[tuple[Alarm, str]] = field(default_factory=list)  # (alarm, raised | worse | better | cleared)
    held: int = 0
    muted: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    newest_ns: dict[str, int] = field(default_factory=dict)  # per device, its newest reading seen by this cycle


class CycleFailed(Exception):
    """A cycle broke off after some alarm changes were already recorded: `result.changed` holds those, so the
    service still tells people about them (the exception's cause says what broke)."""

    def __init__(self, result: CycleResult) -> None:
        super().__init__(f"cycle failed after {len(result.changed)} alarm changes")
        self.result = result


class Engine:
    def __init__(self, site: Site, store: TimeSeriesStore, records: Records, book: AlarmBook,
                 rules: Mapping[str, type[Rule]] | None = None, orders: WorkOrders | None = None,
                 evidence: Evidence | None = None, ingest_behind_s: float = 300, drop_dwell_s: float = 3600,
                 forecast: ForecastFeed | None = None, warnings: WarningFeed | None = None) -> None:
        self.site, self.store, self.records, self.book, self.orders = site, store, records, book, orders
        self.forecast = forecast  # the weather forecast for pre-warnings, when one is configured
        self.warnings = warnings  # official weather warnings (CAP), when a folder or feed is configured
        self.ingest_behind_s = ingest_behind_s
        # Severity with hysteresis: a rise counts at once, a drop only once the lower level has held this long
        # (so an alarm does not go warning -> major -> warning every half hour).
        self.drop_dwell_ns = int(drop_dwell_s * NS)
        self._lower_since: dict[tuple[str, str], int] = {}
        self.lots = Lots(records, site)
        self.evidence = evidence
        classes = dict(rules) if rules is not None else dict(load())
        self.configs = configs_for(site, classes)
        self.rules = {name: cls() for name, cls in classes.items()}
        self._device_rules = any(isinstance(r, DeviceRule) for r in self.rules.values())
        self.letter_kinds = frozenset().union(*(getattr(r, "letter_kinds", ()) for r in self.rules.values()))
        configs = [*self.configs.site_wide.items(), *((r, c) for (r, _), c in self.configs.per_plot.items())]
        shares = [s for name, cfg in configs for s in self.rules[name].shares(cfg)]
        self.window = Window(store, RAW_FIELDS, HOURLY_FIELDS, RAW_HOURS, HOURLY_HOURS, shares)
        # Called between plots and devices of a full cycle: lets a quick cycle (someone's new reading) go first.
        self.yield_to_quick: Callable[[], None] = lambda: None

    def _devices(self, registry: Mapping[str, Device]) -> list[DeviceConfig]:
        """The site's devices, and approved ones ingest registered that the site file does not list yet."""
        known = {d.id for d in self.site.devices}
        extra = [DeviceConfig(id=d.device, plot=d.plot, kind=d.kind if d.kind in ("weather_station", "soil_probe",
                                                                                    "gateway") else "weather_station")
                 for d in registry.values()
                 if d.status == "approved" and d.device not in known and d.plot in self.site.plot_by_id]
        return [*self.site.devices, *extra]

    # -- the cycle --------------------------------------------------------------------------------------------
    def cycle(self, now_ns: int | None = None, plots: Collection[str] | None = None) -> CycleResult:
        """Evaluate everything (from the incremental window), or only the given plots and their devices (read
        straight from the store: what new telemetry touched, evaluated within a second of its arrival)."""
        now_ns = now_ns if now_ns is not None else time.time_ns()
        t0 = time.perf_counter()
        result = CycleResult(now_ns)
        if plots is None:
            raw, hourly = self.window.refresh(now_ns)
        else:
            raw, hourly = self.window.read(now_ns, {"plot": sorted(plots)})
        today = datetime.fromtimestamp(now_ns / NS, self.site.tz).date()
        registry = {d.device: d for d in self.records.devices()}
        devices = [d for d in self._devices(registry) if plots is None or d.plot in plots]
        # The plot's crop rules read the air from air sensors only: a soil probe's air readings are refused at
        # ingest, and any stored before it was registered as one are left out here (its own health rules still
        # see them, by device).
        probes = [d.id for d in devices if d.kind == "soil_probe"]
        plot_raw = raw[~(raw["device"].isin(probes) & raw["field"].isin(AIR_FIELDS))] if probes and not raw.empty \
            else raw
        by_plot = Slices(plot_raw, ["plot", "field"])
        # Cut by device only when a device rule will read it (a pack of crop rules alone, as the season harness
        # runs, need not pay for it).
        by_device = Slices(raw if self._device_rules else raw.iloc[0:0], ["device", "field"])
        hourly_by_plot = Slices(hourly, ["plot", "field"])
        verdicts: list[Verdict] = []
        # The forecast is fetched, when due, by a full cycle only: a reading's quick cycle never waits on it.
        forecast = self.forecast.latest(now_ns / NS, fetch=plots is None) if self.forecast is not None else None
        warnings = tuple(self.warnings.latest(now_ns / NS, fetch=plots is None)) if self.warnings is not None else ()

        for plot in self.site.plots:
            if plots is not None and plot.id not in plots:
                continue
            if plots is None:
                self.yield_to_quick()
            mine = [d for d in devices if d.plot == plot.id]
            data = PlotData(plot, stage(plot.variety, today), Readings(by_plot, plot.id),
                            Readings(hourly_by_plot, plot.id),
                            tuple(d.id for d in mine if d.kind == "weather_station"),
                            tuple(d.id for d in mine if d.kind == "soil_probe"), forecast, warnings)
            for name, rule in self.rules.items():
                if isinstance(rule, PlotRule):
                    verdicts += self._run(rule, name, plot.id, data, now_ns, result, None)

        newest = raw.groupby("device")["time_ns"].max().to_dict() if not raw.empty else {}
        result.newest_ns = {str(k): int(v) for k, v in newest.items()}
        air = plot_raw[(plot_raw["field"] == "air_temp_c") & (plot_raw["time_ns"] >= now_ns - 3600 * NS)]
        context: dict[str, Any] = {"plot_air": air.groupby("plot")["value"].mean().to_dict() if not air.empty else {}}
        if plots is None and self.letter_kinds:  # dead letters some device rules read (rules/base.py letter_kinds)
            context["failures"] = self.records.failures(sorted(self.letter_kinds), now_ns - LETTER_HOURS * 3600 * NS)
        for i, d in enumerate(devices):
            if plots is None and i % 10 == 0:
                self.yield_to_quick()
            reg = registry.get(d.id)
            seen = max((x for x in (newest.get(d.id), reg.last_seen_ns if reg else None) if x is not None),
                       default=None)
            data_d = DeviceData(d, Readings(by_device, d.id), seen, reg.online if reg else None)
            for name, rule in self.rules.items():
                if isinstance(rule, DeviceRule):
                    verdicts += self._run(rule, name, d.plot, data_d, now_ns, result, context)

        verdicts += self._cameras(now_ns, plots, result)
        if plots is None:
            verdicts += self._lines(now_ns, result)
            verdicts += self._overdue_orders(now_ns)
            verdicts += self._ingest(now_ns)
        try:
            self._apply(self._mute(verdicts, devices, now_ns, result), now_ns, result)
        except Exception as e:
            if result.changed:
                raise CycleFailed(result) from e
            raise
        result.seconds = time.perf_counter() - t0
        event(log, "cycle", scope="full" if plots is None else "plots", plots=len(plots or self.site.plots),
              seconds=round(result.seconds, 3), verdicts=len(verdicts), changed=len(result.changed),
              held=result.held, muted=result.muted, errors=sum(result.errors.values()))
        return result

    def _cameras(self, now_ns: int, plots: Collection[str] | None, result: CycleResult) -> list[Verdict]:
        """Camera health and intrusions, from the last half hour of the cameras service's reports."""
        cams = [c for c in self.site.cameras if plots is None or c.plot in plots]
        if not cams:
            return []
        rows = self.store.range(CAMERA_MEASUREMENT, CameraStatus.FIELDS, now_ns - CAMERA_MINUTES * 60 * NS,
                                now_ns + 1, where={"camera": [c.id for c in cams]})
        seen: dict[str, list[CameraStatus]] = {}
        for r in rows:
            seen.setdefault(r.tags.get("camera", ""), []).append(CameraStatus.from_values(r.tags, r.time_ns, r.values))
        verdicts: list[Verdict] = []
        for cam in cams:
            statuses = tuple(seen.get(cam.id, ()))
            if statuses:
                result.newest_ns[cam.id] = statuses[-1].time_ns
            for name, rule in self.rules.items():
                if isinstance(rule, CameraRule):
                    verdicts += self._run(rule, name, cam.plot, CameraData(cam, statuses), now_ns, result, None)
        return verdicts

    def _lines(self, now_ns: int, result: CycleResult) -> list[Verdict]:
        """The grading lines, from the last hour of the grading service's per-minute reports and the open lots."""
        if not self.site.lines:
            return []
        rows = self.store.range(LINE_MEASUREMENT, LineMinute.FIELDS, now_ns - LINE_MINUTES * 60 * NS, now_ns + 1,
                                where={"line": [x.id for x in self.site.lines]})
        minutes: dict[str, list[LineMinute]] = {}
        for r in rows:
            minutes.setdefault(r.tags.get("line", ""), []).append(LineMinute.from_values(r.tags, r.time_ns, r.values))
        verdicts: list[Verdict] = []
        for line in self.site.lines:
            data = LineData(line, tuple(sorted(minutes.get(line.id, ()), key=lambda m: m.time_ns)),
                            self.lots.current(line.id))
            for name, rule in self.rules.items():
                if isinstance(rule, LineRule):
                    verdicts += self._run(rule, name, "", data, now_ns, result, None)
        return verdicts

    def _overdue_orders(self, now_ns: int) -> list[Verdict]:
        """A work order past its state's SLA raises an alarm for the command center; moving on clears it."""
        if self.orders is None:
            return []
        late = {wo.id: wo for wo in self.orders.overdue(now_ns)}
        out = [Verdict(f"work_order:{wo.id}", "work_order_overdue", State.FIRE, Signal(
            self.site.id, f"work_order:{wo.id}", "work_order_overdue", Severity.WARNING,
            "alarm.work_order_overdue_text",
            {"id": wo.id, "title": wo.title, "state": wo.state, "assignee": wo.assignee or "-",
             "overdue_h": round((now_ns - (wo.due_ns or now_ns)) / NS / 3600, 1)}, wo.plot)) for wo in late.values()]
        for a in self.book.active():
            if a.type == "work_order_overdue" and int(a.source.split(":")[1]) not in late:
                out.append(Verdict(a.source, a.type, State.CLEAR))
        return out

    def _ingest(self, now_ns: int) -> list[Verdict]:
        """Ingest falling behind: the readings it stores arrive late (the broker holds a backlog for it) or it has
        stopped reporting. Raised well before the broker's queue for ingest is full; cleared below a third of
        the limit. No stats at all in the last hour: nothing to judge (no ingest here, or long gone: held)."""
        source, limit = "service:ingest", self.ingest_behind_s
        rows = self.store.range(INGEST_STATS, ("received", "lag_p50_s"), now_ns - 3600 * NS, now_ns + 1)
        if not rows:
            return [Verdict(source, "ingest_behind", State.HOLD)]
        newest = max(r.time_ns for r in rows)
        latest: dict[str, tuple[int, float]] = {}  # per ingest process: its newest period that had readings
        for r in rows:
            client, lag = r.tags.get("client_id", ""), r.values.get("lag_p50_s")
            if lag is not None and (client not in latest or r.time_ns > latest[client][0]):
                latest[client] = (r.time_ns, float(lag))
        silent_s = (now_ns - newest) / NS
        lags = {c: lag for c, (t, lag) in latest.items() if (now_ns - t) / NS < limit}
        worst = max(lags, key=lambda c: lags[c], default=None)
        details: dict[str, object]
        if silent_s >= limit:
            message = "alarm.ingest_behind_silent_text"
            details = {"minutes": round(silent_s / 60), "limit_min": round(limit / 60, 1)}
        elif worst is not None and lags[worst] >= limit:
            message = "alarm.ingest_behind_text"
            details = {"lag_min": round(lags[worst] / 60, 1), "client": worst, "limit_min": round(limit / 60, 1)}
        elif worst is None or lags[worst] < limit / 3:
            return [Verdict(source, "ingest_behind", State.CLEAR)]
        else:
            return [Verdict(source, "ingest_behind", State.HOLD)]
        return [Verdict(source, "ingest_behind", State.FIRE,
                        Signal(self.site.id, source, "ingest_behind", Severity.MAJOR, message, details))]

    def _run(self, rule: Rule, name: str, plot: str, data: PlotData | DeviceData | CameraData | LineData,
             now_ns: int, result: CycleResult, context: Mapping[str, Any] | None) -> list[Verdict]:
        cfg = self.configs.get(name, plot)
        source = (f"plot:{plot}" if isinstance(data, PlotData) else f"device:{data.device.id}"
                  if isinstance(data, DeviceData) else f"camera:{data.camera.id}"
                  if isinstance(data, CameraData) else f"line:{data.line.id}")
        if not cfg.enabled:
            return [rule.clear(source)]
        if isinstance(data, PlotData) and rule.stages is not None and data.stage not in rule.stages \
                and not (rule.stage_ahead_h and self._stage_ahead(data, now_ns, rule.stage_ahead_h) in rule.stages):
            return [rule.clear(source)]  # out of season: nothing to watch for
        try:
            if isinstance(rule, PlotRule) and isinstance(data, PlotData):
                return list(rule.evaluate(self.site, data, cfg, now_ns))
            if isinstance(rule, DeviceRule) and isinstance(data, DeviceData):
                return list(rule.evaluate(self.site, data, cfg, now_ns, context or {}))
            if isinstance(rule, CameraRule) and isinstance(data, CameraData):
                return list(rule.evaluate(self.site, data, cfg, now_ns))
            if isinstance(rule, LineRule) and isinstance(data, LineData):
                return list(rule.evaluate(self.site, data, cfg, now_ns))
        except Exception:
            log.exception("rule %s failed on %s; holding its alarms", name, source)
            result.errors[name] = result.errors.get(name, 0) + 1
        return [rule.hold(source)]

    def _stage_ahead(self, data: PlotData, now_ns: int, hours: float) -> str:
        return stage(data.plot.variety, datetime.fromtimestamp(now_ns / NS + hours * 3600, self.site.tz).date())

    def _mute(self, verdicts: list[Verdict], devices: list[DeviceConfig], now_ns: int,
              result: CycleResult) -> list[Verdict]:
        """Inhibition and silences: such signals become holds (an alarm already raised stays as it was)."""
        offline = {v.source.split(":", 1)[1] for v in verdicts if v.type in OFFLINE and v.state == State.FIRE}
        # A device whose uplinks arrive but cannot be decoded is not offline: it says so itself (decode_failed).
        undecodable = {v.source.split(":", 1)[1] for v in verdicts
                       if v.type == "decode_failed" and v.state == State.FIRE}
        offline -= undecodable
        # Ingest far behind: devices look silent because their readings wait at the broker, not because they are.
        behind = any(v.type == "ingest_behind" and v.state == State.FIRE for v in verdicts)
        gateway_of = {d.id: d.gateway for d in devices if d.gateway}
        silences = self.book.silences(now_ns)
        out = []
        for v in verdicts:
            s = v.signal
            if v.state == State.FIRE and s is not None:
                own_device = s.device or (v.source.removeprefix("device:") if v.source.startswith("device:") else None)
                muted = (
                    (own_device in offline and v.type not in UNMUTED)  # its readings cannot be judged
                    or (v.type == "device_offline" and gateway_of.get(own_device or "") in offline)
                    or (v.type == "device_offline" and behind)
                    or (v.type == "device_offline" and own_device in undecodable)
                    or any(x.matches(s.plot, own_device, v.type, now_ns) for x in silences)
                )
                if muted:
                    result.muted += 1
                    v = Verdict(v.source, v.type, State.HOLD)
            out.append(v)
        return out

    def _apply(self, verdicts: list[Verdict], now_ns: int, result: CycleResult) -> None:
        # Most verdicts change nothing (no alarm to clear, the same alarm again): only changes touch the database.
        active = {(a.source, a.type): a for a in self.book.active()}
        for v in verdicts:
            current = active.get((v.source, v.type))
            if current is not None and current.updated_ns > now_ns:
                continue  # a later cycle (on newer data) has already judged this source
            key = (v.source, v.type)
            if v.state == State.FIRE and v.signal is not None:
                s = v.signal
                if current is not None and v.since_ns is not None and current.started_ns < v.since_ns:
                    # The alarm is about an earlier night: that one is over, with its ending; this is a new alarm.
                    self._lower_since.pop(key, None)
                    if (cleared := self.book.clear(v.source, v.type, now_ns, details=v.note)) is not None:
                        result.changed.append((cleared, "cleared"))
                    current = None
                if current is not None and SEVERITIES.index(s.severity) < SEVERITIES.index(current.severity):
                    since = self._lower_since.setdefault(key, now_ns)
                    if now_ns - since < self.drop_dwell_ns:
                        result.held += 1  # lower, but not for long enough yet: the alarm stays as it is
                        continue
                self._lower_since.pop(key, None)
                if current and current.severity == s.severity and dict(current.details) == dict(s.details):
                    continue
                alarm, outcome = self.book.fire(s, now_ns)
                if outcome == "raised":
                    self._attach_evidence(alarm, now_ns)
                if outcome != "same":
                    result.changed.append((alarm, outcome))
            elif v.state == State.CLEAR:
                if current is not None and v.since_ns is not None and current.started_ns >= v.since_ns:
                    result.held += 1  # an alarm of the night under way: the clear was for an earlier one
                    continue
                self._lower_since.pop(key, None)
                if current is not None and (cleared := self.book.clear(v.source, v.type, now_ns,
                                                                       details=v.note)) is not None:
                    result.changed.append((cleared, "cleared"))
            else:
                result.held += 1


    def _attach_evidence(self, alarm: Alarm, now_ns: int) -> None:
        if self.evidence is None:
            return
        try:
            if (ref := self.evidence.for_alarm(alarm, now_ns)) is not None:
                self.book.attach(alarm.id, ref, now_ns)
        except Exception:  # a missing picture must never cost the alarm itself
            log.exception("could not attach camera evidence to alarm %s", alarm.id)


__all__ = ["RULES", "CycleFailed", "CycleResult", "Engine", "RuleConfigError", "configs_for"]
