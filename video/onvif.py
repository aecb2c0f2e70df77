"""Just enough ONVIF to find a camera's addresses: the device service's GetSystemDateAndTime (the camera's clock,
for the login), GetCapabilities (where the media service is), then the media service's GetProfiles,
GetStreamUri (RTSP over RTP-Unicast) and GetSnapshotUri.

SOAP 1.2 over HTTP with a WS-Security UsernameToken (PasswordDigest = Base64(SHA-1(nonce + created +
password))), as the ONVIF Core Specification (section 5.12) asks of every conformant camera. Namespaces and
operations: ONVIF device service wsdl (ver10/device/wsdl) and media service wsdl (ver10/media/wsdl).
"""

from __future__ import annotations

import base64
import hashlib
import os
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx

NS = {"s": "http://www.w3.org/2003/05/soap-envelope", "tds": "http://www.onvif.org/ver10/device/wsdl",
      "trt": "http://www.onvif.org/ver10/media/wsdl", "tt": "http://www.onvif.org/ver10/schema"}
WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
WSU = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
DIGEST = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0#PasswordDigest"


class OnvifError(Exception):
    """The camera does not speak ONVIF here, refused the login, or answered something else; in words."""


@dataclass(frozen=True, slots=True)
class OnvifProfile:
    token: str
    name: str
    width: int | None
    height: int | None
    stream_uri: str | None
    snapshot_uri: str | None


def password_digest(nonce: bytes, created: str, password: str) -> str:
    return base64.b64encode(hashlib.sha1(nonce + created.encode() + password.encode()).digest()).decode()


