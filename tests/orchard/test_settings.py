"""Settings come from ORCHARD_* variables; URLs are checked when read."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from orchard.settings import Settings, UnknownDevicePolicy, parse_mqtt_url, parse_store_url


def test_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORCHARD_MQTT_URL", "mqtts://ingest:p%40ss@broker.example:8883")
    monkeypatch.setenv("ORCHARD_STORE_URL", "influxdb://u:pw@influx:8086/orchard?token=abc")
    monkeypatch.setenv("ORCHARD_DATA_DIR", "/var/lib/orchard")
    monkeypatch.setenv("ORCHARD_SITE", "sunzigou")
    monkeypatch.setenv("ORCHARD_UNKNOWN_DEVICES", "accept")
    monkeypatch.setenv("ORCHARD_INGEST__BATCH_SIZE", "500")
    s = Settings()
    assert s.data_dir == Path("/var/lib/orchard") and s.site == "sunzigou"
    assert s.unknown_devices is UnknownDevicePolicy.ACCEPT
    assert s.ingest.batch_size == 500
    m = parse_mqtt_url(s.mqtt_url)
    assert (m.host, m.port, m.tls, m.username, m.password) == ("broker.example", 8883, True, "ingest", "p@ss")
    st = parse_store_url(s.store_url)
    assert (st.kind, st.base_url, st.database, st.username, st.password, st.token) == (
        "influxdb", "http://influx:8086", "orchard", "u", "pw", "abc")


def test_defaults_are_the_production_ones() -> None:
    s = Settings()
    assert s.unknown_devices is UnknownDevicePolicy.HOLD
    assert s.mqtt_protocol == "5"


@pytest.mark.parametrize(
    ("name", "value"),
    [("ORCHARD_MQTT_URL", "http://broker"), ("ORCHARD_STORE_URL", "postgres://x/y"),
     ("ORCHARD_STORE_URL", "influxdb://host:8086/"), ("ORCHARD_UNKNOWN_DEVICES", "maybe"),
     ("ORCHARD_INGEST__BATCH_SIZ", "1")],
)
def test_bad_values_are_errors(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError):
        Settings()


def test_sqlite_url_paths() -> None:
    assert parse_store_url("sqlite:///data/ts.sqlite").path == Path("data/ts.sqlite")
    assert parse_store_url("sqlite:////abs/ts.sqlite").path == Path("/abs/ts.sqlite")
