"""`orchard simulate`: the village's sensors, publishing the telemetry contract of docs/architecture.md.

One site of plots of 'Hongyang' (红阳) and 'Hayward' (海沃德) kiwifruit, with a weather station and a soil probe per
plot. Readings follow sensors/weather.py; faults are put in on purpose, deterministically for a seed:
a stuck sensor, spikes, dropouts, a failing battery, a device that drops off (its last will says offline), and
now and then a malformed message. `--backfill-days` writes history straight to the store instead.
"""

from __future__ import annotations

import contextlib
import logging
import math
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson
from paho.mqtt.client import Client

from orchard.logs import event, progress
from orchard.models import Device, DeviceStatus, Point
from orchard.mqtt import connect_to, make_client, status_topic, telemetry_topic
from orchard.records import Records
from orchard.settings import Settings
from orchard.site import SHIPPED, DeviceKind, Site, load_site, site_for
from orchard.store import open_store
from sensors.payload import Refused, parse_native, route, to_points
from sensors.weather import rain_history, stable_rng, weather

log = logging.getLogger("orchard.simulate")

@dataclass(frozen=True, slots=True)
class SimPlot:
    plot: str
    variety: str
    cold_pool_c: float  # extra frost depth in a hollow where cold air settles
    field_capacity: float  # soil VWC % at field capacity
    wilting_point: float


@dataclass(frozen=True, slots=True)
class SimDevice:
    device: str
    plot: SimPlot
    kind: str  # weather_station | soil_probe
    rssi_base: float
    faults: frozenset[str]  # stuck | spiky | dropout | low_battery | flaky (goes offline)


