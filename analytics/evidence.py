"""Camera evidence for alarms: the snapshot that shows what an alarm is about.

A sensor alarm on a plot with cameras gets the snapshot nearest in time from them; an intrusion gets the very
snapshot that saw it; a camera's own alarm gets its last picture (the frozen or dark frame, the last one before
it went away).
"""

from __future__ import annotations

from orchard.models import CAMERA_TYPES, Alarm
from orchard.records.snapshots import SnapshotFiles, SnapshotRef
from orchard.site import Site

NS = 1_000_000_000


class Evidence:
    def __init__(self, site: Site, files: SnapshotFiles, within_s: float = 600) -> None:
        self.site, self.files, self.within_s = site, files, within_s
        self.cameras = {c.id for c in site.cameras}

    def for_alarm(self, alarm: Alarm, now_ns: int) -> SnapshotRef | None:
        if alarm.device in self.cameras:
            if alarm.type == "intrusion":
                at = alarm.details.get("snapshot_ns")
                if isinstance(at, int):
                    return self.files.nearest([alarm.device], at, within_s=1)
            if alarm.type in CAMERA_TYPES or alarm.type == "intrusion":
                return self.files.latest(alarm.device, before_ns=now_ns)
        if alarm.plot is None:
            return None
        cams = [c.id for c in self.site.cameras_of(alarm.plot)]
        return self.files.nearest(cams, now_ns, self.within_s) if cams else None
