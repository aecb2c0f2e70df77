"""The broker's access control with deploy/mosquitto's config and ACL, as `orchard admin mqtt-auth` writes them:
anonymous clients refused, a device publishing only its own topics and reading nothing, each service account held to
its rights, revoked devices locked out after a reload, and the optional TLS listener."""

from __future__ import annotations

import contextlib
import queue
import ssl
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from paho.mqtt.client import CallbackAPIVersion, Client, MQTTMessage
from paho.mqtt.enums import MQTTProtocolVersion

from app.mqttauth import DeviceKeys, device_topic, write_auth
from bench.servers import Mosquitto, ServerMissing
from orchard.records import Records
from orchard.settings import Settings
from tests.conftest import _missing

pytestmark = pytest.mark.integration
SERVICE_PASSWORDS = {"ingest": "ingest-pw-123456", "ingest_2": "ingest2-pw-123456", "ingest_3": "ingest3-pw-123456",
                     "analytics": "analytics-pw-123456",
                     "cameras": "cameras-pw-123456", "simulator": "simulator-pw-123456", "lora": "lora-pw-123456"}


CLIENTS: list[Client] = []  # every client a test made: disconnected after it (the broker knows one per account)


@pytest.fixture(autouse=True)
def _disconnect_clients() -> Iterator[None]:
    """A client id is its account's name: a connection left open by one test would be replaced by the next
    test's connection with that account, and its own test's expectations with it."""
    yield
    while CLIENTS:
        c = CLIENTS.pop()
        with contextlib.suppress(Exception):
            c.disconnect()
        c.loop_stop()


@dataclass
class Broker:
    server: Mosquitto
    settings: Settings
    records: Records
    devices: dict[str, str]  # device -> password
    auth_dir: Path


def _cert(d: Path) -> tuple[Path, Path]:
    crt, key = d / "server.crt", d / "server.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
                    "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(crt)],
                   check=True, capture_output=True)
    return crt, key


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    d = tmp_path_factory.mktemp("acl")
    settings = Settings(data_dir=d, mqtt_accounts=SERVICE_PASSWORDS)  # type: ignore[arg-type]
    records = Records.in_data_dir(d)
    keys = DeviceKeys(records)
    devices = {dev: keys.issue(dev, device_topic(settings, plot, dev), time.time_ns())
               for dev, plot in (("ws-p01", "p01"), ("ws-p02", "p02"), ("gone-p03", "p03"))}
    auth_dir = d / "auth"
    write_auth(settings, records, auth_dir)
    try:
        server = Mosquitto(d / "broker", auth_dir=auth_dir, tls=_cert(d))
    except ServerMissing as e:
        _missing(e)
    with server:
        yield Broker(server, settings, records, devices, auth_dir)
    records.close()


def connect(b: Broker, user: str | None, password: str | None, *, tls: bool = False) -> tuple[Client, int]:
    """A v5 client; returns it with the broker's CONNACK reason code (0: accepted)."""
    c = Client(CallbackAPIVersion.VERSION2, client_id=f"t-{uuid.uuid4().hex[:8]}", protocol=MQTTProtocolVersion.MQTTv5)
    CLIENTS.append(c)
    codes: queue.Queue[int] = queue.Queue()
    c.on_connect = lambda _c, _u, _f, rc, _p: codes.put(rc.value)
    if user is not None:
        c.username_pw_set(user, password)
    port = b.server.port
    if tls:
        c.tls_set(ca_certs=str(b.server.workdir.parent / "server.crt"), cert_reqs=ssl.CERT_REQUIRED)
        port = b.server.tls_port or 0
    c.connect("127.0.0.1", port)
    c.loop_start()
    try:
        rc = codes.get(timeout=10)
    except queue.Empty:
        rc = -1
    return c, rc


def listen(b: Broker, user: str, topics: list[str]) -> tuple[Client, queue.Queue[MQTTMessage], list[int]]:
    c, rc = connect(b, user, SERVICE_PASSWORDS.get(user) or b.devices.get(user))
    assert rc == 0, f"{user} could not connect: {rc}"
    got: queue.Queue[MQTTMessage] = queue.Queue()
    granted: list[int] = []
    done: queue.Queue[bool] = queue.Queue()

    def on_subscribe(_c: Client, _u: object, _mid: int, codes: list[object], _p: object) -> None:
        granted.extend(int(getattr(x, "value", x)) for x in codes)  # type: ignore[call-overload]
        done.put(True)

    c.on_subscribe = on_subscribe
    c.on_message = lambda _c, _u, m: got.put(m)
    c.subscribe([(t, 1) for t in topics])
    done.get(timeout=10)
    return c, got, granted


