"""The m3ter API emulator over real sockets on 127.0.0.1, with httpx."""

from __future__ import annotations

import base64
import json
import math
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from reconciler.emulator import DEMO_ORG_ID, EmulatorConfig
from reconciler.emulator.testing import RunningEmulator, running_emulator, spawned_emulator
from reconciler.store import FAIL_ENV

ALLOWED_ERRORS = {400, 403, 404, 429, 500, 502, 504}
REPO = Path(__file__).resolve().parents[1]
OTHER_ORG = "11111111-2222-4333-8444-555555555555"


@pytest.fixture(autouse=True)
def _no_store_faults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(FAIL_ENV, raising=False)


@pytest.fixture(scope="module")
def emu() -> Iterator[RunningEmulator]:
    os.environ.pop(FAIL_ENV, None)
    with running_emulator(EmulatorConfig(rate_limit=None, org_ids=(DEMO_ORG_ID, OTHER_ORG))) as running:
        yield running


@pytest.fixture(scope="module")
def client(emu: RunningEmulator) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=emu.base_url, headers=emu.auth_headers(), timeout=10) as c:
        yield c


def account(code: str, **extra: Any) -> dict[str, Any]:
    return {"code": code, "name": f"Account {code}", "emailAddress": "a@example.com", **extra}


def path(emu: RunningEmulator, rest: str, org: str | None = None) -> str:
    return f"/organizations/{org or emu.org_id}/{rest}"


def ok(response: httpx.Response) -> Any:
    assert response.status_code == 200, response.text
    return response.json()


def fails(response: httpx.Response, status: int, *needles: str) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"message"} and isinstance(body["message"], str)
    for needle in needles:
        assert needle in body["message"]
    return str(body["message"])


# --------------------------------------------------------------------------- auth


def _claims(token: str) -> dict[str, Any]:
    head, body, sig = token.split(".")
    pad = "=" * (-len(body) % 4)
    assert json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))["alg"] == "HS256"
    assert sig
    return dict(json.loads(base64.urlsafe_b64decode(body + pad)))


def test_token_json_and_form(emu: RunningEmulator) -> None:
    url = "/oauth/token"
    creds = (emu.api_key, emu.api_secret)
    as_json = ok(emu.http().post(url, json={"grant_type": "client_credentials"}, auth=creds))
    as_form = ok(emu.http().post(url, data={"grant_type": "client_credentials"}, auth=creds))
    for answer in (as_json, as_form):
        assert answer["token_type"] == "Bearer"
        assert answer["expires_in"] == 18000
        claims = _claims(answer["access_token"])
        assert claims["orgId"] == emu.org_id and claims["sub"] == emu.api_key
        assert claims["exp"] - claims["iat"] in (18000, 18001)
        assert abs(claims["iat"] - time.time()) < 5
    assert as_json["access_token"] != as_form["access_token"]


def test_token_errors(emu: RunningEmulator) -> None:
    url = f"{emu.base_url}/oauth/token"
    grant = {"grant_type": "client_credentials"}
    fails(emu.http().post(url, json=grant, auth=(emu.api_key, "wrong")), 403, "invalid client credentials")
    fails(emu.http().post(url, json=grant, auth=("nobody", emu.api_secret)), 403)
    fails(emu.http().post(url, json=grant), 403, "Basic")
    fails(emu.http().post(url, json=grant, headers={"Authorization": "Basic !!!notbase64"}), 403)
    creds = (emu.api_key, emu.api_secret)
    fails(emu.http().post(url, json={"grant_type": "password"}, auth=creds), 400, "unsupported grant_type")
    fails(emu.http().post(url, json={}, auth=creds), 400, "grant_type is required")
    fails(emu.http().post(url, data={"scope": "x"}, auth=creds), 400, "grant_type is required")
    fails(emu.http().post(url, content=b"{nope", headers={"content-type": "application/json"}, auth=creds), 400, "JSON")
    fails(emu.http().post(url, json=["grant_type"], auth=creds), 400)
    assert emu.http().get(url).status_code == 404


