"""The county file: the county's towns and their villages ("1+31+N"), each village a site as today.

    [county]
    id = "cangxi"
    name = "苍溪县"

    [[towns]]
    id = "yongning"
    name = "永宁镇"

    [[towns.villages]]
    id = "sunzigou"                 # the village's site id: the `site` tag, and its site file's [site] id
    site_file = "sunzigou/site.toml"  # relative to the county file (default: <id>/site.toml)

A village's site file is read and checked as for a one-village deployment (orchard/site.py); the county file
checks what only it can see: town and village ids unique across the county, each site file's own id the one it
is listed under. `County.villages(only)` is the subset a process serves ("yongning" a whole town, "sunzigou" one
village), so a county can run one analytics process per town.
"""

from __future__ import annotations

import tomllib
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

from pydantic import Field, ValidationError, model_validator

from orchard.settings import Section, Settings
from orchard.site import Site, SiteError, load_site

_ID = r"^[\w.:-]{1,64}$"


class CountyError(Exception):
    """The county file cannot be used; the message says which file and what to fix."""


class CountyInfo(Section):
    """The county itself."""

    id: str = Field(pattern=_ID, description="County id (the `county` of its records and reports).")
    name: str = Field(description="Name shown to people (Chinese), e.g. 苍溪县.")
    name_en: str = Field("", description="English name; the id when empty.")


class VillageEntry(Section):
    """One village of a town: its site id and where its site file is."""

    id: str = Field(pattern=_ID, description="The village's site id: its [site] id and the `site` tag.")
    site_file: str = Field("", description="Its site.toml, relative to the county file; default <id>/site.toml.")
    url: str = Field("", description="Its command center's address (the dashboard serving it), where the county "
                     "view's click-through goes; empty: none shown.")


class TownEntry(Section):
    """A town (镇/乡) and its villages."""

    id: str = Field(pattern=_ID, description="Town id.")
    name: str = Field(description="Name shown to people (Chinese), e.g. 永宁镇.")
    name_en: str = Field("", description="English name; the id when empty.")
    villages: tuple[VillageEntry, ...] = Field(min_length=1, description="Its villages ([[towns.villages]]).")


class CountyFile(Section):
    """county.toml as written."""

    county: CountyInfo
    towns: tuple[TownEntry, ...] = Field(min_length=1, description="The county's towns ([[towns]]).")

    @model_validator(mode="after")
    def _unique(self) -> CountyFile:
        towns = [t.id for t in self.towns]
        villages = [v.id for t in self.towns for v in t.villages]
        for kind, ids in (("town", towns), ("village", villages)):
            twice = sorted({i for i in ids if ids.count(i) > 1})
            if twice:
                raise ValueError(f"{kind} ids listed more than once: {', '.join(twice)}")
        clash = sorted(set(towns) & set(villages))
        if clash:  # a selection names either: it must not be ambiguous
            raise ValueError(f"ids used for a town and a village: {', '.join(clash)}")
        return self


@dataclass(frozen=True, slots=True)
class County:
    """A loaded county: its towns in order and every village's checked site."""

    info: CountyInfo
    towns: tuple[TownEntry, ...]
    sites: dict[str, Site]  # village id -> its site

    @property
    def village_ids(self) -> list[str]:
        return [v.id for t in self.towns for v in t.villages]

    def town(self, town_id: str) -> TownEntry | None:
        return next((t for t in self.towns if t.id == town_id), None)

    def entry(self, village: str) -> VillageEntry:
        return next(v for t in self.towns for v in t.villages if v.id == village)

    def outline(self, village: str) -> list[tuple[float, float]]:
        """The village drawn offline: the convex hull of its plots' outlines (lon, lat), closed."""
        return convex_hull([pt for p in self.sites[village].plots for pt in p.polygon])

    def town_of(self, village: str) -> TownEntry:
        return next(t for t in self.towns if any(v.id == village for v in t.villages))

    def villages(self, only: Collection[str] | None = None) -> list[str]:
        """The village ids to serve, in the county file's order: all, or those of the towns and villages named."""
        every = [v.id for t in self.towns for v in t.villages]
        if not only:
            return every
        towns = {t.id: [v.id for v in t.villages] for t in self.towns}
        unknown = sorted(set(only) - set(towns) - set(every))
        if unknown:
            raise CountyError(f"县文件中没有这些乡镇或村 / not a town or village of {self.info.id}: "
                              f"{', '.join(unknown)}")
        chosen = {v for name in only for v in towns.get(name, [name])}
        return [v for v in every if v in chosen]


def convex_hull(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Andrew's monotone chain; the ring closed (first point repeated), counter-clockwise."""
    pts = sorted(set(points))
    if len(pts) < 3:
        return [*pts, *pts[:1]]

    def turn(o: tuple[float, float], a: tuple[float, float], b: tuple[float, float]) -> float:
        return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])

    lower: list[tuple[float, float]] = []
    upper: list[tuple[float, float]] = []
    for p in pts:
        while len(lower) >= 2 and turn(lower[-2], lower[-1], p) <= 0:
            lower.pop()
        lower.append(p)
    for p in reversed(pts):
        while len(upper) >= 2 and turn(upper[-2], upper[-1], p) <= 0:
            upper.pop()
        upper.append(p)
    ring = lower[:-1] + upper[:-1]
    return [*ring, ring[0]]


def load_county(path: Path) -> County:
    """Read a county file and every village's site file; CountyError (or the village's SiteError, prefixed with
    the village) names the file and the problem."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
        spec = CountyFile(**raw)
    except FileNotFoundError:
        raise CountyError(f"县配置文件不存在 / county file missing: {path}") from None
    except tomllib.TOMLDecodeError as e:
        raise CountyError(f"县配置文件格式错误 / {path} is not valid TOML: {e}") from None
    except ValidationError as e:
        detail = "; ".join(f"{'.'.join(str(x) for x in err['loc'])}: {err['msg']}" for err in e.errors())
        raise CountyError(f"县配置文件有误 / {path}: {detail}") from None
    sites: dict[str, Site] = {}
    for town in spec.towns:
        for v in town.villages:
            site_path = (path.parent / (v.site_file or f"{v.id}/site.toml")).resolve()
            try:
                site = load_site(site_path)
            except SiteError as e:
                raise CountyError(f"{town.name} {v.id}: {e}") from None
            if site.id != v.id:
                raise CountyError(f"村编号不一致 / {site_path} describes site {site.id!r}, but {path} lists it as "
                                  f"{v.id!r} under {town.id}")
            sites[v.id] = site
    return County(spec.county, spec.towns, sites)


def one_village(site: Site) -> County:
    """The county of a one-village deployment (no ORCHARD_COUNTY_FILE): one town holding the site's village, so
    the county's tools (notices, their read matrix) work the same there."""
    info = site.site
    town = TownEntry(id=f"{site.id}-town", name=info.name, name_en=info.name_en,
                     villages=(VillageEntry(id=site.id, site_file=""),))
    return County(CountyInfo(id=site.id, name=info.name, name_en=info.name_en), (town,), {site.id: site})


def county_for(settings: Settings, site: Site) -> County:
    """The deployment's county: ORCHARD_COUNTY_FILE (which must list this site), or the site as a county of one."""
    if settings.county_file is None:
        return one_village(site)
    county = load_county(settings.county_file)
    if site.id not in county.sites:
        raise CountyError(f"县文件中没有本村 / {settings.county_file} does not list ORCHARD_SITE {site.id!r}")
    return county
