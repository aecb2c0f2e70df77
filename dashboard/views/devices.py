"""设备: the registry (last seen, online, battery and signal), devices waiting for approval, dead letters."""

from __future__ import annotations

import json
from datetime import datetime, time, timedelta

import pandas as pd
import streamlit as st

from dashboard import charts, data, shell, signin
from orchard.store import StoreError

# Where this page sits in the navigation (dashboard/views/__init__.py reads it without running the page).
NAV = {"url": "devices", "title": "nav.devices", "icon": "📡", "order": 70, "roles": ["center", "adviser"]}

v = shell.view()
me = signin.who("center", "adviser")  # an adviser sees the devices on the plots they cover; approving is the center's
site = shell.visible_site(me)
now = data.now_ns()

st.title(v.t("dev.title"))
if me.is_center:
    tab_reg, tab_pending, tab_dead = st.tabs([v.t("dev.tab_registry"), v.t("dev.tab_pending"),
                                              v.t("dev.tab_dead")])
else:
    (tab_reg,) = st.tabs([v.t("dev.tab_registry")])

try:
    latest = data.latest(me)
except StoreError as e:
    st.error(v.t("common.store_down", error=str(e)[:200]))
    latest = pd.DataFrame(columns=["device", "field", "value", "time_ns"])
devs = data.presence(data.devices(me), latest, now)


PENDING_PER_PAGE = 20
STATE_ICONS = {"online": "🟢 ", "offline": "🔴 ", "pending": "", "rejected": ""}


def show_payload(payload: bytes) -> None:
    """A payload as its JSON, indented; other text as it is; binary (a Modbus frame) as hex."""
    try:
        st.code(json.dumps(json.loads(payload), ensure_ascii=False, indent=2), language="json")
        return
    except ValueError:
        pass
    text = payload[:4096].decode("utf-8", "replace")
    if text.count("\ufffd") > len(text) // 10:  # not text at all
        text = payload[:2048].hex(" ").upper()
    st.code(text + (f"\n… ({len(payload)} bytes)" if len(payload) > 4096 else ""), language=None)


def state_label(state: str) -> str:
    return STATE_ICONS[state] + v.t(f"dev.state_{state}")


# -- registry --
with tab_reg:
    if devs.empty:
        st.info(v.t("dev.none"))
    else:
        power = latest[latest["field"].isin(["battery_v", "battery_pct", "rssi_dbm", "link_margin_db"])].pivot_table(
            index="device", columns="field", values="value", aggfunc="last") if not latest.empty else pd.DataFrame()
        table = pd.DataFrame({
            v.t("dev.col_device"): devs["device"],
            v.t("dev.col_plot"): devs["plot"].map(lambda p: site.plot_label(p, v.lang)),
            v.t("dev.col_kind"): devs["kind"].map(lambda k: v.t(f"dev.kind_{k}") if k else "—"),
            v.t("dev.col_profile"): devs["profile"].map(lambda p: p or "—"),
            v.t("dev.col_state"): devs["state"].map(state_label),
            v.t("dev.col_last_seen"): devs["last_seen_ns"].map(
                lambda t: "—" if pd.isna(t) else f"{v.fmt_time(int(t))} ({v.age(int(t), now)})"),
            v.t("dev.col_battery"): devs["device"].map(power.get("battery_v", {})),
            v.t("dev.col_battery_pct"): devs["device"].map(power.get("battery_pct", {})),
            v.t("dev.col_rssi"): devs["device"].map(power.get("rssi_dbm", {})),
            v.t("dev.col_margin"): devs["device"].map(power.get("link_margin_db", {})),
        })
        st.dataframe(table, hide_index=True, width="stretch",
                     column_config={v.t("dev.col_battery"): st.column_config.NumberColumn(format="%.2f V"),
                                    v.t("dev.col_battery_pct"): st.column_config.NumberColumn(format="%d %%"),
                                    v.t("dev.col_rssi"): st.column_config.NumberColumn(format="%d dBm"),
                                    v.t("dev.col_margin"): st.column_config.NumberColumn(format="%d dB")})
        for row in devs[devs["unmapped"] != ""].itertuples():
            st.info(v.t("dev.unmapped", device=row.device, fields=shell.plain(str(row.unmapped))))
        for row in devs[devs["clock_skew_s"].notna()].itertuples():
            st.warning(v.t("dev.clock_skew", device=row.device, minutes=round(abs(float(row.clock_skew_s)) / 60)))
        low = table[table[v.t("dev.col_battery")] < 3.3]
        if not low.empty:
            st.warning(v.t("dev.low_battery", devices=", ".join(low[v.t("dev.col_device")])))

        # What a sensor really sends, beside what its profile does not know: an installer's first check (raw
        # payloads are the command center's, like the dead letters).
        last = None
        if me.is_center:
            st.subheader(v.t("dev.last_payload"))
            which = st.selectbox(v.t("dev.col_device"), list(devs["device"]),
                                 placeholder=v.t("common.choose"), key="dev_payload_device")
            last = data.last_payload(me, str(which)) if which else None
            if last is None:
                st.caption(v.t("dev.no_payload"))
        if last is not None:
            at_ns, topic, body = last
            st.caption(v.t("dev.payload_at", time=v.fmt_time(at_ns), age=v.age(at_ns, now), topic=topic))
            show_payload(body)  # the fields its profile does not know are listed above the table's trends

        st.subheader(v.t("dev.trends"))
        chosen = st.multiselect(v.t("dev.trend_devices"), list(devs["device"]), default=list(devs["device"])[:4],
                                placeholder=v.t("common.choose"), key="dev_trend_devices")
        if chosen:
            try:
                trend = data.series(me, ("battery_v", "rssi_dbm"), now - 7 * data.DAY_NS, now, by="device",
                                    devices=tuple(chosen), every_s=3600)
            except StoreError as e:
                st.error(v.t("common.store_down", error=str(e)[:200]))
                trend = pd.DataFrame()
            if trend.empty:
                st.caption(v.t("dev.no_trend"))
            else:
                labels = {(p, d, z): d for p, d, z in trend[["plot", "device", "depth_cm"]].drop_duplicates()
                          .itertuples(index=False)}
                c1, c2 = st.columns(2)
                for col, field in ((c1, "battery_v"), (c2, "rssi_dbm")):
                    col.plotly_chart(charts.lines(trend, field, ["plot", "device", "depth_cm"], labels,
                                                  pd.Timedelta(hours=3), v.lang, False, True, 320),
                                     key=f"dev_trend_{field}")

