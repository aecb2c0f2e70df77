"""Snapshot files: layout, nearest in time, and retention by age and size that never deletes alarm evidence."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchard.records.snapshots import Retention, SnapshotFiles

NS = 1_000_000_000
T0 = 1_772_400_000 * NS  # 2026-03-01T21:20:00Z
KB = 1024


def fill(files: SnapshotFiles, camera: str, count: int, every_s: float, size: int = 10 * KB) -> list[str]:
    return [files.write(camera, T0 + int(i * every_s * NS), b"\xff\xd8" + b"x" * size, b"\xff\xd8" + b"t" * 100).path
            for i in range(count)]


def test_layout_and_lookups(tmp_path: Path) -> None:
    files = SnapshotFiles(tmp_path)
    paths = fill(files, "cam-1", 6, 3600)  # across midnight UTC
    fill(files, "cam-2", 3, 7000)
    assert paths[0] == f"cam-1/2026-03-01/{T0 // 1_000_000}.jpg"
    assert {p.split("/")[1] for p in paths} == {"2026-03-01", "2026-03-02"}
    assert files.cameras() == ["cam-1", "cam-2"]
    assert len(files.between("cam-1", T0, T0 + 6 * 3600 * NS)) == 6
    assert [r.path for r in files.between("cam-1", T0 + 1, T0 + 2 * 3600 * NS + 1)] == paths[1:3]
    near = files.nearest(["cam-1", "cam-2"], T0 + 7010 * NS)
    assert near is not None and (near.camera, near.time_ns) == ("cam-2", T0 + 7000 * NS)
    assert files.nearest(["cam-1"], T0 + 30 * 86400 * NS) is None  # nothing within ten minutes
    last = files.latest("cam-1")
    assert last is not None and last.path == paths[-1]
    before = files.latest("cam-1", before_ns=T0 + 90 * 60 * NS)
    assert before is not None and before.path == paths[1]
    assert files.read(paths[0]) is not None and files.read(near.thumb) is not None


@pytest.mark.parametrize("rel", ["../outside.jpg", "/etc/passwd", "cam-1/../../x.jpg"])
def test_paths_cannot_leave_the_folder(tmp_path: Path, rel: str) -> None:
    files = SnapshotFiles(tmp_path / "snaps")
    assert files.read(rel) is None
    with pytest.raises(ValueError):
        files.resolve(rel)


def test_size_cap_deletes_oldest_first_but_never_evidence(tmp_path: Path) -> None:
    files = SnapshotFiles(tmp_path)
    paths = fill(files, "cam-1", 40, 60)
    each = 10 * KB + 2 + 102
    evidence = {paths[0], paths[5], paths[6]}
    keep = Retention(files, max_days=30, max_bytes=20 * each, evidence_days=365)
    assert keep.total == 40 * each
    done = keep.sweep(T0 + 3600 * NS, evidence)
    left = {r.path for r in files.between("cam-1", 0, T0 + 86400 * NS)}
    assert evidence <= left  # kept although they are the oldest
    assert done.deleted == 20 and done.kept_evidence == 3
    assert left == evidence | set(paths[23:])  # the newest 17 plus the three held ones
    assert keep.total == 20 * each and sum(f.stat().st_size for f in tmp_path.rglob("*.jpg")) == 20 * each
    # later snapshots push out more of the unheld ones, still never the evidence
    new = [files.write("cam-1", T0 + (3000 + i) * NS, b"\xff\xd8" + b"x" * 10 * KB, b"\xff\xd8" + b"t" * 100)
           for i in range(5)]
    for ref in new:
        keep.added(ref, each)
    keep.sweep(T0 + 3600 * NS, evidence)
    left = {r.path for r in files.between("cam-1", 0, T0 + 86400 * NS)}
    assert evidence <= left and len(left) == 20 and {r.path for r in new} <= left


def test_age_cap_and_evidence_age(tmp_path: Path) -> None:
    files = SnapshotFiles(tmp_path)
    paths = fill(files, "cam-1", 10, 86400)  # one a day
    keep = Retention(files, max_days=3, max_bytes=10**12, evidence_days=7)
    now = T0 + 10 * 86400 * NS
    keep.sweep(now, {paths[1], paths[5]})
    left = [r.path for r in files.between("cam-1", 0, now)]
    # older than 3 days goes; held evidence stays until it is 7 days old (paths[1] is 9 days old)
    assert left == [paths[5], *paths[7:]]
    assert not (tmp_path / paths[0]).parent.exists()  # emptied date folders go too


def test_inventory_is_rebuilt_from_disk(tmp_path: Path) -> None:
    files = SnapshotFiles(tmp_path)
    fill(files, "cam-1", 5, 60)
    fill(files, "cam-2", 5, 60)
    (tmp_path / "cam-1" / "notes.txt").write_text("not a snapshot")
    again = Retention(SnapshotFiles(tmp_path), 30, 10**9, 365)
    assert again.total == 10 * (10 * KB + 2 + 102)
