"""Unit tests of the planner: semantic comparison, ordering, prune, ignoreFields, safety."""

from __future__ import annotations

from typing import Any

from reconciler import kinds
from reconciler.compare import same
from reconciler.diagnostics import Location
from reconciler.manifest.settings import Settings
from reconciler.manifest.types import DesiredObject, Manifests
from reconciler.plan import LiveState, build_plan


def manifests(settings: dict[str, Any] | None = None, **by_kind: list[dict[str, Any]] | dict[str, Any]) -> Manifests:
    objects: dict[str, dict[str, DesiredObject]] = {name: {} for name in kinds.KIND_NAMES}
    line = 1
    for name, value in by_kind.items():
        kind = kinds.get(name)
        items = [value] if kind.singleton else value
        assert isinstance(items, list)
        for fields in items:
            key = kind.key_in_manifest(fields)
            objects[name][key] = DesiredObject(name, key, dict(fields), Location("m.yaml", line, 1))
            line += 1
    return Manifests(objects=objects, settings=Settings.model_validate(settings or {}))


def entity(code: str, version: int = 1, **fields: Any) -> dict[str, Any]:
    return {"id": f"id-{code}", "version": version, "code": code, "dtCreated": "2024-01-01T00:00:00Z", **fields}


def plan_of(m: Manifests, **live: list[dict[str, Any]]) -> Any:
    return build_plan(m, LiveState(dict(live)), organization="org", backend="test")


def test_numbers_compare_by_value_not_text() -> None:
    assert same(1, 1.0)
    assert same(1.27, 1.2700000000000002)
    assert not same(1.27, 1.28)
    assert not same(True, 1)
    assert not same(1, True)


def test_null_means_empty_and_absent_means_unmanaged() -> None:
    m = manifests(account=[{"code": "a", "name": "A", "emailAddress": "a@example.com", "purchaseOrderNumber": None}])
    live = [entity("a", name="A", emailAddress="a@example.com", purchaseOrderNumber="PO-1", daysBeforeBillDue=30)]
    plan = plan_of(m, account=live)
    [change] = plan.changes
    assert change.action == "update"
    assert [(d.path, d.before, d.after) for d in change.diff] == [("purchaseOrderNumber", "PO-1", None)]
    # unmanaged field kept, cleared field left out, version carried, read-only fields dropped
    assert change.body["daysBeforeBillDue"] == 30
    assert "purchaseOrderNumber" not in change.body
    assert change.body["version"] == 1
    assert "dtCreated" not in change.body and "id" not in change.body


def test_no_change_when_live_matches() -> None:
    m = manifests(currency=[{"code": "EUR", "name": "Euro", "maxDecimalPlaces": 2}])
    plan = plan_of(m, currency=[entity("EUR", name="Euro", maxDecimalPlaces=2.0, archived=False)])
    assert plan.changes == []
    assert plan.summary()["unchanged"] == 1


def test_currency_conversions_order_free_credit_order_ordered() -> None:
    m = manifests(
        organizationConfig={
            "currencyConversions": [
                {"from": "EUR", "to": "USD", "multiplier": 1.1},
                {"from": "GBP", "to": "USD", "multiplier": 1.27},
            ],
            "creditApplicationOrder": ["PREPAYMENT", "BALANCE"],
        }
    )
    live = {
        "id": "cfg",
        "version": 4,
        "currency": "USD",
        "currencyConversions": [
            {"from": "GBP", "to": "USD", "multiplier": 1.2700000000000002},
            {"from": "EUR", "to": "USD", "multiplier": 1.1},
        ],
        "creditApplicationOrder": ["BALANCE", "PREPAYMENT"],
    }
    plan = plan_of(m, organizationConfig=[live])
    [change] = plan.changes
    assert [d.path for d in change.diff] == ["creditApplicationOrder"]
    assert change.key == "organizationConfig" and change.version == 4


def test_address_partial_custom_fields_whole() -> None:
    m = manifests(
        account=[
            {
                "code": "a",
                "name": "A",
                "emailAddress": "a@example.com",
                "address": {"locality": "Leeds"},
                "customFields": {"tier": "gold"},
            }
        ]
    )
    live = [
        entity(
            "a",
            name="A",
            emailAddress="a@example.com",
            address={"locality": "York", "country": "UK"},
            customFields={"tier": "gold", "old": 1},
        )
    ]
    [change] = plan_of(m, account=live).changes
    assert sorted((d.path, d.before, d.after) for d in change.diff) == [
        ("address.locality", "York", "Leeds"),
        ("customFields.old", 1, None),
    ]
    assert change.body["address"] == {"locality": "Leeds", "country": "UK"}
    assert change.body["customFields"] == {"tier": "gold"}


