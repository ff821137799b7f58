"""The JSON API as signoff.md has it, against the real server on both backends: the list and its filters, one flag,
steps with each refusal of the chain as its status (409, 403, 404, 422) and pydantic's 422 for a malformed body,
the dossier (full numbers audited; masked for an auditor), the 公示 entries and the audit log."""

from __future__ import annotations

import re

import httpx
import pandas as pd
from sqlalchemy import select

from jingzhun import clock, warehouse
from jingzhun.web.routes_api import LIST_FIELDS

ID = re.compile(r"(?<![0-9])[0-9]{17}[0-9X](?![0-9])")


def client(bench, name: str) -> httpx.Client:
    return httpx.Client(base_url=bench.base, headers={"Authorization": f"Bearer {bench.tokens[name]}"}, timeout=60)


def test_the_api_answers_as_the_contract_says(workbench):
    bench = workbench
    cun, xiang, out, xian, shenji = (client(bench, n) for n in ("cun", "xiang", "cun_out", "xian", "shenji"))

    listed = cun.get("/api/flags").json()["flags"]
    assert listed and all(list(f) == LIST_FIELDS for f in listed)
    assert {f["village_code"] for f in listed} == {bench.village} and {f["status"] for f in listed} == {"open"}
    with bench.engine.connect() as conn:
        open_here = conn.execute(select(warehouse.flags.c.flag_key).where(
            warehouse.flags.c.village_code == bench.village, warehouse.flags.c.status == "open")).scalars().all()
    assert sorted(f["flag_key"] for f in listed) == sorted(open_here)        # every open flag of the area, no limit
    cars = cun.get("/api/flags", params={"rule": "RM_CAR", "stage": "pending_village"}).json()["flags"]
    assert cars and {(f["rule_code"], f["stage"]) for f in cars} == {("RM_CAR", "pending_village")}
    assert len(cun.get("/api/flags", params={"limit": 2, "offset": 1}).json()["flags"]) == 2
    assert cun.get("/api/flags", params={"stage": "nonsense"}).status_code == 422
    assert cun.get("/api/flags", params={"village": "62' OR 1=1"}).status_code == 422
    assert out.get("/api/flags").json()["flags"] == [] or bench.flag_key not in {
        f["flag_key"] for f in out.get("/api/flags").json()["flags"]}

    detail = cun.get(f"/api/flags/{bench.flag_key}").json()
    assert detail["stage"] == "pending_village" and detail["steps"] == [] and detail["evidence"]["records"]
    assert not ID.search(str(detail["evidence"])) and not ID.search(detail["evidence_text"] or "")
    body = {"action": "agree", "note": "", "evidence_hash": detail["evidence_hash"],
            "state_token": detail["state_token"], "verifiers": []}
    step = f"/api/flags/{bench.flag_key}/steps"

    assert cun.post(step, json={**body, "state_token": "pending_village|9"}).status_code == 409
    assert cun.post(step, json={**body, "evidence_hash": "0" * 64}).status_code == 409
    assert xiang.post(step, json={**body, "action": "verify", "verifiers": ["甲", "乙", "丙"]}).status_code == 403
    assert out.post(step, json=body).status_code == 404
    assert cun.post(step, json={**body, "action": "disagree"}).status_code == 422            # no reason
    assert cun.post(step, json={**body, "action": "launch"}).status_code == 422              # no such action
    assert cun.post(step, json={k: v for k, v in body.items() if k != "evidence_hash"}).status_code == 422
    assert cun.post(step, json={**body, "extra": 1}).status_code == 422
    assert cun.post(step, json={**body, "verifiers": "甲乙丙"}).status_code == 422
    assert cun.post(step, content=b"{not json", headers={"Content-Type": "application/json"}).status_code == 422
    malformed = cun.post(step, json={**body, "note": 5, "verifiers": [1]}).json()
    assert "input" not in str(malformed)                                                 # the value is not echoed
    assert bench.flag()["step_seq"] == 0, "no refused step moved the flag"

    agreed = cun.post(step, json=body)
    assert (agreed.status_code, agreed.json()) == (200, {"stage": "publicity_1"})
    again = cun.post(step, json=body)                               # the same state a second time: someone acted
    assert again.status_code == 409 and "detail" in again.json()
    now = cun.get(f"/api/flags/{bench.flag_key}").json()
    assert [s["action"] for s in now["steps"]] == ["agree"] and now["steps"][0]["actor"] == "cun"
    objection = cun.post(step, json={**body, "action": "object", "note": "有异议", "state_token": now["state_token"]})
    assert (objection.status_code, objection.json()) == (200, {"stage": "pending_village"})
    agreed = cun.post(step, json={**body, "state_token": f"pending_village|{bench.flag()['step_seq']}"})
    assert agreed.json() == {"stage": "publicity_1"}

    entries = cun.get("/api/publicity", params={"village": bench.village}).json()["entries"]
    assert bench.flag_key in {e["flag_key"] for e in entries} and not ID.search(str(entries))
    assert cun.get("/api/publicity").status_code == 422
    assert out.get("/api/publicity", params={"village": bench.village}).status_code == 404

    full = cun.get(f"/api/households/{bench.household_id}").json()
    assert full["full_numbers"] and ID.search(str(full["members"]))
    masked = shenji.get(f"/api/households/{bench.household_id}").json()
    assert not masked["full_numbers"] and not ID.search(str(masked))
    assert out.get(f"/api/households/{bench.household_id}").status_code == 404

    today = clock.today(bench.app.state.policy.time_zone).isoformat()
    assert cun.get("/api/audit").status_code == 403
    rows = pd.DataFrame(xian.get("/api/audit", params={"since": today}).json()["rows"])
    steps = rows[rows["action"].eq("step")]
    assert len(steps) == 3 and set(steps["object_key"]) == {bench.flag_key} and set(steps["origin"]) == {"127.0.0.1"}
    views = rows[rows["action"].eq("full_number_view")]
    assert views["actor"].tolist() == ["cun"] and views["object_key"].tolist() == [bench.household_id]
    assert not rows["object_key"].fillna("").str.contains(ID).any()
    assert xian.get("/api/audit", params={"since": "yesterday"}).status_code == 422
    assert xian.get("/api/audit", params={"since": "0001-01-01T00:00:00"}).status_code == 422   # not a 500
    assert cun.get("/api/flags", params={"offset": 2**63}).status_code == 422
    assert xian.get("/api/audit", params={"since": "2999-01-01"}).json()["rows"] == []
    whole = xian.get("/api/audit").json()
    assert whole["next_before"] is None and len(whole["rows"]) >= 5
    paged, params = [], {"limit": 2}
    while True:   # pages of two, each from where the last one ended
        answer = xian.get("/api/audit", params=params).json()
        paged += [r["audit_id"] for r in answer["rows"]]
        if answer["next_before"] is None:
            break
        assert len(answer["rows"]) == 2 and answer["next_before"] == answer["rows"][-1]["audit_id"]
        params["before"] = answer["next_before"]
    assert paged[:len(whole["rows"])] == [r["audit_id"] for r in whole["rows"]] and len(paged) == len(whole["rows"])
    for wrong in ({"limit": 0}, {"limit": 10_001}, {"before": 2**31}, {"before": "x"}):
        assert xian.get("/api/audit", params=wrong).status_code == 422, wrong
    for c in (cun, xiang, out, xian, shenji):
        c.close()
