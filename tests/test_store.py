"""reconciler.store: m3ter organization semantics over SQLite."""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from reconciler.kinds import KINDS, Kind, Reference
from reconciler.kinds.spec import Spec
from reconciler.store import (
    FAIL_ENV,
    Store,
    StoreError,
    decode_token,
    parse_fail_rules,
    validate_body,
)

ORG = "org-1"
ISO_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


@pytest.fixture
def store(tmp_path: Path) -> Any:
    s = Store(tmp_path / "db" / "store.sqlite", fail_rules=[])
    yield s
    s.close()


def account(code: str, **extra: Any) -> dict[str, Any]:
    return {"code": code, "name": f"Account {code}", "emailAddress": f"{code.lower()}@example.com", **extra}


def reason(code: str, **extra: Any) -> dict[str, Any]:
    return {"code": code, "name": f"Reason {code}", **extra}


def err(fn: Any, *args: Any, **kwargs: Any) -> StoreError:
    with pytest.raises(StoreError) as info:
        fn(*args, **kwargs)
    return info.value


# --------------------------------------------------------------------------- organizations


def test_new_org_is_seeded(store: Store) -> None:
    currencies, token = store.list(ORG, "currency", page_size=100)
    assert token is None
    assert len(currencies) == 1
    usd = currencies[0]
    assert {k: usd[k] for k in ("name", "code", "archived", "maxDecimalPlaces", "roundingMode", "version")} == {
        "name": "US Dollar",
        "code": "USD",
        "archived": False,
        "maxDecimalPlaces": 2,
        "roundingMode": "HALF_UP",
        "version": 1,
    }
    uuid.UUID(usd["id"])
    config = store.get_singleton(ORG, "organizationConfig")
    assert config["version"] == 1
    assert config["currency"] == "USD"
    assert config["timezone"] == "UTC"
    assert (config["yearEpoch"], config["monthEpoch"], config["dayEpoch"]) == ("2022-01-01",) * 3
    assert config["weekEpoch"] == "2022-01-04"
    # no documented default (OrganizationConfigRequest): a fresh organization has none
    assert "daysBeforeBillDue" not in config
    assert config["autoGenerateStatementMode"] == "NONE"  # StatementAutoGenerateMode: "default ... None"
    assert config["scheduledBillInterval"] == 0
    assert config["standingChargeBillInAdvance"] is False
    assert config["commitmentFeeBillInAdvance"] is True
    assert config["minimumSpendBillInAdvance"] is False
    assert config["externalInvoiceDate"] == "FIRST_DAY_OF_NEXT_PERIOD"
    assert config["suppressedEmptyBills"] is False
    assert config["consolidateBills"] is False
    assert config["creditApplicationOrder"] == ["PREPAYMENT", "BALANCE"]
    assert config["allowNegativeBalances"] is False
    assert config["allowOverlappingPlans"] is False
    assert config["currencyConversions"] == []
    fields = store.get_singleton(ORG, "customFields")
    assert fields["version"] == 1
    assert set(fields) == {"id", "version", "dtCreated", "dtLastModified", "createdBy", "lastModifiedBy"}
    for kind in ("creditReason", "debitReason", "transactionType", "account"):
        assert store.list_all(ORG, kind) == []


