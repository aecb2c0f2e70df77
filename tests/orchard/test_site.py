"""The site configuration: the shipped Sunzigou site, and clear errors for broken files."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from orchard.settings import Settings
from orchard.site import SHIPPED, SiteError, load_site, local_xy, site_for


def test_shipped_site() -> None:
    site = site_for(Settings())
    assert site.id == "sunzigou" and site.name("zh") == "笋子沟村"
    assert len(site.plots) == 12 and len(site.devices) == 24
    assert {p.variety for p in site.plots} == {"hongyang", "hayward"}
    assert all(p.owner and p.area_mu > 0 and len(p.polygon) >= 4 for p in site.plots)
    assert str(site.tz) == "Asia/Shanghai"
    xy = local_xy(site)
    xs = [x for pts in xy.values() for x, _ in pts]
    assert min(xs) == pytest.approx(0) and 300 < max(xs) < 2000  # metres across a village hillside


def copy_site(tmp_path: Path) -> Path:
    shutil.copytree(SHIPPED / "sunzigou", tmp_path / "site")
    return tmp_path / "site"


@pytest.mark.parametrize(("edit", "message"), [
    (lambda f: f["features"][0]["properties"].update(variety="golden"), "unknown variety"),
    (lambda f: f["features"][1]["properties"].update(id="p01"), "plot ids must be unique"),
    (lambda f: f["features"][0]["properties"].update(wilting_point_pct=50), "wilting_point_pct"),
    (lambda f: f["features"][0]["properties"].update(colour="red"), "colour"),
    (lambda f: f["features"][0].update(geometry={"type": "Point", "coordinates": [1, 2]}), "Polygon"),
])
def test_bad_plots_file(tmp_path: Path, edit: object, message: str) -> None:
    d = copy_site(tmp_path)
    data = json.loads((d / "plots.geojson").read_text())
    edit(data)  # type: ignore[operator]
    (d / "plots.geojson").write_text(json.dumps(data))
    with pytest.raises(SiteError, match=message):
        load_site(d / "site.toml")


def test_device_on_unknown_plot_and_site_mismatch(tmp_path: Path) -> None:
    d = copy_site(tmp_path)
    toml = (d / "site.toml").read_text()
    (d / "site.toml").write_text(toml + '\n[[devices]]\nid = "x"\nplot = "p99"\nkind = "soil_probe"\n')
    with pytest.raises(SiteError, match="p99"):
        load_site(d / "site.toml")
    (d / "site.toml").write_text(toml)
    with pytest.raises(SiteError, match="ORCHARD_SITE"):
        site_for(Settings(site="other", site_file=d / "site.toml"))
    with pytest.raises(SiteError, match="missing"):
        site_for(Settings(site="nowhere"))
