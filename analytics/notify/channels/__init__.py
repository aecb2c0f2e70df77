"""The channels that carry alarm messages, behind two small interfaces:

- Channel: one person, one message (e-mail, SMS, webhook, the in-app inbox).
- Robot: one group, one post that @-mentions the people it is for (DingTalk and WeCom group robots), paced by
  its RobotGate (see robots.py for the vendors' limits).

One module of this package per channel, each registering a factory with `@channel(name)` that builds it from
the settings when it is configured (None when not); `build_channels` finds them by package discovery. A new
channel is one new module here (plus its settings in NotifySettings and its member of orchard's ChannelName).

Each raises DeliveryError when the message did not arrive and may arrive on a later try (the dispatcher retries
with backoff); Refused when trying again cannot help (a wrong key or signature: the dispatcher stops, records it
and raises a channel alarm for the command center); Throttled when the vendor says "too fast". The command
center's own MQTT sink (sirens, LED boards) is AlertPublisher, one message per alarm change rather than per person.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Protocol, runtime_checkable

import httpx
import orjson
from paho.mqtt.client import Client

from analytics.notify.compose import Message
from analytics.notify.robots import Post, RobotGate
from orchard.models import Alarm
from orchard.records.people import User
from orchard.redact import redact
from orchard.registry import Registry
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


def check_robot_answer(resp: httpx.Response, what: str, too_fast: Collection[int]) -> None:
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


def send_http(http: httpx.Client, url: str, what: str, **kw: object) -> httpx.Response:
    try:
        return http.post(url, **kw)  # type: ignore[arg-type]
    except httpx.HTTPError as e:
        raise DeliveryError(f"{what} unreachable: {redact(repr(e))}") from e  # recorded, shown on the dashboard


Factory = Callable[[NotifySettings, httpx.Client, Callable[[], RobotGate]], "Channel | Robot | None"]
FACTORIES = Registry[Factory]("channel", __name__)
# @channel("dingtalk") on a module's factory: it gets the notify settings, the HTTP client and a maker of robot
# gates, and returns the channel, or None when this installation has not set it up.
channel = FACTORIES.add


def factories() -> dict[str, Factory]:
    """Every channel module of this package imported (each registers itself), and the registry."""
    return FACTORIES.load()


def build_channels(cfg: NotifySettings, http: httpx.Client) -> dict[str, Channel | Robot]:
    """The channels this installation has configured (the inbox always); each robot with its own gate."""
    def gate() -> RobotGate:
        return RobotGate(cfg.robot_posts_per_min, cfg.robot_throttle_min * 60)

    built = {name: factory(cfg, http, gate) for name, factory in factories().items()}
    return {name: ch for name, ch in built.items() if ch is not None}


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
