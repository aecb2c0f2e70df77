"""分选线, the lot report and the command center's grading panel through AppTest, against what the grading service
wrote for the last few minutes (the simulator's fruit through the real grader)."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from streamlit.testing.v1 import AppTest

from orchard.records import Records
from orchard.records.lots import Lot, Lots
from orchard.settings import Settings
from orchard.site import site_for
from tests.dashboard.conftest import Seeded, grade, seed

pytestmark = pytest.mark.integration
RunApp = Callable[..., AppTest]
NS = 1_000_000_000


@pytest.fixture
def line_store(tmp_path: Path) -> Seeded:
    """Registered devices, no readings, judged at a fixed noon: "today" on the line page is the whole test's day,
    whatever time it runs (just after midnight, the fruit graded a minute earlier was yesterday's)."""
    noon = datetime(2026, 6, 15, 12, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
    return seed(tmp_path, f"sqlite:///{tmp_path}/ts.sqlite", 0, time.time(), now_ns=int(noon.timestamp()) * NS)


def grade_for_a_while(seeded: Seeded, frames: int = 60, end: bool = False) -> Lot:
    """A lot of p03's fruit graded over the last ~5 minutes (a frame every 5 s of simulated time)."""
    return grade(seeded, "p03", frames, end, note="6 筐")


def texts(at: AppTest) -> str:
    return "\n".join([m.value for m in at.markdown] + [c.value for c in at.caption] + [s.value for s in at.subheader])


def test_line_page_shows_the_line_and_the_open_lot(run_app: RunApp, line_store: Seeded) -> None:
    lot = grade_for_a_while(line_store)
    at = run_app(line_store, "grading")
    assert at.title[0].value == "果品分选线"
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["当前批次"] == f"#{lot.id} · {lot.fruit:,}" and lot.fruit > 50
    assert metrics["商品果率"] == f"{lot.packout_pct:.1f}%"
    assert int(metrics["分选速度（个/分钟）"]) > 0
    assert int(metrics["今日分选（个）"].replace(",", "")) == lot.fruit  # the only lot of the day
    shown = texts(at)
    assert "🟢 **电商分选中心一号线** · 运行中" in shown and f"批次 #{lot.id} · 张明华" in shown
    assert len(at.get("plotly_chart")) >= 4  # throughput, class mix, sizes, reasons
    assert len(at.get("image")) == 1  # the last annotated frame
    assert f"进行中：批次 #{lot.id}，张明华" in shown

    at.button(key="grade_end").click().run()
    assert not at.exception
    assert any(f"批次 #{lot.id} 已结束" in s.value for s in at.success)
    at.selectbox(key="grade_plot").select("p09")
    at.text_input(key="grade_grower").input("周桂花家")
    (submit,) = [b for b in at.button if b.label == "开始新批次"]
    submit.click().run()
    assert not at.exception
    assert any("（周桂花家）已开始" in s.value for s in at.success)
    settings = Settings(store_url=line_store.store_url, data_dir=line_store.data_dir)
    now_open = Lots(Records.open(settings), site_for(settings)).current("line-1")
    assert now_open is not None and (now_open.plot, now_open.grower) == ("p09", "周桂花家")


def test_lot_history_links_to_a_printable_report(run_app: RunApp, empty_store: Seeded) -> None:
    lot = grade_for_a_while(empty_store, end=True)
    at = run_app(empty_store, "grading")
    table = at.dataframe[0].value
    assert list(table["#"]) == [lot.id] and table["报告"][0].startswith(f"./lot?lot={lot.id}")
    assert "结束时间" in table.columns and table["果数"][0] == lot.fruit

    report = run_app(empty_store, "lot_report", lot=str(lot.id))
    assert report.title[0].value == f"分选批次报告 #{lot.id}"
    shown = texts(report)
    assert "**果农**：张明华" in shown and "**备注**：6 筐" in shown
    assert f"**商品果率 %**：{lot.packout_pct:.1f}" in shown
    body = report.dataframe[0].value
    assert int(body["合计"].sum()) == lot.fruit
    downloads = report.get("download_button")
    assert len(downloads) == 2


@pytest.mark.parametrize("bad", ["999", "abc", "1;DROP TABLE lots", ""])
def test_report_of_no_such_lot_says_so(run_app: RunApp, empty_store: Seeded, bad: str) -> None:
    at = run_app(empty_store, "lot_report", lot=bad)
    assert at.error and "没有这个批次" in at.error[0].value


def test_command_center_has_a_grading_panel(run_app: RunApp, empty_store: Seeded) -> None:
    lot = grade_for_a_while(empty_store)
    at = run_app(empty_store)
    assert "果品分选线" in texts(at)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["当前批次"] == f"#{lot.id} 张明华" and metrics["商品果率"] == f"{lot.packout_pct:.1f}%"
