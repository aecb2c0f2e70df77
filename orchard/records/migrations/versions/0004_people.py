"""Users, the plots they own or cover, and notifications with delivery and read receipts.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("name", sa.Text, primary_key=True),
        sa.Column("display", sa.Text, nullable=False),
        sa.Column("role", sa.Text, nullable=False),
        sa.Column("lang", sa.Text, nullable=False, server_default="zh"),
        sa.Column("phone", sa.Text),
        sa.Column("email", sa.Text),
        sa.Column("channels", sa.Text, nullable=False, server_default="[]"),
        sa.Column("quiet_from", sa.Text),
        sa.Column("quiet_to", sa.Text),
        sa.Column("active", sa.Boolean, nullable=False, server_default="1"),
    )
    op.create_table(
        "user_plots",
        sa.Column("user", sa.Text, sa.ForeignKey("users.name", ondelete="CASCADE"), primary_key=True),
        sa.Column("plot", sa.Text, primary_key=True),
        sa.Column("relation", sa.Text, nullable=False),
    )
    op.create_table(
        "notifications",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("alarm_id", sa.Integer, sa.ForeignKey("alarms.id", ondelete="CASCADE"), nullable=False),
        sa.Column("user", sa.Text, nullable=False),
        sa.Column("channel", sa.Text, nullable=False),
        sa.Column("stage", sa.Integer, nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("next_try_ns", sa.BigInteger, nullable=False),
        sa.Column("last_error", sa.Text),
        sa.Column("created_ns", sa.BigInteger, nullable=False),
        sa.Column("sent_ns", sa.BigInteger),
        sa.Column("read_ns", sa.BigInteger),
    )
    op.create_index("notifications_due", "notifications", ["status", "next_try_ns"])
    op.create_index("notifications_alarm", "notifications", ["alarm_id", "user"])


def downgrade() -> None:
    op.drop_table("notifications")
    op.drop_table("user_plots")
    op.drop_table("users")
