"""The rule pack: one module per rule, found by package discovery; every rule class registers itself by its type.
A new rule is one new file here (plus its texts): nothing lists the modules."""

from __future__ import annotations

from analytics.rules.base import CameraRule, DeviceRule, LineRule, PlotRule, Rule
from orchard.registry import Registry

_PACK = Registry[type[Rule]]("rule", __name__)
RULES = _PACK.found  # type -> rule class, filled as the modules are imported


def register(cls: type[Rule]) -> type[Rule]:
    """Class decorator: the rule, under its `type`."""
    return _PACK.add(cls.type)(cls)


def load() -> dict[str, type[Rule]]:
    """Every module of this package imported (each registers its rules with @register), and the registry."""
    return _PACK.load()


__all__ = ["RULES", "CameraRule", "DeviceRule", "LineRule", "PlotRule", "Rule", "load", "register"]
