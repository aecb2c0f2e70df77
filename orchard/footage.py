"""A camera's rolling video buffer on disk: what the cameras service's ffmpeg writes and the dashboard serves.

Per camera with a stream (site kind "rtsp"), ffmpeg copies the camera's H.264 without re-encoding into an HLS
playlist of short segments (ffmpeg's hls muxer, the segment muxer that also writes the playlist a player reads);
video/recorder.py runs it. Layout under the video root
(``<data_dir>/video`` by default):

    <root>/<camera>/live.m3u8               the rolling playlist: the last `buffer_s` seconds, newest last
    <root>/<camera>/seg-<epoch_s>-<n>.ts    one segment (MPEG-TS, starts with a keyframe)

The same playlist is the live view (a player starts near its end) and the source of clips (the segments that
cover an event, concatenated without re-encoding). Names carry the epoch second they were started, so a restarted
ffmpeg never overwrites a segment an earlier run wrote.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

NS = 1_000_000_000
PLAYLIST = "live.m3u8"
SEGMENT = re.compile(r"^seg-\d{9,11}-\d{4,}\.ts$")
_CAMERA = re.compile(r"^[\w.:-]{1,64}$")


@dataclass(frozen=True, slots=True)
class Segment:
    """One segment of a playlist: its file name, wall-clock start and length."""

    name: str
    start_ns: int
    duration_s: float

    @property
    def end_ns(self) -> int:
        return self.start_ns + int(self.duration_s * NS)


def parse_playlist(text: str) -> list[tuple[str, float]]:
    """The segments of an HLS media playlist as (file name, seconds), oldest first."""
    out: list[tuple[str, float]] = []
    duration: float | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("#EXTINF:"):
            try:
                duration = float(line[8:].split(",", 1)[0])
            except ValueError:
                duration = None
        elif line and not line.startswith("#"):
            if duration is not None and SEGMENT.match(line):
                out.append((line, duration))
            duration = None
    return out


class Footage:
    """The video buffer folders under one root."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def folder(self, camera: str) -> Path:
        if not _CAMERA.match(camera):
            raise ValueError(f"bad camera id {camera!r}")
        return self.root / camera

    def playlist(self, camera: str) -> Path:
        return self.folder(camera) / PLAYLIST

    def segments(self, camera: str) -> list[Segment]:
        """The segments the playlist lists now whose files exist (empty when the camera has no buffer yet).

        A segment's wall-clock start is its file's modification time (when ffmpeg wrote its last frame, as it
        arrived) less its length: ffmpeg's own #EXT-X-PROGRAM-DATE-TIME counts from when ffmpeg started plus the
        stream's clock, which runs ahead by the burst a camera sends on connecting (about 2 s, seen here)."""
        folder = self.folder(camera)
        try:
            listed = parse_playlist((folder / PLAYLIST).read_text())
        except (FileNotFoundError, ValueError):
            return []
        out = []
        for name, duration in listed:
            try:
                end = os.stat(folder / name).st_mtime_ns
            except FileNotFoundError:
                continue
            out.append(Segment(name, end - int(duration * NS), duration))
        return out

    def segment(self, camera: str, name: str) -> Path | None:
        """The file of a segment by name; None for a name that is not a segment's (nothing outside the folder)."""
        if not SEGMENT.match(name):
            return None
        p = self.folder(camera) / name
        return p if p.is_file() else None

    def covering(self, camera: str, start_ns: int, end_ns: int) -> list[Segment]:
        """The segments that overlap [start, end), oldest first."""
        return [s for s in self.segments(camera) if s.end_ns > start_ns and s.start_ns < end_ns]

    def newest(self, camera: str) -> Segment | None:
        found = self.segments(camera)
        return found[-1] if found else None
