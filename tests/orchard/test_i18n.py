"""Every text in both languages: same keys, same placeholders, and every key the code uses exists."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from analytics.rules import load
from dashboard.risk import LEVELS
from orchard import i18n
from orchard.models import CAMERA_HEALTH, GRADES, REJECT_REASONS, SEVERITIES
from orchard.records.notices import Urgency
from orchard.records.people import CHANNELS, ROLES
from orchard.records.workorders import STATES
from orchard.site import VARIETIES

ROOT = Path(__file__).resolve().parents[2]
# Any string literal that looks like "<section>.<name>" for a section of the catalogue: keys are passed to t()
# directly or travel in tuples first (risk reasons, chart titles).
SECTIONS = sorted({k.split(".")[0] for k in i18n.messages("zh")})
ALT = "|".join(SECTIONS)
STATIC = re.compile(rf"""["']((?:{ALT})\.(?!py["'])[a-z_0-9]*[a-z0-9])["']""")  # (?!py: not "app.py"
# Keys built at run time, from their known families.
DYNAMIC = (
    [f"variety.{v}" for v in VARIETIES]
    + [f"risk.level_{lvl}" for lvl in LEVELS]
    + [f"dev.kind_{k}" for k in ("weather_station", "soil_probe", "gateway")]
    + [f"dev.state_{s}" for s in ("online", "offline", "pending", "rejected")]
    + [f"env.by_{b}" for b in ("device", "plot")]
    + [f"env.range_{r}" for r in ("6h", "24h", "7d", "30d", "90d", "1y", "custom")]
    + [f"alarm.severity_{s}" for s in SEVERITIES]
    + [f"alarm.{rule}{part}" for rule in load() for part in ("", "_text", "_advice")]
    + ["alarm.spring_frost_wet_bulb_text", "alarm.spring_frost_predicted_text",
       "alarm.spring_frost_cold_day_text", "alarm.spring_frost_forecast_text", "alarm.heat_forecast_text",
       "alarm.device_offline_never_text",
       "alarm.camera_offline_silent_text", "alarm.line_stopped_silent_text", "alarm.line_stopped_camera_text",
       "alarm.low_battery_pct_text"]
    + [f"alarm.work_order_overdue{part}" for part in ("", "_advice")]
    + [f"alarm.ingest_behind{part}" for part in ("", "_advice")]
    + [f"alarm.psa_risk_{x}_advice" for x in ("winter", "spring", "summer", "leaf_fall")]
    + ["alarm.psa_risk_susceptible_text"]
    + [f"alarm.level_{lvl}" for lvl in ("blue", "yellow", "orange", "red")]
    + [f"alarms.bt_{k}" for k in ("was", "would", "new", "gone", "moved", "same")]
    + [f"alarm.channel_{part}" for part in ("failed", "failed_advice", "refused_text", "throttled_text")]
    + [f"notify.channel_{c}" for c in ("dingtalk", "wecom", "sms", "webhook", "email")]
    + [f"alarms.role_{r}" for r in ROLES]
    + [f"alarms.kind_{k}" for k in ("alarm", "reminder", "cleared")]
    + [f"alarms.outcome_{k}" for k in ("frost", "no_frost")]
    + [f"alarms.status_{s}" for s in ("pending", "sent", "failed")]
    + [f"notice.ch_{c}" for c in CHANNELS] + [f"notice.st_{s}" for s in ("pending", "sent", "failed")]
    + [f"notice.urgency_{u}" for u in Urgency] + [f"county.state_{s}" for s in ("red", "yellow", "green")]
    + [f"alarms.action_{a}" for a in ("raised", "severity", "cleared", "acked", "assigned", "commented",
                                                           "evidence", "handled")]
    + [f"receipt.{reason}" for reason in ("expired", "tampered")]
    + [f"auth.{reason}" for reason in ("bad", "inactive", "kiosk_expired", "kiosk_tampered")]
    + [f"wo.state_{s}" for s in STATES]
    + [f"digest.{k}" for k in ("subject", "quiet", "alarms", "orders", "devices")]
    + [f"wo.photo_{k}" for k in ("report", "before", "after")]
    + [f"cam.health_{h}" for h in CAMERA_HEALTH if h not in ("ok", "unreachable")]  # unreachable shows as down
    + [f"cam.state_{s}" for s in ("live", "problem", "down", "never")]
    + [f"grade.{g}" for g in GRADES] + [f"grade.reason_{r}" for r in REJECT_REASONS]
    + [f"grade.state_{s}" for s in ("running", "idle", "offline")]
    + [f"lot.{k}" for k in ("lot", "grower", "plot", "variety", "line", "started", "ended", "fruit", "weight_kg",
                            "mean_weight_g", "packout_pct", "note", "grade", "size", "total", "share_pct", "reason")]
    + [f"lot.{k}" for k in (*GRADES, *REJECT_REASONS)]
    + [f"common.{k}" for k in ("upload_pick", "upload_hint", "camera_take", "camera_allow")]
    + [f"home.state_{s}" for s in ("danger", "watch", "fine")]
    + [f"work.do_{s}" for s in ("accepted", "on_site", "resolved")]
    + [f"wo.err_{e}" for e in ("title", "step", "assignee", "evidence", "empty", "missing")]
)


def used_keys() -> set[str]:
    keys: set[str] = set()
    for folder in ("orchard", "sensors", "dashboard", "analytics", "video"):
        for path in (ROOT / folder).rglob("*.py"):
            if "migrations" in path.parts or path.name == "schema.py":
                continue  # table.column strings ("alarms.id") are not texts
            keys |= set(STATIC.findall(path.read_text(encoding="utf-8")))
    return keys | set(DYNAMIC)


def test_the_code_uses_keys_at_all() -> None:
    assert len(used_keys()) > 100  # the pattern still finds the calls


@pytest.mark.parametrize("lang", i18n.LANGS)
def test_every_used_key_exists(lang: str) -> None:
    missing = sorted(used_keys() - set(i18n.messages(lang)))
    assert not missing, f"missing in {lang}.toml: {missing}"


def test_both_languages_have_the_same_keys_and_placeholders() -> None:
    zh, en = i18n.messages("zh"), i18n.messages("en")
    assert sorted(set(zh) ^ set(en)) == []
    for key in zh:
        assert i18n.placeholders(zh[key]) == i18n.placeholders(en[key]), key
        assert zh[key].strip() and en[key].strip(), key


def test_no_key_is_left_unused() -> None:
    assert sorted(set(i18n.messages("zh")) - used_keys()) == []


@pytest.mark.parametrize(("given", "lang"), [("en", "en"), ("en-US", "en"), ("EN", "en"), ("zh-CN", "zh"),
                                             ("fr", "zh"), (None, "zh"), ("", "zh")])
def test_language_codes(given: str | None, lang: str) -> None:
    assert i18n.normalise(given) == lang


def test_format_and_missing_key() -> None:
    assert i18n.t("common.age_min", "en", n=3) == "3 min ago"
    assert i18n.t("common.age_min", "zh", n=3) == "3 分钟前"
    assert i18n.t("no.such_key", "en") == "no.such_key"
