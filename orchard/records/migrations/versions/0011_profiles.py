"""Device profiles: which sensor model a device is (sensors/profiles/<id>.toml), and the payload fields its
profile does not know, as last reported (once per device and day, not a dead letter per uplink), and how far
off its gateway's clock was when its uplinks were filed at the network server's time instead.

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("devices") as t:
        t.add_column(sa.Column("profile", sa.Text))
        t.add_column(sa.Column("unmapped", sa.Text))  # JSON list of field paths
        t.add_column(sa.Column("unmapped_day", sa.Text))  # the UTC day they were last reported
        t.add_column(sa.Column("clock_skew_s", sa.BigInteger))  # its gateway's clock, when last found wrong


def downgrade() -> None:
    with op.batch_alter_table("devices") as t:
        t.drop_column("clock_skew_s")
        t.drop_column("unmapped_day")
        t.drop_column("unmapped")
        t.drop_column("profile")
