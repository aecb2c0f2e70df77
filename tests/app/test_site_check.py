"""The site file is checked whole when a command loads it, its [rules] included: `orchard check` names a mistake
in the rule settings, and `orchard dashboard` refuses to start on it, before analytics would ever run."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from app.cli import app
from orchard.site import SHIPPED


def site_with(tmp_path: Path, rules: str) -> dict[str, str]:
    folder = tmp_path / "site"
    shutil.copytree(SHIPPED / "sunzigou", folder)
    with (folder / "site.toml").open("a", encoding="utf-8") as f:
        f.write("\n" + rules + "\n")
    return {"ORCHARD_DATA_DIR": str(tmp_path / "data"), "ORCHARD_SITE_FILE": str(folder / "site.toml")}


BAD = [
    ("[rules.spring_frots]\nfrost_c = -2.0", "unknown rules in the site file: spring_frots"),
    ("[rules.spring_frost]\nfrost_c = \"cold\"", "bad settings for rule spring_frost: frost_c"),
    ("[rules.spring_frost]\nfrost_degrees = -2.0", "bad settings for rule spring_frost: frost_degrees"),
    ("[rules.spring_frost]\npredict_from_hour = 25", "predict_from_hour"),
    ("[rules.spring_frost.plots.p99]\nfrost_c = -1.0", "[rules.spring_frost.plots.p99]: no such plot"),
]


@pytest.mark.parametrize(("rules", "says"), BAD, ids=["unknown-rule", "not-a-number", "unknown-setting",
                                                      "out-of-range", "no-such-plot"])
def test_check_names_a_mistake_in_the_rule_settings(tmp_path: Path, rules: str, says: str) -> None:
    result = CliRunner().invoke(app, ["check", "--no-mqtt", "--no-store", "--no-db"], env=site_with(tmp_path, rules))
    assert result.exit_code == 1 and says in result.output, result.output


def test_check_passes_good_rule_settings(tmp_path: Path) -> None:
    env = site_with(tmp_path, "[rules.spring_frost]\nfrost_c = -2.0\n[rules.spring_frost.plots.p05]\nfrost_c = -1.0")
    result = CliRunner().invoke(app, ["check", "--no-mqtt", "--no-store", "--no-db"], env=env)
    assert (result.exit_code, result.output) == (0, "ok\n")


def test_the_dashboard_does_not_start_on_a_bad_site_file(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["dashboard", "--port", "9"], env=site_with(tmp_path, BAD[0][0]))
    assert result.exit_code == 2 and "the site file is wrong" in result.output, result.output
