"""Builds and runs the analytics service, in this order: settings, site, store, records, rule engine, MQTT
trigger; then a cycle at least every `every_s` seconds and soon after new telemetry arrives."""

from __future__ import annotations

import logging
import signal
import threading
import time

import httpx
from paho.mqtt.client import Client, MQTTMessage

from analytics.engine import CycleResult, Engine
from analytics.notify.channels import AlertPublisher, build_channels
from analytics.notify.digest import Digest
from analytics.notify.dispatch import Dispatcher, escalation_for
from orchard.alarms import AlarmBook, alarm_text
from orchard.logs import event
from orchard.models import DEVICE_TYPES
from orchard.mqtt import connect_to, make_client
from orchard.outbox import Outbox
from orchard.people import People
from orchard.records import Records
from orchard.settings import Settings
from orchard.site import site_for
from orchard.store import StoreError, open_store
from orchard.workorders import WorkOrders

log = logging.getLogger("orchard.analytics")


class Analytics:
    def __init__(self, settings: Settings, engine: Engine, dispatcher: Dispatcher, digest: Digest | None,
                 client: Client | None) -> None:
        self.settings, self.engine, self.dispatcher, self.digest, self.client = (settings, engine, dispatcher,
                                                                                 digest, client)
        self.wake = threading.Event()
        self.stop = threading.Event()
        self.cycles = 0

    def on_message(self, _c: Client, _u: object, _msg: MQTTMessage) -> None:
        self.wake.set()  # the message itself is ingest's business; it only says there is news

    def subscribe(self) -> None:
        if self.client is None:
            return
        s = self.settings
        topics = [(f"{s.mqtt_prefix}/{s.site}/+/+/{kind}", 0) for kind in ("telemetry", "status")]
        self.client.on_connect = lambda c, *_: c.subscribe(topics)
        self.client.on_message = self.on_message
        connect_to(self.client, s.mqtt_url)
        self.client.loop_start()

    def run_once(self) -> CycleResult | None:
        """One cycle: evaluate, tell people about what changed, escalate what nobody acked, deliver."""
        result = None
        try:
            result = self.engine.cycle()
            self.dispatcher.on_changes(result.changed, result.now_ns)
            self.open_work_orders(result)
        except StoreError as e:  # the store is away: try again next cycle, alarms stay as they are
            event(log, "cycle_skipped", logging.WARNING, error=str(e)[:300])
        now = time.time_ns()
        self.dispatcher.escalate(now)
        self.dispatcher.deliver(now)
        if self.digest is not None:
            self.digest.send(now)
        self.cycles += 1
        return result

    def open_work_orders(self, result: CycleResult) -> None:
        """A newly raised alarm of an auto-open severity gets a work order for the plot's adviser."""
        orders = self.engine.orders
        if orders is None:
            return
        for alarm, change in result.changed:
            if (change == "raised" and alarm.severity in self.settings.analytics.work_order_severities
                    and alarm.type not in DEVICE_TYPES and alarm.plot and not orders.for_alarm(alarm.id)):
                advisers = self.dispatcher.people.for_plot(alarm.plot, "adviser")
                words = alarm_text(alarm, "zh", self.engine.site)
                orders.open(plot=alarm.plot, title=words.title, description=words.text, created_by="system",
                            now_ns=result.now_ns, source="alarm", alarm_id=alarm.id,
                            assignee=advisers[0].name if advisers else None)

    def run(self) -> None:
        cfg = self.settings.analytics
        self.subscribe()
        last = 0.0
        while not self.stop.is_set():
            self.run_once()
            last = time.monotonic()
            self.wake.clear()
            self.wake.wait(cfg.every_s)  # new data or the minute is up
            gap = cfg.min_gap_s - (time.monotonic() - last)
            if gap > 0:
                self.stop.wait(gap)
        if self.client is not None:
            self.client.loop_stop()
            self.client.disconnect()
        self.dispatcher.close()


def build(settings: Settings, with_mqtt: bool = True) -> Analytics:
    """Everything the service needs, in order; nothing is contacted until `run`."""
    site = site_for(settings)
    store = open_store(settings.store_url)
    records = Records.open(settings)
    book = AlarmBook(records)
    orders = WorkOrders(records, settings.data_dir / "photos")
    engine = Engine(site, store, records, book, orders=orders)
    client = make_client(settings.mqtt_url, f"orchard-analytics-{settings.site}",
                         protocol=settings.mqtt_protocol) if with_mqtt else None
    cfg = settings.notify
    alerts = AlertPublisher(client, settings.mqtt_prefix, site.id) if client is not None and cfg.mqtt_alerts else None
    channels = build_channels(cfg, httpx.Client(timeout=cfg.timeout_s))
    people = People(records)
    dispatcher = Dispatcher(site, people, Outbox(records), book, channels, cfg, escalation_for(site.escalation),
                            alerts)
    digest = Digest(site, records, people, book, orders, channels, settings.analytics.digest_at)
    if cfg.link_secret is None:
        event(log, "no_link_secret", logging.WARNING,
              hint="set ORCHARD_NOTIFY__LINK_SECRET so messages carry read/ack links")
    return Analytics(settings, engine, dispatcher, digest, client)


def run_analytics(settings: Settings) -> None:
    service = build(settings)

    def stop(*_: object) -> None:
        service.stop.set()
        service.wake.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, stop)
    event(log, "analytics_started", site=settings.site, rules=len(service.engine.rules))
    service.run()