def make_site(n_devices: int, seed: int, site: Site | None = None) -> list[SimDevice]:
    """The site's plots and devices (the shipped Sunzigou site by default); past the configured devices, more
    weather stations and soil probes are added plot by plot. Faults are spread by seed."""
    site = site or load_site(SHIPPED / "sunzigou" / "site.toml")
    rng = stable_rng(seed, "site")
    low, high = min(p.elevation_m for p in site.plots), max(p.elevation_m for p in site.plots)
    plots = {
        # Cold air drains downhill: the lowest plot gets up to 2 C more frost than the highest.
        p.id: SimPlot(p.id, p.variety, -2.0 * (high - p.elevation_m) / (high - low) if high > low else 0.0,
                      p.field_capacity_pct, p.wilting_point_pct)
        for p in site.plots
    }
    configured = [d for d in site.devices if d.kind in ("weather_station", "soil_probe")]
    devices = []
    for i in range(n_devices):
        if i < len(configured):
            dc = configured[i]
            device_id, plot, kind = dc.id, plots[dc.plot], dc.kind
        else:
            j = i - len(configured)
            plot = list(plots.values())[(j // 2) % len(plots)]
            kind = DeviceKind.WEATHER_STATION if j % 2 == 0 else DeviceKind.SOIL_PROBE
            device_id = f"{'ws' if kind == 'weather_station' else 'sp'}{j // (2 * len(plots)) + 2}-{plot.plot}"
        devices.append(SimDevice(device_id, plot, kind, rng.uniform(-112, -68), frozenset()))
    # Faults go to fixed roles so every run (and every test) has each kind.
    roles = ["stuck", "spiky", "dropout", "low_battery", "flaky"]
    order = list(range(len(devices)))
    rng.shuffle(order)
    for role, idx in zip(roles, order, strict=False):
        d = devices[idx]
        devices[idx] = SimDevice(d.device, d.plot, d.kind, d.rssi_base, d.faults | {role})
    return devices


class Generator:
    """Messages of a device at a time step: a pure function of (seed, device, step)."""

    def __init__(self, seed: int, interval_s: float) -> None:
        self.seed = seed
        self.interval_s = interval_s

    def silent(self, d: SimDevice, t_s: float) -> bool:
        """Dropouts: a device with the fault misses 30-90 minutes at a time, a few times a day."""
        if "dropout" not in d.faults:
            return False
        slot = int(t_s // 7200)
        rng = stable_rng(self.seed, "dropout", d.device, slot)
        if rng.random() > 0.3:
            return False
        start = rng.uniform(0, 7200 - 5400)
        return start <= t_s % 7200 < start + rng.uniform(1800, 5400)

    def offline(self, d: SimDevice, t_s: float) -> bool:
        """The flaky device loses power for 20-40 minutes once in every 6-hour window (last will: offline)."""
        if "flaky" not in d.faults:
            return False
        slot = int(t_s // 21600)
        rng = stable_rng(self.seed, "offline", d.device, slot)
        start = rng.uniform(0, 21600 - 2400)
        return start <= t_s % 21600 < start + rng.uniform(1200, 2400)

    def malformed(self, d: SimDevice, t_s: float) -> bool:
        """About one message in 500 is broken on purpose, for ingest's dead-letter to catch."""
        return stable_rng(self.seed, "malformed", d.device, int(t_s)).random() < 0.002

    def payload(self, d: SimDevice, t_s: float, seq: int) -> bytes:
        rng = stable_rng(self.seed, "msg", d.device, int(t_s))
        if self.malformed(d, t_s):
            return self._malformed(t_s, seq)
        w = weather(self.seed, t_s, d.plot.cold_pool_c)
        hour = (t_s / 3600 + 8) % 24
        readings: dict[str, object] = {}
        if d.kind == "weather_station":
            # Clear, calm nights: the low-lying plots pool cold air; the sensor sits at 1.5 m.
            temp = w.air_temp_c + rng.gauss(0, 0.15)
            if "stuck" in d.faults and (int(t_s // 86400) % 3 == 0) and 10 <= hour < 16:
                temp = round(weather(self.seed, (t_s // 86400) * 86400 + 2 * 3600).air_temp_c, 1)  # frozen
            if "spiky" in d.faults and rng.random() < 0.01:
                temp += rng.choice((18.0, -15.0, 80.0))  # in range now and then, out of range sometimes
            wet = 100.0 if w.rain_mmh > 0 else max(0.0, 100 - 30 * w.dry_hours)
            if w.rh_pct > 92 and w.solar_wm2 < 20:
                wet = max(wet, 70 + rng.uniform(0, 25))  # dew
            readings = {
                "air_temp_c": round(temp, 2),
                "rh_pct": round(min(100.0, max(0.0, w.rh_pct + rng.gauss(0, 1.5))), 1),
                "leaf_wetness_pct": round(wet, 1),
                "rain_mm": round(w.rain_mmh * self.interval_s / 3600, 2),
                "wind_speed_ms": round(max(0.0, w.wind_ms + rng.gauss(0, 0.3)), 2),
                "wind_gust_ms": round(max(0.0, w.gust_ms + abs(rng.gauss(0, 0.8))), 2),
                "solar_wm2": round(max(0.0, w.solar_wm2 + rng.gauss(0, 8)) if w.solar_wm2 else 0.0, 1),
                "canopy_temp_c": round(temp + (2.5 * w.solar_wm2 / 1000) - (0.8 if w.solar_wm2 == 0 else 0), 2),
            }
        else:
            readings = self._soil(d, t_s, w.air_temp_c)
        body: dict[str, object] = {
            "ts": int(t_s * 1000),
            "seq": seq,
            "readings": readings,
            "battery_v": round(self._battery(d, t_s) + rng.gauss(0, 0.005), 3),
            "rssi_dbm": round(d.rssi_base + rng.gauss(0, 3), 1),
        }
        return orjson.dumps(body)

    def _soil(self, d: SimDevice, t_s: float, air_c: float) -> dict[str, object]:
        p = d.plot
        out: dict[str, list[dict[str, float | int]]] = {"soil_vwc_pct": [], "soil_temp_c": [], "soil_ec_dsm": []}
        summer = 0.5 - 0.5 * math.cos(2 * math.pi * ((t_s / 86400) % 365 - 15) / 365)  # 0 winter .. 1 summer
        history = rain_history(self.seed, t_s)
        for depth, tau_days, damp in ((20, 2.5, 1.0), (40, 5.0, 0.6)):
            tau_h = 24 * tau_days * (1.6 - 0.8 * summer)  # drier faster in summer (ETc about 6 mm/day)
            wet = sum(min(mm, 60) / 60 * math.exp(-ago / tau_h) for ago, mm in history) * damp
            # Share of available water: near field capacity in the wet winter, drying towards the 70% irrigation
            # line in summer spells without rain (farmers irrigate then, so it rarely falls much further).
            index = 0.58 + 0.27 * (1 - summer) + 0.9 * wet
            vwc = p.wilting_point + (p.field_capacity - p.wilting_point) * min(1.25, index)
            daily_t = (t_s / 86400) % 365
            seasonal = 16.3 - 9.5 * math.cos(2 * math.pi * (daily_t - 30) / 365)
            soil_t = seasonal + (air_c - seasonal) * (0.25 if depth == 20 else 0.1)
            ec = 0.6 + 0.5 * max(0.0, 1 - index)
            out["soil_vwc_pct"].append({"value": round(min(100.0, vwc), 2), "depth_cm": depth})
            out["soil_temp_c"].append({"value": round(soil_t, 2), "depth_cm": depth})
            out["soil_ec_dsm"].append({"value": round(ec, 3), "depth_cm": depth})
        return dict(out)

    def _battery(self, d: SimDevice, t_s: float) -> float:
        hour = (t_s / 3600 + 8) % 24
        solar_top_up = 0.08 * max(0.0, math.sin(math.pi * (hour - 7) / 12)) if 7 <= hour <= 19 else 0
        if "low_battery" in d.faults:
            # A failing cell: falls 0.05 V a day from 3.7 V, bottoming at 3.0 V.
            days = (t_s / 86400) % 20
            return max(3.0, 3.7 - 0.05 * days) + solar_top_up / 4
        return 3.95 + solar_top_up

    @staticmethod
    def _malformed(t_s: float, seq: int) -> bytes:
        r = stable_rng(t_s, seq)
        return r.choice(
            [
                b'{"ts": ' + str(int(t_s * 1000)).encode() + b', "readings": {"air_temp_c": "hot"}}',
                b'{"readings": {"air_temp_c": 12.5',  # cut off mid-message
                orjson.dumps({"ts": int((t_s + 3600) * 1000), "readings": {"air_temp_c": 10.0}}),  # clock ahead
                orjson.dumps({"seq": seq}),  # no readings at all
                orjson.dumps({"ts": int(t_s * 1000), "readings": {"air_temperature": 10.0}}),  # wrong name
            ]
        )


def steps(start_s: float, end_s: float, interval_s: float) -> Iterator[float]:
    t = math.ceil(start_s / interval_s) * interval_s
    while t < end_s:
        yield t
        t += interval_s


def register(devices: list[SimDevice], settings: Settings) -> None:
    """The simulated devices are installed ones: register them as approved."""
    records = Records.open(settings)
    for d in devices:
        records.upsert_device(Device(d.device, settings.site, d.plot.plot, DeviceStatus.APPROVED, d.kind,
                                     extra={"variety": d.plot.variety}))
    records.close()


def backfill(settings: Settings, devices: list[SimDevice], gen: Generator, days: float, end_s: float) -> int:
    """Write `days` of history ending at end_s straight to the store; returns points written."""
    store = open_store(settings.store_url)
    store.ensure_ready()
    start_s = end_s - days * 86400
    all_steps = list(steps(start_s, end_s, gen.interval_s))
    written, batch = 0, []
    with progress() as bar:
        task = bar.add_task(f"回填 backfill {days:g} d", total=len(all_steps))
        for i, t in enumerate(all_steps):
            for d in devices:
                if gen.silent(d, t) or gen.offline(d, t) or gen.malformed(d, t):
                    continue
                r = route(telemetry_topic(settings.mqtt_prefix, settings.site, d.plot.plot, d.device),
                          settings.mqtt_prefix)
                try:
                    telemetry, _ = parse_native(r, gen.payload(d, t, i), int(end_s * 1e9), 300 * 10**9)
                except Refused:
                    continue  # the malformed messages of the live feed are for ingest to catch, not history
                if telemetry is not None:
                    batch.extend(to_points(telemetry))
            if len(batch) >= 20_000:
                written += store.write(batch).written
                batch = []
            bar.update(task, advance=1)
        written += store.write(batch).written if batch else 0
    store.close()
    event(log, "backfill_done", days=days, points=written, devices=len(devices))
    return written


class _Radio:
    """One MQTT connection per device, so each has its own last will."""

    def __init__(self, settings: Settings, d: SimDevice) -> None:
        self.settings = settings
        self.d = d
        self.topic = telemetry_topic(settings.mqtt_prefix, settings.site, d.plot.plot, d.device)
        self.status = status_topic(settings.mqtt_prefix, settings.site, d.plot.plot, d.device)
        self.client: Client | None = None
        self.up = False

    def connect(self) -> None:
        c = make_client(self.settings.mqtt_url, f"sim-{self.settings.site}-{self.d.device}",
                        protocol=self.settings.mqtt_protocol)
        c.will_set(self.status, b"offline", qos=1, retain=True)
        c.on_connect = lambda cl, *_: cl.publish(self.status, b"online", qos=1, retain=True)
        connect_to(c, self.settings.mqtt_url)
        c.loop_start()
        self.client, self.up = c, True

    def cut(self) -> None:
        """Power loss: the socket dies without DISCONNECT, so the broker publishes the last will."""
        if self.client is not None:
            self.client.loop_stop()
            sock = self.client.socket()
            if sock is not None:
                sock.close()
            self.client = None
        self.up = False

    def publish(self, payload: bytes) -> None:
        if self.client is not None:
            self.client.publish(self.topic, payload, qos=1)

    def close(self) -> None:
        if self.client is not None:
            # When the broker goes down at the same moment (Ctrl-C stops the whole demo), the last will says it.
            with contextlib.suppress(RuntimeError, ValueError):
                self.client.publish(self.status, b"offline", qos=1, retain=True).wait_for_publish(2)
            self.client.disconnect()
            self.client.loop_stop()


def run_live(settings: Settings, devices: list[SimDevice], gen: Generator, speed: float, start_s: float,
             duration_s: float, stop: threading.Event) -> int:
    """Publish in (simulated) real time; the simulated clock runs `speed` times faster until it reaches now."""
    radios = {d.device: _Radio(settings, d) for d in devices}
    for r in radios.values():
        r.connect()
    real0 = time.time()
    sent, seq = 0, 0
    event(log, "simulator_started", devices=len(devices), interval_s=gen.interval_s, speed=speed,
          start=datetime.fromtimestamp(start_s, UTC).isoformat())
    t = math.ceil(start_s / gen.interval_s) * gen.interval_s
    while not stop.is_set() and (not duration_s or time.time() - real0 < duration_s):
        seq += 1
        for k, d in enumerate(devices):
            ts = t + k * gen.interval_s / len(devices)  # spread devices over the interval
            wait = min(real0 + (ts - start_s) / speed, ts) - time.time()  # never ahead of the wall clock
            if wait > 0 and stop.wait(wait):
                break
            radio = radios[d.device]
            if gen.offline(d, ts):
                if radio.up:
                    radio.cut()
                continue
            if not radio.up:
                radio.connect()
            if gen.silent(d, ts):
                continue
            radio.publish(gen.payload(d, ts, seq))
            sent += 1
        t += gen.interval_s
    for r in radios.values():
        r.close()
    event(log, "simulator_stopped", sent=sent)
    return sent


def run_simulator(settings: Settings, *, devices: int, interval_s: float, speed: float, seed: int,
                  backfill_days: float, duration_s: float = 0, start: str | None = None, fast: bool = False) -> None:
    site = make_site(devices, seed, site_for(settings))
    gen = Generator(seed, interval_s)
    register(site, settings)
    now = time.time()
    if backfill_days and fast:
        from sensors.history import write_history

        t0 = time.perf_counter()
        lines = write_history(settings, site, seed, math.ceil(backfill_days), now, int(interval_s))
        event(log, "backfill_done", days=math.ceil(backfill_days), lines=lines, devices=len(site),
              seconds=round(time.perf_counter() - t0, 1))
        return
    if backfill_days:
        backfill(settings, site, gen, backfill_days, now)
        return
    start_s = datetime.fromisoformat(start).timestamp() if start else now
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    run_live(settings, site, gen, speed, start_s, duration_s, stop)


def sample_points(seed: int, n_devices: int, interval_s: float, start_s: float, end_s: float) -> list[Point]:
    """Everything the simulator would publish over a window, as points (for tests and realism checks)."""
    site, gen = make_site(n_devices, seed), Generator(seed, interval_s)
    out: list[Point] = []
    for i, t in enumerate(steps(start_s, end_s, interval_s)):
        for d in site:
            if gen.silent(d, t) or gen.offline(d, t) or gen.malformed(d, t):
                continue
            r = route(telemetry_topic("orchard", "s", d.plot.plot, d.device), "orchard")
            try:
                telemetry, _ = parse_native(r, gen.payload(d, t, i), int(end_s * 1e9), 300 * 10**9)
            except Refused:
                continue
            if telemetry is not None:
                out.extend(to_points(telemetry))
    return out
