"""Signing in and out: ``GET /login``, ``POST /login`` (form ``username``, ``password``), ``POST /logout``."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse

from jingzhun import auth
from jingzhun.privacy import describe
from jingzhun.web.render import page
from jingzhun.web.security import (LOGIN_COOKIE, SESSION_COOKIE, LoginNeeded, Signed, cookie_secure, engine_of,
                                   new_login_token, origin, posted, same_token, signed_in)

router = APIRouter()
LOGIN_MINUTES = 30  # how long a login form may stay open


def _login_form(request: Request, message: str = "", status: int = 200, username: str = ""):
    token = new_login_token()
    response = page(request, "login.html", status=status, message=message, login_token=token, username=username)
    response.set_cookie(LOGIN_COOKIE, token, max_age=LOGIN_MINUTES * 60, path="/login", httponly=True,
                        samesite="strict", secure=cookie_secure(request))
    return response


@router.get("/login")
def login_form(request: Request):
    try:
        signed_in(request)
        return RedirectResponse("/", status_code=303)
    except LoginNeeded:
        return _login_form(request)


@router.post("/login")
def login(request: Request, username: str = Form("", max_length=200), password: str = Form("", max_length=1000),
          csrf_token: str = Form("", max_length=200)):
    if not same_token(csrf_token, request.cookies.get(LOGIN_COOKIE)):
        return _login_form(request, "登录表单已过期,请重新输入 (the login form expired: try again)", status=403,
                           username=username[:64])
    policy = request.app.state.policy
    try:
        _, secret, _ = auth.login(engine_of(request), username, password, origin(request), policy.signoff)
    except auth.LoginRefused as exc:
        return _login_form(request, describe(exc), status=getattr(exc, "status", 401), username=username[:64])
    response = RedirectResponse("/", status_code=303)
    response.set_cookie(SESSION_COOKIE, secret, path="/", httponly=True, samesite="strict",
                        secure=cookie_secure(request))  # a session cookie: gone when the browser closes
    response.delete_cookie(LOGIN_COOKIE, path="/login")
    return response


@router.post("/logout")
def logout(request: Request, signed: Signed = Depends(posted)):
    auth.logout(engine_of(request), signed.secret)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict", secure=cookie_secure(request))
    return response
