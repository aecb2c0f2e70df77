"""A conformance fake of InfluxDB 2.x's v1 compatibility API, for the store adapter's tests (Debian has no 2.x).

It is an httpx transport in front of a real InfluxDB 1.x, which stays the query engine; on the way it behaves as
2.x's v1 API does, from its documentation and source:
- auth: `Authorization: Token <token>`, or Basic auth with the token as password (docs: "Authenticate with the
  InfluxDB v1 API"); anything else 401 `{"code": "unauthorized", "message": "unauthorized access"}`;
- DBRP: the v1 `db` names a bucket through its DBRP mapping; an unmapped one is 404 `{"code": "not found", ...}`;
  SHOW DATABASES lists the mappings; CREATE/DROP DATABASE are not served (an error result);
- errors as `{"code", "message"}` with the status of influxdb's kit/transport/http error_handler.go (invalid 400,
  unprocessable entity 422, not found 404, too many requests 429, unavailable 503);
- a partial write (type conflict, outside retention) is 422 with the good points stored
  (docs.influxdata.com/influxdb/v2/write-data/troubleshoot: "422 Unprocessable Entity: Some or all of the data has
  been rejected. Data that has not been rejected is ingested and queryable.");
- `busy(seconds)` makes it answer 503 with Retry-After for that long, as a 2.x under load or behind a limiter.
"""

from __future__ import annotations

import base64
import time
from urllib.parse import parse_qsl, urlencode

import httpx
import orjson


def _error(status: int, code: str, message: str, **headers: str) -> httpx.Response:
    return httpx.Response(status, json={"code": code, "message": message}, headers=headers)


class Influx2V1(httpx.BaseTransport):
    def __init__(self, upstream: str, token: str, dbrp: dict[str, str]) -> None:
        """`upstream`: the real 1.x's http://host:port; `dbrp`: bucket (v1 db name) -> 1.x database."""
        self.upstream, self.token, self.dbrp = upstream.rstrip("/"), token, dict(dbrp)
        self.inner = httpx.HTTPTransport()
        self.busy_until = 0.0
        self.requests: list[tuple[str, int]] = []  # (path, status answered)

    def busy(self, seconds: float) -> None:
        self.busy_until = time.monotonic() + seconds

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self._answer(request)
        self.requests.append((request.url.path, response.status_code))
        return response

    def _authorised(self, request: httpx.Request) -> bool:
        header = request.headers.get("Authorization", "")
        if header == f"Token {self.token}":
            return True
        if header.startswith("Basic "):
            _, _, password = base64.b64decode(header[6:]).decode().partition(":")
            return password == self.token
        return False

    def _answer(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path == "/ping":
            return httpx.Response(204, headers={"X-Influxdb-Version": "v2.7.11", "X-Influxdb-Build": "OSS"})
        if not self._authorised(request):
            return _error(401, "unauthorized", "unauthorized access")
        left = self.busy_until - time.monotonic()
        if left > 0:
            return _error(503, "unavailable", "service unavailable", **{"Retry-After": str(int(left) + 1)})
        if path == "/write":
            return self._write(request)
        if path == "/query":
            return self._query(request)
        return _error(404, "not found", "path not found")

    def _forward(self, request: httpx.Request, path: str, params: dict[str, str], content: bytes) -> httpx.Response:
        headers = {k: v for k, v in request.headers.items() if k.lower() not in ("authorization", "host",
                                                                                  "content-length")}
        inner = httpx.Request(request.method, f"{self.upstream}{path}?{urlencode(params)}", headers=headers,
                              content=content)
        response = self.inner.handle_request(inner)
        response.read()
        return response

    def _write(self, request: httpx.Request) -> httpx.Response:
        params = dict(request.url.params)
        bucket = params.get("db", "")
        if bucket not in self.dbrp:
            return _error(404, "not found", f'bucket "{bucket}" not found')
        answer = self._forward(request, "/write", {**params, "db": self.dbrp[bucket]}, request.read())
        if answer.status_code == 204:
            return httpx.Response(204)
        message = str(orjson.loads(answer.content).get("error", answer.text)) if answer.content else ""
        if "partial write" in message:
            return _error(422, "unprocessable entity", f"failure writing points to database: {message}")
        return _error(400, "invalid", message)

    def _query(self, request: httpx.Request) -> httpx.Response:
        body = dict(parse_qsl(request.read().decode())) if request.method == "POST" else {}
        params = {**dict(request.url.params), **body}
        statement = params.get("q", "").strip()
        keyword = statement.split(None, 2)[:2]
        if [w.upper() for w in keyword] == ["SHOW", "DATABASES"]:
            return httpx.Response(200, json={"results": [{"statement_id": 0, "series": [
                {"name": "databases", "columns": ["name"], "values": [[b] for b in sorted(self.dbrp)]}]}]})
        if keyword and keyword[0].upper() in ("CREATE", "DROP", "ALTER", "GRANT", "REVOKE"):
            return httpx.Response(200, json={"results": [{"statement_id": 0, "error": (
                f"unsupported statement: {' '.join(keyword)} is not supported by the v1 compatibility API")}]})
        bucket = params.get("db", "")
        if bucket not in self.dbrp:
            return _error(404, "not found", f'no dbrp mapping found for database "{bucket}"')
        answer = self._forward(request, "/query", {**params, "db": self.dbrp[bucket]}, b"")
        return httpx.Response(answer.status_code, content=answer.content,
                              headers={"Content-Type": "application/json"})
