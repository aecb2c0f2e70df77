"""通知: notices with read status. Everyone reads the notices sent to them here (reading records it; 收到 when
asked). County, town and village staff also write them (for the towns and villages under them, by role or by
name, with a warning level, the plots concerned, a photo or a file, 收到 and reminders), and see for each notice
their tier received, per village and per person, who has read it and who has not, and remind the unread with one
click. The messages go out from the analytics service (analytics/notify/notices.py) on everyone's channels."""

from __future__ import annotations

import time

import pandas as pd
import streamlit as st

from dashboard import notices as shown
from dashboard import shell, signin
from orchard.records.notices import Audience, Draft, Level, NoticeBook, NoticeError, Urgency, tier_villages
from orchard.records.people import TIERS, People, Role

# Where this page sits in the navigation (dashboard/views/__init__.py reads it without running the page).
NAV = {"url": "notices", "title": "nav.notices", "icon": "📢", "order": 8,
       "roles": ["county", "town", "center", "adviser", "farmer"]}

NS = 1_000_000_000
v = shell.view()
me = signin.who("county", "town", "center", "adviser", "farmer")
records = shell.records()
county = shell.county()
book = NoticeBook(records, county)
people = People(records)
found = people.get(me.name)
if found is None:
    st.error(v.t("auth.forbidden"))
    st.stop()
person = found

st.title(v.t("notice.title"))


def village_label(vid: str) -> str:
    if not vid:
        return v.t("notice.town_staff")
    site = county.sites[vid]
    return site.site.name if v.lang == "zh" else (site.site.name_en or vid)


def town_label(tid: str) -> str:
    t = county.town(tid)
    return (t.name if v.lang == "zh" else (t.name_en or t.id)) if t else tid


def inbox() -> None:
    mine = book.for_user(me.name)
    if not mine:
        st.info(v.t("notice.mine_none"))
        return
    unread = [n for n, r in mine if not r.done(n)]
    if unread:
        st.warning(v.t("notice.mine_unread", n=len(unread)))
    by_id = {n.id: (n, r) for n, r in mine}
    first = next((n.id for n, r in mine if not r.done(n)), mine[0][0].id)

    def label(nid: int) -> str:
        n, r = by_id[nid]
        dot = "🆕 " if not r.done(n) else ""
        return f"{dot}{v.fmt_time(n.created_ns)} · {shown.heading(n, v)}"

    chosen = st.selectbox(v.t("notice.pick"), list(by_id), index=list(by_id).index(first), format_func=label,
                          key="notice_mine")
    notice, recipient = by_id[chosen]
    shown.show(notice, recipient, v, book, key=f"mine_{notice.id}")


