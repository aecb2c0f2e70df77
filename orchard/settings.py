"""Settings for every service, read from the environment (prefix ``ORCHARD_``) and nowhere else.

One pydantic model per section, ``extra="forbid"`` so a typo is an error, every field described.
Nested sections use ``__``: ``ORCHARD_INGEST__BATCH_SIZE=2000``.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qs, unquote, urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from orchard.redact import redact_url, url_secrets


class UnknownDevicePolicy(StrEnum):
    """What ingest does with telemetry from a device that is not in the registry."""

    ACCEPT = "accept"  # store it and list the device as new (demo, benchmark)
    HOLD = "hold"  # keep it in the dead-letter until an operator approves the device (production)
    REJECT = "reject"  # dead-letter it for good


def _redacted_repr_args(args: Any) -> Any:
    for name, value in args:
        yield name, redact_url(value) if isinstance(value, str) and name and name.endswith("_url") else value


class Section(BaseModel):
    """The shared base of every settings section, of the site file's models (orchard/site.py) and of each rule's
    settings (analytics/rules/base.py): unknown keys refused, frozen, and secrets never shown: a
    rejected value is not echoed in the error (it may be a URL with a password), and URLs in the repr have their
    passwords and tokens masked (SecretStr fields mask themselves)."""

    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    def __repr_args__(self) -> Any:
        return _redacted_repr_args(super().__repr_args__())


class IngestSettings(Section):
    """The ``orchard ingest`` service."""


    client_id: str = Field("orchard-ingest", description="MQTT client id; the persistent session is keyed on it.")
    shared_group: str | None = Field(
        None, description="Subscribe through $share/<group>/... so several ingest processes split the load."
    )
    batch_size: int = Field(2000, ge=1, description="Most messages written to the store in one batch.")
    batch_wait_ms: int = Field(100, ge=1, description="Longest a received message waits for its batch to fill.")
    queue_limit: int = Field(20000, ge=100, description="Received-but-unwritten messages held before reading pauses.")
    session_expiry_s: int = Field(
        7 * 24 * 3600, ge=0, description="How long the broker keeps the session (and its queue) while ingest is away."
    )
    writer_process: bool = Field(
        True, description="Validate and write in a child process, so the MQTT loop keeps a core (and GIL) to itself."
    )
    stats_interval_s: float = Field(10.0, gt=0, description="Seconds between counter log lines and stats points.")
    future_tolerance_s: int = Field(300, ge=0, description="Timestamps further ahead than this are rejected.")
    new_devices_per_hour: int = Field(200, ge=1, description="Device ids never seen before let into the registry "
                                      "(pending or new) per hour; beyond it their messages are dead letters, so a "
                                      "flood of invented ids cannot fill the devices page.")


class DashboardSettings(Section):
    """The ``orchard dashboard`` service."""


    refresh_s: int = Field(30, ge=2, description="Seconds between the command center's live refreshes.")
    wall_live_max: int = Field(4, ge=0, le=12, description="Camera tiles of the wall that may play live at once "
                               "(smart streaming: an rtsp camera plays live while it sees motion or an intrusion); "
                               "each costs its recorded stream's bitrate, the rest cost a thumbnail per refresh.")
    wall_live_hold_s: float = Field(30, ge=0, description="A wall tile stays live this long after the last motion.")
    address: str = Field("127.0.0.1", description="Where the dashboard listens: loopback unless told, behind the "
                         "reverse proxy on the same host. In a container 0.0.0.0 (compose publishes the port on "
                         "127.0.0.1 of the host only).")
    trusted_proxies: tuple[str, ...] = Field((), description="Addresses or networks (CIDR) of the reverse proxies "
                                             "whose X-Real-IP / X-Forwarded-For name the browser's address (for "
                                             "the per-address sign-in limit); from anyone else those headers are "
                                             "ignored.")
    stale_after_intervals: int = Field(
        3, ge=1, description="A device is offline, and its data stale, after this many missed reading intervals."
    )
    session_hours: float = Field(12, gt=0, description="A sign-in lasts at most this long.")
    idle_minutes: float = Field(120, gt=0, description="A session unused for this long ends (sign in again).")
    login_max_failures: int = Field(5, ge=1, description="Wrong passwords for one account within login_window_min "
                                    "before that account's sign-in is paused.")
    client_max_failures: int = Field(20, ge=1, description="Wrong passwords from one address (any account) within "
                                     "login_window_min before that address is paused.")
    login_window_min: float = Field(15, gt=0, description="The rate limit's window; the pause ends as it slides.")
    kiosk_secret: SecretStr | None = Field(None, description="HMAC key of the wall-screen links "
                                           "(`orchard admin kiosk-link`); without it there is no kiosk access.")
    oidc_metadata_url: str | None = Field(None, description="Single sign-on: the OpenID Connect provider's "
                                          ".well-known/openid-configuration URL. When set (with the client id and "
                                          "secret) the sign-in page offers it through st.login; the identity's "
                                          "e-mail must belong to an active user here.")
    oidc_client_id: str | None = Field(None, description="Single sign-on: this dashboard's client id there.")
    oidc_client_secret: SecretStr | None = Field(None, description="Single sign-on: the client secret.")
    oidc_cookie_secret: SecretStr | None = Field(None, description="Single sign-on: key of Streamlit's identity "
                                                 "cookie (random, 32+ characters).")

    @property
    def oidc(self) -> bool:
        return bool(self.oidc_metadata_url and self.oidc_client_id and self.oidc_client_secret
                    and self.oidc_cookie_secret)

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        for net in v:
            try:
                ipaddress.ip_network(net, strict=False)
            except ValueError:
                raise ValueError(f"{net!r} is not an address or a network such as 172.16.0.0/12") from None
        return v


class AnalyticsSettings(Section):

    every_s: float = Field(60, gt=0, description="Evaluate the rule pack at least this often.")
    serve: str = Field("", description="The towns or villages of the county file (ORCHARD_COUNTY_FILE) this process "
                       "serves, comma-separated (a town: every village of it), so a county runs one analytics "
                       "process per town; empty: ORCHARD_SITE alone.")
    min_gap_s: float = Field(0.2, ge=0, description="New telemetry triggers a quick cycle over its plots, but not "
                             "sooner than this after the last one began (a burst of messages is one cycle).")
    settle_s: float = Field(0.3, ge=0, description="After news arrives, wait this long so ingest has stored it.")
    digest_at: str = Field("07:30", pattern=r"^\d\d:\d\d$", description="Local time of the daily digest to "
                           "advisers and the command center (sent also on days with nothing to report).")
    work_order_severities: tuple[str, ...] = Field(("critical",), description="A crop alarm raised at one of these "
                                                   "severities opens a work order for the plot's adviser.")
    ingest_behind_s: float = Field(300, gt=0, description="Raise `ingest_behind` for the command center when the "
                                   "readings ingest stores arrive this late (median receipt minus device time), or "
                                   "ingest has reported nothing for this long; cleared below a third of it. Device "
                                   "offline alarms are held meanwhile.")


class ForecastSettings(Section):
    """Weather forecasts for the frost and heat pre-warnings (analytics/forecast). Off by default: the rules then
    warn from the readings alone, as they also do while the forecast service is down."""

    provider: Literal["none", "open-meteo", "file"] = Field("none", description="none; open-meteo (the public "
                                                             "API, or a self-hosted one at `url`); file (a saved "
                                                             "Open-Meteo answer at `file`, refreshed by others).")
    url: str = Field("https://api.open-meteo.com/v1/forecast", description="The Open-Meteo forecast endpoint.")
    models: str = Field("best_match", description="Open-Meteo weather model, e.g. best_match or cma_grapes_global.")
    file: Path | None = Field(None, description="The saved forecast for provider=file.")
    refresh_min: float = Field(60, gt=0, description="Fetch a new forecast this often.")
    retry_min: float = Field(10, gt=0, description="After a failed fetch, try again this much later.")
    max_age_h: float = Field(6, gt=0, description="A forecast older than this is not used (no pre-warnings).")
    timeout_s: float = Field(10, gt=0, description="Longest wait for the forecast service.")


class WarningsSettings(Section):
    """Official weather warnings in CAP (analytics/cap), matched to plots by area: a folder CAP files are dropped
    into, and/or a URL serving a CAP alert or an Atom/RSS feed of them. Neither set: no official warnings."""

    folder: Path | None = Field(None, description="A folder of CAP files (*.xml), read as they arrive.")
    url: str | None = Field(None, description="A CAP alert, or an Atom/RSS feed listing CAP alerts.")
    refresh_min: float = Field(5, gt=0, description="Look for new warnings this often.")
    timeout_s: float = Field(10, gt=0, description="Longest wait for the feed.")


class RetentionSettings(Section):
    """How long the records DB keeps what piles up, and how much one broken device may add to it. Analytics
    prunes once an hour; the audit log is kept longest."""

    dead_letters_days: float = Field(30, gt=0, description="Dead letters (refused messages) are kept this long.")
    notifications_days: float = Field(180, gt=0, description="Notifications and their delivery and read receipts.")
    alarm_events_days: float = Field(365, gt=0, description="The audit trail of alarms no longer active.")
    work_order_events_days: float = Field(730, gt=0, description="The history of closed work orders.")
    digests_days: float = Field(365, gt=0, description="Which daily digests went to whom.")
    login_attempts_days: float = Field(90, gt=0, description="Sign-in attempts (the rate limit needs minutes).")
    audit_days: float = Field(1825, gt=0, description="The admin audit log: five years by default.")
    dead_letter_payload_bytes: int = Field(4096, ge=0, description="Raw payload kept per dead letter; beyond it "
                                           "only the size and SHA-256 (a held message is kept whole).")
    dead_letters_per_device_min: int = Field(60, ge=1, description="Dead letters kept per device and minute; "
                                             "the rest are counted in one summary letter per minute.")
    dead_letters_per_min: int = Field(2000, ge=1, description="Dead letters kept per minute from all devices "
                                      "(a flood under ever new device ids).")


class CamerasSettings(Section):
    """The ``orchard cameras`` service: snapshots, retention and the camera health checks."""


    snapshot_dir: Path | None = Field(None, description="Where snapshots go; default: <data_dir>/snapshots.")
    thumb_px: int = Field(320, ge=64, le=1280, description="Thumbnail width in pixels.")
    jpeg_quality: int = Field(85, ge=30, le=100, description="JPEG quality of frames the service encodes itself.")
    max_days: float = Field(14, gt=0, description="Snapshots older than this are deleted, oldest first.")
    max_gb: float = Field(20, gt=0, description="Total size cap of the snapshot folder; the oldest go first.")
    evidence_days: float = Field(365, gt=0, description="Snapshots attached to alarms are kept this long, and never "
                                 "deleted to make room.")
    timeout_s: float = Field(5, gt=0, description="Give a camera this long to answer or deliver a frame.")
    unreachable_after: int = Field(2, ge=1, description="Failed snapshots in a row before a camera is unreachable.")
    frozen_after: int = Field(6, ge=2, description="Identical snapshots in a row before a camera counts as frozen.")
    dark_below: float = Field(18, ge=0, le=255, description="Mean brightness (0-255) under which the picture counts "
                              "as dark or covered.")
    blurred_below: float = Field(12, ge=0, description="Sharpness (variance of the Laplacian at thumbnail size) "
                                 "under which the picture counts as blurred.")
    bad_after: int = Field(3, ge=1, description="Dark or blurred snapshots in a row before the camera says so.")
    night_sun_deg: float = Field(-3, description="Sun elevation below which it is night (intrusion watch on).")
    video_dir: Path | None = Field(None, description="Rolling video buffers of the rtsp cameras (live view and the "
                                   "source of clips); default: <data_dir>/video.")
    ffmpeg: str = Field("ffmpeg", description="The ffmpeg program that copies each rtsp camera's stream.")
    buffer_s: float = Field(120, ge=10, le=3600, description="Seconds of video each rtsp camera keeps on disk "
                            "(the live view's window and how far back a clip can start).")
    segment_s: float = Field(1, gt=0, le=10, description="Target segment length; a segment is cut at the camera's "
                             "next keyframe, so it is at least the camera's keyframe interval (set the camera's "
                             "I-frame interval to 1-2 s for a short live delay).")
    clip_before_s: float = Field(15, ge=0, description="A clip around an event starts this long before it ...")
    clip_after_s: float = Field(15, ge=0, description="... and ends this long after it.")
    stall_after_s: float = Field(10, gt=0, description="A stream that delivers no frame this long has stalled: the "
                                 "camera is unreachable with that reason and ffmpeg is restarted.")
    low_fps_share: float = Field(0.5, gt=0, lt=1, description="A stream whose frame rate over the last "
                                 "`fps_window_s` falls below this share of its own declared rate is faulty.")
    fps_window_s: float = Field(10, ge=2, description="Window over which a stream's frame rate is measured.")


class GradingSettings(Section):
    """The fruit grading line: calibration, the weight model and the class limits (UNECE FFV-46 defaults)."""


    px_per_mm: float | None = Field(None, gt=0, description="Fixed image scale; without it every frame is "
                                    "calibrated by the ArUco marker on the rail.")
    marker_mm: float = Field(30, gt=0, description="Side of the ArUco marker (DICT_4X4_50) on the belt rail, in mm.")
    roi_top: float = Field(0.12, ge=0, lt=1, description="The belt starts this far down the frame (the rail with "
                           "the marker lies above it).")
    lanes: int = Field(5, ge=1, le=12, description="Lanes across the belt (for per-lane counts).")
    misshapen_dent: float = Field(0.024, gt=0, le=1, description="A fruit whose outline dents in deeper than "
                                  "this share of its width (a notch, a lobe, a fan shape) is misshapen.")
    size_offset_mm: float = Field(0.0, ge=-5, le=5, description="Added to every measured length and diameter: "
                                  "the camera's edge bias (JPEG colour subsampling shrinks fruit a little), "
                                  "fitted on reference fruit like g_per_cm3.")
    g_per_cm3: float = Field(1.05, gt=0, description="Weight per cm3 of the measured ellipsoid (pi/6 L D1 D2): "
                             "density times shape coefficient; `orchard grading calibrate` fits it.")
    extra_min_g: float = Field(90, description="Extra class: at least this weight ...")
    extra_min_ratio: float = Field(0.8, description="... and min/max equatorial diameter at least this.")
    class1_min_g: float = Field(70, description="Class I: at least this weight ...")
    class1_min_ratio: float = Field(0.7, description="... and this diameter ratio.")
    class2_min_g: float = Field(65, description="Class II: at least this weight; lighter fruit is rejected.")
    class1_max_defect_mm2: float = Field(100, ge=0, description="Class I: skin defects up to this area (1 cm2).")
    class2_max_defect_mm2: float = Field(200, ge=0, description="Class II: skin defects up to this area (2 cm2).")
    count_sizes: tuple[int, ...] = Field((18, 22, 25, 27, 30, 33, 36, 39, 42, 46), description="Count sizes "
                                         "(fruit per tray), biggest fruit first.")
    tray_g: float = Field(3600, gt=0, description="Tray weight the count sizes refer to.")


class NotifySettings(Section):
    """Where alarm messages go. Channel addresses with credentials in them are secrets: environment only."""


    public_url: str = Field("http://localhost:8501", description="The dashboard's address as recipients reach it "
                            "(the signed read/ack links point there).")
    link_secret: SecretStr | None = Field(None, description="HMAC key of the signed links; without it messages "
                                          "carry no link and reads are not recorded.")
    link_ttl_h: float = Field(72, gt=0, description="How long a link works.")
    dingtalk_url: SecretStr | None = Field(None, description="DingTalk custom robot webhook (with access_token).")
    dingtalk_secret: SecretStr | None = Field(None, description="The robot's signing secret (SEC...).")
    wecom_url: SecretStr | None = Field(None, description="WeCom group robot webhook (with key).")
    smtp_url: SecretStr | None = Field(None, description="smtp://user:pass@host:587?starttls=1 or smtps://...")
    mail_from: str = Field("orchard@localhost", description="Sender address of alarm e-mails.")
    webhook_url: str | None = Field(None, description="Generic JSON webhook for other systems.")
    webhook_secret: SecretStr | None = Field(None, description="HMAC-SHA256 key for X-Orchard-Signature.")
    sms_url: SecretStr | None = Field(None, description="SMS gateway URL (POST); the body is sms_body.")
    sms_body: str = Field('{"phone": "{phone}", "text": "{text}"}',
                          description="SMS request body; {phone} and {text} are filled in JSON-escaped.")
    mqtt_alerts: bool = Field(True, description="Publish alarm changes to <prefix>/<site>/alerts/<plot>.")
    retries: int = Field(6, ge=0, description="Attempts after the first before a delivery counts as failed.")
    retry_base_s: float = Field(10, gt=0, description="First retry after this; doubling each time, at most 10 min.")
    timeout_s: float = Field(10, gt=0, description="Give a receiver this long to answer.")
    group_wait_s: float = Field(30, ge=0, description="Hold a message this long so that the same rule's alarms "
                                "on other plots raised meanwhile go with it, as one message (orchard/grouping.py; "
                                "Alertmanager's group_wait). The in-app inbox never waits.")
    robot_posts_per_min: int = Field(18, ge=1, le=20, description="Posts per minute a group robot (DingTalk, "
                                     "WeCom) is sent at most; the vendors take 20, then refuse for 10 minutes. "
                                     "More alarms than this are combined into summary posts.")
    robot_throttle_min: float = Field(10, gt=0, description="How long a robot that answered \"too fast\" is left "
                                      "alone (DingTalk: 10 minutes).")


class MqttAccountsSettings(Section):
    """The broker's service accounts: each service connects with its own name and password (in its
    ORCHARD_MQTT_URL) and the ACL (app/mosquitto/acl) gives it only what it needs. These passwords are read
    only by `orchard admin mqtt-auth`, which writes the broker's password file; an account without one is left out
    (it cannot connect)."""


    auth_dir: Path | None = Field(None, description="Where `orchard admin mqtt-auth` writes the broker's passwd and "
                                  "acl files (the broker's /mosquitto/auth); default: <data_dir>/mqtt-auth.")
    ingest: SecretStr | None = Field(None, description="Password of `ingest`: reads telemetry and status.")
    ingest_2: SecretStr | None = Field(None, description="Password of `ingest_2`, a second ingest process sharing "
                                       "the subscriptions (the broker ties a session to its account, so each "
                                       "ingest process connects with its own).")
    ingest_3: SecretStr | None = Field(None, description="Password of `ingest_3`, a third ingest process.")
    analytics: SecretStr | None = Field(None, description="Password of `analytics`: reads telemetry, status and "
                                        "camera reports; publishes alarms.")
    cameras: SecretStr | None = Field(None, description="Password of `cameras`: publishes camera reports.")
    simulator: SecretStr | None = Field(None, description="Password of `simulator` (demo profile): publishes "
                                        "telemetry and status as any device of the site.")
    lora: SecretStr | None = Field(None, description="Password of `lora`: the LoRaWAN network server's MQTT "
                                   "integration, publishing uplinks.")


class Settings(BaseSettings):
    """Everything a service needs to find its peers. Secrets come only from these variables."""

    # An empty variable counts as unset: compose passes optional secrets as `${VAR:-}`.
    model_config = SettingsConfigDict(
        env_prefix="ORCHARD_", env_nested_delimiter="__", extra="forbid", frozen=True, env_ignore_empty=True,
        hide_input_in_errors=True,  # a rejected value may be a URL with its password: errors name the field only
    )

    def __repr_args__(self) -> Any:
        return _redacted_repr_args(super().__repr_args__())

    mqtt_url: str = Field(
        "mqtt://127.0.0.1:1883", description="mqtt://[user:pass@]host:port, or mqtts:// for TLS."
    )
    mqtt_protocol: Literal["5", "3.1.1"] = Field("5", description="MQTT protocol version spoken by the services.")
    mqtt_prefix: str = Field("orchard", description="First topic level of every orchard topic.")
    store_url: str = Field(
        "sqlite:///./orchard-data/timeseries.sqlite",
        description="influxdb://[user:pass@]host:port/<db>[?token=...] (influxdbs:// for TLS) or sqlite:///<path>.",
    )
    data_dir: Path = Field(Path("./orchard-data"), description="Spool, dead-letter and registry files live here.")
    db_url: str | None = Field(
        None, description="Records DB (registry, users, alarms, work orders): postgresql://user:pass@host/db or "
        "sqlite:///<path>; default: records.sqlite in the data dir."
    )
    site: str = Field("sunzigou", description="Site id: the second topic level and the `site` tag.")
    site_file: Path | None = Field(
        None, description="site.toml (plots, devices, time zone); default: the shipped one for ORCHARD_SITE."
    )
    county_file: Path | None = Field(
        None, description="county.toml: the county's towns and villages (orchard/county.py), for notices and the "
        "tiers of staff; ORCHARD_SITE must be one of its villages. Without it the county is this one village.")
    unknown_devices: UnknownDevicePolicy = Field(
        UnknownDevicePolicy.HOLD, description="accept, hold (production default) or reject unknown devices."
    )
    ingest: IngestSettings = Field(default_factory=IngestSettings, description="The ingest service.")
    dashboard: DashboardSettings = Field(default_factory=DashboardSettings, description="The dashboard.")
    analytics: AnalyticsSettings = Field(default_factory=AnalyticsSettings, description="The analytics service.")
    notify: NotifySettings = Field(default_factory=NotifySettings, description="Alarm messages.")
    cameras: CamerasSettings = Field(default_factory=CamerasSettings, description="The cameras service.")
    grading: GradingSettings = Field(default_factory=GradingSettings, description="The fruit grading line.")
    forecast: ForecastSettings = Field(default_factory=ForecastSettings, description="Weather forecasts.")
    warnings: WarningsSettings = Field(default_factory=WarningsSettings, description="Official weather warnings.")
    retention: RetentionSettings = Field(default_factory=RetentionSettings,
                                         description="How long records are kept; dead-letter limits.")
    mqtt_accounts: MqttAccountsSettings = Field(default_factory=MqttAccountsSettings,
                                                description="The broker's service accounts.")

    @property
    def records_url(self) -> str:
        return self.db_url or f"sqlite:///{self.data_dir}/records.sqlite"

    @property
    def snapshot_dir(self) -> Path:
        return self.cameras.snapshot_dir or self.data_dir / "snapshots"

    @property
    def video_dir(self) -> Path:
        return self.cameras.video_dir or self.data_dir / "video"

    @property
    def mqtt_auth_dir(self) -> Path:
        return self.mqtt_accounts.auth_dir or self.data_dir / "mqtt-auth"

    def line_frame(self, line: str) -> Path:
        """The grading line's last annotated frame: the grading service writes it, the dashboard shows it."""
        return self.data_dir / "grading" / f"{line}.jpg"

    @field_validator("mqtt_url")
    @classmethod
    def _check_mqtt(cls, v: str) -> str:
        parse_mqtt_url(v)
        return v

    @field_validator("store_url")
    @classmethod
    def _check_store(cls, v: str) -> str:
        parse_store_url(v)
        return v


