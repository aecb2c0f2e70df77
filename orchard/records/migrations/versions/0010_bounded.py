"""Bounded growth: a dead letter keeps at most a capped part of its raw payload, with the payload's full size and
SHA-256 (so an operator can still tell payloads apart and match them against a device's own log).

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("dead_letters") as t:
        t.add_column(sa.Column("payload_size", sa.BigInteger))  # NULL in older rows: the payload is whole
        t.add_column(sa.Column("payload_sha256", sa.Text))


def downgrade() -> None:
    with op.batch_alter_table("dead_letters") as t:
        t.drop_column("payload_sha256")
        t.drop_column("payload_size")