def publish(b: Broker, user: str, topic: str, payload: bytes = b"{}") -> None:
    c, rc = connect(b, user, SERVICE_PASSWORDS.get(user) or b.devices.get(user))
    assert rc == 0, f"{user} could not connect: {rc}"
    c.publish(topic, payload, qos=1).wait_for_publish(5)
    c.loop_stop()
    c.disconnect()


def received(got: queue.Queue[MQTTMessage], within_s: float = 1.0) -> list[str]:
    out, deadline = [], time.monotonic() + within_s
    while time.monotonic() < deadline:
        with contextlib.suppress(queue.Empty):
            out.append(got.get(timeout=0.1).topic)
    return out


@pytest.mark.parametrize(("user", "password"), [
    (None, None), ("ws-p01", "wrong-password"), ("ingest", ""), ("nobody", "x"), ("ws-p01", None),
])
def test_anonymous_and_wrong_credentials_are_refused(broker: Broker, user: str | None, password: str | None) -> None:
    c, rc = connect(broker, user, password)
    c.loop_stop()
    assert rc != 0  # 134 bad user name or password / 135 not authorized


def test_every_account_with_its_password_connects(broker: Broker) -> None:
    for user, password in [*SERVICE_PASSWORDS.items(), ("ws-p01", broker.devices["ws-p01"])]:
        c, rc = connect(broker, user, password)
        c.loop_stop()
        c.disconnect()
        assert rc == 0, user


def test_a_device_publishes_only_under_its_own_topic(broker: Broker) -> None:
    ingest, got, _ = listen(broker, "ingest", ["orchard/+/+/+/telemetry", "orchard/+/+/+/status"])
    own = "orchard/sunzigou/p01/ws-p01"
    publish(broker, "ws-p01", f"{own}/telemetry")
    publish(broker, "ws-p01", f"{own}/status")
    publish(broker, "ws-p01", "orchard/sunzigou/p02/ws-p02/telemetry")  # as device B
    publish(broker, "ws-p01", "orchard/sunzigou/p02/ws-p01/telemetry")  # its own id, another plot
    publish(broker, "ws-p01", "orchard/sunzigou/alerts/p01")  # not a device's topic at all
    publish(broker, "ws-p01", f"{own}/camera")
    assert sorted(received(got)) == [f"{own}/status", f"{own}/telemetry"]
    ingest.loop_stop()


@pytest.mark.parametrize("topic", ["#", "orchard/#", "orchard/sunzigou/p02/ws-p02/telemetry",
                                   "orchard/sunzigou/p01/ws-p01/telemetry", "$SYS/#", "orchard/sunzigou/alerts/#"])
def test_a_device_reads_nothing(broker: Broker, topic: str) -> None:
    # Mosquitto 2.0 grants a subscription and checks read rights on every message it would deliver
    dev, got, _ = listen(broker, "ws-p01", [topic])
    control, seen, _ = listen(broker, "ingest", ["orchard/+/+/+/telemetry"])  # a reader with the right to
    publish(broker, "ws-p02", "orchard/sunzigou/p02/ws-p02/telemetry")
    publish(broker, "ws-p01", "orchard/sunzigou/p01/ws-p01/telemetry")
    publish(broker, "analytics", "orchard/sunzigou/alerts/p01")
    assert received(got) == []
    # ... gets both readings: they were published and delivered, only not to the device
    assert sorted(received(seen, 0.3)) == ["orchard/sunzigou/p01/ws-p01/telemetry",
                                           "orchard/sunzigou/p02/ws-p02/telemetry"]
    dev.loop_stop()
    control.loop_stop()


@pytest.mark.parametrize(("user", "topic"), [
    ("ingest", "orchard/sunzigou/p01/ws-p01/telemetry"),  # reads telemetry, may not forge it
    ("analytics", "orchard/sunzigou/p01/ws-p01/telemetry"),
    ("cameras", "orchard/sunzigou/p01/ws-p01/telemetry"),
    ("lora", "orchard/sunzigou/p01/ws-p01/status"),
    ("cameras", "orchard/sunzigou/alerts/p01"),  # only analytics raises alarms
])
def test_service_accounts_cannot_write_beyond_their_rights(broker: Broker, user: str, topic: str) -> None:
    # The watchers use accounts other than the writer's (a connection with the writer's account replaces them).
    watcher, got, _ = listen(broker, "ingest_2", ["orchard/+/+/+/telemetry", "orchard/+/+/+/status"])
    alerts, got_alerts, _ = listen(broker, "ingest_3", ["orchard/+/alerts/#"])  # ingest may not read alerts
    publish(broker, user, topic)
    assert received(got) == [] and received(got_alerts, 0.2) == []
    if "/alerts/" not in topic:  # the control: the device itself may write there, and the watcher sees it
        device = topic.split("/")[3]
        publish(broker, device, topic)
        assert received(got) == [topic]
    watcher.loop_stop()
    alerts.loop_stop()
    alerts.loop_stop()


