"""`orchard admin camera probe`: which of a camera's addresses work, tried the way the cameras service will use
them: every vendor preset's RTSP main and sub stream (ffprobe, over TCP, with the login), its HTTP snapshot
(digest auth, must answer a JPEG), and ONVIF (GetStreamUri and GetSnapshotUri of each media profile).

The result says, per address, what it gave (codec, size, frame rate; or why not), never with the password."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from orchard.redact import hide, redact
from video.onvif import Onvif, OnvifError
from video.presets import PRESETS, urls
from video.sources import CameraUnavailable, with_credentials
from video.sources.http import HttpSnapshot


@dataclass(frozen=True, slots=True)
class Probed:
    """One address tried: `kind` rtsp or snapshot, where it came from (a preset's vendor and stream, or onvif)."""

    source: str  # "hikvision main", "onvif profile_1 snapshot", "given"
    kind: str  # rtsp | snapshot
    url: str  # without credentials
    ok: bool
    detail: str  # "h264 1920x1080 25 fps" / "JPEG 1920x1080, 210 kB" / why it failed


def rtsp_stream(url: str, user: str | None, password: str | None, timeout_s: float,
                ffprobe: str = "ffprobe") -> tuple[bool, str]:
    """Ask the camera for the stream's description and first video stream (ffprobe, RTSP over TCP)."""
    try:
        done = subprocess.run([ffprobe, "-v", "error", "-rtsp_transport", "tcp", "-timeout",
                               str(int(timeout_s * 1e6)), "-select_streams", "v:0", "-show_entries",
                               "stream=codec_name,width,height,avg_frame_rate,r_frame_rate", "-of", "json",
                               with_credentials(url, user, password)], capture_output=True, text=True,
                              timeout=timeout_s * 3)
    except subprocess.TimeoutExpired:
        return False, "超时 / timed out"
    except FileNotFoundError:
        return False, f"找不到 {ffprobe}，请安装 ffmpeg / {ffprobe} not found: install ffmpeg"
    if done.returncode != 0:
        err = redact(done.stderr.strip().splitlines()[-1] if done.stderr.strip() else f"exit {done.returncode}")
        if "401" in err:
            return False, f"拒绝登录，请检查用户名和密码 / login refused: {err}"
        if "404" in err:
            return False, f"没有这个码流 / no such stream: {err}"
        return False, err
    streams = json.loads(done.stdout or "{}").get("streams") or []
    if not streams:
        return False, "没有视频轨 / no video stream"
    s = streams[0]
    rate = s.get("avg_frame_rate") if s.get("avg_frame_rate") not in (None, "0/0") else s.get("r_frame_rate", "0/1")
    num, _, den = str(rate).partition("/")
    fps = float(num) / float(den or 1) if den not in ("", "0") else 0.0
    return True, f"{s.get('codec_name')} {s.get('width')}x{s.get('height')} {fps:g} fps"


def snapshot(url: str, user: str | None, password: str | None, timeout_s: float) -> tuple[bool, str]:
    src = HttpSnapshot(url, timeout_s, user, password, "digest")
    try:
        frame = src.snapshot()
    except CameraUnavailable as e:
        return False, redact(str(e))
    finally:
        src.close()
    return True, f"JPEG {len(frame.jpeg or b'') // 1000} kB"


def probe(target: str, user: str | None, password: str | None, *, channel: int = 1, rtsp_port: int = 554,
          http_port: int = 80, timeout_s: float = 5, vendors: Iterable[str] | None = None,
          ffprobe: str = "ffprobe") -> list[Probed]:
    """Everything tried for a camera at `target` (a host, or an rtsp:// or http:// address, tried first)."""
    hide(password)
    parts = urlsplit(target if "://" in target else f"//{target}")
    host = parts.hostname or target
    out: list[Probed] = []
    if parts.scheme == "rtsp":
        out.append(Probed("given", "rtsp", target, *rtsp_stream(target, user, password, timeout_s, ffprobe)))
    elif parts.scheme in ("http", "https"):
        out.append(Probed("given", "snapshot", target, *snapshot(target, user, password, timeout_s)))
    for vendor in vendors or PRESETS:
        u = urls(vendor, host, channel, rtsp_port, http_port)
        for stream, url in (("main", u.main), ("sub", u.sub)):
            out.append(Probed(f"{vendor} {stream}", "rtsp", url, *rtsp_stream(url, user, password, timeout_s, ffprobe)))
        if u.snapshot:
            out.append(Probed(f"{vendor} snapshot", "snapshot", u.snapshot, *snapshot(u.snapshot, user, password,
                                                                                         timeout_s)))
    device = f"http://{host}" + ("" if http_port == 80 else f":{http_port}") + "/onvif/device_service"
    onvif = Onvif(device, user, password, timeout_s)
    try:
        for p in onvif.profiles():
            size = f" {p.width}x{p.height}" if p.width else ""
            if p.stream_uri:
                out.append(Probed(f"onvif {p.name}{size}", "rtsp", p.stream_uri,
                                  *rtsp_stream(p.stream_uri, user, password, timeout_s, ffprobe)))
            if p.snapshot_uri:
                out.append(Probed(f"onvif {p.name}{size} snapshot", "snapshot", p.snapshot_uri,
                                  *snapshot(p.snapshot_uri, user, password, timeout_s)))
    except OnvifError as e:
        out.append(Probed("onvif", "rtsp", device, False, redact(str(e))))
    finally:
        onvif.close()
    return out


def best(found: list[Probed]) -> Probed | None:
    """The address to record: a working sub stream first (it fits a village uplink), then any working stream."""
    streams = [p for p in found if p.ok and p.kind == "rtsp"]
    return next((p for p in streams if "sub" in p.source.lower()), None) or (streams[0] if streams else None)
