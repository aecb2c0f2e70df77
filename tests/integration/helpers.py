"""Run `orchard ingest` as a real process and publish numbered readings to it."""

from __future__ import annotations

import gzip
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
from collections import Counter
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import httpx
import orjson
from paho.mqtt.client import Client, MQTTMessageInfo

from orchard.mqtt import connect_to, make_client
from orchard.store import TimeSeriesStore
from tests.conftest import unique

T_BASE_MS = int(time.time() * 1000) - 3_600_000  # an hour ago: inside the 5-minute future tolerance, always


class IngestProcess:
    running: ClassVar[list[IngestProcess]] = []  # killed at each test's teardown (tests/conftest.py), pass or fail

    def __init__(self, tmp: Path, mqtt_url: str, store_url: str, prefix: str, **extra_env: str) -> None:
        self.env = {
            **os.environ,
            "ORCHARD_MQTT_URL": mqtt_url,
            "ORCHARD_STORE_URL": store_url,
            "ORCHARD_DATA_DIR": str(tmp / "ingest-data"),
            "ORCHARD_MQTT_PREFIX": prefix,
            "ORCHARD_UNKNOWN_DEVICES": "accept",
            "ORCHARD_INGEST__CLIENT_ID": unique("ingest-"),
            "ORCHARD_INGEST__STATS_INTERVAL_S": "2",
            **extra_env,
        }
        self.log = tmp / "ingest.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start it and wait for this start's own `mqtt_connected` line (a restart's log holds earlier ones)."""
        before = self.log.read_text(errors="replace").count("mqtt_connected") if self.log.exists() else 0
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen([sys.executable, "-m", "app", "ingest"], env=self.env, stdout=out,
                                         stderr=subprocess.STDOUT)
        IngestProcess.running.append(self)
        deadline = time.monotonic() + 20
        while self.log.read_text(errors="replace").count("mqtt_connected") <= before:
            assert self.proc.poll() is None, self.log.read_text()
            assert time.monotonic() < deadline, "ingest did not connect:\n" + self.log.read_text()
            time.sleep(0.1)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                raise

    def writer_pid(self) -> int:
        """The writer child process (sensors.worker), from the kernel's list of the ingest process's children."""
        assert self.proc is not None
        children = [int(c) for t in Path(f"/proc/{self.proc.pid}/task").iterdir()
                    for c in (t / "children").read_text().split()]
        # multiprocessing's resource tracker is a child too; the writer is the one started by spawn_main.
        writers = [c for c in children if b"spawn_main" in Path(f"/proc/{c}/cmdline").read_bytes()]
        assert len(writers) == 1, f"expected one writer process among {children}"
        return writers[0]

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


def publisher(mqtt_url: str) -> Client:
    """A QoS 1 publisher with a persistent session: what the broker has not acked, it sends again.

    Acks are tracked by mid in ``client.acked`` (paho flags a message published while disconnected as failed,
    yet keeps it queued and sends it on reconnect).
    """
    c = make_client(mqtt_url, unique("pub-"), persistent=True)
    acked: set[int] = set()
    c.on_publish = lambda _c, _u, mid, _rc, _p: acked.add(mid)
    c.acked = acked  # type: ignore[attr-defined]
    connect_to(c, mqtt_url, persistent=True, session_expiry_s=3600)
    c.loop_start()
    deadline = time.monotonic() + 10
    while not c.is_connected():
        assert time.monotonic() < deadline, "publisher could not connect"
        time.sleep(0.05)
    return c


def reading(k: int) -> tuple[int, float]:
    """Reading number k: its timestamp (ms) and a value that identifies it."""
    return T_BASE_MS + k * 10, round(-20 + (k % 8000) / 100, 2)


def publish_stream(
    client: Client, prefix: str, n: int, rate: float, devices: int = 5, during: Callable[[int], None] | None = None
) -> list[MQTTMessageInfo]:
    """Publish n numbered readings at `rate`/s; during(k) is called before message k (to inject faults)."""
    infos = []
    t0 = time.monotonic()
    for k in range(n):
        if during:
            during(k)
        ts, value = reading(k)
        body = {"ts": ts, "seq": k, "readings": {"air_temp_c": value, "rh_pct": 50.0}}
        infos.append(client.publish(f"{prefix}/site/plot/dev{k % devices}/telemetry", orjson.dumps(body), qos=1))
        delay = t0 + (k + 1) / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
    return infos


