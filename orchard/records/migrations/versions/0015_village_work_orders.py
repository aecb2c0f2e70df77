"""Work orders belong to a village (villages sharing one records DB each have a plot p01); those opened for an
alarm take the alarm's village, the others stay NULL (the deployment's one village).

Revision ID: 0015
Revises: 0014
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("work_orders") as t:
        t.add_column(sa.Column("site", sa.Text))
    op.execute("UPDATE work_orders SET site = (SELECT alarms.site FROM alarms WHERE alarms.id = work_orders.alarm_id)"
               " WHERE alarm_id IS NOT NULL")


def downgrade() -> None:
    with op.batch_alter_table("work_orders") as t:
        t.drop_column("site")
