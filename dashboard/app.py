"""智慧果园指挥中心: the Streamlit app shell. `orchard dashboard` serves it.

Routes to the pages with st.navigation; ?lang=en switches to English, ?kiosk=1 gives the wall-screen mode
(no sidebar or menus, dark, large type). Pages live in dashboard/pages/.
"""

from __future__ import annotations

import streamlit as st

from dashboard import shell, signin
from orchard.site import SiteError

v = shell.view()
st.set_page_config(page_title=v.t("app.title"), page_icon="🥝", layout="wide",
                   initial_sidebar_state="collapsed" if v.kiosk else "auto")

KIOSK_CSS = """
<style>
[data-testid="stSidebar"], [data-testid="stSidebarCollapsedControl"], [data-testid="stToolbar"],
[data-testid="stDecoration"], [data-testid="stStatusWidget"], header, footer, #MainMenu { display: none !important; }
.stApp, [data-testid="stAppViewContainer"], [data-testid="stMain"] { background: #0b1220 !important; }
.block-container { padding-top: 1rem !important; max-width: 100% !important; }
.stApp h1, .stApp h2, .stApp h3, [data-testid="stMarkdownContainer"], [data-testid="stCaptionContainer"],
[data-testid="stMetricLabel"], [data-testid="stMetricValue"] { color: #e6edf3 !important; }
[data-testid="stMetricValue"], [data-testid="stMetricValue"] p { font-size: 3rem !important; line-height: 1.2; }
[data-testid="stAlertContainer"] { background: #13233a !important; color: #e6edf3 !important; }
[data-testid="stMetricLabel"] p { font-size: 1.3rem !important; }
[data-testid="stMetricDelta"] { background: transparent !important; font-size: 1.1rem !important; }
[data-testid="stMetric"] { background: #111a2e; border: 1px solid #23314f; border-radius: 10px; padding: 0.6rem 1rem; }
[data-testid="stMarkdownContainer"] p { font-size: 1.25rem; }
.stApp h1 { font-size: 2.6rem !important; }
</style>
"""
BASE_CSS = """
<style>
[data-testid="stMetric"] { border: 1px solid rgba(128,128,128,0.25); border-radius: 8px; padding: 0.4rem 0.8rem; }
@media (max-width: 640px) { .block-container { padding: 0.6rem 0.6rem 2rem !important; }
  [data-testid="stMetricValue"], [data-testid="stMetricValue"] p { font-size: 1.6rem !important; } }
</style>
"""

try:
    site = shell.site()
except SiteError as e:
    st.error(f"{v.t('app.site_error')}\n\n{e}")
    st.stop()

# Who is looking decides which pages exist for them; every page checks again itself (dashboard/signin.py).
me = signin.current()
receipt = st.Page("pages/receipt.py", title=v.t("nav.receipt"), icon="✅", url_path="receipt", visibility="hidden")
if me is None:
    pages = [st.Page(signin.form, title=v.t("auth.title"), icon="🔑", url_path="signin", default=True), receipt]
else:
    pages = [
        st.Page("pages/command_center.py", title=v.t("nav.command_center"), icon="🛰️", url_path="command-center",
                default=True),
        st.Page("pages/environment.py", title=v.t("nav.environment"), icon="🌡️", url_path="environment"),
        st.Page("pages/cameras.py", title=v.t("nav.cameras"), icon="📹", url_path="cameras"),
        st.Page("pages/grading.py", title=v.t("nav.grading"), icon="🥝", url_path="grading"),
    ]
    if me.role != "kiosk":
        pages += [
            st.Page("pages/alarms.py", title=v.t("nav.alarms"), icon="🚨", url_path="alarms"),
            st.Page("pages/report.py", title=v.t("nav.report"), icon="📷", url_path="report"),
            st.Page("pages/lot_report.py", title=v.t("nav.lot_report"), icon="🧾", url_path="lot",
                    visibility="hidden"),
        ]
    if me.role in ("center", "adviser"):
        pages.append(st.Page("pages/devices.py", title=v.t("nav.devices"), icon="📡", url_path="devices"))
    pages.append(receipt)
nav = st.navigation(pages, position="hidden" if v.kiosk or me is None else "sidebar")
st.html(KIOSK_CSS if v.kiosk else BASE_CSS)
if not v.kiosk:
    with st.sidebar:
        st.markdown(f"**{site.name(v.lang)}**")
        choice = st.radio(v.t("app.language"), ["zh", "en"], index=0 if v.lang == "zh" else 1, horizontal=True,
                          format_func=lambda c: "中文" if c == "zh" else "English", key="lang_choice")
        if choice != v.lang:
            st.query_params["lang"] = choice
            st.rerun()
        if me is not None:
            st.caption(v.t("auth.signed_in_as", name=me.display, role=v.t(f"alarms.role_{me.role}")))
            if st.button(v.t("auth.logout"), key="sign_out"):
                signin.sign_out()
        st.caption(v.t("app.kiosk_hint"))
nav.run()
