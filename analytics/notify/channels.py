"""The channels that carry alarm messages, behind two small interfaces:

- Channel: one person, one message (e-mail, SMS, webhook, the in-app inbox).
- Robot: one group, one post that @-mentions the people it is for (DingTalk and WeCom group robots), paced by
  its RobotGate (see robots.py for the vendors' limits).

Each raises DeliveryError when the message did not arrive and may arrive on a later try (the dispatcher retries
with backoff); Refused when trying again cannot help (a wrong key or signature: the dispatcher stops, records it
and raises a channel alarm for the command center); Throttled when the vendor says "too fast". The command
center's own MQTT sink (sirens, LED boards) is AlertPublisher, one message per alarm change rather than per person.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import smtplib
import ssl
import time
import urllib.parse
from collections.abc import Collection
from email.message import EmailMessage
from typing import Protocol, runtime_checkable

import httpx
import orjson
from paho.mqtt.client import Client

from analytics.notify.compose import Message
from analytics.notify.robots import Post, RobotGate
from orchard.models import Alarm
from orchard.records.people import User
from orchard.redact import redact
from orchard.settings import NotifySettings


class DeliveryError(Exception):
    """The message did not reach the channel; the text says why (shown in the dashboard's receipt matrix)."""


class Refused(DeliveryError):
    """The channel refused it for a reason a retry cannot fix (bad key, bad signature, robot deleted)."""


class Throttled(DeliveryError):
    """The channel refused it for sending too fast."""


class Channel(Protocol):
    name: str

    def send(self, user: User, msg: Message) -> None: ...


@runtime_checkable
class Robot(Protocol):
    name: str
    gate: RobotGate
    max_bytes: int  # the largest post body the vendor accepts
    at_phone: bool  # whether a post can @-mention by phone number

    def post(self, post: Post) -> None: ...


TRANSIENT_CODES = frozenset({-1})  # "系统繁忙" at both vendors: try again


def _check_robot_answer(resp: httpx.Response, what: str, too_fast: Collection[int]) -> None:
    if resp.status_code == 429:
        raise Throttled(f"{what} answered HTTP 429 (too many requests)")
    if 400 <= resp.status_code < 500:  # the address is wrong or gone: the same request will fail again
        raise Refused(f"{what} answered HTTP {resp.status_code}: {resp.text[:200]}")
    if resp.status_code != 200:
        raise DeliveryError(f"{what} answered HTTP {resp.status_code}: {resp.text[:200]}")
    try:
        body = resp.json()
    except ValueError:
        raise DeliveryError(f"{what} answered something that is not JSON: {resp.text[:200]}") from None
    code = body.get("errcode", 0)
    if code == 0:
        return
    text = f"{what} refused the message: {code} {body.get('errmsg', '')}"[:300]
    if code in too_fast:
        raise Throttled(text)
    if code in TRANSIENT_CODES:
        raise DeliveryError(text)
    raise Refused(text)


def _post(http: httpx.Client, url: str, what: str, **kw: object) -> httpx.Response:
    try:
        return http.post(url, **kw)  # type: ignore[arg-type]
    except httpx.HTTPError as e:
        raise DeliveryError(f"{what} unreachable: {redact(repr(e))}") from e  # recorded, shown on the dashboard


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
        _check_robot_answer(_post(self.http, self.signed_url(), "DingTalk", json=body), "DingTalk", self.TOO_FAST)


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
        _check_robot_answer(_post(self.http, self.url, "WeCom", json=body), "WeCom", self.TOO_FAST)


class Webhook:
    """A JSON POST for other systems, signed: X-Orchard-Signature: sha256=HMAC(secret, timestamp + "." + body)."""

    name = "webhook"

    def __init__(self, url: str, secret: str | None, http: httpx.Client) -> None:
        self.url, self.secret, self.http = url, secret, http

    def send(self, user: User, msg: Message) -> None:
        body = orjson.dumps({"alarm_id": msg.alarm_id, "severity": msg.severity, "subject": msg.subject,
                             "text": msg.plain, "link": msg.link, "recipient": user.name})
        ts = str(int(time.time()))
        headers = {"Content-Type": "application/json", "X-Orchard-Timestamp": ts}
        if self.secret:
            mac = hmac.new(self.secret.encode(), ts.encode() + b"." + body, hashlib.sha256).hexdigest()
            headers["X-Orchard-Signature"] = f"sha256={mac}"
        resp = _post(self.http, self.url, "webhook", content=body, headers=headers)
        if not 200 <= resp.status_code < 300:
            raise DeliveryError(f"webhook answered HTTP {resp.status_code}: {resp.text[:200]}")


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
        resp = _post(self.http, self.url, "SMS gateway", content=body.encode(),
                     headers={"Content-Type": "application/json"})
        if not 200 <= resp.status_code < 300:
            raise DeliveryError(f"SMS gateway answered HTTP {resp.status_code}: {resp.text[:200]}")


class Email:
    name = "email"

    def __init__(self, smtp_url: str, sender: str, timeout_s: float) -> None:
        u = urllib.parse.urlsplit(smtp_url)
        self.tls = u.scheme == "smtps"
        self.starttls = urllib.parse.parse_qs(u.query).get("starttls", ["0"])[0] in ("1", "true")
        self.host, self.port = u.hostname or "localhost", u.port or (465 if self.tls else 25)
        self.user = urllib.parse.unquote(u.username) if u.username else None
        self.password = urllib.parse.unquote(u.password) if u.password else None
        self.sender, self.timeout_s = sender, timeout_s

    def send(self, user: User, msg: Message) -> None:
        if not user.email:
            raise DeliveryError(f"{user.name} has no e-mail address")
        mail = EmailMessage()
        mail["Subject"], mail["From"], mail["To"] = msg.subject, self.sender, user.email
        mail.set_content(msg.plain)
        try:
            cls = smtplib.SMTP_SSL if self.tls else smtplib.SMTP
            with cls(self.host, self.port, timeout=self.timeout_s) as smtp:
                if self.starttls:
                    smtp.starttls(context=ssl.create_default_context())
                if self.user:
                    smtp.login(self.user, self.password or "")
                smtp.send_message(mail)
        except (OSError, smtplib.SMTPException) as e:
            raise DeliveryError(f"SMTP {self.host}:{self.port}: {e!r}") from e


class Inbox:
    """The in-app inbox: the notification row is the message; nothing to carry."""

    name = "inbox"

    def send(self, user: User, msg: Message) -> None:
        return None


class AlertPublisher:
    """Alarm changes to <prefix>/<site>/alerts/<plot> (QoS 1, retained: a siren or LED board that reconnects
    sees the plot's current state)."""

    def __init__(self, client: Client, prefix: str, site: str) -> None:
        self.client, self.prefix, self.site = client, prefix, site

    def publish(self, alarm: Alarm, change: str) -> None:
        topic = f"{self.prefix}/{self.site}/alerts/{alarm.plot or '_site'}"
        body = {"alarm_id": alarm.id, "type": alarm.type, "severity": alarm.severity, "change": change,
                "active": alarm.active, "source": alarm.source, "started_ns": alarm.started_ns,
                "details": dict(alarm.details)}
        self.client.publish(topic, orjson.dumps(body), qos=1, retain=True)


def build_channels(cfg: NotifySettings, http: httpx.Client) -> dict[str, Channel | Robot]:
    """The channels this installation has configured (the inbox always); each robot with its own gate."""
    def gate() -> RobotGate:
        return RobotGate(cfg.robot_posts_per_min, cfg.robot_throttle_min * 60)

    out: dict[str, Channel | Robot] = {"inbox": Inbox()}
    if cfg.dingtalk_url:
        out["dingtalk"] = DingTalk(cfg.dingtalk_url.get_secret_value(),
                                   cfg.dingtalk_secret.get_secret_value() if cfg.dingtalk_secret else None, http,
                                   gate())
    if cfg.wecom_url:
        out["wecom"] = WeCom(cfg.wecom_url.get_secret_value(), http, gate())
    if cfg.webhook_url:
        out["webhook"] = Webhook(cfg.webhook_url, cfg.webhook_secret.get_secret_value() if cfg.webhook_secret
                                 else None, http)
    if cfg.sms_url:
        out["sms"] = Sms(cfg.sms_url.get_secret_value(), cfg.sms_body, http)
    if cfg.smtp_url:
        out["email"] = Email(cfg.smtp_url.get_secret_value(), cfg.mail_from, cfg.timeout_s)
    return out