def test_orgs_are_independent_and_seeded_once(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    a = Store(path, fail_rules=[])
    b = Store(path, fail_rules=[])
    a.create("o1", "creditReason", reason("R1"))
    assert b.list_all("o2", "creditReason") == []
    assert len(b.list_all("o1", "creditReason")) == 1
    # the second store did not seed o1 again
    assert len(b.list_all("o1", "currency")) == 1
    a.create("o2", "creditReason", reason("R1"))  # same code, other org: fine
    assert a.org_exists("o1") and a.org_exists("o2") and not a.org_exists("o3")
    a.close()
    b.close()


def test_wal_and_synchronous(store: Store) -> None:
    conn = store._conn()
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA synchronous").fetchone()[0] in (1, 2)  # NORMAL or FULL


# --------------------------------------------------------------------------- create / update / delete


def test_create_assigns_read_only_fields(store: Store) -> None:
    created = store.create(ORG, "account", account("ACME"), actor="alice")
    uuid.UUID(created["id"])
    assert created["version"] == 1
    assert ISO_Z.match(created["dtCreated"]) and ISO_Z.match(created["dtLastModified"])
    assert created["createdBy"] == created["lastModifiedBy"] == "alice"
    assert store.get(ORG, "account", created["id"]) == created


def test_create_must_not_send_version(store: Store) -> None:
    e = err(store.create, ORG, "creditReason", reason("R", version=1))
    assert e.kind == "invalid" and e.status == 400 and "version" in e.message


def test_update_increments_version_and_keeps_creation(store: Store) -> None:
    created = store.create(ORG, "creditReason", reason("R"), actor="alice")
    time.sleep(0.002)
    updated = store.update(
        ORG, "creditReason", created["id"], {**reason("R"), "name": "New", "version": 1}, actor="bob"
    )
    assert updated["version"] == 2
    assert updated["name"] == "New"
    assert updated["dtCreated"] == created["dtCreated"]
    assert updated["createdBy"] == "alice" and updated["lastModifiedBy"] == "bob"
    assert updated["dtLastModified"] >= created["dtLastModified"]
    again = store.update(ORG, "creditReason", created["id"], {**reason("R"), "version": 2})
    assert again["version"] == 3


def test_stale_version_is_a_conflict(store: Store) -> None:
    created = store.create(ORG, "account", account("A"))
    store.update(ORG, "account", created["id"], {**account("A"), "version": 1})
    e = err(store.update, ORG, "account", created["id"], {**account("A"), "name": "x", "version": 1})
    assert e.kind == "conflict" and e.status == 400
    assert "expected version 2" in e.message and "given 1" in e.message
    assert store.get(ORG, "account", created["id"])["version"] == 2


def test_missing_version_is_a_conflict(store: Store) -> None:
    created = store.create(ORG, "account", account("A"))
    e = err(store.update, ORG, "account", created["id"], account("A"))
    assert e.kind == "conflict" and "given none" in e.message
    e = err(store.put_singleton, ORG, "customFields", {"account": {"a": 1}})
    assert e.kind == "conflict"


def test_put_replaces_whole_entity(store: Store) -> None:
    created = store.create(
        ORG,
        "account",
        account("A", purchaseOrderNumber="PO-1", address={"country": "UK"}, customFields={"tier": "gold"}),
    )
    updated = store.update(ORG, "account", created["id"], {**account("A"), "version": 1})
    for field in ("purchaseOrderNumber", "address", "customFields"):
        assert field not in updated
    # explicit null also clears
    again = store.update(ORG, "account", created["id"], {**account("A"), "currency": None, "version": 2})
    assert "currency" not in again


def test_read_only_fields_in_body_are_ignored(store: Store) -> None:
    created = store.create(ORG, "creditReason", reason("R"))
    body = {**created, "name": "Renamed", "id": "other", "dtCreated": "1999-01-01T00:00:00.000Z", "createdBy": "x"}
    updated = store.update(ORG, "creditReason", created["id"], body)
    assert updated["id"] == created["id"]
    assert updated["dtCreated"] == created["dtCreated"]
    assert updated["createdBy"] == created["createdBy"]


def test_picklists_default_archived_false(store: Store) -> None:
    created = store.create(ORG, "debitReason", reason("D"))
    assert created["archived"] is False
    archived = store.update(ORG, "debitReason", created["id"], {**reason("D"), "archived": True, "version": 1})
    assert archived["archived"] is True


def test_duplicate_code_rejected(store: Store) -> None:
    store.create(ORG, "transactionType", reason("T1"))
    other = store.create(ORG, "transactionType", reason("T2"))
    e = err(store.create, ORG, "transactionType", reason("T1"))
    assert e.kind == "duplicate" and e.status == 400 and "code already exists" in e.message
    e = err(store.update, ORG, "transactionType", other["id"], {**reason("T1"), "version": 1})
    assert e.kind == "duplicate"
    # same code in another kind is fine
    store.create(ORG, "creditReason", reason("T1"))
    e = err(store.create, ORG, "currency", {"code": "USD", "name": "Again"})
    assert e.kind == "duplicate"


def test_delete_returns_entity_and_removes_it(store: Store) -> None:
    created = store.create(ORG, "creditReason", reason("R"))
    assert store.delete(ORG, "creditReason", created["id"]) == created
    assert store.find(ORG, "creditReason", created["id"]) is None
    assert err(store.get, ORG, "creditReason", created["id"]).status == 404
    assert err(store.delete, ORG, "creditReason", created["id"]).kind == "not_found"
    # the code is free again
    store.create(ORG, "creditReason", reason("R"))


def test_unknown_ids_are_not_found(store: Store) -> None:
    e = err(store.update, ORG, "account", str(uuid.uuid4()), {**account("A"), "version": 1})
    assert e.kind == "not_found" and e.status == 404
    created = store.create(ORG, "creditReason", reason("R"))
    # an id of another kind is not found either
    assert store.find(ORG, "debitReason", created["id"]) is None


def test_singletons(store: Store) -> None:
    config = store.get_singleton(ORG, "organizationConfig")
    body = {k: v for k, v in config.items() if k not in ("id", "dtCreated")}
    body["timezone"] = "Europe/London"
    body["daysBeforeBillDue"] = 30  # required by PUT, absent on a fresh organization
    body.pop("billPrefix", None)
    updated = store.put_singleton(ORG, "organizationConfig", body, actor="bob")
    assert updated["version"] == 2 and updated["timezone"] == "Europe/London"
    assert updated["id"] == config["id"]
    assert updated["lastModifiedBy"] == "bob"
    e = err(store.put_singleton, ORG, "organizationConfig", {**body, "version": 1})
    assert e.kind == "conflict"
    fields = store.put_singleton(ORG, "customFields", {"account": {"tier": "gold", "n": 2}, "version": 1})
    assert fields["account"] == {"tier": "gold", "n": 2} and fields["version"] == 2
    cleared = store.put_singleton(ORG, "customFields", {"version": 2})
    assert "account" not in cleared
    assert err(store.create, ORG, "customFields", {}).kind == "invalid"
    assert err(store.delete, ORG, "organizationConfig", config["id"]).kind == "invalid"


def test_org_config_required_fields(store: Store) -> None:
    e = err(store.put_singleton, ORG, "organizationConfig", {"version": 1})
    for field in ("currency", "timezone", "yearEpoch", "monthEpoch", "weekEpoch", "dayEpoch", "daysBeforeBillDue"):
        assert f"{field}: is required" in e.message


# --------------------------------------------------------------------------- validation


ORG_BODY = {
    "currency": "USD",
    "timezone": "UTC",
    "yearEpoch": "2022-01-01",
    "monthEpoch": "2022-01-01",
    "weekEpoch": "2022-01-04",
    "dayEpoch": "2022-01-01",
    "daysBeforeBillDue": 1,
}


@pytest.mark.parametrize(
    ("kind", "body", "expected"),
    [
        ("creditReason", {"code": "R"}, "name: is required"),
        ("creditReason", {"code": "", "name": "R"}, "code: must not be empty"),
        ("creditReason", {"code": "1R", "name": "R"}, "code: must start with a letter"),
        ("creditReason", {"code": "R-1", "name": "R"}, "code: must start"),
        ("creditReason", {"code": "R" * 81, "name": "R"}, "at most 80"),
        ("creditReason", {"code": "R", "name": ""}, "name: must not be empty"),
        ("creditReason", {"code": "R", "name": "x" * 201}, "at most 200"),
        ("creditReason", {"code": "R", "name": "R", "colour": "red"}, "colour: unknown field"),
        ("creditReason", {"code": "R", "name": "R", "archived": "yes"}, "archived: must be a boolean"),
        ("creditReason", {"code": 5, "name": "R"}, "code: must be a string"),
        ("creditReason", ["not", "an", "object"], "must be a JSON object"),
        ("currency", {"code": "EUR", "name": "Euro", "maxDecimalPlaces": 6}, "at most 5"),
        ("currency", {"code": "EUR", "name": "Euro", "maxDecimalPlaces": 1.5}, "must be an integer"),
        ("currency", {"code": "EUR", "name": "Euro", "roundingMode": "NEAREST"}, "roundingMode: must be one of"),
        ("account", {"code": "A", "name": "A"}, "emailAddress: is required"),
        ("account", account("A", emailAddress="nope"), "e-mail"),
        ("account", account(" A"), "code: must not start or end with whitespace"),
        ("account", account("A\tB"), "control characters"),
        ("account", account("A\n"), "code: must not start or end with whitespace"),
        ("creditReason", {"code": "R\n", "name": "R"}, "code: must start"),
        ("account", account("A", emailAddress="ap@acme.example.com\n"), "e-mail"),
        ("account", account("A", address={"street": "x"}), "address.street: unknown field"),
        ("account", account("A", address={"postCode": "x" * 21}), "address.postCode: must be at most 20"),
        ("account", account("A", daysBeforeBillDue=0), "greater than 0"),
        ("account", account("A", daysBeforeBillDue=True), "must be an integer"),
        ("account", account("A", billEpoch="2024-13-01"), "ISO date"),
        ("account", account("A", customFields={"x": True}), "customFields.x: must be a string or a number"),
        ("account", account("A", customFields={"x": [1]}), "must be a string or a number"),
        ("account", account("A", customFields={"x": float("inf")}), "finite"),
        ("currency", {"code": "EUR", "name": "Euro", "maxDecimalPlaces": float("nan")}, "finite"),
        ("account", account("A", creditApplicationOrder=["BALANCE", "BALANCE"]), "twice"),
        ("account", account("A", creditApplicationOrder=["CASH"]), "must be one of"),
        ("account", account("A", autoGenerateStatementMode="XML"), "must be one of"),
        ("account", account("A", purchaseOrderNumber="x" * 101), "at most 100"),
    ],
)
def test_create_validation(store: Store, kind: str, body: Any, expected: str) -> None:
    e = err(store.create, ORG, kind, body)
    assert e.kind == "invalid" and e.status == 400
    assert expected in e.message


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"timezone": "Mars/Olympus"}, "IANA timezone"),
        ({"yearEpoch": "2022-1-1"}, "ISO date"),
        ({"daysBeforeBillDue": 0}, "greater than 0"),
        ({"scheduledBillInterval": 5}, "scheduledBillInterval: must be one of"),
        ({"scheduledBillInterval": 12, "scheduledBillOffset": 3}, "only supported with a scheduledBillInterval of 24"),
        ({"scheduledBillInterval": 24, "scheduledBillOffset": 24}, "at most 23"),
        ({"currencyConversions": [{"from": "USD"}]}, "currencyConversions[0].to: is required"),
        ({"currencyConversions": [{"from": "USD", "to": "USD", "multiplier": 0}]}, "greater than 0"),
        ({"autoApproveBillsGracePeriodUnit": "WEEKS"}, "must be one of"),
        ({"externalInvoiceDate": "TOMORROW"}, "must be one of"),
        ({"currency": "EUR"}, "currency 'EUR' does not exist"),
        ({"currencyConversions": [{"from": "GBP", "to": "USD", "multiplier": 1.2}]}, "currency 'GBP' does not exist"),
        ({"sequenceStartNumber": 2**40}, "at most"),
        ({"typo": 1}, "typo: unknown field"),
        ({"timezone": "America"}, "timezone"),
    ],
)
def test_org_config_validation(store: Store, change: dict[str, Any], expected: str) -> None:
    e = err(store.put_singleton, ORG, "organizationConfig", {**ORG_BODY, **change, "version": 1})
    assert e.status == 400 and expected in e.message


