"""One result type per stage of the grading line: a fruit seen in one frame, one frame, one graded fruit."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from orchard.models import GRADES

DEFECT_KINDS = ("spot", "rot", "scar", "sunburn", "misshapen")
__all__ = ["DEFECT_KINDS", "GRADES", "FrameResult", "FruitView", "GradedFruit"]


@dataclass(frozen=True, slots=True)
class FruitView:
    """One fruit as one frame shows it (millimetres from the frame's calibration)."""

    x_px: float  # centroid
    y_px: float
    length_mm: float  # the long axis
    width_mm: float  # the equatorial diameter facing the camera (it changes as the fruit rolls)
    area_mm2: float  # projected area
    dent: float  # deepest dent of the outline below its convex hull, as a share of the width (a notch, a lobe)
    colour_std: float  # spread of the skin colour (uniformity; lower is more even)
    defects: Mapping[str, float]  # kind -> area in mm2 seen in this view
    touches_edge: bool  # cut by the picture's edge where the belt comes in or goes out: not measured whole
    split: bool  # separated from a fruit it touched (its outline has a cut, not its own edge, there)
    box: tuple[int, int, int, int]  # x, y, w, h in px
    frame: int = 0  # which frame of the run
    x_mm: float = 0.0  # the centroid along the belt in mm (how far it has rolled)


@dataclass(frozen=True, slots=True)
class FrameResult:
    px_per_mm: float
    fruit: tuple[FruitView, ...]
    belt_bgr: tuple[int, int, int]  # the belt's colour as estimated in this frame


@dataclass(frozen=True, slots=True)
class GradedFruit:
    """One fruit, measured over every frame it was seen in, graded once."""

    id: int
    lane: int
    x_px: float  # where it was first seen whole ...
    y_px: float
    frame: int  # ... in this frame of the run
    frames: int  # whole views it was measured in
    length_mm: float
    max_diameter_mm: float
    min_diameter_mm: float
    area_mm2: float
    volume_cm3: float
    weight_g: float
    ratio: float  # min / max equatorial diameter
    colour_std: float
    defects: Mapping[str, float] = field(default_factory=dict)  # kind -> largest area seen, mm2
    grade: str = "reject"
    count_size: int | None = None  # fruit per tray; None when too small for any size
    reasons: tuple[str, ...] = ()  # why not a better class

    def as_json(self, image: str = "") -> dict[str, object]:
        return {"image": image, "id": self.id, "x_px": round(self.x_px, 1), "y_px": round(self.y_px, 1),
                "frame": self.frame,
                "length_mm": round(self.length_mm, 1), "max_diameter_mm": round(self.max_diameter_mm, 1),
                "min_diameter_mm": round(self.min_diameter_mm, 1), "area_mm2": round(self.area_mm2),
                "volume_cm3": round(self.volume_cm3, 1), "weight_g": round(self.weight_g, 1),
                "ratio": round(self.ratio, 3), "colour_std": round(self.colour_std, 2), "grade": self.grade,
                "count_size": self.count_size, "defects": {k: round(float(v), 1) for k, v in self.defects.items()},
                "reasons": list(self.reasons), "frames": self.frames}
