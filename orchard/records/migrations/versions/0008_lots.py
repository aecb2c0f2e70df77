"""Grading-line lots: a grower's fruit from one plot, with running totals.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "lots",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("site", sa.Text, nullable=False),
        sa.Column("line", sa.Text, nullable=False),
        sa.Column("plot", sa.Text, nullable=False),
        sa.Column("grower", sa.Text, nullable=False),
        sa.Column("variety", sa.Text, nullable=False, server_default=""),
        sa.Column("note", sa.Text, nullable=False, server_default=""),
        sa.Column("season", sa.Integer, nullable=False),
        sa.Column("started_ns", sa.BigInteger, nullable=False),
        sa.Column("started_by", sa.Text, nullable=False),
        sa.Column("ended_ns", sa.BigInteger),
        sa.Column("ended_by", sa.Text),
        sa.Column("fruit", sa.Integer, nullable=False, server_default="0"),
        sa.Column("weight_g", sa.Float, nullable=False, server_default="0"),
        sa.Column("counts", sa.Text, nullable=False, server_default="{}"),
        sa.Column("grade_weight", sa.Text, nullable=False, server_default="{}"),
        sa.Column("reasons", sa.Text, nullable=False, server_default="{}"),
        sa.Column("last_fruit_ns", sa.BigInteger),
    )
    op.create_index("lots_open", "lots", ["site", "line"], unique=True, sqlite_where=sa.text("ended_ns IS NULL"),
                    postgresql_where=sa.text("ended_ns IS NULL"))
    op.create_index("lots_plot", "lots", ["site", "plot", "season"])


def downgrade() -> None:
    op.drop_index("lots_plot", "lots")
    op.drop_index("lots_open", "lots")
    op.drop_table("lots")
