"""Lots on the grading line in the records DB (SQLite and PostgreSQL): one open per line, totals, the report,
the per-plot quality by season."""

from __future__ import annotations

import csv
import io
from datetime import datetime

import pytest

from orchard.records import Records
from orchard.records.lots import LotError, Lots, Tally, report_csv
from orchard.site import SHIPPED, load_site

SITE = load_site(SHIPPED / "sunzigou" / "site.toml")
NS = 1_000_000_000


def at(year: int, month: int, day: int, hour: int = 9) -> int:
    return int(datetime(year, month, day, hour, tzinfo=SITE.tz).timestamp()) * NS


def tally(*fruit: tuple[str, int | None, float, tuple[str, ...]]) -> Tally:
    t = Tally()
    for i, (grade, size, weight, reasons) in enumerate(fruit):
        t.add(grade, size, weight, reasons, at(2026, 10, 1) + i)
    return t


def test_one_open_lot_per_line(records: Records) -> None:
    lots = Lots(records, SITE)
    lot = lots.start("line-1", "p01", "tester", now_ns=at(2026, 10, 1))
    assert lot.open and lot.grower == "王建国" and lot.variety == "hongyang" and lot.season == 2026
    with pytest.raises(LotError, match="请先结束"):
        lots.start("line-1", "p02", "tester")
    assert lots.current("line-1") == lot
    ended = lots.end(lot.id, "tester", at(2026, 10, 1, 11))
    assert not ended.open and ended.ended_by == "tester" and lots.current("line-1") is None
    with pytest.raises(LotError, match="已经结束"):
        lots.end(lot.id, "tester")
    second = lots.start("line-1", "p02", "tester", grower="  李四 ", note="12 筐")
    assert second.grower == "李四" and second.note == "12 筐" and second.id != lot.id


@pytest.mark.parametrize(("line", "plot", "error"), [
    ("line-9", "p01", KeyError),  # no such line
    ("line-1", "p99", LotError),  # no such plot
])
def test_start_refuses_unknown_line_or_plot(records: Records, line: str, plot: str, error: type[Exception]) -> None:
    with pytest.raises(error):
        Lots(records, SITE).start(line, plot, "tester")


def test_totals_report_and_packout(records: Records) -> None:
    lots = Lots(records, SITE)
    lot = lots.start("line-1", "p03", "tester", now_ns=at(2026, 10, 2))
    lots.add(lot.id, tally(("extra", 36, 100.0, ()), ("extra", 36, 104.0, ()), ("class1", 42, 86.0, ("weight",)),
                           ("reject", 46, 80.0, ("rot",))))
    lots.add(lot.id, tally(("class2", None, 66.0, ("weight", "misshapen")), ("reject", None, 60.0, ("underweight",)),
                           ("reject", 39, 95.0, ("rot",))))
    got = lots.get(lot.id)
    assert got.fruit == 7 and got.weight_g == pytest.approx(591.0)
    assert got.by_grade() == {"extra": 2, "class1": 1, "class2": 1, "reject": 3}
    assert got.by_size() == {"36": 2, "42": 1, "-": 1}  # packed fruit only, biggest first
    assert got.reasons == {"rot": 2, "underweight": 1}  # reasons of rejects only
    assert got.packout_pct == pytest.approx(100 * (591 - 235) / 591)
    assert got.mean_weight_g == pytest.approx(591 / 7)

    rows = list(csv.reader(io.StringIO(report_csv(got, SITE, "zh").lstrip("\ufeff"))))
    facts = {r[0]: r[1] for r in rows if len(r) == 2}
    assert facts["果农"] == "张明华" and facts["果数"] == "7" and facts["商品果率（%）"] == f"{got.packout_pct:.1f}"
    head = next(r for r in rows if r and r[0] == "等级")
    body = {r[0]: r for r in rows[rows.index(head) + 1:rows.index(head) + 5]}
    assert sum(int(body[g][-2]) for g in ("特级", "一级", "二级", "次果")) == got.fruit
    assert body["次果"][head.index("规格 46")] == "1"
    assert facts["腐烂"] == "2"


def test_quality_by_plot_and_season(records: Records) -> None:
    lots = Lots(records, SITE)
    for year, plot, grades in ((2025, "p01", ("extra", "reject")), (2026, "p01", ("extra", "extra")),
                               (2026, "p02", ("class1", "reject"))):
        lot = lots.start("line-1", plot, "tester", now_ns=at(year, 10, 3))
        lots.add(lot.id, tally(*[(g, 36, 100.0, ("rot",) if g == "reject" else ()) for g in grades]))
        lots.end(lot.id, "tester", at(year, 10, 3, 12))
    got = {(q.plot, q.season): q for q in lots.seasons()}
    assert set(got) == {("p01", 2025), ("p01", 2026), ("p02", 2026)}
    assert got[("p01", 2025)].packout_pct == pytest.approx(50) and got[("p01", 2026)].packout_pct == 100
    assert got[("p01", 2026)].share_pct["extra"] == 100 and got[("p02", 2026)].lots == 1
    assert [q.plot for q in lots.seasons(["p02"])] == ["p02"]
    assert [x.plot for x in lots.history(["p01"])] == ["p01", "p01"]
