"""Accounts, sign-in, sessions and API tokens (signoff.md, "People and areas"), on both backends: only hashes are
stored, an unknown name and a wrong password are refused alike, failures in a row lock the account for a while,
sessions expire, and every sign-in and change to a user is in the audit log with no password in it."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta, timezone

import pytest
from argon2 import PasswordHasher
from sqlalchemy import select, update

from jingzhun import audit, auth, warehouse
from jingzhun.auth import LoginRefused, UserError
from jingzhun.policy import SignoffSettings
from jingzhun.signoff.access import Actor
from jingzhun.signoff.stages import Role

T0 = datetime(2026, 12, 2, 6, 0, tzinfo=timezone.utc)
POLICY = SignoffSettings(max_failed_logins=3, lockout_minutes=15, session_hours=8)
SECRET = "correct horse battery"
AUDITOR = Actor(0, "auditor", Role.auditor, "")


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _all_text(engine) -> str:
    """Every value of the users, sessions, tokens and audit tables, as one text (to search for a secret)."""
    with engine.connect() as conn:
        return repr([conn.execute(select(t)).all() for t in
                     (warehouse.users, warehouse.sessions, warehouse.api_tokens, warehouse.audit_log)])


def _events(engine) -> list[str]:
    return list(audit.rows(engine, AUDITOR).sort_values("audit_id")["action"])  # in the order written


def test_an_account_stores_only_an_argon2id_hash_and_is_listed_without_it(warehouse_url):
    engine = warehouse.connect(warehouse_url)
    generated = auth.add_user(engine, "张三", "county", "620421")
    assert len(generated) == 16
    assert auth.add_user(engine, "li.si-2", "auditor", "", password=SECRET, by="admin") == SECRET
    with engine.connect() as conn:
        hashes = dict(conn.execute(select(warehouse.users.c.username, warehouse.users.c.password_hash)).all())
    assert all(h.startswith("$argon2id$") for h in hashes.values())
    assert PasswordHasher().verify(hashes["张三"], generated)
    frame = auth.list_users(engine)
    assert list(frame.columns) == ["username", "role", "area", "disabled", "locked_until", "created_at"]
    assert list(frame["username"]) == ["li.si-2", "张三"] and not frame["disabled"].any()
    assert generated not in _all_text(engine) and SECRET not in _all_text(engine)
    log = audit.rows(engine, AUDITOR)
    assert list(log["action"]) == ["user_added", "user_added"]
    assert set(log["actor"]) == {"cli", "admin"}
    assert log["area"].isna().iloc[0] and log["area"].iloc[1] == "620421"  # an auditor's account lies in no area


@pytest.mark.parametrize("name, role, area, password, said", [
    ("a b", "county", "620421", None, "user name"),
    ("", "county", "620421", None, "user name"),
    ("x" * 65, "county", "620421", None, "user name"),
    ("ana;--", "county", "620421", None, "user name"),
    ("ana", "mayor", "620421", None, "unknown role"),
    ("ana", "county", "6204211", None, "6 digits"),
    ("ana", "village", "620421100", None, "12 digits"),
    ("ana", "steward", "", None, "2 or 4 or 6 digits"),
    ("ana", "township", "62042110a", None, "9 digits"),
    ("ana", "county", "620421", "short-pw1", "at least 10"),
    ("62042119700101123X", "county", "620421", None, "identity number"),   # a name is shown on pages and logged
    ("wang62042119700101123x", "county", "620421", None, "identity number"),
    ("620421197001011", "county", "620421", None, "identity number"),       # the old 15 digits
])
def test_a_bad_name_role_area_or_password_is_refused(name, role, area, password, said, tmp_path):
    engine = warehouse.connect(f"sqlite:///{tmp_path / 'w.sqlite'}")
    with pytest.raises(UserError, match=said) as refused:
        auth.add_user(engine, name, role, area, password)
    assert password is None or password not in str(refused.value)
    assert auth.list_users(engine).empty


def test_a_name_taken_and_a_user_unknown_are_refused(warehouse_url):
    engine = warehouse.connect(warehouse_url)
    auth.add_user(engine, "ana", "county", "620421", SECRET)
    with pytest.raises(UserError, match="taken"):
        auth.add_user(engine, "ana", "village", "620421100201", "another password")
    for change in (auth.disable_user, auth.set_password, auth.new_token):
        with pytest.raises(UserError, match="no such user"):
            change(engine, "bob")
    assert _events(engine) == ["user_added"]


def test_a_login_opens_a_session_that_expires_and_ends_at_logout(warehouse_url):
    engine = warehouse.connect(warehouse_url)
    auth.add_user(engine, "ana", "township", "620421100", SECRET)
    actor, secret, csrf = auth.login(engine, "ana", SECRET, "10.0.0.7", POLICY, now=T0)
    assert actor == Actor(actor.user_id, "ana", Role.township, "620421100") and isinstance(actor.role, Role)
    assert secret != csrf and len(secret) >= 43 and len(csrf) >= 43
    with engine.connect() as conn:
        stored = conn.execute(select(warehouse.sessions)).one()
    assert stored.session_hash == _sha(secret) and stored.csrf_token == csrf
    assert stored.expires_at.replace(tzinfo=timezone.utc) == T0 + timedelta(hours=8)
    assert secret not in _all_text(engine) and SECRET not in _all_text(engine)
    assert auth.session_actor(engine, secret, now=T0 + timedelta(hours=7, minutes=59)) == (actor, csrf)
    assert auth.session_actor(engine, secret, now=T0 + timedelta(hours=8)) is None       # expired
    for nothing in (None, "", "not-a-session", secret + "x"):
        assert auth.session_actor(engine, nothing, now=T0) is None
    auth.logout(engine, secret)
    auth.logout(engine, secret)  # twice: nothing more happens
    assert auth.session_actor(engine, secret, now=T0) is None
    assert _events(engine) == ["user_added", "login", "logout"]
    log = audit.rows(engine, AUDITOR)
    row = log[log["action"] == "login"].iloc[0]
    assert (row["actor"], row["origin"], row["area"]) == ("ana", "10.0.0.7", "620421100")


def test_an_unknown_name_and_a_wrong_password_are_refused_alike_and_logged_without_the_password(warehouse_url,
                                                                                               monkeypatch):
    engine = warehouse.connect(warehouse_url)
    auth.add_user(engine, "ana", "county", "620421", SECRET)
    verified = []

    class Counting(PasswordHasher):
        def verify(self, hash, password):
            verified.append(hash)
            return super().verify(hash, password)

    monkeypatch.setattr(auth, "_HASHER", Counting())
    said = []
    for name, password in (("ana", "wrong password 1"), ("bob", SECRET), ("n" * 100, SECRET), ("", ""),
                           ("a b", SECRET)):
        with pytest.raises(LoginRefused) as refused:
            auth.login(engine, name, password, "10.0.0.7", POLICY, now=T0)
        said.append(str(refused.value))
    assert set(said) == {auth.WRONG}
    assert len(verified) == 5  # an unknown name costs a verification too
    log = audit.rows(engine, AUDITOR).sort_values("audit_id")
    assert list(log["action"]) == ["user_added"] + ["login_failed"] * 5
    # a name no account has is not kept as typed (it may be a password typed into the wrong box)
    assert list(log["actor"][1:]) == ["ana"] + [auth.UNKNOWN_NAME] * 4 and "bob" not in _all_text(engine)
    assert "wrong password 1" not in _all_text(engine) and SECRET not in _all_text(engine)


def test_failures_in_a_row_lock_the_account_for_a_while_and_a_success_resets_the_count(warehouse_url):
    engine = warehouse.connect(warehouse_url)
    auth.add_user(engine, "ana", "county", "620421", SECRET)
    for n in range(2):
        with pytest.raises(LoginRefused, match="wrong name or password"):
            auth.login(engine, "ana", "not the password", "10.0.0.7", POLICY, now=T0)
    auth.login(engine, "ana", SECRET, "10.0.0.7", POLICY, now=T0)  # resets the count
    for n in range(2):
        with pytest.raises(LoginRefused, match="wrong name or password"):
            auth.login(engine, "ana", "not the password", "10.0.0.7", POLICY, now=T0 + timedelta(minutes=n))
    with pytest.raises(LoginRefused, match="wrong name or password") as locked:  # the third in a row: locked
        auth.login(engine, "ana", "not the password", "10.0.0.7", POLICY, now=T0 + timedelta(minutes=2))
    until = T0 + timedelta(minutes=17)
    assert locked.value.locked_until == until
    assert str(locked.value) == auth.WRONG   # a stranger cannot tell a locked account from a name that is none
    assert auth.list_users(engine)["locked_until"].iloc[0].replace(tzinfo=timezone.utc) == until
    with pytest.raises(LoginRefused, match="wrong name or password"):  # the right password while locked
        auth.login(engine, "ana", SECRET, "10.0.0.7", POLICY, now=until - timedelta(seconds=1))
    actor, _, _ = auth.login(engine, "ana", SECRET, "10.0.0.7", POLICY, now=until)
    assert actor.username == "ana"
    assert pd_isna(auth.list_users(engine)["locked_until"].iloc[0])
    events = _events(engine)
    assert events.count("locked") == 1 and events.count("login") == 2 and events.count("login_failed") == 6


def test_an_address_that_failed_too_often_is_refused_without_locking_more_accounts(warehouse_url):
    """One machine trying passwords on account after account: after ``max_failed_logins_per_address`` failures
    within ``lockout_minutes`` every sign-in from it is refused — even a right password — and no further account's
    count moves; another address signs in; the address is let in again once its failures (the refusals while
    throttled among them) are older than ``lockout_minutes``."""
    engine = warehouse.connect(warehouse_url)
    policy = SignoffSettings(max_failed_logins=3, lockout_minutes=15, max_failed_logins_per_address=4)
    for name in ("ana", "bo", "cai"):
        auth.add_user(engine, name, "county", "620421", SECRET)
    for n, name in enumerate(["ana", "ana", "bo", "bo"]):     # four failures, no account locked yet
        with pytest.raises(LoginRefused):
            auth.login(engine, name, "guess", "10.9.9.9", policy, now=T0 + timedelta(minutes=n))
    for name, password in (("cai", "guess"), ("cai", "guess"), ("cai", "guess"), ("ana", SECRET)):
        with pytest.raises(LoginRefused, match="wrong name or password"):
            auth.login(engine, name, password, "10.9.9.9", policy, now=T0 + timedelta(minutes=5))
    users = auth.list_users(engine).set_index("username")
    assert users["locked_until"].isna().all()                      # cai was never tried: nothing locked
    with engine.connect() as conn:
        counts = dict(conn.execute(select(warehouse.users.c.username, warehouse.users.c.failed_logins)).all())
    assert counts == {"ana": 2, "bo": 2, "cai": 0}
    assert auth.login(engine, "cai", SECRET, "10.1.1.1", policy, now=T0 + timedelta(minutes=5))[0].username == "cai"
    throttled = audit.rows(engine, AUDITOR)
    assert (throttled["detail"] == "address throttled").sum() == 4
    # refusals while throttled count too (an address that keeps trying stays refused): 15 minutes after the last
    later = T0 + timedelta(minutes=21)
    assert auth.login(engine, "ana", SECRET, "10.9.9.9", policy, now=later)[0].username == "ana"


def test_an_address_longer_than_the_log_keeps_is_throttled_all_the_same(warehouse_url):
    """An origin is whatever a trusted proxy's X-Forwarded-For says, of any length; the log keeps its first
    characters, and the throttle counts those: a long made-up address is no way around it."""
    engine = warehouse.connect(warehouse_url)
    policy = SignoffSettings(max_failed_logins=100, lockout_minutes=15, max_failed_logins_per_address=2)
    auth.add_user(engine, "ana", "county", "620421", SECRET)
    address = "10.9.9.9-" + "x" * 100
    for n in range(2):
        with pytest.raises(LoginRefused):
            auth.login(engine, "ana", "guess", address, policy, now=T0 + timedelta(minutes=n))
    with pytest.raises(LoginRefused):
        auth.login(engine, "ana", SECRET, address, policy, now=T0 + timedelta(minutes=3))
    assert (audit.rows(engine, AUDITOR)["detail"] == "address throttled").sum() == 1


def pd_isna(value) -> bool:
    import pandas as pd

    return bool(pd.isna(value))


def test_a_disabled_account_signs_in_no_more_and_its_sessions_and_tokens_end(warehouse_url):
    engine = warehouse.connect(warehouse_url)
    auth.add_user(engine, "ana", "steward", "62", SECRET)
    _, secret, _ = auth.login(engine, "ana", SECRET, "10.0.0.7", POLICY, now=T0)
    token = auth.new_token(engine, "ana")
    assert auth.token_actor(engine, token).role == Role.steward
    auth.disable_user(engine, "ana", by="admin")
    assert auth.session_actor(engine, secret, now=T0) is None and auth.token_actor(engine, token) is None
    with pytest.raises(LoginRefused, match="wrong name or password"):
        auth.login(engine, "ana", SECRET, "10.0.0.7", POLICY, now=T0)
    with pytest.raises(UserError, match="disabled"):
        auth.new_token(engine, "ana")
    assert bool(auth.list_users(engine)["disabled"].iloc[0]) is True
    assert "user_disabled" in _events(engine)


def test_a_new_password_ends_the_sessions_and_lifts_a_lock(warehouse_url):
    engine = warehouse.connect(warehouse_url)
    auth.add_user(engine, "ana", "village", "620421100201", SECRET)
    _, secret, _ = auth.login(engine, "ana", SECRET, "10.0.0.7", POLICY, now=T0)
    with engine.begin() as conn:
        conn.execute(update(warehouse.users).values(locked_until=T0 + timedelta(hours=1)))
    with pytest.raises(UserError, match="at least 10"):
        auth.set_password(engine, "ana", "short")
    new = auth.set_password(engine, "ana", by="admin")
    assert len(new) == 16 and new not in _all_text(engine)
    assert auth.session_actor(engine, secret, now=T0) is None
    with pytest.raises(LoginRefused, match="wrong name or password"):
        auth.login(engine, "ana", SECRET, "10.0.0.7", POLICY, now=T0)
    assert auth.login(engine, "ana", new, "10.0.0.7", POLICY, now=T0)[0].username == "ana"
    assert auth.set_password(engine, "ana", "a chosen password") == "a chosen password"
    assert "password_changed" in _events(engine)


def test_an_api_token_is_stored_hashed_and_a_new_one_revokes_the_old(warehouse_url):
    engine = warehouse.connect(warehouse_url)
    auth.add_user(engine, "ana", "county", "620421", SECRET)
    first = auth.new_token(engine, "ana")
    second = auth.new_token(engine, "ana", by="admin")
    assert len(first) >= 43 and first != second
    with engine.connect() as conn:
        stored = conn.execute(select(warehouse.api_tokens).order_by(warehouse.api_tokens.c.created_at)).all()
    assert {r.token_hash for r in stored} == {_sha(first), _sha(second)}
    assert [r.token_hash for r in stored if r.revoked_at is None] == [_sha(second)]
    assert auth.token_actor(engine, first) is None
    assert auth.token_actor(engine, second) == Actor(stored[0].user_id, "ana", Role.county, "620421")
    for nothing in (None, "", "Bearer " + second):
        assert auth.token_actor(engine, nothing) is None
    assert first not in _all_text(engine) and second not in _all_text(engine)
    assert _events(engine).count("token_issued") == 2


def test_a_hash_made_with_weaker_parameters_is_renewed_at_login(warehouse_url):
    engine = warehouse.connect(warehouse_url)
    auth.add_user(engine, "ana", "county", "620421", SECRET)
    weak = PasswordHasher(time_cost=1, memory_cost=8 * 1024, parallelism=1).hash(SECRET)
    with engine.begin() as conn:
        conn.execute(update(warehouse.users).values(password_hash=weak))
    auth.login(engine, "ana", SECRET, "10.0.0.7", POLICY, now=T0)
    with engine.connect() as conn:
        renewed = conn.execute(select(warehouse.users.c.password_hash)).scalar()
    assert renewed != weak and not PasswordHasher().check_needs_rehash(renewed)
    assert PasswordHasher().verify(renewed, SECRET)


def test_a_new_password_ends_the_old_api_tokens(warehouse_url):
    engine = warehouse.connect(warehouse_url)
    auth.add_user(engine, "ana", "steward", "62", SECRET)
    token = auth.new_token(engine, "ana")
    assert auth.token_actor(engine, token).username == "ana"
    auth.set_password(engine, "ana")
    assert auth.token_actor(engine, token) is None