def test_valid_org_config_round_trips(store: Store) -> None:
    store.create(ORG, "currency", {"code": "GBP", "name": "Pound"})
    body = {
        **ORG_BODY,
        "scheduledBillInterval": 24,
        "scheduledBillOffset": 6,
        "currencyConversions": [{"from": "GBP", "to": "USD", "multiplier": 1.27}],
        "autoApproveBillsGracePeriod": 2,
        "autoApproveBillsGracePeriodUnit": "DAYS",
        "billPrefix": "INV-",
        "sequenceStartNumber": 1000,
        "version": 1,
    }
    updated = store.put_singleton(ORG, "organizationConfig", body)
    assert {k: updated[k] for k in body if k != "version"} == {k: v for k, v in body.items() if k != "version"}
    assert "consolidateBills" not in updated  # PUT replaced the seeded defaults


def test_validate_body_integral_float_becomes_int() -> None:
    assert validate_body("account", account("A", daysBeforeBillDue=3.0))["daysBeforeBillDue"] == 3


def test_all_problems_reported_at_once(store: Store) -> None:
    e = err(store.create, ORG, "account", {"code": "", "bogus": 1, "daysBeforeBillDue": -1})
    for part in ("code: must not be empty", "bogus: unknown field", "name: is required", "emailAddress: is required"):
        assert part in e.message


