"""Clips around events, cut from an rtsp camera's rolling buffer without re-encoding, kept as alarm evidence.

Any alarm raised on a plot (analytics publishes it on <prefix>/<site>/alerts/<plot>) asks every rtsp camera of
that plot for the video from `clip_before_s` before the event to `clip_after_s` after it: an intrusion's event is
the snapshot that saw it, any other alarm's is when it started. The request waits until the buffer holds the
"after" part, then ffmpeg's concat demuxer joins the segments that cover the span into one MP4 (`-c copy`,
`+faststart` so a browser plays it while it loads). The clip starts at the keyframe that opens its first
segment, so it starts at or before the asked time. It is stored beside the snapshots (orchard/records/
snapshots.py), attached to the alarm (records.alarms `attach`) and so kept and capped by the same retention.
"""

from __future__ import annotations

import logging
import os
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2

from orchard.footage import Footage
from orchard.logs import event
from orchard.records.snapshots import Retention, SnapshotFiles, SnapshotRef
from orchard.settings import CamerasSettings
from video.recorder import first_frame

log = logging.getLogger("orchard.cameras")
NS = 1_000_000_000


class ClipFailed(Exception):
    """No clip: the buffer does not cover the span, or ffmpeg refused; the message says which."""


@dataclass(frozen=True, slots=True)
class Clip:
    """A clip on disk: its files (relative to the snapshot root), the span it covers, and its size."""

    ref: SnapshotRef  # path: the MP4; thumb: its poster; time_ns: where it starts
    end_ns: int
    bytes: int

    @property
    def seconds(self) -> float:
        return (self.end_ns - self.ref.time_ns) / NS


def cut(ffmpeg: str, footage: Footage, files: SnapshotFiles, camera: str, start_ns: int, end_ns: int,
        thumb_px: int = 320) -> Clip:
    """The segments of `camera` overlapping [start, end) joined into one MP4 (no re-encoding) with a poster."""
    segments = footage.covering(camera, start_ns, end_ns)
    if not segments:
        raise ClipFailed(f"缓存中没有这段时间的视频 / the buffer holds no video of camera {camera} for that time")
    folder = footage.folder(camera)
    ref = files.clip_ref(camera, segments[0].start_ns)
    target = files.root / ref.path
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", suffix=".txt", dir=target.parent, delete=False) as listing:
        for s in segments:  # the concat demuxer's list: one `file` line per segment, quoted
            listing.write(f"file '{folder / s.name}'\n")
    part = target.with_name(target.stem + ".part.mp4")
    try:
        done = subprocess.run([ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-f", "concat",
                               "-safe", "0", "-i", listing.name, "-map", "0:v", "-c", "copy", "-movflags",
                               "+faststart", str(part)], capture_output=True, timeout=120)
        if done.returncode != 0 or not part.is_file():
            raise ClipFailed(f"ffmpeg 无法剪辑 / ffmpeg could not cut the clip: "
                             f"{done.stderr.decode(errors='replace')[-300:]}")
        _poster(folder / segments[0].name, files.root / ref.thumb, thumb_px)
        os.replace(part, target)
    finally:
        Path(listing.name).unlink(missing_ok=True)
        part.unlink(missing_ok=True)
    size = target.stat().st_size + ((files.root / ref.thumb).stat().st_size if (files.root / ref.thumb).exists()
                                    else 0)
    return Clip(ref, segments[-1].end_ns, size)


def _poster(segment: Path, out: Path, width: int) -> None:
    image = first_frame(segment)
    if image is None:
        return
    h, w = image.shape[:2]
    small = cv2.resize(image, (width, max(1, round(h * width / w))), interpolation=cv2.INTER_AREA)
    ok, jpeg = cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, 80])
    if ok:
        tmp = out.with_suffix(".part")
        tmp.write_bytes(jpeg.tobytes())
        os.replace(tmp, out)


@dataclass(frozen=True, slots=True)
class ClipRequest:
    alarm_id: int
    camera: str
    event_ns: int


