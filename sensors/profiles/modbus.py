"""Modbus RTU response frames as a 4G DTU forwards them from an RS485 sensor.

A DTU (USR-G780, 有人 / 塔石 and the like) polls the sensor with a read request (function 3 or 4) and publishes the
sensor's answer unchanged: slave address, function, byte count, the registers (big-endian 16-bit words), CRC-16
(Modbus: polynomial 0xA001 reflected, initial 0xFFFF, sent low byte first). The frame arrives as raw bytes or as
hex text ("01 03 06 ..."). A frame whose CRC does not match is refused with that reason: a bit flipped on a
noisy RS485 line must not become a reading.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sensors.profiles import Decoded, Modbus

_HEX = set(string.hexdigits + " \t\r\n:-")


def crc16(data: bytes) -> int:
    """Modbus CRC-16 of the bytes."""
    crc = 0xFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


def frame_bytes(payload: bytes | str | Mapping[str, Any]) -> bytes:
    """The frame from what the DTU sent: bytes as they are, or hex text; a JSON object with the hex under `data`
    or `frame` (some DTUs wrap it)."""
    from sensors.profiles import DecodeError

    if isinstance(payload, Mapping):
        inner = payload.get("frame", payload.get("data"))
        if not isinstance(inner, str):
            raise DecodeError("no_frame: a Modbus profile needs the sensor's answer as bytes or hex text")
        payload = inner
    if isinstance(payload, bytes | bytearray):
        text = bytes(payload).decode("ascii", errors="replace")
        if payload and set(text) <= _HEX and len(text.strip()) >= 10:
            payload = text  # hex sent as text
        else:
            return bytes(payload)
    cleaned = "".join(ch for ch in payload if ch in string.hexdigits)
    if len(cleaned) % 2:
        raise DecodeError("bad_frame: hex text with an odd number of digits")
    return bytes.fromhex(cleaned)


def decode_frame(cfg: Modbus, payload: bytes | str | Mapping[str, Any]) -> Decoded:
    from sensors.profiles import Decoded, DecodeError

    frame = frame_bytes(payload)
    if len(frame) < 5:
        raise DecodeError(f"bad_frame: {len(frame)} bytes is too short for a Modbus RTU answer")
    body, sent = frame[:-2], frame[-2] | frame[-1] << 8
    if crc16(body) != sent:
        raise DecodeError(f"bad_crc: the frame's CRC is {sent:04X}, its bytes give {crc16(body):04X} (a damaged "
                          "frame on the RS485 line or the DTU link)")
    slave, function = body[0], body[1]
    if function & 0x80:
        raise DecodeError(f"modbus_exception: slave {slave} answered function {function & 0x7F} with exception "
                          f"code {body[2]} (2: no such register, 3: bad value, 4: sensor failure)")
    if cfg.slave is not None and slave != cfg.slave:
        raise DecodeError(f"wrong_slave: the answer is from slave {slave}, the profile reads slave {cfg.slave}")
    if function != cfg.function:
        raise DecodeError(f"wrong_function: the answer is to function {function}, the profile reads {cfg.function}")
    count = body[2]
    data = body[3:]
    if count != len(data) or count % 2:
        raise DecodeError(f"bad_frame: the byte count says {count}, the frame carries {len(data)}")
    words = [data[i] << 8 | data[i + 1] for i in range(0, count, 2)]
    out = Decoded()
    for reg in cfg.registers:
        at = reg.address - cfg.start
        if at < 0 or at + reg.words > len(words):
            out.problems.append(f"missing_register: {reg.address} ({reg.reading}) is not in the answer's "
                                f"{len(words)} registers from {cfg.start}")
            continue
        raw = words[at] if reg.words == 1 else words[at] << 16 | words[at + 1]
        bits = 16 * reg.words
        if raw in reg.missing:
            out.ignored.append(f"register {reg.address} (no reading: 0x{raw:0{bits // 4}X})")
            continue
        value = raw - (1 << bits) if reg.signed and raw >> (bits - 1) else raw
        out.put(reg.reading, value * reg.scale + reg.offset, reg.depth_cm, f"register {reg.address}")
    known = {a for reg in cfg.registers for a in range(reg.address, reg.address + reg.words)}
    out.unmapped = [f"register {cfg.start + i}" for i in range(len(words)) if cfg.start + i not in known]
    return out