def test_bearer_required_everywhere(emu: RunningEmulator) -> None:
    url = f"{emu.base_url}{path(emu, 'accounts')}"
    fails(emu.http().get(url), 403, "bearer token is required")
    fails(emu.http().get(url, headers={"Authorization": "Bearer nonsense"}), 403, "invalid bearer token")
    fails(emu.http().get(url, headers={"Authorization": f"Basic {emu.token()}"}), 403)
    token = emu.token()
    head, _body, sig = token.split(".")
    tampered_claims = {**_claims(token), "exp": 9999999999}
    forged = base64.urlsafe_b64encode(json.dumps(tampered_claims).encode()).decode().rstrip("=")
    fails(emu.http().get(url, headers={"Authorization": f"Bearer {head}.{forged}.{sig}"}), 403, "invalid")
    ok(emu.http().get(url, headers={"Authorization": f"Bearer {token}"}))


def test_unknown_org_is_forbidden(emu: RunningEmulator, client: httpx.Client) -> None:
    fails(client.get(path(emu, "accounts", org="not-served")), 403, "not-served")
    ok(client.get(path(emu, "accounts", org=OTHER_ORG)))


def test_token_expiry(emu: RunningEmulator) -> None:
    assert emu.emulator is not None
    headers = emu.auth_headers()
    url = f"{emu.base_url}{path(emu, 'organizationconfig')}"
    ok(emu.http().get(url, headers=headers))
    emu.emulator.clock_offset += 18001
    try:
        fails(emu.http().get(url, headers=headers), 403, "expired")
        ok(emu.http().get(url, headers=emu.auth_headers()))  # a fresh token works
    finally:
        emu.emulator.clock_offset -= 18001


def test_short_token_ttl() -> None:
    with running_emulator(EmulatorConfig(rate_limit=None, token_ttl=1)) as emu:
        response = ok(
            emu.http().post(
                f"{emu.base_url}/oauth/token",
                json={"grant_type": "client_credentials"},
                auth=(emu.api_key, emu.api_secret),
            )
        )
        assert response["expires_in"] == 1
        headers = {"Authorization": f"Bearer {response['access_token']}"}
        url = f"{emu.base_url}{path(emu, 'customfields')}"
        ok(emu.http().get(url, headers=headers))
        exp = _claims(response["access_token"])["exp"]
        assert exp - time.time() <= 2.0
        assert emu.emulator is not None
        emu.emulator.clock_offset = exp - time.time() + 0.001  # one second later, without sleeping
        fails(emu.http().get(url, headers=headers), 403, "expired")


# --------------------------------------------------------------------------- CRUD and errors


PICKLIST_PATHS = [
    "picklists/currency",
    "picklists/creditreasons",
    "picklists/debitreasons",
    "picklists/transactiontypes",
]


@pytest.mark.parametrize("rest", [*PICKLIST_PATHS, "accounts"])
def test_crud_each_kind(emu: RunningEmulator, client: httpx.Client, rest: str) -> None:
    code = "CRUD_" + rest.split("/")[-1]
    body = account(code) if rest == "accounts" else {"code": code, "name": "Crud"}
    created = ok(client.post(path(emu, rest), json=body))
    assert created["version"] == 1 and created["code"] == code
    for field in ("id", "dtCreated", "dtLastModified", "createdBy", "lastModifiedBy"):
        assert created[field]
    assert created["createdBy"] == emu.api_key
    item = path(emu, f"{rest}/{created['id']}")
    assert ok(client.get(item)) == created
    updated = ok(client.put(item, json={**body, "name": "Renamed", "version": 1}))
    assert updated["version"] == 2 and updated["name"] == "Renamed"
    fails(client.put(item, json={**body, "version": 1}), 400, "version mismatch", "expected version 2", "given 1")
    fails(client.post(path(emu, rest), json=body), 400, "code already exists")
    removed = ok(client.delete(item))
    assert removed == updated
    fails(client.get(item), 404)
    fails(client.delete(item), 404)
    fails(client.put(item, json={**body, "version": 2}), 404)


