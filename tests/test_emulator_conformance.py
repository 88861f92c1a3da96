"""Every emulator response, success and error, checked against the official OpenAPI subset.

The document lives beside the repository (``../shared/m3ter-api/openapi-subset.json``), as in
CI. Its Java regular expressions (``\\p{L}``) are not valid Python patterns, so the document
itself is not re-validated; responses are, with openapi-core. openapi-core cannot forbid
undeclared properties through ``allOf``, so each response body is also checked to carry only
properties the response schema declares.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from openapi_core import Config, OpenAPI
from openapi_core.testing import MockRequest, MockResponse

from reconciler.emulator import EmulatorConfig
from reconciler.emulator.testing import RunningEmulator, running_emulator
from reconciler.store import FAIL_ENV

SPEC_PATH = Path(__file__).resolve().parents[2] / "shared" / "m3ter-api" / "openapi-subset.json"
SERVER = "https://api.m3ter.com"
ALLOWED_ERRORS = {400, 403, 404, 429, 500, 502, 504}
PICKLISTS = ["currency", "creditreasons", "debitreasons", "transactiontypes"]


@pytest.fixture(scope="module")
def spec_doc() -> dict[str, Any]:
    return dict(json.loads(SPEC_PATH.read_text()))


@pytest.fixture(scope="module")
def openapi() -> OpenAPI:
    return OpenAPI.from_file_path(str(SPEC_PATH), config=Config(spec_validator_cls=None))


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


@pytest.fixture(scope="module")
def recorded() -> Iterator[list[httpx.Response]]:
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv(FAIL_ENV, raising=False)
        config = EmulatorConfig(rate_limit=None, org_ids=("org-conf",))
        with running_emulator(config) as emu:
            r = Recorder(emu)
            _exercise(r)
            r.client.close()
        with running_emulator(EmulatorConfig(rate_limit=2, org_ids=("org-rate",))) as emu:
            r2 = Recorder(emu)
            headers = emu.auth_headers()
            for _ in range(4):
                r2.get(r2.org("accounts"), headers=headers)
            r2.client.close()
        with running_emulator(
            EmulatorConfig(rate_limit=None, fail_rate=1.0, fail_kinds=("500", "502", "504"), fail_seed=3)
        ) as emu:
            r3 = Recorder(emu)
            headers = emu.auth_headers()
            for i in range(6):
                r3.post(r3.org("picklists/creditreasons"), headers=headers, json={"code": f"F{i}", "name": "f"})
                r3.get(r3.org("accounts"), headers=headers)
            r3.client.close()
        yield r.exchanges + r2.exchanges + r3.exchanges


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

    # auth failures on API routes: every operation without a token answers 403
    spec = json.loads(SPEC_PATH.read_text())
    for template, ops in spec["paths"].items():
        concrete = template.replace("{orgId}", emu.org_id).replace("{id}", "00000000-0000-0000-0000-000000000000")
        for method in ops:
            if method in ("get", "put", "post", "delete") and template != "/oauth/token":
                r.request(method.upper(), concrete, json={} if method in ("put", "post") else None)
    r.get(base)
    r.get(base, headers={"Authorization": "Bearer x.y.z"})
    r.get(r.org("accounts", org="not-ours"), headers=h)
    r.get(r.org("accounts/none"), headers=h)


def _operation(spec: dict[str, Any], response: httpx.Response) -> tuple[str, dict[str, Any]]:
    """The path template and operation the spec declares for a recorded request."""
    path = response.request.url.path
    method = response.request.method.lower()
    parts = path.strip("/").split("/")
    candidates = []
    for template, ops in spec["paths"].items():
        tparts = template.strip("/").split("/")
        if len(tparts) != len(parts) or method not in ops:
            continue
        if all(t == p or (t.startswith("{") and t.endswith("}")) for t, p in zip(tparts, parts, strict=True)):
            literal = sum(1 for t in tparts if not t.startswith("{"))
            candidates.append((literal, template, ops[method]))
    assert candidates, f"no operation in the spec for {method.upper()} {path}"
    candidates.sort(key=lambda c: c[0], reverse=True)
    return candidates[0][1], candidates[0][2]


def _resolve(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        node: Any = spec
        for part in schema["$ref"].lstrip("#/").split("/"):
            node = node[part]
        schema = node
    return schema


def _declared(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Properties a schema declares, following $ref and allOf."""
    schema = _resolve(spec, schema)
    out: dict[str, dict[str, Any]] = {}
    for part in schema.get("allOf", []):
        out.update(_declared(spec, part))
    out.update(schema.get("properties", {}))
    return out