# -- pending and dead letters: the command center's --
if me.is_center:
    with tab_pending:
        pending = devs[devs["status"].isin(["pending", "new"])] if not devs.empty else devs
        if pending.empty:
            st.success(v.t("dev.no_pending"))
        # A flood of new ids (a broken gateway, an attacker) must not make the page unusable: a page at a time,
        # most recently seen first, the held readings counted in one query.
        pending = pending.sort_values("last_seen_ns", ascending=False, na_position="last")
        pages = max(1, -(-len(pending) // PENDING_PER_PAGE))
        if pages > 1:
            st.caption(v.t("dev.pending_count", n=len(pending)))
        page = st.number_input(v.t("cam.page"), 1, pages, 1, key="pending_page") if pages > 1 else 1
        shown = pending.iloc[(page - 1) * PENDING_PER_PAGE:page * PENDING_PER_PAGE]
        held_of = shell.records().held_counts([str(d) for d in shown["device"]])
        for row in shown.itertuples():
            c1, c2, c3 = st.columns([4, 1, 1])
            c1.markdown(v.t("dev.pending_line", device=row.device, plot=site.plot_label(str(row.plot), v.lang),
                            seen=v.age(None if pd.isna(row.last_seen_ns) else int(row.last_seen_ns), now),
                            held=held_of.get(str(row.device), 0)))
            if c2.button(v.t("dev.approve"), key=f"approve_{row.device}", type="primary"):
                # Ingest sees the approval within seconds and replays the held readings into the store.
                shell.records().set_device_status(str(row.device), "approved")
                data.clear()
                st.toast(v.t("dev.approved", device=row.device))
                st.rerun()
            if c3.button(v.t("dev.reject"), key=f"reject_{row.device}"):
                shell.records().set_device_status(str(row.device), "rejected")
                data.clear()
                st.toast(v.t("dev.rejected", device=row.device))
                st.rerun()

    # -- dead letters --
    with tab_dead:
        st.caption(v.t("dev.dead_help"))
        counts = data.dead_letter_counts(me)
        if counts.empty:
            st.success(v.t("dev.no_dead"))
        else:
            by_kind = counts.groupby("kind")["count"].sum().sort_values(ascending=False)
            st.bar_chart(by_kind, horizontal=True, height=min(60 + 28 * len(by_kind), 360))
            f1, f2, f3 = st.columns(3)
            today = datetime.now(site.tz).date()
            days = f1.date_input(v.t("dev.dead_dates"), (today - timedelta(days=7), today), key="dead_dates")
            d0, d1 = days if isinstance(days, tuple) and len(days) == 2 else (today, today)
            dev_choice = f2.selectbox(v.t("dev.dead_device"), ["", *sorted(set(counts["device"]))],
                                      placeholder=v.t("common.choose"), key="dead_device",
                                      format_func=lambda d: d or v.t("common.all"))
            kind_choice = f3.selectbox(v.t("dev.dead_kind"), ["", *by_kind.index],
                                       placeholder=v.t("common.choose"), key="dead_kind",
                                       format_func=lambda k: k or v.t("common.all"))
            since = int(datetime.combine(d0, time.min, site.tz).timestamp() * 1e9)
            until = int(datetime.combine(d1 + timedelta(days=1), time.min, site.tz).timestamp() * 1e9)
            letters = data.dead_letters(me, since, until, dev_choice or None, kind_choice or None)
            st.caption(v.t("dev.dead_count", n=len(letters)))
            if not letters.empty:
                shown = pd.DataFrame({
                    v.t("dev.col_time"): letters["time"].dt.strftime("%Y-%m-%d %H:%M:%S"),
                    v.t("dev.col_device"): letters["device"],
                    v.t("dev.col_kind"): letters["kind"],
                    v.t("dev.col_reason"): letters["reason"],
                    v.t("dev.col_held"): letters["held"] & ~letters["replayed"],
                })
                event = st.dataframe(shown, hide_index=True, width="stretch", on_select="rerun",
                                     selection_mode="single-row", key="dead_table")
                picked = event.selection.rows if event is not None else []
                row = letters.iloc[picked[0] if picked else 0]
                st.markdown(f"**{v.t('dev.raw')}** — `{row['topic']}`")
                show_payload(row["payload"])
