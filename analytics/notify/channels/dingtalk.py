"""DingTalk group robots (钉钉自定义机器人)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
import urllib.parse
from collections.abc import Callable

import httpx

from analytics.notify.channels import channel, check_robot_answer, send_http
from analytics.notify.robots import Post, RobotGate
from orchard.settings import NotifySettings


class DingTalk:
    """DingTalk custom robot: markdown, signed (timestamp + HMAC-SHA256 of "timestamp\\nsecret"), @ by phone
    (the number in `at.atMobiles` and as "@number" in the text, or DingTalk shows no mention).
    Refusals: 310000 (sign not match, keywords not in content, IP not in whitelist), 300001 (token is not exist),
    130101 (send too fast, exceed 20 times per minute)."""

    name = "dingtalk"
    max_bytes = 4000  # keep well under what the robot takes (WeCom's 4096 is the stricter of the two)
    at_phone = True
    TOO_FAST = frozenset({130101})

    def __init__(self, url: str, secret: str | None, http: httpx.Client, gate: RobotGate) -> None:
        self.url, self.secret, self.http, self.gate = url, secret, http, gate

    def signed_url(self, now_ms: int | None = None) -> str:
        if not self.secret:
            return self.url
        ts = str(now_ms if now_ms is not None else int(time.time() * 1000))
        digest = hmac.new(self.secret.encode(), f"{ts}\n{self.secret}".encode(), hashlib.sha256).digest()
        sign = urllib.parse.quote_plus(base64.b64encode(digest))
        return f"{self.url}{'&' if '?' in self.url else '?'}timestamp={ts}&sign={sign}"

    def post(self, post: Post) -> None:
        body = {"msgtype": "markdown", "markdown": {"title": post.title[:60], "text": post.markdown},
                "at": {"atMobiles": post.phones, "isAtAll": False}}
        check_robot_answer(send_http(self.http, self.signed_url(), "DingTalk", json=body), "DingTalk", self.TOO_FAST)


@channel("dingtalk")
def _dingtalk(cfg: NotifySettings, http: httpx.Client, gate: Callable[[], RobotGate]) -> DingTalk | None:
    if not cfg.dingtalk_url:
        return None
    secret = cfg.dingtalk_secret.get_secret_value() if cfg.dingtalk_secret else None
    return DingTalk(cfg.dingtalk_url.get_secret_value(), secret, http, gate())
