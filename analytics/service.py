"""Builds and runs the analytics service, in this order: settings, site, store, records, forecast and warnings
feeds, rule engine, MQTT trigger; then a cycle at least every `every_s` seconds and soon after new telemetry
arrives."""

from __future__ import annotations

import functools
import logging
import signal
import threading
import time
from collections.abc import Callable, Mapping
from datetime import datetime

import httpx
import orjson
from paho.mqtt.client import Client, MQTTMessage

from analytics.cap.feed import feed_for as warnings_feed
from analytics.engine import CycleFailed, CycleResult, Engine
from analytics.evidence import Evidence
from analytics.forecast import feed_for
from analytics.notify.channels import AlertPublisher, Channel, Robot, build_channels
from analytics.notify.digest import Digest
from analytics.notify.dispatch import Dispatcher, escalation_for
from analytics.notify.notices import NoticeDesk
from orchard.county import county_for
from orchard.logs import event
from orchard.models import DEVICE_TYPES
from orchard.mqtt import connect_to, make_client
from orchard.records import Records
from orchard.records.alarms import Alarm, AlarmBook, alarm_text
from orchard.records.notices import NoticeBook
from orchard.records.outbox import Outbox
from orchard.records.people import People, Role
from orchard.records.pruning import prune
from orchard.records.snapshots import SnapshotFiles
from orchard.records.workorders import WorkOrders
from orchard.settings import Settings
from orchard.site import Site, site_for
from orchard.store import open_store
from orchard.supervise import Backoff, Heartbeat, Steps

log = logging.getLogger("orchard.analytics")
PRUNE_EVERY_NS = 3600 * 1_000_000_000


def reading_time_ns(payload: bytes | bytearray) -> int:
    """When the message's readings were taken: its `ts` (epoch ms or ISO 8601), else (as ingest does) now; a
    second's slack for ingest's own clock. Only to know when the store has caught up, so a bad payload is fine."""
    now = time.time_ns()
    try:
        ts = orjson.loads(payload).get("ts")
        if isinstance(ts, int | float) and not isinstance(ts, bool):
            return min(int(ts * 1_000_000), now)
        if isinstance(ts, str):
            return min(int(datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp() * 1e9), now)
    except (orjson.JSONDecodeError, AttributeError, ValueError, OverflowError):
        pass
    return now - 1_000_000_000


