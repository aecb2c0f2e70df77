"""One message for one recipient: what, where, how bad, since when, what to do, in their language, with their
personal signed link."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime

from orchard import i18n
from orchard.links import sign
from orchard.models import Alarm
from orchard.records.alarms import alarm_text
from orchard.records.snapshots import SnapshotRef
from orchard.settings import NotifySettings
from orchard.site import Site

ICONS = {"critical": "🔴", "major": "🟠", "warning": "🟡", "info": "🔵"}


@dataclass(frozen=True, slots=True)
class Message:
    alarm_id: int | None  # None: not about one alarm (the daily digest)
    severity: str
    subject: str  # one line: e-mail subject, SMS start, robot title
    markdown: str  # for DingTalk, WeCom and the inbox
    plain: str  # for e-mail and SMS
    link: str | None


def link_for(notification_id: int, cfg: NotifySettings, now_s: float | None = None) -> str | None:
    if cfg.link_secret is None:
        return None
    expires = int((now_s if now_s is not None else time.time()) + cfg.link_ttl_h * 3600)
    token = sign(notification_id, expires, cfg.link_secret.get_secret_value())
    return f"{cfg.public_url.rstrip('/')}/receipt?t={token}"


def _camera_label(site: Site, camera: str) -> str:
    return next((c.label() for c in site.cameras if c.id == camera), camera)


def compose(alarm: Alarm, kind: str, lang: str, site: Site, link: str | None,
            photo: SnapshotRef | None = None) -> Message:
    words = alarm_text(alarm, lang, site)
    where = site.plot_label(alarm.plot, lang) if alarm.plot else (alarm.device or alarm.source)
    owner = site.plot_by_id[alarm.plot].owner if alarm.plot in site.plot_by_id else ""
    since = datetime.fromtimestamp(alarm.started_ns / 1e9, site.tz).strftime("%m-%d %H:%M")
    prefix = {"reminder": i18n.t("notify.reminder", lang), "cleared": i18n.t("notify.cleared", lang)}.get(kind, "")
    subject = f"{prefix}[{words.severity}] {words.title} · {where}{f' ({owner})' if owner else ''}"
    lines = [words.text, i18n.t("notify.since", lang, time=since), i18n.t("notify.advice", lang, advice=words.advice)]
    if kind == "cleared":
        lines = [i18n.t("notify.cleared_text", lang), *lines[:2]]
    elif photo is not None:  # the camera's picture of it is on the linked page
        taken = datetime.fromtimestamp(photo.time_ns / 1e9, site.tz).strftime("%H:%M:%S")
        key = "notify.photo_link" if link else "notify.photo"
        lines.append(i18n.t(key, lang, camera=_camera_label(site, photo.camera), time=taken))
    # Markdown for the robots and the inbox: a text may quote people's words (a work order's title), shown as typed
    md = [f"### {ICONS.get(alarm.severity, '')} {i18n.neutral(subject)}", *(f"- {i18n.neutral(x)}" for x in lines)]
    if link:
        md.append(f"[{i18n.t('notify.open', lang)}]({link})")
    plain = "\n".join([subject, *lines, *([f"{i18n.t('notify.open', lang)}: {link}"] if link else [])])
    return Message(alarm.id, alarm.severity, subject, "\n".join(md), plain, link)
