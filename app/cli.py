"""The `orchard` command: one sub-command per service, plus demo, bench and device administration.

Services are imported inside their command so that starting one never loads (or connects) another.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from app.admin import admin_app, device_add, user_add, user_list
from app.config import load_settings, load_site, site_problem
from orchard import logs
from orchard.records.lots import Lots
from orchard.redact import redact

# Plain tracebacks (through orchard.logs' excepthook, which masks secrets), not typer's pretty ones that print
# every local variable, URLs with passwords among them.
app = typer.Typer(help="智慧果园指挥中心 Smart-orchard command center.", no_args_is_help=True,
                  pretty_exceptions_enable=False)
bench_app = typer.Typer(help="Benchmarks that print their figures as JSON.", no_args_is_help=True)
devices_app = typer.Typer(help="设备登记 Device registry.", no_args_is_help=True)
users_app = typer.Typer(help="人员 People who receive alarms: farmers, advisers, the command center.",
                        no_args_is_help=True)
app.add_typer(bench_app, name="bench")
app.add_typer(devices_app, name="devices")
app.add_typer(users_app, name="users")
grading_app = typer.Typer(help="分选线 The fruit grading line: `orchard grading` runs the service.")
lot_app = typer.Typer(help="批次 Grower lots on the grading line.", no_args_is_help=True)
app.add_typer(grading_app, name="grading")
grading_app.add_typer(lot_app, name="lot")
app.add_typer(admin_app, name="admin")
# The older short forms stay: `orchard users add` is `orchard admin user add`, `orchard devices add` is
# `orchard admin device add`.
users_app.command("add")(user_add)
users_app.command("list")(user_list)
devices_app.command("add")(device_add)


@app.callback()
def _main(log_level: Annotated[str, typer.Option(help="DEBUG, INFO, WARNING")] = "INFO") -> None:
    logs.setup(log_level.upper())


@app.command()
def ingest() -> None:
    """Run the ingest service: MQTT telemetry into the time-series store."""
    from sensors.service import run_ingest

    run_ingest(load_settings())


analytics_app = typer.Typer(help="预警 The analytics service (`orchard analytics` runs it) and its backtest.")
app.add_typer(analytics_app, name="analytics")


@analytics_app.callback(invoke_without_command=True)
def analytics(ctx: typer.Context) -> None:
    """Run the analytics service: the kiwifruit rule pack and device health checks, raising and clearing alarms."""
    if ctx.invoked_subcommand is not None:
        return
    from analytics.service import run_analytics

    try:
        run_analytics(load_settings())
    except ValueError as e:  # the site file's [rules] or [escalation] (the message says what to fix)
        typer.echo(str(e), err=True)
        raise typer.Exit(2) from None


@analytics_app.command("replay")
def analytics_replay(
    from_: Annotated[str, typer.Option("--from", help="Start, local time: YYYY-MM-DD or YYYY-MM-DDTHH:MM.")],
    to: Annotated[str | None, typer.Option("--to", help="End, local time (default: now).")] = None,
    set_: Annotated[list[str] | None, typer.Option("--set", help="A rule setting to try, rule.param=value "
                                                   "(repeatable), e.g. spring_frost.frost_c=-2.")] = None,
    rule: Annotated[list[str] | None, typer.Option("--rule", help="Only these alarm types (default: every crop "
                                                   "rule).")] = None,
    step_min: Annotated[int, typer.Option(help="Minutes between replayed cycles.")] = 10,
    json_out: Annotated[bool, typer.Option("--json", help="One JSON object instead of the table.")] = False,
) -> None:
    """Backtest: run the rule pack over the stored history with an injected clock and print what it would have
    raised, when, and how that differs from what was raised (same, moved, new, gone). Nothing is written to the
    village's records."""
    from app.replay import run_replay

    run_replay(load_settings(), from_, to, set_ or [], rule or [], step_min, json_out)


@app.command()
def cameras() -> None:
    """Run the cameras service: snapshots, thumbnails, motion and camera health for every camera of the site."""
    from video.service import run_cameras

    run_cameras(load_settings())


