"""The broker's accounts: per-device MQTT credentials kept in the records DB, and the two files Mosquitto reads
(`passwd` with PBKDF2-SHA512 hashes in mosquitto_passwd's `$7$` format, and `acl`: app/mosquitto/acl plus one
section per device, which may write its own telemetry and status topics and read nothing).

A device's password is shown once, when it is issued; only its hash is kept.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import insert, select, update

from orchard.mqtt import telemetry_topic
from orchard.records import Records
from orchard.records.schema import device_keys as K
from orchard.settings import Settings

ACL_TEMPLATE = Path(__file__).resolve().parent / "mosquitto" / "acl"  # package data: found in an installed wheel
SERVICES = ("ingest", "ingest_2", "ingest_3", "analytics", "cameras", "simulator", "lora")
EXTRA_INGEST = ("ingest_2", "ingest_3")  # more ingest processes, if any: not missing when unset
ITERATIONS = 101  # mosquitto_passwd's default for $7$
NAME = re.compile(r"[A-Za-z0-9][\w.-]{0,63}", re.ASCII)  # whole (fullmatch): a safe MQTT user name and topic level


class DeviceKeyError(ValueError):
    pass


def mosquitto_hash(password: str, salt: bytes | None = None, iterations: int = ITERATIONS) -> str:
    """A password file hash as `mosquitto_passwd` writes it: $7$<iterations>$<salt b64>$<PBKDF2-SHA512 b64>."""
    salt = salt or os.urandom(12)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations, 64)
    return f"$7${iterations}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


@dataclass(frozen=True, slots=True)
class DeviceKey:
    device: str
    topic: str  # <prefix>/<site>/<plot>/<device>: it may write <topic>/telemetry and <topic>/status
    created_ns: int
    revoked_ns: int | None


class DeviceKeys:
    def __init__(self, records: Records) -> None:
        self.engine = records.engine

    def issue(self, device: str, topic: str, now_ns: int) -> str:
        """A new password for the device (replacing any earlier one); returns it, the only time it is seen."""
        if not NAME.fullmatch(device):  # not match(): "$" would let a trailing newline through to the ACL file
            raise DeviceKeyError(f"设备编号只能用字母、数字、- _ . / a device id is letters, digits, - _ .: {device!r}")
        if device.lower() in SERVICES:  # its ACL section would add the device's rights to the service's account
            raise DeviceKeyError(f"设备编号不能用服务账号的名字 / a device cannot be named after a service account: "
                                 f"{device!r}")
        password = secrets.token_urlsafe(18)
        row = {"topic": topic, "hash": mosquitto_hash(password), "created_ns": now_ns, "revoked_ns": None}
        with self.engine.begin() as conn:
            if conn.execute(update(K).where(K.c.device == device).values(**row)).rowcount == 0:
                conn.execute(insert(K).values(device=device, **row))
        return password

    def revoke(self, device: str, now_ns: int) -> bool:
        with self.engine.begin() as conn:
            return bool(conn.execute(update(K).where(K.c.device == device, K.c.revoked_ns.is_(None))
                                     .values(revoked_ns=now_ns)).rowcount)

    def all(self) -> list[DeviceKey]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(K).order_by(K.c.device)).all()
        return [DeviceKey(r.device, r.topic, r.created_ns, r.revoked_ns) for r in rows]

    def hashes(self) -> dict[str, str]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(K.c.device, K.c.hash).where(K.c.revoked_ns.is_(None)))
            return {r.device: r.hash for r in rows}


def device_topic(settings: Settings, plot: str, device: str) -> str:
    return telemetry_topic(settings.mqtt_prefix, settings.site, plot, device).rsplit("/", 1)[0]


def acl_text(keys: list[DeviceKey], prefix: str = "orchard") -> str:
    """app/mosquitto/acl (with its topic prefix), then each active device's own section."""
    base = ACL_TEMPLATE.read_text(encoding="utf-8")
    if prefix != "orchard":
        base = re.sub(r"(?m)^(topic \w+ )orchard/", rf"\g<1>{prefix}/", base)
    sections = []
    for k in keys:
        if k.revoked_ns is None:
            sections.append(f"user {k.device}\ntopic write {k.topic}/telemetry\ntopic write {k.topic}/status\n")
    return base.rstrip("\n") + "\n\n" + "\n".join(sections)


def passwd_text(settings: Settings, device_hashes: dict[str, str]) -> str:
    lines = []
    for name in SERVICES:
        secret = getattr(settings.mqtt_accounts, name)
        if secret is not None:
            lines.append(f"{name}:{mosquitto_hash(secret.get_secret_value())}")
    lines += [f"{device}:{h}" for device, h in sorted(device_hashes.items()) if device not in SERVICES]
    return "\n".join(lines) + "\n"


def _write(path: Path, text: str) -> None:
    """Whole or not at all: the broker may read it at any moment (SIGHUP). Readable by the broker's own user,
    which is not ours in the compose setup; it holds only salted PBKDF2 hashes."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.chmod(0o644)
    tmp.replace(path)


def write_auth(settings: Settings, records: Records, out_dir: Path | None = None) -> tuple[Path, Path]:
    """Write the broker's passwd and acl; returns their paths. Reload the broker afterwards (SIGHUP)."""
    out = out_dir or settings.mqtt_auth_dir
    out.mkdir(parents=True, exist_ok=True)
    if out.stat().st_uid == os.getuid():
        out.chmod(0o755)  # the broker runs as its own user: it must get to the two files (hashes only)
    keys = DeviceKeys(records)
    passwd, acl = out / "passwd", out / "acl"
    _write(passwd, passwd_text(settings, keys.hashes()))
    _write(acl, acl_text(keys.all(), settings.mqtt_prefix))
    return passwd, acl

