"""`orchard bench alerts`: with N simulated devices reporting every minute, how long from a reading being
published to the first message about it arriving at a webhook receiver, and how long one evaluation cycle
takes. Real Mosquitto, InfluxDB, `orchard ingest` and `orchard analytics` processes, on loopback.

1. A site of N/2 plots with a weather station and a soil probe each (site.toml and plots.geojson in a temp dir);
   two days of history written with `orchard simulate --fast`; a farmer per plot and an adviser, all reached by
   the JSON webhook.
2. Background traffic: every device publishes once a minute, spread evenly (about N/60 messages a second).
3. Trials: a reading of 36.5 C on one plot at a time (the heat rule fires at once, as a warning to the plot's
   farmer); latency = webhook arrival - publish. Cycle durations come from the analytics service's own log:
   `cycle_s` is the full cycle (every plot and device), `quick_cycle_s` the cycles over just the plots new
   telemetry touched, which is what carries a reading to its alarm.
"""

from __future__ import annotations

import json
import logging
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import ExitStack
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import orjson

from bench.servers import InfluxDB, Mosquitto, free_port
from orchard.logs import event, progress
from orchard.mqtt import connect_to, make_client, telemetry_topic
from orchard.records import Records
from orchard.records.people import People, Role, User
from orchard.settings import Settings
from orchard.site import Site, load_site
from sensors.simulate import Generator, make_site

log = logging.getLogger("orchard.bench")
SITE_ID = "benchsite"


def write_site(folder: Path, plots: int) -> Path:
    """A site of `plots` plots (alternating varieties) in a grid, each with a weather station and a soil probe."""
    folder.mkdir(parents=True, exist_ok=True)
    features, devices = [], []
    for i in range(plots):
        x, y = 106.0 + (i % 25) * 0.001, 31.7 + (i // 25) * 0.001
        ring = [[x, y], [x + 0.0009, y], [x + 0.0009, y + 0.0009], [x, y + 0.0009], [x, y]]
        pid = f"b{i:04d}"
        features.append({"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [ring]}, "properties": {
            "id": pid, "name": f"{i + 1}号园", "name_en": f"Plot {i + 1}", "variety": ("hongyang", "hayward")[i % 2],
            "area_mu": 3.0, "owner": f"农户{i + 1}", "elevation_m": 450 + i % 40}})
        devices += [f'[[devices]]\nid = "ws-{pid}"\nplot = "{pid}"\nkind = "weather_station"\n',
                    f'[[devices]]\nid = "sp-{pid}"\nplot = "{pid}"\nkind = "soil_probe"\n']
    (folder / "plots.geojson").write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    (folder / "site.toml").write_text(f'[site]\nid = "{SITE_ID}"\nname = "压测村"\nname_en = "Bench village"\n'
                                      f'timezone = "Asia/Shanghai"\nplots_file = "plots.geojson"\n\n'
                                      + "\n".join(devices))
    return folder / "site.toml"


@dataclass
class Arrival:
    recipient: str
    subject: str
    at: float


class Receiver:
    """The webhook receiver: records when each message arrived and for whom."""

    def __init__(self) -> None:
        self.arrivals: list[Arrival] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_: object) -> None:
                pass

            def do_POST(self) -> None:
                body = orjson.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                with receiver.lock:
                    receiver.arrivals.append(Arrival(body.get("recipient", ""), body.get("subject", ""),
                                                     time.time()))
                self.send_response(204)
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def first_for(self, recipient: str, since: float) -> float | None:
        with self.lock:
            times = [a.at for a in self.arrivals if a.recipient == recipient and a.at >= since]
        return min(times) if times else None


def background(stop: threading.Event, mqtt_url: str, prefix: str, site: Site, counter: list[int]) -> None:
    """Every device once a minute, spread over the minute, from one connection (the devices' own are not the
    point here)."""
    devices = make_site(len(site.devices), 1, site)
    gen = Generator(1, 60)
    client = make_client(mqtt_url, "bench-background")
    connect_to(client, mqtt_url)
    client.loop_start()
    step = 60.0 / len(devices)
    i = 0
    while not stop.is_set():
        d = devices[i % len(devices)]
        t = time.time()
        client.publish(telemetry_topic(prefix, SITE_ID, d.plot.plot, d.device), gen.payload(d, t, i), qos=1)
        counter[0] += 1
        i += 1
        stop.wait(step)
    client.loop_stop()
    client.disconnect()


