"""The grading line, from the grading service's per-minute reports and the open lot.

- reject_spike: the last minutes rejected far more fruit than the lot had so far (or than a plain lot would):
  the camera or its light has a problem, or this grower's fruit has rot that needs looking at before packing.
- line_stopped: a lot is open during a shift but nothing has been graded for a while (the belt jammed, the
  camera or the grading service stopped, or the lot was left open after the last bin).
Both go to the command center (no plot: the line is not in an orchard).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from datetime import datetime

from pydantic import Field

from analytics.rules import register
from analytics.rules.base import LineData, LineRule, RuleConfig, Verdict, line_source
from orchard.site import Site

NS = 1_000_000_000
MINUTE_NS = 60 * NS


class RejectSpikeConfig(RuleConfig):
    window_min: int = Field(10, ge=1, le=50, description="Minutes of grading judged together.")
    min_fruit: int = Field(60, ge=1, description="Judge only when the window graded at least this many fruit.")
    rate_pct: float = Field(25, gt=0, le=100, description="Fire at this reject rate at least ...")
    factor: float = Field(2.0, ge=1, description="... and at this many times the lot's own rate before the window.")
    baseline_pct: float = Field(8, ge=0, le=100, description="The rate to compare with while the lot has graded "
                                "too few fruit (fewer than baseline_fruit) before the window.")
    baseline_fruit: int = Field(200, ge=1, description="Fruit before the window that make the lot's own rate.")
    major_pct: float = Field(50, gt=0, le=100, description="Major at this reject rate.")
    clear_ratio: float = Field(0.75, gt=0, lt=1, description="Clear below this share of the firing rate.")


@register
class RejectSpike(LineRule):
    type = "reject_spike"
    Config = RejectSpikeConfig

    def evaluate(self, site: Site, data: LineData, cfg: RejectSpikeConfig, now_ns: int) -> Iterable[Verdict]:
        src = line_source(data.line.id)
        lot = data.lot
        if lot is None:
            return [self.clear(src)]
        start = now_ns - now_ns % MINUTE_NS - cfg.window_min * MINUTE_NS
        window = [m for m in data.minutes_since(start) if m.lot == str(lot.id)]
        fruit = sum(m.fruit for m in window)
        if not fruit:
            return [self.clear(src)]  # nothing graded, nothing rejected (a belt standing still is line_stopped)
        if fruit < cfg.min_fruit:
            return [self.hold(src)]
        rejected = sum(m.rejected for m in window)
        rate = 100 * rejected / fruit
        before_fruit = lot.fruit - fruit
        before_rej = lot.by_grade().get("reject", 0) - rejected
        baseline = (100 * before_rej / before_fruit if before_fruit >= cfg.baseline_fruit and before_rej >= 0
                    else cfg.baseline_pct)
        threshold = max(cfg.rate_pct, cfg.factor * baseline)
        if rate < threshold:
            return [self.clear(src)] if rate < cfg.clear_ratio * threshold else [self.hold(src)]
        reasons: Counter[str] = Counter()
        for m in window:
            reasons.update(m.rejects)
        top = reasons.most_common(1)[0][0] if reasons else "defects"
        return [self.signal(site, src, "major" if rate >= cfg.major_pct else "warning", line=data.line.label(),
                            lot=lot.id, grower=lot.grower, plot_label=site.plot_label(lot.plot, "zh"),
                            rate_pct=rate, baseline_pct=baseline, fruit=fruit, minutes=cfg.window_min,
                            reason_key=f"grade.reason_{top}")]


class LineStoppedConfig(RuleConfig):
    still_min: int = Field(10, ge=2, le=50, description="Fire after this many minutes without a graded fruit.")


@register
class LineStopped(LineRule):
    type = "line_stopped"
    Config = LineStoppedConfig

    def evaluate(self, site: Site, data: LineData, cfg: LineStoppedConfig, now_ns: int) -> Iterable[Verdict]:
        src = line_source(data.line.id)
        lot = data.lot
        local = datetime.fromtimestamp(now_ns / NS, site.tz)
        if lot is None or not data.line.in_shift(local.time()):
            return [self.clear(src)]
        busy = [m.time_ns + MINUTE_NS for m in data.minutes if m.fruit > 0]
        last = max([lot.started_ns, lot.last_fruit_ns or 0, *busy])
        still = (now_ns - last) / MINUTE_NS
        if still < cfg.still_min:
            return [self.clear(src)]
        reported = [m for m in data.minutes if m.time_ns >= now_ns - cfg.still_min * MINUTE_NS]
        since = datetime.fromtimestamp(last / NS, site.tz).strftime("%H:%M")
        params = {"line": data.line.label(), "lot": lot.id, "grower": lot.grower, "minutes": round(still),
                  "since": since}
        if not reported:  # no heartbeat either: the grading service itself is not running
            return [self.signal(site, src, "warning", text="silent", **params)]
        if sum(m.errors for m in reported) and not sum(m.frames for m in reported):
            return [self.signal(site, src, "warning", text="camera", **params)]
        return [self.signal(site, src, "warning", **params)]
