"""The channels that carry alarm messages, behind one small interface. Each raises DeliveryError when the
message did not arrive; the dispatcher retries with backoff. The command center's own MQTT sink (sirens, LED
boards) is AlertPublisher, one message per alarm change rather than per person.
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
from email.message import EmailMessage
from typing import Protocol

import httpx
import orjson
from paho.mqtt.client import Client

from analytics.notify.compose import Message
from orchard.models import Alarm
from orchard.people import User
from orchard.redact import redact
from orchard.settings import NotifySettings


class DeliveryError(Exception):
    """The message did not reach the channel; the text says why (shown in the dashboard's receipt matrix)."""


class Channel(Protocol):
    name: str

    def send(self, user: User, msg: Message) -> None: ...


def _check_robot_answer(resp: httpx.Response, what: str) -> None:
    if resp.status_code != 200:
        raise DeliveryError(f"{what} answered HTTP {resp.status_code}: {resp.text[:200]}")
    try:
        body = resp.json()
    except ValueError:
        raise DeliveryError(f"{what} answered something that is not JSON: {resp.text[:200]}") from None
    if body.get("errcode", 0) != 0:
        raise DeliveryError(f"{what} refused the message: {body.get('errcode')} {body.get('errmsg', '')}")


def _post(http: httpx.Client, url: str, what: str, **kw: object) -> httpx.Response:
    try:
        return http.post(url, **kw)  # type: ignore[arg-type]
    except httpx.HTTPError as e:
        raise DeliveryError(f"{what} unreachable: {redact(repr(e))}") from e  # recorded, shown on the dashboard


class DingTalk:
    """DingTalk custom robot: markdown, signed (timestamp + HMAC-SHA256 of "timestamp\\nsecret"), @ by phone."""

    name = "dingtalk"

    def __init__(self, url: str, secret: str | None, http: httpx.Client) -> None:
        self.url, self.secret, self.http = url, secret, http

    def signed_url(self, now_ms: int | None = None) -> str:
        if not self.secret:
            return self.url
        ts = str(now_ms if now_ms is not None else int(time.time() * 1000))
        digest = hmac.new(self.secret.encode(), f"{ts}\n{self.secret}".encode(), hashlib.sha256).digest()
        sign = urllib.parse.quote_plus(base64.b64encode(digest))
        return f"{self.url}{'&' if '?' in self.url else '?'}timestamp={ts}&sign={sign}"

    def send(self, user: User, msg: Message) -> None:
        text = msg.markdown + (f"\n\n@{user.phone}" if user.phone else "")
        body = {"msgtype": "markdown", "markdown": {"title": msg.subject[:60], "text": text},
                "at": {"atMobiles": [user.phone] if user.phone else [], "isAtAll": False}}
        _check_robot_answer(_post(self.http, self.signed_url(), "DingTalk", json=body), "DingTalk")


class WeCom:
    """WeCom (企业微信) group robot: markdown; the person is named in the text (markdown cannot @ by phone)."""

    name = "wecom"

    def __init__(self, url: str, http: httpx.Client) -> None:
        self.url, self.http = url, http

    def send(self, user: User, msg: Message) -> None:
        body = {"msgtype": "markdown", "markdown": {"content": f"{msg.markdown}\n> {user.display}"}}
        _check_robot_answer(_post(self.http, self.url, "WeCom", json=body), "WeCom")


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


def build_channels(cfg: NotifySettings, http: httpx.Client) -> dict[str, Channel]:
    """The channels this installation has configured (the inbox always)."""
    out: dict[str, Channel] = {"inbox": Inbox()}
    if cfg.dingtalk_url:
        out["dingtalk"] = DingTalk(cfg.dingtalk_url.get_secret_value(),
                                   cfg.dingtalk_secret.get_secret_value() if cfg.dingtalk_secret else None, http)
    if cfg.wecom_url:
        out["wecom"] = WeCom(cfg.wecom_url.get_secret_value(), http)
    if cfg.webhook_url:
        out["webhook"] = Webhook(cfg.webhook_url, cfg.webhook_secret.get_secret_value() if cfg.webhook_secret
                                 else None, http)
    if cfg.sms_url:
        out["sms"] = Sms(cfg.sms_url.get_secret_value(), cfg.sms_body, http)
    if cfg.smtp_url:
        out["email"] = Email(cfg.smtp_url.get_secret_value(), cfg.mail_from, cfg.timeout_s)
    return out