# --------------------------------------------------------------------------- accounts


def test_parent_must_exist(store: Store) -> None:
    e = err(store.create, ORG, "account", account("C", parentAccountId=str(uuid.uuid4())))
    assert e.status == 400 and "does not exist" in e.message


def test_account_cannot_be_its_own_parent_or_ancestor(store: Store) -> None:
    a = store.create(ORG, "account", account("A"))
    b = store.create(ORG, "account", account("B", parentAccountId=a["id"]))
    c = store.create(ORG, "account", account("C", parentAccountId=b["id"]))
    e = err(store.update, ORG, "account", a["id"], {**account("A"), "parentAccountId": a["id"], "version": 1})
    assert "its own parent" in e.message
    e = err(store.update, ORG, "account", a["id"], {**account("A"), "parentAccountId": c["id"], "version": 1})
    assert "own ancestor" in e.message
    # moving C under A is fine
    moved = store.update(ORG, "account", c["id"], {**account("C"), "parentAccountId": a["id"], "version": 1})
    assert moved["parentAccountId"] == a["id"]


def test_account_with_children_cannot_be_deleted(store: Store) -> None:
    parent = store.create(ORG, "account", account("P"))
    child = store.create(ORG, "account", account("C", parentAccountId=parent["id"]))
    e = err(store.delete, ORG, "account", parent["id"])
    assert e.status == 400 and "child account" in e.message
    assert store.find(ORG, "account", parent["id"]) is not None
    store.delete(ORG, "account", child["id"])
    store.delete(ORG, "account", parent["id"])


def test_children_listing(store: Store) -> None:
    parent = store.create(ORG, "account", account("P"))
    kids = [store.create(ORG, "account", account(f"C{i}", parentAccountId=parent["id"])) for i in range(5)]
    store.create(ORG, "account", account("OTHER"))
    page, token = store.children(ORG, parent["id"], page_size=3)
    assert [k["code"] for k in page] == ["C4", "C3", "C2"]
    assert token
    page2, token2 = store.children(ORG, parent["id"], page_size=3, next_token=token)
    assert [k["code"] for k in page2] == ["C1", "C0"] and token2 is None
    assert {k["id"] for k in page + page2} == {k["id"] for k in kids}
    assert err(store.children, ORG, str(uuid.uuid4()), page_size=10).status == 404


def test_currency_references(store: Store) -> None:
    e = err(store.create, ORG, "account", account("A", currency="EUR"))
    assert "currency 'EUR' does not exist" in e.message
    eur = store.create(ORG, "currency", {"code": "EUR", "name": "Euro"})
    acct = store.create(ORG, "account", account("A", currency="EUR"))
    e = err(store.delete, ORG, "currency", eur["id"])
    assert e.status == 400
    assert e.message == (
        "currency 'EUR' cannot be deleted: it is referenced by 1 account (currency: 'A'); change or delete it first"
    )
    usd = store.list_all(ORG, "currency", codes=["USD"])[0]
    e = err(store.delete, ORG, "currency", usd["id"])
    assert "referenced by the organization config (currency)" in e.message
    store.delete(ORG, "account", acct["id"])
    store.delete(ORG, "currency", eur["id"])


# --------------------------------------------------------------------------- generic references
# A throwaway registry entry: the store's reference rules come from ``Kind.references``, so a
# kind it has never heard of gets them without any store code naming it.


class _WidgetModel(BaseModel):
    code: str


_WIDGET_SPEC = {
    "code": Spec("string", required=True),
    "name": Spec("string"),
    "parentWidgetId": Spec("string"),  # by id, a self-reference: a forest like accounts
    "accountId": Spec("string"),  # by id, plain field: matched with json_extract
    "currency": Spec("string"),  # by code
    "parts": Spec("array", items=Spec("object", fields={"currency": Spec("string")})),  # a list path
    "reason": Spec("string"),  # blocks archiving as well as deleting
}
WIDGET = Kind(
    name="widget",
    manifest_key="widgets",
    api_path="widgets",
    model=_WidgetModel,
    deletable=True,
    references=(
        Reference("account", "account", api_path="accountId", by_id=True),
        Reference("parent", "widget", api_path="parentWidgetId", by_id=True),
        Reference("currency", "currency"),
        Reference("parts[].currency", "currency"),
        Reference("reason", "creditReason", blocks=frozenset({"delete", "archive"})),
    ),
    request_spec=_WIDGET_SPEC,
)


