"""docker-compose.yml cannot run here (no Docker engine), so it is checked by reading it: it parses, names only
pinned official images and files that exist, every variable it uses is documented in .env.example (which holds no
secret), every ORCHARD_* it sets is a real setting, and the mounted configs are the ones the tests run with."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from orchard.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
APP_SERVICES = ["ingest", "analytics", "cameras", "grading", "dashboard"]
OFFICIAL = {"influxdb:2.7", "eclipse-mosquitto:2", "postgres:16", "alexxit/go2rtc:1.9.9"}
VAR = re.compile(r"\$\{([A-Z0-9_]+)(?:(:?[-?])([^}]*))?\}")


def env_example() -> dict[str, str]:
    pairs = {}
    for line in (ROOT / ".env.example").read_text().splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            pairs[key] = value
    return pairs


def test_the_services_the_issue_asks_for() -> None:
    others = {"mosquitto", "influxdb", "postgres", "simulator", "mqtt-auth", "go2rtc"}
    assert set(APP_SERVICES) | others == set(SERVICES)
    assert SERVICES["simulator"]["profiles"] == ["demo"]
    assert SERVICES["go2rtc"]["profiles"] == ["webrtc"]  # optional: sub-second live view (docs/video.md)
    assert {SERVICES[s]["image"] for s in ("influxdb", "mosquitto", "postgres", "go2rtc")} == OFFICIAL


@pytest.mark.parametrize("name", list(SERVICES))
def test_every_service_is_production_shaped(name: str) -> None:
    svc = SERVICES[name]
    image = svc["image"]
    if image in OFFICIAL:
        assert "build" not in svc
    else:  # our own image, built from the Dockerfile here
        assert image.startswith("smart-orchard:") and svc["build"] == "." and (ROOT / "Dockerfile").is_file()
    assert svc["logging"]["options"]["max-size"] and svc["logging"]["options"]["max-file"]  # rotated logs
    assert svc["mem_limit"] and svc["cpus"]  # resource limits
    if name != "mqtt-auth":  # a one-shot job
        assert svc["restart"] == "unless-stopped"
        assert svc["healthcheck"]["test"], name


@pytest.mark.parametrize("name", ["ingest", "analytics", "cameras", "grading"])
def test_each_service_is_healthy_only_while_its_heartbeat_is_fresh(name: str) -> None:
    """A process that is up but whose loop no longer succeeds must show as unhealthy: the check reads the
    service's own heartbeat, not only whether the servers answer."""
    test = SERVICES[name]["healthcheck"]["test"]
    assert test[:3] == ["CMD", "orchard", "check"] and test[test.index("--service") + 1] == name


@pytest.mark.parametrize("name", list(SERVICES))
def test_mounted_files_exist_and_volumes_are_named(name: str) -> None:
    for mount in SERVICES[name].get("volumes", []):
        source = mount.split(":")[0]
        if source.startswith("."):
            assert (ROOT / source).exists(), f"{name} mounts {source}, which is not in the repository"
            assert source.startswith("./deploy/"), "every mounted config lives under deploy/"
        else:
            assert source in COMPOSE["volumes"], f"{name} uses volume {source}, not declared"


def test_every_variable_is_documented_and_no_secret_is_shipped() -> None:
    text = (ROOT / "docker-compose.yml").read_text()
    used = {m.group(1) for m in VAR.finditer(text)}
    documented = env_example()
    assert sorted(used - set(documented)) == [], "variables used by docker-compose.yml but not in .env.example"
    assert sorted(set(documented) - used) == [], ".env.example documents variables nothing uses"
    for key, value in documented.items():
        if any(w in key for w in ("PASSWORD", "TOKEN", "SECRET")):
            assert value == "", f".env.example must not ship a value for the secret {key}"
    # the variables a production run cannot do without stop compose with a message when unset
    required = {m.group(1) for m in VAR.finditer(text) if m.group(2) == ":?"}
    assert {"POSTGRES_PASSWORD", "INFLUXDB_TOKEN", "MQTT_INGEST_PASSWORD", "KIOSK_SECRET"} <= required


def test_dotenv_is_not_in_git() -> None:
    ignored = subprocess.run(["git", "check-ignore", "-q", ".env"], cwd=ROOT).returncode == 0
    assert ignored, ".gitignore must keep .env out of the repository"


def _service_env(name: str, values: dict[str, str]) -> dict[str, str]:
    env: dict[str, str] = {}
    for key, raw in SERVICES[name].get("environment", {}).items():
        env[key] = VAR.sub(lambda m: values.get(m.group(1)) or (m.group(3) if m.group(2) == ":-" else ""), str(raw))
    return env


