"""Villages sharing one records DB (the county, "1+31+N"): one active alarm per (site, source, type), since every
village has its plot p01 and its station ws-p01; silences belong to a village (NULL: every village, as before).

Revision ID: 0014
Revises: 0013
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

ACTIVE = sa.text("cleared_ns IS NULL")


def upgrade() -> None:
    op.drop_index("alarms_one_active", table_name="alarms")
    op.create_index("alarms_one_active", "alarms", ["site", "source", "type"], unique=True,
                    sqlite_where=ACTIVE, postgresql_where=ACTIVE)
    with op.batch_alter_table("silences") as t:
        t.add_column(sa.Column("site", sa.Text))


def downgrade() -> None:
    with op.batch_alter_table("silences") as t:
        t.drop_column("site")
    op.drop_index("alarms_one_active", table_name="alarms")
    op.create_index("alarms_one_active", "alarms", ["source", "type"], unique=True,
                    sqlite_where=ACTIVE, postgresql_where=ACTIVE)
