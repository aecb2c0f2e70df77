"""WeCom group robots (企业微信群机器人)."""

from __future__ import annotations

from collections.abc import Callable

import httpx

from analytics.notify.channels import channel, check_robot_answer, send_http
from analytics.notify.robots import Post, RobotGate
from orchard.settings import NotifySettings


class WeCom:
    """WeCom (企业微信) group robot: markdown (at most 4096 bytes); people are named in the text (markdown cannot
    @ by phone). Refusals: 93000 (invalid webhook url), 45009 (api freq out of limit)."""

    name = "wecom"
    max_bytes = 4000
    at_phone = False
    TOO_FAST = frozenset({45009})

    def __init__(self, url: str, http: httpx.Client, gate: RobotGate) -> None:
        self.url, self.http, self.gate = url, http, gate

    def post(self, post: Post) -> None:
        body = {"msgtype": "markdown", "markdown": {"content": post.markdown}}
        check_robot_answer(send_http(self.http, self.url, "WeCom", json=body), "WeCom", self.TOO_FAST)


@channel("wecom")
def _wecom(cfg: NotifySettings, http: httpx.Client, gate: Callable[[], RobotGate]) -> WeCom | None:
    return WeCom(cfg.wecom_url.get_secret_value(), http, gate()) if cfg.wecom_url else None
