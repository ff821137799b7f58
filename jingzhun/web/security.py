"""Who is asking, and the headers every answer carries (signoff.md, "People and areas").

A browser signs in with a form and holds the cookie ``jz_session`` (HttpOnly, SameSite=Strict, Secure over https):
:func:`signed_in` asks :func:`jingzhun.auth.session_actor` who it is. Every form that changes something carries the
session's CSRF token (:func:`posted`); the login form, before any session, carries a token of its own bound to a
cookie set with the form (double submit). A script sends ``Authorization: Bearer TOKEN`` (:func:`api_actor`); the
API takes no cookie, so a page another site makes a browser open cannot call it.

Decisions about flags are the chain's (:mod:`jingzhun.signoff.chain`), areas are :mod:`jingzhun.signoff.access`'s;
the only role rules here are which pages a role may open at all (:data:`PAGE_ROLES`), and each refusal is audited.
"""

from __future__ import annotations

import hmac
import logging
import secrets
from dataclasses import dataclass

from fastapi import Depends, Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from jingzhun import audit, auth, tickets
from jingzhun.privacy import Refused, describe
from jingzhun.signoff.access import Actor
from jingzhun.signoff.stages import Role

SESSION_COOKIE = "jz_session"
LOGIN_COOKIE = "jz_login"      # the login form's own CSRF token (no session yet)
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'; "
       "form-action 'self'")
HEADERS = [(b"content-security-policy", CSP.encode()), (b"x-content-type-options", b"nosniff"),
           (b"referrer-policy", b"no-referrer"), (b"x-frame-options", b"DENY"),
           (b"cross-origin-opener-policy", b"same-origin")]
NO_STORE = [(b"cache-control", b"no-store"), (b"pragma", b"no-cache")]

# pages a role may open at all (everything else: every signed-in role, within its area)
PAGE_ROLES: dict[str, frozenset[Role]] = {
    "audit": frozenset(audit.READERS),        # the audit log: auditor, county, steward (audit.py decides)
    "runs": frozenset({Role.steward}),        # runs, their counts, validation and quarantine: the data steward
    "tickets": frozenset(tickets.READERS),    # data-problem tickets: steward, county, auditor read (tickets.py decides)
    "tickets_write": frozenset(tickets.WRITERS),  # opening, answering, closing one: the steward
}

log = logging.getLogger("jingzhun.web")


class LoginNeeded(Exception):
    """No session, or it expired: a page sends the browser to the login form, the API answers 401."""


class Forbidden(Refused):
    """Not for this role, or a form without the session's CSRF token (HTTP 403)."""

    status = 403


@dataclass(frozen=True)
class Signed:
    """A signed-in browser: who (the actor), the session's CSRF token and the cookie's secret."""

    actor: Actor
    csrf: str
    secret: str


def origin(request: Request) -> str:
    """Where a request comes from, for the audit log: the client's address."""
    return request.client.host if request.client else ""


def engine_of(request: Request):
    return request.app.state.engine


def signed_in(request: Request) -> Signed:
    """The session's actor (a dependency of every page but the login form); :class:`LoginNeeded` without one."""
    secret = request.cookies.get(SESSION_COOKIE)
    found = auth.session_actor(engine_of(request), secret) if secret else None
    if found is None:
        raise LoginNeeded()
    actor, csrf = found
    return Signed(actor, csrf, secret)


def same_token(given, expected: str | None) -> bool:
    return isinstance(given, str) and bool(given) and bool(expected) and hmac.compare_digest(
        given.encode("utf-8"), expected.encode("utf-8"))


async def posted(request: Request, signed: Signed = Depends(signed_in)) -> Signed:
    """A state-changing form: signed in and carrying the session's CSRF token (else 403, before anything is read)."""
    form = await request.form()
    if not same_token(form.get("csrf_token"), signed.csrf):
        raise Forbidden("表单已过期或来源不明,请刷新页面后重试 (the form's CSRF token is missing or wrong)")
    return signed


def bearer_actor(engine, authorization: str) -> Actor | None:
    """The actor of an ``Authorization: Bearer TOKEN`` header (None: no header, another scheme, a token unknown,
    revoked or of a disabled account)."""
    scheme, _, token = (authorization or "").partition(" ")
    token = token.strip()
    return auth.token_actor(engine, token) if scheme.lower() == "bearer" and token else None


def api_actor(request: Request) -> Actor:
    """The API's caller, as :class:`ApiBearer` found it before anything else was read."""
    actor = request.scope.get("state", {}).get("api_actor")
    if actor is None:
        raise LoginNeeded()
    return actor


