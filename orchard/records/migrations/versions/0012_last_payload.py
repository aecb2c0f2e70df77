"""The last payload a device sent that was stored, for the devices page: an operator checks what a new sensor
really sends next to the fields its profile does not know. Refreshed at most every few minutes per device
(sensors/writer.py PAYLOAD_EVERY_S), capped in size.

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("devices") as t:
        t.add_column(sa.Column("last_payload", sa.LargeBinary))
        t.add_column(sa.Column("last_payload_ns", sa.BigInteger))
        t.add_column(sa.Column("last_topic", sa.Text))


def downgrade() -> None:
    with op.batch_alter_table("devices") as t:
        t.drop_column("last_topic")
        t.drop_column("last_payload_ns")
        t.drop_column("last_payload")
