"""The workbench's application: :func:`create_app` wires the warehouse, the policy, the routes, the headers and the
error answers together. Routes are thin (parse, ask the owner: :mod:`jingzhun.signoff.chain`, :mod:`jingzhun.auth`,
:mod:`jingzhun.audit`, :mod:`jingzhun.dossier`; render) and live in ``routes_*.py`` by concern."""

from __future__ import annotations

import logging
import os
import threading
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from jingzhun import warehouse
from jingzhun.policy import Policy
from jingzhun.privacy import Refused, describe, install_log_masking
from jingzhun.web import render
from jingzhun.web.security import ApiBearer, BodyLimit, Contained, LoginNeeded, SecurityHeaders, signed_in

log = logging.getLogger("jingzhun.web")
# how ``jingzhun serve`` logs: plain formatters (uvicorn's access formatter reads the record's arguments, which the
# masking of privacy.install_log_masking has folded into the message), to the console
LOG_CONFIG = {
    "version": 1, "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain", "stream": "ext://sys.stderr"}},
    "loggers": {"uvicorn": {"handlers": ["console"], "level": "INFO", "propagate": False},
                "uvicorn.error": {"level": "INFO"},
                "uvicorn.access": {"handlers": ["console"], "level": "INFO", "propagate": False},
                "jingzhun": {"handlers": ["console"], "level": "INFO", "propagate": False}},
}
PERIOD_SECONDS = 60.0  # how often the server ends the 公示 periods that are over (chain.advance_periods)


def _signed_or_none(request: Request):
    try:
        return signed_in(request)
    except LoginNeeded:
        return None
    except Exception:  # noqa: BLE001 - an error page must not fail for want of its header
        return None


async def _signed(request: Request):
    """Who is signed in, for an error page's header (the session is read off the event loop)."""
    if render.wants_json(request.url.path):
        return None
    from starlette.concurrency import run_in_threadpool

    return await run_in_threadpool(_signed_or_none, request)


def create_app(warehouse_url: str, policy: Policy | None = None, period_seconds: float | None = PERIOD_SECONDS) -> FastAPI:
    """The workbench on the warehouse at ``warehouse_url`` (migrated on connect) under ``policy``. While it serves, a
    thread ends the 公示 periods that are over every ``period_seconds`` (None: never; a test calls the chain)."""
    from jingzhun.web import routes_api, routes_auth, routes_flags, routes_households, routes_publicity, routes_queue
    from jingzhun.web import routes_admin, routes_indicators, routes_tickets

    install_log_masking()  # the second line of defence: nothing shaped like an identity number reaches a log
    policy = policy or Policy()
    engine = warehouse.connect(warehouse_url)
    render.ENV.globals["time_zone"] = policy.time_zone

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        stop = threading.Event()
        worker = None
        if period_seconds:
            worker = threading.Thread(target=_periods, args=(engine, policy, period_seconds, stop), name="periods",
                                      daemon=True)
            worker.start()
        try:
            yield
        finally:
            stop.set()
            if worker is not None:
                worker.join(timeout=10)

    app = FastAPI(title="精准 工作台", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)
    app.state.engine, app.state.policy = engine, policy
    for module in (routes_auth, routes_queue, routes_flags, routes_households, routes_publicity, routes_indicators,
                   routes_admin, routes_tickets, routes_api):
        app.include_router(module.router)
    app.mount("/static", StaticFiles(directory=str(render.STATIC)), name="static")

    @app.exception_handler(LoginNeeded)
    async def login_needed(request: Request, exc: LoginNeeded):
        if render.wants_json(request.url.path):
            return render.error_page(request.url.path, 401, headers={"WWW-Authenticate": "Bearer"})
        return RedirectResponse("/login", status_code=303)

    @app.exception_handler(Refused)
    async def refused(request: Request, exc: Refused):
        status = getattr(exc, "status", 400)
        status = status if isinstance(status, int) and status in render.ERRORS else 400
        return render.error_page(request.url.path, status, describe(exc), signed=await _signed(request))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        status = exc.status_code if exc.status_code in render.ERRORS else 400
        return render.error_page(request.url.path, status, headers=getattr(exc, "headers", None),
                                 signed=await _signed(request) if status == 404 else None)

    @app.exception_handler(RequestValidationError)
    async def malformed(request: Request, exc: RequestValidationError):
        if render.wants_json(request.url.path):  # what was wrong and where, never the value sent
            from fastapi.responses import JSONResponse

            errors = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
                      for e in exc.errors()]
            return JSONResponse({"detail": errors}, status_code=422)
        return render.error_page(request.url.path, 422, signed=await _signed(request))

    app.add_middleware(ApiBearer, engine=engine)
    app.add_middleware(BodyLimit, render_error=lambda scope, status: render.error_page(scope.get("path", ""), status))
    app.add_middleware(Contained, render_error=lambda scope, status: render.error_page(scope.get("path", ""), status))
    app.add_middleware(SecurityHeaders)
    return app


SERVE_WAREHOUSE, SERVE_CONFIG = "JINGZHUN_SERVE_WAREHOUSE", "JINGZHUN_SERVE_CONFIG"


def from_environment() -> FastAPI:
    """The application of one of ``jingzhun serve --workers N``'s processes: the warehouse and policy file that
    command was given (its environment; a password stays in the warehouse password variable, never in the URL)."""
    from jingzhun.policy import load_policy

    return create_app(os.environ[SERVE_WAREHOUSE], load_policy(os.environ.get(SERVE_CONFIG) or None))


def _periods(engine, policy: Policy, seconds: float, stop: threading.Event) -> None:
    """End the 公示 periods that are over, now and every ``seconds``, until ``stop``."""
    from jingzhun.signoff import chain

    while True:
        try:
            chain.advance_periods(engine, policy)
        except Exception as exc:  # noqa: BLE001 - the next round tries again; the log says what, not the data
            log.error("ending 公示 periods failed: %s", describe(exc))
        if stop.wait(seconds):
            return
