"""Operator actions on the device registry: approve (replaying held readings), reject, register."""

from __future__ import annotations

import time
from dataclasses import dataclass

from orchard.models import Point
from orchard.records import Records
from orchard.settings import Settings
from orchard.store import TimeSeriesStore
from sensors.payload import Refused, parse_chirpstack, parse_native, route, to_points


@dataclass(frozen=True, slots=True)
class ApprovalResult:
    device: str
    replayed: int  # held messages now in the store
    still_refused: int  # held messages that fail validation even now (they stay in the dead-letter)


def approve(device: str, settings: Settings, records: Records, store: TimeSeriesStore) -> ApprovalResult:
    """Approve a pending device and write the readings it sent while held into the store."""
    if not records.set_device_status(device, "approved"):
        raise KeyError(f"设备 {device} 不在登记表中 / device {device} is not in the registry")
    return replay_held(device, settings, records, store)


def replay_held(device: str, settings: Settings, records: Records, store: TimeSeriesStore) -> ApprovalResult:
    """Write the readings an approved device sent while it was held; ingest also calls this for devices approved
    elsewhere (the dashboard only marks them approved)."""
    held = records.held(device)
    by_eui = records.devices_by_eui()
    tol = settings.ingest.future_tolerance_s * 1_000_000_000
    points: list[Point] = []
    done: list[int] = []
    refused: list[int] = []
    for h in held:
        dl = h.letter
        try:
            r = route(dl.topic, settings.mqtt_prefix)
            if r.kind == "chirpstack":
                dev = by_eui.get(r.device)
                if dev is None:
                    raise Refused(f"unknown_dev_eui: {r.device}")
                telemetry, _ = parse_chirpstack(dl.payload, dev, dl.received_ns, tol)
            else:
                # The future check compares with when it was received, not with now.
                telemetry, _ = parse_native(r, dl.payload, dl.received_ns, tol)
        except Refused:
            refused.append(h.id)
            continue
        if telemetry is None:
            refused.append(h.id)
            continue
        points.extend(to_points(telemetry))
        done.append(h.id)
    if points:
        store.write(points)
    records.mark_replayed(done, time.time_ns())
    records.unhold(refused)  # invalid even now: they stay in the dead-letter, no longer waiting
    return ApprovalResult(device, len(done), len(refused))
