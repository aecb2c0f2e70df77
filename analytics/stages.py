"""Growth stages of kiwifruit by variety and date: they decide which rules apply when.

Dates are typical for Cangxi (Sichuan basin, ~500 m): 'Hongyang' is early (budbreak late February, harvest from
late August), 'Hayward' about three weeks later with harvest in October-November. A site may move them
([stages.<variety>] in site.toml); a rule that applies in a stage applies from its start to the next stage's.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date

STAGES = ("dormancy", "budbreak", "flowering", "fruit_set", "fruit_growth", "maturation", "post_harvest")

# Stage -> (month, day) it starts, per variety.
CALENDARS: dict[str, dict[str, tuple[int, int]]] = {
    "hongyang": {"budbreak": (2, 25), "flowering": (4, 10), "fruit_set": (4, 25), "fruit_growth": (5, 10),
                 "maturation": (8, 1), "post_harvest": (9, 15), "dormancy": (12, 1)},
    "hayward": {"budbreak": (3, 15), "flowering": (5, 1), "fruit_set": (5, 15), "fruit_growth": (6, 1),
                "maturation": (9, 1), "post_harvest": (11, 10), "dormancy": (12, 10)},
    "jinyan": {"budbreak": (3, 10), "flowering": (4, 20), "fruit_set": (5, 5), "fruit_growth": (5, 20),
               "maturation": (9, 1), "post_harvest": (10, 25), "dormancy": (12, 5)},
    "cuixiang": {"budbreak": (3, 1), "flowering": (4, 15), "fruit_set": (5, 1), "fruit_growth": (5, 15),
                 "maturation": (8, 10), "post_harvest": (9, 25), "dormancy": (12, 1)},
}


def stage(variety: str, day: date, calendars: Mapping[str, Mapping[str, tuple[int, int]]] = CALENDARS) -> str:
    """The stage a plot of this variety is in on this (local) day."""
    starts = sorted(((m, d), s) for s, (m, d) in calendars[variety].items())
    current = starts[-1][1]  # before the first start of the year: the stage that began last year
    for (m, d), s in starts:
        if (day.month, day.day) >= (m, d):
            current = s
    return current
