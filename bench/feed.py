"""Raw frames for the RTSP server's `feed:<port>` mounts (bench/rtsp_server.py): a producer of this process
draws each frame (the demo's synthetic orchard, or a test's picture) and serves it on a loopback port at a rate
it can change while running, so a test can slow a camera's frame rate or freeze its picture."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable

import numpy as np

from bench.servers import free_port

Draw = Callable[[int], np.ndarray]  # frame number -> BGR image of the feed's size


class FrameFeed:
    """Serves BGR frames of `width` x `height` to whoever connects (the RTSP server's pipeline), `fps` a second."""

    def __init__(self, draw: Draw, width: int = 640, height: int = 360, fps: float = 15) -> None:
        self.draw, self.width, self.height, self.fps = draw, width, height, fps
        self.port = free_port()
        self.frames = 0
        self.paused = False  # a camera whose encoder hangs: the connection stays open, no frame comes
        self.drawn_at: dict[int, float] = {}  # frame number (mod 2**16) -> when it was sent, the newest 4096
        self._stop = threading.Event()
        self._sock = socket.create_server(("127.0.0.1", self.port))
        self._sock.settimeout(0.2)
        self._thread = threading.Thread(target=self._serve, name=f"feed-{self.port}", daemon=True)

    @property
    def spec(self) -> str:
        return f"feed:{self.port}"

    def start(self) -> FrameFeed:
        self._thread.start()
        return self

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            with contextlib.suppress(OSError), conn:
                self._send(conn)

    def _send(self, conn: socket.socket) -> None:
        next_at = time.monotonic()
        while not self._stop.is_set():
            if self.paused:
                self._stop.wait(0.05)
                next_at = time.monotonic()
                continue
            image = self.draw(self.frames)
            assert image.shape == (self.height, self.width, 3), image.shape
            self.drawn_at[self.frames % 65536] = time.time()
            self.drawn_at.pop((self.frames - 4096) % 65536, None)
            conn.sendall(np.ascontiguousarray(image, dtype=np.uint8).tobytes())
            self.frames += 1
            next_at = max(next_at + 1.0 / self.fps, time.monotonic() - 1.0)
            self._stop.wait(max(0.0, next_at - time.monotonic()))

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._sock.close()
