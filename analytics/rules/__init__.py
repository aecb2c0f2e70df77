"""The rule pack: one module per rule; every rule class registers itself by its type."""

from __future__ import annotations

from analytics.rules.base import CameraRule, DeviceRule, LineRule, PlotRule, Rule

RULES: dict[str, type[Rule]] = {}


def register(cls: type[Rule]) -> type[Rule]:
    if cls.type in RULES:
        raise ValueError(f"two rules of type {cls.type}")
    RULES[cls.type] = cls
    return cls


def load() -> dict[str, type[Rule]]:
    """Import every rule module (each registers its rules) and return the registry."""
    from analytics.rules import (  # noqa: F401
        anomaly,
        battery,
        cameras,
        drought,
        grading,
        heat,
        intrusion,
        neighbours,
        offline,
        psa,
        spike,
        spring_frost,
        stuck,
        waterlogging,
        wind,
        winter_freeze,
    )

    return RULES


__all__ = ["RULES", "CameraRule", "DeviceRule", "LineRule", "PlotRule", "Rule", "load", "register"]
