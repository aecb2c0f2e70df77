"""`orchard admin`: what the county's operator does to a running village, each action written to the audit log.

    orchard admin user add|passwd|disable|list       people, their roles, plots and passwords
    orchard admin device add|revoke|list             the registry and each device's MQTT credentials
    orchard admin mqtt-auth                           the broker's passwd and acl files, from .env and the DB
    orchard admin plots import FILE.geojson           plot outlines and facts, checked before they replace the old
    orchard admin camera add|remove|list|probe        cameras in site.toml; which of a camera's addresses work
    orchard admin county check FILE [--only TOWN,...]  a county file and its villages' site files, checked
    orchard admin kiosk-link                          the wall screen's signed address
    orchard admin backup FILE | restore FILE          records, time series and files
    orchard admin audit                               who did what
"""

from __future__ import annotations

import getpass
import json
import re
import secrets
import shutil
import sys
import time
import tomllib
from pathlib import Path
from typing import Annotated

import typer

from app.config import load_settings
from orchard.records import Records
from orchard.records.audit import AuditLog
from orchard.settings import Settings
from orchard.site import SHIPPED, CameraKind

admin_app = typer.Typer(help="管理 Administration: users, devices, plots, cameras, backups, the audit log.",
                        no_args_is_help=True)
user_app = typer.Typer(help="人员与账号 People, roles, plots and dashboard passwords.", no_args_is_help=True)
device_app = typer.Typer(help="设备与 MQTT 凭据 Devices and their MQTT credentials.", no_args_is_help=True)
plots_app = typer.Typer(help="地块 Plot outlines and facts.", no_args_is_help=True)
camera_app = typer.Typer(help="摄像头 Cameras in site.toml.", no_args_is_help=True)
admin_app.add_typer(user_app, name="user")
admin_app.add_typer(device_app, name="device")
admin_app.add_typer(plots_app, name="plots")
admin_app.add_typer(camera_app, name="camera")
county_app = typer.Typer(help="县 The county file: towns and their villages.", no_args_is_help=True)
admin_app.add_typer(county_app, name="county")
SHIPPED_SITES = SHIPPED.resolve()  # the sites inside the package, which an upgrade replaces


def settings() -> Settings:
    return load_settings()


def actor() -> str:
    return f"cli:{getpass.getuser()}"


def fail(message: str, code: int = 2) -> typer.Exit:
    typer.echo(message, err=True)
    return typer.Exit(code)


def audit(records: Records, action: str, target: str, **detail: object) -> None:
    AuditLog(records).record(actor(), action, target, time.time_ns(), **detail)


def _site_plots(s: Settings) -> set[str]:
    from orchard.site import SiteError, site_for

    try:
        return {p.id for p in site_for(s).plots}
    except SiteError as e:
        raise fail(str(e)) from None


def _new_password(given: str | None, stdin: bool) -> tuple[str, bool]:
    """The password to set: typed on stdin, given, or made here (then shown once). Returns it and whether made."""
    if stdin:
        return sys.stdin.readline().rstrip("\n"), False
    if given:
        return given, False
    return secrets.token_urlsafe(12), True


# -- users --------------------------------------------------------------------------------------------------------
def _check_place(s: Settings, role: str, village: str | None, town: str | None) -> None:
    """The village or town named is one of the county's, and fits the role."""
    from orchard.county import CountyError, county_for
    from orchard.site import site_for

    try:
        county = county_for(s, site_for(s))
    except CountyError as e:
        raise fail(str(e)) from None
    if village is not None and village not in county.sites:
        raise fail(f"县里没有这个村 / no such village in {county.info.id}: {village}")
    if town is not None and county.town(town) is None:
        raise fail(f"县里没有这个乡镇 / no such town in {county.info.id}: {town}")
    if town is not None and role != "town":
        raise fail("只有乡镇工作人员有 --town / only town staff (--role town) have a town")
    if role in ("town", "county") and village is not None:
        raise fail("乡镇和县级工作人员不属于某个村 / town and county staff belong to no village")



