"""Kind "snapshot": a JPEG snapshot URL (ONVIF cameras' snapshot URI), basic or digest auth; the JPEG is kept as
the camera sent it."""

from __future__ import annotations

import time

import httpx

from orchard.redact import redact
from orchard.site import CameraConfig, CameraKind
from video.sources import CameraUnavailable, Frame, Opening, opens


class HttpSnapshot:
    def __init__(self, url: str, timeout_s: float, username: str | None = None, password: str | None = None,
                 auth: str = "digest") -> None:
        credentials: httpx.Auth | None = None
        if username is not None:
            credentials = (httpx.DigestAuth if auth == "digest" else httpx.BasicAuth)(username, password or "")
        self.url = url
        self.client = httpx.Client(timeout=timeout_s, auth=credentials, follow_redirects=True)

    def snapshot(self) -> Frame:
        try:
            r = self.client.get(self.url)
        except httpx.HTTPError as e:
            raise CameraUnavailable(f"无法连接摄像机 / camera unreachable: {type(e).__name__}: "
                                    f"{redact(str(e))}") from None
        if r.status_code in (401, 403):
            raise CameraUnavailable(f"摄像机拒绝登录，请检查用户名和密码 / camera refused the login (HTTP "
                                    f"{r.status_code}): check username and password_env")
        if r.status_code != 200:
            raise CameraUnavailable(f"摄像机返回错误 / camera answered HTTP {r.status_code}")
        if not r.content.startswith(b"\xff\xd8"):
            raise CameraUnavailable("摄像机返回的不是 JPEG 图片 / the snapshot URL did not return a JPEG")
        return Frame(time.time_ns(), jpeg=r.content)

    def close(self) -> None:
        self.client.close()


@opens(CameraKind.SNAPSHOT)
def _snapshot(cam: CameraConfig, how: Opening) -> HttpSnapshot:
    return HttpSnapshot(cam.url, how.timeout_s, cam.username, how.password, cam.auth)