def run_bench(*, devices: int, trials: int, history_days: int, work_dir: Path | None) -> dict[str, Any]:
    plots = devices // 2
    with ExitStack() as stack:
        tmp = work_dir or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="orchard-bench-alerts-")))
        mosquitto = stack.enter_context(Mosquitto(tmp / "mosquitto"))
        influx = stack.enter_context(InfluxDB(tmp / "influxdb"))
        receiver = Receiver()
        stack.callback(receiver.server.shutdown)
        site_file = write_site(tmp / "site", plots)
        prefix = "orchard"
        env = {"ORCHARD_SITE": SITE_ID, "ORCHARD_SITE_FILE": str(site_file), "ORCHARD_STORE_URL": influx.url,
               "ORCHARD_MQTT_URL": mosquitto.url, "ORCHARD_DATA_DIR": str(tmp / "data"),
               "ORCHARD_NOTIFY__WEBHOOK_URL": receiver.url, "ORCHARD_NOTIFY__LINK_SECRET": "bench",
               "ORCHARD_UNKNOWN_DEVICES": "accept"}
        settings = Settings(**{k.removeprefix("ORCHARD_").lower(): v for k, v in env.items()
                               if "__" not in k})  # type: ignore[arg-type]
        full_env = {**os.environ, **env}
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "app", "simulate", "--devices", str(devices), "--backfill-days",
                        str(history_days), "--fast"], env=full_env, check=True, capture_output=True)
        event(log, "bench_seeded", seconds=round(time.perf_counter() - t0, 1))

        records = Records.open(settings)
        people = People(records)
        site = load_site(site_file)
        for p in site.plots:
            people.upsert(User(f"farmer-{p.id}", p.owner, Role.FARMER, channels=("webhook",)))
            people.set_plots(f"farmer-{p.id}", [p.id], "owns")
        people.upsert(User("adviser", "农技员", Role.ADVISER, channels=("webhook",)))
        people.set_plots("adviser", [p.id for p in site.plots], "covers")

        logs = {name: tmp / f"{name}.log" for name in ("ingest", "analytics")}
        procs = []
        for name, path in logs.items():
            with path.open("wb") as out:
                procs.append(subprocess.Popen([sys.executable, "-m", "app", name], env=full_env, stdout=out,
                                              stderr=subprocess.STDOUT))
        def stop_services() -> None:
            for p in procs:
                p.terminate()
                p.wait(20)

        stack.callback(stop_services)
        stop = threading.Event()
        sent = [0]
        traffic = threading.Thread(target=background, args=(stop, mosquitto.url, prefix, site, sent), daemon=True)
        traffic.start()
        stack.callback(stop.set)

        def cycles(scope: str = "full") -> list[float]:
            text = logs["analytics"].read_text(errors="replace")
            return [float(x) for x in re.findall(rf"event=cycle scope={scope} .*?seconds=([\d.]+)", text)]

        deadline = time.monotonic() + 600
        while len(cycles()) < 2:  # the first full cycles load the window and raise what the history holds
            if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
                raise RuntimeError(f"analytics did not cycle: {logs['analytics'].read_text()[-2000:]}")
            time.sleep(0.5)
        time.sleep(5)

        pub = make_client(mosquitto.url, "bench-trials")
        connect_to(pub, mosquitto.url)
        pub.loop_start()
        latencies, missed = [], 0
        with progress() as bar:
            task = bar.add_task(f"{trials} trials", total=trials)
            for i, p in enumerate(site.plots[:trials]):
                sent_at = time.time()
                body = orjson.dumps({"ts": int(sent_at * 1000), "readings": {"air_temp_c": 36.5, "rh_pct": 30.0}})
                pub.publish(telemetry_topic(prefix, SITE_ID, p.id, f"ws-{p.id}"), body, qos=1)
                arrival = None
                wait_until = time.monotonic() + 30
                while arrival is None and time.monotonic() < wait_until:
                    time.sleep(0.02)
                    arrival = receiver.first_for(f"farmer-{p.id}", sent_at)
                if arrival is None:
                    missed += 1
                else:
                    latencies.append(arrival - sent_at)
                    event(log, "trial", plot=p.id, seconds=round(arrival - sent_at, 3))
                bar.advance(task)
                time.sleep(0.5 + (i % 3) * 0.37)  # do not fall into step with the cycle
        pub.loop_stop()
        durations = cycles()[1:] or cycles()  # the first full cycle loads the window: not a steady one
        quick = cycles("plots")
        latencies.sort()
        result = {
            "bench": "alerts", "devices": devices, "plots": plots, "trials": trials, "missed": missed,
            "p50_s": round(statistics.median(latencies), 3) if latencies else None,
            "p99_s": round(latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))], 3) if latencies else None,
            "max_s": round(latencies[-1], 3) if latencies else None,
            "cycle_s": round(statistics.median(durations), 3), "cycle_max_s": round(max(durations), 3),
            "cycles": len(durations), "quick_cycle_s": round(statistics.median(quick), 3) if quick else None,
            "quick_cycles": len(quick), "background_messages": sent[0],
            "latencies_s": [round(x, 3) for x in latencies],
            "targets_met": bool(latencies) and missed == 0 and latencies[min(len(latencies) - 1,
                                                                                int(0.99 * len(latencies)))] <= 2.0
            and statistics.median(durations) <= 5.0,
        }
    print(json.dumps(result))
    return result