def envelope(body: str, user: str | None, password: str | None, now: datetime | None = None,
             nonce: bytes | None = None) -> str:
    header = ""
    if user:
        nonce = nonce if nonce is not None else os.urandom(16)
        created = (now or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
        header = (f'<s:Header><wsse:Security xmlns:wsse="{WSSE}" xmlns:wsu="{WSU}"><wsse:UsernameToken>'
                  f"<wsse:Username>{_escape(user)}</wsse:Username>"
                  f'<wsse:Password Type="{DIGEST}">{password_digest(nonce, created, password or "")}</wsse:Password>'
                  f"<wsse:Nonce>{base64.b64encode(nonce).decode()}</wsse:Nonce><wsu:Created>{created}</wsu:Created>"
                  "</wsse:UsernameToken></wsse:Security></s:Header>")
    return (f'<?xml version="1.0" encoding="UTF-8"?><s:Envelope xmlns:s="{NS["s"]}" xmlns:tds="{NS["tds"]}" '
            f'xmlns:trt="{NS["trt"]}" xmlns:tt="{NS["tt"]}">{header}<s:Body>{body}</s:Body></s:Envelope>')


def _escape(s: str) -> str:
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class Onvif:
    def __init__(self, device_url: str, user: str | None, password: str | None, timeout_s: float = 5,
                 transport: httpx.BaseTransport | None = None) -> None:
        self.device_url, self.user, self.password = device_url, user, password
        self.clock_offset_s = 0.0
        self.client = httpx.Client(timeout=timeout_s, transport=transport)

    def _call(self, url: str, body: str, signed: bool = True) -> ET.Element:
        now = datetime.now(UTC) + timedelta(seconds=self.clock_offset_s)  # the camera's clock, not ours
        try:
            r = self.client.post(url, content=envelope(body, self.user if signed else None, self.password, now),
                                 headers={"Content-Type": "application/soap+xml; charset=utf-8"})
        except httpx.HTTPError as e:
            raise OnvifError(f"无法连接 ONVIF 服务 / ONVIF unreachable at {url}: {type(e).__name__}") from None
        try:
            root = ET.fromstring(r.content)
        except ET.ParseError:
            raise OnvifError(f"不是 ONVIF 应答 / not an ONVIF answer (HTTP {r.status_code}) at {url}") from None
        fault = root.find(".//s:Fault", NS)
        if fault is not None or r.status_code >= 400:
            text = " ".join(t.strip() for t in (fault.itertext() if fault is not None else []) if t.strip())
            if r.status_code in (401, 403) or "NotAuthorized" in text or "not authorized" in text.lower():
                raise OnvifError(f"ONVIF 拒绝登录，请检查用户名和密码 / ONVIF refused the login: {text[:160]}")
            raise OnvifError(f"ONVIF 错误 / ONVIF fault (HTTP {r.status_code}): {text[:160]}")
        found = root.find("s:Body", NS)
        if found is None:
            raise OnvifError(f"ONVIF 应答没有正文 / an ONVIF answer without a body at {url}")
        return found

    def sync_clock(self) -> float:
        """The camera's clock against ours (GetSystemDateAndTime, which needs no login): a UsernameToken's
        Created time must be the camera's, and a village camera's clock is often minutes or years off (never set,
        or reset by a power cut). 0 when the camera does not say."""
        try:
            body = self._call(self.device_url, "<tds:GetSystemDateAndTime/>", signed=False)
        except OnvifError:
            return 0.0
        utc = body.find(".//tt:UTCDateTime", NS)
        if utc is None:
            return 0.0
        try:
            d, t = utc.find("tt:Date", NS), utc.find("tt:Time", NS)
            assert d is not None and t is not None
            camera = datetime(int(d.findtext("tt:Year", "", NS)), int(d.findtext("tt:Month", "", NS)),
                              int(d.findtext("tt:Day", "", NS)), int(t.findtext("tt:Hour", "", NS)),
                              int(t.findtext("tt:Minute", "", NS)), int(t.findtext("tt:Second", "", NS)), tzinfo=UTC)
        except (AssertionError, ValueError):
            return 0.0
        self.clock_offset_s = (camera - datetime.now(UTC)).total_seconds()
        return self.clock_offset_s

    def media_url(self) -> str:
        self.sync_clock()
        body = self._call(self.device_url, '<tds:GetCapabilities><tds:Category>Media</tds:Category>'
                                           '</tds:GetCapabilities>')
        addr = body.find(".//tt:Media/tt:XAddr", NS)
        if addr is None or not (addr.text or "").strip():
            raise OnvifError("摄像机没有 ONVIF 媒体服务 / the camera offers no ONVIF media service")
        return (addr.text or "").strip()

    def profiles(self) -> list[OnvifProfile]:
        media = self.media_url()
        body = self._call(media, "<trt:GetProfiles/>")
        out = []
        for p in body.findall(".//trt:Profiles", NS):
            token = p.get("token", "")
            name = (p.findtext("tt:Name", "", NS) or token).strip()
            w, h = p.findtext(".//tt:Resolution/tt:Width", None, NS), p.findtext(".//tt:Resolution/tt:Height", None, NS)
            stream = self._uri(media, "<trt:GetStreamUri><trt:StreamSetup><tt:Stream>RTP-Unicast</tt:Stream>"
                                      "<tt:Transport><tt:Protocol>RTSP</tt:Protocol></tt:Transport></trt:StreamSetup>"
                                      f"<trt:ProfileToken>{_escape(token)}</trt:ProfileToken></trt:GetStreamUri>")
            snap = self._uri(media, f"<trt:GetSnapshotUri><trt:ProfileToken>{_escape(token)}</trt:ProfileToken>"
                                    "</trt:GetSnapshotUri>")
            out.append(OnvifProfile(token, name, int(w) if w and w.isdigit() else None,
                                    int(h) if h and h.isdigit() else None, stream, snap))
        if not out:
            raise OnvifError("摄像机没有 ONVIF 配置文件 / the camera lists no ONVIF media profiles")
        return out

    def _uri(self, media: str, body: str) -> str | None:
        try:
            found = self._call(media, body).find(".//tt:Uri", NS)
        except OnvifError:
            return None
        return (found.text or "").strip() or None if found is not None else None

    def close(self) -> None:
        self.client.close()