@user_app.command("add")
def user_add(
    name: str,
    display: Annotated[str, typer.Option(help="Name shown to people, e.g. 王建国.")],
    role: Annotated[str, typer.Option(help="farmer, adviser, center (village staff), town, county or kiosk.")],
    plots: Annotated[str, typer.Option(help="Comma-separated plot ids the farmer owns or the adviser covers.")] = "",
    channels: Annotated[str, typer.Option(help="Comma-separated: inbox, dingtalk, wecom, email, sms, webhook.")]
    = "inbox",
    phone: Annotated[str | None, typer.Option(help="Mobile number (SMS, DingTalk @).")] = None,
    email: Annotated[str | None, typer.Option(help="E-mail address (also the single sign-on identity).")] = None,
    lang: Annotated[str, typer.Option(help="zh or en: the language of their messages.")] = "zh",
    quiet: Annotated[str | None, typer.Option(help="Quiet hours, local, e.g. 22:00-06:30 (critical alarms "
                                                   "still come through).")] = None,
    password: Annotated[bool, typer.Option("--password/--no-password",
                                           help="Give them a dashboard password (made here and shown once).")]
    = False,
    village: Annotated[str | None, typer.Option(help="The village they belong to (a village of the county "
                                                     "file; default: this site).")] = None,
    town: Annotated[str | None, typer.Option(help="Town staff: their town (a town of the county file).")] = None,
) -> None:
    """Add or update a person, where they belong in the county and the plots they own or cover."""
    from orchard.records.accounts import Accounts
    from orchard.records.people import People, User

    s = settings()
    plot_ids = [p.strip() for p in plots.split(",") if p.strip()]
    if bad := sorted(set(plot_ids) - _site_plots(s)):
        raise fail(f"没有这些地块 / no such plots: {', '.join(bad)}")
    quiet_from, quiet_to = [*quiet.split("-", 1), ""][:2] if quiet else (None, None)
    _check_place(s, role, village, town)
    records = Records.open(s)
    people = People(records)
    try:
        people.upsert(User(name, display, role, lang, phone, email,  # type: ignore[arg-type]
                           tuple(c.strip() for c in channels.split(",") if c.strip()), quiet_from or None,
                           quiet_to or None, village=village, town=town))
    except ValueError as e:
        raise fail(f"人员信息有误 / invalid: {e}") from None
    if role in ("farmer", "adviser"):
        people.set_plots(name, plot_ids, "owns" if role == "farmer" else "covers")
    audit(records, "user.add", name, role=role, plots=plot_ids)
    typer.echo(f"已保存 saved {name} ({role}) {','.join(plot_ids)}")
    if password:
        made = secrets.token_urlsafe(12)
        Accounts(records, s.dashboard).set_password(name, made, time.time_ns())
        audit(records, "user.password", name)
        typer.echo(f"登录密码（只显示这一次）/ dashboard password (shown once): {made}")


@user_app.command("passwd")
def user_passwd(
    name: str,
    password: Annotated[str | None, typer.Option(help="The new password; default: one is made and shown once.")]
    = None,
    stdin: Annotated[bool, typer.Option("--stdin", help="Read the new password from standard input.")] = False,
) -> None:
    """Set or reset someone's dashboard password; their open sessions end."""
    from orchard.records.accounts import Accounts, WeakPassword

    s = settings()
    records = Records.open(s)
    new, made = _new_password(password, stdin)
    try:
        Accounts(records, s.dashboard).set_password(name, new, time.time_ns())
    except KeyError:
        raise fail(f"没有这个人 / no such user: {name}") from None
    except WeakPassword as e:
        raise fail(f"密码太弱 / weak password: {e}") from None
    audit(records, "user.password", name)
    typer.echo(f"已设置 password set for {name}" + (f": {new}  (只显示这一次 / shown once)" if made else ""))


@user_app.command("disable")
def user_disable(name: str) -> None:
    """Disable an account: no sign-in, no messages; their sessions end at once."""
    from dataclasses import replace

    from orchard.records.accounts import Accounts
    from orchard.records.people import People

    s = settings()
    records = Records.open(s)
    people = People(records)
    if (u := people.get(name)) is None:
        raise fail(f"没有这个人 / no such user: {name}")
    people.upsert(replace(u, active=False))
    ended = Accounts(records, s.dashboard).end_sessions(name)
    audit(records, "user.disable", name, sessions_ended=ended)
    typer.echo(f"已停用 disabled {name} ({ended} sessions ended)")


