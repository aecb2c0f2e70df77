"""Months of sensor history in seconds, for benchmarks: line protocol straight from the weather model.

`orchard simulate --backfill-days` goes through the full message path (payload, parse, validate), about 40 us a
message: 90 days of 50 devices would take over an hour. Here the same weather model (sensors/weather.py) is
computed once per plot and minute, sensor noise comes from numpy, and lines are formatted in bulk. The series
and fields are the ones ingest writes (sensors/payload.to_points); there are no faults, gaps or bad messages.
"""

from __future__ import annotations

import gzip
import threading
import time
from collections.abc import Iterator
from queue import Queue

import httpx
import numpy as np

from orchard.catalogue import TELEMETRY
from orchard.logs import progress
from orchard.models import Point
from orchard.settings import Settings, parse_store_url
from orchard.store import open_store
from orchard.store.lineproto import line
from sensors.simulate import SimDevice
from sensors.weather import weather

DAY_S = 86400
# Field order is the one lineproto.line() sorts to, so these lines match what ingest writes.
WS_FIELDS = ("air_temp_c", "battery_v", "canopy_temp_c", "leaf_wetness_pct", "rain_mm", "rh_pct", "rssi_dbm",
             "solar_wm2", "wind_gust_ms", "wind_speed_ms")
SOIL_FIELDS = ("soil_ec_dsm", "soil_temp_c", "soil_vwc_pct")
DEPTHS = (20, 40)


def _prefix(site: str, d: SimDevice, depth: int | None = None) -> str:
    """The measurement and tags of a device's series, as lineproto writes them (escaping included)."""
    tags = {"site": site, "plot": d.plot.plot, "device": d.device}
    if depth is not None:
        tags["depth_cm"] = str(depth)
    return line(Point(TELEMETRY, tags, {"x": 1.0}, 0)).rsplit(" ", 2)[0]


def _weather(seed: int, times: np.ndarray, cold_pool_c: float) -> dict[str, np.ndarray]:
    ws = [weather(seed, float(t), cold_pool_c) for t in times]
    return {k: np.fromiter((getattr(w, k) for w in ws), float, len(ws))
            for k in ("air_temp_c", "rh_pct", "rain_mmh", "solar_wm2", "wind_ms", "gust_ms", "dry_hours")}


