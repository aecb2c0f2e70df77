"""Camera snapshots attached to alarms as evidence (retention keeps them longer).

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "evidence",
        sa.Column("alarm_id", sa.Integer, sa.ForeignKey("alarms.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("path", sa.Text, primary_key=True),
        sa.Column("camera", sa.Text, nullable=False),
        sa.Column("time_ns", sa.BigInteger, nullable=False),
        sa.Column("thumb", sa.Text, nullable=False),
    )
    op.create_index("evidence_path", "evidence", ["path"])


def downgrade() -> None:
    op.drop_index("evidence_path", "evidence")
    op.drop_table("evidence")