@pytest.fixture
def wstore(tmp_path: Path) -> Any:
    s = Store(tmp_path / "w.sqlite", fail_rules=[], kinds=(*KINDS, WIDGET))
    yield s
    s.close()


def test_generic_reference_targets_must_exist(wstore: Store) -> None:
    missing = str(uuid.uuid4())
    e = err(
        wstore.create, ORG, "widget",
        {"code": "W", "accountId": missing, "currency": "EUR", "parts": [{"currency": "USD"}, {"currency": "GBP"}]},
    )
    assert e.kind == "invalid" and e.status == 400
    assert e.message == (
        f"accountId: account {missing} does not exist; currency: currency 'EUR' does not exist; "
        "parts[1].currency: currency 'GBP' does not exist"
    )
    assert wstore.count(ORG, "widget") == 0
    acct = wstore.create(ORG, "account", account("A"))
    made = wstore.create(ORG, "widget", {"code": "W", "accountId": acct["id"], "currency": "USD"})
    e = err(wstore.update, ORG, "widget", made["id"], {"code": "W", "parentWidgetId": missing, "version": 1})
    assert e.message == f"parentWidgetId: widget {missing} does not exist"
    # a batch checks every body too, and finds targets created earlier in the same batch's org
    e = err(wstore.create_many, ORG, "widget", [{"code": "X", "currency": "USD"}, {"code": "Y", "currency": "NOPE"}])
    assert e.message == "currency: currency 'NOPE' does not exist" and wstore.count(ORG, "widget") == 1


def test_generic_delete_refused_while_referenced_then_allowed(wstore: Store) -> None:
    acct = wstore.create(ORG, "account", account("A"))
    eur = wstore.create(ORG, "currency", {"code": "EUR", "name": "Euro"})
    gbp = wstore.create(ORG, "currency", {"code": "GBP", "name": "Pound"})
    w1 = wstore.create(ORG, "widget", {"code": "W1", "accountId": acct["id"], "currency": "EUR"})
    w2 = wstore.create(ORG, "widget", {"code": "W2", "accountId": acct["id"], "parts": [{"currency": "GBP"}]})
    e = err(wstore.delete, ORG, "account", acct["id"])
    assert e.kind == "invalid" and e.status == 400
    assert e.message == (
        "account 'A' cannot be deleted: it is referenced by 2 widgets (accountId: 'W1', 'W2'); "
        "change or delete them first"
    )
    e = err(wstore.delete, ORG, "currency", eur["id"])
    assert e.message == (
        "currency 'EUR' cannot be deleted: it is referenced by 1 widget (currency: 'W1'); change or delete it first"
    )
    e = err(wstore.delete, ORG, "currency", gbp["id"])  # held through a list path
    assert "referenced by 1 widget (parts[].currency: 'W2')" in e.message
    # the referrers let go: one by an update, one by being deleted
    wstore.update(ORG, "widget", w1["id"], {"code": "W1", "version": 1})
    wstore.delete(ORG, "widget", w2["id"])
    wstore.delete(ORG, "currency", eur["id"])
    wstore.delete(ORG, "currency", gbp["id"])
    wstore.delete(ORG, "account", acct["id"])
    assert wstore.count(ORG, "currency") == 1


def test_generic_self_reference_is_a_forest(wstore: Store) -> None:
    a = wstore.create(ORG, "widget", {"code": "A"})
    b = wstore.create(ORG, "widget", {"code": "B", "parentWidgetId": a["id"]})
    c = wstore.create(ORG, "widget", {"code": "C", "parentWidgetId": b["id"]})
    e = err(wstore.update, ORG, "widget", a["id"], {"code": "A", "parentWidgetId": a["id"], "version": 1})
    assert e.message == "parentWidgetId: a widget cannot be its own parent"
    e = err(wstore.update, ORG, "widget", a["id"], {"code": "A", "parentWidgetId": c["id"], "version": 1})
    assert e.message == "parentWidgetId: the widget would become its own ancestor (a parent cycle)"
    e = err(wstore.delete, ORG, "widget", a["id"])
    assert e.message == (
        "widget 'A' cannot be deleted: it is referenced by 1 child widget (parentWidgetId: 'B'); "
        "change or delete it first"
    )
    wstore.update(ORG, "widget", c["id"], {"code": "C", "parentWidgetId": a["id"], "version": 1})  # no cycle
    wstore.delete(ORG, "widget", b["id"])
    e = err(wstore.delete, ORG, "widget", a["id"])
    assert "1 child widget (parentWidgetId: 'C')" in e.message


