"""预警: active alarms and those still waiting for an ack; acknowledge, assign, comment, silence; per alarm the
read-receipt matrix (who was sent what, through which channel, who read it) and the audit trail; for the staff,
a rule's backtest (dashboard/backtest.py)."""

from __future__ import annotations

import time
from datetime import datetime, timedelta

import pandas as pd
import streamlit as st
from streamlit.delta_generator import DeltaGenerator

from dashboard import backtest, board, cameras, data, shell, signin
from orchard.grouping import AlarmGroup, group_alarms
from orchard.models import Alarm
from orchard.records.alarms import AlarmBook, alarm_text
from orchard.records.outbox import Outbox
from orchard.records.people import People, Role
from orchard.records.workorders import WorkOrders

# Where this page sits in the navigation (dashboard/views/__init__.py reads it without running the page).
NAV = {"url": "alarms", "title": "nav.alarms", "icon": "🚨", "order": 50, "roles": ["center", "adviser", "farmer"]}

v = shell.view()
me = signin.who("center", "adviser", "farmer")
site = shell.visible_site(me)
STAFF = ("center", "adviser")  # who may assign, silence and close; a farmer acknowledges and comments
records = shell.records()
book, outbox, people = AlarmBook(records, shell.site().id), Outbox(records), People(records, shell.site().id)
orders = WorkOrders(records, shell.settings().data_dir / "photos", site=shell.site().id)
ICON = {"critical": "🔴", "major": "🟠", "warning": "🟡", "info": "🔵"}

st.title(v.t("alarms.title"))
users = people.here()
staff = me.role in STAFF
alarms = [a for a in book.needing_attention() if me.sees(a.plot)]
plots = st.multiselect(v.t("alarms.plots"), [p.id for p in site.plots],
                       placeholder=v.t("common.choose"), key="alarms_plots",
                       format_func=lambda p: site.plot_label(p, v.lang))
if plots:
    alarms = [a for a in alarms if a.plot in plots]
tab_alarms, tab_inbox, tab_orders, *extra = st.tabs([v.t("alarms.tab_alarms"), v.t("alarms.tab_inbox"), v.t("wo.tab"),
                                                     *([v.t("alarms.bt_tab")] if staff else []),
                                                     *([v.t("wo.tab_kpi")] if me.is_center else [])])
tab_backtest, tab_kpi = (extra[0] if staff else None), extra[1:]
with tab_alarms:
    if not alarms:
        st.success(v.t("alarms.none"))


def silence_box(a: Alarm, col: DeltaGenerator) -> None:
    with col.popover(v.t("alarms.silence")):
        hours = st.number_input(v.t("alarms.silence_hours"), 1, 72, 4, key=f"sil_h_{a.id}")
        reason = st.text_input(v.t("alarms.silence_reason"), key=f"sil_r_{a.id}")
        if st.button(v.t("alarms.silence_go"), key=f"sil_{a.id}", disabled=not reason.strip()):
            now = time.time_ns()
            book.silence(plot=a.plot, device=a.device, rule=a.type, starts_ns=now,
                         ends_ns=now + int(hours * 3600e9), reason=reason, created_by=me.name, now_ns=now)
            st.success(v.t("alarms.silenced", until=(datetime.now(site.tz) + timedelta(hours=hours))
                           .strftime("%m-%d %H:%M")))


def show_alarm(a: Alarm) -> None:
    words = alarm_text(a, v.lang, site)
    state = v.t("alarms.active") if a.active else v.t("alarms.cleared")
    ack = v.t("alarms.acked_by", who=a.acked_by or "") if a.acked else v.t("alarms.unacked")
    where = site.plot_label(a.plot, v.lang) if a.plot else a.source
    with st.expander(f"{ICON.get(a.severity, '')} {words.severity} · {words.title} · {where} · {state} · {ack}",
                     expanded=a.severity == "critical" and not a.acked):
        st.markdown(shell.plain(words.text))  # may quote people's words (a work order's title)
        st.caption(f"{v.t('alarms.since', time=v.fmt_time(a.started_ns))} · {words.advice}")
        cameras.evidence(book.evidence(a.id)[:3], v, width=480)  # the camera's clip and picture of it
        c1, c2, c3 = st.columns(3)
        if not a.acked and c1.button(v.t("alarms.ack"), key=f"ack_{a.id}"):
            me.check(a.plot)
            book.ack(a.id, me.name, time.time_ns())
            st.rerun()
        if staff:
            assignee = c2.selectbox(v.t("alarms.assign"), [u.name for u in users if u.role in ("adviser", "farmer")],
                                    index=None, placeholder=v.t("common.choose"), key=f"assign_{a.id}")
            if assignee and assignee != a.assignee:
                book.assign(a.id, assignee, me.name, time.time_ns())
                st.rerun()
            silence_box(a, c3)

        existing = orders.for_alarm(a.id)
        if existing:
            st.caption(v.t("wo.linked", ids=", ".join(f"#{w.id} ({v.t('wo.state_' + w.state)})" for w in existing)))
        elif st.button(v.t("wo.open_from_alarm"), key=f"wo_{a.id}"):
            advisers = people.for_plot(a.plot, Role.ADVISER)
            orders.open(plot=a.plot, title=words.title, description=words.text, created_by=me.name,
                        now_ns=time.time_ns(), source="alarm", alarm_id=a.id,
                        assignee=advisers[0].name if advisers else None)
            st.rerun()
        if a.active and staff:
            with st.popover(v.t("alarms.close")):
                why = st.text_input(v.t("alarms.close_reason"), key=f"close_r_{a.id}")
                if st.button(v.t("alarms.close_go"), key=f"close_{a.id}", disabled=not why.strip()):
                    # The rule raises it again at its next cycle if the condition is still there.
                    book.clear(a.source, a.type, time.time_ns(), actor=me.name, reason=why.strip())
                    st.rerun()
        note = st.text_input(v.t("alarms.comment"), key=f"comment_{a.id}")
        if note and st.button(v.t("alarms.comment_go"), key=f"comment_go_{a.id}"):
            book.comment(a.id, me.name, note, time.time_ns())
            st.rerun()
        if staff:
            receipts(a)


