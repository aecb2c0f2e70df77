"""Camera snapshots on disk: where they live, finding the one nearest in time, and retention.

The cameras service writes them; analytics attaches the nearest one to an alarm as evidence; the dashboard shows
them. Layout under the snapshot root, by camera and UTC date (so a time maps to one folder without an index):

    <root>/<camera>/<YYYY-MM-DD>/<epoch_ms>.jpg        the full frame
    <root>/<camera>/<YYYY-MM-DD>/<epoch_ms>.thumb.jpg  its thumbnail
    <root>/<camera>/<YYYY-MM-DD>/<epoch_ms>.mp4        a clip around an event (kind rtsp), starting then
    <root>/<camera>/<YYYY-MM-DD>/<epoch_ms>.poster.jpg its first frame, small

Clips are evidence like snapshots (attached to the alarm they are about) and count in the same size cap.

Paths handed to other services and kept in the records DB are relative to the root ("cam-p01/2026-03-02/...").
"""

from __future__ import annotations

import contextlib
import heapq
import os
import re
import threading
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

NS = 1_000_000_000
_NAME = re.compile(r"^(\d{10,16})\.jpg$")
_CLIP = re.compile(r"^(\d{10,16})\.mp4$")
_DAY = re.compile(r"^\d{4}-\d\d-\d\d$")
_CAMERA = re.compile(r"^[\w.:-]{1,64}$")


@dataclass(frozen=True, slots=True)
class SnapshotRef:
    """One stored snapshot: which camera, when, and its files relative to the snapshot root."""

    camera: str
    time_ns: int
    path: str  # the full frame
    thumb: str  # its thumbnail

    @property
    def time_ms(self) -> int:
        return self.time_ns // 1_000_000


def _day(time_ns: int) -> str:
    return datetime.fromtimestamp(time_ns / NS, UTC).strftime("%Y-%m-%d")