class Analytics:
    """Two loops: a full cycle at least every `every_s` seconds (every plot and device, overdue work orders,
    escalation, the digest), and, between them, a quick cycle over just the plots new telemetry arrived for."""

    def __init__(self, settings: Settings, engine: Engine, dispatcher: Dispatcher, digest: Digest | None,
                 client: Client | None, heartbeat: Heartbeat | None = None,
                 clock: Callable[[], int] = time.time_ns, notices: NoticeDesk | None = None) -> None:
        self.settings, self.engine, self.dispatcher, self.digest, self.client = (settings, engine, dispatcher,
                                                                                 digest, client)
        self.wake = threading.Event()
        self.stop = threading.Event()
        self.subscribed = threading.Event()  # the broker has acknowledged the subscriptions (SUBACK)
        self.pending: dict[str, tuple[str, int, float]] = {}  # device -> (plot, wall ns, monotonic) of its news
        self.pending_lock = threading.Lock()
        self.quick_busy = threading.Event()
        self.cycles = 0
        self.clock = clock  # epoch ns: the time the rules, escalation and the digest judge by
        self.notices = notices  # notices people wrote (orchard/records/notices.py): queued and sent each full cycle
        self.steps = Steps(log)
        self.last_ok = False
        self.untold: list[tuple[Alarm, str]] = []  # alarm changes recorded, their messages not yet queued
        self.pruned_ns = 0  # the records DB's retention ran last (on the clock); 0: at the first full cycle
        limit = max(300.0, 5 * settings.analytics.every_s)
        self.heartbeat = heartbeat or Heartbeat(settings.data_dir, "analytics", limit)

    def on_message(self, _c: Client, _u: object, msg: MQTTMessage) -> None:
        """The message itself is ingest's business; it only says which plot has news."""
        parts = msg.topic.split("/")
        if len(parts) == 5:
            expected = reading_time_ns(msg.payload)
            with self.pending_lock:
                # The newest news wins: an older message of the same device must not hide a newer reading.
                earlier = self.pending.get(parts[3])
                if earlier is None or expected >= earlier[1]:
                    self.pending[parts[3]] = (parts[2], expected, time.monotonic())
            self.wake.set()

    def subscribe(self) -> None:
        if self.client is None:
            return
        s = self.settings
        topics = [(f"{s.mqtt_prefix}/{s.site}/+/+/{kind}", 0) for kind in ("telemetry", "status", "camera")]
        self.client.on_connect = lambda c, *_: c.subscribe(topics)
        self.client.on_subscribe = lambda *_: self.subscribed.set()
        self.client.on_message = self.on_message
        connect_to(self.client, s.mqtt_url)
        self.client.loop_start()

    def run_once(self, plots: set[str] | None = None) -> CycleResult | None:
        """One cycle (all plots, or some): evaluate, tell people what changed, deliver; a full cycle also
        escalates what nobody acked and sends the digest when it is time. Each step is guarded on its own (a
        failing digest never stops escalation); returns the evaluation's result, None when it failed, and sets
        `last_ok` when every step succeeded."""
        result: CycleResult | None = None
        scope = "full" if plots is None else "plots"

        def evaluate() -> None:
            nonlocal result
            try:
                result = self.engine.cycle(self.clock(), plots=plots)
            except CycleFailed as e:  # some changes were recorded before it broke: people still hear of those
                self.untold.extend(e.result.changed)
                raise
            self.untold.extend(result.changed)

        ok = self.steps.run("evaluate", evaluate, scope=scope)
        ok = self.steps.run("tell", self.tell, scope=scope, waiting=len(self.untold)) and ok
        now = self.clock()
        if plots is None:
            ok = self.steps.run("escalate", lambda: self.dispatcher.escalate(now)) and ok
        ok = self.steps.run("deliver", lambda: self.dispatcher.deliver(now), scope=scope) and ok
        if plots is None and self.notices is not None:
            desk = self.notices
            ok = self.steps.run("notices", lambda: desk.cycle(now)) and ok
        if plots is None and self.digest is not None:
            digest = self.digest
            ok = self.steps.run("digest", lambda: digest.send(now)) and ok
        if plots is None and now - self.pruned_ns >= PRUNE_EVERY_NS:
            ok = self.steps.run("prune", lambda: self.prune(now)) and ok
        self.cycles += 1
        self.last_ok = ok
        return result

    def prune(self, now_ns: int) -> None:
        """The records DB's retention (orchard/records/pruning.py), once an hour."""
        deleted = prune(self.engine.records, self.settings.retention, now_ns)
        self.pruned_ns = now_ns
        if deleted:
            event(log, "pruned", **deleted)

    def tell(self) -> None:
        """Queue the messages and work orders for alarm changes not yet told, oldest first; each change is done
        whole (one transaction) before it leaves the list, so a records DB that goes away repeats none of them."""
        while self.untold:
            alarm, change = self.untold[0]
            self.dispatcher.on_changes([(alarm, change)], self.clock())
            self.open_work_order(alarm, change)
            self.untold.pop(0)

    def open_work_order(self, alarm: Alarm, change: str) -> None:
        """A newly raised alarm of an auto-open severity gets a work order for the plot's adviser."""
        orders = self.engine.orders
        if (orders is not None and change == "raised"
                and alarm.severity in self.settings.analytics.work_order_severities
                and alarm.type not in DEVICE_TYPES and alarm.plot and not orders.for_alarm(alarm.id)):
            advisers = self.dispatcher.people.for_plot(alarm.plot, Role.ADVISER)
            words = alarm_text(alarm, "zh", self.engine.site)
            orders.open(plot=alarm.plot, title=words.title, description=words.text, created_by="system",
                        now_ns=self.clock(), source="alarm", alarm_id=alarm.id,
                        assignee=advisers[0].name if advisers else None)

    def look_again(self, news: dict[str, tuple[str, int, float]], result: CycleResult | None) -> None:
        """A message can arrive here before ingest has stored its readings (a slow write under load): a device
        whose newest stored reading is older than its news gets another quick cycle, for up to 30 s."""
        newest = result.newest_ns if result is not None else {}
        late = {d: v for d, v in news.items() if newest.get(d, 0) < v[1] and time.monotonic() - v[2] < 30}
        if late:
            with self.pending_lock:
                for device, v in late.items():
                    self.pending.setdefault(device, v)
            self.wake.set()

    def wait_for_quick(self) -> None:
        """The full cycle steps aside while a quick cycle runs (two cores, one GIL): a reading's alarm first."""
        deadline = time.monotonic() + 2.0
        while self.quick_busy.is_set() and time.monotonic() < deadline:
            time.sleep(0.005)

    def run_full(self) -> None:
        """The full cycle every `every_s`; after a failed step, sooner (1 s, 2 s, 4 s ... up to `every_s`) until
        one succeeds whole, so escalations, digests and overdue work orders catch up soon after an outage."""
        every = self.settings.analytics.every_s
        backoff = Backoff(cap_s=every)
        while not self.stop.is_set():
            started = time.monotonic()
            self.run_once()
            if self.last_ok:
                backoff.ok()
                self.heartbeat.beat(force=True, cycles=self.cycles, failures=self.steps.total(),
                                    mqtt=self.client.is_connected() if self.client is not None else None)
                wait = every - (time.monotonic() - started)
            else:
                wait = backoff.failed()
            self.stop.wait(max(0.0, wait))

    def run(self, own_mqtt: bool = True) -> None:
        """The quick cycles here, the full cycle on its own thread; `own_mqtt` False when the MQTT connection is a
        town's, shared by its villages (analytics/town.py subscribes and hands the messages on)."""
        cfg = self.settings.analytics
        if own_mqtt:
            self.subscribe()
        full = threading.Thread(target=self.run_full, name="full-cycle", daemon=True)
        full.start()
        while not self.stop.is_set():
            if not self.wake.wait(1.0):
                continue
            self.wake.clear()
            self.stop.wait(cfg.settle_s)  # the message is here; its readings reach the store a moment later
            with self.pending_lock:
                news, self.pending = self.pending, {}
            started = time.monotonic()
            if news:
                self.quick_busy.set()
                try:
                    result = self.run_once({plot for plot, _, _ in news.values()})
                finally:
                    self.quick_busy.clear()
                self.steps.run("look_again", functools.partial(self.look_again, news, result))
            self.stop.wait(max(0.0, cfg.min_gap_s - (time.monotonic() - started)))
        full.join(30)
        if self.client is not None and own_mqtt:
            self.client.loop_stop()
            self.client.disconnect()
        self.dispatcher.close()