def receipts(a: Alarm) -> None:
    """Who was sent what and who read it: names and channels, so only for advisers and the center."""
    sent = outbox.for_alarm(a.id)
    st.markdown(f"**{v.t('alarms.receipts')}**")
    if not sent:
        st.caption(v.t("alarms.no_receipts"))
    else:
        st.dataframe(pd.DataFrame([{
            v.t("alarms.col_who"): n.user, v.t("alarms.col_channel"): n.channel,
            v.t("alarms.col_kind"): v.t(f"alarms.kind_{n.kind}"),
            v.t("alarms.col_status"): v.t(f"alarms.status_{n.status}"),
            v.t("alarms.col_sent"): v.fmt_time(n.sent_ns),
            v.t("alarms.col_read"): v.fmt_time(n.read_ns) if n.read_ns else v.t("alarms.not_read"),
            v.t("alarms.col_error"): n.last_error or "",
        } for n in sent]), hide_index=True, width="stretch")
    st.markdown(f"**{v.t('alarms.trail')}**")
    st.dataframe(pd.DataFrame([{
        v.t("alarms.col_time"): v.fmt_time(e.time_ns), v.t("alarms.col_who"): e.actor,
        v.t("alarms.col_action"): v.t(f"alarms.action_{e.action}"),
        v.t("alarms.col_detail"): (v.t(f"alarms.outcome_{e.detail['outcome']}", **e.detail)
                                   if e.detail.get("outcome") in ("frost", "no_frost")
                                   else ", ".join(f"{k}={x}" for k, x in e.detail.items() if k != "details")),
    } for e in book.events(a.id)]), hide_index=True, width="stretch")


def show_group(g: AlarmGroup) -> None:
    """One rule across many plots at once: a heading with the plots and one ack for all, then each plot's own
    alarm below it (acknowledged, assigned and closed on its own)."""
    words = alarm_text(g.alarms[0], v.lang, site)
    names = [site.plot_label(p, v.lang) for p in g.plots] or [a.device or a.source for a in g.alarms]
    count = v.t("cc.group_plots", n=len(g.plots)) if g.plots else v.t("cc.group_alarms", n=len(g))
    st.markdown(f"#### {ICON.get(g.severity, '')} {words.title} · {count}")
    st.caption(f"{v.t('alarms.since', time=v.fmt_time(g.started_ns))} · "
               f"{v.t('cc.group_unacked', n=len(g.unacked), total=len(g))} · {'、'.join(names)}")
    if g.unacked and st.button(v.t("alarms.ack_group", n=len(g.unacked)), key=f"ack_group_{g.key}"):
        now = time.time_ns()
        for a in g.unacked:
            me.check(a.plot)
            book.ack(a.id, me.name, now)
        st.rerun()
    for a in g.alarms:
        show_alarm(a)


with tab_alarms:
    for group in group_alarms(alarms):
        if len(group) == 1:
            show_alarm(group.alarms[0])
        else:
            show_group(group)

# -- the in-app inbox: what was sent to me; seeing it here counts as reading it --
with tab_inbox:
    mine = outbox.for_user(me.name)
    if not mine:
        st.caption(v.t("alarms.inbox_empty"))
    seen_now = time.time_ns()
    for n in mine[:50]:
        a = book.get(n.alarm_id)
        words = alarm_text(a, v.lang, site)
        unread = "🆕 " if n.read_ns is None else ""
        st.markdown(f"{unread}{ICON.get(a.severity, '')} **{words.title}** · "
                    f"{site.plot_label(a.plot, v.lang) if a.plot else a.source} · {v.fmt_time(n.created_ns)}  \n"
                    f"{words.text}")
        if n.read_ns is None and n.channel == "inbox":
            outbox.read(n.id, seen_now)

# -- work orders --
with tab_orders:
    board.show(orders, people, site, v, me, plots or None)

# -- a rule's backtest, for the staff who tune thresholds --
if tab_backtest is not None:
    with tab_backtest:
        backtest.show(site, v, datetime.fromtimestamp(data.now_ns() / 1e9, site.tz))

for tab in tab_kpi:  # the command center's only
    with tab:
        board.show_kpis(orders, outbox, book, people, site, v)
