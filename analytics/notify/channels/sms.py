"""SMS through an HTTP gateway."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx

from analytics.notify.channels import DeliveryError, channel, send_http
from analytics.notify.compose import Message
from analytics.notify.robots import RobotGate
from orchard.records.people import User
from orchard.settings import NotifySettings


class Sms:
    """An SMS through an HTTP gateway: the body template gets {phone} and {text}, JSON-escaped."""

    name = "sms"

    def __init__(self, url: str, template: str, http: httpx.Client) -> None:
        self.url, self.template, self.http = url, template, http

    def send(self, user: User, msg: Message) -> None:
        if not user.phone:
            raise DeliveryError(f"{user.name} has no phone number")
        text = f"{msg.subject} {msg.link or ''}".strip()
        esc = lambda s: json.dumps(s, ensure_ascii=False)[1:-1]  # noqa: E731
        body = self.template.replace("{phone}", esc(user.phone)).replace("{text}", esc(text))
        resp = send_http(self.http, self.url, "SMS gateway", content=body.encode(),
                     headers={"Content-Type": "application/json"})
        if not 200 <= resp.status_code < 300:
            raise DeliveryError(f"SMS gateway answered HTTP {resp.status_code}: {resp.text[:200]}")


@channel("sms")
def _sms(cfg: NotifySettings, http: httpx.Client, gate: Callable[[], RobotGate]) -> Sms | None:
    return Sms(cfg.sms_url.get_secret_value(), cfg.sms_body, http) if cfg.sms_url else None
