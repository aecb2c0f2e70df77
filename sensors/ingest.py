"""`orchard ingest`: MQTT telemetry into the time-series store, with nothing lost.

paho's network thread only queues each message; one writer thread takes batches, validates them, writes the
points to the store (or, when it is away, to the disk spool), records dead letters and last-seen times, and
only then acknowledges the batch's messages (manual QoS 1 acks). Whatever is not acked, the broker keeps in the
persistent session and delivers again: a crash anywhere costs a duplicate, which the store's idempotent writes
absorb, never a loss.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from dataclasses import asdict, dataclass
from typing import Any

from paho.mqtt.client import Client, ConnectFlags, DisconnectFlags, MQTTMessage
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from orchard.logs import event
from orchard.models import DeadLetter, Point
from orchard.mqtt import connect_to, make_client
from orchard.records import Records, Sighting
from orchard.settings import Settings, UnknownDevicePolicy
from orchard.store import StoreError, TimeSeriesStore
from sensors.payload import Refused, parse_chirpstack, parse_native, route, to_points
from sensors.spool import Spool

log = logging.getLogger("orchard.ingest")

# (topic, payload, mid, qos, received_ns, connection generation)
Message = tuple[str, bytes | bytearray, int, int, int, int]


@dataclass(slots=True)
class Counters:
    received: int = 0
    stored: int = 0  # messages whose readings went to the store
    spooled: int = 0  # ... or to the disk spool while the store was away
    rejected: int = 0  # messages with a dead-letter entry (fully or partly refused)
    replayed_points: int = 0  # spooled points later written to the store


def subscriptions(settings: Settings) -> list[str]:
    topics = [f"{settings.mqtt_prefix}/+/+/+/telemetry", f"{settings.mqtt_prefix}/+/+/+/status",
              "application/+/device/+/event/up"]
    group = settings.ingest.shared_group
    return [f"$share/{group}/{t}" for t in topics] if group else topics


class Ingest:
    def __init__(
        self, settings: Settings, store: TimeSeriesStore, records: Records, spool: Spool, client: Client | None = None
    ) -> None:
        self.settings = settings
        self.cfg = settings.ingest
        self.store = store
        self.records = records
        self.spool = spool
        self.client = client or make_client(
            settings.mqtt_url, self.cfg.client_id, protocol=settings.mqtt_protocol, persistent=True, manual_ack=True
        )
        self.counters = Counters()
        self.connected = threading.Event()
        self._queue: queue.Queue[Message] = queue.Queue(maxsize=self.cfg.queue_limit)
        self._gen = 0  # bumped on every (re)connect: acks for an older connection's ids must not be sent
        self._closing = threading.Event()
        self._done = threading.Event()
        self._writer = threading.Thread(target=self._write_loop, name="ingest-writer", daemon=True)
        self._statuses: dict[str, str] = {}
        self._by_eui: dict[str, Any] = {}
        self._registry_read = 0.0
        self._last_stats = time.monotonic()
        # Last-seen times are not worth an fsync per batch: gathered here, written every few seconds.
        self._sightings: dict[str, Sighting] = {}
        self._sightings_flushed = time.monotonic()
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message

    # -- lifecycle --------------------------------------------------------------------------------------------
    def start(self) -> None:
        self._refresh_registry(force=True)
        self._writer.start()
        connect_to(
            self.client,
            self.settings.mqtt_url,
            persistent=True,
            session_expiry_s=self.cfg.session_expiry_s,
            receive_maximum=self.cfg.queue_limit,
        )
        self.client.loop_start()
        event(log, "ingest_started", mqtt=self.settings.mqtt_url.split("@")[-1], client_id=self.cfg.client_id,
              unknown_devices=self.settings.unknown_devices.value, spooled_batches=len(self.spool))

    def stop(self, timeout_s: float = 30) -> None:
        """Stop reading, store and ack what was read, then disconnect; the session keeps the rest."""
        self._closing.set()
        self._done.wait(timeout_s)
        self.client.disconnect()
        self.client.loop_stop()
        self._log_stats(final=True)

    # -- paho callbacks (network thread: keep them short and never raise) ---------------------------------------
    def _on_connect(
        self, client: Client, userdata: Any, flags: ConnectFlags, rc: ReasonCode, props: Properties | None
    ) -> None:
        if rc.is_failure:
            event(log, "mqtt_connect_failed", logging.ERROR, reason=str(rc))
            return
        self._gen += 1
        client.subscribe([(t, 1) for t in subscriptions(self.settings)])
        self.connected.set()
        event(log, "mqtt_connected", session_present=flags.session_present, generation=self._gen)

    def _on_disconnect(
        self, client: Client, userdata: Any, flags: DisconnectFlags, rc: ReasonCode, props: Properties | None
    ) -> None:
        self.connected.clear()
        if not self._closing.is_set():
            event(log, "mqtt_disconnected", logging.WARNING, reason=str(rc))

    def _on_message(self, client: Client, userdata: Any, msg: MQTTMessage) -> None:
        if self._closing.is_set():
            return  # not acked: the broker delivers it again next time
        try:
            topic = msg.topic
        except UnicodeDecodeError:
            topic = msg._topic.decode("utf-8", "replace")
        # Blocks when the writer is behind: paho stops reading the socket, TCP pushes back on the broker.
        self._queue.put((topic, msg.payload, msg.mid, msg.qos, time.time_ns(), self._gen))

    # -- writer thread ----------------------------------------------------------------------------------------
    def _take_batch(self) -> list[Message]:
        try:
            first = self._queue.get(timeout=0.5)
        except queue.Empty:
            return []
        batch = [first]
        deadline = time.monotonic() + self.cfg.batch_wait_ms / 1000
        while len(batch) < self.cfg.batch_size:
            try:
                batch.append(self._queue.get_nowait())
            except queue.Empty:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                try:
                    batch.append(self._queue.get(timeout=left))
                except queue.Empty:
                    break
        return batch

    def _write_loop(self) -> None:
        while True:
            closing = self._closing.is_set()
            batch = self._take_batch()
            try:
                self._refresh_registry()
                if len(self.spool):
                    self._replay_spool()
                if batch:
                    self._handle(batch)
                self._flush_sightings(final=closing)
                self._log_stats()
            except Exception:  # never die: the messages stay unacked and come back
                log.exception("writer_error")
                time.sleep(1)
            if closing and self._queue.empty():
                self._done.set()
                return

    def _refresh_registry(self, force: bool = False) -> None:
        # Approvals made from the CLI or dashboard take effect within a few seconds.
        if force or time.monotonic() - self._registry_read > 5:
            self._statuses = self.records.device_statuses()
            self._by_eui = self.records.devices_by_eui()
            self._registry_read = time.monotonic()

    def _handle(self, batch: list[Message]) -> None:
        points: list[Point] = []
        origin: dict[int, Message] = {}  # id(point) -> its message, to dead-letter what the store refuses
        letters: list[tuple[DeadLetter, bool]] = []
        sightings = self._sightings
        presence: list[tuple[str, str, str, bool, int]] = []
        policy = self.settings.unknown_devices
        tol = self.cfg.future_tolerance_s * 1_000_000_000
        stored_msgs = 0

        for m in batch:
            topic, payload, _, _, rx, _ = m
            r = None
            try:
                r = route(topic, self.settings.mqtt_prefix)
                if r.kind == "status":
                    state = payload.strip().lower()
                    if state not in (b"online", b"offline"):
                        raise Refused(f"bad_status: {payload[:40]!r} is not online/offline")
                    presence.append((r.device, r.site, r.plot, state == b"online", rx))
                    continue
                if r.kind == "chirpstack":
                    dev = self._by_eui.get(r.device)
                    if dev is None:
                        raise Refused(f"unknown_dev_eui: {r.device} is not registered to any device")
                    telemetry, problems = parse_chirpstack(payload, dev, rx, tol)
                else:
                    telemetry, problems = parse_native(r, payload, rx, tol)
                if telemetry is not None:
                    status = self._statuses.get(telemetry.device)
                    if status == "rejected":
                        raise Refused(f"rejected_device: {telemetry.device} was rejected by an operator")
                    if status not in ("approved", "new"):
                        if policy is UnknownDevicePolicy.HOLD:
                            letters.append((self._letter(m, r, telemetry.device, "held_unknown_device: waiting for "
                                                         "an operator to approve the device"), True))
                            sightings[telemetry.device] = Sighting(telemetry.device, telemetry.site, telemetry.plot,
                                                                   rx, "pending")
                            continue
                        if policy is UnknownDevicePolicy.REJECT:
                            sightings[telemetry.device] = Sighting(telemetry.device, telemetry.site, telemetry.plot,
                                                                   rx, "pending")
                            raise Refused(f"unknown_device: {telemetry.device} is not registered")
                    new = to_points(telemetry)
                    for p in new:
                        origin[id(p)] = m
                    points.extend(new)
                    stored_msgs += 1
                    prev = sightings.get(telemetry.device)
                    if prev is None or telemetry.time_ns > prev.time_ns:
                        sightings[telemetry.device] = Sighting(
                            telemetry.device, telemetry.site, telemetry.plot, telemetry.time_ns,
                            "approved" if status == "approved" else "new")
                if problems:
                    letters.append((self._letter(m, r, r.device, "; ".join(problems)), False))
            except Refused as e:
                letters.append((self._letter(m, r, r.device if r else None, str(e)), False))
            except Exception as e:  # a bug must not lose the message: keep it with the error
                log.exception("payload_handling_error")
                letters.append((self._letter(m, r, r.device if r else None, f"internal_error: {e!r}"), False))

        if points:
            for rej in self._store_or_spool(points, stored_msgs):
                letters.append((self._letter(origin[id(rej.point)], None, rej.point.tags.get("device"),
                                             f"store_rejected: {rej.reason}"), False))
        # Dead letters must be on disk before their messages are acked; a new device is recorded at once.
        new_devices = [s for d, s in sightings.items() if d not in self._statuses]
        if letters or presence or new_devices:
            self._record(letters, new_devices, presence)
            for s in new_devices:
                self._statuses.setdefault(s.device, s.status)
        self.counters.received += len(batch)
        self.counters.rejected += len(letters)
        self._ack(batch)

    def _record(self, letters: list[tuple[DeadLetter, bool]], sightings: Any, presence: Any) -> None:
        while True:
            try:
                self.records.record_batch(letters, sightings, presence)
                return
            except Exception:  # the disk is full or locked: hold the acks until it is back
                log.exception("records_write_failed")
                time.sleep(1)

    def _flush_sightings(self, final: bool = False) -> None:
        if self._sightings and (final or time.monotonic() - self._sightings_flushed > 5):
            self._record([], list(self._sightings.values()), [])
            self._sightings = {}
            self._sightings_flushed = time.monotonic()

    def _letter(self, m: Message, r: Any, device: str | None, reason: str) -> DeadLetter:
        return DeadLetter(m[4], m[0], bytes(m[1]), reason, device, r.site if r else None, r.plot if r else None)

    def _store_or_spool(self, points: list[Point], n_msgs: int) -> tuple[Any, ...]:
        if not len(self.spool):  # keep order: nothing overtakes what is already spooled
            try:
                result = self.store.write(points)
                self.counters.stored += n_msgs
                return result.rejected
            except StoreError as e:
                event(log, "store_unavailable", logging.WARNING, error=str(e)[:300], points=len(points))
        while True:
            try:
                path = self.spool.append(points)
                break
            except OSError:
                log.exception("spool_write_failed")
                time.sleep(1)
        self.counters.spooled += n_msgs
        event(log, "batch_spooled", file=path.name, points=len(points))
        return ()

    def _replay_spool(self) -> None:
        for path in self.spool.files():
            points = self.spool.read(path)
            try:
                result = self.store.write(points)
            except StoreError:
                return  # still away; the next batch tries again
            if result.rejected:
                letters = [(DeadLetter(time.time_ns(), "spool", repr(r.point).encode(),
                                       f"store_rejected: {r.reason}", r.point.tags.get("device")), False)
                           for r in result.rejected]
                self.records.record_batch(letters, (), ())
            self.spool.remove(path)
            self.counters.replayed_points += result.written
            event(log, "spool_replayed", file=path.name, points=result.written, left=len(self.spool))

    def _ack(self, batch: list[Message]) -> None:
        gen = self._gen
        for _, _, mid, qos, _, g in batch:
            if qos and g == gen:  # an older connection's ids may now name other messages
                self.client.ack(mid, qos)

    def _log_stats(self, final: bool = False) -> None:
        now = time.monotonic()
        if not final and now - self._last_stats < self.cfg.stats_interval_s:
            return
        self._last_stats = now
        c = asdict(self.counters)
        event(log, "ingest_stats", queue=self._queue.qsize(), spool_files=len(self.spool), **c)
        # Best effort: the counters are in the log line too, and the spool covers the data itself.
        with contextlib.suppress(StoreError):
            self.store.write([Point("ingest_stats", {"client_id": self.cfg.client_id}, c, time.time_ns())])
