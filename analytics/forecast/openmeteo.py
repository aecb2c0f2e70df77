"""Open-Meteo's forecast API (https://open-meteo.com/en/docs, free for non-commercial use without a key, data
CC BY 4.0; the same API can be self-hosted, so the base URL is a setting). The request asks for the four hourly
variables the rules read, in m/s and epoch seconds, for the next 48 hours; `models` picks the weather model
(default `best_match`; `cma_grapes_global` is the China Meteorological Administration's GRAPES model).

The HTTP transport is injected: tests give an httpx.MockTransport that answers with recorded responses
(tests/fixtures/forecast), so no test touches the network."""

from __future__ import annotations

import time

import httpx

from analytics.forecast import Forecast, ForecastError, parse_open_meteo

HOURLY = "temperature_2m,relative_humidity_2m,wind_speed_10m,cloud_cover"


class OpenMeteo:
    name = "open-meteo"

    def __init__(self, url: str = "https://api.open-meteo.com/v1/forecast", models: str = "best_match",
                 timeout_s: float = 10.0, transport: httpx.BaseTransport | None = None) -> None:
        self.url, self.models = url, models
        self.client = httpx.Client(timeout=timeout_s, transport=transport)

    def fetch(self, latitude: float, longitude: float) -> Forecast:
        params: dict[str, str | float | int] = {
            "latitude": round(latitude, 4), "longitude": round(longitude, 4), "hourly": HOURLY,
            "wind_speed_unit": "ms", "timeformat": "unixtime", "timezone": "GMT", "forecast_hours": 48,
            "past_hours": 3, "models": self.models}
        try:
            r = self.client.get(self.url, params=params)
        except httpx.HTTPError as e:
            raise ForecastError(f"the forecast service did not answer ({type(e).__name__})") from None
        try:
            body = r.json()
        except ValueError:
            raise ForecastError(f"the forecast service answered HTTP {r.status_code} without JSON") from None
        if r.status_code != 200 and not (isinstance(body, dict) and body.get("error")):
            raise ForecastError(f"the forecast service answered HTTP {r.status_code}")
        return parse_open_meteo(body, self.name, int(time.time()))
