"""回执: where a recipient's personal link lands. Opening it records the read; the button acknowledges.

The link's signed token names the notification (and so the person and the alarm); nothing else from the URL is
trusted. An expired or altered link says so and records nothing.
"""

from __future__ import annotations

import time

import streamlit as st

from dashboard import cameras, shell
from dashboard import notices as shown_notice
from orchard.links import LinkError, verify, verify_notice
from orchard.models import Alarm
from orchard.records.alarms import AlarmBook, alarm_text
from orchard.records.notices import NoticeBook
from orchard.records.outbox import Outbox
from orchard.records.people import People

# Where this page sits in the navigation (dashboard/views/__init__.py reads it without running the page).
NAV = {"url": "receipt", "title": "nav.receipt", "icon": "✅", "order": 90, "public": True, "menu": False}

v = shell.view()
site = shell.site()
cfg = shell.settings().notify
records = shell.records()

if notice_token := st.query_params.get("n", ""):  # a notice's link (dashboard/notices.py), not an alarm's
    if cfg.link_secret is None:
        st.error(v.t("receipt.no_link"))
        st.stop()
    try:
        notice_id, reader = verify_notice(notice_token, cfg.link_secret.get_secret_value(), time.time())
    except LinkError as e:
        st.error(v.t(f"receipt.{e.reason}"))
        st.stop()
    notice_book = NoticeBook(records, shell.county())
    notice, recipient = notice_book.get(notice_id), notice_book.recipient(notice_id, reader)
    reader_user = People(records).get(reader)
    if notice is None or recipient is None:
        st.error(v.t("receipt.tampered"))
        st.stop()
    if reader_user is None or not reader_user.active:
        st.error(v.t("receipt.inactive_notice"))
        st.stop()
    if "lang" not in st.query_params:
        v = shell.View(reader_user.lang, v.kiosk)
    shown_notice.show(notice, recipient, v, notice_book, key="receipt_notice")
    st.stop()

token = st.query_params.get("t", "")
if cfg.link_secret is None or not token:
    st.error(v.t("receipt.no_link"))
    st.stop()
try:
    nid = verify(token, cfg.link_secret.get_secret_value(), time.time())
except LinkError as e:
    st.error(v.t(f"receipt.{e.reason}"))
    st.stop()

outbox, book = Outbox(records), AlarmBook(records, site.id)
note = outbox.get(nid)
if note is None:
    st.error(v.t("receipt.tampered"))
    st.stop()
person = People(records).get(note.user)
if person is None or not person.active:  # disabled (or removed) since the message went out: nothing in their name
    st.error(v.t("receipt.inactive"))
    st.stop()
note = outbox.read(nid, time.time_ns()) or note
lang = person.lang if person and "lang" not in st.query_params else v.lang
# One message may have carried a group of alarms (one rule across several plots): opening it reads them all.
together = outbox.sent_with(note)
if len(together) > 1:
    outbox.read_all([n.id for n in together[1:]], time.time_ns())
alarms = list({n.alarm_id: book.get(n.alarm_id) for n in together}.values())
who = person.display if person else note.user


def show(alarm: Alarm, heading: bool) -> None:
    words = alarm_text(alarm, lang, site)
    where = site.plot_label(alarm.plot, lang) if alarm.plot else alarm.source
    if heading:
        st.title(f"{words.title} · {where}")
    else:
        st.subheader(where)
    st.markdown(f"**{words.severity}** — {words.text}")
    st.markdown(f"**{v.t('receipt.since')}** {v.fmt_time(alarm.started_ns)}")
    if heading:
        st.info(words.advice)
    cameras.evidence(book.evidence(alarm.id)[:3], v, full=True)  # the camera's clip and picture of it
    if alarm.acked:
        st.success(v.t("receipt.acked_by", who=alarm.acked_by or "", time=v.fmt_time(alarm.acked_ns)))
    if not alarm.active:
        st.caption(v.t("receipt.cleared", time=v.fmt_time(alarm.cleared_ns)))


if len(alarms) == 1:
    (alarm,) = alarms
    show(alarm, heading=True)
    if not alarm.acked and st.button(v.t("receipt.ack", who=who), type="primary", key="receipt_ack"):
        book.ack(alarm.id, note.user, time.time_ns())
        st.success(v.t("receipt.thanks"))
else:
    first = alarm_text(alarms[0], lang, site)
    st.title(f"{first.title} · {v.t('cc.group_plots', n=len({a.plot for a in alarms if a.plot}))}")
    st.info(first.advice)
    open_ = [a for a in alarms if not a.acked]
    if open_ and st.button(v.t("receipt.ack_group", who=who, n=len(open_)), type="primary", key="receipt_ack"):
        now = time.time_ns()
        for a in open_:
            book.ack(a.id, note.user, now)
        st.success(v.t("receipt.thanks"))
        alarms = [book.get(a.id) for a in alarms]
    for a in alarms:
        show(a, heading=False)
