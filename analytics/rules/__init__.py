"""The rule pack: one module per rule, found by package discovery; every rule class registers itself by its type.
A new rule is one new file here (plus its texts): nothing lists the modules."""

from __future__ import annotations

import copy
import tomllib
from collections.abc import Iterable
from typing import Any

from analytics.rules.base import CameraRule, DeviceRule, LineRule, PlotRule, Rule
from orchard.registry import Registry
from orchard.site import Site

_PACK = Registry[type[Rule]]("rule", __name__)
RULES = _PACK.found  # type -> rule class, filled as the modules are imported


def register(cls: type[Rule]) -> type[Rule]:
    """Class decorator: the rule, under its `type`."""
    return _PACK.add(cls.type)(cls)


def load() -> dict[str, type[Rule]]:
    """Every module of this package imported (each registers its rules with @register), and the registry."""
    return _PACK.load()


__all__ = ["RULES", "CameraRule", "DeviceRule", "LineRule", "PlotRule", "Rule", "load", "register", "with_settings"]


def with_settings(site: Site, sets: Iterable[str]) -> Site:
    """The site with some rule settings changed, each `rule.param=value` (`spring_frost.frost_c=-2`, or
    `spring_frost.plots.p05.frost_c=-1` for one plot) with the value read as TOML (a number, true/false, a quoted
    string; anything else is taken as text). For trying a threshold: `orchard analytics replay --set` and
    `orchard bench season --set`. The engine checks the result as it checks site.toml."""
    rules: dict[str, Any] = copy.deepcopy(site.rules)
    for item in sets:
        key, sep, value = item.partition("=")
        path = key.strip().split(".")
        if not sep or len(path) < 2 or not all(path):
            raise ValueError(f"{item!r}: write rule.param=value, e.g. spring_frost.frost_c=-2")
        try:
            parsed: Any = tomllib.loads(f"v = {value.strip()}")["v"]
        except tomllib.TOMLDecodeError:
            parsed = value.strip()
        node = rules.setdefault(path[0], {})
        for part in path[1:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = parsed
    return site.model_copy(update={"rules": rules})
