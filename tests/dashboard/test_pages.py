"""Every page through streamlit's AppTest against seeded stores (no mocks of the store): fresh data on SQLite and
InfluxDB, an empty store, data that stopped hours ago, one device offline; Chinese and English."""

from __future__ import annotations

import time
from collections.abc import Callable

import orjson
import pytest
from streamlit.testing.v1 import AppTest

from orchard.models import DeadLetter, Device
from orchard.records import Records
from tests.dashboard.conftest import Seeded, seed

pytestmark = pytest.mark.integration

RunApp = Callable[..., AppTest]


def metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def plotly_count(at: AppTest) -> int:
    return len(at.get("plotly_chart"))


@pytest.mark.parametrize("backend", ["sqlite", "influxdb"])
def test_command_center_with_fresh_data(run_app: RunApp, backend: str, request: pytest.FixtureRequest) -> None:
    seeded: Seeded = request.getfixturevalue(f"fresh_{'sqlite' if backend == 'sqlite' else 'influx'}")
    at = run_app(seeded)
    assert at.title[0].value == "指挥中心 · 笋子沟村"
    m = metrics(at)
    assert int(m["🟥 红码地块"]) + int(m["🟨 黄码地块"]) + int(m["🟩 绿码地块"]) == 12  # every plot judged
    assert m["在线设备"] == "24 / 24"
    assert "秒前" in m["最新数据"] or "分钟前" in m["最新数据"]
    assert m["24 小时最低气温"].endswith("°C")
    assert plotly_count(at) == 5  # the map and four 24-hour strips
    assert not at.error
    assert [r.value for r in at.sidebar.radio] == ["zh"]  # the language switch


def test_command_center_kiosk_in_english(run_app: RunApp, fresh_sqlite: Seeded) -> None:
    at = run_app(fresh_sqlite, lang="en", kiosk="1")
    assert at.title[0].value == "Command center · Sunzigou village"
    assert "Devices online" in metrics(at)
    assert not at.sidebar.radio  # no sidebar controls on the wall screen
    assert any("display: none" in h.proto.body for h in at.get("html"))  # sidebar, menu and header hidden
    assert at.query_params["lang"] == "en"


def test_command_center_with_stale_data(run_app: RunApp, stale_sqlite: Seeded) -> None:
    at = run_app(stale_sqlite)
    m = metrics(at)
    assert (m["🟥 红码地块"], m["🟨 黄码地块"], m["🟩 绿码地块"]) == ("0", "0", "0")  # no data is not "green"
    assert m["最新数据"] == "6 小时前"
    assert m["在线设备"] == "0 / 24"
    assert any("12 个地块数据中断" in str(x.proto.delta) for x in at.metric)


def test_command_center_with_empty_store(run_app: RunApp, empty_store: Seeded) -> None:
    at = run_app(empty_store)
    assert "还没有传感器数据" in at.info[0].value
    assert metrics(at)["24 小时最低气温"] == "—"
    assert metrics(at)["最新数据"] == "从未"


def test_one_device_offline(run_app: RunApp, tmp_path_factory: pytest.TempPathFactory) -> None:
    d = tmp_path_factory.mktemp("offline")
    seeded = seed(d, f"sqlite:///{d}/ts.sqlite", 0.1, time.time())
    records = Records.in_data_dir(d)
    records.record_batch([], [], [("sp-p03", "sunzigou", "p03", False, time.time_ns())])  # its last will
    records.close()
    at = run_app(seeded)
    m = metrics(at)
    assert m["在线设备"] == "23 / 24"
    assert any("1 台离线" in str(x.proto.delta) for x in at.metric)
    assert any("sp-p03" in md.value for md in at.markdown)
    at = run_app(seeded, "devices")
    table = at.dataframe[0].value
    assert table.loc[table["设备"] == "sp-p03", "状态"].item() == "🔴 离线"
    assert (table["状态"] == "🟢 在线").sum() == 23


