"""Alarms and their audit trail.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "alarms",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("site", sa.Text, nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("type", sa.Text, nullable=False),
        sa.Column("severity", sa.Text, nullable=False),
        sa.Column("plot", sa.Text),
        sa.Column("device", sa.Text),
        sa.Column("started_ns", sa.BigInteger, nullable=False),
        sa.Column("updated_ns", sa.BigInteger, nullable=False),
        sa.Column("cleared_ns", sa.BigInteger),
        sa.Column("acked_ns", sa.BigInteger),
        sa.Column("acked_by", sa.Text),
        sa.Column("assignee", sa.Text),
        sa.Column("message", sa.Text, nullable=False, server_default=""),
        sa.Column("details", sa.Text, nullable=False, server_default="{}"),
    )
    op.create_index("alarms_one_active", "alarms", ["source", "type"], unique=True,
                    sqlite_where=sa.text("cleared_ns IS NULL"), postgresql_where=sa.text("cleared_ns IS NULL"))
    op.create_index("alarms_plot", "alarms", ["plot", "started_ns"])
    op.create_table(
        "alarm_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("alarm_id", sa.Integer, sa.ForeignKey("alarms.id", ondelete="CASCADE"), nullable=False),
        sa.Column("time_ns", sa.BigInteger, nullable=False),
        sa.Column("actor", sa.Text, nullable=False),
        sa.Column("action", sa.Text, nullable=False),
        sa.Column("detail", sa.Text, nullable=False, server_default="{}"),
    )
    op.create_index("alarm_events_alarm", "alarm_events", ["alarm_id", "time_ns"])


def downgrade() -> None:
    op.drop_table("alarm_events")
    op.drop_table("alarms")
