"""InfluxDB through its v1 HTTP API: line protocol to /write, InfluxQL to /query.

Every InfluxDB generation serves this API (1.x natively, 2.4+ through v1 compatibility, 3.x Core), while
influxdb-client's /api/v2 + Flux exists only in 1.8+ and 2.x; docs/architecture.md "Data contracts" says why.
"""

from __future__ import annotations

import email.utils
import gzip
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import httpx
import orjson

from orchard.models import Point
from orchard.settings import StoreTarget
from orchard.store import influxql as q
from orchard.store.base import (
    Aggregate,
    LatestValue,
    Rejected,
    Row,
    StoreError,
    StoreUnavailable,
    Where,
    WriteResult,
    check_at_least,
    matches_nothing,
)
from orchard.store.lineproto import line

log = logging.getLogger(__name__)


class InfluxStore:
    """The adapter. What the InfluxDB generations answer differently, handled here (each from its docs):

    - partial writes: 1.x answers 400 and 2.x 422 (`{"code": "unprocessable entity", "message": ...}`, the good
      points stored; docs.influxdata.com/influxdb/v2/write-data/troubleshoot), neither saying which points were
      bad, so the batch is halved until they are found (writes are idempotent); 3.x answers 400 with `data`, the
      rejected lines by number (`{"error": "partial write of line protocol occurred", "data": [{"original_line",
      "line_number", "error_message"}]}`), and exactly those are named;
    - 401/403 (bad user, password or token) is a StoreError that says which setting to fix, never an outage;
    - 429 and 503 are an outage for as long as their `Retry-After` says: no request goes out before then;
    - 413 (a batch too large for the server) is split and sent again;
    - 2.x's v1 API serves no CREATE DATABASE: the bucket and its DBRP mapping come from the server's setup.

    The HTTP transport can be injected (tests put fakes of 2.x and 3.x there); auth headers are always our own.
    """

    def __init__(
        self,
        target: StoreTarget,
        *,
        batch_lines: int = 5000,
        timeout_s: float = 10.0,
        gzip_level: int = 1,
        transport: httpx.BaseTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.database = target.database
        self.batch_lines = batch_lines
        self.gzip_level = gzip_level
        self.clock = clock
        self.not_before = 0.0  # on the clock: a 429/503's Retry-After holds every request until then
        headers = {"Authorization": f"Token {target.token}"} if target.token else {}
        auth = (target.username, target.password or "") if target.username else None
        self._http = httpx.Client(base_url=target.base_url, headers=headers, auth=auth, timeout=timeout_s,
                                  transport=transport)
        self._db_checked = False

    # -- plumbing -------------------------------------------------------------------------------------------
    def _request(self, method: str, path: str, **kw: Any) -> httpx.Response:
        wait = self.not_before - self.clock()
        if wait > 0:
            raise StoreUnavailable(f"InfluxDB asked us to wait (Retry-After): {wait:.0f} s left")
        try:
            resp = self._http.request(method, path, **kw)
        except httpx.TransportError as e:  # refused, reset, timeout: the store is away, not wrong
            raise StoreUnavailable(f"InfluxDB unreachable: {e!r}") from e
        if resp.status_code in (429, 503):
            self.not_before = self.clock() + _retry_after_s(resp)
            raise StoreUnavailable(f"InfluxDB {resp.status_code} (busy; retry after "
                                   f"{self.not_before - self.clock():.0f} s): {_error_text(resp)[:200]}")
        if resp.status_code >= 500:
            raise StoreUnavailable(f"InfluxDB {resp.status_code}: {_error_text(resp)[:300]}")
        if resp.status_code in (401, 403):
            raise StoreError(f"时序库拒绝了凭据 / InfluxDB refused the credentials ({resp.status_code}: "
                             f"{_error_text(resp)[:200]}): check the user and password or the token in "
                             "ORCHARD_STORE_URL (a 2.x token needs read and write access to the bucket)")
        return resp

    def _query(self, statement: str) -> list[dict[str, Any]]:
        params = {"q": statement, "epoch": "ns"}
        if self.database:
            params["db"] = self.database
        resp = self._request("POST", "/query", data=params)
        body = orjson.loads(resp.content or b"{}")
        if resp.status_code >= 400 or "error" in body:
            raise StoreError(f"InfluxQL failed: {body.get('error', resp.text[:300])} (query: {statement[:300]})")
        results: list[dict[str, Any]] = body.get("results", [])
        for r in results:
            if "error" in r:
                raise StoreError(f"InfluxQL failed: {r['error']} (query: {statement[:300]})")
        return results

    # -- interface --------------------------------------------------------------------------------------------
    def ping(self) -> None:
        resp = self._request("GET", "/ping")
        if resp.status_code != 204:
            raise StoreUnavailable(f"InfluxDB /ping answered {resp.status_code}")

    def ensure_ready(self) -> None:
        """CREATE DATABASE is idempotent in 1.x. InfluxDB 2.x's v1 API does not serve it: there the bucket and its
        DBRP mapping come from the server's setup (deploy/influxdb/init), and SHOW DATABASES lists the mapping."""
        try:
            self._query(f"CREATE DATABASE {q.ident(self.database)}")
        except StoreError as created:
            shown = self._query("SHOW DATABASES")[0]
            names = {str(v[0]) for _, _, values in _series(shown) for v in values}
            if self.database not in names:
                raise StoreError(f"数据库 {self.database} 不存在，也无法创建 / database {self.database!r} does not "
                                 f"exist and cannot be created here ({created}); on InfluxDB 2.x create the bucket "
                                 "and its v1 DBRP mapping (deploy/influxdb/init/orchard-dbrp.sh)") from created
        self._db_checked = True

    def write(self, points: Sequence[Point]) -> WriteResult:
        rejected: list[Rejected] = []
        batch_p: list[Point] = []
        batch_l: list[str] = []
        written = 0
        for p in points:
            try:
                s = line(p)
            except ValueError as e:
                rejected.append(Rejected(p, str(e)))
                continue
            if not s:
                rejected.append(Rejected(p, "point has no writable field (all empty or not finite)"))
                continue
            batch_p.append(p)
            batch_l.append(s)
            if len(batch_l) >= self.batch_lines:
                written += self._write_lines(batch_p, batch_l, rejected)
                batch_p, batch_l = [], []
        if batch_l:
            written += self._write_lines(batch_p, batch_l, rejected)
        return WriteResult(written=written, rejected=tuple(rejected))

    def _post_lines(self, lines: list[str]) -> httpx.Response:
        body = gzip.compress("\n".join(lines).encode(), compresslevel=self.gzip_level)
        return self._request(
            "POST",
            "/write",
            params={"db": self.database, "precision": "ns"},
            content=body,
            headers={"Content-Encoding": "gzip", "Content-Type": "text/plain; charset=utf-8"},
        )

    def _write_lines(self, points: list[Point], lines: list[str], rejected: list[Rejected]) -> int:
        resp = self._post_lines(lines)
        if resp.status_code == 404 and not self._db_checked:  # "database not found": create it once, retry
            self.ensure_ready()
            resp = self._post_lines(lines)
        if resp.status_code in (200, 204):
            return len(lines)
        if resp.status_code == 413 and len(lines) > 1:  # too large for this server: in halves
            return self._halves(points, lines, rejected)
        if resp.status_code not in (400, 422):
            raise StoreError(f"InfluxDB /write answered {resp.status_code}: {_error_text(resp)[:300]}")
        named = _rejected_lines(resp, len(lines))
        if named:  # 3.x names the rejected lines
            for i, reason in sorted(named.items()):
                log.warning("store rejected point: %s", reason)
                rejected.append(Rejected(points[i], f"InfluxDB rejected the point: {reason}"))
            # The others are stored when partial writes are accepted (3.x's default), else none was: sent again
            # without the bad ones, idempotent either way.
            keep = [i for i in range(len(lines)) if i not in named]
            return self._write_lines([points[i] for i in keep], [lines[i] for i in keep], rejected) if keep else 0
        # A partial write that does not say which points were bad (1.x 400; 2.x 400 or 422: type conflict, parse
        # error, outside retention): halving and rewriting finds exactly them, rewriting some good ones.
        if len(lines) == 1:
            reason = _error_text(resp)
            log.warning("store rejected point: %s", reason)
            rejected.append(Rejected(points[0], f"InfluxDB rejected the point: {reason}"))
            return 0
        return self._halves(points, lines, rejected)

    def _halves(self, points: list[Point], lines: list[str], rejected: list[Rejected]) -> int:
        mid = len(lines) // 2
        return self._write_lines(points[:mid], lines[:mid], rejected) + self._write_lines(
            points[mid:], lines[mid:], rejected
        )

    def latest(
        self, measurement: str, fields: Sequence[str], where: Where | None = None, since_ns: int | None = None
    ) -> list[LatestValue]:
        if not fields or matches_nothing(where):
            return []
        # One statement per field: with several selectors in one SELECT, InfluxQL returns time 0.
        cond = q.where_clause(where, since_ns)
        stmts = [
            f"SELECT last({q.ident(f)}) AS {q.ident('value')} FROM {q.ident(measurement)}{cond} GROUP BY *"
            for f in fields
        ]
        out: list[LatestValue] = []
        for f, result in zip(fields, self._query("; ".join(stmts)), strict=True):
            for tags, cols, values in _series(result):
                for v in values:
                    out.append(LatestValue(tags, f, int(v[0]), v[cols.index("value")]))
        return out

    def aggregate(
        self,
        measurement: str,
        fields: Sequence[str],
        fns: Sequence[Aggregate],
        start_ns: int,
        end_ns: int,
        every_ns: int | None = None,
        group_by: Sequence[str] = (),
        where: Where | None = None,
        offset_ns: int = 0,
        at_least: float | None = None,
    ) -> list[Row]:
        check_at_least(fields, at_least)
        if not fields or not fns or matches_nothing(where):
            return []
        select = ", ".join(f"{fn}({q.ident(f)}) AS {q.ident(f'{f}.{fn}')}" for f in fields for fn in fns)
        groups = [q.ident(g) for g in group_by]
        if every_ns:
            groups.insert(0, f"time({int(every_ns)}ns, {int(offset_ns) % int(every_ns)}ns)")
        group = f" GROUP BY {', '.join(groups)} fill(none)" if groups else ""
        floor = f" AND {q.ident(fields[0])} >= {float(at_least)!r}" if at_least is not None else ""
        stmt = f"SELECT {select} FROM {q.ident(measurement)}{q.where_clause(where, start_ns, end_ns)}{floor}{group}"
        return _rows(self._query(stmt)[0])

    def range(
        self,
        measurement: str,
        fields: Sequence[str],
        start_ns: int,
        end_ns: int,
        where: Where | None = None,
    ) -> list[Row]:
        if not fields or matches_nothing(where):
            return []
        select = ", ".join(q.ident(f) for f in fields)
        stmt = f"SELECT {select} FROM {q.ident(measurement)}{q.where_clause(where, start_ns, end_ns)} GROUP BY *"
        return _rows(self._query(stmt)[0])

    def tag_values(self, measurement: str, key: str, where: Where | None = None) -> list[str]:
        if matches_nothing(where):
            return []
        stmt = f"SHOW TAG VALUES FROM {q.ident(measurement)} WITH KEY = {q.ident(key)}{q.where_clause(where)}"
        found = {str(v[1]) for _, _, values in _series(self._query(stmt)[0]) for v in values}
        return sorted(found)

    def measurements(self) -> list[str]:
        return sorted(str(v[0]) for _, _, values in _series(self._query("SHOW MEASUREMENTS")[0]) for v in values)

    def field_keys(self, measurement: str) -> list[str]:
        stmt = f"SHOW FIELD KEYS FROM {q.ident(measurement)}"
        return sorted({str(v[0]) for _, _, values in _series(self._query(stmt)[0]) for v in values})

    def time_bounds(self, measurement: str) -> tuple[int, int] | None:
        ends = []
        for order in ("ASC", "DESC"):  # first and last of any field: SELECT * ... LIMIT 1 reads one point
            stmt = f"SELECT * FROM {q.ident(measurement)} ORDER BY time {order} LIMIT 1"
            found = [int(v[0]) for _, _, values in _series(self._query(stmt)[0]) for v in values]
            if not found:
                return None
            ends.append(found[0])
        return ends[0], ends[1]

    def close(self) -> None:
        self._http.close()


def _rows(result: dict[str, Any]) -> list[Row]:
    """Rows ordered by series (sorted tags) then time; InfluxDB returns each series' points in time order."""
    rows: list[Row] = []
    for tags, cols, values in sorted(_series(result), key=lambda s: sorted(s[0].items())):
        names = cols[1:]
        for v in values:
            vals = {c: x for c, x in zip(names, v[1:], strict=True) if x is not None}
            if vals:
                rows.append(Row(int(v[0]), tags, vals))
    return rows


def _series(result: dict[str, Any]) -> Iterator[tuple[dict[str, str], list[str], list[list[Any]]]]:
    for s in result.get("series", []):
        tags = {k: v for k, v in (s.get("tags") or {}).items() if v != ""}  # GROUP BY * pads missing tags
        yield tags, s["columns"], s.get("values", [])


def _error_text(resp: httpx.Response) -> str:
    """The server's own words: 1.x and 3.x put them in "error", 2.x in "message" (with a "code")."""
    try:
        body = orjson.loads(resp.content)
    except orjson.JSONDecodeError:
        return resp.text[:500]
    if not isinstance(body, dict):
        return resp.text[:500]
    return str(body.get("error") or body.get("message") or resp.text)[:500]


def _rejected_lines(resp: httpx.Response, n: int) -> dict[int, str]:
    """3.x's partial write: the rejected lines by their 1-based number in the request, with its reason; {} when
    the answer does not name them (1.x, 2.x)."""
    try:
        body = orjson.loads(resp.content)
    except orjson.JSONDecodeError:
        return {}
    data = body.get("data") if isinstance(body, dict) else None
    out: dict[int, str] = {}
    for item in data if isinstance(data, list) else []:
        number = item.get("line_number") if isinstance(item, dict) else None
        if isinstance(number, int) and 1 <= number <= n:
            out[number - 1] = str(item.get("error_message") or body.get("error") or "rejected")[:500]
    return out


def _retry_after_s(resp: httpx.Response, default_s: float = 5.0, most_s: float = 300.0) -> float:
    """Retry-After in seconds (RFC 9110: delay-seconds or an HTTP date), within reason."""
    value = resp.headers.get("Retry-After", "").strip()
    if not value:
        return default_s
    try:
        return min(most_s, max(0.0, float(value)))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return default_s
    return min(most_s, max(0.0, when.timestamp() - time.time()))
