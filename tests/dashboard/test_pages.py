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
    assert m["最新数据"] == "20 秒前"  # the dashboard's clock: 20 s after the newest reading
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
        (DeadLetter(now + 10**9, "orchard/sunzigou/p01/ws-p01/telemetry", b"\xff not json", "bad_json: unexpected byte",
                    "ws-p01", "sunzigou", "p01"), False),
    ], [], [])

    at = run_app(seeded, "devices")
    assert at.title[0].value == "设备"
    assert len(at.dataframe[0].value) == 25
    assert any("暂存 1 条数据" in md.value for md in at.markdown)
    at.button(key="approve_stranger").click().run()
    assert {x.device: x.status for x in records.devices()}["stranger"] == "approved"

    # The dead-letter browser: both entries, the newest (the bad JSON, a second later) selected, its payload shown.
    assert any(c.value == "共 2 条" for c in at.caption)
    shown = "\n".join(c.value for c in at.code)
    assert "not json" in shown and "air_temp_c" not in shown
    at.selectbox(key="dead_kind").set_value("bad_json").run()
    assert any(c.value == "共 1 条" for c in at.caption)
    assert any("not json" in c.value for c in at.code)
    records.close()


def test_devices_page_shows_what_a_device_last_sent(run_app: RunApp,
                                                    tmp_path_factory: pytest.TempPathFactory) -> None:
    d = tmp_path_factory.mktemp("payload")
    seeded = seed(d, f"sqlite:///{d}/ts.sqlite", 0.1, time.time())
    records = Records.in_data_dir(d)
    now = time.time_ns()
    records.note_payloads([
        ("ws-p01", now, "application/a/device/24e124126b316403/event/up",
         orjson.dumps({"object": {"temperature": 30.8, "firmware_build": 7}})),
        ("sp-p01", now, "orchard/sunzigou/p01/sp-p01/telemetry", bytes.fromhex("0103040292FF9BDA4F")),  # Modbus
    ])
    records.close()
    at = run_app(seeded, "devices")
    at.selectbox(key="dev_payload_device").set_value("ws-p02").run()
    assert any(c.value == "还没有收到这台设备可入库的上报。" for c in at.caption)  # nothing noted for it yet
    at.selectbox(key="dev_payload_device").set_value("ws-p01").run()
    assert any('"firmware_build": 7' in c.value for c in at.code)
    assert any("application/a/device/24e124126b316403/event/up" in c.value for c in at.caption)
    at.selectbox(key="dev_payload_device").set_value("sp-p01").run()
    assert any(c.value == "01 03 04 02 92 FF 9B DA 4F" for c in at.code)  # a binary frame as hex


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


def frosty(d: object) -> tuple[Records, int]:
    """A critical frost on p01 and an offline device, as the analytics service would have raised them."""
    from orchard.models import Signal
    from orchard.records.alarms import AlarmBook

    records = Records.in_data_dir(d)  # type: ignore[arg-type]
    book = AlarmBook(records)
    now = time.time_ns()
    frost, _ = book.fire(Signal("sunzigou", "plot:p01", "spring_frost", "critical", "alarm.spring_frost_text",
                                {"plot": "p01", "temp_c": -2.1, "threshold_c": -1.5, "minutes": 35}, "p01"), now)
    book.fire(Signal("sunzigou", "device:sp-p03", "device_offline", "warning", "alarm.device_offline_text",
                     {"device": "sp-p03", "minutes": 12, "plot": "p03"}, "p03", "sp-p03"), now)
    return records, frost.id


def test_command_center_codes_come_from_active_alarms(run_app: RunApp,
                                                      tmp_path_factory: pytest.TempPathFactory) -> None:
    d = tmp_path_factory.mktemp("alarmed")
    seeded = seed(d, f"sqlite:///{d}/ts.sqlite", 0.1, time.time())
    frosty(d)
    at = run_app(seeded)
    m = metrics(at)
    assert (m["🟥 红码地块"], m["🟩 绿码地块"]) == ("1", "11")  # the device alarm does not colour p03
    feed = [md.value for md in at.markdown if "春季晚霜冻" in md.value or "设备离线" in md.value]
    assert len(feed) == 2 and "未确认" in feed[0] and feed[0].startswith("🔴")


