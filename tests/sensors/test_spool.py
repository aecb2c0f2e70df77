from __future__ import annotations

from pathlib import Path

from orchard.models import Point
from sensors.spool import Spool


def test_batches_come_back_in_order_and_survive_a_restart(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    a = [Point("telemetry", {"device": "d"}, {"air_temp_c": 1.5, "seq": 3}, 10)]
    b = [Point("telemetry", {"device": "e"}, {"rh_pct": 80.0}, 20)]
    spool.append(a)
    spool.append(b)
    (tmp_path / "000000000099.tmp").write_bytes(b"half a batch")  # cut off mid-write: never acked
    again = Spool(tmp_path)
    assert len(again) == 2
    files = again.files()
    assert [again.read(f) for f in files] == [a, b]
    again.remove(files[0])
    assert len(again) == 1 and not list(tmp_path.glob("*.tmp"))
    assert again.append(a).name == "000000000003.jsonl"
