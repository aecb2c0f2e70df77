"""`orchard ingest`: MQTT telemetry into the time-series store, with nothing lost.

paho's network thread only queues each message. A dispatcher thread takes batches off the queue and hands each
to the writer (`sensors.writer`: validate, store or spool, dead-letter; by default in a process of its own,
`sensors.worker`), and acknowledges the batch's messages (manual QoS 1 acks) only when the writer says they are
durable. Whatever is not acked, the broker keeps in the persistent session and delivers again: a crash anywhere
costs a duplicate, which the store's idempotent writes absorb, never a loss.
"""

from __future__ import annotations

import functools
import logging
import queue
import threading
import time
from typing import Any, Protocol

from paho.mqtt.client import Client, ConnectFlags, DisconnectFlags, MQTTMessage
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from orchard.logs import event
from orchard.mqtt import connect_to, make_client
from orchard.settings import Settings
from orchard.supervise import Backoff, Heartbeat, Steps
from sensors.writer import Received

log = logging.getLogger("orchard.ingest")

# The dispatcher beats after every batch and idle half-second; this long without, ingest is stuck (the writer
# cannot store for two minutes) and `orchard check --service ingest` fails.
HEARTBEAT_LIMIT_S = 120.0

# (topic, payload, mid, qos, received_ns, connection generation)
Message = tuple[str, bytes | bytearray, int, int, int, int]


class Writer(Protocol):
    """BatchWriter in this process, or WriterProcess in a child: durable when handle() returns."""

    def handle(self, batch: list[Received]) -> None: ...

    def tick(self, final: bool = False) -> None: ...

    def close(self) -> None: ...


def subscriptions(settings: Settings) -> list[str]:
    topics = [f"{settings.mqtt_prefix}/+/+/+/telemetry", f"{settings.mqtt_prefix}/+/+/+/status",
              "application/+/device/+/event/+",  # ChirpStack v4: up, status, join, log (others are dropped)
              "v3/+/devices/+/up"]  # The Things Stack v3 uplinks
    group = settings.ingest.shared_group
    return [f"$share/{group}/{t}" for t in topics] if group else topics


class Ingest:
    def __init__(self, settings: Settings, writer: Writer, client: Client | None = None) -> None:
        self.settings = settings
        self.cfg = settings.ingest
        self.writer = writer
        self.client = client or make_client(
            settings.mqtt_url, self.cfg.client_id, protocol=settings.mqtt_protocol, persistent=True, manual_ack=True
        )
        self.received = 0
        self.connected = threading.Event()
        self.subscribed = threading.Event()  # the broker has acknowledged this connection's subscriptions (SUBACK)
        self._queue: queue.Queue[Message] = queue.Queue(maxsize=self.cfg.queue_limit)
        self._gen = 0  # bumped on every (re)connect: acks for an older connection's ids must not be sent
        self._closing = threading.Event()
        self._done = threading.Event()
        self.steps = Steps(log)
        self.heartbeat = Heartbeat(settings.data_dir, "ingest", HEARTBEAT_LIMIT_S)
        self._dispatcher = threading.Thread(target=self._dispatch_loop, name="ingest-dispatcher", daemon=True)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *_: self.subscribed.set()

    # -- lifecycle --------------------------------------------------------------------------------------------
    def start(self) -> None:
        self._dispatcher.start()
        connect_to(
            self.client,
            self.settings.mqtt_url,
            persistent=True,
            session_expiry_s=self.cfg.session_expiry_s,
            receive_maximum=self.cfg.queue_limit,
        )
        self.client.loop_start()
        event(log, "ingest_started", mqtt=self.settings.mqtt_url.split("@")[-1], client_id=self.cfg.client_id,
              unknown_devices=self.settings.unknown_devices.value)

    def stop(self, timeout_s: float = 30) -> None:
        """Stop reading, store and ack what was read, then disconnect; the session keeps the rest."""
        self._closing.set()
        self._done.wait(timeout_s)
        self.client.disconnect()
        self.client.loop_stop()

    # -- paho callbacks (network thread: keep them short and never raise) ---------------------------------------
    def _on_connect(
        self, client: Client, userdata: Any, flags: ConnectFlags, rc: ReasonCode, props: Properties | None
    ) -> None:
        if rc.is_failure:
            event(log, "mqtt_connect_failed", logging.ERROR, reason=str(rc))
            return
        self._gen += 1
        self.subscribed.clear()
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
        self.received += 1

    # -- dispatcher thread ------------------------------------------------------------------------------------
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

    def _dispatch_loop(self) -> None:
        while True:
            closing = self._closing.is_set()
            batch = self._take_batch()
            if batch and not self._write(batch):
                self._done.set()  # closing while the writer cannot store: unacked, the broker keeps them
                return
            if self.steps.run("writer_tick", functools.partial(self.writer.tick, closing and self._queue.empty())):
                self.heartbeat.beat(received=self.received, mqtt=self.client.is_connected())
            if closing and self._queue.empty():
                self._done.set()
                return

    def _write(self, batch: list[Message]) -> bool:
        """Hand the batch to the writer until it is durable, then ack it. A failure (records DB away, the writer
        process gone) is retried in place with a growing pause: the batch is never forgotten, and its messages
        stay unacked meanwhile. False only when ingest is stopping and the writer still fails."""
        backoff = Backoff(cap_s=30)
        received = [(m[0], m[1], m[4]) for m in batch]
        while not self.steps.run("write_batch", lambda: self.writer.handle(received), messages=len(batch)):
            if self._closing.is_set() and backoff.failures >= 3:
                return False
            time.sleep(backoff.failed())
        self._ack(batch)
        return True

    def _ack(self, batch: list[Message]) -> None:
        gen = self._gen
        for _, _, mid, qos, _, g in batch:
            if qos and g == gen:  # an older connection's ids may now name other messages
                self.client.ack(mid, qos)
