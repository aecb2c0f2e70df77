"""Lots on the grading line: a grower's fruit from one plot, started and ended by a person (dashboard or CLI),
with running totals the grading service adds to as fruit is graded.

One lot is open per line at a time (the database enforces it), so every fruit on the belt belongs to exactly one
grower. The report (count by class and size, mean weight, reject reasons, pack-out) and the per-plot quality
history across seasons are read from these totals; each fruit is also a point in the time-series store.
"""

from __future__ import annotations

import csv
import io
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import Connection, insert, select, update
from sqlalchemy.exc import IntegrityError

from orchard import i18n
from orchard.models import GRADES
from orchard.records import Records
from orchard.records.schema import lots as L
from orchard.site import Site

NS = 1_000_000_000
NO_SIZE = "-"  # the count-size key of fruit too small for any size


class LotError(ValueError):
    """A lot cannot be started or ended; the message says why and what to do, in Chinese and English."""


@dataclass
class Tally:
    """Fruit graded since the last flush, to be added to a lot's totals in one transaction."""

    fruit: int = 0
    weight_g: float = 0.0
    counts: Counter[str] = field(default_factory=Counter)  # "<grade>:<size>"
    grade_weight: dict[str, float] = field(default_factory=dict)
    reasons: Counter[str] = field(default_factory=Counter)
    last_ns: int | None = None

    def add(self, grade: str, count_size: int | None, weight_g: float, reasons: tuple[str, ...], time_ns: int
            ) -> None:
        self.fruit += 1
        self.weight_g += weight_g
        self.counts[f"{grade}:{count_size if count_size is not None else NO_SIZE}"] += 1
        self.grade_weight[grade] = self.grade_weight.get(grade, 0.0) + weight_g
        if grade == "reject":
            self.reasons.update(reasons)
        self.last_ns = max(self.last_ns or 0, time_ns)


@dataclass(frozen=True, slots=True)
class Lot:
    id: int
    site: str
    line: str
    plot: str
    grower: str
    variety: str
    note: str
    season: int
    started_ns: int
    started_by: str
    ended_ns: int | None
    ended_by: str | None
    fruit: int
    weight_g: float
    counts: Mapping[str, int]
    grade_weight: Mapping[str, float]
    reasons: Mapping[str, int]
    last_fruit_ns: int | None

    @property
    def open(self) -> bool:
        return self.ended_ns is None

    def by_grade(self) -> dict[str, int]:
        out = dict.fromkeys(GRADES, 0)
        for key, n in self.counts.items():
            grade = key.split(":")[0]
            out[grade] = out.get(grade, 0) + n
        return out

    def sizes(self) -> list[str]:
        """The count sizes graded in this lot, biggest fruit (smallest count) first, too small (NO_SIZE) last."""
        return sorted({k.split(":")[1] for k in self.counts}, key=lambda s: int(s) if s.isdigit() else 10**6)

    def by_size(self) -> dict[str, int]:
        """Packed fruit (not rejects) per count size, in the order of `sizes`."""
        packed = {s: sum(n for k, n in self.counts.items() if k.endswith(f":{s}") and not k.startswith("reject:"))
                  for s in self.sizes()}
        return {s: n for s, n in packed.items() if n}

    @property
    def mean_weight_g(self) -> float:
        return self.weight_g / self.fruit if self.fruit else 0.0

    @property
    def packout_pct(self) -> float:
        """Share of the lot's weight that goes into trays (every class but reject)."""
        if not self.weight_g:
            return 0.0
        return 100 * (self.weight_g - self.grade_weight.get("reject", 0.0)) / self.weight_g

    def share_pct(self, grade: str) -> float:
        return 100 * self.by_grade().get(grade, 0) / self.fruit if self.fruit else 0.0


def _lot(r: Any) -> Lot:
    return Lot(r.id, r.site, r.line, r.plot, r.grower, r.variety, r.note, r.season, r.started_ns, r.started_by,
               r.ended_ns, r.ended_by, r.fruit, r.weight_g, orjson.loads(r.counts), orjson.loads(r.grade_weight),
               orjson.loads(r.reasons), r.last_fruit_ns)


