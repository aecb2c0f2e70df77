"""One message for one recipient: what, where, how bad, since when, what to do, in their language, with their
personal signed link."""

from __future__ import annotations

import time
from collections.abc import Sequence
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
    alarm_ids: tuple[int, ...] = ()  # every alarm it tells of (a group has several); empty for the digest


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
    return Message(alarm.id, alarm.severity, subject, "\n".join(md), plain, link, (alarm.id,))


def compose_group(alarms: Sequence[Alarm], kind: str, lang: str, site: Site, link: str | None,
                  photo: SnapshotRef | None = None, compact: bool = False) -> Message:
    """One message for one rule's alarms raised together (orchard/grouping.py): the rule, how many plots, each
    plot's own sentence (most severe first), the advice once; `compact` (a group chat's post, which must stay
    small): the worst plot's sentence and the plots by name. A group of one is the alarm's own message."""
    if len(alarms) == 1:
        return compose(alarms[0], kind, lang, site, link, photo)
    alarms = sorted(alarms, key=lambda a: (-a.severity.rank, a.started_ns, a.id))
    worst = alarms[0]
    words = alarm_text(worst, lang, site)
    plots = list(dict.fromkeys(a.plot for a in alarms if a.plot))
    count = i18n.t("cc.group_plots", lang, n=len(plots)) if plots else i18n.t("cc.group_alarms", lang, n=len(alarms))
    since = datetime.fromtimestamp(min(a.started_ns for a in alarms) / 1e9, site.tz).strftime("%m-%d %H:%M")
    prefix = {"reminder": i18n.t("notify.reminder", lang), "cleared": i18n.t("notify.cleared", lang)}.get(kind, "")
    subject = f"{prefix}[{words.severity}] {words.title} · {count}"
    each = []
    mixed = len({a.severity for a in alarms}) > 1  # then each line says how bad it is
    for a in alarms:
        where = site.plot_label(a.plot, lang) if a.plot else (a.device or a.source)
        owner = site.plot_by_id[a.plot].owner if a.plot in site.plot_by_id else ""
        icon = f"{ICONS.get(a.severity, '')} " if mixed or compact else ""
        each.append(f"{icon}{where}{f' ({owner})' if owner else ''}" if compact
                    else f"{icon}{where}{f' ({owner})' if owner else ''}: {alarm_text(a, lang, site).text}")
    if compact:  # the worst plot's sentence, then the plots, one a line
        each = [words.text, *each]
    head = [i18n.t("notify.cleared_text", lang)] if kind == "cleared" else []
    tail = [] if kind == "cleared" else [i18n.t("notify.advice", lang, advice=words.advice)]
    lines = [*head, i18n.t("notify.since", lang, time=since), *each, *tail]
    if photo is not None and kind != "cleared":
        taken = datetime.fromtimestamp(photo.time_ns / 1e9, site.tz).strftime("%H:%M:%S")
        lines.append(i18n.t("notify.photo_link" if link else "notify.photo", lang,
                            camera=_camera_label(site, photo.camera), time=taken))
    md = [f"### {ICONS.get(worst.severity, '')} {i18n.neutral(subject)}", *(f"- {i18n.neutral(x)}" for x in lines)]
    if link:
        md.append(f"[{i18n.t('notify.open', lang)}]({link})")
    plain = "\n".join([subject, *lines, *([f"{i18n.t('notify.open', lang)}: {link}"] if link else [])])
    return Message(worst.id, worst.severity, subject, "\n".join(md), plain, link, tuple(a.id for a in alarms))
