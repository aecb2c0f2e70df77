"""Real receivers on loopback for the notifier tests: an HTTP server that checks DingTalk, WeCom, webhook and
SMS requests the way those services do (signatures, keys, WeCom's 4096-byte markdown, and, when `per_min` is set,
the robots' rate limit: more than `per_min` posts in 60 s and the robot refuses everything for `throttle_s`, as
DingTalk does with errcode 130101), and can fail or hang on purpose; and an SMTP server (aiosmtpd)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
import urllib.parse
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiosmtpd.controller import Controller

from bench.servers import free_port

DING_SECRET = "SECtest-ding-secret"
HOOK_SECRET = "hook-secret"
ROBOT_PATHS = ("/robot/send", "/cgi-bin/webhook/send")


@dataclass
class Received:
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class HttpReceiver:
    fail_first: int = 0  # answer 500 to this many requests, then succeed
    hang_s: float = 0.0  # sleep before answering (a receiver that never answers in time)
    got: list[Received] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    per_min: int | None = None  # a robot's posts per 60 s before it throttles (DingTalk and WeCom: 20)
    throttle_s: float = 600.0
    clock: Callable[[], float] = time.time  # the robot's idea of now (epoch s); the test's clock when injected
    too_fast: list[str] = field(default_factory=list)  # posts refused by the rate limit
    window: dict[str, deque[float]] = field(default_factory=dict)
    blocked_until: dict[str, float] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> HttpReceiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_: object) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                parts = urllib.parse.urlsplit(self.path)
                query = {k: v[0] for k, v in urllib.parse.parse_qs(parts.query).items()}
                if receiver.hang_s:
                    time.sleep(receiver.hang_s)
                problem = receiver.check(parts.path, query, dict(self.headers), body)
                if problem:
                    receiver.refused.append(problem)
                    code = 93000 if problem == "invalid webhook url" else 40058 if "exceed" in problem else 310000
                    self._answer(200, {"errcode": code, "errmsg": problem})
                    return
                if parts.path in ROBOT_PATHS and not receiver.admit(parts.path):
                    wecom = parts.path == "/cgi-bin/webhook/send"
                    receiver.too_fast.append(parts.path)
                    self._answer(200, {"errcode": 45009, "errmsg": "api freq out of limit"} if wecom else
                                 {"errcode": 130101, "errmsg": "send too fast, exceed 20 times per minute"})
                    return
                if receiver.fail_first > 0:
                    receiver.fail_first -= 1
                    self._answer(500, {"errmsg": "busy"})
                    return
                receiver.got.append(Received(parts.path, query, dict(self.headers), body))
                self._answer(200, {"errcode": 0, "errmsg": "ok"})

            def _answer(self, status: int, body: dict[str, object]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def admit(self, path: str) -> bool:
        """The robot's rate limit: at most per_min posts in 60 s, else refused until throttle_s have passed."""
        if self.per_min is None:
            return True
        now = self.clock()
        with self.lock:
            if now < self.blocked_until.get(path, 0.0):
                return False
            posts = self.window.setdefault(path, deque())
            while posts and posts[0] <= now - 60:
                posts.popleft()
            if len(posts) >= self.per_min:
                self.blocked_until[path] = now + self.throttle_s
                return False
            posts.append(now)
            return True

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def stop(self) -> None:
        self.server.shutdown()

    @staticmethod
    def check(path: str, query: dict[str, str], headers: dict[str, str], body: bytes) -> str | None:
        """What the real services would refuse, as they say it; None when acceptable."""
        if path == "/robot/send":  # DingTalk: fresh timestamp, valid sign
            ts = query.get("timestamp", "0")
            if abs(int(ts) - time.time() * 1000) > 3600_000:
                return "invalid timestamp"
            expected = base64.b64encode(hmac.new(DING_SECRET.encode(), f"{ts}\n{DING_SECRET}".encode(),
                                                 hashlib.sha256).digest()).decode()
            if query.get("sign") != expected:
                return "sign not match"
            if json.loads(body).get("msgtype") != "markdown":
                return "msgtype"
        if path == "/cgi-bin/webhook/send":
            if query.get("key") != "wecom-key":
                return "invalid webhook url"
            if len(json.loads(body)["markdown"]["content"].encode()) > 4096:
                return "markdown.content exceed max length 4096"
        if path == "/hook":
            mac = hmac.new(HOOK_SECRET.encode(), headers.get("X-Orchard-Timestamp", "").encode() + b"." + body,
                           hashlib.sha256).hexdigest()
            if headers.get("X-Orchard-Signature") != f"sha256={mac}":
                return "bad signature"
        return None


class SmtpReceiver:
    def __init__(self) -> None:
        self.messages: list[Message] = []
        receiver = self

        class Handler:
            async def handle_DATA(self, server: object, session: object, envelope: Any) -> str:
                receiver.messages.append(message_from_bytes(envelope.content, policy=policy.default))
                return "250 OK"

        self.port = free_port()
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)

    def __enter__(self) -> SmtpReceiver:
        self.controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.controller.stop()
