"""The in-app inbox: always there."""

from __future__ import annotations

from collections.abc import Callable

import httpx

from analytics.notify.channels import channel
from analytics.notify.compose import Message
from analytics.notify.robots import RobotGate
from orchard.records.people import User
from orchard.settings import NotifySettings


class Inbox:
    """The in-app inbox: the notification row is the message; nothing to carry."""

    name = "inbox"

    def send(self, user: User, msg: Message) -> None:
        return None


@channel("inbox")
def _inbox(cfg: NotifySettings, http: httpx.Client, gate: Callable[[], RobotGate]) -> Inbox:
    return Inbox()