@user_app.command("list")
def user_list() -> None:
    """People with their role, plots, channels, quiet hours and whether they can sign in."""
    from orchard.records.accounts import Accounts
    from orchard.records.people import People

    s = settings()
    records = Records.open(s)
    people, accounts = People(records), Accounts(records, s.dashboard)
    for u in people.all():
        quiet = f"{u.quiet_from}-{u.quiet_to}" if u.quiet_from else "-"
        sign_in = "password" if accounts.has_password(u.name) else "-"
        place = u.town or u.village or "-"
        typer.echo(f"{u.name:16} {u.display:10} {u.role:8} {place:12} "
                   f"{','.join(sorted(people.plots_of(u.name))) or '-':20} "
                   f"{','.join(u.channels):20} {quiet:12} {sign_in:9} {'active' if u.active else 'disabled'}")


# -- devices and the broker ---------------------------------------------------------------------------------------
@device_app.command("add")
def device_add(
    device: str,
    plot: str,
    kind: Annotated[str, typer.Option(help="weather_station, soil_probe, gateway, ...")] = "",
    dev_eui: Annotated[str | None, typer.Option(help="LoRaWAN devEUI for ChirpStack uplinks.")] = None,
    profile: Annotated[str | None, typer.Option(help="The sensor model's profile (`orchard devices profiles`): "
                                                     "how its payload maps to readings.")] = None,
) -> None:
    """Register (approve) a device and issue its MQTT credentials; the password is shown once."""
    from app.mqttauth import DeviceKeyError, DeviceKeys, device_topic, write_auth
    from orchard.models import Device, DeviceStatus
    from sensors.profiles import ProfileError
    from sensors.profiles import profile as find_profile

    s = settings()
    if plot not in _site_plots(s):
        raise fail(f"没有这个地块 / no such plot: {plot}")
    if profile is not None:
        try:
            find_profile(profile)
        except ProfileError as e:
            raise fail(f"没有这个设备型号 / {e}") from None
    records = Records.open(s)
    topic = device_topic(s, plot, device)
    try:
        password = DeviceKeys(records).issue(device, topic, time.time_ns())
    except DeviceKeyError as e:
        raise fail(str(e)) from None
    records.upsert_device(Device(device, s.site, plot, DeviceStatus.APPROVED, kind,
                                 dev_eui.lower() if dev_eui else None, profile=profile))
    passwd, _ = write_auth(s, records)
    audit(records, "device.add", device, plot=plot, topic=topic, profile=profile)
    typer.echo(f"已登记 registered {device} on {plot}\n"
               f"  MQTT user:     {device}\n  MQTT password: {password}   (只显示这一次 / shown once)\n"
               f"  publishes to:  {topic}/telemetry, {topic}/status\n"
               f"broker files updated in {passwd.parent}; reload the broker: docker compose kill -s SIGHUP mosquitto")


@device_app.command("revoke")
def device_revoke(device: str) -> None:
    """Take a device's MQTT credentials away (a stolen or retired device)."""
    from app.mqttauth import DeviceKeys, write_auth

    s = settings()
    records = Records.open(s)
    if not DeviceKeys(records).revoke(device, time.time_ns()):
        raise fail(f"设备 {device} 没有有效凭据 / device {device} has no active credentials")
    write_auth(s, records)
    audit(records, "device.revoke", device)
    typer.echo(f"已吊销 revoked {device}; reload the broker: docker compose kill -s SIGHUP mosquitto")


@device_app.command("list")
def device_list() -> None:
    """Registered devices with their credentials' state."""
    from app.mqttauth import DeviceKeys

    records = Records.open(settings())
    keys = {k.device: k for k in DeviceKeys(records).all()}
    for d in records.devices():
        k = keys.get(d.device)
        cred = "-" if k is None else "revoked" if k.revoked_ns else "active"
        typer.echo(f"{d.device:24} {d.plot:10} {d.status:9} {d.kind or '-':16} mqtt:{cred}")


