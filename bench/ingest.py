"""`orchard bench ingest`: how fast ingest drains a backlog, against a bare subscriber in the same run, and
how long a reading takes from publish to stored at a steady rate. Prints one JSON line.

Drain: N messages (8 readings each, from K devices) are queued in a persistent session while its client is
away; then the client connects and is timed until all N are handled. The bare client only parses and counts
(the ceiling on this machine); ingest must have them in the store. Each side runs `repeat` times; medians.
Live: messages published at `rate`/s while ingest runs; the store is polled every 50 ms, and since one ingest
writes its batches in order, message k is stored at the first poll whose count exceeds k.
"""

from __future__ import annotations

import json
import logging
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import ExitStack
from pathlib import Path

import orjson
from paho.mqtt.client import Client, MQTTMessage

from bench.servers import InfluxDB, Mosquitto
from orchard.mqtt import connect_to, make_client
from orchard.settings import parse_store_url
from orchard.store import TimeSeriesStore, open_store

log = logging.getLogger("orchard.bench")
READINGS = ("air_temp_c", "rh_pct", "leaf_wetness_pct", "rain_mm", "wind_speed_ms", "wind_gust_ms", "solar_wm2",
            "canopy_temp_c")
POLL_S = 0.05


def _payload(k: int, ts_ms: int) -> bytes:
    v = (k % 1000) / 100
    return orjson.dumps({"ts": ts_ms, "seq": k, "readings": {r: round(v + i, 2) for i, r in enumerate(READINGS)},
                         "battery_v": 3.9, "rssi_dbm": -90.0})


def _connected(client: Client, timeout_s: float = 15) -> None:
    deadline = time.monotonic() + timeout_s
    while not client.is_connected():
        if time.monotonic() > deadline:
            raise TimeoutError("MQTT client could not connect")
        time.sleep(0.01)


def _publish(mqtt_url: str, prefix: str, n: int, devices: int, ts0_ms: int, rate: float = 0,
             sent_at: list[float] | None = None) -> None:
    pub = make_client(mqtt_url, f"bench-pub-{prefix}")
    pub.max_inflight_messages_set(1000)
    pub.max_queued_messages_set(0)
    connect_to(pub, mqtt_url)
    pub.loop_start()
    _connected(pub)
    infos = []
    t0 = time.monotonic()
    for k in range(n):
        if rate:
            delay = t0 + k / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        ts = int(time.time() * 1000) if sent_at is not None else ts0_ms + k
        if sent_at is not None:
            sent_at.append(time.time())
        infos.append(pub.publish(f"{prefix}/s/p/d{k % devices}/telemetry", _payload(k, ts), qos=1))
        if len(infos) == 30_000:  # message ids are 16-bit: let these complete before the ids wrap around
            for info in infos:
                info.wait_for_publish(60)
            infos = []
    for info in infos:
        info.wait_for_publish(60)
    pub.disconnect()
    pub.loop_stop()


def _session(mqtt_url: str, client_id: str, protocol: str, topic: str) -> None:
    """Create a persistent session with a subscription, then leave: the broker queues for it."""
    c = make_client(mqtt_url, client_id, protocol=protocol, persistent=True)
    done = threading.Event()
    c.on_subscribe = lambda *_: done.set()
    c.on_connect = lambda cl, *_: cl.subscribe(topic, qos=1)
    connect_to(c, mqtt_url, persistent=True, session_expiry_s=3600)
    c.loop_start()
    if not done.wait(15):
        raise TimeoutError("subscription not confirmed")
    c.disconnect()
    c.loop_stop()


def bare_drain(mqtt_url: str, protocol: str, n: int, devices: int, run: int) -> float:
    prefix, cid = f"bench-bare{run}-{time.time_ns()}", f"bench-bare-{time.time_ns()}"
    topic = f"{prefix}/+/+/+/telemetry"
    _session(mqtt_url, cid, protocol, topic)
    _publish(mqtt_url, prefix, n, devices, int(time.time() * 1000) - 3_600_000)
    count = 0
    done = threading.Event()

    def on_message(_c: Client, _u: object, msg: MQTTMessage) -> None:
        nonlocal count
        orjson.loads(msg.payload)
        count += 1
        if count >= n:
            done.set()

    c = make_client(mqtt_url, cid, protocol=protocol, persistent=True)
    c.on_message = on_message
    t0 = time.perf_counter()
    connect_to(c, mqtt_url, persistent=True, session_expiry_s=3600)
    c.loop_start()
    if not done.wait(600):
        raise TimeoutError(f"bare subscriber got {count} of {n}")
    elapsed = time.perf_counter() - t0
    c.disconnect()
    c.loop_stop()
    return n / elapsed


