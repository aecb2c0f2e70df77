"""Device registry and dead letters.

Databases made before migrations existed (the sqlite3 registry of the first releases) are adopted: their tables
are kept, and dead letters get the `kind` column, filled from their reasons.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    existing = set(sa.inspect(op.get_bind()).get_table_names())
    if "devices" not in existing:
        op.create_table(
            "devices",
            sa.Column("device", sa.Text, primary_key=True),
            sa.Column("site", sa.Text, nullable=False),
            sa.Column("plot", sa.Text, nullable=False),
            sa.Column("status", sa.Text, nullable=False, server_default="approved"),
            sa.Column("kind", sa.Text, nullable=False, server_default=""),
            sa.Column("dev_eui", sa.Text, unique=True),
            sa.Column("online", sa.Boolean),
            sa.Column("status_changed_ns", sa.BigInteger),
            sa.Column("last_seen_ns", sa.BigInteger),
            sa.Column("first_seen_ns", sa.BigInteger),
            sa.Column("extra", sa.Text, nullable=False, server_default="{}"),
        )
    if "dead_letters" not in existing:
        op.create_table(
            "dead_letters",
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("received_ns", sa.BigInteger, nullable=False),
            sa.Column("topic", sa.Text, nullable=False),
            sa.Column("site", sa.Text),
            sa.Column("plot", sa.Text),
            sa.Column("device", sa.Text),
            sa.Column("kind", sa.Text, nullable=False, server_default=""),
            sa.Column("reason", sa.Text, nullable=False),
            sa.Column("payload", sa.LargeBinary, nullable=False),
            sa.Column("held", sa.Boolean, nullable=False, server_default="0"),
            sa.Column("replayed_ns", sa.BigInteger),
        )
        op.create_index("dead_letters_device", "dead_letters", ["device", "received_ns"])
        op.create_index("dead_letters_time", "dead_letters", ["received_ns"])
    else:
        columns = {c["name"] for c in sa.inspect(op.get_bind()).get_columns("dead_letters")}
        if "kind" not in columns:
            with op.batch_alter_table("dead_letters") as batch:
                batch.add_column(sa.Column("kind", sa.Text, nullable=False, server_default=""))
            op.execute("UPDATE dead_letters SET kind = CASE WHEN instr(reason, ':') > 0 "
                       "THEN substr(reason, 1, instr(reason, ':') - 1) ELSE reason END")


def downgrade() -> None:
    op.drop_table("dead_letters")
    op.drop_table("devices")
