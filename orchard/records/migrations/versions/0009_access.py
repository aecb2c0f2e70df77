"""Access control: password hashes, sessions, sign-in attempts, device MQTT credentials, the admin audit log.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "passwords",
        sa.Column("user", sa.Text, sa.ForeignKey("users.name", ondelete="CASCADE"), primary_key=True),
        sa.Column("hash", sa.Text, nullable=False),
        sa.Column("changed_ns", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "sessions",
        sa.Column("token_hash", sa.Text, primary_key=True),
        sa.Column("user", sa.Text, sa.ForeignKey("users.name", ondelete="CASCADE"), nullable=False),
        sa.Column("created_ns", sa.BigInteger, nullable=False),
        sa.Column("expires_ns", sa.BigInteger, nullable=False),
        sa.Column("seen_ns", sa.BigInteger, nullable=False),
        sa.Column("via", sa.Text, nullable=False),
    )
    op.create_index("sessions_user", "sessions", ["user"])
    op.create_table(
        "login_attempts",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("user", sa.Text, nullable=False),
        sa.Column("client", sa.Text, nullable=False),
        sa.Column("time_ns", sa.BigInteger, nullable=False),
        sa.Column("ok", sa.Boolean, nullable=False),
    )
    op.create_index("login_attempts_user", "login_attempts", ["user", "time_ns"])
    op.create_index("login_attempts_client", "login_attempts", ["client", "time_ns"])
    op.create_table(
        "device_keys",
        sa.Column("device", sa.Text, primary_key=True),
        sa.Column("topic", sa.Text, nullable=False),
        sa.Column("hash", sa.Text, nullable=False),
        sa.Column("created_ns", sa.BigInteger, nullable=False),
        sa.Column("revoked_ns", sa.BigInteger),
    )
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("time_ns", sa.BigInteger, nullable=False),
        sa.Column("actor", sa.Text, nullable=False),
        sa.Column("action", sa.Text, nullable=False),
        sa.Column("target", sa.Text, nullable=False, server_default=""),
        sa.Column("detail", sa.Text, nullable=False, server_default="{}"),
    )
    op.create_index("audit_time", "audit_log", ["time_ns"])


def downgrade() -> None:
    op.drop_index("audit_time", "audit_log")
    op.drop_table("audit_log")
    op.drop_table("device_keys")
    op.drop_index("login_attempts_client", "login_attempts")
    op.drop_index("login_attempts_user", "login_attempts")
    op.drop_table("login_attempts")
    op.drop_index("sessions_user", "sessions")
    op.drop_table("sessions")
    op.drop_table("passwords")