def test_put_clears_omitted_fields(emu: RunningEmulator, client: httpx.Client) -> None:
    created = ok(client.post(path(emu, "accounts"), json=account("CLEARS", purchaseOrderNumber="PO-9")))
    updated = ok(client.put(path(emu, f"accounts/{created['id']}"), json={**account("CLEARS"), "version": 1}))
    assert "purchaseOrderNumber" not in updated


def test_singletons(emu: RunningEmulator, client: httpx.Client) -> None:
    org = OTHER_ORG
    config = ok(client.get(path(emu, "organizationconfig", org)))
    assert config["currency"] == "USD" and config["version"] == 1
    body = {k: v for k, v in config.items() if k not in ("id", "dtCreated", "dtLastModified", "createdBy")}
    fails(client.put(path(emu, "organizationconfig", org), json=body), 400, "daysBeforeBillDue: is required")
    body["daysBeforeBillDue"] = 30  # PUT requires it; a fresh organization has none (no documented default)
    updated = ok(client.put(path(emu, "organizationconfig", org), json={**body, "timezone": "Europe/Paris"}))
    assert updated["version"] == 2 and updated["timezone"] == "Europe/Paris"
    fails(client.put(path(emu, "organizationconfig", org), json=body), 400, "version mismatch")
    fails(client.put(path(emu, "organizationconfig", org), json={"version": 2}), 400, "is required")
    fields = ok(client.get(path(emu, "customfields", org)))
    out = ok(
        client.put(path(emu, "customfields", org), json={"account": {"tier": "gold"}, "version": fields["version"]})
    )
    assert out["account"] == {"tier": "gold"} and out["version"] == fields["version"] + 1
    fails(client.post(path(emu, "organizationconfig", org), json=body), 404)
    fails(client.delete(path(emu, "customfields", org)), 404)


def test_bad_bodies(emu: RunningEmulator, client: httpx.Client) -> None:
    url = path(emu, "picklists/creditreasons")
    fails(client.post(url, content=b"{not json", headers={"content-type": "application/json"}), 400, "not valid JSON")
    fails(client.post(url, content=b""), 400, "body is required")
    fails(client.post(url, json=[1, 2]), 400, "JSON object")
    nan = b'{"code": "X", "name": "X", "customFields": {"a": NaN}}'
    fails(client.post(path(emu, "accounts"), content=nan, headers={"content-type": "application/json"}), 400)
    fails(client.post(url, json={"code": "X"}), 400, "name: is required")
    fails(client.post(url, json={"code": "X", "name": "X", "extra": 1}), 400, "extra: unknown field")
    fails(client.post(url, json={"code": "X", "name": "X", "version": 3}), 400, "version")
    fails(client.post(path(emu, "accounts"), json=account("P", parentAccountId="missing")), 400, "does not exist")


def test_only_documented_statuses(emu: RunningEmulator, client: httpx.Client) -> None:
    responses = [
        client.get(path(emu, "nothing/here")),
        client.patch(path(emu, "accounts")),
        client.delete(path(emu, "accounts")),
        client.get(path(emu, "accounts"), params={"pageSize": "lots"}),
        client.get(path(emu, "picklists/currency"), params={"archived": "maybe"}),
        client.get(path(emu, "accounts"), params={"nextToken": "%%%"}),
        client.get("/"),
        client.put(path(emu, "accounts/x"), content=b"]"),
        emu.http().get(f"{path(emu, 'accounts')}"),
    ]
    statuses = {r.status_code for r in responses}
    assert statuses <= ALLOWED_ERRORS, statuses
    for r in responses:
        fails(r, r.status_code)