@app.command()
def simulate(
    devices: Annotated[int, typer.Option(help="Number of devices (a weather station and soil probe per plot).")] = 24,
    interval: Annotated[float, typer.Option(help="Seconds between readings of one device (simulated time).")] = 60,
    speed: Annotated[float, typer.Option(help="Simulated seconds per real second.")] = 1.0,
    seed: Annotated[int, typer.Option(help="Same seed, same weather, faults and messages.")] = 1,
    backfill_days: Annotated[int, typer.Option(help="Write this many past days straight to the store and exit.")] = 0,
    duration: Annotated[float, typer.Option(help="Stop after this many real seconds (0: run until Ctrl-C).")] = 0,
    fast: Annotated[bool, typer.Option(help="Backfill whole days of fault-free history straight to InfluxDB, "
                                            "about 2 s a day for 50 devices (for load tests).")] = False,
) -> None:
    """Simulate the orchard's sensors for Cangxi, Sichuan: publish telemetry over MQTT (or backfill the store)."""
    from sensors.simulate import run_simulator

    run_simulator(load_settings(), devices=devices, interval_s=interval, speed=speed, seed=seed,
                  backfill_days=backfill_days, duration_s=duration, fast=fast)


@app.command()
def demo(
    port: Annotated[int, typer.Option(help="Dashboard port.")] = 8501,
    backfill_days: Annotated[int, typer.Option(help="Days of history written before the live simulation.")] = 7,
    mqtt_port: Annotated[int | None, typer.Option(help="The embedded broker's port (default 1883, or a free one "
                                                       "when taken).")] = None,
) -> None:
    """Run everything on this machine: embedded broker, SQLite store, simulator, ingest, dashboard."""
    from app.demo import run_demo

    run_demo(port=port, backfill_days=backfill_days, mqtt_port=mqtt_port)


@app.command()
def dashboard(port: Annotated[int, typer.Option(help="Port to serve on.")] = 8501) -> None:
    """Serve the Streamlit command center (this process becomes Streamlit's, so signals reach it)."""
    import os

    from dashboard.server import oidc_secrets, streamlit_argv

    s = load_settings()
    load_site(s)  # a mistake in the site file is named here, before the first page shows it
    argv = streamlit_argv(port, s.dashboard.address, secrets_file=oidc_secrets(s))
    os.execv(argv[0], argv)


