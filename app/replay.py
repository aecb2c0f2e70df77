"""`orchard analytics replay`: the backtest's command line (analytics/replay.py does the work), as a table or
one JSON object (what the 预警 page reads when an adviser tries a threshold)."""

from __future__ import annotations

import sys
from datetime import datetime
from typing import Any

import orjson
import typer

from analytics.replay import Change, Episode, ReplayResult, replay
from orchard.records import Records
from orchard.records.alarms import AlarmBook
from orchard.settings import Settings
from orchard.site import Site, SiteError, site_for
from orchard.store import open_store

NS = 1_000_000_000


def local_time(text: str, site: Site) -> int:
    try:
        t = datetime.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not a date or time: write 2027-03-15 or 2027-03-15T18:00") from None
    return int((t if t.tzinfo else t.replace(tzinfo=site.tz)).timestamp() * NS)


def run_replay(settings: Settings, start: str, end: str | None, sets: list[str], rules: list[str], step_min: int,
               as_json: bool) -> ReplayResult:
    try:
        site = site_for(settings)
    except SiteError as e:
        typer.echo(str(e), err=True)
        raise typer.Exit(2) from None
    start_ns = local_time(start, site)
    end_ns = local_time(end, site) if end else int(datetime.now().timestamp() * NS)
    if end_ns <= start_ns:
        raise typer.BadParameter("--to must be after --from")
    store = open_store(settings.store_url, site=settings.site)
    records = Records.open(settings)
    try:
        was = AlarmBook(records, settings.site).between(start_ns, end_ns)
        shown = [0]

        def progress(done: int, total: int) -> None:
            pct = 100 * done // total
            if pct >= shown[0] + 5:  # on stderr, also with --json (the 预警 page shows it as a bar)
                shown[0] = pct
                print(f"replay {pct}% ({done}/{total} cycles)", file=sys.stderr, flush=True)

        try:
            result = replay(site, store, start_ns, end_ns, step_s=step_min * 60, rules=rules or None, sets=sets,
                            was=was, progress=progress)
        except ValueError as e:  # an unknown rule, or a setting the rule refuses (the message says which)
            typer.echo(str(e), err=True)
            raise typer.Exit(2) from None
    finally:
        store.close()
        records.close()
    if as_json:
        print(orjson.dumps(as_dict(result, site)).decode())
    else:
        print("\n".join(table(result, site)))
    return result


def _when(ns: int | None, site: Site) -> str:
    return "-" if ns is None else datetime.fromtimestamp(ns / NS, site.tz).strftime("%m-%d %H:%M")


def _episode(e: Episode | None, site: Site) -> dict[str, Any] | None:
    if e is None:
        return None
    return {"type": e.type, "source": e.source, "plot": e.plot, "raised": _when(e.raised_ns, site),
            "raised_ns": e.raised_ns, "cleared": _when(e.cleared_ns, site), "cleared_ns": e.cleared_ns,
            "severity": e.severity, "message": e.message}


def as_dict(r: ReplayResult, site: Site) -> dict[str, Any]:
    return {"from": _when(r.start_ns, site), "to": _when(r.end_ns, site), "step_min": r.step_s // 60,
            "settings": list(r.settings), "rules": list(r.rules), "cycles": r.cycles, "seconds": round(r.seconds, 1),
            "would": len(r.would), "was": len(r.was), **{c.value: r.count(c) for c in Change},
            "differences": [{"change": d.change.value, "shift_min": d.shift_min, "would": _episode(d.would, site),
                             "was": _episode(d.was, site)} for d in r.differences],
            "not_replayed": ["silences", "acknowledgements", "forecast pre-warnings"]}


def table(r: ReplayResult, site: Site) -> list[str]:
    tried = ", ".join(r.settings) or "the site's own settings"
    lines = [f"replay {_when(r.start_ns, site)} .. {_when(r.end_ns, site)} every {r.step_s // 60} min, {tried}: "
             f"{r.cycles} cycles in {r.seconds:.0f} s",
             f"would raise {len(r.would)}, raised then {len(r.was)}: "
             + ", ".join(f"{c.value} {r.count(c)}" for c in Change),
             f"{'change':<7}{'type':<16}{'source':<16}{'raised':<13}{'cleared':<13}{'severity':<10}{'then':<26}"]
    for d in r.differences:
        e = d.would or d.was
        assert e is not None
        then = ""
        if d.was is not None and d.would is not None:
            then = f"{_when(d.was.raised_ns, site)} ({d.shift_min:+.0f} min)" if d.change == Change.MOVED else "as then"
        lines.append(f"{d.change.value:<7}{e.type:<16}{e.source:<16}{_when(e.raised_ns, site):<13}"
                     f"{_when(e.cleared_ns, site):<13}{e.severity:<10}{then:<26}")
    lines.append("not replayed: silences, acknowledgements, forecast pre-warnings (no forecasts are stored)")
    return lines