@admin_app.command("mqtt-auth")
def mqtt_auth(out: Annotated[Path | None, typer.Option(help="Directory; default: ORCHARD_MQTT_ACCOUNTS__AUTH_DIR.")]
              = None) -> None:
    """Write the broker's passwd and acl from the service passwords (.env) and the devices' credentials."""
    from app.mqttauth import EXTRA_INGEST, SERVICES, write_auth

    s = settings()
    passwd, acl = write_auth(s, Records.open(s), out)
    missing = [n for n in SERVICES if getattr(s.mqtt_accounts, n) is None and n not in EXTRA_INGEST]
    typer.echo(f"wrote {passwd} and {acl}" + (f"; accounts without a password (cannot connect): {', '.join(missing)}"
                                             if missing else ""))


# -- plots and cameras --------------------------------------------------------------------------------------------
def _own_site_file(s: Settings) -> Path:
    """The site.toml to edit: the operator's own copy (ORCHARD_SITE_FILE), never the one shipped in the package."""
    from orchard.site import site_file

    path = site_file(s)
    if SHIPPED_SITES in path.resolve().parents:
        raise fail(f"站点文件是程序自带的 {path}；请先复制一份并设置 ORCHARD_SITE_FILE（orchard admin site-copy DIR）/ "
                   "the site file is the packaged one: copy it (orchard admin site-copy DIR) and set ORCHARD_SITE_FILE")
    return path


@admin_app.command("site-copy")
def site_copy(target: Path) -> None:
    """Copy the shipped site (site.toml and plots.geojson) to a directory of your own, to edit and point
    ORCHARD_SITE_FILE at."""
    from orchard.site import site_file

    s = settings()
    src = site_file(s).parent
    if target.exists() and any(target.iterdir()):
        raise fail(f"{target} 不是空目录 / is not empty")
    shutil.copytree(src, target, dirs_exist_ok=True)
    audit(Records.open(s), "site.copy", str(target), source=str(src))
    typer.echo(f"copied {src} to {target}; now set ORCHARD_SITE_FILE={target / 'site.toml'}")


def _check_and_swap(s: Settings, path: Path, new_text: str | bytes) -> None:
    """Write a site file, load the whole site again, and put the old file back if it no longer loads."""
    from orchard.site import SiteError, load_site

    old = path.read_bytes() if path.exists() else None
    path.write_bytes(new_text.encode() if isinstance(new_text, str) else new_text)
    try:
        load_site(_own_site_file(s))
    except SiteError as e:
        if old is None:
            path.unlink()
        else:
            path.write_bytes(old)
        raise fail(f"没有修改，新内容有误 / nothing changed, the new content is invalid:\n{e}") from None


@plots_app.command("import")
def plots_import(geojson: Path) -> None:
    """Replace the site's plots with a GeoJSON FeatureCollection (properties: id, name, owner, variety, area_mu,
    ...). Checked first: every device and camera must still stand on a plot."""
    from orchard.site import plots_from_geojson

    s = settings()
    site_toml = _own_site_file(s)
    try:
        data = json.loads(geojson.read_text(encoding="utf-8"))
        plots = plots_from_geojson(data)
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise fail(f"读不了这个 GeoJSON / cannot read {geojson}: {e}") from None
    plots_file = site_toml.parent / tomllib.loads(site_toml.read_text(encoding="utf-8")).get("site", {}).get(
        "plots_file", "plots.geojson")
    _check_and_swap(s, plots_file, geojson.read_bytes())
    audit(Records.open(s), "plots.import", str(geojson), plots=[str(p.get("id")) for p in plots])
    typer.echo(f"已导入 imported {len(plots)} plots into {plots_file}; restart the services to use them")


CAMERA_KINDS = tuple(CameraKind)  # the site file's kinds, from their one definition