@app.command()
def check(
    mqtt: Annotated[bool | None, typer.Option(
        help="Connect to the broker with ORCHARD_MQTT_URL's account (default: only without --service). The broker "
             "gives a client its account's name as id, so this connection replaces a running service's own: with "
             "--service the check reads whether the service itself is connected instead.")] = None,
    store: Annotated[bool, typer.Option(help="Ping the time-series store.")] = True,
    db: Annotated[bool, typer.Option(help="Open the records DB.")] = True,
    site: Annotated[bool | None, typer.Option(
        help="Check the site file whole, its [rules] against the rule pack (default: only without --service, "
             "so a container's healthcheck stays light).")] = None,
    service: Annotated[str | None, typer.Option(help="Also fail when this service's heartbeat on this host "
                                                     "(ingest, analytics, cameras, grading) is older than its "
                                                     "limit: the process is up but no longer working.")] = None,
) -> None:
    """Can this service reach what it needs, with its own credentials, and is it still working? Exit 1 when not
    (the containers' healthcheck; also the first thing to run when something is wrong)."""
    import queue
    import time
    import uuid

    from sqlalchemy import text

    from orchard.mqtt import connect_to, make_client
    from orchard.store import StoreError, open_store
    from orchard.supervise import read_beat

    s = load_settings()
    failed = []
    if service:
        beat = read_beat(s.data_dir, service)
        if beat is None:
            failed.append(f"心跳 heartbeat: {service} has not reported a successful cycle yet "
                          f"({s.data_dir / 'heartbeats'}); see its log")
        elif (age := beat.age_s(time.time())) > beat.limit_s:
            failed.append(f"心跳 heartbeat: {service} (pid {beat.pid}) last succeeded {age:.0f} s ago, limit "
                          f"{beat.limit_s:.0f} s: it runs but does not work; see its log for step_failed lines")
        elif beat.detail.get("mqtt") is False:
            failed.append(f"MQTT broker: {service} (pid {beat.pid}) is not connected to the broker; see its log "
                          "for mqtt_disconnected lines")
    if mqtt is None:
        mqtt = service is None
    if site is None:
        site = service is None
    if site and (problem := site_problem(s)) is not None:
        failed.append(f"站点文件 site file: {problem}")
    if store:
        try:
            open_store(s.store_url).ping()
        except StoreError as e:
            failed.append(f"时序库 store: {e}")
    if db:
        try:
            from orchard.records.db import make_engine

            with make_engine(s.records_url).connect() as conn:
                conn.execute(text("SELECT 1"))
        except Exception as e:  # any driver error: the message is what the operator needs
            failed.append(f"记录库 records DB: {str(e).splitlines()[0][:200]}")
    if mqtt:
        client = make_client(s.mqtt_url, f"check-{uuid.uuid4().hex[:8]}", protocol=s.mqtt_protocol)
        codes: queue.Queue[object] = queue.Queue()
        client.on_connect = lambda _c, _u, _f, rc, _p=None: codes.put(rc)
        connect_to(client, s.mqtt_url)
        client.loop_start()
        try:
            rc = codes.get(timeout=10)
            if getattr(rc, "is_failure", False):
                failed.append(f"MQTT broker: {rc}")
        except queue.Empty:
            failed.append("MQTT broker: no answer in 10 s")
        finally:
            client.loop_stop()
            client.disconnect()
    for f in failed:
        typer.echo(redact(f), err=True)
    if failed:
        raise typer.Exit(1)
    typer.echo("ok")


@app.command(hidden=True)
def broker(port: Annotated[int, typer.Option()] = 1883) -> None:
    """The embedded MQTT broker (amqtt) that `orchard demo` uses when no ORCHARD_MQTT_URL is given."""
    from app.embedded_broker import run_broker

    run_broker(port)


@bench_app.command("ingest")
def bench_ingest(
    messages: Annotated[int, typer.Option("--messages", "-n", help="Messages queued for the drain test.")] = 50_000,
    devices: Annotated[int, typer.Option(help="Devices the messages come from.")] = 100,
    rate: Annotated[int, typer.Option(help="Live test publish rate, messages/s.")] = 2000,
    live_seconds: Annotated[float, typer.Option(help="Live test duration.")] = 15,
    repeat: Annotated[int, typer.Option(help="Drain runs each for ingest and the bare subscriber (median).")] = 3,
    mqtt_url: Annotated[str | None, typer.Option(help="Use this broker instead of starting Mosquitto.")] = None,
    store_url: Annotated[str | None, typer.Option(help="Use this store instead of starting InfluxDB.")] = None,
    processes: Annotated[int, typer.Option(help="Ingest processes sharing the load ($share subscription).")] = 1,
    autosave: Annotated[list[str] | None, typer.Option(help="Mosquitto persistence to compare, each on its own "
                                                           "broker: interval:30 (save every 30 s), changes:1000 "
                                                           "(after every 1000 changes). Repeatable.")] = None,
) -> None:
    """Drain rate vs a bare paho subscriber, and live publish-to-stored latency. Prints one JSON line."""
    from bench.ingest import run_bench

    run_bench(messages=messages, devices=devices, rate=rate, live_seconds=live_seconds, repeat=repeat,
              mqtt_url=mqtt_url, store_url=store_url, processes=processes, autosave=tuple(autosave or ()))


