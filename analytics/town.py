"""One analytics process for several villages: the towns or villages ORCHARD_ANALYTICS__SERVE names from the county
file, so a county runs one analytics process per town instead of one per village.

Each village keeps its own Analytics (analytics/service.py): its site's rules, its view of the shared store
(orchard/store/village.py), its alarm, people and work-order books, its dispatcher, digest and notice desk, its
quick and full cycles. They share one MQTT connection: the broker ties a session to the `analytics` account, so a
second connection of the same account would replace the first. The town subscribes to every village's topics and
hands each message to the village its topic names. Its heartbeat ("analytics") beats while every village's cycle
succeeds; each village also has its own ("analytics-<village>").
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable, Mapping

import httpx
from paho.mqtt.client import Client, MQTTMessage

from analytics.notify.channels import build_channels
from analytics.service import Analytics, build
from orchard.county import County, CountyError, load_county
from orchard.logs import event
from orchard.mqtt import connect_to, make_client
from orchard.settings import Settings
from orchard.supervise import Heartbeat

log = logging.getLogger("orchard.analytics")
KINDS = ("telemetry", "status", "camera")


class Town:
    def __init__(self, settings: Settings, services: Mapping[str, Analytics], client: Client | None) -> None:
        self.settings, self.services, self.client = settings, dict(services), client
        self.stop = threading.Event()
        self.subscribed = threading.Event()
        limit = max(300.0, 5 * settings.analytics.every_s)
        self.heartbeat = Heartbeat(settings.data_dir, "analytics", limit)

    def topics(self) -> list[tuple[str, int]]:
        prefix = self.settings.mqtt_prefix
        return [(f"{prefix}/{v}/+/+/{kind}", 0) for v in self.services for kind in KINDS]

    def on_message(self, c: Client, u: object, msg: MQTTMessage) -> None:
        """To the village the topic names (<prefix>/<village>/<plot>/<device>/<kind>)."""
        parts = msg.topic.split("/")
        service = self.services.get(parts[1]) if len(parts) == 5 else None
        if service is not None:
            service.on_message(c, u, msg)

    def _subscribed(self) -> None:
        for s in self.services.values():
            s.subscribed.set()
        self.subscribed.set()

    def subscribe(self) -> None:
        if self.client is None:
            return
        topics = self.topics()
        self.client.on_connect = lambda c, *_: c.subscribe(topics)
        self.client.on_subscribe = lambda *_: self._subscribed()
        self.client.on_message = self.on_message
        connect_to(self.client, self.settings.mqtt_url)
        self.client.loop_start()

    def halt(self) -> None:
        self.stop.set()
        for s in self.services.values():
            s.stop.set()
            s.wake.set()

    def run(self) -> None:
        self.subscribe()
        threads = [threading.Thread(target=s.run, kwargs={"own_mqtt": False}, name=f"village-{v}", daemon=True)
                   for v, s in self.services.items()]
        for t in threads:
            t.start()
        event(log, "town_started", villages=len(self.services), names=",".join(self.services))
        while not self.stop.wait(15.0):
            if all(s.last_ok for s in self.services.values()):
                self.heartbeat.beat(force=True, villages=len(self.services),
                                    mqtt=self.client.is_connected() if self.client is not None else None)
        for t in threads:
            t.join(30)
        if self.client is not None:
            self.client.loop_stop()
            self.client.disconnect()


def served(settings: Settings) -> tuple[County, list[str]]:
    """The county and the villages ORCHARD_ANALYTICS__SERVE names (CountyError when they cannot be served)."""
    if settings.county_file is None:
        raise CountyError("ORCHARD_ANALYTICS__SERVE 需要县配置文件 / needs ORCHARD_COUNTY_FILE: set it to the "
                          "county.toml that lists the towns and villages")
    county = load_county(settings.county_file)
    names = [x.strip() for x in settings.analytics.serve.split(",") if x.strip()]
    return county, county.villages(names)


def build_town(settings: Settings, with_mqtt: bool = True, clock: Callable[[], int] = time.time_ns) -> Town:
    """One Analytics per village served, in the county file's order, sharing one MQTT client."""
    county, villages = served(settings)
    client = make_client(settings.mqtt_url, f"orchard-analytics-{villages[0]}-town",
                         protocol=settings.mqtt_protocol) if with_mqtt and villages else None
    # One set of channels for the town: a group robot takes 20 posts a minute whichever village they are from.
    channels = build_channels(settings.notify, httpx.Client(timeout=settings.notify.timeout_s))
    services = {v: build(settings.model_copy(update={"site": v}), with_mqtt=False, clock=clock,
                         site=county.sites[v], client=client, heartbeat=f"analytics-{v}", channels=channels)
                for v in villages}
    return Town(settings, services, client)


def run_town(settings: Settings) -> None:
    town = build_town(settings)
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: town.halt())
    town.run()