def test_account_with_children_not_deletable(emu: RunningEmulator, client: httpx.Client) -> None:
    parent = ok(client.post(path(emu, "accounts"), json=account("PARENT_X")))
    kids = [
        ok(client.post(path(emu, "accounts"), json=account(f"KID_{i}", parentAccountId=parent["id"]))) for i in range(3)
    ]
    fails(client.delete(path(emu, f"accounts/{parent['id']}")), 400, "child account")
    page = ok(client.get(path(emu, f"accounts/{parent['id']}/children"), params={"pageSize": 2}))
    assert [a["code"] for a in page["data"]] == ["KID_2", "KID_1"]
    rest = ok(
        client.get(
            path(emu, f"accounts/{parent['id']}/children"), params={"pageSize": 2, "nextToken": page["nextToken"]}
        )
    )
    assert [a["code"] for a in rest["data"]] == ["KID_0"] and "nextToken" not in rest
    ok(client.get(path(emu, f"accounts/{parent['id']}/children"), params={"pageSize": 200}))
    fails(client.get(path(emu, f"accounts/{parent['id']}/children"), params={"pageSize": 201}), 400, "pageSize")
    fails(client.get(path(emu, "accounts/nope/children")), 404)
    for kid in kids:
        ok(client.delete(path(emu, f"accounts/{kid['id']}")))
    ok(client.delete(path(emu, f"accounts/{parent['id']}")))


# --------------------------------------------------------------------------- lists


def test_pagination_newest_first() -> None:
    with running_emulator(EmulatorConfig(rate_limit=None)) as emu:
        created = emu.store.create_many(emu.org_id, "account", [account(f"PG{i:03d}") for i in range(250)])
        expected = [c["code"] for c in reversed(created)]
        seen: list[str] = []
        pages = 0
        token = None
        with httpx.Client(base_url=emu.base_url, headers=emu.auth_headers()) as c:
            while True:
                params: dict[str, Any] = {"pageSize": 100}
                if token:
                    params["nextToken"] = token
                page = ok(c.get(path(emu, "accounts"), params=params))
                pages += 1
                seen.extend(a["code"] for a in page["data"])
                token = page.get("nextToken")
                if not token:
                    break
            assert pages == 3 and seen == expected
            default = ok(c.get(path(emu, "accounts")))
            assert len(default["data"]) == 10 and default["nextToken"]
            for bad in ("0", "101", "-1", "ten"):
                fails(c.get(path(emu, "accounts"), params={"pageSize": bad}), 400, "pageSize")
            ok(c.get(path(emu, "accounts"), params={"pageSize": 1}))
            fails(c.get(path(emu, "accounts"), params={"nextToken": "garbage"}), 400, "nextToken")


def test_codes_and_ids_repeated_or_comma_joined(emu: RunningEmulator, client: httpx.Client) -> None:
    made = [ok(client.post(path(emu, "picklists/debitreasons"), json={"code": f"F{i}", "name": "f"})) for i in range(4)]
    url = path(emu, "picklists/debitreasons")

    def codes(params: Any) -> list[str]:
        return sorted(e["code"] for e in ok(client.get(url, params=params))["data"])

    assert codes([("codes", "F0"), ("codes", "F2")]) == ["F0", "F2"]
    assert codes({"codes": "F1,F3"}) == ["F1", "F3"]
    assert codes([("codes[]", "F0"), ("codes[]", "F1")]) == ["F0", "F1"]
    assert codes([("codes", "F0,F1"), ("codes", "F3")]) == ["F0", "F1", "F3"]
    assert codes({"ids": f"{made[0]['id']},{made[3]['id']}"}) == ["F0", "F3"]
    assert codes([("ids", made[1]["id"]), ("ids", made[2]["id"])]) == ["F1", "F2"]
    assert codes({"codes": "NOPE"}) == []
    # a code that contains a comma is still found
    ok(client.post(path(emu, "accounts"), json=account("with,comma")))
    found = ok(client.get(path(emu, "accounts"), params={"codes": "with,comma"}))["data"]
    assert [a["code"] for a in found] == ["with,comma"]


@pytest.mark.parametrize(
    ("picklist", "true_means"),
    [
        # openapi-full.json: "TRUE - return archived Currencies" ...
        ("currency", "only"),
        # ... but "TRUE includes archived CreditReasons" (and the like) for the others
        ("creditreasons", "include"),
        ("debitreasons", "include"),
        ("transactiontypes", "include"),
    ],
)
def test_archived_filter_follows_the_document_per_endpoint(
    emu: RunningEmulator, client: httpx.Client, picklist: str, true_means: str
) -> None:
    url = path(emu, f"picklists/{picklist}")
    ok(client.post(url, json={"code": "LIVE_T", "name": "t"}))
    ok(client.post(url, json={"code": "OLD_T", "name": "t", "archived": True}))

    def codes(**params: Any) -> set[str]:
        return {e["code"] for e in ok(client.get(url, params={"pageSize": 100, **params}))["data"]}

    assert {"LIVE_T"} <= codes() and "OLD_T" not in codes()
    assert "OLD_T" in codes(archived="true")
    assert ("LIVE_T" in codes(archived="true")) is (true_means == "include")
    assert codes(archived="false") == codes()
    assert codes(archived="TRUE") == codes(archived="true")
    fails(client.get(url, params={"archived": "yes"}), 400, "archived must be true or false")


