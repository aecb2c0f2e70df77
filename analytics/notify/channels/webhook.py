"""A signed JSON POST for other systems."""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable

import httpx
import orjson

from analytics.notify.channels import DeliveryError, channel, send_http
from analytics.notify.compose import Message
from analytics.notify.robots import RobotGate
from orchard.records.people import User
from orchard.settings import NotifySettings


class Webhook:
    """A JSON POST for other systems, signed: X-Orchard-Signature: sha256=HMAC(secret, timestamp + "." + body)."""

    name = "webhook"

    def __init__(self, url: str, secret: str | None, http: httpx.Client) -> None:
        self.url, self.secret, self.http = url, secret, http

    def send(self, user: User, msg: Message) -> None:
        body = orjson.dumps({"alarm_id": msg.alarm_id, "alarm_ids": list(msg.alarm_ids), "severity": msg.severity,
                             "subject": msg.subject, "text": msg.plain, "link": msg.link, "recipient": user.name})
        ts = str(int(time.time()))
        headers = {"Content-Type": "application/json", "X-Orchard-Timestamp": ts}
        if self.secret:
            mac = hmac.new(self.secret.encode(), ts.encode() + b"." + body, hashlib.sha256).hexdigest()
            headers["X-Orchard-Signature"] = f"sha256={mac}"
        resp = send_http(self.http, self.url, "webhook", content=body, headers=headers)
        if not 200 <= resp.status_code < 300:
            raise DeliveryError(f"webhook answered HTTP {resp.status_code}: {resp.text[:200]}")


@channel("webhook")
def _webhook(cfg: NotifySettings, http: httpx.Client, gate: Callable[[], RobotGate]) -> Webhook | None:
    if not cfg.webhook_url:
        return None
    return Webhook(cfg.webhook_url, cfg.webhook_secret.get_secret_value() if cfg.webhook_secret else None, http)
