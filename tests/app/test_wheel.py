"""The wheel a user gets from `pip install .`, installed into a fresh virtual environment outside the checkout:
every service's command starts, every service's entry module imports, and the files read at run time (site,
texts, migrations, the broker's ACL template) are inside it. A package or data file missing from the wheel
fails here, not on a village server."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
COMMANDS = ["ingest", "analytics", "cameras", "grading", "dashboard", "simulate", "demo", "check", "admin",
            "bench", "broker"]
ENTRY_MODULES = ["sensors.service", "sensors.worker", "analytics.service", "analytics.notify.dispatch",
                 "video.service", "video.grading.service", "dashboard.server", "app.demo", "app.admin",
                 "app.embedded_broker", "bench.servers", "bench.ingest", "bench.alarms"]
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel built from this checkout and installed (with its dependencies, from pip's cache) into a new venv."""
    work = tmp_path_factory.mktemp("wheel")
    # Built from a copy of the checkout: setuptools writes build/ into the source tree, and two test workers
    # building in the same tree at once would trip over each other's files.
    source = work / "source"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(
        ".git", ".venv", "build", "*.egg-info", "__pycache__", ".*_cache", ".hypothesis", "test-artifacts",
        "orchard-data"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w",
                    str(work / "dist"), str(source)], check=True, cwd=work)
    wheel = next((work / "dist").glob("smart_orchard-*.whl"))
    venv.create(work / "venv", with_pip=True)
    py = work / "venv" / "bin" / "python"
    # --no-compile: byte-compiling every dependency (streamlit, pandas, opencv...) is much of an install's time,
    # and the services compile what they import on their first start anyway.
    subprocess.run([py, "-m", "pip", "install", "-q", "--no-compile", "--disable-pip-version-check", str(wheel)],
                   check=True, cwd=work)
    return py


def _run(py: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ORCHARD_", "PYTHON"))}
    env["ORCHARD_DATA_DIR"] = str(cwd / "data")
    return subprocess.run([str(py), *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=120)


def test_the_wheel_holds_every_package_of_the_checkout(installed: Path) -> None:
    site = Path(_run(installed, "-c", "import orchard, pathlib; print(pathlib.Path(orchard.__file__).parents[1])",
                     cwd=installed.parents[2]).stdout.strip())
    assert site.is_relative_to(installed.parents[1]), "orchard was imported from the checkout, not the venv"
    for top in ("orchard", "sensors", "video", "analytics", "dashboard", "app", "bench"):
        for init in (ROOT / top).rglob("__init__.py"):
            rel = init.relative_to(ROOT)
            assert (site / rel).is_file(), f"{rel.parent} is not in the wheel"


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_starts_from_the_wheel(installed: Path, command: str) -> None:
    done = _run(installed.parent / "orchard", command, "--help", cwd=installed.parents[2])
    assert done.returncode == 0, done.stderr
    assert "Usage" in done.stdout


def test_every_entry_module_imports_from_the_wheel(installed: Path) -> None:
    code = "import importlib, sys\nfor m in sys.argv[1:]:\n    importlib.import_module(m)\nprint('ok')"
    done = _run(installed, "-c", code, *ENTRY_MODULES, cwd=installed.parents[2])
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr


def test_run_time_files_ship_in_the_wheel(installed: Path) -> None:
    """The records DB migrates, the site and both languages load, and `orchard admin mqtt-auth` writes the ACL
    from its template: all from the installed wheel, with no source tree in reach."""
    cwd = installed.parents[2]
    done = _run(installed.parent / "orchard", "admin", "mqtt-auth", "--out", str(cwd / "auth"), cwd=cwd)
    assert done.returncode == 0, done.stderr
    acl = (cwd / "auth" / "acl").read_text()
    assert "user ingest\ntopic read orchard/+/+/+/telemetry" in acl
    code = ("from orchard.settings import Settings; from orchard.site import site_for; from orchard.i18n import t\n"
            "s = Settings(); print(len(site_for(s).plots), t('app.title', 'zh'), t('app.title', 'en'))")
    done = _run(installed, "-c", code, cwd=cwd)
    assert done.returncode == 0, done.stderr
    plots, zh, en = done.stdout.split(maxsplit=2)
    assert (int(plots), zh, en.strip()) == (12, "智慧果园指挥中心", "Smart-orchard command center")
