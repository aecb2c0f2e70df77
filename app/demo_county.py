"""A small county made from the shipped village: a county file and, per village, a copy of the shipped site file
under its own id and name, its plots moved a few kilometres apart so the county map shows each village on its own.
For the county's tests and demonstrations; a real county writes its own files (orchard/county.py)."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

from orchard.site import SHIPPED

# A county of three towns and six villages (names from Cangxi county's towns; the villages are made up).
DEMO_TOWNS: dict[str, tuple[str, list[tuple[str, str]]]] = {
    "lingjiang": ("陵江镇", [("sunzigou", "笋子沟村"), ("hexi", "河西村")]),
    "yongning": ("永宁镇", [("qiaoxi", "桥溪村"), ("shiban", "石板村")]),
    "wenchang": ("文昌镇", [("dongxi", "东溪村"), ("yuanba", "元坝村")]),
}


def write_county(folder: Path, towns: Mapping[str, tuple[str, Sequence[tuple[str, str]]]] = DEMO_TOWNS,
                 source: Path = SHIPPED / "sunzigou", spacing_deg: float = 0.03,
                 urls: Mapping[str, str] | None = None) -> Path:
    """county.toml in `folder` with a site folder per village; returns the county file's path."""
    folder.mkdir(parents=True, exist_ok=True)
    site_text = (source / "site.toml").read_text(encoding="utf-8")
    plots = json.loads((source / "plots.geojson").read_text(encoding="utf-8"))
    lines = ['[county]', 'id = "cangxi"', 'name = "苍溪县"', 'name_en = "Cangxi county"', ""]
    n = 0
    for town, (town_name, villages) in towns.items():
        lines += ["[[towns]]", f'id = "{town}"', f'name = "{town_name}"', ""]
        for village, village_name in villages:
            d = folder / village
            d.mkdir(exist_ok=True)
            text = re.sub(r'(?m)^id = "[^"]*"', f'id = "{village}"', site_text, count=1)
            text = re.sub(r'(?m)^name = "[^"]*"', f'name = "{village_name}"', text, count=1)
            text = re.sub(r'(?m)^name_en = "[^"]*"', f'name_en = "{village.title()}"', text, count=1)
            (d / "site.toml").write_text(text, encoding="utf-8")
            dx, dy = (n % 3) * spacing_deg, (n // 3) * spacing_deg
            moved = json.loads(json.dumps(plots))
            for feature in moved["features"]:
                feature["geometry"]["coordinates"] = [[[x + dx, y + dy] for x, y in ring]
                                                      for ring in feature["geometry"]["coordinates"]]
            (d / "plots.geojson").write_text(json.dumps(moved, ensure_ascii=False), encoding="utf-8")
            lines += ["[[towns.villages]]", f'id = "{village}"', f'site_file = "{village}/site.toml"']
            if urls and village in urls:
                lines.append(f'url = "{urls[village]}"')
            lines.append("")
            n += 1
    path = folder / "county.toml"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path