@dataclass(frozen=True, slots=True)
class MqttTarget:
    host: str
    port: int
    tls: bool
    username: str | None
    password: str | None


@dataclass(frozen=True, slots=True)
class StoreTarget:
    kind: Literal["influxdb", "sqlite"]
    path: Path | None = None  # sqlite
    base_url: str = ""  # influxdb: http(s)://host:port
    database: str = ""
    username: str | None = None
    password: str | None = None
    token: str | None = None


def parse_mqtt_url(url: str) -> MqttTarget:
    parts = urlsplit(url)
    if parts.scheme not in ("mqtt", "mqtts"):
        raise ValueError(f"ORCHARD_MQTT_URL must start with mqtt:// or mqtts://, got {redact_url(url)!r}")
    if not parts.hostname:
        raise ValueError(f"ORCHARD_MQTT_URL has no host: {redact_url(url)!r}")
    tls = parts.scheme == "mqtts"
    return MqttTarget(
        host=parts.hostname,
        port=parts.port or (8883 if tls else 1883),
        tls=tls,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
    )


def parse_store_url(url: str) -> StoreTarget:
    parts = urlsplit(url)
    if parts.scheme == "sqlite":
        # sqlite:///relative/or/absolute -> everything after the third slash, as SQLAlchemy does
        raw = url[len("sqlite:///") :] if url.startswith("sqlite:///") else ""
        if not raw:
            raise ValueError("ORCHARD_STORE_URL sqlite needs a path, like sqlite:///data/ts.sqlite: "
                             f"{redact_url(url)!r}")
        return StoreTarget(kind="sqlite", path=Path(raw))
    if parts.scheme in ("influxdb", "influxdbs"):
        db = parts.path.strip("/")
        if not parts.hostname or not db:
            raise ValueError(f"ORCHARD_STORE_URL must look like influxdb://host:8086/<database>: {redact_url(url)!r}")
        token = parse_qs(parts.query).get("token", [None])[0]
        http = "https" if parts.scheme == "influxdbs" else "http"
        return StoreTarget(
            kind="influxdb",
            base_url=f"{http}://{parts.hostname}:{parts.port or 8086}",
            database=db,
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            token=token,
        )
    raise ValueError("ORCHARD_STORE_URL must start with influxdb://, influxdbs:// or sqlite:///, got "
                     f"{redact_url(url)!r}")


def secret_values(settings: BaseModel) -> list[str]:
    """Every secret the settings hold: SecretStr values (whole, and the credentials inside those that are URLs)
    and the passwords and tokens of plain URL settings; for `orchard.redact.hide` at start."""
    out: list[str] = []
    for name, value in settings:
        if isinstance(value, SecretStr):
            out += [value.get_secret_value(), *url_secrets(value.get_secret_value())]
        elif isinstance(value, BaseModel):
            out += secret_values(value)
        elif isinstance(value, str) and name.endswith("_url"):
            out += url_secrets(value)
    return out