def test_generic_blocks_archive_when_the_reference_says_so(wstore: Store) -> None:
    reason_ = wstore.create(ORG, "creditReason", reason("R"))
    wstore.create(ORG, "widget", {"code": "W", "reason": "R"})
    e = err(wstore.update, ORG, "creditReason", reason_["id"], {**reason("R"), "archived": True, "version": 1})
    assert e.message == (
        "creditReason 'R' cannot be archived: it is referenced by 1 widget (reason: 'W'); change or delete it first"
    )
    # a currency reference blocks only deleting (the default): archiving stays allowed
    wstore.create(ORG, "currency", {"code": "EUR", "name": "Euro"})
    wstore.create(ORG, "widget", {"code": "V", "currency": "EUR"})
    eur = wstore.list_all(ORG, "currency", codes=["EUR"])[0]
    assert wstore.update(ORG, "currency", eur["id"], {"code": "EUR", "name": "Euro", "archived": True, "version": 1})


def test_seeded_kind_in_the_registry_takes_its_references_from_there(tmp_path: Path) -> None:
    """Account plans are seeded; once ``accountPlan`` is registered, its entry's references
    apply (here its first by-id reference is ``planId``, so ``parent_id`` is refilled from it
    and the account lookups read ``accountId`` from the body)."""
    path = tmp_path / "s.sqlite"
    with Store(path, fail_rules=[]) as before:
        acct = before.create(ORG, "account", account("A"))
        plan = before.seed_account_plan(ORG, acct["id"], plan_id="p" * 36)
    registered = Kind(
        name="accountPlan",
        title="account plan",
        manifest_key="accountPlans",
        api_path="accountplans",
        model=_WidgetModel,
        references=(
            Reference("plan", "widget", api_path="planId", by_id=True, blocks=frozenset()),
            Reference("account", "account", api_path="accountId", by_id=True),
        ),
        request_spec={"accountId": Spec("string", required=True), "planId": Spec("string")},
    )
    with Store(path, fail_rules=[], kinds=(*KINDS, WIDGET, registered)) as after:
        row = after._conn().execute("SELECT parent_id FROM entities WHERE id = ?", (plan["id"],)).fetchone()
        assert row == ("p" * 36,)
        found, _ = after.list_account_plans(ORG, page_size=10, account=acct["id"], include_all=True)
        assert [p["id"] for p in found] == [plan["id"]]
        assert [p["id"] for p in after.account_plans_of(ORG, [acct["id"]])] == [plan["id"]]
        e = err(after.delete, ORG, "account", acct["id"])
        assert e.message == (
            f"account 'A' cannot be deleted: it is referenced by 1 account plan (accountId: {plan['id']}); "
            "change or delete it first"
        )
        after.delete(ORG, "accountPlan", plan["id"])  # a registered kind is writable
        after.delete(ORG, "account", acct["id"])
    with Store(path, fail_rules=[]) as again:  # back to the default registry: accountId again
        acct = again.create(ORG, "account", account("B"))
        plan = again.seed_account_plan(ORG, acct["id"])
        assert [p["id"] for p in again.account_plans_of(ORG, [acct["id"]])] == [plan["id"]]


# --------------------------------------------------------------------------- listing


def test_pagination_newest_first_with_stable_token(store: Store) -> None:
    created = [store.create(ORG, "creditReason", reason(f"R{i:02d}")) for i in range(25)]
    newest_first = [c["code"] for c in reversed(created)]
    page1, token = store.list(ORG, "creditReason", page_size=10)
    assert [p["code"] for p in page1] == newest_first[:10]
    assert token is not None
    # objects created or removed meanwhile do not shift the following pages
    store.create(ORG, "creditReason", reason("LATE"))
    store.delete(ORG, "creditReason", created[0]["id"])
    page2, token2 = store.list(ORG, "creditReason", page_size=10, next_token=token)
    assert [p["code"] for p in page2] == newest_first[10:20]
    page3, token3 = store.list(ORG, "creditReason", page_size=10, next_token=token2)
    assert [p["code"] for p in page3] == newest_first[20:24]
    assert token3 is None
    # the same token gives the same page again
    again, _ = store.list(ORG, "creditReason", page_size=10, next_token=token)
    assert again == page2


def test_exact_multiple_has_no_trailing_token(store: Store) -> None:
    for i in range(4):
        store.create(ORG, "creditReason", reason(f"R{i}"))
    page, token = store.list(ORG, "creditReason", page_size=2)
    page, token = store.list(ORG, "creditReason", page_size=2, next_token=token)
    assert len(page) == 2 and token is None


def test_page_size_and_token_limits(store: Store) -> None:
    for size in (0, 201, -1):
        assert err(store.list, ORG, "account", page_size=size).status == 400
    store.list(ORG, "account", page_size=200)
    assert "nextToken" in err(store.list, ORG, "account", page_size=10, next_token="garbage!").message
    assert err(decode_token, "eyJ4IjogMX0").kind == "invalid"


def test_list_filters(store: Store) -> None:
    a = store.create(ORG, "creditReason", reason("A"))
    b = store.create(ORG, "creditReason", reason("B", archived=True))
    c = store.create(ORG, "creditReason", reason("C"))

    def codes(**kw: Any) -> list[str]:
        return [e["code"] for e in store.list(ORG, "creditReason", page_size=100, **kw)[0]]

    assert codes() == ["C", "B", "A"]
    assert codes(archived=True) == ["B"]
    assert codes(archived=False) == ["C", "A"]
    assert codes(codes=["A", "B", "Z"]) == ["B", "A"]
    assert codes(ids=[a["id"], c["id"]]) == ["C", "A"]
    assert codes(ids=[b["id"]], codes=["A"]) == []
    assert codes(codes=["A", "B"], archived=False) == ["A"]
    assert codes(codes=[]) == []


