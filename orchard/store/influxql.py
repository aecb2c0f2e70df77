"""InfluxQL quoting. Every identifier and string literal built from user or device input goes through here.

InfluxQL's scanner reads both quoted identifiers and string literals with the same escapes: backslash,
the quote character, and ``\\n`` for a newline (a raw newline ends the statement with an error).
"""

from __future__ import annotations

from orchard.store.base import Where, where_items


def _escape(s: str, quote: str) -> str:
    return s.replace("\\", "\\\\").replace(quote, "\\" + quote).replace("\n", "\\n")


def ident(name: str) -> str:
    """A quoted identifier: measurement, field, tag key, database."""
    return f'"{_escape(name, chr(34))}"'


def literal(value: str) -> str:
    """A single-quoted string literal: tag values in WHERE."""
    return f"'{_escape(value, chr(39))}'"


def where_clause(where: Where | None, start_ns: int | None = None, end_ns: int | None = None) -> str:
    conds: list[str] = []
    if start_ns is not None:
        conds.append(f"time >= {int(start_ns)}")
    if end_ns is not None:
        conds.append(f"time < {int(end_ns)}")
    for key, values in where_items(where):
        alts = " OR ".join(f"{ident(key)} = {literal(v)}" for v in values)
        conds.append(f"({alts})" if len(values) > 1 else alts)
    return " WHERE " + " AND ".join(conds) if conds else ""
