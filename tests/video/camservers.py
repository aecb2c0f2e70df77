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


class CameraServer:
    """/snapshot.jpg (auth as configured) and /stream.mjpg (multipart/x-mixed-replace, `fps` frames a second)."""

    def __init__(self, scene: Scene, auth: str | None = None, user: str = "admin", password: str = "s3cret",
                 fps: float = 10, port: int | None = None) -> None:
        self.scene, self.auth, self.user, self.password, self.fps = scene, auth, user, password, fps
        self.port = port or free_port()
        self.nonces: set[str] = set()
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
                if self.path.startswith("/snapshot.jpg"):
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
