"""环境监测: readings over time for chosen plots, devices and range; derived indicators; gaps; export."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

import pandas as pd
import streamlit as st

from dashboard import charts, data, export, shell, signin
from orchard import indicators
from orchard.catalogue import CATALOGUE, DEVICE_HEALTH
from orchard.store import StoreError

# Where this page sits in the navigation (dashboard/views/__init__.py reads it without running the page).
NAV = {"url": "environment", "title": "nav.environment", "icon": "🌡️", "order": 20,
       "roles": ["center", "adviser", "farmer", "kiosk"]}

v = shell.view()
me = signin.who("center", "adviser", "farmer", "kiosk")
site = shell.visible_site(me)  # the plots and devices to choose from are the ones this person may see
cfg = shell.settings().dashboard
RANGES = {"6h": 6 * 3600, "24h": 86400, "7d": 7 * 86400, "30d": 30 * 86400, "90d": 90 * 86400, "1y": 365 * 86400}
READINGS = [f for f in CATALOGUE if f not in DEVICE_HEALTH]

st.title(v.t("env.title"))

# -- choices --
c1, c2, c3 = st.columns([2, 2, 2])
plot_ids = [p.id for p in site.plots]
plots = c1.multiselect(v.t("env.plots"), plot_ids, default=plot_ids[:3],
                       format_func=lambda p: site.plot_label(p, v.lang),
                       placeholder=v.t("common.choose"), key="env_plots")
device_ids = [d.id for d in site.devices if d.plot in plots]
known = data.devices(me)
device_ids += sorted(set(known[known["plot"].isin(plots)]["device"]) - set(device_ids)) if not known.empty else []
devices = c2.multiselect(v.t("env.devices"), device_ids, default=device_ids,
                         placeholder=v.t("common.choose"), key="env_devices")
fields = c3.multiselect(v.t("env.readings"), READINGS, default=["air_temp_c", "rh_pct"],
                        format_func=lambda f: charts.reading_label(f, v.lang),
                        placeholder=v.t("common.choose"), key="env_fields")
c4, c5, c6 = st.columns([4, 1.4, 1.6])
wanted = st.query_params.get("range", "24h")  # a link may name the range: ?range=30d
range_key = c4.segmented_control(v.t("env.range"), [*RANGES, "custom"], default=wanted if wanted in RANGES else "24h",
                                 key="env_range",
                                 format_func=lambda k: v.t(f"env.range_{k}")) or "24h"
by = c5.radio(v.t("env.compare"), ["device", "plot"], horizontal=True, key="env_by",
              format_func=lambda b: v.t(f"env.by_{b}"))
now = data.now_ns()
if range_key == "custom":
    today = datetime.now(site.tz).date()
    picked = c6.date_input(v.t("env.dates"), (today - timedelta(days=7), today), key="env_dates")
    d0, d1 = (picked if isinstance(picked, tuple) and len(picked) == 2 else (today, today))
    assert isinstance(d0, date) and isinstance(d1, date)
    start_ns = int(datetime.combine(d0, time.min, site.tz).timestamp() * 1e9)
    end_ns = int(datetime.combine(d1 + timedelta(days=1), time.min, site.tz).timestamp() * 1e9)
else:
    # Aligned to the minute so a rerun within the cache TTL asks the same question (and hits the cache).
    end_ns = (now // (60 * data.NS) + 1) * 60 * data.NS
    start_ns = end_ns - RANGES[range_key] * data.NS

if not plots or not fields:
    st.info(v.t("env.pick"))
    st.stop()

span_s = (end_ns - start_ns) / data.NS
every = data.resolution_s(span_s)
st.caption(v.t("env.resolution_raw") if every is None else v.t("env.resolution", minutes=every // 60))

try:
    df = data.series(me, tuple(fields), start_ns, end_ns, by=by, plots=tuple(plots),
                     devices=tuple(devices) if by == "device" else None, every_s=every)
except StoreError as e:
    st.error(v.t("common.store_down", error=str(e)[:200]))
    st.stop()

# -- charts --
stale_ns = data.stale_after_ns(devices)
max_step = pd.Timedelta(seconds=every * cfg.stale_after_intervals) if every else pd.Timedelta(stale_ns, unit="ns")
key_cols = ["plot", "device", "depth_cm"] if by == "device" else ["plot"]


def series_label(key: tuple[str, ...]) -> str:
    plot = site.plot_label(key[0], v.lang)
    if by == "plot":
        return plot
    depth = f" {key[2]} cm" if len(key) > 2 and key[2] else ""
    return f"{plot} · {key[1]}{depth}"


if df.empty:
    st.warning(v.t("env.no_data"))
else:
    labels = {tuple(k): series_label(tuple(k)) for k in df[key_cols].drop_duplicates().itertuples(index=False)}
    for field in fields:
        if (df["field"] == field).any():
            st.plotly_chart(charts.lines(df, field, key_cols, labels, max_step, v.lang, False, every is not None),
                            key=f"env_chart_{field}")
        else:
            st.caption(v.t("env.field_empty", reading=charts.reading_label(field, v.lang)))

# -- derived indicators --
st.subheader(v.t("env.derived"))
derived_every = max(every or 3600, 3600) if span_s > 86400 else 600
if every == derived_every and {"air_temp_c", "rh_pct"} <= set(fields) and (by == "plot" or devices == device_ids):
    # The charts' buckets already hold what the indicators need: a plot's mean is the mean of its devices'.
    hourly = df.groupby(["plot", "time", "field"], as_index=False)["value"].mean()
else:
    try:
        hourly = data.series(me, ("air_temp_c", "rh_pct"), start_ns, end_ns, by="plot", plots=tuple(plots),
                             every_s=derived_every)
    except StoreError as e:
        st.error(v.t("common.store_down", error=str(e)[:200]))
        st.stop()
if hourly.empty:
    st.caption(v.t("env.no_data"))
else:
    wide = hourly.pivot_table(index=["plot", "time"], columns="field", values="value").reset_index()
    if {"air_temp_c", "rh_pct"} <= set(wide.columns):
        wide["dew_point_c"] = indicators.dew_point_c(wide["air_temp_c"], wide["rh_pct"])
        wide["vpd_kpa"] = indicators.vpd_kpa(wide["air_temp_c"], wide["rh_pct"])
    summary = []
    for plot, g in wide.groupby("plot"):
        temps = g.set_index("time")["air_temp_c"] if "air_temp_c" in g else pd.Series(dtype=float)
        hourly_t = temps.resample("1h").mean()
        daily = temps.resample("1D").agg(["min", "max"])
        gdd = indicators.growing_degree_days(daily["min"], daily["max"]).sum()
        summary.append({
            v.t("env.col_plot"): site.plot_label(str(plot), v.lang),
            v.t("env.col_chill"): indicators.chill_hours(hourly_t),
            v.t("env.col_gdd"): round(float(gdd), 1),
            v.t("env.col_dew_min"): round(float(g["dew_point_c"].min()), 1) if "dew_point_c" in g else None,
            v.t("env.col_vpd_max"): round(float(g["vpd_kpa"].max()), 2) if "vpd_kpa" in g else None,
        })
    st.dataframe(pd.DataFrame(summary), hide_index=True, width="stretch")
    st.caption(v.t("env.derived_help"))
    if "dew_point_c" in wide:
        derived = wide.melt(id_vars=["plot", "time"], value_vars=["dew_point_c", "vpd_kpa"], var_name="field",
                            value_name="value").assign(device="", depth_cm="", min=float("nan"), max=float("nan"))
        dlabels = {(p,): site.plot_label(p, v.lang) for p in plots}
        d1c, d2c = st.columns(2)
        for col, field, title in ((d1c, "dew_point_c", "env.dew_point"), (d2c, "vpd_kpa", "env.vpd")):
            fig = charts.lines(derived, field, ["plot"], dlabels, pd.Timedelta(hours=3), v.lang, False, False, 300)
            fig.update_layout(title=v.t(title))
            col.plotly_chart(fig, key=f"env_derived_{field}")

# -- freshness and gaps --
st.subheader(v.t("env.freshness"))
latest = data.latest(me)
rows = []
for dev in devices:
    mine = latest[latest["device"] == dev]
    newest = int(mine["time_ns"].max()) if not mine.empty else None
    shown = df[df["device"] == dev] if by == "device" and not df.empty else pd.DataFrame()
    gaps, longest = 0, pd.Timedelta(0)
    if not shown.empty:
        for _, g in shown.groupby(["field", "depth_cm"]):
            steps = g["time"].diff().dropna()
            big = steps[steps > max_step]
            gaps += len(big)
            longest = max(longest, big.max() if not big.empty else pd.Timedelta(0))
    rows.append({
        v.t("env.col_device"): dev,
        v.t("env.col_last"): v.fmt_time(newest),
        v.t("env.col_age"): v.age(newest, now),
        v.t("env.col_state"): v.t("env.fresh") if newest and now - newest <= stale_ns else v.t("env.stale"),
        v.t("env.col_gaps"): gaps,
        v.t("env.col_longest"): str(longest.floor("min")) if gaps else "—",
    })
st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")

# -- export --
if not df.empty:
    shown = export.table(df, v.lang)
    stamp = datetime.now(site.tz).strftime("%Y%m%d-%H%M")
    e1, e2 = st.columns(2)
    # Built on click only: an Excel file of a year of raw data takes seconds, and most reruns never download.
    e1.download_button(v.t("env.csv"), lambda: export.csv_bytes(shown), f"orchard-{stamp}.csv", "text/csv",
                       key="env_csv", on_click="ignore")
    e2.download_button(v.t("env.excel"), lambda: export.excel_bytes(shown), f"orchard-{stamp}.xlsx",
                       "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", key="env_xlsx",
                       on_click="ignore")
    st.caption(v.t("env.export_help", tz=site.site.timezone))
