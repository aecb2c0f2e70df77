"""Smart streaming on the wall: which cameras play live, table by table (dashboard/cameras.py smart_live)."""

from __future__ import annotations

import pytest

from dashboard.cameras import CameraView, State, smart_live
from orchard.models import CameraStatus
from orchard.site import CameraConfig

NS = 1_000_000_000
NOW = 1_800_000_000 * NS


def view(cam: str, *, kind: str = "rtsp", objects: int = 0, intrusion: str = "", age_s: float = 1,
         state: State = "live") -> CameraView:
    c = CameraConfig(id=cam, plot="p01", kind=kind, url="rtsp://cam/x")  # type: ignore[arg-type]
    s = CameraStatus("sunzigou", "p01", cam, NOW - int(age_s * NS), "ok", NOW - 3600 * NS, 10.0, objects=objects,
                     intrusion=intrusion, snapshot_ns=NOW - int(age_s * NS))
    return CameraView(c, s, state, None, None, s.snapshot_ns)


@pytest.mark.parametrize(("shown", "seen", "expected"), [
    ([view("a"), view("b")], {}, []),  # quiet: snapshots only
    ([view("a", objects=1), view("b")], {}, ["a"]),  # something moves in a: a plays live
    ([view("a", objects=1, kind="snapshot")], {}, []),  # a snapshot camera has no stream to play
    ([view("a", objects=1, state="down")], {}, []),  # nor does a camera that is down
    ([view("a")], {"a": NOW - 20 * NS}, ["a"]),  # quiet now, but moved 20 s ago: still live (hold 30 s)
    ([view("a")], {"a": NOW - 40 * NS}, []),  # quiet for longer than the hold: back to snapshots
    ([view(c, objects=1, age_s=i) for i, c in enumerate("abcdef")], {}, ["a", "b", "c"]),  # the cap, newest first
    ([view("a", objects=1), view("b", objects=1), view("c", objects=1, age_s=5), view("z", intrusion="路")], {},
     ["z", "a", "b"]),  # an intrusion first, whatever its age
])
def test_smart_live(shown: list[CameraView], seen: dict[str, int], expected: list[str]) -> None:
    assert smart_live(shown, dict(seen), NOW, max_live=3, hold_s=30) == expected


def test_the_wall_remembers_motion_across_refreshes() -> None:
    seen: dict[str, int] = {}
    assert smart_live([view("a", objects=2)], seen, NOW, 3, 30) == ["a"]
    assert smart_live([view("a")], seen, NOW + 10 * NS, 3, 30) == ["a"]  # the next refresh: quiet, held
    assert smart_live([view("a")], seen, NOW + 40 * NS, 3, 30) == []
