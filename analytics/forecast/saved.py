"""A forecast saved as a file (the Open-Meteo answer's JSON, written by whatever fetches it: a county server, a
cron job with curl): read afresh when it changes. A file that is missing or not a forecast is a ForecastError,
so the feed falls back to no forecast as it does for a service that is down."""

from __future__ import annotations

from pathlib import Path

import orjson

from analytics.forecast import Forecast, ForecastError, parse_open_meteo


class SavedForecast:
    name = "file"

    def __init__(self, path: Path) -> None:
        self.path = path

    def fetch(self, latitude: float, longitude: float) -> Forecast:
        try:
            raw = self.path.read_bytes()
            stamp = int(self.path.stat().st_mtime)
        except OSError as e:
            raise ForecastError(f"no forecast file at {self.path} ({e.strerror})") from None
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise ForecastError(f"the forecast file {self.path} is not JSON") from None
        return parse_open_meteo(body, self.name, stamp)
