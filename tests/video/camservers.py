"""Real camera servers on loopback for the tests: an HTTP snapshot camera (basic or digest auth, as ONVIF cameras
offer) and an HTTP MJPEG stream. Both draw their frames from a `Scene`, whose mode a test switches at any time:
live, frozen (the same frame again and again), black, blurred, down (connections refused), slow (answers late).
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import cv2
import numpy as np

from bench.servers import free_port
from video.synthetic import SyntheticOrchard

DAY = datetime(2026, 3, 2, 4, 0, tzinfo=UTC)  # noon in Sichuan


class Scene:
    """What the camera sees: the synthetic orchard by day, advancing a few seconds per frame."""

    def __init__(self, width: int = 640, height: int = 360) -> None:
        self.orchard = SyntheticOrchard(3, width, height)
        self.mode = "live"
        self.frame_no = 0
        self._frozen: bytes | None = None
        self.lock = threading.Lock()

    def jpeg(self) -> bytes:
        with self.lock:
            self.frame_no += 1
            n, mode = self.frame_no, self.mode
        if mode == "frozen":
            if self._frozen is None:
                self._frozen = self._encode(self.orchard.render(DAY))
            return self._frozen
        image = self.orchard.render(DAY + timedelta(seconds=5 * n), wind=1.0)
        if mode == "black":
            image = np.random.default_rng(n).integers(0, 6, image.shape, dtype=np.uint8)  # sensor noise only
        elif mode == "blurred":
            image = cv2.GaussianBlur(image, (0, 0), 9)
        elif mode == "numbered":  # the frame number as the grey level: which frame a snapshot is tells its age
            image = np.full(image.shape, n % 250, np.uint8)
        return self._encode(image)

    @staticmethod
    def _encode(image: np.ndarray) -> bytes:
        return cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes()


def _digest_ok(header: str, method: str, user: str, password: str, realm: str, nonces: set[str]) -> bool:
    params: dict[str, str] = {}
    for part in header.removeprefix("Digest ").split(","):
        if "=" in part:
            k, v = part.strip().split("=", 1)
            params[k] = v.strip('"')
    if params.get("username") != user or params.get("nonce") not in nonces:
        return False
    md5 = lambda s: hashlib.md5(s.encode()).hexdigest()  # noqa: E731
    ha1, ha2 = md5(f"{user}:{realm}:{password}"), md5(f"{method}:{params.get('uri', '')}")
    expected = md5(f"{ha1}:{params['nonce']}:{params.get('nc', '')}:{params.get('cnonce', '')}:"
                   f"{params.get('qop', '')}:{ha2}")
    return secrets.compare_digest(expected, params.get("response", ""))


ONVIF_NOT_AUTHORIZED = ('<?xml version="1.0"?><s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" '
                        'xmlns:ter="http://www.onvif.org/ver10/error"><s:Body><s:Fault><s:Code><s:Value>s:Sender'
                        '</s:Value><s:Subcode><s:Value>ter:NotAuthorized</s:Value></s:Subcode></s:Code><s:Reason>'
                        '<s:Text xml:lang="en">Sender not Authorized</s:Text></s:Reason></s:Fault></s:Body>'
                        '</s:Envelope>')


def onvif_answer(request: str, server: CameraServer) -> str | None:
    """What an ONVIF camera answers (Profile S subset: GetCapabilities, GetProfiles, GetStreamUri,
    GetSnapshotUri); None when the UsernameToken's PasswordDigest is wrong."""
    import base64
    import re
    from datetime import UTC, datetime, timedelta

    from video.onvif import password_digest

    camera_now = datetime.now(UTC) + timedelta(seconds=server.clock_offset_s)
    if "GetSystemDateAndTime" in request:  # no login needed: ONVIF Core 5.12.1
        t = camera_now
        return ('<?xml version="1.0"?><s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" '
                'xmlns:tds="http://www.onvif.org/ver10/device/wsdl" xmlns:tt="http://www.onvif.org/ver10/schema">'
                "<s:Body><tds:GetSystemDateAndTimeResponse><tds:SystemDateAndTime><tt:UTCDateTime><tt:Time>"
                f"<tt:Hour>{t.hour}</tt:Hour><tt:Minute>{t.minute}</tt:Minute><tt:Second>{t.second}</tt:Second>"
                f"</tt:Time><tt:Date><tt:Year>{t.year}</tt:Year><tt:Month>{t.month}</tt:Month><tt:Day>{t.day}"
                "</tt:Day></tt:Date></tt:UTCDateTime></tds:SystemDateAndTime></tds:GetSystemDateAndTimeResponse>"
                "</s:Body></s:Envelope>")
    user = re.search(r"<wsse:Username>(.*?)</wsse:Username>", request)
    given = re.search(r"<wsse:Password[^>]*>(.*?)</wsse:Password>", request)
    nonce = re.search(r"<wsse:Nonce>(.*?)</wsse:Nonce>", request)
    created = re.search(r"<wsu:Created>(.*?)</wsu:Created>", request)
    if not (user and given and nonce and created) or user.group(1) != server.user or given.group(1) != \
            password_digest(base64.b64decode(nonce.group(1)), created.group(1), server.password):
        return None
    stamped = datetime.strptime(created.group(1), "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    if abs((stamped - camera_now).total_seconds()) > 5:  # as cameras do: a replayed or badly clocked login fails
        return None
    assert server.onvif_rtsp is not None
    head = ('<?xml version="1.0"?><s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" '
            'xmlns:tds="http://www.onvif.org/ver10/device/wsdl" xmlns:trt="http://www.onvif.org/ver10/media/wsdl" '
            'xmlns:tt="http://www.onvif.org/ver10/schema"><s:Body>')
    tail = "</s:Body></s:Envelope>"
    if "GetCapabilities" in request:
        return (f"{head}<tds:GetCapabilitiesResponse><tds:Capabilities><tt:Media><tt:XAddr>{server.url}"
                f"/onvif/media_service</tt:XAddr></tt:Media></tds:Capabilities></tds:GetCapabilitiesResponse>{tail}")
    if "GetProfiles" in request:
        profiles = "".join(f'<trt:Profiles token="{t}"><tt:Name>{t}</tt:Name><tt:VideoEncoderConfiguration>'
                           f"<tt:Resolution><tt:Width>{640 if 'sub' in t else 1920}</tt:Width><tt:Height>"
                           f"{360 if 'sub' in t else 1080}</tt:Height></tt:Resolution></tt:VideoEncoderConfiguration>"
                           "</trt:Profiles>" for t in server.onvif_rtsp)
        return f"{head}<trt:GetProfilesResponse>{profiles}</trt:GetProfilesResponse>{tail}"
    token = re.search(r"<trt:ProfileToken>(.*?)</trt:ProfileToken>", request)
    if "GetStreamUri" in request and token:
        return (f"{head}<trt:GetStreamUriResponse><trt:MediaUri><tt:Uri>{server.onvif_rtsp[token.group(1)]}"
                f"</tt:Uri></trt:MediaUri></trt:GetStreamUriResponse>{tail}")
    if "GetSnapshotUri" in request and token:
        return (f"{head}<trt:GetSnapshotUriResponse><trt:MediaUri><tt:Uri>{server.url}/snapshot.jpg</tt:Uri>"
                f"</trt:MediaUri></trt:GetSnapshotUriResponse>{tail}")
    return f"{head}<s:Fault><s:Reason><s:Text>not implemented</s:Text></s:Reason></s:Fault>{tail}"


class CameraServer:
    """/snapshot.jpg (auth as configured; also at Hikvision's ISAPI picture path), /stream.mjpg
    (multipart/x-mixed-replace, `fps` frames a second) and, when `onvif_rtsp` is set, ONVIF's device and media
    services (POST /onvif/...)."""

    def __init__(self, scene: Scene, auth: str | None = None, user: str = "admin", password: str = "s3cret",
                 fps: float = 10, port: int | None = None) -> None:
        self.scene, self.auth, self.user, self.password, self.fps = scene, auth, user, password, fps
        self.port = port or free_port()
        self.nonces: set[str] = set()
        self.onvif_rtsp: dict[str, str] | None = None  # ONVIF profile token -> its RTSP URI, when it speaks ONVIF
        self.clock_offset_s = 0.0  # the camera's clock against the real one (a village camera's is often off)
        self.requests = 0
        self.slow_s = 0.0
        self.httpd: ThreadingHTTPServer | None = None
        self.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_: Any) -> None:
                pass

            def _authorised(self) -> bool:
                header = self.headers.get("Authorization", "")
                if server.auth is None:
                    return True
                if server.auth == "basic":
                    import base64

                    good = base64.b64encode(f"{server.user}:{server.password}".encode()).decode()
                    if header == f"Basic {good}":
                        return True
                    self.send_response(401)
                    self.send_header("WWW-Authenticate", 'Basic realm="cam"')
                elif header.startswith("Digest ") and _digest_ok(header, "GET", server.user, server.password,
                                                                 "cam", server.nonces):
                    return True
                else:
                    nonce = secrets.token_hex(8)
                    server.nonces.add(nonce)
                    self.send_response(401)
                    self.send_header("WWW-Authenticate", f'Digest realm="cam", nonce="{nonce}", qop="auth", '
                                                         'algorithm=MD5')
                self.send_header("Content-Length", "0")
                self.end_headers()
                return False

            def do_GET(self) -> None:
                server.requests += 1
                if server.slow_s:
                    time.sleep(server.slow_s)
                if not self._authorised():
                    return
                if self.path.startswith(("/snapshot.jpg", "/ISAPI/Streaming/channels/101/picture")):
                    body = server.scene.jpeg()
                    self.send_response(200)
                    self.send_header("Content-Type", "image/jpeg")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                elif self.path.startswith("/stream.mjpg"):
                    self.send_response(200)
                    self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
                    self.end_headers()
                    try:
                        while server.httpd is not None:
                            body = server.scene.jpeg()
                            self.wfile.write(b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: "
                                             + str(len(body)).encode() + b"\r\n\r\n" + body + b"\r\n")
                            time.sleep(1 / server.fps)
                    except (BrokenPipeError, ConnectionResetError):
                        pass
                else:
                    self.send_error(404)

            def do_POST(self) -> None:
                """ONVIF (when `onvif_rtsp` is set): device and media service, WS-Security digest checked."""
                body = self.rfile.read(int(self.headers.get("Content-Length", "0"))).decode()
                if server.onvif_rtsp is None or not self.path.startswith("/onvif/"):
                    self.send_error(404)
                    return
                answer, status = onvif_answer(body, server), 200
                if answer is None:
                    answer, status = ONVIF_NOT_AUTHORIZED, 400
                data = answer.encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/soap+xml; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self) -> None:
        """The camera dies: the port closes and open streams end."""
        httpd, self.httpd = self.httpd, None
        if httpd is not None:
            httpd.shutdown()
            httpd.server_close()

    def __enter__(self) -> CameraServer:
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()
