"""Sign-in on both records backends: argon2 hashes, the rate limit, session expiry and idle timeout, roles'
plot scopes, and the audit log."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from orchard.access import KIOSK, Forbidden, Principal
from orchard.records import Records
from orchard.records.accounts import Accounts, LoginError, WeakPassword
from orchard.records.audit import AuditLog
from orchard.records.people import People, User
from orchard.records.schema import passwords, sessions
from orchard.settings import DashboardSettings

NS = 1_000_000_000
T0 = 1_790_000_000 * NS
PW = "kiwi-orchard-2026"
PASS = {"wang": PW + "-a", "li": PW + "-b", "boss": PW + "-c"}


@pytest.fixture
def accounts(records: Records) -> Accounts:
    people = People(records)
    people.upsert(User("wang", "王建国", "farmer", phone="13800000001"))
    people.upsert(User("li", "李技术员", "adviser"))
    people.upsert(User("boss", "指挥中心", "center"))
    people.set_plots("wang", ["p01", "p02"], "owns")
    people.set_plots("li", ["p01", "p03", "p05"], "covers")
    acc = Accounts(records, DashboardSettings(session_hours=8, idle_minutes=30, login_max_failures=5,
                                              client_max_failures=12, login_window_min=15))
    for name in ("wang", "li", "boss"):
        acc.set_password(name, PASS[name], T0)
    return acc


def test_hash_is_argon2id_and_never_the_password(accounts: Accounts, records: Records) -> None:
    with records.engine.connect() as conn:
        stored = conn.execute(select(passwords.c.hash).where(passwords.c.user == "wang")).scalar_one()
    assert stored.startswith("$argon2id$") and PW not in stored


def test_login_gives_a_session_whose_token_is_stored_only_hashed(accounts: Accounts, records: Records) -> None:
    s = accounts.login("wang", PASS["wang"], "10.0.0.1", T0)
    with records.engine.connect() as conn:
        hashes = [r[0] for r in conn.execute(select(sessions.c.token_hash))]
    assert s.token not in hashes and len(hashes) == 1
    who = accounts.principal(s.token, T0 + NS)
    assert who == Principal("wang", "farmer", "王建国", ("p01", "p02"))


@pytest.mark.parametrize(("user", "password"), [
    ("wang", "wrong-password-1"), ("nobody", PASS["wang"]), ("wang", ""), ("' OR 1=1 --", "x' OR '1'='1"),
    ("wang\x00", "wrong-password-2"), ("\x00" * 3, "\x00"),
])
def test_wrong_name_or_password_is_refused_with_one_answer(accounts: Accounts, user: str, password: str) -> None:
    with pytest.raises(LoginError) as e:
        accounts.login(user, password, "10.0.0.1", T0)
    assert e.value.reason == "bad"


def test_disabled_user_cannot_sign_in_and_loses_the_session(accounts: Accounts, records: Records) -> None:
    s = accounts.login("wang", PASS["wang"], "10.0.0.1", T0)
    People(records).upsert(User("wang", "王建国", "farmer", active=False))
    assert accounts.principal(s.token, T0 + NS) is None
    with pytest.raises(LoginError) as e:
        accounts.login("wang", PASS["wang"], "10.0.0.1", T0 + 2 * NS)
    assert e.value.reason == "inactive"


def test_account_rate_limit_holds_even_for_the_right_password(accounts: Accounts) -> None:
    for i in range(5):
        with pytest.raises(LoginError):
            accounts.login("wang", f"guess-{i}-xxxxxx", f"10.0.0.{i}", T0 + i * NS)
    with pytest.raises(LoginError) as e:
        accounts.login("wang", PASS["wang"], "10.9.9.9", T0 + 10 * NS)
    assert e.value.reason == "paused" and 0 < e.value.retry_s <= 15 * 60
    # another account is not paused by it
    assert accounts.login("li", PASS["li"], "10.9.9.9", T0 + 11 * NS).user == "li"
    # the window slides: 15 minutes after the first failure one may try again
    assert accounts.login("wang", PASS["wang"], "10.9.9.9", T0 + 15 * 60 * NS + NS).user == "wang"


def test_address_rate_limit_across_accounts(accounts: Accounts) -> None:
    for i in range(12):
        with pytest.raises(LoginError):
            accounts.login(f"user{i}", "guess-xxxxxxxx", "10.6.6.6", T0 + i * NS)
    with pytest.raises(LoginError) as e:
        accounts.login("boss", PASS["boss"], "10.6.6.6", T0 + 20 * NS)
    assert e.value.reason == "paused"
    assert accounts.login("boss", PASS["boss"], "10.7.7.7", T0 + 21 * NS).user == "boss"


def test_success_forgives_earlier_failures(accounts: Accounts) -> None:
    for i in range(4):
        with pytest.raises(LoginError):
            accounts.login("wang", f"guess-{i}-xxxxxx", "10.0.0.1", T0 + i * NS)
    accounts.login("wang", PASS["wang"], "10.0.0.1", T0 + 5 * NS)
    for i in range(4):
        with pytest.raises(LoginError):
            accounts.login("wang", f"guess-{i}-yyyyyy", "10.0.0.1", T0 + (6 + i) * NS)
    assert accounts.login("wang", PASS["wang"], "10.0.0.1", T0 + 20 * NS).user == "wang"


@pytest.mark.parametrize(("after_s", "used_every_s", "valid"), [
    (60, None, True),  # fresh
    (29 * 60, None, True),  # just inside the idle timeout
    (31 * 60, None, False),  # idle too long
    (7 * 3600, 20 * 60, True),  # in use all day, inside the absolute limit
    (8 * 3600 + 60, 20 * 60, False),  # past the absolute limit however busy
])
def test_session_expiry(accounts: Accounts, after_s: int, used_every_s: int | None, valid: bool) -> None:
    s = accounts.login("li", PASS["li"], "10.0.0.1", T0)
    if used_every_s:
        for t in range(used_every_s, after_s, used_every_s):
            accounts.principal(s.token, T0 + t * NS)
    assert (accounts.principal(s.token, T0 + after_s * NS) is not None) is valid


@pytest.mark.parametrize("token", ["", "x", "A" * 43, "'; DROP TABLE sessions; --"])
def test_forged_tokens_are_nobody(accounts: Accounts, token: str) -> None:
    accounts.login("boss", PASS["boss"], "10.0.0.1", T0)
    assert accounts.principal(token, T0 + NS) is None


def test_logout_and_password_change_end_sessions(accounts: Accounts) -> None:
    a = accounts.login("boss", PASS["boss"], "10.0.0.1", T0)
    b = accounts.login("boss", PASS["boss"], "10.0.0.2", T0)
    accounts.logout(a.token)
    assert accounts.principal(a.token, T0 + NS) is None and accounts.principal(b.token, T0 + NS) is not None
    accounts.set_password("boss", "another-long-secret", T0 + 2 * NS)
    assert accounts.principal(b.token, T0 + 3 * NS) is None


@pytest.mark.parametrize("password", ["short", "wang-is-my-password"])
def test_weak_passwords_refused(accounts: Accounts, password: str) -> None:
    with pytest.raises(WeakPassword):
        accounts.set_password("wang", password, T0)


FARMER = Principal("wang", "farmer", "", ("p01", "p02"))
ADVISER = Principal("li", "adviser", "", ("p01", "p03"))
CENTER = Principal("boss", "center", "", None)


@pytest.mark.parametrize(("who", "plot", "sees"), [
    (FARMER, "p01", True),
    (FARMER, "p03", False),
    (FARMER, None, False),  # site-wide things are not a farmer's
    (ADVISER, "p03", True),
    (ADVISER, "p02", False),
    (ADVISER, None, True),
    (CENTER, "p09", True),
    (KIOSK, "p09", True),
])
def test_plot_scope(who: Principal, plot: str | None, sees: bool) -> None:
    assert who.sees(plot) is sees
    if not sees:
        with pytest.raises(Forbidden):
            who.check(plot)


@pytest.mark.parametrize(("who", "scope"), [
    (FARMER, ("p01", "p02")),
    (ADVISER, ("p01", "p03")),
    (CENTER, ("p01", "p02", "p03", "p09")),
    (KIOSK, ("p01", "p02", "p03", "p09")),
])
def test_scope_cuts_a_plot_list_to_the_principal(who: Principal, scope: tuple[str, ...]) -> None:
    assert who.scope(["p01", "p02", "p03", "p09"]) == scope


def test_kiosk_may_not_act_nor_see_people() -> None:
    assert not KIOSK.can_act and not KIOSK.personal_data
    with pytest.raises(Forbidden):
        KIOSK.require(act=True)


def test_audit_log(records: Records) -> None:
    log = AuditLog(records)
    log.record("cli:root", "user.add", "wang", T0, role="farmer")
    log.record("cli:root", "device.add", "ws-p01", T0 + NS, topic="orchard/sunzigou/p01/ws-p01")
    got = log.entries()
    assert [(e.action, e.target) for e in got] == [("device.add", "ws-p01"), ("user.add", "wang")]
    assert got[1].detail == {"role": "farmer"}


@pytest.mark.parametrize(("burst", "same_account"), [(30, True), (40, False)],
                         ids=["30-at-one-account", "40-from-one-address"])
def test_a_burst_of_sign_ins_checks_at_most_the_limit(records: Records, monkeypatch: pytest.MonkeyPatch, burst: int,
                                                       same_account: bool) -> None:
    """All at once, from one address: at most the account's limit (5) or the address's (20) passwords are
    checked, and at most HASHING argon2 verifications (64 MiB each) run at the same time."""
    import threading

    from orchard.records import accounts as module

    accounts = Accounts(records, DashboardSettings(login_max_failures=5, client_max_failures=20))
    People(records).upsert(User("wang", "王建国", "farmer"))
    accounts.set_password("wang", PASS["wang"], T0)
    lock, counts = threading.Lock(), {"checked": 0, "running": 0, "peak": 0}
    real = module._HASHER

    class Counted:
        """The real argon2 hasher, counting the verifications and how many run at once."""

        def verify(self, stored: str, password: str) -> bool:
            with lock:
                counts["checked"] += 1
                counts["running"] += 1
                counts["peak"] = max(counts["peak"], counts["running"])
            try:
                return real.verify(stored, password)
            finally:
                with lock:
                    counts["running"] -= 1

        def check_needs_rehash(self, stored: str) -> bool:
            return real.check_needs_rehash(stored)

    monkeypatch.setattr(module, "_HASHER", Counted())
    start, reasons = threading.Barrier(burst), list[str]()

    def attempt(k: int) -> None:
        start.wait()
        try:
            accounts.login("wang" if same_account else f"guess{k}", "wrong-password-1", "203.0.113.9", T0 + k)
        except LoginError as e:
            with lock:
                reasons.append(e.reason)

    threads = [threading.Thread(target=attempt, args=(k,)) for k in range(burst)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    limit = 5 if same_account else 20
    assert counts["checked"] == limit
    assert sorted(reasons) == sorted(["bad"] * limit + ["paused"] * (burst - limit))
    assert counts["peak"] <= module.HASHING
