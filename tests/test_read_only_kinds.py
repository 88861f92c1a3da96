"""Statement definitions and account plans: kinds reconciler reads but does not manage.

The store keeps them (seeded by tests), the emulator serves them in the official document's
shapes (openapi-full.json: ListStatementDefinitions, GetStatementDefinition, ListAccountPlans,
GetAccountPlan), and every backend reads them: ``statement_definitions()`` for name -> id
resolution, account plans (now a managed kind) because m3ter refuses to delete an account that
account plans reference (DELETE /accounts/{id}).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from reconciler import kinds
from reconciler.backends import BackendOptions
from reconciler.backends.base import ValidationFailed
from reconciler.backends.local import LocalBackend
from reconciler.backends.m3ter import M3terBackend
from reconciler.emulator.config import EmulatorConfig
from reconciler.emulator.testing import RunningEmulator, running_emulator
from reconciler.store import Store, StoreError

ORG = "org-ro"
ACCOUNT = kinds.get("account")


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(tmp_path / "store.sqlite", fail_rules=[])
    yield s
    s.close()


@pytest.fixture
def emu() -> Iterator[RunningEmulator]:
    with running_emulator(EmulatorConfig(rate_limit=None)) as running:
        yield running


def _account(store: Store, org: str, code: str) -> dict[str, Any]:
    return store.create(org, "account", {"code": code, "name": code, "emailAddress": f"{code.lower()}@x.example"})


# ---------------------------------------------------------------- store


def test_statement_definitions_are_seeded_in_the_documented_shape(store: Store) -> None:
    sd = store.seed_statement_definition(ORG, "Monthly detail", aggregation_frequency="DAY")
    assert sd["version"] == 1 and sd["name"] == "Monthly detail"
    assert sd["aggregationFrequency"] == "DAY"
    assert {"includePricePerUnit", "generateSlimStatements", "dimensions", "measures", "dtCreated"} <= set(sd)
    assert store.get(ORG, "statementDefinition", sd["id"]) == sd
    # names are not unique in m3ter: two definitions may share one
    twin = store.seed_statement_definition(ORG, "Monthly detail")
    assert [s["id"] for s in store.list_all(ORG, "statementDefinition")] == [twin["id"], sd["id"]]
    with pytest.raises(StoreError, match="aggregationFrequency"):
        store.seed_statement_definition(ORG, "x", aggregation_frequency="HOURLY")


def test_seeded_kinds_are_not_writable_through_the_generic_methods(store: Store) -> None:
    sd = store.seed_statement_definition(ORG, "S")
    with pytest.raises(StoreError, match="read-only"):
        store.create(ORG, "statementDefinition", {"name": "x"})
    with pytest.raises(StoreError, match="read-only"):
        store.delete(ORG, "statementDefinition", sd["id"])


def test_account_plans_block_deleting_their_account(store: Store) -> None:
    acme = _account(store, ORG, "ACME")
    other = _account(store, ORG, "OTHER")
    ended = store.seed_account_plan(ORG, acme["id"], start_date="2020-01-01", end_date="2021-01-01")
    assert ended["accountId"] == acme["id"] and ended["startDate"] == "2020-01-01T00:00:00Z"
    assert ended["endDate"] == "2021-01-01T00:00:00Z" and len(ended["planId"]) == 36
    with pytest.raises(StoreError) as caught:
        store.delete(ORG, "account", acme["id"])
    assert caught.value.status == 400
    assert "account plan" in caught.value.message and ended["id"] in caught.value.message
    assert store.find(ORG, "account", acme["id"]) is not None
    store.delete(ORG, "account", other["id"])  # no plans: deletable


def test_seed_account_plan_checks_its_inputs(store: Store) -> None:
    acme = _account(store, ORG, "ACME")
    with pytest.raises(StoreError, match="does not exist"):
        store.seed_account_plan(ORG, "00000000-0000-0000-0000-000000000000")
    with pytest.raises(StoreError, match="exclusive"):
        store.seed_account_plan(ORG, acme["id"], plan_id="p" * 36, plan_group_id="g" * 36)
    with pytest.raises(StoreError, match="endDate"):
        store.seed_account_plan(ORG, acme["id"], start_date="2024-02-01", end_date="2024-01-01")
    group = store.seed_account_plan(ORG, acme["id"], plan_group_id="g" * 36, product_id="p" * 36)
    assert "planId" not in group and "productId" not in group  # not on plan groups (AccountPlanResponse)


def test_account_plan_filters_follow_the_document(store: Store) -> None:
    a = _account(store, ORG, "A")
    b = _account(store, ORG, "B")
    now = dt.datetime(2025, 6, 1, tzinfo=dt.UTC)
    active = store.seed_account_plan(ORG, a["id"], plan_id="P" * 36, start_date="2025-01-01")
    ended = store.seed_account_plan(ORG, a["id"], plan_id="Q" * 36, start_date="2024-01-01", end_date="2025-01-01")
    future = store.seed_account_plan(ORG, a["id"], plan_id="P" * 36, start_date="2026-01-01")
    other = store.seed_account_plan(ORG, b["id"], plan_id="P" * 36, start_date="2025-01-01")

    def ids(**kw: Any) -> list[str]:
        items, _ = store.list_account_plans(ORG, page_size=100, now=now, **kw)
        return [i["id"] for i in items]

    # no filter: everything; includeall is only operative with account, plan or contract
    assert ids() == [other["id"], future["id"], ended["id"], active["id"]]
    assert ids(account=a["id"]) == [active["id"]]  # only currently active by default
    assert ids(account=a["id"], include_all=True) == [future["id"], ended["id"], active["id"]]
    assert ids(plan="P" * 36) == [other["id"], active["id"]]
    assert ids(date="2024-06-01") == [ended["id"]]
    assert ids(ids=[ended["id"], other["id"]]) == [other["id"], ended["id"]]
    with pytest.raises(StoreError, match="product"):
        ids(product="x")
    first, token = store.list_account_plans(ORG, page_size=1, account=a["id"], include_all=True)
    second, _ = store.list_account_plans(ORG, page_size=2, next_token=token, account=a["id"], include_all=True)
    assert [i["id"] for i in first + second] == [future["id"], ended["id"], active["id"]]
    assert [p["id"] for p in store.account_plans_of(ORG, [a["id"]])] == [future["id"], ended["id"], active["id"]]


# ---------------------------------------------------------------- emulator over HTTP


def test_emulator_serves_statement_definitions_paginated(emu: RunningEmulator) -> None:
    seeded = [emu.store.seed_statement_definition(emu.org_id, f"Def {i}") for i in range(3)]
    h = emu.auth_headers()
    http = emu.http()
    page = http.get(emu.org_url("statementdefinitions"), headers=h, params={"pageSize": 2}).json()
    assert [d["id"] for d in page["data"]] == [seeded[2]["id"], seeded[1]["id"]]
    rest = http.get(
        emu.org_url("statementdefinitions"), headers=h, params={"pageSize": 2, "nextToken": page["nextToken"]}
    ).json()
    assert [d["id"] for d in rest["data"]] == [seeded[0]["id"]] and "nextToken" not in rest
    one = http.get(emu.org_url(f"statementdefinitions/{seeded[0]['id']}"), headers=h)
    assert one.status_code == 200 and one.json() == seeded[0]
    assert http.get(emu.org_url("statementdefinitions/nope"), headers=h).status_code == 404
    assert http.get(emu.org_url("statementdefinitions"), headers=h, params={"pageSize": 101}).status_code == 400


def test_emulator_serves_account_plans_and_refuses_the_account_delete(emu: RunningEmulator) -> None:
    acme = _account(emu.store, emu.org_id, "ACME")
    plan = emu.store.seed_account_plan(emu.org_id, acme["id"], start_date="2020-01-01", end_date="2020-02-01")
    h = emu.auth_headers()
    http = emu.http()
    url = emu.org_url("accountplans")
    assert http.get(url, headers=h, params={"account": acme["id"]}).json() == {"data": []}  # ended: not active
    found = http.get(url, headers=h, params={"account": acme["id"], "includeall": "true"}).json()["data"]
    assert [p["id"] for p in found] == [plan["id"]]
    assert http.get(f"{url}/{plan['id']}", headers=h).json() == plan
    assert http.get(url, headers=h, params={"includeall": "maybe"}).status_code == 400
    refused = http.delete(emu.org_url(f"accounts/{acme['id']}"), headers=h)
    assert refused.status_code == 400 and "account plan" in refused.json()["message"]
    # account plans are a registry kind now: writes are served generically, and checked
    empty = http.post(url, headers=h, json={})
    assert empty.status_code == 400 and "accountId: is required" in empty.json()["message"]
    assert http.delete(f"{url}/{plan['id']}", headers=h).status_code == 200
    assert http.delete(emu.org_url(f"accounts/{acme['id']}"), headers=h).status_code == 200


# ---------------------------------------------------------------- backends


def _m3ter(emu: RunningEmulator, parallelism: int = 4) -> M3terBackend:
    return M3terBackend.from_environment(
        environ=emu.env(), options=BackendOptions(rate_limit=50, parallelism=parallelism)
    )


def test_m3ter_backend_reads_statement_definitions_across_pages(emu: RunningEmulator) -> None:
    seeded = {emu.store.seed_statement_definition(emu.org_id, f"D{i}")["id"] for i in range(105)}
    with _m3ter(emu) as backend:
        got = backend.statement_definitions()
    assert {d["id"] for d in got} == seeded and len(got) == 105


def test_m3ter_backend_lists_every_account_plan_ended_or_future(emu: RunningEmulator) -> None:
    """Account plans are a managed kind listed with includeall=true (``Kind.list_params``): ended
    and future plans block an account delete too, so a plan must see them all."""
    store, org = emu.store, emu.org_id
    accounts = [_account(store, org, f"A{i}") for i in range(5)]
    expected = set()
    for i, acc in enumerate(accounts):
        expected.add(store.seed_account_plan(org, acc["id"], start_date="2020-01-01", end_date="2021-01-01")["id"])
        if i % 2:
            expected.add(store.seed_account_plan(org, acc["id"], start_date="2099-01-01")["id"])
    with _m3ter(emu) as backend:
        got = backend.list(kinds.get("accountPlan"))
        assert {p["id"] for p in got} == expected
        with pytest.raises(ValidationFailed, match="account plan"):
            backend.delete(ACCOUNT, accounts[0]["id"])


def test_local_backend_reads_both(tmp_path: Path) -> None:
    with LocalBackend(tmp_path / "local.sqlite") as backend:
        assert backend.statement_definitions() == []
        sd = backend.store.seed_statement_definition(backend.org_id, "Standard")
        assert backend.statement_definitions() == [sd]
        acme = backend.create(ACCOUNT, {"code": "ACME", "name": "Acme", "emailAddress": "a@x.example"})
        plan = backend.store.seed_account_plan(
            backend.org_id, acme["id"], start_date="2020-01-01", end_date="2020-06-01"
        )
        assert backend.list(kinds.get("accountPlan")) == [plan]
        with pytest.raises(ValidationFailed, match="account plan"):
            backend.delete(ACCOUNT, acme["id"])
