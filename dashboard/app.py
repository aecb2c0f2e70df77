"""智慧果园指挥中心: the first page, showing what the store holds now (the dashboard issue builds the rest)."""

from __future__ import annotations

import time
from datetime import datetime
from zoneinfo import ZoneInfo

import pandas as pd
import streamlit as st

from orchard.catalogue import CATALOGUE, TELEMETRY
from orchard.records import Records
from orchard.settings import Settings
from orchard.store import open_store

st.set_page_config(page_title="智慧果园指挥中心", layout="wide")
settings = Settings()
tz = ZoneInfo(settings.timezone)


@st.cache_resource
def _store():  # type: ignore[no-untyped-def]
    return open_store(settings.store_url)


@st.cache_data(ttl=10)
def latest_table() -> pd.DataFrame:
    fields = ["air_temp_c", "rh_pct", "leaf_wetness_pct", "soil_vwc_pct", "battery_v"]
    since = time.time_ns() - 3 * 86400 * 10**9
    rows = _store().latest(TELEMETRY, fields, since_ns=since)
    if not rows:
        return pd.DataFrame()
    df = pd.DataFrame(
        {"plot": r.tags.get("plot"), "device": r.tags.get("device"), "depth_cm": r.tags.get("depth_cm", ""),
         "field": f"{CATALOGUE[r.field].zh} ({CATALOGUE[r.field].unit})", "value": r.value,
         "time": datetime.fromtimestamp(r.time_ns / 1e9, tz)} for r in rows
    )
    return df


st.title("智慧果园指挥中心 · 笋子沟村")
df = latest_table()
devices = Records.in_data_dir(settings.data_dir).devices()
c1, c2, c3 = st.columns(3)
c1.metric("设备总数", len(devices))
c2.metric("在线设备", sum(1 for d in devices if d.online))
c3.metric("最近数据", df["time"].max().strftime("%m-%d %H:%M") if not df.empty else "无数据")
if df.empty:
    st.info("暂无传感器数据。请先启动模拟器或接入设备。")
else:
    wide = df.pivot_table(index=["plot", "device", "depth_cm"], columns="field", values="value", aggfunc="last")
    st.dataframe(wide, width="stretch")
