"""E-mail over SMTP (smtp://, smtps://, ?starttls=1)."""

from __future__ import annotations

import smtplib
import ssl
import urllib.parse
from collections.abc import Callable
from email.message import EmailMessage

import httpx

from analytics.notify.channels import DeliveryError, channel
from analytics.notify.compose import Message
from analytics.notify.robots import RobotGate
from orchard.records.people import User
from orchard.settings import NotifySettings


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


@channel("email")
def _email(cfg: NotifySettings, http: httpx.Client, gate: Callable[[], RobotGate]) -> Email | None:
    return Email(cfg.smtp_url.get_secret_value(), cfg.mail_from, cfg.timeout_s) if cfg.smtp_url else None