@camera_app.command("add")
def camera_add(
    camera: str,
    plot: str,
    name: Annotated[str, typer.Option(help="What people call it, e.g. 大湾园区路口.")],
    kind: Annotated[str, typer.Option(help=f"One of {', '.join(CAMERA_KINDS)}.")] = "snapshot",
    url: Annotated[str, typer.Option(help="Snapshot or stream URL (without the password), or a file path.")] = "",
    username: Annotated[str | None, typer.Option(help="User name for the camera's HTTP authentication.")] = None,
    password_env: Annotated[str | None, typer.Option(help="Environment variable that holds its password.")] = None,
) -> None:
    """Add a camera to site.toml (checked by loading the whole site; nothing changes if it does not load)."""
    s = settings()
    path = _own_site_file(s)
    if not re.fullmatch(r"[\w.-]{1,64}", camera):
        raise fail(f"摄像头编号不合法 / bad camera id: {camera!r}")
    lines = ["", "[[cameras]]", f"id = {json.dumps(camera)}", f"plot = {json.dumps(plot)}",
             f"name = {json.dumps(name, ensure_ascii=False)}", f"kind = {json.dumps(kind)}", f"url = {json.dumps(url)}"]
    if username:
        lines.append(f"username = {json.dumps(username)}")
    if password_env:
        lines.append(f"password_env = {json.dumps(password_env)}")
    _check_and_swap(s, path, path.read_text(encoding="utf-8").rstrip("\n") + "\n" + "\n".join(lines) + "\n")
    audit(Records.open(s), "camera.add", camera, plot=plot, kind=kind)
    typer.echo(f"已添加 added {camera} on {plot}; restart the cameras service to use it")


@camera_app.command("remove")
def camera_remove(camera: str) -> None:
    """Take a camera out of site.toml."""
    s = settings()
    path = _own_site_file(s)
    text = path.read_text(encoding="utf-8")
    blocks = re.split(r"(?m)^(?=\[)", text)
    kept = [b for b in blocks if not (b.startswith("[[cameras]]") and re.search(
        rf'(?m)^id\s*=\s*"{re.escape(camera)}"\s*$', b))]
    if len(kept) == len(blocks):
        raise fail(f"没有这个摄像头 / no such camera: {camera}")
    _check_and_swap(s, path, "".join(kept))
    audit(Records.open(s), "camera.remove", camera)
    typer.echo(f"已删除 removed {camera}; restart the cameras service")


@camera_app.command("probe")
def camera_probe(
    target: Annotated[str, typer.Argument(help="The camera's address: 192.168.1.64, or a whole rtsp:// or http:// "
                                          "URL.")],
    username: Annotated[str | None, typer.Option(help="The camera's user (usually admin).")] = "admin",
    password_env: Annotated[str | None, typer.Option(help="Environment variable that holds its password.")] = None,
    channel: Annotated[int, typer.Option(help="Channel (1 for a camera; the input on an NVR).")] = 1,
    rtsp_port: Annotated[int, typer.Option(help="The camera's RTSP port.")] = 554,
    http_port: Annotated[int, typer.Option(help="The camera's HTTP port (snapshots, ONVIF).")] = 80,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for each address.")] = 5.0,
) -> None:
    """Try the Hikvision, Dahua, Uniview and EZVIZ addresses and ONVIF; say what works and what to put in site.toml."""
    from video.probe import best, probe
    from video.sources import CameraUnavailable, camera_password

    try:
        password = camera_password(password_env, target)
    except CameraUnavailable as e:
        raise fail(str(e)) from None
    found = probe(target, username, password, channel=channel, rtsp_port=rtsp_port, http_port=http_port,
                  timeout_s=timeout)
    for p in found:
        typer.echo(f"{'✔' if p.ok else '✘'} {p.source:28} {p.url}\n    {p.detail}")
    pick = best(found)
    if pick is None:
        raise fail("没有找到可用的视频流：检查地址、端口、用户名和密码，或在摄像机上开启 RTSP / no working stream: "
                   "check the address, ports, user and password, or switch RTSP on in the camera", code=1)
    typer.echo(f"\n建议 suggested: orchard admin camera add <id> <plot> --name <名称> --kind rtsp --url '{pick.url}'"
               + (f" --username {username}" if username else "")
               + (f" --password-env {password_env}" if password_env else ""))


@camera_app.command("list")
def camera_list() -> None:
    from orchard.site import site_for

    for c in site_for(settings()).cameras:
        typer.echo(f"{c.id:16} {c.plot:8} {c.kind:10} {c.label()}")


