"""The rule pack: one module per rule, found by package discovery; every rule class registers itself by its type."""

from __future__ import annotations

import importlib
import pkgutil

from analytics.rules.base import CameraRule, DeviceRule, LineRule, PlotRule, Rule

RULES: dict[str, type[Rule]] = {}


def register(cls: type[Rule]) -> type[Rule]:
    if cls.type in RULES:
        raise ValueError(f"two rules of type {cls.type}")
    RULES[cls.type] = cls
    return cls


def load() -> dict[str, type[Rule]]:
    """Import every module of this package (each registers its rules with @register) and return the registry.
    A new rule is one new file here: nothing lists the modules."""
    for module in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{module.name}")
    return RULES


__all__ = ["RULES", "CameraRule", "DeviceRule", "LineRule", "PlotRule", "Rule", "load", "register"]