class ClipDesk:
    """Clip requests from alarm changes, cut once the buffer holds their end, attached to their alarm.

    `attach(alarm_id, ref, now_ns)` stores the evidence (AlarmBook.attach); `held(alarm_id)` says which paths an
    alarm already holds, so a restart (the broker hands back each plot's retained last change) cuts nothing twice.
    """

    def __init__(self, cfg: CamerasSettings, footage: Footage, files: SnapshotFiles, retention: Retention | None,
                 cameras_of: Mapping[str, list[str]], attach: Callable[[int, SnapshotRef, int], None],
                 held: Callable[[int], set[str]], clock: Callable[[], int] = time.time_ns) -> None:
        self.cfg, self.footage, self.files, self.retention = cfg, footage, files, retention
        self.cameras_of, self.attach, self.held, self.clock = cameras_of, attach, held, clock
        self._pending: dict[tuple[int, str], ClipRequest] = {}
        self._done: set[tuple[int, str]] = set()
        self._lock = threading.Lock()
        self.cut_clips = 0

    def on_alert(self, plot: str, body: Mapping[str, Any]) -> list[ClipRequest]:
        """An alarm change of a plot (the alerts topic's JSON); a raised alarm asks its plot's rtsp cameras."""
        if body.get("change") != "raised" or not isinstance(body.get("alarm_id"), int):
            return []
        details = body.get("details") or {}
        at = details.get("snapshot_ns") if body.get("type") == "intrusion" else None
        event_ns = at if isinstance(at, int) else body.get("started_ns")
        if not isinstance(event_ns, int):
            return []
        if self.clock() - event_ns > (self.cfg.buffer_s - self.cfg.clip_before_s) * NS:
            return []  # older than the buffer (a retained change from long ago): nothing left to cut
        asked = []
        with self._lock:
            for camera in self.cameras_of.get(plot, []):
                key = (body["alarm_id"], camera)
                if key not in self._done and key not in self._pending:
                    self._pending[key] = ClipRequest(body["alarm_id"], camera, event_ns)
                    asked.append(self._pending[key])
        return asked

    def work(self) -> list[Clip]:
        """Cut every request whose end the buffer now holds (or that waited long enough for it)."""
        now = self.clock()
        after = int(self.cfg.clip_after_s * NS)
        with self._lock:
            due = [r for r in self._pending.values() if now >= r.event_ns + after + int(2 * self.cfg.segment_s * NS)]
        made = []
        for r in due:
            key = (r.alarm_id, r.camera)
            try:
                if any(SnapshotFiles.is_clip(p) and p.startswith(f"{r.camera}/") for p in self.held(r.alarm_id)):
                    raise ClipFailed("already held")
                clip = cut(self.cfg.ffmpeg, self.footage, self.files, r.camera,
                           r.event_ns - int(self.cfg.clip_before_s * NS), r.event_ns + after, self.cfg.thumb_px)
                self.attach(r.alarm_id, clip.ref, now)
                if self.retention is not None:
                    self.retention.added(clip.ref, clip.bytes)
                made.append(clip)
                self.cut_clips += 1
                event(log, "clip_cut", alarm=r.alarm_id, camera=r.camera, seconds=round(clip.seconds, 1),
                      starts_before_s=round((r.event_ns - clip.ref.time_ns) / NS, 1), bytes=clip.bytes)
            except ClipFailed as e:
                if str(e) != "already held":
                    event(log, "clip_failed", logging.WARNING, alarm=r.alarm_id, camera=r.camera, error=str(e))
            except Exception as e:  # the records DB away: try again at the next turn, the buffer still holds it
                if now - r.event_ns < (self.cfg.buffer_s - self.cfg.clip_before_s) * NS:
                    event(log, "clip_retry", logging.WARNING, alarm=r.alarm_id, camera=r.camera, error=str(e)[:200])
                    continue
                event(log, "clip_failed", logging.WARNING, alarm=r.alarm_id, camera=r.camera, error=str(e)[:200])
            with self._lock:
                self._pending.pop(key, None)
                self._done.add(key)
        return made

    def pending(self) -> int:
        with self._lock:
            return len(self._pending)

