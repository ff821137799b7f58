"""The hostile table: every route of the application (read from ``app.routes``, so a new route cannot be left out)
× a person of each role inside and outside the seeded area × no session × an expired session × a form without its
CSRF token, against the real server. Each answer is the table's: the page, 401, 403, 404 (outside the area as for an
object that does not exist) or the way to the login form. A route with no row fails the test."""

from __future__ import annotations

import re
from datetime import timedelta

import httpx
import pandas as pd
from fastapi.routing import iter_route_contexts
from sqlalchemy import insert, select

from jingzhun import auth, tickets, warehouse
from jingzhun.signoff.access import Actor
from jingzhun.signoff.stages import Role

from workbench import PASSWORD

LOGIN = "login"  # a page's answer to no (or an expired) session: 303 to the login form
READERS = {"auditor", "county", "steward"}
FULL_READERS = {"village", "township", "county", "steward"}
RUN_ID = "r1"
QUARANTINED = '{"id_number": "620421197001011234", "name": "王小明", "sex": "男"}'


def anyone(answer):
    return lambda p: answer


def in_area(answer):
    return lambda p: answer if p.inside else 404


def roles(allowed, answer):
    return lambda p: (answer(p) if callable(answer) else answer) if p.role in allowed else 403


# (method, route) -> the answer to a signed-in person with the right CSRF token; a form without it is 403 first
EXPECT = {
    ("GET", "/login"): anyone(303),                                       # signed in already: on to the queue
    ("POST", "/login"): anyone(403),                                      # the login form's own token is missing
    ("POST", "/logout"): anyone(303),
    ("GET", "/"): anyone(200),
    ("GET", "/flags/{flag_key}"): in_area(200),
    ("POST", "/flags/{flag_key}/steps"): in_area(403),                    # the county's approve: no one's action now
    ("GET", "/households/{household_id}"): in_area(200),
    ("POST", "/households/{household_id}/full"): roles(FULL_READERS, in_area(200)),
    ("POST", "/households"): in_area(303),                                # found: to its dossier
    ("GET", "/publicity/{village_code}"): in_area(200),
    ("GET", "/announcement/{village_code}"): in_area(200),
    ("GET", "/indicators"): anyone(200),                                  # my area's villages (none outside it)
    ("GET", "/audit"): roles(READERS, 200),
    ("GET", "/runs"): roles({"steward"}, 200),
    ("GET", "/runs/{run_id}"): roles({"steward"}, in_area(200)),
    ("GET", "/tickets"): roles(READERS, 200),                             # the tickets of my area (none outside it)
    ("POST", "/tickets"): roles({"steward"}, in_area(303)),               # opened from the run: outside, no such run
    ("GET", "/tickets/{ticket_id}"): roles(READERS, in_area(200)),
    ("POST", "/tickets/{ticket_id}/answer"): roles({"steward"}, in_area(303)),
    ("POST", "/tickets/{ticket_id}/close"): roles({"steward"}, in_area(303)),   # after the answer: the table's order
    ("GET", "/static"): anyone(200),
    ("GET", "/api/flags"): anyone(200),
    ("GET", "/api/flags/{flag_key}"): in_area(200),
    ("POST", "/api/flags/{flag_key}/steps"): in_area(403),
    ("GET", "/api/households/{household_id}"): in_area(200),
    ("GET", "/api/publicity"): in_area(200),
    ("GET", "/api/audit"): roles(READERS, 200),
}
# no session, or an expired one (pages); no token, a revoked one, or only a browser's session (the API)
PUBLIC = {("GET", "/login"): 200, ("POST", "/login"): 403, ("GET", "/static"): 200}


def routes(app) -> list[tuple[str, str]]:
    out = []
    for context in iter_route_contexts(app.routes):
        methods = context.methods or {"GET"}  # a mount serves GET
        out += [(method, context.path) for method in sorted(methods - {"HEAD"})]
    return out


