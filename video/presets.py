"""The addresses of the cameras a Chinese village buys: RTSP main and sub stream and the HTTP snapshot, per vendor.

A preset is a template; `urls(vendor, host)` fills it in. `orchard admin camera probe` tries each (and ONVIF,
video/onvif.py) against a real camera and says which answer. Where each comes from:

- Hikvision (海康威视): RTSP `/Streaming/Channels/<channel><stream>`, 101 = channel 1 main stream, 102 = its sub
  stream; snapshot ISAPI `/ISAPI/Streaming/channels/101/picture` (Hikvision's ISAPI; the RTSP form is the one in
  Hikvision's own "How to get RTSP stream" notes, also quoted widely, e.g. gist diffficult/d8406660…).
  Digest auth, user admin. Older firmware also takes `/h264/ch1/main/av_stream`.
- Dahua (大华): RTSP `/cam/realmonitor?channel=1&subtype=0` (main) and `subtype=1` (sub); snapshot CGI
  `/cgi-bin/snapshot.cgi?channel=1` (Dahua HTTP API). Digest auth, user admin.
- Uniview (宇视): RTSP `/unicast/c1/s0/live` (main) and `/unicast/c1/s1/live` (sub) (Uniview's RTSP URL notes);
  snapshot `/images/snapshot.jpg`. Digest auth, user admin.
- EZVIZ (萤石, Hikvision's consumer line): RTSP `/h264/ch1/main/av_stream` and `/h264/ch1/sub/av_stream`, user
  admin, the password is the 6-letter verification code on the camera's label; RTSP must be switched on in the
  EZVIZ app (局域网预览 / LAN live view). No local snapshot URL: snapshots come from the stream (kind rtsp).

All four listen for RTSP on port 554 and HTTP on 80 by default. For a village uplink, record the sub stream
(640x360 or 704x576, 256-1024 kbit/s): twelve cameras then fit in a 4G uplink; the main stream is 2-8 Mbit/s each.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Preset:
    vendor: str
    name: str  # shown to people
    main: str  # path templates: {channel}
    sub: str
    snapshot: str | None
    user: str
    note: str


@dataclass(frozen=True, slots=True)
class CameraUrls:
    vendor: str
    main: str
    sub: str
    snapshot: str | None


PRESETS: dict[str, Preset] = {p.vendor: p for p in (
    Preset("hikvision", "海康威视 Hikvision", "/Streaming/Channels/{channel}01", "/Streaming/Channels/{channel}02",
           "/ISAPI/Streaming/channels/{channel}01/picture", "admin", "数字签名认证 digest auth"),
    Preset("dahua", "大华 Dahua", "/cam/realmonitor?channel={channel}&subtype=0",
           "/cam/realmonitor?channel={channel}&subtype=1", "/cgi-bin/snapshot.cgi?channel={channel}", "admin",
           "数字签名认证 digest auth"),
    Preset("uniview", "宇视 Uniview", "/unicast/c{channel}/s0/live", "/unicast/c{channel}/s1/live",
           "/images/snapshot.jpg", "admin", "数字签名认证 digest auth"),
    Preset("ezviz", "萤石 EZVIZ", "/h264/ch{channel}/main/av_stream", "/h264/ch{channel}/sub/av_stream", None,
           "admin", "密码是机身标签上的 6 位验证码，需在萤石 App 中开启局域网预览 / the password is the 6-letter "
           "verification code on the label; switch on LAN live view in the EZVIZ app"),
)}


def urls(vendor: str, host: str, channel: int = 1, rtsp_port: int = 554, http_port: int = 80) -> CameraUrls:
    """A vendor's addresses for a camera at `host` (no credentials: they go in the site file's username and
    password_env, never in a URL)."""
    p = PRESETS[vendor]
    rtsp = f"rtsp://{host}" + ("" if rtsp_port == 554 else f":{rtsp_port}")
    http = f"http://{host}" + ("" if http_port == 80 else f":{http_port}")
    return CameraUrls(vendor, rtsp + p.main.format(channel=channel), rtsp + p.sub.format(channel=channel),
                      http + p.snapshot.format(channel=channel) if p.snapshot else None)