def test_order_currencies_config_reasons_accounts_parents_first() -> None:
    m = manifests(
        account=[
            {"code": "child", "name": "C", "emailAddress": "c@example.com", "parent": "parent", "currency": "EUR"},
            {"code": "parent", "name": "P", "emailAddress": "p@example.com"},
        ],
        creditReason=[{"code": "goodwill", "name": "Goodwill"}],
        organizationConfig={"currency": "USD"},
        currency=[{"code": "EUR", "name": "Euro"}],
    )
    plan = plan_of(m, organizationConfig=[{"id": "cfg", "version": 1, "currency": "GBP"}])
    assert [(c.kind, c.key) for c in plan.changes] == [
        ("currency", "EUR"),
        ("organizationConfig", "organizationConfig"),
        ("creditReason", "goodwill"),
        ("account", "parent"),
        ("account", "child"),
    ]
    child = plan.changes[-1]
    assert child.body["parentAccountId"] == {"$ref": {"kind": "account", "code": "parent"}}
    assert set(child.depends_on) == {0, 3}  # EUR and parent


def test_parent_already_live_uses_its_id() -> None:
    m = manifests(account=[{"code": "child", "name": "C", "emailAddress": "c@example.com", "parent": "p"}])
    plan = plan_of(m, account=[entity("p", name="P", emailAddress="p@example.com")])
    [change] = plan.changes
    assert change.body["parentAccountId"] == "id-p"
    assert [(u.kind, u.key) for u in plan.unmanaged] == [("account", "p")]


def test_prune_archive_delete_and_removal_order() -> None:
    m = manifests(settings={"prune": {"currencies": "archive", "accounts": "delete"}})
    live_accounts = [
        entity("parent", name="P", emailAddress="p@example.com"),
        entity("kid", name="K", emailAddress="k@example.com", parentAccountId="id-parent"),
    ]
    plan = plan_of(
        m,
        account=live_accounts,
        currency=[entity("USD", name="US Dollar", archived=False), entity("OLD", name="Old", archived=True)],
    )
    assert [(c.action, c.kind, c.key) for c in plan.changes] == [
        ("delete", "account", "kid"),
        ("delete", "account", "parent"),
        ("archive", "currency", "USD"),
    ]
    assert plan.changes[1].depends_on == [0]
    assert any("usage data" in w for w in plan.changes[0].warnings)
    assert [(u.kind, u.key) for u in plan.unmanaged] == [("currency", "OLD")]


def test_listed_archived_object_is_restored_when_kind_pruned_by_archive() -> None:
    m = manifests(settings={"prune": {"creditReasons": "archive"}}, creditReason=[{"code": "x", "name": "X"}])
    plan = plan_of(m, creditReason=[entity("x", name="X", archived=True)])
    [change] = plan.changes
    assert change.action == "unarchive" and change.body["archived"] is False


def test_explicit_archive_action() -> None:
    m = manifests(transactionType=[{"code": "t", "name": "T", "archived": True}])
    [change] = plan_of(m, transactionType=[entity("t", name="T", archived=False)]).changes
    assert change.action == "archive"


def test_ignore_fields() -> None:
    m = manifests(
        settings={"ignoreFields": {"account": ["purchaseOrderNumber", "address"]}},
        account=[
            {
                "code": "a",
                "name": "A",
                "emailAddress": "a@example.com",
                "purchaseOrderNumber": "X",
                "address": {"locality": "Leeds"},
            }
        ],
    )
    plan = plan_of(
        m,
        account=[
            entity("a", name="A", emailAddress="a@example.com", purchaseOrderNumber="Y", address={"locality": "York"})
        ],
    )
    assert plan.changes == []


def test_purchase_order_warning_only_when_changing_existing_number() -> None:
    m = manifests(account=[{"code": "a", "name": "A", "emailAddress": "a@example.com", "purchaseOrderNumber": "PO-2"}])
    [change] = plan_of(
        m, account=[entity("a", name="A", emailAddress="a@example.com", purchaseOrderNumber="PO-1")]
    ).changes
    assert any("purchaseOrderNumber" in w for w in change.warnings)
    [first] = plan_of(m, account=[entity("a", name="A", emailAddress="a@example.com")]).changes
    assert first.warnings == []


def test_safety_threshold() -> None:
    m = manifests(
        settings={"prune": {"accounts": "delete"}, "safety": {"maxRemovePercent": 30}},
        account=[{"code": f"a{i}", "name": "A", "emailAddress": "a@example.com"} for i in range(6)],
    )
    live = [entity(f"a{i}", name="A", emailAddress="a@example.com") for i in range(10)]
    plan = plan_of(m, account=live)
    assert plan.summary()["delete"] == 4
    assert plan.refusals and "40%" in plan.refusals[0]
    small = plan_of(m, account=live[:9])  # fewer than 10 live: no threshold
    assert small.refusals == []


def test_consolidate_bills_warning() -> None:
    m = manifests(organizationConfig={"consolidateBills": True})
    [change] = plan_of(m, organizationConfig=[{"id": "c", "version": 1, "consolidateBills": False}]).changes
    assert any("consolidateBills" in w for w in change.warnings)


def test_custom_fields_entity_type_managed_whole() -> None:
    m = manifests(customFields={"account": {"tier": "standard"}})
    live = {"id": "cf", "version": 2, "account": {"tier": "standard", "legacy": 1}, "meter": {"x": 1}}
    [change] = plan_of(m, customFields=[live]).changes
    assert [(d.path, d.before, d.after) for d in change.diff] == [("account.legacy", 1, None)]
    assert change.body == {"account": {"tier": "standard"}, "meter": {"x": 1}, "version": 2}