def test_every_route_answers_as_the_table_says(workbench):
    bench = workbench
    policy = bench.app.state.policy
    with bench.engine.begin() as conn:  # a run of the seeded county, with a quarantined row
        conn.execute(insert(warehouse.runs).values(run_id=RUN_ID, started_at=warehouse.now(), status="published",
                                                   as_of=pd.Timestamp("2026-11-22").date(), region=bench.village[:6],
                                                   sources="{}"))
        conn.execute(insert(warehouse.quarantine).values(run_id=RUN_ID, source="hukou", file="hukou/hukou_01.csv", row=7,
                                                         reason="身份证号校验位错误", raw=QUARANTINED))
        county_steward = Actor(0, "guanli_xian", Role.steward, bench.village[:6])   # a ticket of the seeded county
        ticket_id = tickets.open_ticket(conn, county_steward, "hukou", "户籍人口 hukou_01.csv 第 7 行 身份证号校验位错误",
                                        run_id=RUN_ID)
    flag = bench.flag()
    values = {"flag_key": bench.flag_key, "household_id": bench.household_id, "village_code": bench.village,
              "run_id": RUN_ID, "ticket_id": str(ticket_id)}
    table = routes(bench.app)
    missing = [r for r in table if r not in EXPECT]
    assert not missing, f"routes with no row in the expectation table: {missing}"
    assert not set(EXPECT) - set(table), f"rows for routes that do not exist: {set(EXPECT) - set(table)}"

    def url(method: str, path: str) -> str:
        if path == "/static":
            return "/static/style.css"
        concrete = re.sub(r"\{(\w+)\}", lambda m: values[m.group(1)], path)
        return concrete + (f"?village={bench.village}" if path == "/api/publicity" else "")

    def form(path: str, csrf: str | None) -> dict:
        data = {"csrf_token": csrf} if csrf else {}
        if path.endswith("/steps"):
            data.update(action="approve", evidence_hash=flag["evidence_hash"], state_token=flag_token())
        if path == "/households":
            data["number"] = bench.household_id
        if path == "/login":
            data.update(username="cun", password=PASSWORD)
        if path == "/tickets":
            data.update(source="hukou", subject="户籍人口 hukou_01.csv 第 7 行 身份证号校验位错误", run_id=RUN_ID)
        if path.endswith("/answer"):
            data.update(answer="已更正,今晚重新报送", answered_by="户政科")
        return data

    def flag_token() -> str:
        now = bench.flag()
        return f"{now['stage']}|{now['step_seq']}"

    sessions = {p.name: bench.session(p.name) for p in bench.persons}
    hours = policy.signoff.session_hours
    _, expired, expired_csrf = auth.login(bench.engine, "cun", PASSWORD, "127.0.0.1", policy.signoff,
                                          now=warehouse.now() - timedelta(hours=hours + 1))
    revoked = bench.tokens["xian"]
    bench.tokens["xian"] = auth.new_token(bench.engine, "xian")  # the earlier token is revoked

    failures, answers = [], 0
    client = httpx.Client(base_url=bench.base, follow_redirects=False, timeout=60)

    def send(method, path, cookie=None, csrf=None, bearer=None):
        nonlocal answers
        headers = {}
        if cookie:
            headers["Cookie"] = f"jz_session={cookie}"
        if bearer:
            headers["Authorization"] = f"Bearer {bearer}"
        target = url(method, path)
        if path.startswith("/api/") and method == "POST":
            body = form(path, None)
            response = client.request(method, target, json=body, headers=headers)
        elif method == "POST":
            response = client.request(method, target, data=form(path, csrf), headers=headers)
        else:
            response = client.request(method, target, headers=headers)
        answers += 1
        check_headers(response, path)
        return response

    def check_headers(response, path):
        h = response.headers
        if "script-src 'self'" not in h.get("content-security-policy", "") or h.get("x-content-type-options") != "nosniff" \
                or h.get("referrer-policy") != "no-referrer":
            failures.append(f"{path}: security headers missing")
        if path != "/static" and h.get("cache-control") != "no-store":
            failures.append(f"{path}: no Cache-Control: no-store")

    def expect(label, response, wanted):
        if wanted == LOGIN:
            ok = response.status_code == 303 and response.headers.get("location", "").endswith("/login")
        else:
            ok = response.status_code == wanted
        if not ok:
            failures.append(f"{label}: wanted {wanted}, got {response.status_code}")

    for method, path in table:
        api = path.startswith("/api/")
        rule = EXPECT[(method, path)]
        for person in bench.persons:
            label = f"{method} {path} as {person.name}"
            if api:
                expect(label, send(method, path, bearer=bench.tokens[person.name]), rule(person))
                continue
            if path == "/logout":  # a throwaway session: logging out ends it
                cookie, csrf = bench.session(person.name)
            else:
                cookie, csrf = sessions[person.name]
            expect(label, send(method, path, cookie=cookie, csrf=csrf), rule(person))
            if method == "POST":
                expect(label + " without CSRF", send(method, path, cookie=sessions[person.name][0]), 403)
                expect(label + " with another's CSRF", send(
                    method, path, cookie=sessions[person.name][0],
                    csrf=sessions["xian" if person.name != "xian" else "cun"][1]), 403)
        if api:
            expect(f"{method} {path} with no token", send(method, path), 401)
            expect(f"{method} {path} with a revoked token", send(method, path, bearer=revoked), 401)
            expect(f"{method} {path} with a browser session", send(method, path, cookie=sessions["xian"][0]), 401)
            expect(f"{method} {path} with garbage", send(method, path, bearer="x" * 43), 401)
        else:
            anonymous = PUBLIC.get((method, path), LOGIN)
            expect(f"{method} {path} with no session", send(method, path, csrf="forged"), anonymous)
            expect(f"{method} {path} with an expired session", send(method, path, cookie=expired, csrf=expired_csrf),
                   anonymous)

    # a logout ended its session; the state of the flag never moved; outside answers as not there
    after = bench.flag()
    assert (after["stage"], after["step_seq"]) == (flag["stage"], flag["step_seq"]) == ("pending_village", 0)
    for person in bench.persons:
        cookie, _ = sessions[person.name]
        unknown = send("GET", "/flags/{flag_key}", cookie=cookie) if not person.inside else None
        if unknown is not None:
            nothing = client.get("/flags/" + "0" * 48, headers={"Cookie": f"jz_session={cookie}"})
            assert (unknown.status_code, main(unknown.text)) == (nothing.status_code, main(nothing.text)), person.name
            api_out = client.get(f"/api/flags/{bench.flag_key}", headers={"Authorization": f"Bearer {bench.tokens[person.name]}"})
            api_none = client.get("/api/flags/" + "0" * 48, headers={"Authorization": f"Bearer {bench.tokens[person.name]}"})
            assert (api_out.status_code, api_out.json()) == (api_none.status_code, api_none.json()) == (404, api_none.json())
    # a body over the limit is refused before anything parses it, on every route that takes one, signed in or not
    from jingzhun.web.security import MAX_BODY_BYTES

    big = "x" * (MAX_BODY_BYTES + 1)
    for method, path in sorted(table):
        if method != "POST":
            continue
        target = url(method, path)
        assert client.post(target, content=f"username={big}", headers={
            "Content-Type": "application/x-www-form-urlencoded"}).status_code == 413, path
        assert client.post(target, content=(part.encode() for part in (big[:40_000], big[40_000:])), headers={
            "Content-Type": "application/x-www-form-urlencoded"}).status_code == 413, path    # chunked, no length
    assert client.post("/login", data={"username": "cun", "password": "x" * 100}).status_code != 413
    steward_page = client.get(f"/runs/{RUN_ID}", headers={"Cookie": f"jz_session={sessions['guanli'][0]}"}).text
    assert "hukou/hukou_01.csv" in steward_page and "身份证号校验位错误" in steward_page
    assert "620421197001011234" not in steward_page and "王小明" not in steward_page  # quarantine: every cell masked
    with bench.engine.connect() as conn:   # the inside steward answered it, then closed it; no one else moved it
        done = tickets.ticket(conn, Actor(0, "shenji", Role.auditor, ""), ticket_id)
    assert (done["status"], done["answered_by"], done["closed_by"]) == ("closed", "户政科", "guanli")
    for name, shown in (("xian", True), ("guanli_out", False), ("shenji_out", False)):
        listed_tickets = client.get("/tickets", headers={"Cookie": f"jz_session={sessions[name][0]}"}).text
        assert (f'data-ticket="{ticket_id}"' in listed_tickets) == shown, name
    listed = client.get("/api/flags", headers={"Authorization": f"Bearer {bench.tokens['cun_out']}"}).json()["flags"]
    assert bench.flag_key not in {f["flag_key"] for f in listed}
    with bench.engine.connect() as conn:
        audit = pd.read_sql(select(warehouse.audit_log.c.action, warehouse.audit_log.c.actor), conn)
    views = audit[audit["action"].eq("full_number_view")]["actor"].value_counts().to_dict()
    assert views == {p.name: 2 for p in bench.persons if p.inside and p.role in FULL_READERS}  # the page's, the API's
    assert audit["action"].eq("page_denied").sum() > 0
    client.close()
    print(f"{answers} answers checked against the table")
    assert not failures, f"{len(failures)} of {answers} answers were wrong:\n" + "\n".join(failures)


def main(html: str) -> str:
    """A page's content without its header (who is signed in)."""
    found = re.search(r"<main>(.*)</main>", html, re.S)
    return found.group(1) if found else html

