"""Decoding failed (解码失败): the device sends, but what it sends cannot be read. ChirpStack's codec threw on it
(its `log` event with code UPLINK_CODEC), or the profile could not decode it (a Modbus answer with a bad CRC or
an exception, a frame cut short, no decoded object). Its readings are not stored, so without this the device
only looks offline; while this alarm is raised, the offline alarm of the same device is held (engine._mute).

Fires on any such dead letter within the window; clears once a whole window passes without one."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import Field

from analytics.rules import register
from analytics.rules.base import DeviceData, DeviceRule, RuleConfig, Verdict, device_source
from orchard.site import Site

NS = 1_000_000_000
# The reason kinds (text before the first colon) that ingest gives a payload it could not decode: sensors/writer.py
# (codec_error), sensors/profiles/__init__.py and sensors/profiles/modbus.py (the rest).
DECODE_KINDS = frozenset({"codec_error", "bad_crc", "bad_frame", "no_frame", "modbus_exception", "wrong_slave",
                          "wrong_function", "no_object", "not_json", "bad_json", "not_object"})


class DecodeConfig(RuleConfig):
    window_min: int = Field(60, ge=5, description="Raised by a decoding failure within this many minutes; cleared "
                                                  "when a whole window has none.")



@register
class DecodeFailed(DeviceRule):
    type = "decode_failed"
    Config = DecodeConfig
    letter_kinds = DECODE_KINDS

    def evaluate(self, site: Site, data: DeviceData, cfg: DecodeConfig, now_ns: int,
                 context: Mapping[str, Any]) -> Iterable[Verdict]:
        src = device_source(data.device.id)
        failures = context.get("failures")
        if failures is None:
            return [self.hold(src)]  # a quick cycle does not count dead letters
        f = failures.get(data.device.id)
        if f is None or f.last_ns < now_ns - cfg.window_min * 60 * NS:
            return [self.clear(src)]
        # Every uplink failing (nothing stored since the first failure) is worse than one odd frame in many.
        stored_since = data.last_seen_ns is not None and data.last_seen_ns > f.first_ns
        severity = "warning" if stored_since else "major"
        reason = f.reason.split(": ", 1)[-1][:160]
        return [self.signal(site, src, severity, plot=data.device.plot, device=data.device.id, count=f.count,
                            window_min=cfg.window_min, reason=reason)]