def test_list_all_includes_archived_and_filters_codes(store: Store) -> None:
    store.create_many(ORG, "account", [account(f"A{i}") for i in range(1200)])
    assert store.count(ORG, "account") == 1200
    everything = store.list_all(ORG, "account")
    assert len(everything) == 1200 and everything[0]["code"] == "A1199"
    wanted = [f"A{i}" for i in range(0, 1200, 2)] + ["missing"]
    found = store.list_all(ORG, "account", codes=wanted)
    assert sorted(e["code"] for e in found) == sorted(wanted[:-1])
    archived = store.create(ORG, "currency", {"code": "OLD", "name": "Old", "archived": True})
    assert archived["id"] in {e["id"] for e in store.list_all(ORG, "currency")}
    assert [e["code"] for e in store.list_all(ORG, "currency", archived=True)] == ["OLD"]


def test_create_many_is_all_or_nothing(store: Store) -> None:
    with pytest.raises(StoreError):
        store.create_many(ORG, "account", [account("X1"), account("X2"), account("X1")])
    assert store.list_all(ORG, "account") == []


def test_unknown_kind(store: Store) -> None:
    assert err(store.list_all, ORG, "widget").status == 400


# --------------------------------------------------------------------------- fault injection


def test_injected_failure_before_write(store: Store) -> None:
    store.fail_on("create", "account", "B")
    store.create(ORG, "account", account("A"))
    e = err(store.create, ORG, "account", account("B"))
    assert e.kind == "injected" and e.status == 500 and "'B'" in e.message
    assert [x["code"] for x in store.list_all(ORG, "account")] == ["A"]
    store.clear_failures()
    store.create(ORG, "account", account("B"))


def test_injected_failure_after_write(store: Store) -> None:
    store.fail_on("create", "account", "B", after=True)
    e = err(store.create, ORG, "account", account("B"))
    assert "after the write" in e.message
    assert [x["code"] for x in store.list_all(ORG, "account")] == ["B"]


def test_injected_failure_times_and_predicate(store: Store) -> None:
    created = store.create(ORG, "creditReason", reason("R"))
    store.fail_on("update", "creditReason", times=1)
    assert err(store.update, ORG, "creditReason", created["id"], {**reason("R"), "version": 1}).kind == "injected"
    assert store.update(ORG, "creditReason", created["id"], {**reason("R"), "version": 1})["version"] == 2
    store.fail_on(predicate=lambda op, kind, code, body: op == "delete" and code == "R", status=502)
    e = err(store.delete, ORG, "creditReason", created["id"])
    assert e.status == 502
    assert store.find(ORG, "creditReason", created["id"]) is not None


def test_injected_failure_on_singleton(store: Store) -> None:
    store.fail_on("update", "organizationConfig")
    e = err(store.put_singleton, ORG, "organizationConfig", {**ORG_BODY, "version": 1})
    assert e.kind == "injected"
    assert store.get_singleton(ORG, "organizationConfig")["version"] == 1


def test_fail_rules_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(FAIL_ENV, "create:account:B;delete:*:*;update:organizationConfig:*:after")
    s = Store(tmp_path / "env.sqlite")
    a = s.create(ORG, "account", account("A"))
    assert err(s.create, ORG, "account", account("B")).kind == "injected"
    assert err(s.delete, ORG, "account", a["id"]).kind == "injected"
    assert err(s.put_singleton, ORG, "organizationConfig", {**ORG_BODY, "version": 1}).kind == "injected"
    assert s.get_singleton(ORG, "organizationConfig")["version"] == 2  # written, then failed
    s.close()


def test_fail_rules_parsing() -> None:
    rules = parse_fail_rules("create:account:A:B:C ; update:currency ; *")
    assert [(r.op, r.kind, r.code, r.after) for r in rules] == [
        ("create", "account", "A:B:C", False),
        ("update", "currency", "*", False),
        ("*", "*", "*", False),
    ]
    raw = [{"op": "create", "kind": "account", "code": "a;b", "after": True, "times": 2}]
    rules = parse_fail_rules(json.dumps(raw))
    assert (rules[0].code, rules[0].after, rules[0].times) == ("a;b", True, 2)
    assert parse_fail_rules("  ") == []
    with pytest.raises(ValueError):
        parse_fail_rules("explode:account:A")


# --------------------------------------------------------------------------- concurrency and crashes


def test_threads_create_concurrently(store: Store) -> None:
    def work(i: int) -> str:
        return str(store.create(ORG, "account", account(f"T{i}"))["id"])

    with ThreadPoolExecutor(max_workers=8) as pool:
        ids = list(pool.map(work, range(120)))
    assert len(set(ids)) == 120
    assert store.count(ORG, "account") == 120


