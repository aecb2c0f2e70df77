"""The records database's tables (SQLAlchemy Core). Alembic migrations in orchard/migrations/ create and change
them; a test holds the two to the same schema.

Times are integer nanoseconds since the epoch (UTC), as everywhere else: BigInteger, since they pass 2**63 only
in the year 2262.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, Index, Integer, LargeBinary, MetaData, Table, Text

metadata = MetaData()

devices = Table(
    "devices",
    metadata,
    Column("device", Text, primary_key=True),
    Column("site", Text, nullable=False),
    Column("plot", Text, nullable=False),
    Column("status", Text, nullable=False, server_default="approved"),  # approved | new | pending | rejected
    Column("kind", Text, nullable=False, server_default=""),
    Column("dev_eui", Text, unique=True),
    Column("online", Boolean),
    Column("status_changed_ns", BigInteger),
    Column("last_seen_ns", BigInteger),
    Column("first_seen_ns", BigInteger),
    Column("extra", Text, nullable=False, server_default="{}"),  # JSON object
)

dead_letters = Table(
    "dead_letters",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("received_ns", BigInteger, nullable=False),
    Column("topic", Text, nullable=False),
    Column("site", Text),
    Column("plot", Text),
    Column("device", Text),
    Column("kind", Text, nullable=False, server_default=""),  # the reason's text before the first colon
    Column("reason", Text, nullable=False),
    Column("payload", LargeBinary, nullable=False),
    Column("held", Boolean, nullable=False, server_default="0"),  # waiting for the device to be approved
    Column("replayed_ns", BigInteger),  # set when a held payload went into the store
    Index("dead_letters_device", "device", "received_ns"),
    Index("dead_letters_time", "received_ns"),
)


def reason_kind(reason: str) -> str:
    return reason.split(":", 1)[0]