@bench_app.command("alerts")
def bench_alerts(
    devices: Annotated[int, typer.Option(help="Simulated devices (a weather station and a soil probe per plot).")]
    = 1000,
    trials: Annotated[int, typer.Option(help="Readings published to time (one plot each).")] = 40,
    history_days: Annotated[int, typer.Option(help="Days of history written first.")] = 2,
    work_dir: Annotated[Path | None, typer.Option(help="Keep servers' files here (default: a temp dir).")] = None,
) -> None:
    """Reading published -> first notification at a webhook (p50/p99), and the evaluation cycle's duration,
    with real Mosquitto, InfluxDB, ingest and analytics. Prints one JSON line."""
    from bench.alarms import run_bench

    run_bench(devices=devices, trials=trials, history_days=history_days, work_dir=work_dir)


@bench_app.command("season")
def bench_season(
    seeds: Annotated[str, typer.Option(help="Weather seeds, comma-separated (the rules were not tuned on them).")]
    = "11,12,13,14",
    start: Annotated[str, typer.Option(help="First day (local), YYYY-MM-DD.")] = "2027-02-20",
    days: Annotated[int, typer.Option(help="Days of each season.")] = 80,
    plots: Annotated[int, typer.Option(help="Plots from 400 to 900 m.")] = 8,
    cycle_min: Annotated[int, typer.Option(help="Minutes between evaluation cycles (the injected clock).")] = 30,
    processes: Annotated[int, typer.Option(help="Seasons run at once.")] = 2,
    json_out: Annotated[bool, typer.Option("--json", help="One JSON object instead of the table.")] = False,
    set_: Annotated[list[str] | None, typer.Option("--set", help="A rule setting to try, rule.param=value "
                                                   "(repeatable), e.g. spring_frost.cold_day_c=-1.")] = None,
    forecast: Annotated[bool, typer.Option(help="Give the rules the harness's weather forecast (bench/season/"
                                           "forecast.py); --no-forecast for a village without one.")] = True,
) -> None:
    """The rule pack through seasons of the harness's own weather (bench/season): per rule the truth events,
    detections, lead times, false alarms (share and per plot-week), flaps and severity changes, and whether the
    targets hold."""
    from datetime import date

    from bench.season.run import run_bench

    run_bench([int(x) for x in seeds.split(",") if x.strip()], date.fromisoformat(start), days, plots, cycle_min,
              processes, json_out, set_ or [], forecast)


@bench_app.command("cameras")
def bench_cameras(
    snapshots: Annotated[int, typer.Option("--snapshots", "-n", help="Snapshots processed per run.")] = 400,
    sources: Annotated[int, typer.Option(help="Distinct 1920x1080 JPEGs cycled through (cameras).")] = 20,
    repeat: Annotated[int, typer.Option(help="Runs of each measurement (medians).")] = 3,
) -> None:
    """Snapshots processed per second on one core (decode, thumbnail, metrics, motion, write) and p99 per snapshot,
    next to bare cv2.imdecode of the same JPEGs. Prints one JSON line."""
    from bench.cameras import run_bench

    run_bench(snapshots=snapshots, sources=sources, repeat=repeat)


@bench_app.command("video")
def bench_video(
    cameras: Annotated[int, typer.Option(help="RTSP streams recorded at once.")] = 8,
    seconds: Annotated[float, typer.Option(help="Length of each measured run.")] = 20,
    repeat: Annotated[int, typer.Option(help="Runs of each (bare ffmpeg, ours), alternating; medians.")] = 3,
    delay_seconds: Annotated[float, typer.Option(help="How long the live delay is sampled.")] = 30,
) -> None:
    """rtsp cameras buffered per core and the live view's delay, against bare ffmpeg copying the same streams in
    the same run (a real GStreamer RTSP server on loopback)."""
    from bench.video import run_bench

    run_bench(cameras=cameras, seconds=seconds, repeat=repeat, delay_seconds=delay_seconds)