def day_lines(site: str, devices: list[SimDevice], seed: int, day_start_s: int, interval_s: int) -> list[str]:
    """Every line of one day (UTC-aligned) for all devices."""
    times = np.arange(day_start_s, day_start_s + DAY_S, interval_s, dtype=np.int64)
    ns = (times * 1_000_000_000).tolist()
    rng = np.random.default_rng([seed, day_start_s // DAY_S])
    per_plot: dict[str, dict[str, np.ndarray]] = {}
    out: list[str] = []
    n = len(times)
    local_hour = (times / 3600 + 8) % 24
    summer = 0.5 - 0.5 * np.cos(2 * np.pi * ((times / DAY_S) % 365 - 15) / 365)
    for d in devices:
        w = per_plot.get(d.plot.plot)
        if w is None:
            w = per_plot[d.plot.plot] = _weather(seed, times, d.plot.cold_pool_c)
        battery = 3.95 + 0.08 * np.clip(np.sin(np.pi * (local_hour - 7) / 12), 0, None) + rng.normal(0, 0.005, n)
        rssi = d.rssi_base + rng.normal(0, 3, n)
        if d.kind == "weather_station":
            temp = w["air_temp_c"] + rng.normal(0, 0.15, n)
            wet = np.where(w["rain_mmh"] > 0, 100.0, np.clip(100 - 30 * w["dry_hours"], 0, None))
            cols = (temp, battery, temp + 2.5 * w["solar_wm2"] / 1000 - np.where(w["solar_wm2"] == 0, 0.8, 0),
                    wet, w["rain_mmh"] * interval_s / 3600, np.clip(w["rh_pct"] + rng.normal(0, 1.5, n), 0, 100),
                    rssi, np.clip(w["solar_wm2"] + rng.normal(0, 8, n), 0, None) * (w["solar_wm2"] > 0),
                    w["gust_ms"] + np.abs(rng.normal(0, 0.8, n)),
                    np.clip(w["wind_ms"] + rng.normal(0, 0.3, n), 0, None))
            fields = ",".join(f"{f}=%.{3 if f == 'battery_v' else 2}f" for f in WS_FIELDS)
            fmt = f"{_prefix(site, d)} {fields} %d"
            out += [fmt % row for row in zip(*(c.round(3).tolist() for c in cols), ns, strict=True)]
        else:
            fmt = _prefix(site, d) + " battery_v=%.3f,rssi_dbm=%.1f %d"
            out += [fmt % row for row in zip(battery.tolist(), rssi.tolist(), ns, strict=True)]
            p = d.plot
            for depth, damp in zip(DEPTHS, (1.0, 0.6), strict=True):
                index = 0.58 + 0.27 * (1 - summer) + damp * 0.1 * np.sin(times / (5 * DAY_S)) + rng.normal(0, 0.005, n)
                vwc = np.minimum(100.0, p.wilting_point + (p.field_capacity - p.wilting_point) * index)
                seasonal = 16.3 - 9.5 * np.cos(2 * np.pi * ((times / DAY_S) % 365 - 30) / 365)
                soil_t = seasonal + (w["air_temp_c"] - seasonal) * (0.25 if depth == 20 else 0.1)
                ec = 0.6 + 0.5 * np.clip(1 - index, 0, None)
                fmt = _prefix(site, d, depth) + " soil_ec_dsm=%.3f,soil_temp_c=%.2f,soil_vwc_pct=%.2f %d"
                out += [fmt % row for row in zip(ec.tolist(), soil_t.tolist(), vwc.tolist(), ns, strict=True)]
    return out


def history(site: str, devices: list[SimDevice], seed: int, days: int, end_s: float,
            interval_s: int = 60) -> Iterator[list[str]]:
    """`days` whole UTC days ending with the one containing end_s (readings after end_s left out), a day at a
    time."""
    last_day = int(end_s // DAY_S) * DAY_S
    end_ns = int(end_s * 1e9)
    for day in range(last_day - (days - 1) * DAY_S, last_day + DAY_S, DAY_S):
        lines = day_lines(site, devices, seed, day, interval_s)
        if day == last_day:
            lines = [s for s in lines if int(s.rsplit(" ", 1)[1]) <= end_ns]
        yield lines


def write_history(settings: Settings, devices: list[SimDevice], seed: int, days: int, end_s: float,
                  interval_s: int = 60) -> int:
    """Post the history to InfluxDB's /write in gzip batches, generating one day while the last one is sent.

    InfluxDB only: line protocol goes to it as is (SQLite would parse every line back). Returns lines written.
    """
    if not settings.store_url.startswith("influxdb"):
        raise ValueError("快速回填只支持 InfluxDB / --fast needs an InfluxDB store (ORCHARD_STORE_URL=influxdb://...)")
    store = open_store(settings.store_url)
    store.ensure_ready()
    store.close()
    target = parse_store_url(settings.store_url)
    headers = {"Content-Encoding": "gzip"} | ({"Authorization": f"Token {target.token}"} if target.token else {})
    http = httpx.Client(base_url=target.base_url, timeout=120, headers=headers,
                        auth=(target.username, target.password or "") if target.username else None)
    queue: Queue[list[str] | None] = Queue(maxsize=2)
    written = [0]
    failure: list[BaseException] = []

    def send() -> None:
        try:
            while (lines := queue.get()) is not None:
                for i in range(0, len(lines), 20_000):
                    chunk = lines[i:i + 20_000]
                    body = gzip.compress("\n".join(chunk).encode(), 1)
                    for attempt in range(10):  # 500 "cache max memory size exceeded" while it compacts: wait
                        r = http.post("/write", params={"db": target.database, "precision": "ns"}, content=body)
                        if r.status_code == 204:
                            break
                        if r.status_code < 500 or attempt == 9:
                            raise RuntimeError(f"InfluxDB /write answered {r.status_code}: {r.text[:300]}")
                        time.sleep(1 + attempt)
                    written[0] += len(chunk)
        except BaseException as e:
            failure.append(e)
            while queue.get() is not None:  # unblock the producer
                pass

    sender = threading.Thread(target=send, name="history-writer", daemon=True)
    sender.start()
    with progress() as bar:
        task = bar.add_task(f"InfluxDB: {days} d x {len(devices)} devices, {interval_s} s", total=days)
        for lines in history(settings.site, devices, seed, days, end_s, interval_s):
            if failure:
                break
            queue.put(lines)
            bar.advance(task)
        queue.put(None)
        sender.join()
    http.close()
    if failure:
        raise failure[0]
    return written[0]
