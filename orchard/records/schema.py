"""The records database's tables (SQLAlchemy Core). Alembic migrations in orchard/records/migrations/ create and change
them; a test holds the two to the same schema.

Times are integer nanoseconds since the epoch (UTC), as everywhere else: BigInteger, since they pass 2**63 only
in the year 2262.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Table,
    Text,
    text,
)

metadata = MetaData()

devices = Table(
    "devices",
    metadata,
    Column("device", Text, primary_key=True),  # unique per village: the key is (site, device) (migration 0016)
    Column("site", Text, primary_key=True),
    Column("plot", Text, nullable=False),
    Column("status", Text, nullable=False, server_default="approved"),  # approved | new | pending | rejected
    Column("kind", Text, nullable=False, server_default=""),
    Column("dev_eui", Text, unique=True),
    Column("online", Boolean),
    Column("status_changed_ns", BigInteger),
    Column("last_seen_ns", BigInteger),
    Column("first_seen_ns", BigInteger),
    Column("extra", Text, nullable=False, server_default="{}"),  # JSON object
    Column("profile", Text),  # sensors/profiles/<id>.toml: how its payload maps to readings
    Column("unmapped", Text),  # JSON list: the payload fields its profile does not know, as last reported
    Column("unmapped_day", Text),  # the UTC day they were reported (once a day, not per uplink)
    Column("clock_skew_s", BigInteger),  # how far off its gateway's clock was, when last found wrong (> 5 min)
    Column("last_payload", LargeBinary),  # the last stored payload (capped), refreshed every few minutes
    Column("last_payload_ns", BigInteger),
    Column("last_topic", Text),
)

dead_letters = Table(
    "dead_letters",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("received_ns", BigInteger, nullable=False),
    Column("topic", Text, nullable=False),
    Column("site", Text),
    Column("plot", Text),
    Column("device", Text),
    Column("kind", Text, nullable=False, server_default=""),  # the reason's text before the first colon
    Column("reason", Text, nullable=False),
    Column("payload", LargeBinary, nullable=False),
    Column("held", Boolean, nullable=False, server_default="0"),  # waiting for the device to be approved
    Column("replayed_ns", BigInteger),  # set when a held payload went into the store
    # The payload kept is capped (ORCHARD_RETENTION__DEAD_LETTER_PAYLOAD_BYTES, held ones whole): its full size
    # and hash stay. NULL in rows from before migration 0010, whose payload is whole.
    Column("payload_size", BigInteger),
    Column("payload_sha256", Text),
    Index("dead_letters_device", "device", "received_ns"),
    Index("dead_letters_time", "received_ns"),
)


def reason_kind(reason: str) -> str:
    return reason.split(":", 1)[0]

# -- alarms (README "Alarms and the closed loop") --------------------------------------------------------
alarms = Table(
    "alarms",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("site", Text, nullable=False),
    Column("source", Text, nullable=False),  # what it is about: "plot:p01", "device:ws-p01", "camera:c1"
    Column("type", Text, nullable=False),  # the rule type: spring_frost, device_offline, ...
    Column("severity", Text, nullable=False),  # info | warning | major | critical
    Column("plot", Text),
    Column("device", Text),
    Column("started_ns", BigInteger, nullable=False),
    Column("updated_ns", BigInteger, nullable=False),
    Column("cleared_ns", BigInteger),  # NULL while active
    Column("acked_ns", BigInteger),
    Column("acked_by", Text),
    Column("assignee", Text),
    Column("message", Text, nullable=False, server_default=""),  # i18n key
    Column("details", Text, nullable=False, server_default="{}"),  # JSON: values, thresholds, i18n params
    # One active alarm per (site, source, type): a partial unique index, which SQLite and PostgreSQL both enforce.
    # The site is in it because villages sharing a records DB each have a plot p01 (migration 0014).
    Index("alarms_one_active", "site", "source", "type", unique=True, sqlite_where=text("cleared_ns IS NULL"),
          postgresql_where=text("cleared_ns IS NULL")),
    Index("alarms_plot", "plot", "started_ns"),
)

alarm_events = Table(
    "alarm_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("alarm_id", Integer, ForeignKey("alarms.id", ondelete="CASCADE"), nullable=False),
    Column("time_ns", BigInteger, nullable=False),
    Column("actor", Text, nullable=False),  # a user name, or "system"
    Column("action", Text, nullable=False),  # raised | severity | cleared | acked | assigned | commented
    Column("detail", Text, nullable=False, server_default="{}"),  # JSON
    Index("alarm_events_alarm", "alarm_id", "time_ns"),
)

silences = Table(
    "silences",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("plot", Text),  # NULL: any plot
    Column("device", Text),  # NULL: any device
    Column("rule", Text),  # NULL: any rule type
    Column("starts_ns", BigInteger, nullable=False),
    Column("ends_ns", BigInteger, nullable=False),
    Column("reason", Text, nullable=False),
    Column("created_by", Text, nullable=False),
    Column("created_ns", BigInteger, nullable=False),
    Column("site", Text),  # the village it is for; NULL: every village (rows from before migration 0014)
    Index("silences_ends", "ends_ns"),
)

# -- people and notifications -------------------------------------------------------------------------------
users = Table(
    "users",
    metadata,
    Column("name", Text, primary_key=True),  # login name
    Column("display", Text, nullable=False),
    Column("role", Text, nullable=False),  # farmer | adviser | center | kiosk
    Column("lang", Text, nullable=False, server_default="zh"),
    Column("phone", Text),
    Column("email", Text),
    Column("channels", Text, nullable=False, server_default="[]"),  # JSON list: dingtalk, wecom, email, sms, ...
    Column("quiet_from", Text),  # local "HH:MM"; with quiet_to, no non-critical messages in between
    Column("quiet_to", Text),
    Column("active", Boolean, nullable=False, server_default="1"),
    # Where a person belongs in the county ("1+31+N", orchard/county.py): village staff, farmers and advisers
    # their village (NULL: the deployment's one village, as before a county file), town staff their town.
    Column("village", Text),
    Column("town", Text),
)

user_plots = Table(
    "user_plots",
    metadata,
    Column("user", Text, ForeignKey("users.name", ondelete="CASCADE"), primary_key=True),
    Column("plot", Text, primary_key=True),
    Column("relation", Text, nullable=False),  # owns (farmer) | covers (adviser)
)

notifications = Table(
    "notifications",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("alarm_id", Integer, ForeignKey("alarms.id", ondelete="CASCADE"), nullable=False),
    Column("user", Text, nullable=False),
    Column("channel", Text, nullable=False),
    Column("stage", Integer, nullable=False),  # escalation stage: 0 farmer, 1 adviser, 2 command center
    Column("kind", Text, nullable=False),  # alarm | reminder | cleared
    Column("status", Text, nullable=False),  # pending | sent | failed
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("next_try_ns", BigInteger, nullable=False),
    Column("last_error", Text),
    Column("created_ns", BigInteger, nullable=False),
    Column("sent_ns", BigInteger),
    Column("read_ns", BigInteger),  # the signed link was opened (or the inbox entry seen)
    Index("notifications_due", "status", "next_try_ns"),
    Index("notifications_alarm", "alarm_id", "user"),
)

# -- notices (通知): a message a person writes, with who has read it (orchard/records/notices.py) ----------------
notices = Table(
    "notices",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("created_ns", BigInteger, nullable=False),
    Column("author", Text, nullable=False),  # user name
    Column("title", Text, nullable=False),
    Column("body", Text, nullable=False, server_default=""),
    Column("urgency", Text, nullable=False, server_default="normal"),  # normal | urgent
    Column("level", Text),  # an official warning's colour: blue | yellow | orange | red; NULL otherwise
    Column("plots", Text, nullable=False, server_default="[]"),  # JSON ["<village>/<plot>", ...] it concerns
    Column("audience", Text, nullable=False, server_default="{}"),  # JSON: towns, villages, roles, people asked for
    Column("attachment", Text),  # path under the data dir
    Column("attachment_name", Text),  # the file's name as uploaded
    Column("confirm", Boolean, nullable=False, server_default="0"),  # asks each reader for 收到
    Column("remind_every_min", Integer),  # remind the unread this often (NULL: only by hand)
    Column("remind_until_ns", BigInteger),
    Column("withdrawn_ns", BigInteger),
    Index("notices_time", "created_ns"),
)

notice_recipients = Table(
    "notice_recipients",
    metadata,
    Column("notice_id", Integer, ForeignKey("notices.id", ondelete="CASCADE"), primary_key=True),
    Column("user", Text, primary_key=True),  # kept when the person is later removed: the record stays true
    Column("village", Text, nullable=False),  # where they were when it was sent ("" for town and county staff)
    Column("town", Text, nullable=False),
    Column("role", Text, nullable=False),
    Column("read_ns", BigInteger),  # the first open of their link (or of the notice on the dashboard)
    Column("confirmed_ns", BigInteger),  # 收到
    Column("reminders", Integer, nullable=False, server_default="0"),
    Column("reminded_ns", BigInteger),
    Column("wanted", Text),  # the message the analytics service is to queue next: notice | reminder; NULL: none
    Index("notice_recipients_user", "user", "notice_id"),
)

notice_deliveries = Table(
    "notice_deliveries",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("notice_id", Integer, ForeignKey("notices.id", ondelete="CASCADE"), nullable=False),
    Column("user", Text, nullable=False),
    Column("channel", Text, nullable=False),
    Column("kind", Text, nullable=False),  # notice | reminder
    Column("status", Text, nullable=False),  # pending | sent | failed
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("next_try_ns", BigInteger, nullable=False),
    Column("last_error", Text),
    Column("created_ns", BigInteger, nullable=False),
    Column("sent_ns", BigInteger),
    Index("notice_deliveries_due", "status", "next_try_ns"),
    Index("notice_deliveries_notice", "notice_id", "user"),
)

# -- work orders (工单) ----------------------------------------------------------------------------------------
work_orders = Table(
    "work_orders",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("alarm_id", Integer, ForeignKey("alarms.id", ondelete="SET NULL")),
    Column("plot", Text),
    Column("title", Text, nullable=False),
    Column("description", Text, nullable=False, server_default=""),
    Column("source", Text, nullable=False),  # alarm | manual | photo
    Column("state", Text, nullable=False),  # new | assigned | accepted | on_site | resolved | follow_up | closed
    Column("assignee", Text),
    Column("created_by", Text, nullable=False),
    Column("created_ns", BigInteger, nullable=False),
    Column("state_since_ns", BigInteger, nullable=False),
    Column("due_ns", BigInteger),  # the current state's SLA deadline; NULL once closed
    Column("closed_ns", BigInteger),
    Column("site", Text),  # the village (migration 0015); NULL in rows from before: the deployment's one village
    Index("work_orders_state", "state", "due_ns"),
)

work_order_events = Table(
    "work_order_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("work_order_id", Integer, ForeignKey("work_orders.id", ondelete="CASCADE"), nullable=False),
    Column("time_ns", BigInteger, nullable=False),
    Column("actor", Text, nullable=False),
    Column("from_state", Text),
    Column("to_state", Text),
    Column("note", Text, nullable=False, server_default=""),
    Column("photo", Text),  # path under the data dir
    Column("photo_kind", Text),  # before | after | report
    Index("work_order_events_wo", "work_order_id", "time_ns"),
)

digests = Table(
    "digests",
    metadata,
    Column("day", Text, primary_key=True),  # local date, "2026-03-15"
    Column("user", Text, primary_key=True),
    Column("channel", Text, primary_key=True),
    Column("status", Text, nullable=False),  # sent | failed
    Column("sent_ns", BigInteger, nullable=False),
    Column("error", Text),
)

evidence = Table(
    "evidence",
    metadata,
    Column("alarm_id", Integer, ForeignKey("alarms.id", ondelete="CASCADE"), primary_key=True),
    Column("path", Text, primary_key=True),  # full frame, relative to the snapshot root (orchard/records/snapshots.py)
    Column("camera", Text, nullable=False),
    Column("time_ns", BigInteger, nullable=False),  # when the snapshot was taken
    Column("thumb", Text, nullable=False),
    Index("evidence_path", "path"),
)

# A grower's fruit through a grading line (orchard/records/lots.py). The running totals are kept here by the grading
# service (every fruit is also a point in the store), so reports and season histories need no store scan.
lots = Table(
    "lots",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("site", Text, nullable=False),
    Column("line", Text, nullable=False),
    Column("plot", Text, nullable=False),
    Column("grower", Text, nullable=False),
    Column("variety", Text, nullable=False, server_default=""),
    Column("note", Text, nullable=False, server_default=""),
    Column("season", Integer, nullable=False),  # local year the lot started (one harvest a year)
    Column("started_ns", BigInteger, nullable=False),
    Column("started_by", Text, nullable=False),
    Column("ended_ns", BigInteger),
    Column("ended_by", Text),
    Column("fruit", Integer, nullable=False, server_default="0"),
    Column("weight_g", Float, nullable=False, server_default="0"),
    Column("counts", Text, nullable=False, server_default="{}"),  # JSON {"<grade>:<count size or ->": n}
    Column("grade_weight", Text, nullable=False, server_default="{}"),  # JSON {grade: grams}
    Column("reasons", Text, nullable=False, server_default="{}"),  # JSON {reason: n} (rejected fruit only)
    Column("last_fruit_ns", BigInteger),
    # one open lot per line: the grading service knows whose fruit is on the belt
    Index("lots_open", "site", "line", unique=True, sqlite_where=text("ended_ns IS NULL"),
          postgresql_where=text("ended_ns IS NULL")),
    Index("lots_plot", "site", "plot", "season"),
)

# Dashboard sign-in (orchard/records/accounts.py): one argon2 hash per user, server-side sessions (only a hash of the
# token is stored, so a leaked table gives no way in), and every sign-in attempt for the rate limit.
passwords = Table(
    "passwords",
    metadata,
    Column("user", Text, ForeignKey("users.name", ondelete="CASCADE"), primary_key=True),
    Column("hash", Text, nullable=False),  # argon2id, PHC string
    Column("changed_ns", BigInteger, nullable=False),
)

sessions = Table(
    "sessions",
    metadata,
    Column("token_hash", Text, primary_key=True),  # sha256 of the token, hex
    Column("user", Text, ForeignKey("users.name", ondelete="CASCADE"), nullable=False),
    Column("created_ns", BigInteger, nullable=False),
    Column("expires_ns", BigInteger, nullable=False),
    Column("seen_ns", BigInteger, nullable=False),  # last use, for the idle timeout
    Column("via", Text, nullable=False),  # password | oidc
    Index("sessions_user", "user"),
)

login_attempts = Table(
    "login_attempts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("user", Text, nullable=False),  # as typed, so attempts on unknown names count too
    Column("client", Text, nullable=False),  # the browser's address as the server saw it
    Column("time_ns", BigInteger, nullable=False),
    Column("ok", Boolean, nullable=False),
    Index("login_attempts_user", "user", "time_ns"),
    Index("login_attempts_client", "client", "time_ns"),
)

# MQTT credentials of each device (orchard/devicekeys.py); the broker reads the password file made from them.
device_keys = Table(
    "device_keys",
    metadata,
    Column("device", Text, primary_key=True),  # the MQTT user name is the device id
    Column("topic", Text, nullable=False),  # the one topic tree it may publish under
    Column("hash", Text, nullable=False),  # Mosquitto's PBKDF2-SHA512 ($7$) line
    Column("created_ns", BigInteger, nullable=False),
    Column("revoked_ns", BigInteger),
)

# Every admin action (orchard admin ..., and changes made on the dashboard's admin tools), newest last.
audit_log = Table(
    "audit_log",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("time_ns", BigInteger, nullable=False),
    Column("actor", Text, nullable=False),
    Column("action", Text, nullable=False),
    Column("target", Text, nullable=False, server_default=""),
    Column("detail", Text, nullable=False, server_default="{}"),  # JSON object; never a secret
    Index("audit_time", "time_ns"),
)
