"""One analytics process for a town's villages (analytics/town.py), sharing one store, one records DB and one
broker connection: a low battery in one village is that village's alarm only, though both have a ws-p04; a
message on one village's topic reaches that village's cycle only; serving a town needs the county file."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import orjson
import pytest

from analytics.notify.channels import Robot
from analytics.town import build_town, served
from app.demo_county import write_county
from bench.servers import Mosquitto
from orchard.catalogue import TELEMETRY
from orchard.county import CountyError
from orchard.models import Point
from orchard.mqtt import connect_to, make_client
from orchard.settings import AnalyticsSettings, NotifySettings, Settings
from orchard.store import open_store
from tests.conftest import unique

NS = 10**9
TOWNS = {"lingjiang": ("陵江镇", [("sunzigou", "笋子沟村"), ("hexi", "河西村")]),
         "yongning": ("永宁镇", [("qiaoxi", "桥溪村")])}


def town_settings(tmp_path: Path, mqtt_url: str = "mqtt://127.0.0.1:1", prefix: str = "orchard") -> Settings:
    county = write_county(tmp_path / "county", TOWNS)
    return Settings(store_url=f"sqlite:///{tmp_path}/ts.sqlite", data_dir=tmp_path, county_file=county,
                    mqtt_url=mqtt_url, mqtt_prefix=prefix, analytics=AnalyticsSettings(serve="lingjiang"))


def test_a_town_serves_its_villages_and_keeps_their_alarms_apart(tmp_path: Path) -> None:
    settings = town_settings(tmp_path)
    now = time.time_ns()
    open_store(settings.store_url).write([  # hexi's ws-p04 is low; sunzigou's ws-p04 has said nothing
        Point(TELEMETRY, {"site": "hexi", "plot": "p04", "device": "ws-p04"}, {"battery_v": 3.2}, now - k * 60 * NS)
        for k in range(5)])
    town = build_town(settings, with_mqtt=False, clock=lambda: now)
    assert list(town.services) == ["sunzigou", "hexi"]  # the town's villages, not 桥溪 of 永宁镇
    for service in town.services.values():
        service.run_once()
        assert service.last_ok
    low = {v: [(a.site, a.device) for a in s.engine.book.active() if a.type == "low_battery"]
           for v, s in town.services.items()}
    assert low == {"sunzigou": [], "hexi": [("hexi", "ws-p04")]}


def test_a_towns_villages_share_one_robot_and_its_per_minute_budget(tmp_path: Path) -> None:
    settings = town_settings(tmp_path).model_copy(update={"notify": NotifySettings(
        dingtalk_url="https://oapi.dingtalk.com/robot/send?access_token=t")})  # type: ignore[arg-type]
    sun, hexi = build_town(settings, with_mqtt=False).services.values()
    robot = sun.dispatcher.channels["dingtalk"]
    assert isinstance(robot, Robot) and robot is hexi.dispatcher.channels["dingtalk"]
    assert sun.notices is not None and sun.notices.channels["dingtalk"] is robot


@pytest.mark.integration
def test_one_connection_hands_each_village_its_own_messages(tmp_path: Path, mosquitto: Mosquitto) -> None:
    prefix = unique("o")
    settings = town_settings(tmp_path, mosquitto.url, prefix)
    town = build_town(settings, clock=time.time_ns)
    town.subscribe()
    try:
        assert town.subscribed.wait(10), "no SUBACK"
        pub = make_client(mosquitto.url, unique("field-"))
        connected = threading.Event()
        pub.on_connect = lambda *_: connected.set()
        connect_to(pub, mosquitto.url)
        pub.loop_start()
        assert connected.wait(10), "no CONNACK"
        body = orjson.dumps({"readings": {"air_temp_c": -2.0}})
        pub.publish(f"{prefix}/hexi/p02/ws-p02/telemetry", body, qos=1).wait_for_publish(10)
        pub.publish(f"{prefix}/qiaoxi/p02/ws-p02/telemetry", body, qos=1).wait_for_publish(10)  # not this town's
        assert town.services["hexi"].wake.wait(10), "hexi never heard of its message"
        pub.loop_stop()
        assert set(town.services["hexi"].pending) == {"ws-p02"}
        assert town.services["sunzigou"].pending == {} and not town.services["sunzigou"].wake.is_set()
    finally:
        town.halt()
        assert town.client is not None
        town.client.loop_stop()
        town.client.disconnect()


def test_serving_a_town_needs_the_county_file(tmp_path: Path) -> None:
    with pytest.raises(CountyError, match="ORCHARD_COUNTY_FILE"):
        served(Settings(data_dir=tmp_path, analytics=AnalyticsSettings(serve="lingjiang")))
    with pytest.raises(CountyError, match="wenchang"):
        served(town_settings(tmp_path).model_copy(update={"analytics": AnalyticsSettings(serve="wenchang")}))