class Lots:
    def __init__(self, records: Records, site: Site) -> None:
        self.engine, self.site = records.engine, site

    def start(self, line: str, plot: str, by: str, grower: str = "", note: str = "",
              now_ns: int | None = None) -> Lot:
        """Open a lot on the line; the grower defaults to the plot's owner. Refused while another is open."""
        now_ns = now_ns if now_ns is not None else time.time_ns()
        self.site.line(line)  # KeyError names the known lines
        p = self.site.plot_by_id.get(plot)
        if p is None:
            raise LotError(f"没有地块 {plot} / no plot {plot!r} in this site")
        if (current := self.current(line)) is not None:
            raise LotError(f"分选线 {line} 上还有进行中的批次 #{current.id}（{current.grower}）：请先结束它 / lot "
                           f"#{current.id} is still open on line {line}: end it first")
        season = datetime.fromtimestamp(now_ns / NS, self.site.tz).year
        try:
            with self.engine.begin() as conn:
                lot_id = conn.execute(insert(L).values(
                    site=self.site.id, line=line, plot=plot, grower=(grower.strip() or p.owner)[:80],
                    variety=p.variety, note=note.strip()[:500], season=season, started_ns=now_ns, started_by=by,
                ).returning(L.c.id)).scalar_one()
        except IntegrityError:  # someone else opened one between our check and the insert
            raise LotError(f"分选线 {line} 上刚刚开了另一个批次，请刷新 / another lot was just opened on line "
                           f"{line}: reload") from None
        return self.get(lot_id)

    def end(self, lot_id: int, by: str, now_ns: int | None = None) -> Lot:
        now_ns = now_ns if now_ns is not None else time.time_ns()
        with self.engine.begin() as conn:
            done = conn.execute(update(L).where(L.c.id == lot_id, L.c.site == self.site.id, L.c.ended_ns.is_(None))
                                .values(ended_ns=now_ns, ended_by=by)).rowcount
        if not done:
            lot = self.find(lot_id)
            raise LotError(f"批次 #{lot_id} 不存在 / no lot #{lot_id}" if lot is None else
                           f"批次 #{lot_id} 已经结束 / lot #{lot_id} has already ended")
        return self.get(lot_id)

    def add(self, lot_id: int, tally: Tally) -> None:
        """Add graded fruit to a lot's totals (also after it ended: the fruit still on the belt were its own)."""
        if not tally.fruit:
            return
        with self.engine.begin() as conn:
            row = conn.execute(select(L).where(L.c.id == lot_id).with_for_update()).first()
            if row is None:
                return
            self._merge(conn, row, tally)

    @staticmethod
    def _merge(conn: Connection, row: Any, t: Tally) -> None:
        def plus(old: str, new: Mapping[str, float]) -> str:
            merged = Counter(orjson.loads(old))
            merged.update(new)
            return orjson.dumps({k: round(v, 1) if isinstance(v, float) else v for k, v in merged.items()}).decode()

        conn.execute(update(L).where(L.c.id == row.id).values(
            fruit=row.fruit + t.fruit, weight_g=row.weight_g + t.weight_g, counts=plus(row.counts, t.counts),
            grade_weight=plus(row.grade_weight, t.grade_weight), reasons=plus(row.reasons, t.reasons),
            last_fruit_ns=max(row.last_fruit_ns or 0, t.last_ns or 0) or None))

    # -- reading ------------------------------------------------------------------------------------------------
    def find(self, lot_id: int) -> Lot | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(L).where(L.c.id == lot_id, L.c.site == self.site.id)).first()
        return _lot(row) if row else None

    def get(self, lot_id: int) -> Lot:
        if (lot := self.find(lot_id)) is None:
            raise LotError(f"批次 #{lot_id} 不存在 / no lot #{lot_id}")
        return lot

    def current(self, line: str) -> Lot | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(L).where(L.c.site == self.site.id, L.c.line == line,
                                               L.c.ended_ns.is_(None))).first()
        return _lot(row) if row else None

    def history(self, plots: list[str] | None = None, line: str | None = None, limit: int = 200) -> list[Lot]:
        """Newest first; only these plots' lots when `plots` is given."""
        q = select(L).where(L.c.site == self.site.id)
        if plots is not None:
            q = q.where(L.c.plot.in_(plots))
        if line is not None:
            q = q.where(L.c.line == line)
        with self.engine.connect() as conn:
            return [_lot(r) for r in conn.execute(q.order_by(L.c.started_ns.desc()).limit(limit))]

    def seasons(self, plots: list[str] | None = None) -> list[SeasonQuality]:
        """Quality per plot and season over all their lots, oldest season first."""
        q = select(L).where(L.c.site == self.site.id)
        if plots is not None:
            q = q.where(L.c.plot.in_(plots))
        acc: dict[tuple[str, int], list[Lot]] = {}
        with self.engine.connect() as conn:
            for r in conn.execute(q):
                lot = _lot(r)
                acc.setdefault((lot.plot, lot.season), []).append(lot)
        out = []
        for (plot, season), lots in sorted(acc.items(), key=lambda kv: (kv[0][1], kv[0][0])):
            fruit = sum(x.fruit for x in lots)
            weight = sum(x.weight_g for x in lots)
            grades = Counter[str]()
            rejected_g = 0.0
            for x in lots:
                grades.update(x.by_grade())
                rejected_g += x.grade_weight.get("reject", 0.0)
            out.append(SeasonQuality(plot, season, len(lots), fruit, weight / 1000,
                                     weight / fruit if fruit else 0.0,
                                     100 * (weight - rejected_g) / weight if weight else 0.0,
                                     {g: 100 * grades[g] / fruit if fruit else 0.0 for g in GRADES}))
        return out


