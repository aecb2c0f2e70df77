"""Secrets never shown: passwords and tokens in URL settings are masked in validation errors, reprs and log
lines; and every service, started with known secrets, never prints one (its output and log files grepped)."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from app.cli import app
from bench.servers import free_port
from orchard.logs import LogfmtFormatter
from orchard.redact import hide, redact, redact_url
from orchard.settings import Settings, secret_values
from tests.app.test_demo_processes import wait_healthy


@pytest.mark.parametrize(("url", "shown"), [
    ("influxdb://admin:pw@host:8086/db", "influxdb://admin:***@host:8086/db"),
    ("influxdb://host:8086/db?token=abc123", "influxdb://host:8086/db?token=***"),
    ("mqtt://ingest:p%40ss@broker:1883", "mqtt://ingest:***@broker:1883"),
    ("postgresql://orchard:pg-pw@db/orchard", "postgresql://orchard:***@db/orchard"),
    ("https://oapi.dingtalk.com/robot/send?access_token=tok&x=1", "https://oapi.dingtalk.com/robot/send?access_token=***&x=1"),
    ("smtp://:only-pw@mail:587", "smtp://:***@mail:587"),
    ("mqtt://broker:1883", "mqtt://broker:1883"),  # nothing secret: unchanged
    ("sqlite:///data/ts.sqlite", "sqlite:///data/ts.sqlite"),
    ("mqtt://u:pw@[bad", "mqtt://u:***@[bad"),  # unparsable: masked by pattern, never shown
])
def test_redact_url(url: str, shown: str) -> None:
    assert redact_url(url) == shown


SECRETS = {
    "mqtt": "S3cret-mqtt-7f", "influx": "S3cret-influx-9a", "token": "S3cret-token-2c", "pg": "S3cret-pg-5d",
    "ding": "S3cret-ding-1e", "dingsign": "SECs3cret-sign-4b", "smtp": "S3cret-smtp-8c", "link": "S3cret-link-3f",
    "kiosk": "S3cret-kiosk-6a", "hook": "S3cret-hook-0d", "ingest": "S3cret-acct-ingest",
}


def env_with_secrets(tmp_path: Path, records_down: bool, invalid: bool = False) -> dict[str, str]:
    closed = free_port()  # nothing listens: every connection fails, and failures are where secrets leak
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORCHARD_")}
    env.update({
        "ORCHARD_DATA_DIR": str(tmp_path / "data"),
        "ORCHARD_MQTT_URL": f"mqtt://ingest:{SECRETS['mqtt']}@127.0.0.1:{closed}",
        "ORCHARD_STORE_URL": f"influxdb://admin:{SECRETS['influx']}@127.0.0.1:{closed}/orchard?token={SECRETS['token']}",
        "ORCHARD_NOTIFY__DINGTALK_URL": f"http://127.0.0.1:{closed}/robot/send?access_token={SECRETS['ding']}",
        "ORCHARD_NOTIFY__DINGTALK_SECRET": SECRETS["dingsign"],
        "ORCHARD_NOTIFY__SMTP_URL": f"smtp://orchard:{SECRETS['smtp']}@127.0.0.1:{closed}",
        "ORCHARD_NOTIFY__LINK_SECRET": SECRETS["link"],
        "ORCHARD_NOTIFY__WEBHOOK_SECRET": SECRETS["hook"],
        "ORCHARD_DASHBOARD__KIOSK_SECRET": SECRETS["kiosk"],
        "ORCHARD_MQTT_ACCOUNTS__INGEST": SECRETS["ingest"],
    })
    if records_down:
        env["ORCHARD_DB_URL"] = f"postgresql://orchard:{SECRETS['pg']}@127.0.0.1:{closed}/orchard"
    if invalid:  # a typo in the scheme: the service refuses to start and says which setting is wrong
        env["ORCHARD_STORE_URL"] = env["ORCHARD_STORE_URL"].replace("influxdb://", "influx://")
    return env


def leaked(text: str) -> list[str]:
    return [name for name, value in SECRETS.items() if value in text]


def test_settings_repr_and_validation_errors_mask_secrets(tmp_path: Path) -> None:
    env = env_with_secrets(tmp_path, records_down=True)
    s = Settings(**{k.removeprefix("ORCHARD_").lower(): v for k, v in env.items()  # type: ignore[arg-type]
                    if k.startswith("ORCHARD_") and "__" not in k})
    assert leaked(repr(s)) == [] and "mqtt://ingest:***@127.0.0.1" in repr(s)
    bad = {**env, "ORCHARD_MQTT_URL": f"mqttx://ingest:{SECRETS['mqtt']}@host"}
    result = CliRunner().invoke(app, ["check"], env=bad)
    assert result.exit_code == 2 and "mqtt_url" in result.output and leaked(result.output) == []


def test_a_log_line_masks_every_registered_secret_wherever_it_comes_from() -> None:
    hide(*secret_values(Settings(store_url=f"influxdb://a:{SECRETS['influx']}@h:8086/db?token={SECRETS['token']}")))
    try:
        raise ConnectionError(f"could not reach http://h:8086/write?u=a&p={SECRETS['influx']}&t={SECRETS['token']}")
    except ConnectionError:
        record = logging.LogRecord("t", logging.ERROR, __file__, 1, "store_failed", None, sys.exc_info())
    record.kv = {"url": f"influxdb://a:{SECRETS['influx']}@h:8086/db"}
    line = LogfmtFormatter().format(record)
    assert leaked(line) == [] and "store_failed" in line and "***" in line
    assert redact("x mqtt://u:other-unregistered@h y") == "x mqtt://u:***@h y"  # any URL's password


FAILED = ("level=error", "level=warning", "Error", "invalid settings", "refused")  # a failure has been reported
SERVICES = [["ingest"], ["analytics"], ["cameras"], ["grading"], ["simulate", "--duration", "5"], ["check"],
            ["admin", "mqtt-auth"]]


@pytest.mark.slow
@pytest.mark.parametrize(("records_down", "invalid"), [(True, False), (False, False), (False, True)],
                         ids=["records-db-down", "sqlite-records", "invalid-store-url"])
def test_no_service_prints_a_secret(tmp_path: Path, records_down: bool, invalid: bool) -> None:
    """Each service starts with known secrets in every URL and key, while the broker, the store (and in one round
    the records DB) are unreachable; after a few seconds of retrying it is stopped. Nothing it printed, and no
    file it wrote under the data dir but the broker's own password file, holds any of the secrets."""
    env = env_with_secrets(tmp_path, records_down, invalid)
    outputs = []
    procs = []
    for argv in SERVICES:
        log = tmp_path / f"{argv[0]}.log"
        with log.open("wb") as out:
            procs.append((argv, log, subprocess.Popen([sys.executable, "-m", "app", *argv], env=env,
                                                      stdout=out, stderr=subprocess.STDOUT)))
    # Each has failed and said so (or exited) before it is stopped: a loaded machine starts Python slowly.
    # (Some retry quietly, as the simulator does its MQTT connection: those are stopped after 30 s.)
    deadline = time.monotonic() + 30
    for _, log, proc in procs:
        while (proc.poll() is None and not any(m in log.read_text(errors="replace") for m in FAILED)
               and time.monotonic() < deadline):
            time.sleep(0.2)
    time.sleep(2)  # a few retries more, with their tracebacks
    for _, _, proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for argv, log, proc in procs:
        try:
            proc.wait(40)
        except subprocess.TimeoutExpired:
            proc.kill()
        outputs.append((argv[0], log.read_text(errors="replace")))
    # They did fail, and said why.
    assert all("store_url" in text for _, text in outputs) if invalid else any(
        "Connection refused" in text or "unreachable" in text for _, text in outputs)
    for name, text in outputs:
        assert leaked(text) == [], f"orchard {name} printed a secret:\n{text[-3000:]}"
    data = tmp_path / "data"
    for path in data.rglob("*") if data.exists() else []:
        if path.is_file() and path.name != "passwd":  # mosquitto's password file holds salted hashes only
            assert leaked(path.read_text(errors="replace")) == [], path


@pytest.mark.slow
@pytest.mark.integration
def test_the_demo_prints_no_secret(tmp_path: Path) -> None:
    """The whole demo (its own broker and store) with known channel, link and kiosk secrets: until it is stopped,
    neither its output nor any file it wrote holds one."""
    env = {k: v for k, v in env_with_secrets(tmp_path, records_down=False).items()
           if k not in ("ORCHARD_MQTT_URL", "ORCHARD_STORE_URL")}
    port, log = free_port(), tmp_path / "demo.log"
    with log.open("wb") as out:
        demo = subprocess.Popen([sys.executable, "-m", "app", "demo", "--backfill-days", "1", "--port",
                                 str(port), "--mqtt-port", str(free_port())], env=env, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_healthy(port, demo, log, timeout_s=240)
        time.sleep(10)  # a few analytics cycles: alarms raised, messages to the unreachable DingTalk robot
    finally:
        os.kill(demo.pid, signal.SIGTERM)
        demo.wait(60)
    text = log.read_text(errors="replace")
    assert "command center running" in text
    assert leaked(text) == [], text[-3000:]
    for path in (tmp_path / "data").rglob("*"):
        if path.is_file():
            assert leaked(path.read_bytes().decode("latin-1")) == [], path
