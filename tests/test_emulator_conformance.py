"""Every emulator exchange, success and error, checked against m3ter's full official document.

``tests/fixtures/m3ter-openapi-full.json`` (all 187 paths; see the NOTE beside it) is the
reference, not the subset we cut: responses must match their declared schemas and carry only
declared properties (plus ``--extra-fields`` ones when on), and requests the emulator accepted
must match the operation's parameters and body. The checks live in ``tests/openapi_full.py``
and are used by the end-to-end suites as well.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from reconciler import kinds
from reconciler.emulator import EmulatorConfig
from reconciler.emulator.core import Exchange
from reconciler.emulator.testing import RunningEmulator, running_emulator
from reconciler.store import FAIL_ENV
from tests.catalog_samples import SAMPLES, TOURED_BY_HAND
from tests.openapi_full import check_exchange, document, operation

PICKLISTS = ["currency", "creditreasons", "debitreasons", "transactiontypes"]


@pytest.fixture(scope="module")
def spec_doc() -> dict[str, Any]:
    return document()


class Recorder:
    """An httpx client that remembers every exchange."""

    def __init__(self, emu: RunningEmulator) -> None:
        self.emu = emu
        self.exchanges: list[httpx.Response] = []
        self.client = httpx.Client(base_url=emu.base_url, timeout=10, event_hooks={"response": [self._keep]})

    def _keep(self, response: httpx.Response) -> None:
        response.read()
        self.exchanges.append(response)

    def org(self, rest: str, org: str | None = None) -> str:
        return f"/organizations/{org or self.emu.org_id}/{rest}"

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)


@pytest.fixture(scope="module", params=[False, True], ids=["plain", "extra-fields"])
def recorded(request: pytest.FixtureRequest) -> Iterator[list[Exchange]]:
    """Server-side exchanges of a tour of every operation, plus rate limiting and injected
    failures; once plain and once with ``--extra-fields``."""
    extra = bool(request.param)
    out: list[Exchange] = []
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv(FAIL_ENV, raising=False)
        config = EmulatorConfig(rate_limit=None, org_ids=("org-conf",), extra_fields=extra)
        with running_emulator(config) as emu:
            assert emu.emulator is not None
            emu.emulator.observers.append(out.append)
            r = Recorder(emu)
            _exercise(r)
            r.client.close()
        with running_emulator(EmulatorConfig(rate_limit=2, org_ids=("org-rate",), extra_fields=extra)) as emu:
            assert emu.emulator is not None
            emu.emulator.observers.append(out.append)
            r2 = Recorder(emu)
            headers = emu.auth_headers()
            # 2 per calendar second: requests until one is refused (a loaded machine may need
            # more than three to fit three into one second)
            for _ in range(50):
                if r2.get(r2.org("accounts"), headers=headers).status_code == 429:
                    break
            r2.client.close()
        with running_emulator(
            EmulatorConfig(
                rate_limit=None, fail_rate=1.0, fail_kinds=("500", "502", "504"), fail_seed=3, extra_fields=extra
            )
        ) as emu:
            assert emu.emulator is not None
            emu.emulator.observers.append(out.append)
            r3 = Recorder(emu)
            headers = emu.auth_headers()
            for i in range(6):
                r3.post(r3.org("picklists/creditreasons"), headers=headers, json={"code": f"F{i}", "name": "f"})
                r3.get(r3.org("accounts"), headers=headers)
            r3.client.close()
    yield out


def _exercise(r: Recorder) -> None:
    emu = r.emu
    creds = (emu.api_key, emu.api_secret)
    grant = {"grant_type": "client_credentials"}
    token = r.post("/oauth/token", json=grant, auth=creds).json()["access_token"]
    r.post("/oauth/token", data=grant, auth=creds)
    r.post("/oauth/token", json=grant, auth=(emu.api_key, "bad"))
    r.post("/oauth/token", json={"grant_type": "implicit"}, auth=creds)
    r.post("/oauth/token", content=b"{", headers={"content-type": "application/json"}, auth=creds)
    h = {"Authorization": f"Bearer {token}"}

    # singletons
    config = r.get(r.org("organizationconfig"), headers=h).json()
    body = {k: v for k, v in config.items() if k not in ("id", "dtCreated", "dtLastModified")}
    r.post(r.org("picklists/currency"), headers=h, json={"code": "GBP", "name": "Pound"})
    full = {
        **body,
        "currencyConversions": [{"from": "GBP", "to": "USD", "multiplier": 1.27}],
        "daysBeforeBillDue": 30,  # required by PUT, absent on a fresh organization
        "scheduledBillInterval": 24,
        "scheduledBillOffset": 2,
        "autoApproveBillsGracePeriod": 2,
        "autoApproveBillsGracePeriodUnit": "DAYS",
        "autoGenerateStatementMode": "JSON",
        "defaultStatementDefinitionId": "sd-1",
        "billPrefix": "INV-",
        "sequenceStartNumber": 100,
    }
    r.put(r.org("organizationconfig"), headers=h, json=full)
    r.put(r.org("organizationconfig"), headers=h, json=full)  # stale version
    r.put(r.org("organizationconfig"), headers=h, json={"version": 2})  # required fields missing
    fields = r.get(r.org("customfields"), headers=h).json()
    r.put(
        r.org("customfields"),
        headers=h,
        json={"organization": {"a": "x"}, "account": {"n": 1, "f": 1.5}, "version": fields["version"]},
    )
    r.put(r.org("customfields"), headers=h, json={"version": 1})

    # picklists
    for name in PICKLISTS:
        base = r.org(f"picklists/{name}")
        extra = {"maxDecimalPlaces": 4, "roundingMode": "HALF_EVEN"} if name == "currency" else {}
        created = r.post(base, headers=h, json={"code": f"C_{name}", "name": "One", **extra}).json()
        r.post(base, headers=h, json={"code": f"D_{name}", "name": "Two", "archived": True})
        r.post(base, headers=h, json={"code": f"C_{name}", "name": "Dup"})
        r.post(base, headers=h, json={"name": ""})
        r.get(base, headers=h)
        page = r.get(base, headers=h, params={"pageSize": 1}).json()
        r.get(base, headers=h, params={"pageSize": 1, "nextToken": page.get("nextToken", "")})
        r.get(base, headers=h, params={"archived": "true", "codes": f"C_{name},D_{name}"})
        r.get(base, headers=h, params=[("ids", created["id"]), ("ids", "missing")])
        r.get(base, headers=h, params={"pageSize": 500})
        item = f"{base}/{created['id']}"
        r.get(item, headers=h)
        r.put(item, headers=h, json={"code": f"C_{name}", "name": "One!", "version": 1, **extra})
        r.put(item, headers=h, json={"code": f"C_{name}", "name": "One!", "version": 1, **extra})
        r.delete(item, headers=h)
        r.get(item, headers=h)
        r.delete(item, headers=h)

    # accounts
    base = r.org("accounts")
    parent = r.post(
        base,
        headers=h,
        json={
            "code": "ACME",
            "name": "Acme",
            "emailAddress": "a@acme.example",
            "address": {"addressLine1": "1 Road", "locality": "Town", "postCode": "AB1", "country": "UK"},
            "billEpoch": "2024-01-15",
            "purchaseOrderNumber": "PO-1",
            "currency": "GBP",
            "statementDefinitionId": "sd",
            "autoGenerateStatementMode": "NONE",
            "creditApplicationOrder": ["PREPAYMENT", "BALANCE"],
            "daysBeforeBillDue": 7,
            "customFields": {"tier": "gold", "seats": 3, "ratio": 0.5},
        },
    ).json()
    child = r.post(
        base,
        headers=h,
        json={"code": "ACME/1", "name": "Child", "emailAddress": "c@acme.example", "parentAccountId": parent["id"]},
    ).json()
    r.post(base, headers=h, json={"code": "ACME", "name": "Dup", "emailAddress": "d@x.example"})
    r.post(base, headers=h, json={"code": " bad", "name": "x", "emailAddress": "nope"})
    r.get(base, headers=h)
    r.get(base, headers=h, params={"codes": "ACME,ACME/1", "pageSize": 1})
    r.get(base, headers=h, params={"pageSize": 0})
    r.get(r.org("accounts/search"), headers=h, params={"searchQuery": "code:ACME"})
    r.get(r.org("accounts/search"), headers=h, params={"pageSize": 1})
    r.get(r.org("accounts/search"), headers=h, params={"searchQuery": "bogus:1"})
    r.get(r.org(f"accounts/{parent['id']}/children"), headers=h, params={"pageSize": 200})
    r.get(r.org("accounts/missing/children"), headers=h)
    r.get(r.org(f"accounts/{parent['id']}"), headers=h)
    r.put(
        r.org(f"accounts/{child['id']}"),
        headers=h,
        json={"code": "ACME/1", "name": "Child", "emailAddress": "c@acme.example", "version": 1},
    )
    r.delete(r.org(f"accounts/{parent['id']}"), headers=h)  # has children: 400
    r.delete(r.org(f"accounts/{child['id']}"), headers=h)
    r.delete(r.org(f"accounts/{parent['id']}"), headers=h)

    # read-only kinds, seeded through the store
    store = emu.store
    sd = store.seed_statement_definition(emu.org_id, "Standard", aggregation_frequency="MONTH")
    r.get(r.org("statementdefinitions"), headers=h, params={"pageSize": 1})
    r.get(r.org(f"statementdefinitions/{sd['id']}"), headers=h)
    r.get(r.org("statementdefinitions/none"), headers=h)
    owner = r.post(base, headers=h, json={"code": "OWNER", "name": "Owner", "emailAddress": "o@x.example"}).json()
    ap = store.seed_account_plan(emu.org_id, owner["id"], start_date="2024-01-01", end_date="2025-01-01")
    r.get(r.org("accountplans"), headers=h, params={"account": owner["id"], "includeall": "true"})
    r.get(r.org("accountplans"), headers=h, params={"account": owner["id"]})
    r.get(r.org("accountplans"), headers=h, params={"product": "p"})
    r.get(r.org(f"accountplans/{ap['id']}"), headers=h)
    r.get(r.org("accountplans/none"), headers=h)
    r.delete(r.org(f"accounts/{owner['id']}"), headers=h)  # account plans reference it: 400
    # a picklist entry without a code (the request schemas require only name)
    r.post(r.org("picklists/debitreasons"), headers=h, json={"name": "No code"})

    # every other kind, from its sample body (tests/catalog_samples.py)
    def need(name: str) -> str:
        kind = kinds.get(name)
        created = r.post(r.org(kind.api_path), headers=h, json=SAMPLES[name](need))
        assert created.status_code == 200, created.text
        return str(created.json()["id"])

    for kind in kinds.KINDS:
        if kind.name in TOURED_BY_HAND:
            continue
        base = r.org(kind.api_path)
        entity_id = need(kind.name)
        r.post(base, headers=h, json={"version": 3})  # a create with a version and no required fields
        r.get(base, headers=h)
        page = r.get(base, headers=h, params={"pageSize": 1}).json()
        r.get(base, headers=h, params={"pageSize": 1, "nextToken": page.get("nextToken", "")})
        r.get(base, headers=h, params=[("ids", entity_id), ("ids", "missing")])
        r.get(base, headers=h, params={"pageSize": kind.page_size + 1})
        item = f"{base}/{entity_id}"
        current = r.get(item, headers=h).json()
        body = {k: v for k, v in current.items() if k not in kinds.READ_ONLY_FIELDS}
        r.put(item, headers=h, json={**body, "version": current["version"]})
        r.put(item, headers=h, json={**body, "version": current["version"]})  # stale version
        r.delete(item, headers=h)
        r.get(item, headers=h)
        r.delete(item, headers=h)

    # auth failures on API routes: every operation of the document without a token answers 403
    spec = document()
    for template, ops in spec["paths"].items():
        concrete = template.replace("{orgId}", emu.org_id).replace("{id}", "00000000-0000-0000-0000-000000000000")
        for method in ops:
            if method in ("get", "put", "post", "delete") and template != "/oauth/token":
                r.request(method.upper(), concrete, json={} if method in ("put", "post") else None)
    r.get(base)
    r.get(base, headers={"Authorization": "Bearer x.y.z"})
    r.get(r.org("accounts", org="not-ours"), headers=h)
    r.get(r.org("accounts/none"), headers=h)


# What the emulator serves: every kind's operations, account search and children, and the
# read-only statement definitions and account plans.
SERVED: set[tuple[str, str]] = {("post", "/oauth/token")}
for _kind in kinds.KINDS:
    _path = f"/organizations/{{orgId}}/{_kind.api_path}"
    if _kind.singleton:
        SERVED |= {("get", _path), ("put", _path)}
    else:
        SERVED |= {("get", _path), ("post", _path)}
        SERVED |= {(m, f"{_path}/{{id}}") for m in ("get", "put", "delete")}
SERVED |= {
    ("get", "/organizations/{orgId}/accounts/search"),
    ("get", "/organizations/{orgId}/accounts/{id}/children"),
    ("get", "/organizations/{orgId}/statementdefinitions"),
    ("get", "/organizations/{orgId}/statementdefinitions/{id}"),
    ("get", "/organizations/{orgId}/accountplans"),
    ("get", "/organizations/{orgId}/accountplans/{id}"),
}


def test_every_exchange_conforms_to_the_full_document(recorded: list[Exchange]) -> None:
    assert len(recorded) > 300
    statuses = {ex.status for ex in recorded}
    assert 200 in statuses and {400, 403, 404, 429} <= statuses and {500, 502, 504} <= statuses
    from reconciler.emulator.config import EXTRA_FIELDS

    extra = any("customerSince" in ex.response_body.decode() for ex in recorded)
    allowed = frozenset(EXTRA_FIELDS) if extra else frozenset()
    problems = [p for ex in recorded for p in check_exchange(ex, allowed_extra=allowed)]
    assert not problems, "\n".join(problems[:20])


def test_extra_fields_appear_on_every_object_when_on(recorded: list[Exchange]) -> None:
    bodies = [json.loads(ex.response_body) for ex in recorded if ex.status == 200 and ex.path.startswith("/org")]
    objects = [o for b in bodies for o in (b.get("data", [b]) if isinstance(b, dict) else [])]
    with_extra = [o for o in objects if "customerSince" in o]
    assert not with_extra or all("billingProfile" in o and "auditTrail" in o for o in with_extra)


def test_every_served_operation_exercised(recorded: list[Exchange], spec_doc: dict[str, Any]) -> None:
    declared = {(m, p) for p, ops in spec_doc["paths"].items() for m in ops if m in ("get", "put", "post", "delete")}
    assert declared >= SERVED, "the emulator serves operations the document does not have"
    seen_ok: set[tuple[str, str]] = set()
    seen_error: set[tuple[str, str]] = set()
    for ex in recorded:
        found = operation(ex.method, ex.path)
        if found is None:
            continue
        key = (ex.method.lower(), found[0])
        (seen_ok if ex.status == 200 else seen_error).add(key)
    assert seen_ok == SERVED, "operations answered 200 other than exactly the served ones"
    assert SERVED - seen_error == set(), "served operations never answered with an error"


def test_error_bodies_are_message_only(recorded: list[Exchange]) -> None:
    for ex in recorded:
        if ex.status != 200:
            body = json.loads(ex.response_body)
            assert set(body) == {"message"} and isinstance(body["message"], str) and body["message"]
        if ex.status == 429:
            assert int(ex.response_headers["retry-after"]) >= 1
