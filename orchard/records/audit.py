"""The audit log of admin actions: who did what to which user, device, plot or camera, and when.
Written in the same breath as the change; details never hold a secret."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import insert, select

from orchard.records import Records
from orchard.records.schema import audit_log as A


@dataclass(frozen=True, slots=True)
class AuditEntry:
    id: int
    time_ns: int
    actor: str
    action: str
    target: str
    detail: dict[str, Any]


class AuditLog:
    def __init__(self, records: Records) -> None:
        self.engine = records.engine

    def record(self, actor: str, action: str, target: str, now_ns: int, **detail: object) -> None:
        with self.engine.begin() as conn:
            conn.execute(insert(A).values(time_ns=now_ns, actor=actor, action=action, target=target,
                                          detail=orjson.dumps(detail, default=str).decode()))

    def entries(self, limit: int = 200, action: str | None = None) -> list[AuditEntry]:
        stmt = select(A).order_by(A.c.id.desc()).limit(limit)
        if action:
            stmt = stmt.where(A.c.action == action)
        with self.engine.connect() as conn:
            rows = conn.execute(stmt).all()
        return [AuditEntry(r.id, r.time_ns, r.actor, r.action, r.target, orjson.loads(r.detail)) for r in rows]
