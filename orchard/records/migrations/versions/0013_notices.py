"""The county (issue "1+31+N"): where each person belongs (village, or town for town staff), and notices with
read status: the notice, one row per person it was sent to (read, 收到, reminders), one per message sent.

Revision ID: 0013
Revises: 0012
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users") as t:
        t.add_column(sa.Column("village", sa.Text))
        t.add_column(sa.Column("town", sa.Text))
    op.create_table(
        "notices",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("created_ns", sa.BigInteger, nullable=False),
        sa.Column("author", sa.Text, nullable=False),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("body", sa.Text, nullable=False, server_default=""),
        sa.Column("urgency", sa.Text, nullable=False, server_default="normal"),
        sa.Column("level", sa.Text),
        sa.Column("plots", sa.Text, nullable=False, server_default="[]"),
        sa.Column("audience", sa.Text, nullable=False, server_default="{}"),
        sa.Column("attachment", sa.Text),
        sa.Column("attachment_name", sa.Text),
        sa.Column("confirm", sa.Boolean, nullable=False, server_default="0"),
        sa.Column("remind_every_min", sa.Integer),
        sa.Column("remind_until_ns", sa.BigInteger),
        sa.Column("withdrawn_ns", sa.BigInteger),
    )
    op.create_index("notices_time", "notices", ["created_ns"])
    op.create_table(
        "notice_recipients",
        sa.Column("notice_id", sa.Integer, sa.ForeignKey("notices.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("user", sa.Text, primary_key=True),
        sa.Column("village", sa.Text, nullable=False),
        sa.Column("town", sa.Text, nullable=False),
        sa.Column("role", sa.Text, nullable=False),
        sa.Column("read_ns", sa.BigInteger),
        sa.Column("confirmed_ns", sa.BigInteger),
        sa.Column("reminders", sa.Integer, nullable=False, server_default="0"),
        sa.Column("reminded_ns", sa.BigInteger),
        sa.Column("wanted", sa.Text),
    )
    op.create_index("notice_recipients_user", "notice_recipients", ["user", "notice_id"])
    op.create_table(
        "notice_deliveries",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("notice_id", sa.Integer, sa.ForeignKey("notices.id", ondelete="CASCADE"), nullable=False),
        sa.Column("user", sa.Text, nullable=False),
        sa.Column("channel", sa.Text, nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("next_try_ns", sa.BigInteger, nullable=False),
        sa.Column("last_error", sa.Text),
        sa.Column("created_ns", sa.BigInteger, nullable=False),
        sa.Column("sent_ns", sa.BigInteger),
    )
    op.create_index("notice_deliveries_due", "notice_deliveries", ["status", "next_try_ns"])
    op.create_index("notice_deliveries_notice", "notice_deliveries", ["notice_id", "user"])


def downgrade() -> None:
    op.drop_table("notice_deliveries")
    op.drop_table("notice_recipients")
    op.drop_table("notices")
    with op.batch_alter_table("users") as t:
        t.drop_column("town")
        t.drop_column("village")