def test_alarms_page_ack_and_receipts(run_app: RunApp, tmp_path_factory: pytest.TempPathFactory) -> None:
    from orchard.records.outbox import Outbox
    from orchard.records.people import People, User

    d = tmp_path_factory.mktemp("alarms-page")
    seeded = seed(d, f"sqlite:///{d}/ts.sqlite", 0.1, time.time())
    records, frost_id = frosty(d)
    People(records).upsert(User("wang", "王建国", "farmer", channels=("dingtalk",)))
    outbox = Outbox(records)
    (nid,) = outbox.queue(frost_id, [("wang", "dingtalk")], 0, "alarm", time.time_ns())
    outbox.sent(nid, time.time_ns())
    at = run_app(seeded, "alarms")
    assert at.title[0].value == "预警与工单"
    receipts = at.dataframe[0].value
    assert receipts.iloc[0]["人员"] == "wang" and receipts.iloc[0]["阅读时间"] == "未读"
    at.button(key=f"ack_{frost_id}").click().run()
    from orchard.records.alarms import AlarmBook

    assert AlarmBook(records).get(frost_id).acked_by == "center"  # the signed-in person
    assert [e.action for e in AlarmBook(records).events(frost_id)] == ["raised", "acked"]


def test_a_frost_across_twelve_plots_is_one_group_on_the_wall_the_feed_and_the_link(
        run_app: RunApp, monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    from orchard.links import sign
    from orchard.models import Signal
    from orchard.records.alarms import AlarmBook
    from orchard.records.outbox import Outbox
    from orchard.records.people import People, User

    monkeypatch.setenv("ORCHARD_NOTIFY__LINK_SECRET", "s3cret")
    d = tmp_path_factory.mktemp("frost-night")
    seeded = seed(d, f"sqlite:///{d}/ts.sqlite", 0.1, time.time())
    records = Records.in_data_dir(d)
    book, outbox = AlarmBook(records), Outbox(records)
    now = time.time_ns()
    plots = [f"p{i:02d}" for i in range(1, 13)]
    ids = [book.fire(Signal("sunzigou", f"plot:{p}", "spring_frost", "critical", "alarm.spring_frost_text",
                            {"plot": p, "temp_c": -2.1, "threshold_c": -1.5, "minutes": 35}, p), now + k * 10**9)[0].id
           for k, p in enumerate(plots)]

    wall = [md.value for md in run_app(seeded).markdown if "春季晚霜冻" in md.value]
    assert len(wall) == 1 and "12 个地块" in wall[0] and "12/12 未确认" in wall[0]

    page = run_app(seeded, "alarms")
    assert sum("春季晚霜冻 · 12 个地块" in md.value for md in page.markdown) == 1
    assert len([e for e in page.expander if "春季晚霜冻" in e.label]) == 12  # each plot's own alarm is still there
    page.button(key=f"ack_{ids[0]}").click().run()  # one plot on its own
    assert [book.get(i).acked for i in ids].count(True) == 1

    # Wang owns three of them; his one message (one link) reads all three and acknowledges all three.
    People(records).upsert(User("wang", "王建国", "farmer", channels=("dingtalk",)))
    notes = [outbox.queue(i, [("wang", "dingtalk")], 0, "alarm", now)[0] for i in ids[1:4]]
    outbox.sent(notes, now)
    at = run_app(seeded, "receipt", t=sign(notes[0], int(time.time()) + 3600, "s3cret"))
    assert "春季晚霜冻 · 3 个地块" in at.title[0].value
    assert all(outbox.get(n).read_ns is not None for n in notes)  # type: ignore[union-attr]
    at.button(key="receipt_ack").click().run()
    assert [book.get(i).acked_by for i in ids[1:5]] == ["wang", "wang", "wang", None]


@pytest.mark.parametrize("link", ["valid", "expired", "tampered", "disabled"])
def test_receipt_link_records_the_read_and_offers_ack(link: str, run_app: RunApp, monkeypatch: pytest.MonkeyPatch,
                                                       tmp_path_factory: pytest.TempPathFactory) -> None:
    from orchard.links import sign
    from orchard.records.alarms import AlarmBook
    from orchard.records.outbox import Outbox
    from orchard.records.people import People, User

    monkeypatch.setenv("ORCHARD_NOTIFY__LINK_SECRET", "s3cret")
    d = tmp_path_factory.mktemp("receipt")
    seeded = seed(d, f"sqlite:///{d}/ts.sqlite", 0, time.time())
    records, frost_id = frosty(d)
    People(records).upsert(User("wang", "王建国", "farmer", channels=("dingtalk",), active=link != "disabled"))
    (nid,) = Outbox(records).queue(frost_id, [("wang", "dingtalk")], 0, "alarm", time.time_ns())
    expires = int(time.time()) + (-5 if link == "expired" else 3600)
    token = sign(nid, expires, "s3cret" if link != "tampered" else "guess")
    at = run_app(seeded, "receipt", t=token)
    read = Outbox(records).get(nid)
    assert read is not None
    if link != "valid":  # `orchard admin user disable wang` after the message went out: refused like a bad link
        said = {"expired": "过期", "tampered": "无效", "disabled": "已停用"}[link]
        assert at.error and said in at.error[0].value
        assert read.read_ns is None and not at.main.button
        return
    assert read.read_ns is not None and "春季晚霜冻" in at.title[0].value
    at.button(key="receipt_ack").click().run()
    assert AlarmBook(records).get(frost_id).acked_by == "wang"


def people_of(records: Records) -> None:
    from orchard.records.people import People, User

    people = People(records)
    people.upsert(User("farmer-p01", "王建国", "farmer"))
    people.set_plots("farmer-p01", ["p01"], "owns")
    people.upsert(User("adviser", "李明", "adviser"))
    people.set_plots("adviser", ["p01", "p02"], "covers")


def test_photo_report_opens_a_work_order_for_the_adviser(run_app: RunApp,
                                                         tmp_path_factory: pytest.TempPathFactory) -> None:
    from orchard.records.workorders import WorkOrders

    d = tmp_path_factory.mktemp("report")
    seeded = seed(d, f"sqlite:///{d}/ts.sqlite", 0, time.time())
    records = Records.in_data_dir(d)
    people_of(records)
    at = run_app(seeded, "report", who="farmer-p01")
    assert at.selectbox(key="report_plot").options == ["大湾红阳园"]  # only their own plot, p01
    at.button(key="report_send").click().run()
    assert at.error and "一句话" in at.error[0].value  # nothing written: nothing sent
    at.text_input(key="report_text").input("叶片有褐色病斑").run()
    at.button(key="report_send").click().run()
    assert "李明" in at.success[0].value
    (wo,) = WorkOrders(records, d / "photos").find()
    assert (wo.plot, wo.source, wo.state, wo.assignee, wo.created_by) == ("p01", "photo", "assigned", "adviser",
                                                                          "farmer-p01")


def test_a_farmers_words_reach_the_adviser_as_text_not_markdown(run_app: RunApp,
                                                              tmp_path_factory: pytest.TempPathFactory) -> None:
    """An image link in a 随手拍 report would make every adviser's browser fetch the farmer's URL."""
    import re

    d = tmp_path_factory.mktemp("words")
    seeded = seed(d, f"sqlite:///{d}/ts.sqlite", 0, time.time())
    people_of(Records.in_data_dir(d))
    at = run_app(seeded, "report", who="farmer-p01")
    at.text_input(key="report_text").input("![看这里](http://127.0.0.1:9/p.png) **急**").run()
    at.button(key="report_send").click().run()
    at = run_app(seeded, "alarms", who="adviser")
    shown = [md.value for md in at.markdown]
    assert any("\\!\\[看这里\\]\\(http\\://127\\.0\\.0\\.1\\:9/p\\.png\\) \\*\\*急\\*\\*" in m for m in shown)
    assert not [m for m in shown if re.search(r"(?<!\\)!\[", m)]  # no image syntax left for the browser


def test_work_order_board_steps_and_kpis(run_app: RunApp, tmp_path_factory: pytest.TempPathFactory) -> None:
    from orchard.records.workorders import WorkOrders

    d = tmp_path_factory.mktemp("board")
    seeded = seed(d, f"sqlite:///{d}/ts.sqlite", 0, time.time())
    records, frost_id = frosty(d)
    people_of(records)
    orders = WorkOrders(records, d / "photos")
    wo = orders.open(plot="p01", title="春季晚霜冻", created_by="system", now_ns=time.time_ns(), source="alarm",
                     alarm_id=frost_id, assignee="adviser")
    at = run_app(seeded, "alarms", who="adviser")
    assert any(f"#{wo.id} 春季晚霜冻" in md.value for md in at.markdown)
    at.selectbox(key=f"wo_step_{wo.id}").set_value("accepted").run()
    at.button(key=f"wo_go_{wo.id}").click().run()
    assert orders.get(wo.id).state == "accepted"
    at.selectbox(key=f"wo_step_{wo.id}").set_value("on_site").run()
    at.button(key=f"wo_go_{wo.id}").click().run()
    at.selectbox(key=f"wo_step_{wo.id}").set_value("resolved").run()
    at.button(key=f"wo_go_{wo.id}").click().run()
    assert at.error and "处理说明" in at.error[0].value  # resolved needs a note or a photo
    assert not [df for df in at.dataframe if "农技员" in df.value.columns]  # the KPIs are the command center's
    at = run_app(seeded, "alarms")
    kpi = [df.value for df in at.dataframe if "农技员" in df.value.columns]
    assert kpi and kpi[0].iloc[0]["农技员"] == "adviser" and kpi[0].iloc[0]["工单数"] == 1


def test_alarm_closed_by_hand_with_a_reason(run_app: RunApp, tmp_path_factory: pytest.TempPathFactory) -> None:
    from orchard.records.alarms import AlarmBook

    d = tmp_path_factory.mktemp("close")
    seeded = seed(d, f"sqlite:///{d}/ts.sqlite", 0, time.time())
    records, frost_id = frosty(d)
    people_of(records)
    at = run_app(seeded, "alarms", who="adviser")
    at.text_input(key=f"close_r_{frost_id}").input("误报：传感器被淋湿").run()
    at.button(key=f"close_{frost_id}").click().run()
    alarm = AlarmBook(records).get(frost_id)
    assert not alarm.active
    assert AlarmBook(records).events(frost_id)[-1].detail == {"reason": "误报：传感器被淋湿"}
    assert AlarmBook(records).events(frost_id)[-1].actor == "adviser"


def test_inbox_shows_my_messages_and_marks_them_read(run_app: RunApp,
                                                     tmp_path_factory: pytest.TempPathFactory) -> None:
    from orchard.records.outbox import Outbox

    d = tmp_path_factory.mktemp("inbox")
    seeded = seed(d, f"sqlite:///{d}/ts.sqlite", 0, time.time())
    records, frost_id = frosty(d)
    people_of(records)
    (nid,) = Outbox(records).queue(frost_id, [("farmer-p01", "inbox")], 0, "alarm", time.time_ns())
    at = run_app(seeded, "alarms", who="farmer-p01")
    assert any("🆕" in md.value and "春季晚霜冻" in md.value for md in at.markdown)
    assert Outbox(records).get(nid).read_ns is not None  # type: ignore[union-attr]


def test_an_adviser_backtests_a_threshold_before_changing_it(run_app: RunApp, fresh_sqlite: Seeded) -> None:
    """The 预警 page's backtest runs `orchard analytics replay` over the stored day: with saturation counted from
    100 VWC points below field capacity, every plot would have had a waterlogging warning; none was raised."""
    at = run_app(fresh_sqlite, "alarms")
    assert "规则回测" in [t.label for t in at.tabs]
    at.selectbox(key="bt_rule").set_value("waterlogging").run()
    at.selectbox(key="bt_param").set_value("above_fc_pct").run()
    at.text_input(key="bt_value").set_value("-100")
    at.number_input(key="bt_days").set_value(1)
    at.button(key="bt_go").click().run(timeout=180)
    assert not at.error, [e.value for e in at.error]
    m = metrics(at)
    assert (m["当时发出"], m["回测会发出"], m["新增"], m["不再发出"]) == ("0", "12", "12", "0")
    table = at.dataframe[-1].value
    assert len(table) == 12 and set(table["变化"]) == {"新增"} and set(table["级别"]) == {"预警"}


def test_a_farmer_has_no_backtest(run_app: RunApp, fresh_sqlite: Seeded) -> None:
    from orchard.records import Records
    from orchard.records.people import People, User

    records = Records.in_data_dir(fresh_sqlite.data_dir)
    People(records).upsert(User("li-farmer", "李大姐", "farmer"))
    People(records).set_plots("li-farmer", ["p01"], "owns")
    records.close()
    at = run_app(fresh_sqlite, "alarms", who="li-farmer")
    assert "规则回测" not in [t.label for t in at.tabs]
    assert "bt_go" not in [b.key for b in at.button]