@pytest.mark.parametrize("backend", ["sqlite", "influxdb"])
def test_environment_page(run_app: RunApp, backend: str, request: pytest.FixtureRequest) -> None:
    seeded: Seeded = request.getfixturevalue(f"fresh_{'sqlite' if backend == 'sqlite' else 'influx'}")
    at = run_app(seeded, "environment")
    assert at.title[0].value == "环境监测"
    assert at.caption[0].value == "显示原始数据"  # 24 h: raw readings
    assert plotly_count(at) == 4  # air temperature, humidity; dew point, VPD
    derived = at.dataframe[0].value
    assert list(derived["地块"]) == ["大湾红阳园", "石板坡红阳园", "竹林湾海沃德园"]
    assert derived["冷温时数 (h)"].between(0, 30).all()
    fresh = at.dataframe[1].value
    assert set(fresh["设备"]) == {"ws-p01", "sp-p01", "ws-p02", "sp-p02", "ws-p03", "sp-p03"}
    assert len(at.download_button) == 2

    at.segmented_control(key="env_range").set_value("7d").run()
    assert at.caption[0].value == "显示 10 分钟均值，阴影为最小–最大范围"
    at.radio(key="env_by").set_value("plot").run()
    assert not at.exception
    assert plotly_count(at) == 4


def test_environment_page_english_and_empty(run_app: RunApp, empty_store: Seeded) -> None:
    at = run_app(empty_store, "environment", lang="en")
    assert at.title[0].value == "Environment"
    assert at.warning[0].value == "No data in the chosen range."
    assert not at.download_button  # nothing shown, nothing to export


def test_devices_page_pending_and_dead_letters(run_app: RunApp, tmp_path_factory: pytest.TempPathFactory) -> None:
    d = tmp_path_factory.mktemp("devices")
    seeded = seed(d, f"sqlite:///{d}/ts.sqlite", 0.1, time.time())
    records = Records.in_data_dir(d)
    now = time.time_ns()
    records.upsert_device(Device("stranger", "sunzigou", "p05", "pending", "soil_probe"))
    payload = orjson.dumps({"ts": 1, "readings": {"air_temp_c": 99}})
    records.record_batch([
        (DeadLetter(now, "orchard/sunzigou/p05/stranger/telemetry", payload, "held_unknown_device: waiting",
                    "stranger", "sunzigou", "p05"), True),
        (DeadLetter(now, "orchard/sunzigou/p01/ws-p01/telemetry", b"\xff not json", "bad_json: unexpected byte",
                    "ws-p01", "sunzigou", "p01"), False),
    ], [], [])

    at = run_app(seeded, "devices")
    assert at.title[0].value == "设备"
    assert len(at.dataframe[0].value) == 25
    assert any("暂存 1 条数据" in md.value for md in at.markdown)
    at.button(key="approve_stranger").click().run()
    assert {x.device: x.status for x in records.devices()}["stranger"] == "approved"

    # The dead-letter browser: both entries, the newest selected, its raw payload shown.
    assert any(c.value == "共 2 条" for c in at.caption)
    assert any("not json" in c.value or "air_temp_c" in c.value for c in at.code)
    at.selectbox(key="dead_kind").set_value("bad_json").run()
    assert any(c.value == "共 1 条" for c in at.caption)
    assert any("not json" in c.value for c in at.code)
    records.close()


def test_devices_page_reject_in_english(run_app: RunApp, tmp_path_factory: pytest.TempPathFactory) -> None:
    d = tmp_path_factory.mktemp("reject")
    seeded = seed(d, f"sqlite:///{d}/ts.sqlite", 0, time.time())
    records = Records.in_data_dir(d)
    records.upsert_device(Device("intruder", "sunzigou", "p02", "pending"))
    at = run_app(seeded, "devices", lang="en")
    assert at.title[0].value == "Devices"
    at.button(key="reject_intruder").click().run()
    assert {x.device: x.status for x in records.devices()}["intruder"] == "rejected"
    assert at.success[0].value == "No devices waiting for approval."
    records.close()
