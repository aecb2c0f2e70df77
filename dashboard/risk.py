"""A plot's red/yellow/green code: the worst active crop alarm on it (analytics raises them), or grey when the
plot has no recent data to judge by. Device-health alarms do not colour a plot; they show in the alarm feed."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from orchard.models import DEVICE_TYPES, Alarm

LEVELS = ("red", "yellow", "green", "unknown")  # worst first
COLOURS = {"red": "#d62728", "yellow": "#f2b705", "green": "#2ca02c", "unknown": "#7f7f7f"}
LEVEL_OF = {"critical": "red", "major": "red", "warning": "yellow"}  # info alarms leave a plot green


@dataclass(frozen=True, slots=True)
class Risk:
    level: str  # red | yellow | green | unknown (no fresh data)
    alarms: tuple[Alarm, ...] = field(default=())  # the crop alarms behind the code, worst first


def plot_risk(plot_id: str, active: Iterable[Alarm], fresh: bool) -> Risk:
    crop = tuple(a for a in active if a.plot == plot_id and a.active and a.type not in DEVICE_TYPES)
    levels = [LEVEL_OF[a.severity] for a in crop if a.severity in LEVEL_OF]
    if levels:
        return Risk(min(levels, key=LEVELS.index), crop)
    return Risk("green" if fresh else "unknown", crop)