def test_search_routed_before_id(emu: RunningEmulator, client: httpx.Client) -> None:
    for i in range(5):
        ok(client.post(path(emu, "accounts"), json=account(f"SRCH{i}", name=f"Premium {i}", currency="USD")))
    url = path(emu, "accounts/search")
    hit = ok(client.get(url, params={"searchQuery": "code:SRCH3"}))
    assert [a["code"] for a in hit["data"]] == ["SRCH3"] and "nextToken" not in hit
    prefix = ok(client.get(url, params={"searchQuery": "name~premium$currency:USD", "pageSize": 2}))
    assert [a["code"] for a in prefix["data"]] == ["SRCH4", "SRCH3"]
    more = ok(
        client.get(url, params={"searchQuery": "name~premium", "pageSize": 2, "fromDocument": prefix["nextToken"]})
    )
    assert [a["code"] for a in more["data"]] == ["SRCH2", "SRCH1"]
    either = ok(client.get(url, params={"searchQuery": "code:SRCH0$code:SRCH1", "operator": "OR"}))
    assert {a["code"] for a in either["data"]} == {"SRCH0", "SRCH1"}
    listed = ok(client.get(url, params={"searchQuery": "codes:SRCH0,SRCH2", "sortBy": "code", "sortOrder": "ASC"}))
    assert [a["code"] for a in listed["data"]] == ["SRCH0", "SRCH2"]
    fails(client.get(url, params={"searchQuery": "colour:red"}), 400, "cannot search")
    fails(client.get(url, params={"searchQuery": "garbage"}), 400)
    fails(client.get(url, params={"fromDocument": "-3"}), 400)


# --------------------------------------------------------------------------- switches


def _align_to_second_start(emu: RunningEmulator) -> None:
    """Shift the emulator clock so that it is just past a whole second (nearly 1 s left)."""
    assert emu.emulator is not None
    now = time.time()
    emu.emulator.clock_offset = math.ceil(now) - now + 0.001


def test_rate_limit_per_org_per_second() -> None:
    with running_emulator(EmulatorConfig(rate_limit=5, org_ids=(DEMO_ORG_ID, OTHER_ORG))) as emu:
        assert emu.emulator is not None
        token_url = f"{emu.base_url}/oauth/token"
        with httpx.Client(base_url=emu.base_url, headers=emu.auth_headers()) as c:
            _align_to_second_start(emu)
            statuses = [c.get(path(emu, "picklists/currency")).status_code for _ in range(8)]
            assert statuses == [200] * 5 + [429] * 3
            limited = c.get(path(emu, "accounts"))
            fails(limited, 429, "too many requests")
            assert limited.headers["Retry-After"] == "1"
            # the token endpoint is outside the limit, and other organizations have their own
            for _ in range(10):
                ok(
                    emu.http().post(
                        token_url, json={"grant_type": "client_credentials"}, auth=(emu.api_key, emu.api_secret)
                    )
                )
            ok(c.get(path(emu, "accounts", OTHER_ORG)))
            # the next calendar second starts afresh
            emu.emulator.clock_offset += 1
            ok(c.get(path(emu, "accounts")))
        assert emu.stats()["rate_limited"] == 4