@pytest.mark.parametrize(("user", "topic", "writer", "sample", "allowed"), [
    ("ingest", "orchard/+/+/+/telemetry", "ws-p01", "orchard/sunzigou/p01/ws-p01/telemetry", True),
    ("ingest", "orchard/+/+/+/camera", "cameras", "orchard/sunzigou/p01/cam-p01/camera", False),
    ("cameras", "orchard/+/+/+/telemetry", "ws-p01", "orchard/sunzigou/p01/ws-p01/telemetry", False),
    ("lora", "application/+/device/+/event/up", "lora", "application/1/device/00aa/event/up", False),
    ("analytics", "orchard/+/+/+/camera", "cameras", "orchard/sunzigou/p01/cam-p01/camera", True),
    ("simulator", "orchard/#", "ws-p01", "orchard/sunzigou/p01/ws-p01/telemetry", False),
    ("ingest", "#", "analytics", "orchard/sunzigou/alerts/p01", False),
])
def test_service_accounts_read_only_what_they_need(broker: Broker, user: str, topic: str, writer: str, sample: str,
                                                   allowed: bool) -> None:
    c, got, _ = listen(broker, user, [topic])
    publish(broker, writer, sample)
    assert received(got) == ([sample] if allowed else [])
    c.loop_stop()


def test_the_services_own_work_goes_through(broker: Broker) -> None:
    ana, got, _ = listen(broker, "analytics", ["orchard/+/+/+/camera", "orchard/+/+/+/telemetry"])
    publish(broker, "cameras", "orchard/sunzigou/p01/cam-p01/camera")
    publish(broker, "simulator", "orchard/sunzigou/p07/ws-p07/telemetry")
    ing, got_up, _ = listen(broker, "ingest", ["application/+/device/+/event/up"])
    publish(broker, "lora", "application/1/device/0011223344556677/event/up")
    assert sorted(received(got)) == ["orchard/sunzigou/p01/cam-p01/camera", "orchard/sunzigou/p07/ws-p07/telemetry"]
    assert received(got_up) == ["application/1/device/0011223344556677/event/up"]
    ana.loop_stop()
    ing.loop_stop()


def test_a_revoked_device_is_locked_out_after_the_reload(broker: Broker) -> None:
    c, rc = connect(broker, "gone-p03", broker.devices["gone-p03"])
    c.loop_stop()
    assert rc == 0
    DeviceKeys(broker.records).revoke("gone-p03", time.time_ns())
    write_auth(broker.settings, broker.records, broker.auth_dir)
    broker.server.reload()
    c, rc = connect(broker, "gone-p03", broker.devices["gone-p03"])
    c.loop_stop()
    assert rc != 0
    assert "gone-p03" not in (broker.auth_dir / "acl").read_text()


def test_tls_listener_takes_the_same_accounts(broker: Broker) -> None:
    c, rc = connect(broker, "ws-p02", broker.devices["ws-p02"], tls=True)
    c.loop_stop()
    c.disconnect()
    assert rc == 0
    c, rc = connect(broker, None, None, tls=True)
    c.loop_stop()
    assert rc != 0


def test_password_file_holds_no_password(broker: Broker) -> None:
    text = (broker.auth_dir / "passwd").read_text()
    assert all(p not in text for p in [*SERVICE_PASSWORDS.values(), *broker.devices.values()])
    assert all(line.split(":", 1)[1].startswith("$7$101$") for line in text.splitlines())