@pytest.mark.parametrize("name", [*APP_SERVICES, "simulator", "mqtt-auth"])
def test_every_orchard_variable_is_a_real_setting(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings forbid unknown keys: a typo in docker-compose.yml would stop the service at start."""
    values = {k: v or "s3cr3t0123456789abcdef" for k, v in env_example().items()}
    env = _service_env(name, values)
    for key, value in env.items():
        if key.startswith("ORCHARD_"):
            monkeypatch.setenv(key, value)
    s = Settings()
    assert s.store_url.startswith("influxdb://influxdb:8086/orchard?token=")
    assert s.records_url.startswith("postgresql://orchard:")
    if "ORCHARD_MQTT_URL" in env:
        user = re.match(r"mqtt://([^:]+):", s.mqtt_url)
        assert user and user.group(1) in ("ingest", "analytics", "cameras", "simulator")  # its own account


def test_each_service_account_in_compose_is_in_the_acl() -> None:
    acl = (ROOT / "app" / "mosquitto" / "acl").read_text()
    for name in ("ingest", "analytics", "cameras", "simulator"):
        url = SERVICES[name]["environment"]["ORCHARD_MQTT_URL"]
        assert url.startswith(f"mqtt://{name}:") and f"\nuser {name}\n" in acl


def test_the_broker_reads_the_files_mqtt_auth_writes() -> None:
    conf = (ROOT / "deploy" / "mosquitto" / "mosquitto.conf").read_text()
    auth_mount = next(m for m in SERVICES["mqtt-auth"]["volumes"] if m.startswith("mosquitto-auth:"))
    target = auth_mount.split(":")[1]
    assert SERVICES["mqtt-auth"]["command"][-1] == target
    assert f"password_file {target}/passwd" in conf and f"acl_file {target}/acl" in conf
    assert "allow_anonymous false" in conf
    assert "mosquitto-auth:/mosquitto/auth:ro" in SERVICES["mosquitto"]["volumes"]


def test_influxdb_init_script_is_valid_shell() -> None:
    for script in (ROOT / "deploy" / "influxdb" / "init").glob("*.sh"):
        assert subprocess.run(["bash", "-n", str(script)]).returncode == 0
        assert script.stat().st_mode & 0o111, f"{script} must be executable"
    env = SERVICES["influxdb"]["environment"]
    assert env["DOCKER_INFLUXDB_INIT_MODE"] == "setup" and env["DOCKER_INFLUXDB_INIT_BUCKET"] == "orchard"
    assert "DOCKER_INFLUXDB_INIT_RETENTION" in env and "DOCKER_INFLUXDB_INIT_ADMIN_TOKEN" in env


def test_dockerfile_runs_as_a_user_and_copies_what_exists() -> None:
    lines = (ROOT / "Dockerfile").read_text().splitlines()
    users = [line.split()[1] for line in lines if line.startswith("USER ")]
    assert users and users[-1] not in ("root", "0")
    copied = set()
    for line in lines:
        if line.startswith("COPY "):
            for src in line.split()[1:-1]:
                assert (ROOT / src).exists(), f"Dockerfile copies {src}, which is not in the repository"
                copied.add(src)
    import tomllib

    packages = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]
    tops = {pattern.rstrip("*") for pattern in packages["include"]}
    assert tops <= copied, f"the image's wheel would lack {sorted(tops - copied)}"


def test_dashboard_is_only_on_loopback_behind_the_proxy() -> None:
    assert SERVICES["dashboard"]["ports"] == ["127.0.0.1:8501:8501"]
    for name in ("influxdb", "postgres"):
        assert "ports" not in SERVICES[name]  # never published


def test_single_sign_on_secrets_come_from_the_environment(tmp_path: Path) -> None:
    """st.login reads a secrets.toml; the dashboard writes it at start from ORCHARD_DASHBOARD__OIDC_*, owner-only."""
    import tomllib

    from dashboard.server import oidc_secrets, streamlit_argv

    assert oidc_secrets(Settings(data_dir=tmp_path)) is None  # off unless configured
    s = Settings(data_dir=tmp_path, notify={"public_url": "https://orchard.example.cn/"},  # type: ignore[arg-type]
                 dashboard={"oidc_metadata_url": "https://sso.example.cn/.well-known/openid-configuration",
                            "oidc_client_id": "orchard", "oidc_client_secret": "c" * 24,
                            "oidc_cookie_secret": "k" * 32})
    path = oidc_secrets(s)
    assert path is not None and path.stat().st_mode & 0o777 == 0o600
    auth = tomllib.loads(path.read_text())["auth"]
    assert auth["redirect_uri"] == "https://orchard.example.cn/oauth2callback" and auth["cookie_secret"] == "k" * 32
    assert auth["county"] == {"client_id": "orchard", "client_secret": "c" * 24,
                              "server_metadata_url": "https://sso.example.cn/.well-known/openid-configuration"}
    argv = streamlit_argv(8501, secrets_file=path)
    assert argv[argv.index("--secrets.files") + 1] == str(path)
