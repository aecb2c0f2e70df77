"""`orchard admin`: users and passwords, devices and their MQTT credentials, plots and cameras in the operator's own
site copy, the kiosk link, and the audit log that records each of them."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from app.cli import app
from app.mqttauth import DeviceKeys
from orchard.links import verify_screen
from orchard.records import Records
from orchard.records.accounts import Accounts, LoginError
from orchard.records.audit import AuditLog
from orchard.records.people import People
from orchard.settings import DashboardSettings

run = CliRunner().invoke


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("ORCHARD_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("ORCHARD_MQTT_ACCOUNTS__INGEST", "ingest-secret-1")
    monkeypatch.setenv("ORCHARD_DASHBOARD__KIOSK_SECRET", "kiosk-secret-1")
    return tmp_path


def actions(d: Path) -> list[tuple[str, str]]:
    return [(e.action, e.target) for e in reversed(AuditLog(Records.in_data_dir(d)).entries())]


def test_user_add_with_password_passwd_and_disable(env: Path) -> None:
    added = run(app, ["admin", "user", "add", "wang", "--display", "王建国", "--role", "farmer", "--plots", "p01",
                      "--password"])
    assert added.exit_code == 0, added.output
    password = re.search(r"shown once\): (\S+)", added.output).group(1)  # type: ignore[union-attr]
    records = Records.in_data_dir(env)
    accounts = Accounts(records, DashboardSettings())
    session = accounts.login("wang", password, "t", time.time_ns())
    assert run(app, ["admin", "user", "passwd", "wang", "--password", "short"]).exit_code == 2  # too weak
    assert run(app, ["admin", "user", "passwd", "wang", "--password", "a-new-long-secret"]).exit_code == 0
    assert accounts.principal(session.token, time.time_ns()) is None  # the old session ended with the change
    s2 = accounts.login("wang", "a-new-long-secret", "t", time.time_ns())
    assert run(app, ["admin", "user", "disable", "wang"]).exit_code == 0
    assert accounts.principal(s2.token, time.time_ns()) is None
    with pytest.raises(LoginError):
        accounts.login("wang", "a-new-long-secret", "t", time.time_ns())
    listed = run(app, ["admin", "user", "list"]).output
    assert "wang" in listed and "disabled" in listed
    assert run(app, ["admin", "user", "passwd", "nobody"]).exit_code == 2
    assert actions(env) == [("user.add", "wang"), ("user.password", "wang"), ("user.password", "wang"),
                            ("user.disable", "wang")]
    assert password not in json.dumps([e.detail for e in AuditLog(records).entries()])  # no secret in the log


def test_device_add_issues_credentials_and_broker_files(env: Path) -> None:
    added = run(app, ["admin", "device", "add", "ws-p13", "p01", "--kind", "weather_station"])
    assert added.exit_code == 0, added.output
    password = re.search(r"MQTT password: (\S+)", added.output).group(1)  # type: ignore[union-attr]
    passwd, acl = (env / "mqtt-auth" / "passwd").read_text(), (env / "mqtt-auth" / "acl").read_text()
    assert passwd.startswith("ingest:$7$") and "\nws-p13:$7$" in passwd and password not in passwd
    assert "user ws-p13\ntopic write orchard/sunzigou/p01/ws-p13/telemetry\n" in acl
    records = Records.in_data_dir(env)
    assert [d.device for d in records.devices()] == ["ws-p13"]
    assert run(app, ["admin", "device", "add", "bad id!", "p01"]).exit_code == 2
    assert run(app, ["admin", "device", "add", "ws-x", "p99"]).exit_code == 2
    assert "mqtt:active" in run(app, ["admin", "device", "list"]).output
    assert run(app, ["admin", "device", "revoke", "ws-p13"]).exit_code == 0
    assert "ws-p13" not in (env / "mqtt-auth" / "passwd").read_text()
    assert DeviceKeys(records).all()[0].revoked_ns is not None
    assert run(app, ["admin", "device", "revoke", "ws-p13"]).exit_code == 2
    assert actions(env) == [("device.add", "ws-p13"), ("device.revoke", "ws-p13")]


def test_plots_and_cameras_edit_only_the_operators_copy(env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    refused = run(app, ["admin", "camera", "add", "cam-x", "p01", "--name", "X", "--kind", "synthetic"])
    assert refused.exit_code == 2 and "ORCHARD_SITE_FILE" in refused.output  # never the packaged file
    site_dir = env / "site"
    assert run(app, ["admin", "site-copy", str(site_dir)]).exit_code == 0
    monkeypatch.setenv("ORCHARD_SITE_FILE", str(site_dir / "site.toml"))

    ok = run(app, ["admin", "camera", "add", "cam-x", "p03", "--name", "竹林湾路口", "--kind", "synthetic", "--url",
                   "synthetic://7"])
    assert ok.exit_code == 0, ok.output
    assert "cam-x" in run(app, ["admin", "camera", "list"]).output
    before = (site_dir / "site.toml").read_text()
    bad = run(app, ["admin", "camera", "add", "cam-y", "p99", "--name", "Y", "--kind", "synthetic", "--url", "s://"])
    assert bad.exit_code == 2 and (site_dir / "site.toml").read_text() == before  # nothing changed
    assert run(app, ["admin", "camera", "remove", "cam-x"]).exit_code == 0
    assert "cam-x" not in run(app, ["admin", "camera", "list"]).output

    plots = json.loads((site_dir / "plots.geojson").read_text())
    plots["features"][0]["properties"]["owner"] = "王建设"
    good = env / "good.geojson"
    good.write_text(json.dumps(plots, ensure_ascii=False))
    assert run(app, ["admin", "plots", "import", str(good)]).exit_code == 0
    assert "王建设" in (site_dir / "plots.geojson").read_text()
    plots["features"] = plots["features"][1:]  # p01 gone, but its devices and camera are still there
    orphaned = env / "bad.geojson"
    orphaned.write_text(json.dumps(plots))
    refused = run(app, ["admin", "plots", "import", str(orphaned)])
    assert refused.exit_code == 2 and "p01" in refused.output
    assert "王建设" in (site_dir / "plots.geojson").read_text()  # the old file is back
    (env / "junk.geojson").write_text("{not json")
    assert run(app, ["admin", "plots", "import", str(env / "junk.geojson")]).exit_code == 2
    assert [a for a, _ in actions(env)] == ["site.copy", "camera.add", "camera.remove", "plots.import"]


def test_kiosk_link_and_audit_listing(env: Path) -> None:
    out = run(app, ["admin", "kiosk-link", "--days", "30"])
    assert out.exit_code == 0
    token = out.output.strip().split("?kiosk=")[1]
    verify_screen(token, "kiosk-secret-1", time.time() + 29 * 86400)
    listing = run(app, ["admin", "audit"]).output
    assert "kiosk.link" in listing and "days=30" in listing
    assert People(Records.in_data_dir(env)).all() == []


def test_town_and_county_staff_are_placed_in_the_county(env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from app.demo_county import write_county

    monkeypatch.setenv("ORCHARD_COUNTY_FILE", str(write_county(env / "county")))
    ok = run(app, ["admin", "user", "add", "ln", "--display", "陵江镇农业站", "--role", "town", "--town", "lingjiang"])
    assert ok.exit_code == 0, ok.output
    assert run(app, ["admin", "user", "add", "f", "--display", "河西果农", "--role", "farmer",
                     "--village", "hexi"]).exit_code == 0
    people = People(Records.in_data_dir(env))
    assert (people.get("ln").town, people.get("f").village) == ("lingjiang", "hexi")  # type: ignore[union-attr]
    for bad, says in ((["--role", "town", "--town", "nowhere"], "no such town"),
                      (["--role", "farmer", "--village", "nowhere"], "no such village"),
                      (["--role", "farmer", "--town", "lingjiang"], "only town staff"),
                      (["--role", "town"], "town staff need their town"),
                      (["--role", "county", "--village", "hexi"], "belong to no village")):
        refused = run(app, ["admin", "user", "add", "x", "--display", "x", *bad])
        assert refused.exit_code != 0 and says in refused.output, (bad, refused.output)
    assert "lingjiang" in run(app, ["admin", "user", "list"]).output
