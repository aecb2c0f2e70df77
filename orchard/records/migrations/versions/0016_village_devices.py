"""Device ids unique per village, not per records DB: every village has its station ws-p01. The devices table's
key becomes (site, device); the devEUI stays unique (a LoRaWAN device's EUI is the world's).

Revision ID: 0016
Revises: 0015
"""

from __future__ import annotations

import warnings

from alembic import op
from sqlalchemy.exc import SAWarning

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def _key(columns: list[str]) -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE devices DROP CONSTRAINT devices_pkey")
        op.execute(f"ALTER TABLE devices ADD CONSTRAINT devices_pkey PRIMARY KEY ({', '.join(columns)})")
        return
    # SQLite cannot change a key in place: batch mode copies the table into one made with the new key (and says
    # so, in a warning, as it replaces the reflected key).
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Table '_alembic_tmp_devices' specifies columns", SAWarning)
        with op.batch_alter_table("devices", recreate="always") as t:
            t.create_primary_key("devices_pkey", columns)


def upgrade() -> None:
    _key(["site", "device"])


def downgrade() -> None:
    _key(["device"])
