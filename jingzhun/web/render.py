"""Pages and answers: the templates (Jinja2, autoescape on), the words for codes, and the error answers every route
shares (one 404 page for "no such object" and "outside your area" alike)."""

from __future__ import annotations

import re
from datetime import date, datetime
from pathlib import Path
from urllib.parse import quote

import pandas as pd
from fastapi import Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from jingzhun import clock
from jingzhun.contract import SOURCES
from jingzhun.review import DIRECTION_TITLES, rule_titles
from jingzhun.tickets import STATUS_TITLES as TICKET_TITLES
from jingzhun.signoff.stages import ACTION_TITLES, ROLE_TITLES, STAGE_TITLES, Action, Role, Stage
from jingzhun.web.security import opens

HERE = Path(__file__).resolve().parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"
STATUS_TITLES = {"open": "待处理", "confirmed": "已确认", "dismissed": "不予通过", "resolved": "已解除"}
DIRECTIONS = {**DIRECTION_TITLES, "monitor": "纳入监测", "clear": "解除监测"}
EVENT_TITLES = {"login": "登录", "login_failed": "登录失败", "locked": "账户锁定", "logout": "退出登录", "step": "办理",
                "full_number_view": "查看完整身份证号", "export": "导出", "import": "导入", "user_added": "新增用户",
                "user_disabled": "停用用户", "password_changed": "更换密码", "token_issued": "签发 API 令牌",
                "page_denied": "越权访问被拒", "ticket_opened": "开具问题单", "ticket_answered": "记录部门答复",
                "ticket_closed": "关闭问题单"}
ERRORS = {
    400: "请求有误 (bad request)",
    401: "请先登录 (sign in first)",
    403: "无权进行此操作 (not allowed)",
    404: "未找到:该对象不存在或不在您的辖区内 (not found)",
    405: "不支持此请求方式 (method not allowed)",
    409: "内容已变化,请刷新后重试 (changed since the page was produced)",
    413: "提交的内容过大 (the request is too large)",
    422: "提交的内容不完整或有误 (the request is incomplete or malformed)",
    500: "服务器内部错误,已记录,请稍后再试或联系数据管理员 (internal error; it was logged)",
}


def _title(table: dict, value) -> str:
    try:
        return table.get(value, str(value) if value is not None else "")
    except TypeError:
        return str(value)


def _time_zone() -> str:
    return ENV.globals.get("time_zone", clock.DEFAULT_TIME_ZONE)


def when(value) -> str:
    """A stored instant as people read it (the policy's time zone), to the minute."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return ""
    local = clock.local(value, _time_zone())
    return local.strftime("%Y-%m-%d %H:%M") if local else ""


def day(value, chinese: bool = False) -> str:
    """A date: 2026-11-22, or 2026年11月22日."""
    if value is None or (not isinstance(value, (str, date)) and pd.isna(value)):
        return ""
    if isinstance(value, str):
        value = date.fromisoformat(value[:10])
    if isinstance(value, datetime):
        value = clock.local(value, _time_zone()).date()
    return f"{value.year}年{value.month}月{value.day}日" if chinese else value.isoformat()


def source_title(name: str) -> str:
    source = SOURCES.get(name)
    return source.title if source else str(name)


def department(name: str) -> str:
    source = SOURCES.get(name)
    return source.department if source else ""


# evidence fields that are no department's column: what a rule derived or carried over
FIELD_TITLES = {"id_number": "身份证号", "name": "姓名", "age": "年龄", "identified_year": "识别年度",
                "vehicle_class": "车辆类别代码", "income_line": "当年贫困线(元)", "recorded_in": "记录来源",
                "hukou_file": "户籍库文件", "hukou_row": "户籍库行号", "hukou_name": "户籍库姓名", "problem": "问题",
                "required_insured_year": "应参保年度", "household_cost_latest_year": "家庭最近一年医疗费用(元)"}


def field_title(source: str, field: str) -> str:
    """A record's field as people read it: the department's own header for its column, else a derived field's
    title, else the header any register gives a column of that name, else the field's name."""
    spec = SOURCES.get(source)
    column = next((c for c in spec.columns if c.name == field), None) if spec else None
    if column is None and field not in FIELD_TITLES:
        column = next((c for s in SOURCES.values() for c in s.columns if c.name == field), None)
    return column.header if column else FIELD_TITLES.get(field, field)


def cell(value) -> str:
    if value is None or (not isinstance(value, (str, list, dict)) and pd.isna(value)):
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (datetime, pd.Timestamp)):
        return when(value)
    return str(value)


# characters that reorder the text around them (right-to-left overrides, embeddings, isolates, marks): a value from a
# department or a person shows each as a visible code instead, so that it cannot make a page say what it does not
BIDI_CONTROLS = re.compile("[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def shown(value):
    """Every value a template prints: direction controls made visible (then autoescaped)."""
    if isinstance(value, str) and not isinstance(value, Markup) and BIDI_CONTROLS.search(value):
        return BIDI_CONTROLS.sub(lambda m: f"[U+{ord(m.group(0)):04X}]", value)
    return value


ENV = Environment(loader=FileSystemLoader(str(TEMPLATES)), autoescape=select_autoescape(default=True, default_for_string=True),
                  undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True, finalize=shown)
ENV.filters.update(when=when, day=day, cell=cell, seg=lambda v: quote(str(v), safe=""),
                   stage_title=lambda v: _title(STAGE_TITLES, v), action_title=lambda v: _title(ACTION_TITLES, v),
                   role_title=lambda v: _title(ROLE_TITLES, v), direction_title=lambda v: _title(DIRECTIONS, v),
                   status_title=lambda v: _title(STATUS_TITLES, v), event_title=lambda v: _title(EVENT_TITLES, v), rule_title=lambda v: _title(rule_titles(), v),
                   source_title=source_title, department=department,
                   ticket_title=lambda v: _title(TICKET_TITLES, v))
ENV.globals.update(field_title=field_title, Stage=Stage, Action=Action, Role=Role, STAGE_TITLES=STAGE_TITLES,
                   DIRECTIONS=DIRECTIONS, rule_titles=rule_titles, opens=opens)


def wants_json(path: str) -> bool:
    return path == "/api" or path.startswith("/api/")


def page(request: Request, name: str, status: int = 200, signed=None, **context) -> HTMLResponse:
    """A page: the template ``name`` with who is signed in (and the session's CSRF token for its forms)."""
    policy = request.app.state.policy
    html = ENV.get_template(name).render(
        user=signed.actor if signed else None, csrf=signed.csrf if signed else "", policy=policy,
        path=request.url.path, **context)
    return HTMLResponse(html, status_code=status)


def error_page(path: str, status: int, message: str | None = None, signed=None, headers=None) -> Response:
    """The one error answer of a status: JSON ``{"detail": …}`` for the API, else a page. ``message`` is a refusal's
    own (built from locations, never from a value of the data); a 404 always says the same."""
    text = ERRORS[404] if status == 404 else (message or ERRORS.get(status, ERRORS[400]))
    if wants_json(path):
        return JSONResponse({"detail": text}, status_code=status, headers=headers)
    html = ENV.get_template("error.html").render(
        status=status, message=text, user=signed.actor if signed else None, csrf=signed.csrf if signed else "",
        policy=None, path=path)
    return HTMLResponse(html, status_code=status, headers=headers)
