"""我的工作: the adviser's day, on the phone in the field. The unacknowledged alarms of the plots they cover, grouped
by rule (one tap acknowledges a group); the work orders due and overdue, each one tap from its next step (accept,
on site, resolved, with a note or a photo); the plots to visit today, most urgent first (dashboard/today.py)."""

from __future__ import annotations

import time
from itertools import groupby

import streamlit as st

from dashboard import shell, signin, today
from orchard.records.alarms import AlarmBook, alarm_text
from orchard.records.workorders import OPEN_STATES, WorkOrder, WorkOrderError, WorkOrders

# Where this page sits in the navigation (dashboard/views/__init__.py reads it without running the page).
NAV = {"url": "my-work", "title": "nav.my_work", "icon": "🧑‍🌾", "order": 6, "roles": ["adviser"]}

v = shell.view()
me = signin.who("adviser")
site = shell.visible_site(me)
records = shell.records()
book = AlarmBook(records, shell.site().id)
orders = WorkOrders(records, shell.settings().data_dir / "photos", site=shell.site().id)
now = time.time_ns()
plots = [p.id for p in site.plots]

st.title(v.t("work.title"))
alarms = [a for a in book.needing_attention() if me.sees(a.plot)]
open_orders = [w for w in orders.find(states=OPEN_STATES, plots=me.scope(None)) if me.sees(w.plot)]
due = today.due_orders(open_orders, me.name)
unacked = [a for a in alarms if not a.acked]
late = sum(1 for w in due if w.overdue(now))
c1, c2, c3 = st.columns(3)
c1.metric(v.t("work.kpi_unacked"), len(unacked))
c2.metric(v.t("work.kpi_orders"), len(due))
c3.metric(v.t("work.kpi_overdue"), late)

# -- what nobody has looked at yet, by rule --
st.subheader(v.t("work.unacked"))
if not unacked:
    st.success(v.t("work.no_unacked"))
for rule, group in groupby(sorted(today.worst_first(unacked), key=lambda a: a.type), key=lambda a: a.type):
    members = today.worst_first(group)
    words = alarm_text(members[0], v.lang, site)
    with st.container(border=True):
        names = "、".join(site.plot_label(a.plot, v.lang) if a.plot else a.source for a in members)
        st.markdown(f"**{words.title}** · {v.t('cc.group_plots', n=len({a.plot for a in members}))}")
        st.caption(f"{names} · {v.t('alarms.since', time=v.fmt_time(min(a.started_ns for a in members)))}")
        st.markdown(words.advice)
        if st.button(v.t("work.ack_all", n=len(members)), key=f"work_ack_{rule}", width="stretch"):
            for a in members:
                me.check(a.plot)
                book.ack(a.id, me.name, time.time_ns())
            st.rerun()


def step_box(w: WorkOrder) -> None:
    step = today.ADVISER_STEP.get(w.state)
    if step is None:  # resolved or in follow-up: the center closes it
        return
    note = st.text_input(v.t("wo.note"), key=f"work_note_{w.id}") if step == "resolved" else ""
    photo = st.file_uploader(v.t("wo.photo"), type=["jpg", "jpeg", "png"], key=f"work_photo_{w.id}") \
        if step in ("on_site", "resolved") else None
    if st.button(v.t(f"work.do_{step}"), key=f"work_go_{w.id}", type="primary", width="stretch"):
        me.check(w.plot)
        try:
            if w.assignee is None:
                orders.assign(w.id, me.name, me.name, time.time_ns())
            orders.move(w.id, step, me.name, time.time_ns(), note=note, photo=photo.getvalue() if photo else None,
                        photo_kind=("after" if step == "resolved" else "before") if photo else None)
        except WorkOrderError as err:
            st.error(v.t(err.key))
        else:
            st.rerun()


# -- work orders: overdue first, then by when they fall due --
st.subheader(v.t("work.orders"))
if not due:
    st.success(v.t("wo.none"))
for w in due[:30]:
    with st.container(border=True):
        when = v.t("work.overdue") if w.overdue(now) else v.t("work.due", time=v.fmt_time(w.due_ns))
        colour = "red" if w.overdue(now) else "gray"
        st.markdown(f"**#{w.id} {shell.plain(w.title)}** · {v.t('wo.state_' + w.state)} · :{colour}[{when}]")
        st.caption(f"{site.plot_label(w.plot, v.lang) if w.plot else ''} · {w.assignee or v.t('wo.unassigned')}")
        if w.description and w.description != w.title:
            st.markdown(shell.plain(w.description))
        for e in orders.events(w.id):
            if e.photo and e.photo_kind == "report":
                st.image(orders.photo_path(e.photo).read_bytes(), width=320,
                         caption=v.t("wo.photo_report") + f" · {v.fmt_time(e.time_ns)}")
        step_box(w)

# -- where to go today --
st.subheader(v.t("work.visits"))
trips = today.visits(plots, alarms, open_orders, now)
if not trips:
    st.caption(v.t("work.no_visits"))
for i, trip in enumerate(trips, 1):
    why = [alarm_text(a, v.lang, site).title for a in trip.alarms[:3]]
    if trip.orders:
        why.append(v.t("work.visit_orders", n=len(trip.orders), late=trip.overdue))
    st.markdown(f"{i}. **{site.plot_label(trip.plot, v.lang)}** · {'；'.join(why)}")