def opens(role, page: str) -> bool:
    """Whether a role may open ``page`` at all (the navigation shows only what it may)."""
    try:
        return Role(role) in PAGE_ROLES[page]
    except ValueError:
        return False


def require_page(request: Request, actor: Actor, page: str) -> None:
    """Refuse (403) a page or call the actor's role may not open, and record the refusal in the audit log."""
    if Role(actor.role) in PAGE_ROLES[page]:
        return
    with engine_of(request).begin() as conn:
        audit.record(conn, actor.username, audit.Event.page_denied, "page", page, actor.area or None, origin(request))
    raise Forbidden("您的角色无权查看此页 (this page is not open to your role)")


def new_login_token() -> str:
    return secrets.token_urlsafe(24)


def cookie_secure(request: Request) -> bool:
    return request.url.scheme == "https"


# ---------------------------------------------------------------- ASGI middleware


class SecurityHeaders:
    """Every answer: the content security policy (no inline script or style, nothing from elsewhere, no framing),
    nosniff, no referrer; and ``Cache-Control: no-store`` on everything but the static files (pages and answers hold
    personal data)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = scope.get("path", "").startswith("/static/")

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                names = {k.lower() for k, _ in message.get("headers", [])}
                extra = [(k, v) for k, v in HEADERS + ([] if static else NO_STORE) if k not in names]
                message["headers"] = list(message.get("headers", [])) + extra
            await send(message)

        await self.app(scope, receive, with_headers)


class ApiBearer:
    """Everything under ``/api`` answers 401 without a valid bearer token, before its body is read or its route is
    looked up (a browser's session cookie is not a credential there); the caller is kept for :func:`api_actor`."""

    def __init__(self, app: ASGIApp, engine) -> None:
        self.app, self.engine = app, engine

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or not (path == "/api" or path.startswith("/api/")):
            await self.app(scope, receive, send)
            return
        from starlette.concurrency import run_in_threadpool
        from starlette.datastructures import Headers
        from starlette.responses import JSONResponse

        actor = await run_in_threadpool(bearer_actor, self.engine, Headers(scope=scope).get("authorization", ""))
        if actor is None:
            response = JSONResponse({"detail": "需要有效的 API 令牌 (a valid bearer token is required)"}, status_code=401,
                                    headers={"WWW-Authenticate": "Bearer"})
            await response(scope, receive, send)
            return
        scope.setdefault("state", {})["api_actor"] = actor
        await self.app(scope, receive, send)


MAX_BODY_BYTES = 64 * 1024  # the largest form or JSON a person or script sends (a ticket's 2,000 characters: ~6 KiB)


class BodyLimit:
    """A request body over :data:`MAX_BODY_BYTES` answers 413 before any form or JSON is parsed (the sign-in form is
    open to anyone: a body of a thousand one-megabyte fields must not reach the parser). A body without a length
    (chunked) is read up to the limit and then handed on."""

    def __init__(self, app: ASGIApp, render_error) -> None:
        self.app, self.render_error = app, render_error

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        from starlette.datastructures import Headers

        length = Headers(scope=scope).get("content-length")
        if length is not None:
            if not length.isdigit() or int(length) > MAX_BODY_BYTES:
                await self.render_error(scope, 413)(scope, receive, send)
                return
            await self.app(scope, receive, send)
            return
        chunks, total, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunks.append(message.get("body", b""))
            total += len(chunks[-1])
            more = message.get("more_body", False)
            if total > MAX_BODY_BYTES:
                await self.render_error(scope, 413)(scope, receive, send)
                return
        body, given = b"".join(chunks), False

        async def replay() -> Message:
            nonlocal given
            if not given:
                given = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


class Contained:
    """Whatever a route raises unexpectedly becomes a 500 page (JSON for the API) that says nothing of it; the log
    names the exception's type and the line it came from (:func:`jingzhun.privacy.describe`), never its message,
    which may quote the data, and no traceback."""

    def __init__(self, app: ASGIApp, render_error) -> None:
        self.app, self.render_error = app, render_error

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracked(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracked)
        except Exception as exc:  # noqa: BLE001 - described, never quoted
            route = scope.get("route")
            where = getattr(route, "path", None) or "(no route)"
            log.error("%s %s failed: %s", scope.get("method", ""), where, describe(exc))
            if not started:
                response = self.render_error(scope, 500)
                await response(scope, receive, send)
