"""Class and count size from the measurements (UNECE FFV-46 / EU 1580/2007 limits from the settings)."""

from __future__ import annotations

from collections.abc import Mapping

from orchard.settings import GradingSettings

# Defects that put a fruit out of every class, whatever their size
FATAL = ("rot",)


def grade(weight_g: float, ratio: float, defects: Mapping[str, float], cfg: GradingSettings
          ) -> tuple[str, tuple[str, ...]]:
    """(class, reasons it is not in a better one)."""
    skin = sum(area for kind, area in defects.items() if kind != "misshapen")
    misshapen = "misshapen" in defects
    fatal = [k for k in FATAL if k in defects]
    reasons: list[str] = []
    if fatal:
        return "reject", tuple(fatal)
    if weight_g < cfg.class2_min_g:
        return "reject", ("underweight",)
    if skin > cfg.class2_max_defect_mm2:
        return "reject", ("defects",)
    if weight_g < cfg.extra_min_g:
        reasons.append("weight")
    if ratio < cfg.extra_min_ratio:
        reasons.append("shape_ratio")
    if skin > 0:
        reasons.append("defects")
    if misshapen:
        reasons.append("misshapen")
    if not reasons:
        return "extra", ()
    class1 = (weight_g >= cfg.class1_min_g and ratio >= cfg.class1_min_ratio and not misshapen
              and skin <= cfg.class1_max_defect_mm2)
    return ("class1" if class1 else "class2"), tuple(reasons)


def count_size(weight_g: float, cfg: GradingSettings) -> int | None:
    """The tray count whose weight band holds the fruit: count n takes fruit from 98% of tray/n up to the next
    bigger size's lower limit (size 36 of a 3.6 kg tray: 98-107 g). None below the smallest size."""
    for n in sorted(cfg.count_sizes):
        if weight_g >= 0.98 * cfg.tray_g / n:
            return n
    return None
