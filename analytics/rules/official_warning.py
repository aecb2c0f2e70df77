"""Official weather warnings (CAP, analytics/cap): a warning in force whose area covers the plot is an alarm
on it with its level (blue and yellow a warning, orange major, red critical), its headline, description and
instruction, and the sender's name; an update changes it (a rise in level messages people again), a cancel or its
expiry clears it. One warning over the village's twelve plots is one group on the wall and in messages, as any
alarm raised across plots together is (orchard/grouping.py)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from pydantic import Field

from analytics.cap import ALARM_SEVERITY, Level, MsgType
from analytics.rules import register
from analytics.rules.base import PlotData, PlotRule, RuleConfig, Verdict
from orchard.site import Site

NS = 1_000_000_000


class OfficialWarningConfig(RuleConfig):
    levels: tuple[Level, ...] = Field((Level.BLUE, Level.YELLOW, Level.ORANGE, Level.RED),
                                      description="The warning levels that become alarms.")
    area_codes: tuple[str, ...] = Field((), description="The village's administrative division codes (GB/T 2260: "
                                        "510824 for Cangxi county, or its town's 9-digit code): a warning for one "
                                        "of them, or for an area they lie in, covers every plot.")


@register
class OfficialWarning(PlotRule):
    type = "official_warning"
    Config = OfficialWarningConfig

    def evaluate(self, site: Site, data: PlotData, cfg: OfficialWarningConfig, now_ns: int) -> Iterable[Verdict]:
        out = []
        for w in data.warnings:
            source = f"cap:{w.thread}:{data.plot.id}"
            # A cancel names no area of its own, and an update may leave the plot out: whatever does not cover
            # the plot in force now clears it (a clear with no alarm to clear costs nothing).
            if not w.in_force(now_ns) or w.level not in cfg.levels or not w.covers(data.plot, cfg.area_codes):
                if w.msg_type == MsgType.CANCEL:
                    out.append(self.clear(source, ended="cancelled"))
                elif w.expires_ns is not None and now_ns >= w.expires_ns:
                    out.append(self.clear(source, ended="expired"))
                else:
                    out.append(self.clear(source))
                continue
            until = datetime.fromtimestamp(w.expires_ns / NS, site.tz).strftime("%m-%d %H:%M") \
                if w.expires_ns else "-"
            out.append(self.signal(site, source, ALARM_SEVERITY[w.level], plot=data.plot.id,
                                   level_key=f"alarm.level_{w.level}", event=w.event, headline=w.headline,
                                   sender_name=w.sender_name, description=w.description[:600],
                                   instruction=w.instruction[:400], until=until, identifier=w.identifier))
        return out