def test_latency_is_added_without_blocking() -> None:
    with running_emulator(EmulatorConfig(rate_limit=None, latency_ms=250)) as emu:
        headers = emu.auth_headers()
        url = f"{emu.base_url}{path(emu, 'picklists/currency')}"
        started = time.monotonic()
        ok(emu.http().get(url, headers=headers))
        assert time.monotonic() - started >= 0.25
        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=8) as pool:
            results = list(pool.map(lambda _: emu.http().get(url, headers=headers).status_code, range(8)))
        elapsed = time.monotonic() - started
        assert results == [200] * 8
        assert 0.25 <= elapsed < 1.25  # concurrent: one after the other would take 2 s
        # the token endpoint stays cheap
        started = time.monotonic()
        emu.token()
        assert time.monotonic() - started < 0.2


def _outcomes(seed: int) -> list[str]:
    config = EmulatorConfig(rate_limit=None, fail_rate=0.5, fail_seed=seed)
    with running_emulator(config) as emu:
        out = []
        with httpx.Client(base_url=emu.base_url, headers=emu.auth_headers()) as c:
            for i in range(24):
                try:
                    response = c.post(path(emu, "picklists/creditreasons"), json={"code": f"S{i}", "name": "s"})
                    out.append(str(response.status_code))
                except httpx.TransportError:
                    out.append("drop")
        written = {e["code"] for e in emu.store.list_all(emu.org_id, "creditReason")}
        for i, outcome in enumerate(out):
            if outcome == "200":
                assert f"S{i}" in written
        assert emu.stats()["tokens"] == 1  # the token endpoint never fails
    return out


def test_fail_rate_is_seeded_and_mixed() -> None:
    first = _outcomes(7)
    assert first == _outcomes(7)
    assert set(first) <= {"200", "500", "502", "504", "drop"}
    assert "200" in first and len(set(first) - {"200"}) >= 2


def test_failure_after_write() -> None:
    config = EmulatorConfig(rate_limit=None, fail_rate=1.0, fail_kinds=("502",), fail_after_share=1.0, fail_seed=1)
    with running_emulator(config) as emu:
        headers = emu.auth_headers()
        fails(emu.http().post(f"{path(emu, 'accounts')}", json=account("GHOST"), headers=headers), 502)
        [ghost] = emu.store.list_all(emu.org_id, "account")
        assert ghost["code"] == "GHOST"  # the write happened although the client saw 502
        fails(emu.http().get(f"{path(emu, 'accounts')}", headers=headers), 502)  # reads fail before
        assert emu.stats()["injected_502_after_write"] == 1


# A dropped connection reaches the client as a protocol error or a reset, depending on timing.
DROPPED = (httpx.RemoteProtocolError, httpx.ReadError)


def test_dropped_connection_before_and_after_write() -> None:
    config = EmulatorConfig(rate_limit=None, fail_rate=1.0, fail_kinds=("drop",), fail_after_share=0.0)
    with running_emulator(config) as emu:
        headers = emu.auth_headers()
        with pytest.raises(DROPPED):
            emu.http().post(f"{path(emu, 'accounts')}", json=account("NEVER"), headers=headers)
        assert emu.store.list_all(emu.org_id, "account") == []
    config = EmulatorConfig(rate_limit=None, fail_rate=1.0, fail_kinds=("drop",), fail_after_share=1.0)
    with running_emulator(config) as emu:
        headers = emu.auth_headers()
        with httpx.Client(headers=headers) as c:
            for code in ("LOST1", "LOST2"):
                with pytest.raises(DROPPED):
                    c.post(f"{emu.base_url}{path(emu, 'accounts')}", json=account(code))
        assert sorted(a["code"] for a in emu.store.list_all(emu.org_id, "account")) == ["LOST1", "LOST2"]
        assert emu.stats()["dropped"] == 2


