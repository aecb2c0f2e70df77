"""随手拍: a farmer photographs a problem in the orchard and writes a line; it becomes a work order for the
plot's adviser."""

from __future__ import annotations

import time

import streamlit as st

from dashboard import shell, signin
from orchard.records.people import People, Role
from orchard.records.workorders import WorkOrderError, WorkOrders

# Where this page sits in the navigation (dashboard/views/__init__.py reads it without running the page).
NAV = {"url": "report", "title": "nav.report", "icon": "📷", "order": 60, "roles": ["center", "adviser", "farmer"]}

v = shell.view()
me = signin.who("center", "adviser", "farmer")
site = shell.visible_site(me)  # a farmer reports on their own plots
records = shell.records()
people = People(records, shell.site().id)
orders = WorkOrders(records, shell.settings().data_dir / "photos", site=shell.site().id)

st.title(v.t("report.title"))
st.caption(v.t("report.help"))
if not site.plots:
    st.info(v.t("report.no_plots"))
    st.stop()
plot = st.selectbox(v.t("report.plot"), [p.id for p in site.plots], placeholder=v.t("common.choose"), key="report_plot",
                    format_func=lambda p: site.plot_label(p, v.lang))
shot = st.camera_input(v.t("report.camera"), key="report_camera")
upload = st.file_uploader(v.t("report.upload"), type=["jpg", "jpeg", "png"], key="report_upload")
text = st.text_input(v.t("report.what"), key="report_text", max_chars=200)
photo = shot or upload
if st.button(v.t("report.send"), type="primary", key="report_send"):
    me.check(plot)
    if not text.strip():
        st.error(v.t("report.need_text"))
    else:
        advisers = people.for_plot(plot, Role.ADVISER)
        try:
            wo = orders.open(plot=plot, title=text, created_by=me.name, now_ns=time.time_ns(), source="photo",
                             assignee=advisers[0].name if advisers else None,
                             photo=photo.getvalue() if photo else None)
        except WorkOrderError as e:
            st.error(v.t(e.key))
        else:
            who = advisers[0].display if advisers else v.t("report.center")
            st.success(v.t("report.sent", id=wo.id, who=who))