@bench_app.command("grading")
def bench_grading(
    fruit: Annotated[int, typer.Option(help="Fruit the simulated lot holds.")] = 2000,
    seed: Annotated[int, typer.Option(help="Simulator seed (held out: the grader was tuned on others).")] = 2026,
    repeat: Annotated[int, typer.Option(help="Timed passes over the frames (medians).")] = 3,
) -> None:
    """Grader accuracy against the conveyor simulator's truth (diameter, weight, class, count) and fruit/s on one
    core, next to bare JPEG decode of the same frames. Prints one JSON line."""
    from bench.grading import run_bench

    run_bench(fruit=fruit, seed=seed, repeat=repeat)


@grading_app.callback(invoke_without_command=True)
def grading(
    ctx: typer.Context,
    line: Annotated[list[str] | None, typer.Option("--line", help="Only these lines (default: every line of the "
                                                   "site file).")] = None,
) -> None:
    """Run the grading service: every line's camera graded fruit by fruit into the open lot."""
    if ctx.invoked_subcommand is not None:
        return
    from video.grading.service import run_grading

    try:
        run_grading(load_settings(), line)
    except KeyError as e:
        typer.echo(e.args[0], err=True)
        raise typer.Exit(2) from None


def _lots() -> Lots:
    from orchard.records import Records
    from orchard.site import SiteError, site_for

    s = load_settings()
    try:
        return Lots(Records.open(s), site_for(s))
    except SiteError as e:
        typer.echo(str(e), err=True)
        raise typer.Exit(2) from None


def _by() -> str:
    import getpass

    return f"cli:{getpass.getuser()}"


@lot_app.command("start")
def lot_start(
    plot: Annotated[str, typer.Option(help="The plot the fruit were picked in.")],
    line: Annotated[str, typer.Option(help="The grading line.")] = "line-1",
    grower: Annotated[str, typer.Option(help="Grower's name (default: the plot's owner).")] = "",
    note: Annotated[str, typer.Option(help="A note for the report (bins, picking date).")] = "",
) -> None:
    """Open a lot: from now on, the fruit graded on the line belong to this grower and plot."""
    from orchard.records.lots import LotError

    lots = _lots()
    try:
        lot = lots.start(line, plot, _by(), grower, note)
    except (LotError, KeyError) as e:
        typer.echo(e.args[0], err=True)
        raise typer.Exit(1) from None
    typer.echo(f"批次 #{lot.id} 已开始 / lot #{lot.id} started: {lot.grower}, {lot.plot}, {lot.line}")


@lot_app.command("end")
def lot_end(
    lot: Annotated[int | None, typer.Option(help="Lot number (default: the one open on --line).")] = None,
    line: Annotated[str, typer.Option(help="The grading line.")] = "line-1",
) -> None:
    """End a lot (the fruit still on the belt are counted to it)."""
    from orchard.records.lots import LotError

    lots = _lots()
    try:
        if lot is None:
            if (current := lots.current(line)) is None:
                raise LotError(f"分选线 {line} 上没有进行中的批次 / no lot is open on line {line}")
            lot = current.id
        done = lots.end(lot, _by())
    except (LotError, KeyError) as e:
        typer.echo(e.args[0], err=True)
        raise typer.Exit(1) from None
    typer.echo(f"批次 #{done.id} 已结束 / lot #{done.id} ended: {done.fruit} fruit, "
               f"pack-out {done.packout_pct:.1f}%")


@lot_app.command("list")
def lot_list(
    plot: Annotated[str | None, typer.Option(help="Only this plot's lots.")] = None,
    limit: Annotated[int, typer.Option(help="How many, newest first.")] = 30,
) -> None:
    """Lots, newest first: grower, plot, times, fruit, mean weight, pack-out."""
    from datetime import datetime

    lots = _lots()
    tz = lots.site.tz
    for x in lots.history([plot] if plot else None, limit=limit):
        when = datetime.fromtimestamp(x.started_ns / 1e9, tz).strftime("%Y-%m-%d %H:%M")
        state = "open" if x.open else "ended"
        typer.echo(f"#{x.id}\t{x.line}\t{x.plot}\t{x.grower}\t{when}\t{state}\t{x.fruit} fruit\t"
                   f"{x.mean_weight_g:.1f} g\t{x.packout_pct:.1f}%")


