"""Who may sign in, and how (signoff.md, "People and areas"): accounts, passwords, browser sessions and API tokens.

Grain: ``users`` one row per person (name, role, area, an Argon2id hash of the password); ``sessions`` one row per
browser sign-in (the SHA-256 of the cookie's secret and the CSRF token, until it expires); ``api_tokens`` one row per
token issued to a script (its SHA-256; the earlier tokens of the person revoked).

Nothing stores or says a password or a secret: only hashes are kept, and every message (a refusal, an audit row) holds
neither. An unknown name and a wrong password are refused alike and take as long; ``max_failed_logins`` failures in a
row lock the account for ``lockout_minutes``. Every login, failed login and change to a user is a row of the audit log
(:mod:`jingzhun.audit`), written in the same transaction.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import datetime, timedelta

import pandas as pd
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Engine, case, delete, func, select, update
from sqlalchemy.exc import IntegrityError

from jingzhun import audit, clock
from jingzhun.audit import Event
from jingzhun.policy import SignoffSettings
from jingzhun.privacy import Refused
from jingzhun.schema import api_tokens, audit_log, sessions, users
from jingzhun.signoff.access import Actor, area_valid
from jingzhun.signoff.stages import AREA_DIGITS, Role

USERNAME = re.compile(r"[A-Za-z0-9_.\-\u4e00-\u9fff]{1,64}")
# a user name is on pages (who opened a ticket, who took a step), in the audit log and in the server's log: never a
# person's identity number (15 or 18 digits, the last possibly X), in whole or inside a longer name
ID_IN_NAME = re.compile(r"[0-9]{14}[0-9Xx]")
MIN_PASSWORD = 10
# one answer for every refused sign-in: an unknown name, a wrong password, a disabled or a locked account (saying
# "locked" would tell a stranger which names are accounts); the lock itself is in the audit log
WRONG = "用户名或密码错误,或账户因多次失败暂时锁定,请稍后再试 (wrong name or password, or the account locked for a while)"
_HASHER = PasswordHasher()  # Argon2id with argon2-cffi's defaults (RFC 9106's second recommended profile)
UNKNOWN_NAME = "(未知用户名)"
_DUMMY: list[str] = []      # a hash to verify against for an unknown name: the refusal takes as long


class LoginRefused(Refused):
    """A sign-in refused: the same words for an unknown name and a wrong password (and a disabled account); a locked
    account says so and until when (``locked_until``, UTC), nothing more."""

    status = 401

    def __init__(self, message: str = WRONG, locked_until: datetime | None = None):
        super().__init__(message)
        self.locked_until = locked_until


class UserError(Refused):
    """An account cannot be made or changed as asked: a bad name, role, area or password, a name taken, no such
    user. The message never holds the password."""


def _now(now: datetime | None) -> datetime:
    return clock.utc(now or clock.now())


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _password(password: str | None) -> str:
    """The password given, checked, or a new one (16 characters from 12 random bytes)."""
    if password is None:
        return secrets.token_urlsafe(12)
    if not isinstance(password, str) or len(password) < MIN_PASSWORD:
        raise UserError(f"密码至少 {MIN_PASSWORD} 个字符 (a password has at least {MIN_PASSWORD} characters)")
    return password


def _user(conn, username: str):
    row = conn.execute(select(users).where(users.c.username == username)).first()
    if row is None:
        raise UserError("没有这个用户 (no such user)")
    return row


def _actor(row) -> Actor:
    return Actor(user_id=int(row.user_id), username=row.username, role=Role(row.role), area=row.area)


def _row_area(area: str) -> str | None:
    """The audit row's area for an account's (an auditor's "" is everywhere: no area)."""
    return area or None


# ---------------------------------------------------------------- accounts (the command line)

def add_user(engine: Engine, username: str, role: str, area: str, password: str | None = None, by: str = "cli") -> str:
    """A new account; returns its password (a generated one when ``password`` is None)."""
    if not isinstance(username, str) or not USERNAME.fullmatch(username):
        raise UserError("用户名只能包含字母、数字、汉字和 _ . -,最多 64 个字符 (a user name is 1 to 64 letters, digits, "
                        "Chinese characters, _ . or -)")
    if ID_IN_NAME.search(username):
        raise UserError("用户名不能是或包含身份证号 (a user name holds no identity number)")
    try:
        role = Role(role)
    except ValueError:
        raise UserError(f"未知角色 (unknown role; one of {', '.join(Role)})") from None
    if not isinstance(area, str) or not area_valid(role, area):
        digits = " or ".join(str(n) for n in AREA_DIGITS[role])
        raise UserError(f"区域须为 {digits} 位区划代码 (a {role}'s area is a division code of {digits} digits"
                        + (", or empty for everywhere)" if 0 in AREA_DIGITS[role] else ")"))
    password = _password(password)
    hashed = _HASHER.hash(password)
    try:
        with engine.begin() as conn:
            conn.execute(users.insert().values(username=username, role=role.value, area=area, password_hash=hashed,
                                               disabled=False, failed_logins=0, created_at=_now(None)))
            audit.record(conn, by, Event.user_added, "user", username, _row_area(area), "cli",
                         f"role {role.value}, area {area or '(all)'}")
    except IntegrityError:
        raise UserError("用户名已存在 (that user name is taken)") from None
    return password


def actor_named(engine: Engine, username: str) -> Actor:
    """The enabled account called ``username`` as an actor (whose steps a workbook import records): else
    :class:`UserError`."""
    with engine.connect() as conn:
        row = _user(conn, username)
    if row.disabled:
        raise UserError("该用户已停用 (the account is disabled)")
    return _actor(row)


def list_users(engine: Engine) -> pd.DataFrame:
    """Every account: username, role, area, disabled, locked_until, created_at (never a hash), by name."""
    columns = ["username", "role", "area", "disabled", "locked_until", "created_at"]
    with engine.connect() as conn:
        found = conn.execute(select(*[users.c[c] for c in columns]).order_by(users.c.username)).all()
    frame = pd.DataFrame([tuple(r) for r in found], columns=columns)
    return frame.astype({"disabled": bool})


def disable_user(engine: Engine, username: str, by: str = "cli") -> None:
    """The account may no longer sign in: its sessions end and its API tokens are revoked (the row stays: its name
    is in the steps and the audit log)."""
    now = _now(None)
    with engine.begin() as conn:
        row = _user(conn, username)
        conn.execute(update(users).where(users.c.user_id == row.user_id).values(disabled=True))
        conn.execute(delete(sessions).where(sessions.c.user_id == row.user_id))
        conn.execute(update(api_tokens).where(api_tokens.c.user_id == row.user_id, api_tokens.c.revoked_at.is_(None))
                     .values(revoked_at=now))
        audit.record(conn, by, Event.user_disabled, "user", row.username, _row_area(row.area), "cli", now=now)


def set_password(engine: Engine, username: str, password: str | None = None, by: str = "cli") -> str:
    """A new password (a generated one when None), returned; the account's sessions and API tokens end and a lock
    is lifted."""
    password = _password(password)
    hashed = _HASHER.hash(password)
    with engine.begin() as conn:
        row = _user(conn, username)
        conn.execute(update(users).where(users.c.user_id == row.user_id)
                     .values(password_hash=hashed, failed_logins=0, locked_until=None))
        conn.execute(delete(sessions).where(sessions.c.user_id == row.user_id))
        conn.execute(update(api_tokens).where(api_tokens.c.user_id == row.user_id, api_tokens.c.revoked_at.is_(None))
                     .values(revoked_at=_now(None)))   # a new password ends every credential the old one gave
        audit.record(conn, by, Event.password_changed, "user", row.username, _row_area(row.area), "cli")
    return password


def new_token(engine: Engine, username: str, by: str = "cli") -> str:
    """A new API token for the account, returned (only its SHA-256 is stored); its earlier tokens are revoked."""
    token, now = secrets.token_urlsafe(32), _now(None)
    with engine.begin() as conn:
        row = _user(conn, username)
        if row.disabled:
            raise UserError("该用户已停用 (that account is disabled)")
        conn.execute(update(api_tokens).where(api_tokens.c.user_id == row.user_id, api_tokens.c.revoked_at.is_(None))
                     .values(revoked_at=now))
        conn.execute(api_tokens.insert().values(token_hash=_sha256(token), user_id=row.user_id, created_at=now))
        audit.record(conn, by, Event.token_issued, "user", row.username, _row_area(row.area), "cli", now=now)
    return token


# ---------------------------------------------------------------- signing in (the workbench, the API)

def _verified(hashed: str | None, password: str) -> bool:
    """Whether ``password`` matches ``hashed``; None (an unknown name) still costs one verification, and is False."""
    if hashed is None:
        if not _DUMMY:
            _DUMMY.append(_HASHER.hash(secrets.token_urlsafe(16)))
        _verified(_DUMMY[0], password)
        return False
    try:
        return _HASHER.verify(hashed, password)
    except (VerificationError, InvalidHashError):
        return False


def login(engine: Engine, username: str, password: str, origin: str, policy: SignoffSettings,
          now: datetime | None = None) -> tuple[Actor, str, str]:
    """Sign in: (the actor, the session's secret for the cookie, its CSRF token), or :class:`LoginRefused`."""
    now = _now(now)
    tried = str(username or "")[:64]
    password = password if isinstance(password, str) else ""
    with engine.begin() as conn:
        row = None
        if isinstance(username, str) and USERNAME.fullmatch(username):
            row = conn.execute(select(users).where(users.c.username == username).with_for_update()).first()
        if _address_throttled(conn, origin, policy, now):  # no password tried, no account's count touched
            _record_failure(conn, row, tried, origin, "address throttled", now)
            refusal = LoginRefused()
        else:
            refusal, actor, secret, csrf = _attempt(conn, row, tried, password, origin, policy, now)
    if refusal is not None:
        raise refusal
    return actor, secret, csrf


def _address_throttled(conn, origin: str, policy: SignoffSettings, now: datetime) -> bool:
    """Whether ``origin`` failed ``max_failed_logins_per_address`` sign-ins within ``lockout_minutes`` (counted in
    the audit log, on its time index, as the log keeps an origin: a longer one, such as a forwarded header makes,
    is counted by what the log kept of it)."""
    log = audit_log.c
    since = now - timedelta(minutes=policy.lockout_minutes)
    failed = conn.execute(select(func.count()).where(log.at > since, log.action == Event.login_failed.value,
                                                     log.origin == str(origin)[:audit.ORIGIN_CHARS])).scalar()
    return failed >= policy.max_failed_logins_per_address


def _attempt(conn, row, tried: str, password: str, origin: str, policy: SignoffSettings, now: datetime):
    """(refusal, actor, secret, csrf) of one sign-in tried from an address not throttled."""
    matches = _verified(row.password_hash if row is not None else None, password)
    locked = row is not None and row.locked_until is not None and clock.utc(row.locked_until) > now
    if row is None or row.disabled or locked or not matches:
        return _failed(conn, row, tried, origin, policy, now, locked), None, None, None
    return None, *_signed_in(conn, row, password, origin, policy, now)


def _record_failure(conn, row, tried: str, origin: str, why: str, now: datetime) -> None:
    """The audit row of a refused sign-in. A name no account has is not recorded as typed: people type their
    password into the name box."""
    shown = tried if row is not None else UNKNOWN_NAME
    audit.record(conn, shown, Event.login_failed, "session", None if row is None else shown,
                 None if row is None else _row_area(row.area), origin, why, now)


def _locked(until: datetime) -> LoginRefused:
    """Refused alike (:data:`WRONG`); the lock's end is kept on the exception for the caller's own use."""
    return LoginRefused(WRONG, until)


def _failed(conn, row, tried: str, origin: str, policy: SignoffSettings, now: datetime, locked: bool) -> LoginRefused:
    """Record a refused sign-in (and count it, locking the account at ``max_failed_logins`` in a row)."""
    area = None if row is None else _row_area(row.area)
    why = "unknown name" if row is None else "disabled" if row.disabled else "locked" if locked else "wrong password"
    _record_failure(conn, row, tried, origin, why, now)
    if row is None or row.disabled:
        return LoginRefused()
    if locked:
        return _locked(clock.utc(row.locked_until))
    until = now + timedelta(minutes=policy.lockout_minutes)
    reached = users.c.failed_logins + 1 >= policy.max_failed_logins
    conn.execute(update(users).where(users.c.user_id == row.user_id).values(  # SET reads the row as it was
        failed_logins=case((reached, 0), else_=users.c.failed_logins + 1),
        locked_until=case((reached, until), else_=users.c.locked_until)))
    after = conn.execute(select(users.c.locked_until).where(users.c.user_id == row.user_id)).scalar()
    if after is not None and clock.utc(after) > now:
        audit.record(conn, row.username, Event.locked, "user", row.username, area, origin,
                     f"{policy.max_failed_logins} failed logins in a row", now)
        return _locked(clock.utc(after))
    return LoginRefused()


def _signed_in(conn, row, password: str, origin: str, policy: SignoffSettings, now: datetime):
    values = {"failed_logins": 0, "locked_until": None}
    if _HASHER.check_needs_rehash(row.password_hash):
        values["password_hash"] = _HASHER.hash(password)
    conn.execute(update(users).where(users.c.user_id == row.user_id).values(**values))
    conn.execute(delete(sessions).where(sessions.c.user_id == row.user_id, sessions.c.expires_at <= now))
    secret, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    conn.execute(sessions.insert().values(session_hash=_sha256(secret), user_id=row.user_id, csrf_token=csrf,
                                          created_at=now, expires_at=now + timedelta(hours=policy.session_hours)))
    audit.record(conn, row.username, Event.login, "session", row.username, _row_area(row.area), origin, now=now)
    return _actor(row), secret, csrf


def session_actor(engine: Engine, secret: str | None, now: datetime | None = None) -> tuple[Actor, str] | None:
    """The session's (actor, CSRF token); None when the secret is missing or unknown, the session expired or the
    account is disabled."""
    if not secret or not isinstance(secret, str):
        return None
    query = (select(users, sessions.c.csrf_token).join(sessions, sessions.c.user_id == users.c.user_id)
             .where(sessions.c.session_hash == _sha256(secret), sessions.c.expires_at > _now(now),
                    users.c.disabled.is_(False)))
    with engine.connect() as conn:
        row = conn.execute(query).first()
    return None if row is None else (_actor(row), row.csrf_token)


def logout(engine: Engine, secret: str | None) -> None:
    """End the session (its row is deleted; the logout is audited). An unknown secret does nothing."""
    if not secret or not isinstance(secret, str):
        return
    digest = _sha256(secret)
    with engine.begin() as conn:
        row = conn.execute(select(users.c.username, users.c.area).join(sessions, sessions.c.user_id == users.c.user_id)
                           .where(sessions.c.session_hash == digest)).first()
        if row is None:
            return
        conn.execute(delete(sessions).where(sessions.c.session_hash == digest))
        audit.record(conn, row.username, Event.logout, "session", row.username, _row_area(row.area))


def token_actor(engine: Engine, token: str | None) -> Actor | None:
    """The actor of an API token; None when missing, unknown, revoked or the account disabled."""
    if not token or not isinstance(token, str):
        return None
    query = (select(users).join(api_tokens, api_tokens.c.user_id == users.c.user_id)
             .where(api_tokens.c.token_hash == _sha256(token), api_tokens.c.revoked_at.is_(None),
                    users.c.disabled.is_(False)))
    with engine.connect() as conn:
        row = conn.execute(query).first()
    return None if row is None else _actor(row)