@dataclass(frozen=True, slots=True)
class SeasonQuality:
    plot: str
    season: int
    lots: int
    fruit: int
    weight_kg: float
    mean_weight_g: float
    packout_pct: float
    share_pct: Mapping[str, float]  # grade -> % of fruit


def report_csv(lot: Lot, site: Site, lang: str = "zh") -> str:
    """The lot report as CSV (UTF-8 with BOM, so Excel in Chinese opens it right) in the reader's language: the
    lot, the totals, class by count size, and the reject reasons."""
    labels = i18n.section("lot", lang)
    line = next((x.label() for x in site.lines if x.id == lot.line), lot.line)
    buf = io.StringIO()
    buf.write("\ufeff")
    w = csv.writer(buf)
    tz = site.tz

    def when(ns: int | None) -> str:
        return datetime.fromtimestamp(ns / NS, tz).strftime("%Y-%m-%d %H:%M") if ns else ""

    t = labels.get
    w.writerow([t("lot", "lot"), lot.id])
    for key, value in (("grower", lot.grower), ("plot", f"{site.plot_label(lot.plot, lang)} ({lot.plot})"),
                       ("variety", i18n.t(f"variety.{lot.variety}", lang)), ("line", line),
                       ("started", when(lot.started_ns)), ("ended", when(lot.ended_ns)), ("fruit", lot.fruit),
                       ("weight_kg", round(lot.weight_g / 1000, 2)), ("mean_weight_g", round(lot.mean_weight_g, 1)),
                       ("packout_pct", round(lot.packout_pct, 1)), ("note", lot.note)):
        w.writerow([t(key, key), value])
    w.writerow([])
    sizes = lot.sizes()
    w.writerow([t("grade", "grade"), *[t("size", "size") + f" {s}" for s in sizes], t("total", "total"),
                t("share_pct", "%")])
    for g in GRADES:
        row = [lot.counts.get(f"{g}:{s}", 0) for s in sizes]
        w.writerow([t(g, g), *row, sum(row), round(lot.share_pct(g), 1)])
    w.writerow([])
    w.writerow([t("reason", "reason"), t("fruit", "fruit")])
    for reason, n in sorted(lot.reasons.items(), key=lambda kv: -kv[1]):
        w.writerow([t(reason, reason), n])
    return buf.getvalue()
