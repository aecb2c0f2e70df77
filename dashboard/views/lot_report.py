"""分选批次报告: one lot's report, printable (the browser's print, A4), with the report and every fruit as CSV.
Opened from the lot history (?lot=N)."""

from __future__ import annotations

import streamlit as st
import streamlit.components.v1 as components

from dashboard import data, grading, shell, signin
from orchard.access import Forbidden
from orchard.records.lots import LotError, report_csv
from orchard.store import StoreError

# Where this page sits in the navigation (dashboard/views/__init__.py reads it without running the page).
NAV = {"url": "lot", "title": "nav.lot_report", "icon": "🧾", "order": 80,
       "roles": ["center", "adviser", "farmer"], "menu": False}

v = shell.view()
me = signin.who("center", "adviser", "farmer")  # the grower's name is on it: not for the wall screen
site = shell.site()
PRINT_CSS = """
<style>
@media print {
  [data-testid="stSidebar"], [data-testid="stSidebarCollapsedControl"], header, footer, [data-testid="stToolbar"],
  [data-testid="stDownloadButton"], iframe, .stButton { display: none !important; }
  .block-container { padding: 0 !important; max-width: 100% !important; }
  @page { size: A4; margin: 12mm; }
}
</style>
"""

raw = st.query_params.get("lot", "")
try:
    # Another grower's lot gets the same answer as a lot that does not exist: no telling which ids are taken.
    lot = data.lot(me, int(raw)) if raw.isdigit() and len(raw) < 10 else None
except (LotError, Forbidden):
    lot = None
if lot is None:
    st.error(v.t("grade.no_such_lot"))
    st.stop()

st.html(PRINT_CSS)
st.title(v.t("grade.report_title", id=lot.id))
st.caption(site.name(v.lang))
facts = [
    (v.t("grade.grower"), shell.plain(lot.grower)),
    (v.t("grade.plot"), f"{site.plot_label(lot.plot, v.lang)} ({lot.plot})"),
    (v.t("grade.variety"), v.t(f"variety.{lot.variety}") if lot.variety else "—"),
    (v.t("grade.line"), site.line(lot.line).label() if lot.line in {x.id for x in site.lines} else lot.line),
    (v.t("grade.started_at"), v.fmt_time(lot.started_ns)),
    (v.t("grade.ended_at"), v.fmt_time(lot.ended_ns) if lot.ended_ns else v.t("grade.open")),
    (v.t("grade.fruit"), f"{lot.fruit:,}"), (v.t("grade.weight_kg"), f"{lot.weight_g / 1000:,.1f}"),
    (v.t("grade.mean_weight_col"), f"{lot.mean_weight_g:.1f}"), (v.t("grade.packout_col"), f"{lot.packout_pct:.1f}"),
]
if lot.note:
    facts.append((v.t("lot.note"), shell.plain(lot.note)))  # people's words: shown as typed
cols = st.columns(2)
for i, (k, val) in enumerate(facts):
    cols[i % 2].markdown(f"**{k}**：{val}")

st.subheader(v.t("grade.by_class_size"))
st.dataframe(grading.lot_table(lot, v), hide_index=True, use_container_width=True)
grading.lot_charts(lot, v, "rep", static=True)
st.caption(v.t("grade.packout_help"))

st.download_button(v.t("grade.download_report"), report_csv(lot, site, v.lang).encode(),
                   file_name=f"lot-{lot.id}-report.csv", mime="text/csv", key="rep_csv")
try:
    fruit = data.lot_fruit(me, lot.id, lot.started_ns, (lot.ended_ns or data.now_ns()) + 3600 * 1_000_000_000)
except StoreError as e:
    st.error(v.t("common.store_down", error=str(e)[:200]))
else:
    out = fruit.drop(columns=["time_ns"]).assign(time=fruit["time"].dt.strftime("%Y-%m-%d %H:%M:%S"))
    st.download_button(v.t("grade.download_fruit", n=len(out)), ("\ufeff" + out.to_csv(index=False)).encode(),
                       file_name=f"lot-{lot.id}-fruit.csv", mime="text/csv", key="rep_fruit_csv")
components.html(f"<button onclick='window.parent.print()' style='font-size:1rem;padding:0.4rem 1rem'>"
                f"🖨 {v.t('grade.print')}</button>", height=50)
