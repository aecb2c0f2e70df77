"""Kind "synthetic": the demo's orchard camera, drawn by video/synthetic.py."""

from __future__ import annotations

from orchard.site import CameraConfig, CameraKind
from video.sources import Opening, opens
from video.synthetic import SyntheticSource


@opens(CameraKind.SYNTHETIC)
def _synthetic(cam: CameraConfig, how: Opening) -> SyntheticSource:
    return SyntheticSource.from_config(cam)
