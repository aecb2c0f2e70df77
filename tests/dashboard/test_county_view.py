"""县域总览 in Streamlit's app test, over a county of three towns and six villages (app/demo_county.py) sharing one
records DB: county staff see every village, ranked, on the map, with each village's command center a click away;
town staff see their town's villages only; nobody else opens it."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest
from streamlit.testing.v1 import AppTest

from app.demo_county import write_county
from orchard.models import Signal
from orchard.records import Records
from orchard.records.alarms import AlarmBook
from orchard.records.people import People, Role, User
from orchard.settings import Settings
from tests.conftest import Seeded
from tests.dashboard.conftest import seed
from tests.dashboard.test_access import page_alone

pytestmark = pytest.mark.integration
RunApp = Callable[..., AppTest]
NS = 10**9


@pytest.fixture(scope="module")
def county(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Seeded, str]]:
    d = tmp_path_factory.mktemp("county")
    path = write_county(d / "county", urls={"qiaoxi": "https://qiaoxi.example.cn/command-center"})
    seeded = seed(d, f"sqlite:///{d}/ts.sqlite", 0, time.time())
    records = Records.open(Settings(store_url=seeded.store_url, data_dir=d))
    people = People(records)
    people.upsert(User("county-1", "县农业农村局", Role.COUNTY))
    people.upsert(User("town-yn", "永宁镇农业站", Role.TOWN, town="yongning"))
    people.upsert(User("farmer-q", "桥溪果农", Role.FARMER, village="qiaoxi"))
    now = time.time_ns()
    for village, severity in (("qiaoxi", "critical"), ("dongxi", "warning")):
        AlarmBook(records, village).fire(Signal(village, "plot:p01", "spring_frost", severity,
                                                "alarm.spring_frost_text", {}, plot="p01"), now - 600 * NS)
    records.close()
    yield seeded, str(path)


def test_county_staff_see_every_village_ranked_and_on_the_map(run_app: RunApp, county: tuple[Seeded, str],
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    seeded, path = county
    monkeypatch.setenv("ORCHARD_COUNTY_FILE", path)
    at = run_app(seeded, who="county-1")  # their home
    assert at.title[0].value == "县域总览"
    ranked = next(d.value for d in at.dataframe if "村/乡镇" in d.value.columns and "指挥中心" in d.value.columns)
    places = list(ranked["村/乡镇"])
    assert places[:2] == ["🔴 桥溪村", "🟡 东溪村"] and len(places) == 6
    assert all(p.startswith("🟢") for p in places[2:])
    assert ranked["指挥中心"].iloc[0] == "https://qiaoxi.example.cn/command-center"
    assert {m.label: m.value for m in at.metric} == {"村": "6", "红色（有严重预警）": "1", "黄色（有一般预警）": "1",
                                                    "绿色（正常）": "4"}
    (chart,) = at.get("plotly_chart")
    assert str(chart.proto).count("toself") == 6  # one outline per village
    towns = next(d.value for d in at.dataframe if "指挥中心" not in d.value.columns)
    assert list(towns["村/乡镇"]) == ["🟢 陵江镇", "🔴 永宁镇", "🟡 文昌镇"]


def test_town_staff_see_their_town_only(run_app: RunApp, county: tuple[Seeded, str],
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    seeded, path = county
    monkeypatch.setenv("ORCHARD_COUNTY_FILE", path)
    at = run_app(seeded, "county", who="town-yn")
    ranked = at.dataframe[0].value
    assert list(ranked["村/乡镇"]) == ["🔴 桥溪村", "🟢 石板村"]
    text = " ".join(str(d.value.to_csv()) for d in at.dataframe) + str(at.get("plotly_chart")[0].proto)
    for elsewhere in ("东溪村", "笋子沟村", "陵江镇", "文昌镇"):
        assert elsewhere not in text


def test_nobody_else_opens_the_county_view(county: tuple[Seeded, str], monkeypatch: pytest.MonkeyPatch) -> None:
    seeded, path = county
    monkeypatch.setenv("ORCHARD_COUNTY_FILE", path)
    at = page_alone(seeded, "county", monkeypatch, who="farmer-q")
    assert at.error and "权限" in at.error[0].value and not at.dataframe and not at.get("plotly_chart")
