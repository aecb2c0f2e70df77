"""The canonical readings (docs/architecture.md "Data contracts"): unit and physically possible range.

A value outside its range is rejected, never clipped: a sensor that says 90 C is broken, not hot.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ReadingSpec:
    name: str
    unit: str
    low: float
    high: float
    zh: str
    en: str
    depth: bool = False  # may carry a depth_cm tag (soil probes)


_SPECS = (
    ReadingSpec("air_temp_c", "°C", -40, 60, "气温", "Air temperature"),
    ReadingSpec("rh_pct", "%", 0, 100, "相对湿度", "Relative humidity"),
    ReadingSpec("leaf_wetness_pct", "%", 0, 100, "叶面湿度", "Leaf wetness"),
    # A dielectric leaf sensor's raw index (Decentlab DL-LWS: ADC count / 2^23 - 1, so -1..1), not a percentage:
    # where it turns "wet" depends on the sensor and its mounting, so the Psa rule does not read it as one.
    ReadingSpec("leaf_wetness_index", "", -1, 1, "叶面湿润指数", "Leaf wetness index"),
    ReadingSpec("rain_mm", "mm", 0, 200, "降雨量", "Rain"),
    ReadingSpec("wind_speed_ms", "m/s", 0, 75, "风速", "Wind speed"),
    ReadingSpec("wind_gust_ms", "m/s", 0, 75, "阵风", "Wind gust"),
    ReadingSpec("solar_wm2", "W/m²", 0, 1500, "太阳辐射", "Solar radiation"),
    ReadingSpec("soil_vwc_pct", "%", 0, 100, "土壤含水量", "Soil moisture", depth=True),
    ReadingSpec("soil_temp_c", "°C", -20, 60, "土壤温度", "Soil temperature", depth=True),
    ReadingSpec("soil_ec_dsm", "dS/m", 0, 20, "土壤电导率", "Soil EC", depth=True),
    ReadingSpec("canopy_temp_c", "°C", -40, 60, "冠层温度", "Canopy temperature"),
    ReadingSpec("soil_ph", "pH", 0, 14, "土壤酸碱度", "Soil pH", depth=True),
    ReadingSpec("air_pressure_hpa", "hPa", 300, 1100, "气压", "Air pressure"),
    ReadingSpec("wind_dir_deg", "°", 0, 360, "风向", "Wind direction"),
    ReadingSpec("battery_v", "V", 0, 5, "电池电压", "Battery voltage"),
    ReadingSpec("battery_pct", "%", 0, 100, "电池电量", "Battery level"),
    ReadingSpec("rssi_dbm", "dBm", -150, 0, "信号强度", "Signal strength"),
    # LoRaWAN DevStatusAns: the demodulation margin of the device's last DevStatusReq, a 6-bit signed number.
    ReadingSpec("link_margin_db", "dB", -32, 31, "链路余量", "Link margin"),
)

CATALOGUE: dict[str, ReadingSpec] = {s.name: s for s in _SPECS}
DEVICE_HEALTH = ("battery_v", "battery_pct", "rssi_dbm", "link_margin_db")  # about the device, not the orchard

# The measurement every telemetry reading lands in; tags: site, plot, device[, depth_cm].
TELEMETRY = "telemetry"