def test_store_fault_injection_reaches_http(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(FAIL_ENV, "create:account:BOOM")
    with running_emulator(EmulatorConfig(rate_limit=None)) as emu:
        headers = emu.auth_headers()
        fails(emu.http().post(f"{path(emu, 'accounts')}", json=account("BOOM"), headers=headers), 500, "injected")
        ok(emu.http().post(f"{path(emu, 'accounts')}", json=account("FINE"), headers=headers))


# --------------------------------------------------------------------------- configuration and processes


def test_config_resolution(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("M3TER_ORG_ID", "M3TER_API_KEY", "M3TER_API_SECRET"):
        monkeypatch.delenv(var, raising=False)
    demo = EmulatorConfig().resolved()
    assert demo.demo_credentials and demo.org_ids == (DEMO_ORG_ID,)
    assert demo.api_key and demo.api_secret and demo.api_key.startswith("demo-")
    monkeypatch.setenv("M3TER_ORG_ID", "org-from-env")
    monkeypatch.setenv("M3TER_API_KEY", "k")
    monkeypatch.setenv("M3TER_API_SECRET", "s")
    env = EmulatorConfig().resolved()
    assert (env.org_ids, env.api_key, env.api_secret, env.demo_credentials) == (("org-from-env",), "k", "s", False)
    explicit = EmulatorConfig(org_ids=("a", "b"), api_key="K", api_secret="S").resolved()
    assert (explicit.org_ids, explicit.api_key) == (("a", "b"), "K")
    with pytest.raises(ValueError, match="both"):
        EmulatorConfig(api_key="only-key").resolved()
    with pytest.raises(ValueError, match="fail rate"):
        EmulatorConfig(fail_rate=2).resolved()
    with pytest.raises(ValueError, match="failure kinds"):
        EmulatorConfig(fail_kinds=("503",)).resolved()


def test_spawned_emulator_process(tmp_path: Path) -> None:
    db = tmp_path / "spawned.sqlite"
    with spawned_emulator(EmulatorConfig(rate_limit=None, db=str(db), org_ids=("org-a",))) as emu:
        assert emu.process is not None and emu.process.poll() is None
        assert emu.base_url.startswith("http://127.0.0.1:")
        with httpx.Client(base_url=emu.base_url, headers=emu.auth_headers()) as c:
            ok(c.post(path(emu, "accounts"), json=account("FROM_CHILD")))
            assert [a["code"] for a in ok(c.get(path(emu, "accounts")))["data"]] == ["FROM_CHILD"]
        proc = emu.process
    assert proc.poll() is not None
    # the data outlives the process in the given database
    from reconciler.store import Store

    with Store(db) as store:
        assert [a["code"] for a in store.list_all("org-a", "account")] == ["FROM_CHILD"]


def test_demo_credentials_are_announced(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("M3TER_")}
    env["PYTHONPATH"] = str(REPO)
    proc = subprocess.Popen(
        [sys.executable, "-m", "reconciler.emulator.server", "--port", "0", "--db", str(tmp_path / "d.sqlite")],
        stderr=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=env,
    )
    try:
        assert proc.stderr is not None
        lines = []
        while True:
            line = proc.stderr.readline().decode()
            assert line, "emulator exited early: " + "".join(lines)
            lines.append(line)
            if line.startswith("m3ter emulator listening on http://127.0.0.1:"):
                break
        exports = dict(
            line.removeprefix("export ").strip().split("=", 1) for line in lines if line.startswith("export ")
        )
        assert set(exports) == {"M3TER_API_KEY", "M3TER_API_SECRET", "M3TER_ORG_ID", "M3TER_BASE_URL"}
        base = lines[-1].split(" on ", 1)[1].strip()
        assert exports["M3TER_BASE_URL"] == base
        answer = httpx.post(
            f"{base}/oauth/token",
            data={"grant_type": "client_credentials"},
            auth=(exports["M3TER_API_KEY"], exports["M3TER_API_SECRET"]),
        )
        assert answer.status_code == 200
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert proc.stdout is not None and proc.stdout.read() == b""  # nothing on stdout


def test_bad_switches_exit_with_message() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "reconciler.emulator.server", "--port", "0", "--fail-rate", "3"],
        capture_output=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        timeout=30,
    )
    assert result.returncode == 1
    assert b"fail rate must be between 0 and 1" in result.stderr
    assert b"Traceback" not in result.stderr


def test_core_modules_do_not_import_web_framework() -> None:
    code = (
        "import sys\n"
        "import reconciler.emulator, reconciler.emulator.config, reconciler.emulator.core\n"
        "import reconciler.store, reconciler.backends.local, reconciler.cli\n"
        "bad = [m for m in ('starlette', 'uvicorn') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=30)