class SnapshotFiles:
    """The snapshot folder tree under one root (``<data_dir>/snapshots`` by default)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def ref(self, camera: str, time_ns: int) -> SnapshotRef:
        if not _CAMERA.match(camera):
            raise ValueError(f"bad camera id {camera!r}")
        ms = time_ns // 1_000_000
        folder = f"{camera}/{_day(time_ns)}"
        return SnapshotRef(camera, ms * 1_000_000, f"{folder}/{ms}.jpg", f"{folder}/{ms}.thumb.jpg")

    def clip_ref(self, camera: str, time_ns: int) -> SnapshotRef:
        """Where a clip starting at `time_ns` goes: the video and its poster (shown until it plays)."""
        ref = self.ref(camera, time_ns)
        stem = ref.path.removesuffix(".jpg")
        return SnapshotRef(camera, ref.time_ns, f"{stem}.mp4", f"{stem}.poster.jpg")

    @staticmethod
    def is_clip(rel: str) -> bool:
        return rel.endswith(".mp4")

    def resolve(self, rel: str) -> Path:
        """The file of a relative path; refuses anything that would leave the root (a path from a link or DB)."""
        p = (self.root / rel).resolve()
        if not p.is_relative_to(self.root.resolve()):
            raise ValueError(f"snapshot path outside the snapshot folder: {rel!r}")
        return p

    def write(self, camera: str, time_ns: int, full_jpeg: bytes, thumb_jpeg: bytes) -> SnapshotRef:
        """Store both files; each appears whole or not at all (written aside, then renamed)."""
        ref = self.ref(camera, time_ns)
        for rel, data in ((ref.thumb, thumb_jpeg), (ref.path, full_jpeg)):
            target = self.root / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_suffix(".part")
            tmp.write_bytes(data)
            os.replace(tmp, target)
        return ref

    def read(self, rel: str) -> bytes | None:
        try:
            return self.resolve(rel).read_bytes()
        except (FileNotFoundError, ValueError):
            return None

    def cameras(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if p.is_dir() and _CAMERA.match(p.name))

    def _day_refs(self, camera: str, day: str) -> list[SnapshotRef]:
        folder = self.root / camera / day
        try:
            names = os.listdir(folder)
        except (FileNotFoundError, NotADirectoryError):
            return []
        out = []
        for name in names:
            if m := _NAME.match(name):
                ms = int(m.group(1))
                out.append(SnapshotRef(camera, ms * 1_000_000, f"{camera}/{day}/{name}",
                                       f"{camera}/{day}/{ms}.thumb.jpg"))
        return out

    def between(self, camera: str, start_ns: int, end_ns: int) -> list[SnapshotRef]:
        """Snapshots of one camera in [start, end), oldest first."""
        out: list[SnapshotRef] = []
        day = datetime.fromtimestamp(start_ns / NS, UTC).date()
        last = datetime.fromtimestamp(max(start_ns, end_ns - 1) / NS, UTC).date()
        while day <= last:
            out += [r for r in self._day_refs(camera, day.isoformat()) if start_ns <= r.time_ns < end_ns]
            day += timedelta(days=1)
        return sorted(out, key=lambda r: r.time_ns)

    def latest(self, camera: str, before_ns: int | None = None) -> SnapshotRef | None:
        """The newest snapshot of a camera (at or before `before_ns`), looking back over its date folders."""
        folder = self.root / camera
        try:
            days = sorted((d for d in os.listdir(folder) if _DAY.match(d)), reverse=True)
        except FileNotFoundError:
            return None
        cutoff = _day(before_ns) if before_ns is not None else None
        for day in days:
            if cutoff is not None and day > cutoff:
                continue
            refs = [r for r in self._day_refs(camera, day) if before_ns is None or r.time_ns <= before_ns]
            if refs:
                return max(refs, key=lambda r: r.time_ns)
        return None

    def nearest(self, cameras: Iterable[str], time_ns: int, within_s: float = 600) -> SnapshotRef | None:
        """The snapshot nearest in time to `time_ns` among these cameras, no further away than `within_s`."""
        span = int(within_s * NS)
        found = [r for c in cameras for r in self.between(c, time_ns - span, time_ns + span + 1)]
        return min(found, key=lambda r: (abs(r.time_ns - time_ns), r.camera), default=None)

    # -- retention --------------------------------------------------------------------------------------------
    def inventory(self) -> list[tuple[int, str, int]]:
        """Every full frame as (time_ns, relative path, bytes of it and its thumbnail), oldest first."""
        out: list[tuple[int, str, int]] = []
        for camera in self.cameras():
            for day in sorted(os.listdir(self.root / camera)):
                if not _DAY.match(day):
                    continue
                for r in self._day_refs(camera, day):
                    out.append((r.time_ns, r.path, _size(self.root / r.path) + _size(self.root / r.thumb)))
                for name in os.listdir(self.root / camera / day):
                    if m := _CLIP.match(name):
                        c = self.clip_ref(camera, int(m.group(1)) * 1_000_000)
                        out.append((c.time_ns, c.path, _size(self.root / c.path) + _size(self.root / c.thumb)))
        out.sort()
        return out

    def delete(self, rel: str) -> int:
        """Remove a snapshot (full frame and thumbnail) or a clip (video and poster) and, when it was the last,
        its date folder; freed bytes."""
        full = self.resolve(rel)
        freed = 0
        small = (full.name.removesuffix(".mp4") + ".poster.jpg" if self.is_clip(rel)
                 else full.name.removesuffix(".jpg") + ".thumb.jpg")
        for p in (full, full.with_name(small)):
            freed += _size(p)
            p.unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            full.parent.rmdir()  # only succeeds when empty
        return freed


def _size(p: Path) -> int:
    try:
        return p.stat().st_size
    except FileNotFoundError:
        return 0


@dataclass(frozen=True, slots=True)
class Sweep:
    deleted: int
    freed_bytes: int
    total_bytes: int  # what is left
    kept_evidence: int  # snapshots past their age or over the cap that stay because an alarm holds them


class Retention:
    """Size- and age-capped retention, oldest first; snapshots attached to alarms are kept for `evidence_days`.

    The inventory is read from disk once, then kept up to date as snapshots are added, so a sweep costs little
    more than the deletions it makes.
    """

    def __init__(self, files: SnapshotFiles, max_days: float, max_bytes: int, evidence_days: float) -> None:
        self.files, self.max_days, self.max_bytes, self.evidence_days = files, max_days, max_bytes, evidence_days
        self._heap: list[tuple[int, str, int]] = files.inventory()  # sorted, so already a heap
        self.total = sum(size for *_, size in self._heap)
        self._lock = threading.Lock()  # every camera's thread adds; the service's main thread sweeps

    def added(self, ref: SnapshotRef, size: int) -> None:
        with self._lock:
            heapq.heappush(self._heap, (ref.time_ns, ref.path, size))
            self.total += size

    def sweep(self, now_ns: int, evidence: Collection[str]) -> Sweep:
        """Delete what is too old or over the size cap. `evidence` holds the paths alarms hold on to; they go
        only when older than evidence_days, never to make room."""
        age_limit = now_ns - int(self.max_days * 86400 * NS)
        evidence_limit = now_ns - int(self.evidence_days * 86400 * NS)
        kept: list[tuple[int, str, int]] = []
        victims: list[str] = []
        with self._lock:  # choose under the lock; delete outside it, so cameras never wait for the disk
            while self._heap:
                t, rel, size = self._heap[0]
                if t >= age_limit and self.total <= self.max_bytes:
                    break
                heapq.heappop(self._heap)
                if rel in evidence and t >= evidence_limit:
                    kept.append((t, rel, size))
                    continue
                self.total -= size
                victims.append(rel)
            for item in kept:
                heapq.heappush(self._heap, item)
            total = self.total
        freed = sum(self.files.delete(rel) for rel in victims)
        return Sweep(len(victims), freed, total, len(kept))