def build(settings: Settings, with_mqtt: bool = True, clock: Callable[[], int] = time.time_ns,
          site: Site | None = None, client: Client | None = None, heartbeat: str = "analytics",
          channels: Mapping[str, Channel | Robot] | None = None) -> Analytics:
    """Everything the service needs for one village (ORCHARD_SITE, or `site`), in order; nothing is contacted
    until `run`. A town's villages pass the town's MQTT `client` and `channels` (one robot, one per-minute
    budget, whichever village posts) and each its own `heartbeat` name."""
    site = site or site_for(settings)
    store = open_store(settings.store_url, site=site.id)
    records = Records.village(settings)
    book = AlarmBook(records, site.id)
    orders = WorkOrders(records, settings.data_dir / "photos", site=site.id)
    engine = Engine(site, store, records, book, orders=orders,
                    evidence=Evidence(site, SnapshotFiles(settings.snapshot_dir)),
                    ingest_behind_s=settings.analytics.ingest_behind_s,
                    forecast=feed_for(settings.forecast, *site.centre), warnings=warnings_feed(settings.warnings))
    if client is None and with_mqtt:
        client = make_client(settings.mqtt_url, f"orchard-analytics-{settings.site}", protocol=settings.mqtt_protocol)
    cfg = settings.notify
    alerts = AlertPublisher(client, settings.mqtt_prefix, site.id) if client is not None and cfg.mqtt_alerts else None
    if channels is None:
        channels = build_channels(cfg, httpx.Client(timeout=cfg.timeout_s))
    people = People(records, site.id)
    dispatcher = Dispatcher(site, people, Outbox(records), book, channels, cfg, escalation_for(site.escalation),
                            alerts)
    digest = Digest(site, records, people, book, orders, channels, settings.analytics.digest_at)
    if cfg.link_secret is None:
        event(log, "no_link_secret", logging.WARNING,
              hint="set ORCHARD_NOTIFY__LINK_SECRET so messages carry read/ack links")
    desk = NoticeDesk(NoticeBook(records, county_for(settings, site)), people, channels, cfg, site.tz)
    limit = max(300.0, 5 * settings.analytics.every_s)
    service = Analytics(settings, engine, dispatcher, digest, client, clock=clock, notices=desk,
                        heartbeat=Heartbeat(settings.data_dir, heartbeat, limit))
    engine.yield_to_quick = service.wait_for_quick
    return service


def run_analytics(settings: Settings) -> None:
    if settings.analytics.serve.strip():
        from analytics.town import run_town

        run_town(settings)
        return
    service = build(settings)

    def stop(*_: object) -> None:
        service.stop.set()
        service.wake.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, stop)
    event(log, "analytics_started", site=settings.site, rules=len(service.engine.rules))
    service.run()