def _check_no_undeclared(spec: dict[str, Any], schema: dict[str, Any], value: Any, where: str) -> None:
    schema = _resolve(spec, schema)
    if isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            _check_no_undeclared(spec, schema["items"], item, f"{where}[{i}]")
        return
    if not isinstance(value, dict):
        return
    props = _declared(spec, schema)
    if not props:
        return  # a free-form map (customFields values)
    extra = set(value) - set(props)
    assert not extra, f"{where}: properties not in the spec: {sorted(extra)}"
    for key, item in value.items():
        _check_no_undeclared(spec, props[key], item, f"{where}.{key}")


def test_every_response_conforms(recorded: list[httpx.Response], openapi: OpenAPI, spec_doc: dict[str, Any]) -> None:
    assert len(recorded) > 100
    statuses = {r.status_code for r in recorded}
    assert 200 in statuses and {400, 403, 404, 429} <= statuses and {500, 502, 504} <= statuses
    problems = []
    for response in recorded:
        request = response.request
        label = f"{request.method} {request.url.path} -> {response.status_code}"
        assert response.status_code == 200 or response.status_code in ALLOWED_ERRORS, label
        content_type = response.headers.get("content-type", "").split(";")[0]
        assert content_type == "application/json", label
        mock_request = MockRequest(
            SERVER,
            request.method.lower(),
            request.url.path,
            args=dict(request.url.params),
            headers=dict(request.headers),
        )
        mock_response = MockResponse(
            response.content,
            status_code=response.status_code,
            headers=dict(response.headers),
            content_type=content_type,
        )
        try:
            openapi.validate_response(mock_request, mock_response)
        except Exception as exc:  # collect them all, report at once
            problems.append(f"{label}: {exc}")
            continue
        _, operation = _operation(spec_doc, response)
        declared = (
            operation["responses"].get(str(response.status_code))
            or operation["responses"][f"{str(response.status_code)[0]}XX"]
        )
        declared = _resolve(spec_doc, declared)
        schema = declared["content"]["application/json"]["schema"]
        try:
            _check_no_undeclared(spec_doc, schema, response.json(), label)
        except AssertionError as exc:
            problems.append(str(exc))
    assert not problems, "\n".join(problems[:20])


def test_every_operation_exercised(recorded: list[httpx.Response], spec_doc: dict[str, Any]) -> None:
    seen_ok: set[tuple[str, str]] = set()
    seen_error: set[tuple[str, str]] = set()
    for response in recorded:
        template, _ = _operation(spec_doc, response)
        key = (response.request.method.lower(), template)
        (seen_ok if response.status_code == 200 else seen_error).add(key)
    declared = {(m, p) for p, ops in spec_doc["paths"].items() for m in ops if m in ("get", "put", "post", "delete")}
    assert declared - seen_ok == set(), "operations never answered 200"
    assert declared - seen_error == set(), "operations never answered with an error"


def test_error_bodies_are_message_only(recorded: list[httpx.Response]) -> None:
    for response in recorded:
        if response.status_code != 200:
            body = response.json()
            assert set(body) == {"message"} and isinstance(body["message"], str) and body["message"]
        if response.status_code == 429:
            assert int(response.headers["Retry-After"]) >= 1