def test_threads_racing_on_one_version_and_one_code(store: Store) -> None:
    created = store.create(ORG, "creditReason", reason("R"))
    barrier = threading.Barrier(8)

    def update(i: int) -> str:
        barrier.wait()
        try:
            store.update(ORG, "creditReason", created["id"], {**reason("R"), "name": f"n{i}", "version": 1})
            return "ok"
        except StoreError as e:
            return e.kind

    with ThreadPoolExecutor(max_workers=8) as pool:
        outcomes = list(pool.map(update, range(8)))
    assert outcomes.count("ok") == 1 and outcomes.count("conflict") == 7
    assert store.get(ORG, "creditReason", created["id"])["version"] == 2

    barrier2 = threading.Barrier(8)

    def create(i: int) -> str:
        barrier2.wait()
        try:
            store.create(ORG, "debitReason", reason("SAME"))
            return "ok"
        except StoreError as e:
            return e.kind

    with ThreadPoolExecutor(max_workers=8) as pool:
        outcomes = list(pool.map(create, range(8)))
    assert outcomes.count("ok") == 1 and outcomes.count("duplicate") == 7


_WRITER = """
import sys
from reconciler.store import Store
s = Store(sys.argv[1], fail_rules=[])
s.ensure_org("org-1")
print("ready", flush=True)
i = 0
while True:
    s.create("org-1", "account", {"code": f"K{i}", "name": "x" * 150, "emailAddress": "k@example.com"})
    i += 1
"""


def test_sigkill_mid_write_leaves_consistent_db(tmp_path: Path) -> None:
    path = tmp_path / "crash.sqlite"
    proc = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(path)],
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])},
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == b"ready"
    watcher = Store(path, fail_rules=[])
    deadline = time.monotonic() + 20
    while watcher.count(ORG, "account") < 50 and time.monotonic() < deadline:
        time.sleep(0.02)
    watcher.close()
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()
    s = Store(path, fail_rules=[])
    accounts = s.list_all(ORG, "account")
    assert len(accounts) > 0
    assert len({a["code"] for a in accounts}) == len(accounts)
    assert all(a["version"] == 1 for a in accounts)
    s.create(ORG, "account", account("AFTER"))
    s.close()


@pytest.mark.parametrize("kind", ["currency", "creditReason", "debitReason", "transactionType"])
def test_picklist_code_is_optional_as_the_document_says(store: Store, kind: str) -> None:
    """openapi-full.json: the picklist request schemas require only ``name``."""
    first = store.create(ORG, kind, {"name": "No code"})
    second = store.create(ORG, kind, {"name": "No code either"})
    assert "code" not in first and first["id"] != second["id"]
    updated = store.update(ORG, kind, first["id"], {"name": "Renamed", "version": 1})
    assert updated["name"] == "Renamed" and "code" not in updated


def test_extra_fields_are_added_kept_and_cleared_like_known_fields(tmp_path: Path) -> None:
    extra = {"customerSince": "2019-04-01", "profile": {"a": [1, {"b": 2}]}}
    with Store(tmp_path / "x.sqlite", fail_rules=[], extra_fields=extra) as s:
        config = s.get_singleton(ORG, "organizationConfig")
        assert config["customerSince"] == "2019-04-01" and config["profile"] == {"a": [1, {"b": 2}]}
        made = s.create(ORG, "account", {**account("A"), "customerSince": "2001-01-01"})
        assert made["customerSince"] == "2001-01-01" and made["profile"] == extra["profile"]
        kept = s.update(ORG, "account", made["id"], {k: v for k, v in made.items() if k != "id"})
        assert kept["customerSince"] == "2001-01-01" and kept["profile"] == extra["profile"]
        dropped = s.update(ORG, "account", made["id"], {**account("A"), "version": 2})
        assert "customerSince" not in dropped and "profile" not in dropped  # PUT replaces
        assert err(s.create, ORG, "account", {**account("B"), "other": 1}).kind == "invalid"


def test_list_where_keeps_objects_whose_field_holds_a_value(store: Any) -> None:
    """``where`` (the registry's ``list_filters``): field -> accepted values, any field, with
    paging; the indexed parent column is used when the field lives there."""
    a = store.create(ORG, "product", {"code": "a", "name": "A"})
    b = store.create(ORG, "product", {"code": "b", "name": "B"})
    field = [{"category": "MEASURE", "code": "n", "name": "N"}]
    on_a = [store.create(ORG, "meter", {"code": f"ma{i}", "name": "M", "productId": a["id"], "dataFields": field,
                          "derivedFields": []})
            for i in range(3)]
    on_b = store.create(ORG, "meter", {"code": "mb", "name": "M", "productId": b["id"], "dataFields": field,
                                                "derivedFields": []})
    store.create(ORG, "meter", {"code": "global", "name": "M", "dataFields": field, "derivedFields": []})
    page, token = store.list(ORG, "meter", page_size=2, where={"productId": [a["id"]]})
    rest, last = store.list(ORG, "meter", page_size=2, next_token=token, where={"productId": [a["id"]]})
    assert [m["id"] for m in page + rest] == [m["id"] for m in reversed(on_a)] and last is None
    both, _ = store.list(ORG, "meter", page_size=10, where={"productId": [a["id"], b["id"]]})
    assert len(both) == 4 and on_b["id"] in {m["id"] for m in both}
    parent = store.create(ORG, "account", account("P"))
    child = store.create(ORG, "account", account("C", parentAccountId=parent["id"]))
    kids, _ = store.list(ORG, "account", page_size=10, where={"parentAccountId": [parent["id"]]})
    assert [k["id"] for k in kids] == [child["id"]]