@lot_app.command("report")
def lot_report(
    lot: Annotated[int, typer.Argument(help="Lot number.")],
    lang: Annotated[str, typer.Option(help="zh or en.")] = "zh",
) -> None:
    """The lot report as CSV on standard output (count by class and size, mean weight, reject reasons, pack-out)."""
    from orchard.records.lots import LotError, report_csv

    lots = _lots()
    try:
        found = lots.get(lot)
    except LotError as e:
        typer.echo(e.args[0], err=True)
        raise typer.Exit(1) from None
    typer.echo(report_csv(found, lots.site, lang), nl=False)


@grading_app.command("measure")
def grading_measure(
    images: Annotated[list[Path], typer.Argument(help="Top-view photos of fruit on the belt.")],
    px_per_mm: Annotated[float | None, typer.Option(help="Image scale; without it the ArUco marker is used.")]
    = None,
) -> None:
    """Measure and grade every whole fruit in each photo; one JSON line per fruit. One photo shows one equatorial
    diameter; on the line, the rolling fruit shows both."""
    import orjson

    from video.grading.calibrate import MarkerMissing
    from video.grading.photo import measure_photo

    cfg = load_settings().grading
    failed = 0
    for path in images:
        try:
            for fruit in measure_photo(path, cfg, px_per_mm):
                typer.echo(orjson.dumps(fruit).decode())
        except (MarkerMissing, ValueError) as e:
            typer.echo(f"{path}: {e}", err=True)
            failed += 1
    if failed:
        raise typer.Exit(2)


@bench_app.command("dashboard")
def bench_dashboard(
    days: Annotated[int, typer.Option(help="Days of 1-minute history seeded into InfluxDB.")] = 90,
    devices: Annotated[int, typer.Option(help="Devices (weather stations and soil probes).")] = 50,
    repeat: Annotated[int, typer.Option(help="Runs per measurement (medians).")] = 5,
    refreshes: Annotated[int, typer.Option(help="Fragment refreshes for the memory check.")] = 500,
    store_url: Annotated[str | None, typer.Option(help="Seed this InfluxDB instead of starting one.")] = None,
    work_dir: Annotated[Path | None, typer.Option(help="Keep servers' files here (default: a temp dir).")] = None,
    seed: Annotated[bool, typer.Option(help="--no-seed: the store (--store-url) and --work-dir hold the data "
                                            "of an earlier run.")] = True,
) -> None:
    """First render of the command center and the environment page, kiosk fragment refresh and server memory,
    against months of data, next to the bare InfluxDB query time. Prints one JSON line."""
    from bench.dashboard import run_bench

    if not seed and (store_url is None or work_dir is None):
        typer.echo("--no-seed needs --store-url and --work-dir of an earlier run", err=True)
        raise typer.Exit(2)
    run_bench(days=days, devices=devices, repeat=repeat, refreshes=refreshes, store_url=store_url,
              work_dir=work_dir, reseed=seed)


@devices_app.command("list")
def devices_list() -> None:
    """List registered devices with status, online state and last seen."""
    from orchard.records import Records

    s = load_settings()
    for d in Records.open(s).devices():
        online = {None: "?", True: "online", False: "offline"}[d.online]
        typer.echo(f"{d.device:24} {d.site:12} {d.plot:10} {d.status:9} {online:8} {d.last_seen_ns or '-'}")


@devices_app.command("approve")
def devices_approve(device: str) -> None:
    """Approve a pending device and replay the readings held for it into the store."""
    from orchard.records import Records
    from orchard.store import open_store
    from sensors.registry import approve

    s = load_settings()
    try:
        r = approve(device, s, Records.open(s), open_store(s.store_url))
    except KeyError as e:
        typer.echo(str(e.args[0]), err=True)
        raise typer.Exit(1) from None
    typer.echo(f"已批准 approved {device}: {r.replayed} 条暂存数据已写入 held messages stored, "
               f"{r.still_refused} 条仍无效 still invalid")


