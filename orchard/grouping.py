"""Like alarms raised together become one group (Alertmanager's grouping): a frost night across twelve plots is
one line on the wall, one entry in the feed and one message per person per escalation step, "霜冻 · 12 个地块",
with the plots listed; each plot keeps its own alarm, acknowledged and closed on its own.

A group is one rule (alarm type) of one site whose alarms started within `window` of the group's first one.
Grouping is a view over the alarms (nothing is stored): the wall, the feed, the dispatcher and the receipt page
all group the same way with this one function.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from orchard.models import Alarm, Severity

NS = 1_000_000_000
GROUP_WINDOW_S = 15 * 60  # a rule's alarms raised within 15 minutes of the first are one group


@dataclass(frozen=True, slots=True)
class AlarmGroup:
    """One rule's alarms raised together, oldest first."""

    type: str
    alarms: tuple[Alarm, ...]

    @property
    def key(self) -> str:
        """Stable while the group lives: its rule and its first alarm."""
        return f"{self.type}:{self.alarms[0].id}"

    @property
    def severity(self) -> Severity:
        """The worst severity among its alarms."""
        return max((a.severity for a in self.alarms), key=lambda s: s.rank)

    @property
    def started_ns(self) -> int:
        return self.alarms[0].started_ns

    @property
    def plots(self) -> tuple[str, ...]:
        """The plots it concerns, in the order their alarms started, each once."""
        return tuple(dict.fromkeys(a.plot for a in self.alarms if a.plot))

    @property
    def unacked(self) -> tuple[Alarm, ...]:
        return tuple(a for a in self.alarms if not a.acked)

    def __len__(self) -> int:
        return len(self.alarms)


def group_alarms(alarms: Iterable[Alarm], window_s: float = GROUP_WINDOW_S) -> list[AlarmGroup]:
    """The alarms as groups, most severe first, then newest first (the wall's order); a lone alarm is a group
    of one."""
    window_ns = int(window_s * NS)
    by_rule: dict[tuple[str, str], list[Alarm]] = {}
    for a in sorted(alarms, key=lambda a: (a.started_ns, a.id)):
        by_rule.setdefault((a.site, a.type), []).append(a)
    groups: list[AlarmGroup] = []
    for (_, rule), members in by_rule.items():
        current: list[Alarm] = []
        for a in members:
            if current and a.started_ns - current[0].started_ns > window_ns:
                groups.append(AlarmGroup(rule, tuple(current)))
                current = []
            current.append(a)
        groups.append(AlarmGroup(rule, tuple(current)))
    groups.sort(key=lambda g: (-g.severity.rank, -g.started_ns, g.type))
    return groups
