"""The county file (orchard/county.py): towns and villages, each village's site checked, ids unique across the
county, and the subsets a process may serve."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from orchard.county import CountyError, load_county
from orchard.site import SHIPPED

COUNTY = """
[county]
id = "cangxi"
name = "苍溪县"

[[towns]]
id = "yongning"
name = "永宁镇"
[[towns.villages]]
id = "sunzigou"
[[towns.villages]]
id = "dawan"

[[towns]]
id = "yuanba"
name = "元坝镇"
[[towns.villages]]
id = "shiban"
site_file = "elsewhere/shiban.toml"
"""


def village(root: Path, site_id: str, rel: str | None = None) -> None:
    """A village's site folder: the shipped village's plots and devices under another site id."""
    target = root / (rel or f"{site_id}/site.toml")
    target.parent.mkdir(parents=True, exist_ok=True)
    for f in (SHIPPED / "sunzigou").iterdir():
        if f.name != "site.toml":
            shutil.copy(f, target.parent / f.name)
    text = (SHIPPED / "sunzigou" / "site.toml").read_text()
    target.write_text(re.sub(r'(?m)^id = "sunzigou"$', f'id = "{site_id}"', text, count=1))


@pytest.fixture
def county_file(tmp_path: Path) -> Path:
    village(tmp_path, "sunzigou")
    village(tmp_path, "dawan")
    village(tmp_path, "shiban", "elsewhere/shiban.toml")
    (tmp_path / "county.toml").write_text(COUNTY)
    return tmp_path / "county.toml"


def test_a_county_of_towns_and_villages(county_file: Path) -> None:
    county = load_county(county_file)
    assert county.info.name == "苍溪县" and [t.id for t in county.towns] == ["yongning", "yuanba"]
    assert set(county.sites) == {"sunzigou", "dawan", "shiban"}
    assert {v: s.id for v, s in county.sites.items()} == {"sunzigou": "sunzigou", "dawan": "dawan", "shiban": "shiban"}
    assert county.town_of("shiban").name == "元坝镇"
    assert county.sites["dawan"].plots  # each village's own site, checked as for one village


@pytest.mark.parametrize(("only", "served"), [
    (None, ["sunzigou", "dawan", "shiban"]),
    (["yongning"], ["sunzigou", "dawan"]),  # a whole town: one analytics process per town
    (["shiban"], ["shiban"]),
    (["shiban", "yongning"], ["sunzigou", "dawan", "shiban"]),  # in the county file's order
])
def test_the_villages_a_process_serves(county_file: Path, only: list[str] | None, served: list[str]) -> None:
    assert load_county(county_file).villages(only) == served


def test_an_unknown_town_or_village_is_refused(county_file: Path) -> None:
    with pytest.raises(CountyError, match="not a town or village of cangxi: nowhere"):
        load_county(county_file).villages(["yongning", "nowhere"])


@pytest.mark.parametrize(("change", "says"), [
    (lambda t: t.replace('id = "dawan"', 'id = "sunzigou"'), "village ids listed more than once: sunzigou"),
    (lambda t: t.replace('id = "yuanba"', 'id = "yongning"'), "town ids listed more than once: yongning"),
    (lambda t: t.replace('id = "yuanba"', 'id = "dawan"'), "ids used for a town and a village: dawan"),
    (lambda t: t.replace('site_file = "elsewhere/shiban.toml"', 'site_file = "nowhere.toml"'), "site file missing"),
    (lambda t: t.replace('name = "元坝镇"', 'name = "元坝镇"\nmayor = "x"'), "Extra inputs are not permitted"),
    (lambda t: t + "\n[[towns]]\nid = \"empty\"\nname = \"空\"\nvillages = []\n", "at least 1 item"),
])
def test_a_wrong_county_file_says_what_to_fix(county_file: Path, change: object, says: str) -> None:
    county_file.write_text(change(county_file.read_text()))  # type: ignore[operator]
    with pytest.raises(CountyError, match=re.escape(says)):
        load_county(county_file)


def test_a_site_file_listed_under_another_village_is_refused(county_file: Path) -> None:
    village(county_file.parent, "dawan2", "dawan/site.toml")  # dawan's folder now holds site dawan2
    with pytest.raises(CountyError, match="describes site 'dawan2'"):
        load_county(county_file)


def test_the_check_command_says_what_the_county_holds(county_file: Path) -> None:
    from typer.testing import CliRunner

    from app.cli import app

    result = CliRunner().invoke(app, ["admin", "county", "check", str(county_file), "--only", "yuanba"])
    assert result.exit_code == 0, result.output
    assert "苍溪县 (cangxi): 2 towns, 3 villages" in result.output
    assert "shiban" in result.output and "sunzigou" not in result.output  # only the town asked for
    county_file.write_text(county_file.read_text().replace('id = "dawan"', 'id = "sunzigou"'))
    bad = CliRunner().invoke(app, ["admin", "county", "check", str(county_file)])
    assert bad.exit_code == 2 and "village ids listed more than once: sunzigou" in bad.output
