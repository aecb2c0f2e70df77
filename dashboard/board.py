"""The work-order board and the KPI table of the 预警与工单 page (kept apart to keep the page readable)."""

from __future__ import annotations

import time

import pandas as pd
import streamlit as st

from dashboard.shell import View, plain
from orchard.access import Principal
from orchard.records.alarms import AlarmBook
from orchard.records.outbox import Outbox
from orchard.records.people import People
from orchard.records.workorders import BACK, NEXT, OPEN_STATES, WorkOrderError, WorkOrders, kpis
from orchard.site import Site


def show(orders: WorkOrders, people: People, site: Site, v: View, me: Principal,
         plots: list[str] | None) -> None:
    """The open work orders of the plots asked for that `me` may see; advisers and the center move them on."""
    now = time.time_ns()
    open_orders = [w for w in orders.find(states=OPEN_STATES, plots=me.scope(plots)) if me.sees(w.plot)]
    if not open_orders:
        st.success(v.t("wo.none"))
    cols = st.columns(len(OPEN_STATES))
    for col, state in zip(cols, OPEN_STATES, strict=True):
        mine = [w for w in open_orders if w.state == state]
        col.markdown(f"**{v.t('wo.state_' + state)}** ({len(mine)})")
        for w in mine:
            late = " ⏰" if w.overdue(now) else ""
            col.markdown(f"#{w.id} {plain(w.title)}{late}  \n{site.plot_label(w.plot, v.lang) if w.plot else ''} · "
                         f"{w.assignee or v.t('wo.unassigned')}")
    if not open_orders:
        return
    chosen = st.selectbox(v.t("wo.pick"), [w.id for w in open_orders], placeholder=v.t("common.choose"), key="wo_pick",
                          format_func=lambda i: next(f"#{w.id} {w.title}" for w in open_orders if w.id == i))
    wo = orders.get(int(chosen))
    me.check(wo.plot)
    st.markdown(f"### #{wo.id} {plain(wo.title)}")
    st.caption(v.t("wo.summary", state=v.t("wo.state_" + wo.state), assignee=wo.assignee or v.t("wo.unassigned"),
                   due=v.fmt_time(wo.due_ns)))
    if wo.description:
        st.markdown(plain(wo.description))
    trail = orders.events(wo.id)
    st.dataframe(pd.DataFrame([{
        v.t("alarms.col_time"): v.fmt_time(e.time_ns), v.t("alarms.col_who"): e.actor,
        v.t("wo.col_step"): v.t("wo.state_" + e.to_state) if e.to_state else "",
        v.t("alarms.comment"): e.note, v.t("wo.col_photo"): v.t("wo.photo_" + e.photo_kind) if e.photo_kind else "",
    } for e in trail]), hide_index=True, width="stretch")
    for e in trail:
        if e.photo:
            st.image(orders.photo_path(e.photo).read_bytes(), caption=f"{v.t('wo.photo_' + (e.photo_kind or 'report'))}"
                     f" · {v.fmt_time(e.time_ns)}", width=320)
    if me.role not in ("center", "adviser"):
        return
    c1, c2 = st.columns(2)
    assignee = c1.selectbox(v.t("alarms.assign"), [u.name for u in people.all() if u.role == "adviser"],
                            index=None, placeholder=v.t("common.choose"), key=f"wo_assign_{wo.id}")
    if assignee and assignee != wo.assignee:
        orders.assign(wo.id, assignee, me.name, time.time_ns())
        st.rerun()
    steps = [s for s in (NEXT.get(wo.state), BACK.get(wo.state)) if s]
    step = c2.selectbox(v.t("wo.next"), steps, placeholder=v.t("common.choose"), key=f"wo_step_{wo.id}",
                        format_func=lambda s: v.t("wo.state_" + s))
    note = st.text_area(v.t("wo.note"), key=f"wo_note_{wo.id}")
    photo = st.file_uploader(v.t("wo.photo"), type=["jpg", "jpeg", "png"], key=f"wo_photo_{wo.id}")
    kind = "after" if step in ("resolved", "follow_up") else "before"
    if st.button(v.t("wo.do_step"), key=f"wo_go_{wo.id}", type="primary"):
        try:
            orders.move(wo.id, step, me.name, time.time_ns(), note=note, photo=photo.getvalue() if photo else None,
                        photo_kind=kind if photo else None)
            st.rerun()
        except WorkOrderError as err:
            st.error(v.t(err.key))


def show_kpis(orders: WorkOrders, outbox: Outbox, book: AlarmBook, people: People, site: Site, v: View) -> None:
    advisers: dict[str, list[str]] = {}
    for u in people.all():
        if u.role == "adviser":
            for p in people.plots_of(u.name):
                advisers.setdefault(p, []).append(u.name)
    alarms = book.recent(90)
    notes = [n for a in alarms for n in outbox.for_alarm(a.id)]
    rows = kpis(alarms, notes, orders.find(), advisers, site.tz, time.time_ns())
    if not rows:
        st.info(v.t("wo.no_kpi"))
        return
    st.dataframe(pd.DataFrame([{
        v.t("wo.kpi_adviser"): k.adviser, v.t("wo.kpi_month"): k.month, v.t("wo.kpi_alarms"): k.alarms,
        v.t("wo.kpi_read"): k.first_read_min, v.t("wo.kpi_ack"): k.ack_min, v.t("wo.kpi_orders"): k.work_orders,
        v.t("wo.kpi_close"): k.close_min, v.t("wo.kpi_closure"): k.closure_rate, v.t("wo.kpi_overdue"): k.overdue_rate,
    } for k in rows]), hide_index=True, width="stretch",
        column_config={v.t("wo.kpi_closure"): st.column_config.NumberColumn(format="percent"),
                       v.t("wo.kpi_overdue"): st.column_config.NumberColumn(format="percent")})
    st.caption(v.t("wo.kpi_help"))