def _count(store: TimeSeriesStore, start_ns: int) -> int:
    rows = store.aggregate("telemetry", ["seq"], ["count"], start_ns, start_ns + 10 * 86400 * 10**9)
    return int(rows[0].values["seq.count"]) if rows else 0


class _IngestProc:
    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.env, self.log_path = env, log_path
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> float:
        """Start `orchard ingest`; returns when it has connected (the drain timer starts there)."""
        self.log_path.write_bytes(b"")
        with self.log_path.open("ab") as out:
            self.proc = subprocess.Popen([sys.executable, "-m", "app", "ingest"], env=self.env, stdout=out,
                                         stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while b"mqtt_connected" not in self.log_path.read_bytes():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("ingest did not start: " + self.log_path.read_text()[-2000:])
            time.sleep(0.005)
        return time.perf_counter()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(60)


def _env(mqtt_url: str, store_url: str, prefix: str, data_dir: Path, protocol: str) -> dict[str, str]:
    import os

    return {**os.environ, "ORCHARD_MQTT_URL": mqtt_url, "ORCHARD_STORE_URL": store_url,
            "ORCHARD_MQTT_PREFIX": prefix, "ORCHARD_DATA_DIR": str(data_dir), "ORCHARD_UNKNOWN_DEVICES": "accept",
            "ORCHARD_MQTT_PROTOCOL": protocol, "ORCHARD_INGEST__CLIENT_ID": f"bench-ingest-{prefix}",
            "ORCHARD_INGEST__STATS_INTERVAL_S": "3600"}


def _fresh_store_url(store_url: str, tag: str) -> str:
    t = parse_store_url(store_url)
    if t.kind == "sqlite":
        assert t.path is not None
        return f"sqlite:///{t.path.with_name(f'{t.path.stem}-{tag}.sqlite')}"
    return store_url.rsplit("/", 1)[0] + f"/{t.database}_{tag}" + (f"?token={t.token}" if t.token else "")


def _ingest_procs(
    mqtt_url: str, url: str, prefix: str, protocol: str, tmp: Path, processes: int
) -> list[_IngestProc]:
    """One ingest process, or several splitting a shared subscription ($share/<group>/...)."""
    procs = []
    for i in range(processes):
        env = _env(mqtt_url, url, prefix, tmp / f"{prefix}-{i}", protocol)
        env["ORCHARD_INGEST__CLIENT_ID"] += f"-{i}"
        if processes > 1:
            env["ORCHARD_INGEST__SHARED_GROUP"] = f"g{prefix}"
        procs.append(_IngestProc(env, tmp / f"{prefix}-{i}.log"))
    return procs


def ingest_drain(mqtt_url: str, store_url: str, protocol: str, n: int, devices: int, run: int, tmp: Path,
                 processes: int = 1) -> float:
    prefix = f"benchi{run}x{time.time_ns()}"
    url = _fresh_store_url(store_url, prefix)
    procs = _ingest_procs(mqtt_url, url, prefix, protocol, tmp, processes)
    for p in procs:
        p.start()  # creates the session and its subscriptions
    for p in procs:
        p.stop()
    ts0 = int(time.time() * 1000) - 3_600_000
    _publish(mqtt_url, prefix, n, devices, ts0)
    store = open_store(url)
    starts = [p.start() for p in procs]
    t0 = starts[0]
    try:
        while _count(store, (ts0 - 1) * 10**6) < n:
            if time.perf_counter() - t0 > 600:
                raise TimeoutError("ingest did not drain within 10 minutes")
            time.sleep(POLL_S)
        return n / (time.perf_counter() - t0)
    finally:
        for p in procs:
            p.stop()
        store.close()


def live_latency(mqtt_url: str, store_url: str, protocol: str, rate: int, seconds: float, devices: int,
                 tmp: Path) -> dict[str, float]:
    prefix = f"benchlive{time.time_ns()}"
    url = _fresh_store_url(store_url, prefix)
    proc = _IngestProc(_env(mqtt_url, url, prefix, tmp / prefix, protocol), tmp / f"{prefix}.log")
    proc.start()
    store = open_store(url)
    n = int(rate * seconds)
    sent_at: list[float] = []
    polls: list[tuple[float, int]] = []
    start_ns = time.time_ns() - 60 * 10**9
    stop = threading.Event()

    def poll() -> None:
        while not stop.is_set():
            c = _count(store, start_ns)
            polls.append((time.time(), c))
            if c >= n:
                return
            time.sleep(POLL_S)

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    try:
        _publish(mqtt_url, prefix, n, devices, 0, rate=rate, sent_at=sent_at)
        poller.join(120)
    finally:
        stop.set()
        proc.stop()
        store.close()
    latencies, i = [], 0
    for k, t_pub in enumerate(sent_at):
        while i < len(polls) and polls[i][1] <= k:
            i += 1
        if i == len(polls):
            raise RuntimeError(f"message {k} of {n} never reached the store")
        latencies.append(max(0.0, polls[i][0] - t_pub))
    latencies.sort()
    achieved = n / (sent_at[-1] - sent_at[0]) if n > 1 else 0
    return {"live_rate": round(achieved, 1), "live_p50_s": round(latencies[len(latencies) // 2], 3),
            "live_p99_s": round(latencies[int(len(latencies) * 0.99) - 1], 3), "live_messages": n}


def run_bench(*, messages: int, devices: int, rate: int, live_seconds: float, repeat: int,
              mqtt_url: str | None, store_url: str | None, protocol: str = "5", processes: int = 1,
              autosave: tuple[str, ...] = ()) -> dict[str, object]:
    """With `autosave` (Mosquitto persistence settings, `interval:30`, `changes:1000`), the whole measurement
    once per setting, each on its own broker with its own bare baseline: what crash safety costs."""
    if autosave and mqtt_url is None:
        results = {a: _run(messages=messages, devices=devices, rate=rate, live_seconds=live_seconds, repeat=repeat,
                           mqtt_url=None, store_url=store_url, protocol=protocol, processes=processes, autosave=a)
                   for a in autosave}
        result: dict[str, object] = {"autosave": results}
    else:
        result = _run(messages=messages, devices=devices, rate=rate, live_seconds=live_seconds, repeat=repeat,
                      mqtt_url=mqtt_url, store_url=store_url, protocol=protocol, processes=processes, autosave=None)
    print(json.dumps(result), flush=True)
    return result


def _run(*, messages: int, devices: int, rate: int, live_seconds: float, repeat: int, mqtt_url: str | None,
         store_url: str | None, protocol: str, processes: int, autosave: str | None) -> dict[str, object]:
    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="orchard-bench-")))
        if mqtt_url is None:
            m = stack.enter_context(Mosquitto(tmp / "mosquitto", autosave=autosave))
            mqtt_url = m.url
        if store_url is None:
            i = stack.enter_context(InfluxDB(tmp / "influxdb"))
            store_url = i.url
        bare, drain = [], []
        for run in range(repeat):  # interleaved, so drift in machine load hits both sides alike
            bare.append(bare_drain(mqtt_url, protocol, messages, devices, run))
            drain.append(ingest_drain(mqtt_url, store_url, protocol, messages, devices, run, tmp, processes))
            print(f"run {run + 1}/{repeat}{f' ({autosave})' if autosave else ''}: bare {bare[-1]:.0f} msg/s, "
                  f"ingest {drain[-1]:.0f} msg/s", file=sys.stderr, flush=True)
        live = live_latency(mqtt_url, store_url, protocol, rate, live_seconds, devices, tmp)
        b, d = statistics.median(bare), statistics.median(drain)
        return {
            "messages": messages, "devices": devices, "ingest_processes": processes,
            "readings_per_message": len(READINGS),
            "drain_msgs_per_s": round(d, 1), "bare_msgs_per_s": round(b, 1), "ratio": round(d / b, 3),
            "drain_runs": [round(x, 1) for x in drain], "bare_runs": [round(x, 1) for x in bare],
            **live, "poll_interval_s": POLL_S,
            "broker": mqtt_url.split("@")[-1], "store": parse_store_url(store_url).kind,
        }


