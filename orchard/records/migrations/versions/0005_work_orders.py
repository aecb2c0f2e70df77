"""Work orders and their history (states, notes, before/after photos).

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "work_orders",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("alarm_id", sa.Integer, sa.ForeignKey("alarms.id", ondelete="SET NULL")),
        sa.Column("plot", sa.Text),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("description", sa.Text, nullable=False, server_default=""),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("state", sa.Text, nullable=False),
        sa.Column("assignee", sa.Text),
        sa.Column("created_by", sa.Text, nullable=False),
        sa.Column("created_ns", sa.BigInteger, nullable=False),
        sa.Column("state_since_ns", sa.BigInteger, nullable=False),
        sa.Column("due_ns", sa.BigInteger),
        sa.Column("closed_ns", sa.BigInteger),
    )
    op.create_index("work_orders_state", "work_orders", ["state", "due_ns"])
    op.create_table(
        "work_order_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("work_order_id", sa.Integer, sa.ForeignKey("work_orders.id", ondelete="CASCADE"), nullable=False),
        sa.Column("time_ns", sa.BigInteger, nullable=False),
        sa.Column("actor", sa.Text, nullable=False),
        sa.Column("from_state", sa.Text),
        sa.Column("to_state", sa.Text),
        sa.Column("note", sa.Text, nullable=False, server_default=""),
        sa.Column("photo", sa.Text),
        sa.Column("photo_kind", sa.Text),
    )
    op.create_index("work_order_events_wo", "work_order_events", ["work_order_id", "time_ns"])


def downgrade() -> None:
    op.drop_table("work_order_events")
    op.drop_table("work_orders")