@devices_app.command("reject")
def devices_reject(device: str) -> None:
    """Reject a device: its telemetry goes to the dead-letter from now on."""
    from orchard.records import Records

    s = load_settings()
    if not Records.open(s).set_device_status(device, "rejected"):
        typer.echo(f"设备 {device} 不在登记表中 / device {device} is not in the registry", err=True)
        raise typer.Exit(1)
    typer.echo(f"已拒绝 rejected {device}")


@devices_app.command("profiles")
def devices_profiles(
    as_json: Annotated[bool, typer.Option("--json", help="One JSON list of {id, vendor, model, kind, readings, "
                                                         "description, source}.")] = False,
) -> None:
    """设备型号 The sensor models this installation can decode (sensors/profiles/): id, vendor, model, readings."""
    import json

    from sensors.profiles import profiles

    rows = [{"id": p.id, "vendor": p.vendor, "model": p.model, "kind": p.kind, "readings": p.readings,
             "description": p.description, "source": p.source} for p in profiles().values()]
    if as_json:
        typer.echo(json.dumps(rows, ensure_ascii=False))
        return
    for r in rows:
        typer.echo(f"{r['id']:28} {r['vendor']:18} {r['model']:22} {', '.join(r['readings'])}")


@devices_app.command("decode")
def devices_decode(
    file: Annotated[str, typer.Argument(help="A ChirpStack v4 up event, a The Things Stack v3 uplink, a native "
                                             "telemetry message, a decoded JSON object, a Modbus frame (bytes or "
                                             "hex), or - for standard input.")],
    profile: Annotated[str, typer.Option(help="The device profile's id (`orchard devices profiles`).")],
) -> None:
    """Check a sensor before deploying it: what its payload becomes, as one JSON line (readings, battery_v or
    battery_pct, ignored, unmapped). Exits 2 with the reason when the payload cannot be decoded."""
    import json
    import sys

    from sensors.profiles import DecodeError, ProfileError, decode_message
    from sensors.profiles import profile as find

    try:
        p = find(profile)
        data = sys.stdin.buffer.read() if file == "-" else Path(file).read_bytes()
        what, decoded = decode_message(p, data)
    except (ProfileError, DecodeError, OSError) as e:
        typer.echo(f"无法解码 / cannot decode: {e}", err=True)
        raise typer.Exit(2) from None
    typer.echo(json.dumps({"profile": p.id, "input": what, **decoded.as_json()}, ensure_ascii=False))


def main() -> None:
    # What the services write holds password hashes, phone numbers, people's photos and backups of it all: for
    # this account only (files 0600, directories 0700). The broker's passwd and acl are made readable on purpose.
    os.umask(0o077)
    app()


@analytics_app.command("rules")
def analytics_rules(
    json_out: Annotated[bool, typer.Option("--json", help="One JSON object instead of the list.")] = False,
) -> None:
    """The rule pack: each rule's settings with their defaults, descriptions and the site's own values (what
    `replay --set rule.param=value` can change)."""
    import orjson

    from analytics.rules import PlotRule, load
    from orchard.site import SiteError, site_for

    try:
        site = site_for(load_settings())
    except SiteError as e:
        typer.echo(str(e), err=True)
        raise typer.Exit(2) from None
    out: dict[str, dict[str, object]] = {}
    for name, cls in sorted(load().items()):
        mine = site.rules.get(name, {})
        out[name] = {"plot_rule": issubclass(cls, PlotRule),
                     "settings": {f: {"default": info.default, "site": mine.get(f), "description": info.description}
                                  for f, info in cls.Config.model_fields.items() if f != "plots"}}
    if json_out:
        typer.echo(orjson.dumps(out, default=str).decode())
        return
    for name, rule in out.items():
        typer.echo(name)
        settings: dict[str, dict[str, object]] = rule["settings"]  # type: ignore[assignment]
        for f, info in settings.items():
            here = f" (site: {info['site']})" if info["site"] is not None else ""
            typer.echo(f"  {f} = {info['default']}{here}  {info['description']}")