def wait_published(client: Client, infos: list[MQTTMessageInfo], timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    acked: set[int] = client.acked  # type: ignore[attr-defined]
    for info in infos:
        while info.mid not in acked:
            assert time.monotonic() < deadline, "broker never acknowledged every publish"
            time.sleep(0.05)


class WriteCounter:
    """An HTTP proxy in front of a real InfluxDB that counts, per telemetry point (device, timestamp), how often
    it was written: the store merges a repeated point into one, so only the writes show a double."""

    def __init__(self, upstream: str) -> None:
        """`upstream`: the store URL (influxdb://host:port/db); `url` is the same store through the proxy."""
        target = urllib.parse.urlsplit(upstream)
        self.upstream = f"http://{target.hostname}:{target.port}"
        self.writes: Counter[tuple[str, int]] = Counter()
        self.lock = threading.Lock()
        counter = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *_: object) -> None:
                pass

            def _forward(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0) or 0))
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
                try:
                    resp = httpx.request(self.command, counter.upstream + self.path, content=body, headers=headers,
                                         timeout=30)
                except httpx.TransportError:  # the store is down: so is the proxy, as far as ingest can tell
                    self.close_connection = True
                    self.connection.close()
                    return
                if self.path.startswith("/write") and resp.status_code == 204:
                    gzipped = self.headers.get("Content-Encoding", "") == "gzip"
                    counter.count(gzip.decompress(body) if gzipped else body)
                self.send_response(resp.status_code)
                for k, v in resp.headers.items():
                    if k.lower() not in ("content-length", "transfer-encoding", "connection", "content-encoding"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(resp.content)))
                self.end_headers()
                self.wfile.write(resp.content)

            do_GET = do_POST = _forward

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = upstream.replace(f"{target.hostname}:{target.port}", f"127.0.0.1:{self.server.server_address[1]}")

    def count(self, body: bytes) -> None:
        with self.lock:
            for line in body.decode().splitlines():
                if line.startswith("telemetry,"):
                    tags = dict(kv.split("=", 1) for kv in line.split(" ", 1)[0].split(",")[1:])
                    self.writes[(tags["device"], int(line.rsplit(" ", 1)[1]))] += 1

    def stop(self) -> None:
        self.server.shutdown()


def assert_all_stored(store: TimeSeriesStore, n: int, devices: int = 5, timeout_s: float = 120,
                      writes: WriteCounter | None = None, doubles_allowed: int = 0) -> int:
    """Every reading 0..n-1 is in the store with its value, checked reading by reading. With `writes`, also how
    often each was written: at most `doubles_allowed` readings more than once (0: exactly once). Returns the
    number written twice or more."""
    start, end = (T_BASE_MS - 1) * 10**6, (T_BASE_MS + n * 10 + 1) * 10**6
    deadline = time.monotonic() + timeout_s
    while True:
        rows = store.range("telemetry", ["air_temp_c"], start, end)
        if len(rows) >= n or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    got = [(r.tags["device"], r.time_ns, r.values["air_temp_c"]) for r in rows]
    want = []
    for k in range(n):
        ts, value = reading(k)
        want.append((f"dev{k % devices}", ts * 10**6, value))
    missing = sorted(set(want) - set(got))
    assert not missing, f"{len(missing)} of {n} readings missing, first: {missing[:5]}"
    assert sorted(got) == sorted(want), "readings with wrong values, or points the test did not send"
    if writes is None:
        return 0
    with writes.lock:
        counts = [writes.writes[(device, ts)] for device, ts, _ in want]
    assert min(counts) >= 1, "a reading is in the store but its write was not seen: the proxy was bypassed"
    doubles = sum(1 for c in counts if c > 1)
    assert doubles <= doubles_allowed, f"{doubles} of {n} readings were written more than once"
    return doubles


class Timer(threading.Thread):
    def __init__(self, delay_s: float, fn: Callable[[], None]) -> None:
        super().__init__(daemon=True)
        self.delay_s, self.fn = delay_s, fn
        self.error: BaseException | None = None

    def run(self) -> None:
        time.sleep(self.delay_s)
        try:
            self.fn()
        except BaseException as e:
            self.error = e
