"""`orchard users add/list`: people and their plots from the command line, with clear refusals."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from app.cli import app
from orchard.records import Records
from orchard.records.people import People


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("ORCHARD_DATA_DIR", str(tmp_path))
    return tmp_path


def test_add_list_and_refuse(env: Path) -> None:
    run = CliRunner().invoke
    ok = run(app, ["users", "add", "wang", "--display", "王建国", "--role", "farmer", "--plots", "p01,p02",
                   "--channels", "dingtalk,inbox", "--phone", "13800000001", "--quiet", "22:00-06:30"])
    assert ok.exit_code == 0, ok.output
    people = People(Records.in_data_dir(env))
    wang = people.get("wang")
    assert wang is not None and (wang.quiet_from, wang.quiet_to, wang.channels) == ("22:00", "06:30",
                                                                                   ("dingtalk", "inbox"))
    assert people.plots_of("wang") == {"p01", "p02"}
    assert "wang" in run(app, ["users", "list"]).output
    bad_plot = run(app, ["users", "add", "li", "--display", "李", "--role", "adviser", "--plots", "p99"])
    assert bad_plot.exit_code == 2 and "p99" in bad_plot.output
    bad_role = run(app, ["users", "add", "x", "--display", "X", "--role", "boss"])
    assert bad_role.exit_code == 2 and "role" in bad_role.output
