"""智慧果园指挥中心: the Streamlit app shell. `orchard dashboard` serves it.

Routes to the pages with st.navigation; ?lang=en switches to English, ?kiosk=1 gives the wall-screen mode
(no sidebar or menus, dark, large type). Pages live in dashboard/views/.
"""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st

from dashboard import shell, signin
from dashboard.views import discover
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
@media (max-width: 640px) { .block-container { padding: 3.8rem 0.6rem 2rem !important; }  /* below the header */
  [data-testid="stMetricValue"], [data-testid="stMetricValue"] p { font-size: 1.6rem !important; } }
</style>
"""



def widget_texts(view: shell.View) -> str:
    """Streamlit's own words inside the file and camera widgets (English whatever the page), in the reader's
    language: the original text hidden, ours drawn in its place (Streamlit has no setting for them)."""
    t = {k: view.t(f"common.{k}").replace('"', "'") for k in ("upload_pick", "upload_hint", "camera_take",
                                                                 "camera_allow")}
    return f"""<style>
[data-testid="stFileUploaderDropzone"] button p {{ font-size: 0 !important; }}
[data-testid="stFileUploaderDropzone"] button p::after {{ content: "{t['upload_pick']}"; font-size: 1rem; }}
[data-testid="stFileUploaderDropzoneInstructions"] > * {{ display: none !important; }}
[data-testid="stFileUploaderDropzoneInstructions"]::after {{ content: "{t['upload_hint']}"; font-size: 0.9rem; }}
[data-testid="stCameraInputButton"] {{ font-size: 0 !important; }}
[data-testid="stCameraInputButton"]::after {{ content: "{t['camera_take']}"; font-size: 1rem; }}
[data-testid="stCameraInputWebcamComponent"] p {{ font-size: 0 !important; }}
[data-testid="stCameraInputWebcamComponent"] p::before {{ content: "{t['camera_allow']}"; font-size: 0.9rem; }}
</style>"""


try:
    site = shell.site()
except SiteError as e:
    st.error(f"{v.t('app.site_error')}\n\n{e}")
    st.stop()

# Who is looking decides which pages they get; every page checks again itself (dashboard/signin.py). A page they
# may not open keeps its address, so a link to it signs them in (or says no) instead of "page not found". The pages
# are found in dashboard/views/ (each file's NAV says its address, menu entry and roles).
me = signin.current()
signin.bind_cookie()


def stand_in(url_path: str) -> Callable[[], None]:
    """What a page's address shows to someone who may not open it: the sign-in form, or a polite no."""
    def page() -> None:
        if me is None:
            signin.form()
        else:
            st.error(v.t("auth.forbidden"))
    page.__name__ = f"closed_{url_path.replace('-', '_')}"
    return page


# Each role lands on its own home: the farmer on 我的果园, the adviser on 我的工作, county and town staff on 县域总览,
# everyone else on the command center.
HOME = {"farmer": "my-orchard", "adviser": "my-work", "county": "county", "town": "county"}
home = HOME.get(me.role, "command-center") if me is not None else "command-center"
pages = []
by_url = {}  # the pages by their address (the default page's own url_path reads "")
for info in discover():
    allowed = info.public or (me is not None and me.role in info.roles)
    target: str | Callable[[], None] = info.path if allowed else stand_in(info.url)
    by_url[info.url] = st.Page(target, title=v.t(info.title), icon=info.icon, url_path=info.url,
                               default=info.url == home,
                               visibility="visible" if allowed and info.menu and not info.public else "hidden")
    pages.append(by_url[info.url])
nav = st.navigation(pages, position="hidden" if v.kiosk or me is None else "sidebar")
if me is None:
    st.session_state["signin_page"] = nav.url_path  # "" at the site's own address
elif signin.just_signed_in() and st.session_state.pop("signin_page", None) == "" and nav is not by_url[home]:
    # Signed in at the site's address: the person's own home (a farmer's 我的果园), not the page the form stood in for.
    st.switch_page(by_url[home])
st.html(KIOSK_CSS if v.kiosk else BASE_CSS + widget_texts(v))
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
        if me is not None and me.is_center:  # an operator's hint, for the command center only
            st.caption(v.t("app.kiosk_hint"))
nav.run()