def test_orchard_check_uses_the_services_own_credentials(broker: Broker, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """The containers' healthcheck: ok with the account's password, exit 1 with a clear line without it."""
    from typer.testing import CliRunner

    from app.cli import app

    monkeypatch.setenv("ORCHARD_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("ORCHARD_STORE_URL", f"sqlite:///{tmp_path}/ts.sqlite")
    port = broker.server.port
    monkeypatch.setenv("ORCHARD_MQTT_URL", f"mqtt://ingest:{SERVICE_PASSWORDS['ingest']}@127.0.0.1:{port}")
    ok = CliRunner().invoke(app, ["check"])
    assert ok.exit_code == 0 and "ok" in ok.output, ok.output
    monkeypatch.setenv("ORCHARD_MQTT_URL", f"mqtt://ingest:wrong@127.0.0.1:{port}")
    bad = CliRunner().invoke(app, ["check"])
    assert bad.exit_code == 1 and "MQTT broker" in bad.output
    monkeypatch.setenv("ORCHARD_STORE_URL", "influxdb://127.0.0.1:9/orchard")
    bad = CliRunner().invoke(app, ["check", "--no-mqtt"])
    assert bad.exit_code == 1 and "store" in bad.output


# -- client ids belong to accounts (use_username_as_clientid): a device cannot take another's session ------------
def session(b: Broker, user: str, client_id: str, *, persistent: bool = False,
            will: tuple[str, bytes] | None = None) -> tuple[Client, queue.Queue[MQTTMessage], list[int]]:
    """A v5 client asking for `client_id`; returns it with what it receives and the reason codes of its
    disconnections. Waits for the CONNACK."""
    c = Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=MQTTProtocolVersion.MQTTv5)
    CLIENTS.append(c)
    c.username_pw_set(user, SERVICE_PASSWORDS.get(user) or b.devices[user])
    got: queue.Queue[MQTTMessage] = queue.Queue()
    connected: queue.Queue[int] = queue.Queue()
    dropped: list[int] = []
    c.on_connect = lambda _c, _u, _f, rc, _p: connected.put(rc.value)
    c.on_disconnect = lambda _c, _u, _f, rc, _p: dropped.append(rc.value)
    c.on_message = lambda _c, _u, m: got.put(m)
    if will:
        c.will_set(will[0], will[1], qos=1)
    props = None
    if persistent:
        from paho.mqtt.packettypes import PacketTypes
        from paho.mqtt.properties import Properties

        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = 3600
    c.connect("127.0.0.1", b.server.port, clean_start=not persistent, properties=props)
    c.loop_start()
    assert connected.get(timeout=10) == 0, f"{user} could not connect"
    return c, got, dropped


def subscribe(c: Client, topics: list[str]) -> None:
    done: queue.Queue[bool] = queue.Queue()
    c.on_subscribe = lambda *_: done.put(True)
    c.subscribe([(t, 1) for t in topics])
    done.get(timeout=10)  # SUBACK


def test_a_device_cannot_take_over_ingests_queued_session(broker: Broker) -> None:
    """Ingest is away (an upgrade); its session holds the devices' messages. A device connects with ingest's id
    and a clean start, which would have deleted that session: all 20 still reach ingest when it is back."""
    ingest, _, _ = session(broker, "ingest", "orchard-ingest", persistent=True)
    subscribe(ingest, ["orchard/+/+/+/telemetry"])
    ingest.disconnect()
    ingest.loop_stop()
    for stolen_id in ("orchard-ingest", "ingest"):  # the configured id, and the account's name
        thief, _, _ = session(broker, "ws-p01", stolen_id)
        thief.disconnect()
        thief.loop_stop()
    for k in range(20):
        publish(broker, "ws-p02", "orchard/sunzigou/p02/ws-p02/telemetry", f'{{"seq": {k}}}'.encode())
    back, got, _ = session(broker, "ingest", "orchard-ingest", persistent=True)
    assert len(received(got, 2.0)) == 20
    back.disconnect()
    back.loop_stop()


def test_a_device_cannot_kick_ingest_off(broker: Broker) -> None:
    ingest, got, dropped = session(broker, "ingest", "orchard-ingest")
    subscribe(ingest, ["orchard/+/+/+/telemetry"])
    thief, _, _ = session(broker, "ws-p01", "orchard-ingest")  # CONNACK: the broker has dealt with the id
    publish(broker, "ws-p01", "orchard/sunzigou/p01/ws-p01/telemetry")  # ingest still there to get it
    assert received(got) == ["orchard/sunzigou/p01/ws-p01/telemetry"] and dropped == []
    for c in (thief, ingest):
        c.disconnect()
        c.loop_stop()


def test_a_device_cannot_kick_another_device_into_a_false_offline(broker: Broker) -> None:
    status = "orchard/sunzigou/p02/ws-p02/status"
    watcher, seen, _ = session(broker, "analytics", "t-watcher")
    subscribe(watcher, ["orchard/+/+/+/status", "orchard/+/+/+/telemetry"])
    victim, _, dropped = session(broker, "ws-p02", "ws-p02", will=(status, b"offline"))
    thief, _, _ = session(broker, "ws-p01", "ws-p02")
    publish(broker, "ws-p01", "orchard/sunzigou/p01/ws-p01/telemetry")  # a marker after the thief's connect
    assert received(seen) == ["orchard/sunzigou/p01/ws-p01/telemetry"]  # no "offline" will went out before it
    assert dropped == []
    for c in (thief, victim, watcher):
        c.disconnect()
        c.loop_stop()


@pytest.mark.parametrize("name", ["ws-p09\n", "ingest", "analytics", "ingest_2", "Lora", "ws p09", "温室1", ""])
def test_device_names_that_would_break_or_merge_into_the_broker_files_are_refused(broker: Broker,
                                                                                   name: str) -> None:
    from app.mqttauth import DeviceKeyError

    with pytest.raises(DeviceKeyError):
        DeviceKeys(broker.records).issue(name, "orchard/sunzigou/p09/x", time.time_ns())
    assert DeviceKeys(broker.records).issue("ws-p09", "orchard/sunzigou/p09/ws-p09", time.time_ns())  # control