@county_app.command("check")
def county_check(
    county_file: Annotated[Path, typer.Argument(help="county.toml: the county, its towns and their villages.")],
    only: Annotated[str, typer.Option(help="Only these towns or villages, comma-separated (what one process "
                                           "would serve).")] = "",
) -> None:
    """Read a county file and every village's site file, and say what the county holds (or what to fix)."""
    from orchard.county import CountyError, load_county

    try:
        county = load_county(county_file)
        served = county.villages([x.strip() for x in only.split(",") if x.strip()] or None)
    except CountyError as e:
        raise fail(str(e)) from None
    typer.echo(f"{county.info.name} ({county.info.id}): {len(county.towns)} towns, {len(county.sites)} villages")
    for town in county.towns:
        for v in town.villages:
            if v.id in served:
                site = county.sites[v.id]
                typer.echo(f"  {town.name:8} {v.id:16} {site.site.name:10} {len(site.plots):3} plots "
                           f"{len(site.devices):4} devices {len(site.cameras):3} cameras")


# -- the wall screen, backups, the audit log ----------------------------------------------------------------------
@admin_app.command("kiosk-link")
def kiosk_link(days: Annotated[int, typer.Option(help="How long the link works.")] = 365) -> None:
    """The wall screen's address: read-only, every plot, no personal data. Rotate
    ORCHARD_DASHBOARD__KIOSK_SECRET to end every link at once."""
    from orchard.links import sign_screen

    s = settings()
    if s.dashboard.kiosk_secret is None:
        raise fail("请先在 .env 设置 ORCHARD_DASHBOARD__KIOSK_SECRET / set ORCHARD_DASHBOARD__KIOSK_SECRET first")
    token = sign_screen(int(time.time()) + days * 86400, s.dashboard.kiosk_secret.get_secret_value())
    audit(Records.open(s), "kiosk.link", "", days=days)
    typer.echo(f"{s.notify.public_url.rstrip('/')}/?kiosk={token}")


@admin_app.command("backup")
def backup_cmd(out: Path) -> None:
    """Write the records DB, the time series and the snapshot and photo files to one .tar.gz."""
    from app.backup import backup
    from orchard.logs import progress
    from orchard.store import open_store

    s = settings()
    records, store = Records.open(s), open_store(s.store_url)
    with progress() as bar:
        task = bar.add_task("备份 backup", total=None)
        summary = backup(records, store, s.data_dir, s.snapshot_dir, out,
                         lambda what, n: bar.update(task, advance=n, description=what))
    audit(records, "backup", str(out), rows=sum(summary.rows.values()), points=sum(summary.points.values()),
          files=summary.files)
    typer.echo(f"备份完成 backup written: {out} ({sum(summary.rows.values())} rows, "
               f"{sum(summary.points.values())} time-series rows, {summary.files} files)")


@admin_app.command("restore")
def restore_cmd(archive: Path) -> None:
    """Restore a backup into an empty records DB and store (a new server, or after a disaster)."""
    from app.backup import BackupError, restore
    from orchard.logs import progress
    from orchard.store import open_store

    s = settings()
    records, store = Records.open(s), open_store(s.store_url)
    try:
        with progress() as bar:
            task = bar.add_task("恢复 restore", total=None)
            summary = restore(records, store, s.data_dir, s.snapshot_dir, archive,
                              lambda what, n: bar.update(task, advance=n, description=what))
    except BackupError as e:
        raise fail(str(e)) from None
    audit(records, "restore", str(archive), rows=sum(summary.rows.values()), files=summary.files)
    typer.echo(f"恢复完成 restored {archive}")


@admin_app.command("audit")
def audit_list(limit: Annotated[int, typer.Option(help="How many, newest first.")] = 50,
               action: Annotated[str | None, typer.Option(help="Only this action, e.g. device.add.")] = None) -> None:
    """Who did what, newest first."""
    from datetime import UTC, datetime

    for e in AuditLog(Records.open(settings())).entries(limit, action):
        when = datetime.fromtimestamp(e.time_ns / 1e9, UTC).strftime("%Y-%m-%d %H:%M:%SZ")
        detail = " ".join(f"{k}={v}" for k, v in e.detail.items())
        typer.echo(f"{when} {e.actor:16} {e.action:16} {e.target:24} {detail}")