def write() -> None:
    tier = tier_villages(person, county)
    if not tier:
        st.error(v.t("notice.not_placed"))
        return
    title = st.text_input(v.t("notice.f_title"), max_chars=120, key="nw_title")
    body = st.text_area(v.t("notice.f_body"), max_chars=4000, key="nw_body")
    urgency = st.radio(v.t("notice.f_urgency"), list(Urgency), horizontal=True, key="nw_urgency",
                       format_func=lambda u: v.t(f"notice.urgency_{u}"))
    level = st.selectbox(v.t("notice.f_level"), [None, *Level], key="nw_level",
                         format_func=lambda lv: v.t(f"alarm.level_{lv}") if lv else v.t("notice.level_none"))
    my_towns = list(dict.fromkeys(county.town_of(x).id for x in tier))
    towns: list[str] = []
    if person.role == Role.COUNTY:
        towns = st.multiselect(v.t("notice.f_towns"), my_towns, format_func=town_label, key="nw_towns")
    villages: list[str] = []
    if len(tier) > 1:
        villages = st.multiselect(v.t("notice.f_villages"), tier, format_func=village_label, key="nw_villages",
                                  help=v.t("notice.f_area_help"))
    chosen_roles = st.multiselect(v.t("notice.f_roles"), book.roles_for(person),
                                  format_func=lambda r: v.t(f"alarms.role_{r}"), key="nw_roles",
                                  help=v.t("notice.f_roles_help"))
    reachable = book.reachable(person)
    names = {u.name: u for u in reachable}
    named = st.multiselect(v.t("notice.f_people"), list(names), key="nw_people", help=v.t("notice.f_people_help"),
                           format_func=lambda n: f"{names[n].display}（{v.t(f'alarms.role_{names[n].role}')}）")
    area = villages or [x for t in towns for x in tier if county.town_of(x).id == t] or tier
    plot_choices = [f"{x}/{p.id}" for x in area for p in county.sites[x].plots]
    plots = st.multiselect(v.t("notice.f_plots"), plot_choices, key="nw_plots",
                           format_func=lambda k: f"{village_label(k.split('/')[0])} · "
                           f"{county.sites[k.split('/')[0]].plot_label(k.split('/', 1)[1], v.lang)}")
    confirm = st.checkbox(v.t("notice.f_confirm"), key="nw_confirm")
    every = st.number_input(v.t("notice.f_remind_every"), min_value=0, max_value=24 * 60, value=0, step=30,
                            key="nw_every", help=v.t("notice.f_remind_help"))
    hours = st.number_input(v.t("notice.f_remind_hours"), min_value=1, max_value=7 * 24, value=24, key="nw_hours")
    upload = st.file_uploader(v.t("notice.f_attach"), key="nw_file")
    audience = Audience(tuple(towns), tuple(villages), tuple(Role(r) for r in chosen_roles), tuple(named))
    try:
        reached = book.audience_of(person, audience)
    except NoticeError as e:
        st.error(v.t(e.key, **e.params))
        return
    st.info(v.t("notice.preview", n=len(reached), places=len({(t, x) for _, x, t in reached})))
    if st.button(v.t("notice.send"), type="primary", key="nw_send", disabled=not reached):
        me.require(act=True)
        attachment = name = None
        if upload is not None:
            data = upload.getvalue()
            if len(data) > shown.MAX_ATTACHMENT:
                st.error(v.t("notice.too_big", mb=shown.MAX_ATTACHMENT // (1024 * 1024)))
                return
            attachment, name = shown.save_attachment(upload.name, data), upload.name
        now = time.time_ns()
        draft = Draft(title, body, Urgency(urgency or Urgency.NORMAL), Level(level) if level else None,
                      tuple(plots), audience, confirm,
                      int(every) or None, now + int(hours) * 3600 * NS if every else None, attachment, name)
        try:
            notice = book.send(person, draft, now)
        except NoticeError as e:
            st.error(v.t(e.key, **e.params))
            return
        st.success(v.t("notice.sent_ok", n=len(book.recipients(notice.id))))


def sent() -> None:
    tier = tier_villages(person, county)
    notices = book.sent_in(tier)
    if not notices:
        st.info(v.t("notice.none_sent"))
        return
    rows = []
    for n in notices:
        cells = book.matrix(n.id, tier)
        total, read = sum(c.recipients for c in cells), sum(c.read for c in cells)
        rows.append({v.t("notice.col_time"): v.fmt_time(n.created_ns), v.t("notice.col_title"): shown.heading(n, v),
                     v.t("notice.col_read"): f"{read}/{total}",
                     v.t("notice.col_confirmed"): f"{sum(c.confirmed for c in cells)}/{total}" if n.confirm else "—"})
    st.dataframe(pd.DataFrame(rows), hide_index=True, use_container_width=True)
    by_id = {n.id: n for n in notices}
    chosen = st.selectbox(v.t("notice.pick_sent"), list(by_id), key="notice_sent",
                          format_func=lambda i: f"{v.fmt_time(by_id[i].created_ns)} · {shown.heading(by_id[i], v)}")
    notice = by_id[chosen]
    shown.show(notice, None, v, book, key=f"sent_{notice.id}")
    cells = book.matrix(notice.id, tier)
    names = {u.name: u.display for u in people.all()}
    st.markdown(f"**{v.t('notice.matrix')}**")
    st.dataframe(pd.DataFrame([{
        v.t("notice.col_town"): town_label(c.town), v.t("notice.col_village"): village_label(c.village),
        v.t("notice.col_people"): c.recipients, v.t("notice.col_read"): c.read,
        v.t("notice.col_confirmed"): c.confirmed if notice.confirm else "—",
        v.t("notice.col_unread"): "、".join(names.get(u, u) for u in c.unread)} for c in cells]),
        hide_index=True, use_container_width=True)
    keep = set(tier)
    towns = {county.town_of(x).id for x in keep}
    deliveries: dict[str, list[str]] = {}
    for d in book.deliveries(notice.id):
        deliveries.setdefault(d.user, []).append(f"{v.t(f'notice.ch_{d.channel}')}:{v.t(f'notice.st_{d.status}')}")
    st.dataframe(pd.DataFrame([{
        v.t("notice.col_name"): names.get(r.user, r.user), v.t("notice.col_role"): v.t(f"alarms.role_{r.role}"),
        v.t("notice.col_village"): village_label(r.village), v.t("notice.col_read_at"): v.fmt_time(r.read_ns),
        v.t("notice.col_confirmed_at"): v.fmt_time(r.confirmed_ns) if notice.confirm else "—",
        v.t("notice.col_reminders"): r.reminders, v.t("notice.col_sent"): "，".join(deliveries.get(r.user, []))}
        for r in book.recipients(notice.id) if r.village in keep or (r.village == "" and r.town in towns)]),
        hide_index=True, use_container_width=True)
    waiting = sum(len(c.unread) for c in cells) if not notice.confirm else sum(c.recipients - c.confirmed
                                                                                   for c in cells)
    if notice.withdrawn_ns is None and waiting and st.button(v.t("notice.remind", n=waiting),
                                                             key=f"remind_{notice.id}"):
        me.require(act=True)
        who = book.remind(notice.id, time.time_ns(), tier)
        st.success(v.t("notice.reminded", n=len(who)))
    if notice.withdrawn_ns is None and notice.author == me.name and st.button(v.t("notice.withdraw"),
                                                                               key=f"withdraw_{notice.id}"):
        book.withdraw(notice.id, time.time_ns())
        st.rerun()


if person.role in TIERS:
    # keyed: the open tab stays open when typing into it reruns the page (unkeyed, it went back to the first)
    tab_mine, tab_write, tab_sent = st.tabs([v.t("notice.tab_mine"), v.t("notice.tab_write"),
                                             v.t("notice.tab_sent")], key="notice_tabs")
    with tab_write:
        write()
    with tab_sent:
        sent()
    with tab_mine:
        inbox()
else:
    inbox()
