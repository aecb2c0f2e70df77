"""我的果园: the farmer's home, the first page a farmer sees. Built for a 360-400 px phone: large type, plain
words, one sentence per plot of what is happening and what to do now (from the active alarms' advice), their
alarms with one tap for 收到 (ack) and 已处理 (dealt with), the work orders on their plots with what the adviser
wrote, a big 随手拍 button, and their latest lot's result. States are words, not only colours or emoji."""

from __future__ import annotations

import time

import streamlit as st

from dashboard import cameras, data, shell, signin, today
from orchard.models import GRADES, Alarm
from orchard.records.alarms import AlarmBook, alarm_text
from orchard.records.notices import NoticeBook
from orchard.records.workorders import OPEN_STATES, WorkOrders
from orchard.store import StoreError

# Where this page sits in the navigation (dashboard/views/__init__.py reads it without running the page).
NAV = {"url": "my-orchard", "title": "nav.my_orchard", "icon": "🏡", "order": 5, "roles": ["farmer"]}

COLOUR = {today.PlotState.DANGER: "red", today.PlotState.WATCH: "orange", today.PlotState.FINE: "green"}
BIG = """
<style>
[data-testid="stMain"] [data-testid="stMarkdownContainer"] p { font-size: 1.2rem; line-height: 1.6; }
[data-testid="stMain"] .stButton button { min-height: 3.2rem; font-size: 1.2rem; }
</style>
"""

v = shell.view()
me = signin.who("farmer")
site = shell.visible_site(me)
records = shell.records()
book = AlarmBook(records, shell.site().id)
orders = WorkOrders(records, shell.settings().data_dir / "photos", site=shell.site().id)
st.html(BIG)

st.title(v.t("home.title"))
st.markdown(v.t("home.hello", name=me.display))
if unread := NoticeBook(records, shell.county()).unread_count(me.name):  # a notice from the village, town, county
    st.warning(v.t("home.notices_unread", n=unread))
    st.page_link("views/notices.py", label=v.t("home.notices_open"), icon="📢")
if st.button(f"📷 {v.t('home.snap')}", type="primary", width="stretch", key="home_snap"):
    st.switch_page("views/report.py")

alarms = today.worst_first(a for a in book.needing_attention() if me.sees(a.plot))
try:
    readings = data.plot_readings(data.latest(me, since_days=1))
except StoreError:
    readings = {}  # the sentences still come from the alarms; the numbers are only a help


def now_line(plot: str) -> str:
    r = readings.get(plot, {})
    parts = []
    if "air_temp_c" in r:
        parts.append(v.t("home.now_air", t=round(r["air_temp_c"], 1)))
    if "soil_vwc_pct" in r:
        parts.append(v.t("home.now_soil", pct=round(r["soil_vwc_pct"])))
    return v.t("home.now", what="，".join(parts) if v.lang == "zh" else ", ".join(parts)) if parts else ""


if not site.plots:
    st.info(v.t("home.no_plots"))
for plot in site.plots:
    on = [a for a in alarms if a.plot == plot.id and a.active]
    state = today.plot_state(on)
    with st.container(border=True):
        st.markdown(f"#### {site.plot_label(plot.id, v.lang)} · :{COLOUR[state]}[**{v.t('home.state_' + state)}**]")
        if on:
            words = alarm_text(on[0], v.lang, site)
            st.markdown(v.t("home.sentence", title=words.title, advice=words.advice))
        else:
            st.markdown(v.t("home.fine"))
        if line := now_line(plot.id):
            st.caption(line)


def alarm_card(a: Alarm) -> None:
    words = alarm_text(a, v.lang, site)
    with st.container(border=True):
        state = v.t("alarms.active") if a.active else v.t("alarms.cleared")
        st.markdown(f"**{words.title}** · {site.plot_label(a.plot, v.lang) if a.plot else a.source} · {state}")
        st.markdown(shell.plain(words.text))
        st.markdown(f"{v.t('home.what_to_do')}{words.advice}")
        st.caption(v.t("alarms.since", time=v.fmt_time(a.started_ns)))
        cameras.evidence(book.evidence(a.id)[:2], v)  # the camera's clip and picture of it
        handled = any(e.action == "handled" for e in book.events(a.id))
        c1, c2 = st.columns(2)
        if a.acked:
            c1.markdown(f":green[**{v.t('home.got_it_done')}**]")
        elif c1.button(v.t("home.got_it"), key=f"home_ack_{a.id}", width="stretch"):
            me.check(a.plot)
            book.ack(a.id, me.name, time.time_ns())
            st.rerun()
        if handled:
            c2.markdown(f":green[**{v.t('home.handled_done')}**]")
        elif c2.button(v.t("home.handled"), key=f"home_done_{a.id}", width="stretch"):
            me.check(a.plot)
            book.handled(a.id, me.name, time.time_ns())
            st.rerun()


st.subheader(v.t("home.alarms"))
if not alarms:
    st.success(v.t("home.no_alarms"))
for a in alarms[:20]:
    alarm_card(a)

st.subheader(v.t("home.orders"))
mine = [w for w in orders.find(plots=me.scope(None)) if me.sees(w.plot)]
shown = [w for w in mine if w.state in OPEN_STATES][:10] + [w for w in mine if w.state not in OPEN_STATES][:3]
if not shown:
    st.caption(v.t("home.no_orders"))
for w in shown:
    with st.container(border=True):
        st.markdown(f"**#{w.id} {shell.plain(w.title)}** · {v.t('wo.state_' + w.state)}")
        said = [e for e in orders.events(w.id) if e.actor != me.name and e.note and not e.note.startswith("→")]
        if said:
            st.markdown(v.t("home.adviser_said", who=said[-1].actor, note=shell.plain(said[-1].note)))
        st.caption(f"{site.plot_label(w.plot, v.lang) if w.plot else ''} · {v.fmt_time(w.created_ns)}")

st.subheader(v.t("home.lot"))
lots = data.lot_history(me, limit=1)
if not lots:
    st.caption(v.t("home.no_lot"))
else:
    lot = lots[0]
    counts = lot.by_grade()
    with st.container(border=True):
        st.markdown(v.t("home.lot_line", id=lot.id, plot=site.plot_label(lot.plot, v.lang), fruit=lot.fruit,
                        kg=round(lot.weight_g / 1000, 1), packout=round(lot.packout_pct)))
        st.markdown(" · ".join(f"{v.t('grade.' + g)} {counts[g]}" for g in GRADES))
        st.page_link("views/lot_report.py", label=v.t("home.lot_report"), query_params={"lot": str(lot.id)})
