"""Counterexamples the property tests (tests/test_properties.py) found, kept as named tests.

Each builds the smallest live organization and manifests that showed the bug, then checks
the same property: the plan is refused at plan time with a message naming the blocker, or
one apply succeeds and the next plan is empty; a saved plan refuses after a live change.
Marks starting with ``planner:`` wait for the constraint-ordered planner and identity-checked
saved plans (issue 11 items 1 and 3); remove them when it lands.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from reconciler import kinds
from reconciler.backends.local import LocalBackend
from reconciler.kinds import READ_ONLY_FIELDS
from reconciler.manifest import load_manifests
from reconciler.services import plan_loaded, save_plan
from tests.conftest import run_cli
from tests.strategies import (
    LiveAccount,
    LiveOrg,
    LivePicklist,
    ManifestSet,
    check_convergence,
    seed,
    snapshot,
)

USD = LivePicklist("currency", "USD", "US Dollar", False)
EUR = LivePicklist("currency", "EUR", "Euro", False)


def org(*, currency: str = "USD", conversions: tuple[tuple[str, str, float], ...] = (),
        accounts: tuple[LiveAccount, ...] = (), picklists: tuple[LivePicklist, ...] = (USD, EUR)) -> LiveOrg:
    return LiveOrg(picklists, currency, conversions, {}, accounts)


def manifests(**doc: Any) -> ManifestSet:
    return ManifestSet({"m.yaml": [doc]})


def account(code: str, **fields: Any) -> dict[str, Any]:
    return {"code": code, "name": f"Account {code}", "emailAddress": "billing@example.com", **fields}


@pytest.fixture
def backend(tmp_path: Path) -> Iterator[LocalBackend]:
    b = LocalBackend(tmp_path / "org.sqlite")
    yield b
    b.close()


def last_ready(ready: list[int]) -> int:
    """Run the latest change in plan order first whenever ``dependsOn`` allows it: the order
    threads may pick at parallelism N, made deterministic."""
    return ready[-1]


def refusal_messages(backend: LocalBackend, m: ManifestSet, tmp_path: Path) -> list[str]:
    """What the plan says it cannot do: plan-time errors or ``Plan.blockers``."""
    outcome = plan_loaded(load_manifests([str(m.write(tmp_path / "manifests"))]), backend)
    if outcome.plan is None:
        return [d.format() for d in outcome.diagnostics if d.is_error]
    return [str(b) for b in getattr(outcome.plan, "blockers", None) or []]


def assert_refused_naming(backend: LocalBackend, m: ManifestSet, tmp_path: Path, *names: str) -> None:
    before = snapshot(backend)
    # The property first: applying must not be attempted and then fail.
    assert check_convergence(backend, m, tmp_path, parallelism=1) == "refused"
    assert snapshot(backend) == before
    messages = refusal_messages(backend, m, tmp_path)
    assert any(all(name in message for name in names) for message in messages), messages


# -- currencies removed while something uses them ----------------------------------------------


def test_currency_pruned_while_the_org_config_bills_in_it(backend: LocalBackend, tmp_path: Path) -> None:
    seed(backend, org(currency="EUR"))
    m = manifests(currencies=[{"code": "USD", "name": "US Dollar"}], settings={"prune": {"currencies": "delete"}})
    assert_refused_naming(backend, m, tmp_path, "EUR")


def test_currency_pruned_while_live_conversions_use_it(backend: LocalBackend, tmp_path: Path) -> None:
    seed(backend, org(conversions=(("EUR", "USD", 1.1),)))
    m = manifests(currencies=[{"code": "USD", "name": "US Dollar"}], settings={"prune": {"currencies": "delete"}})
    assert_refused_naming(backend, m, tmp_path, "EUR")


def test_currency_pruned_while_an_unmanaged_account_uses_it(backend: LocalBackend, tmp_path: Path) -> None:
    seed(backend, org(accounts=(LiveAccount("a", None, "EUR"),)))
    m = manifests(currencies=[{"code": "USD", "name": "US Dollar"}], settings={"prune": {"currencies": "delete"}})
    assert_refused_naming(backend, m, tmp_path, "EUR", "a")


def test_currency_pruned_while_its_accounts_are_deleted(backend: LocalBackend, tmp_path: Path) -> None:
    seed(backend, org(accounts=(LiveAccount("a", None, "EUR"), LiveAccount("b", None, "EUR"))))
    m = manifests(
        currencies=[{"code": "USD", "name": "US Dollar"}],
        settings={"prune": {"currencies": "delete", "accounts": "delete"}},
    )
    assert check_convergence(backend, m, tmp_path, parallelism=1, choose=last_ready) == "converged"


def test_currency_pruned_after_accounts_and_conversions_move_off_it(backend: LocalBackend, tmp_path: Path) -> None:
    """Guard for the new planner: moving every user off a currency in the same plan as its
    delete converges in any order dependsOn allows (passes today thanks to apply's phases)."""
    seed(backend, org(conversions=(("EUR", "USD", 1.1),), accounts=(LiveAccount("a", None, "EUR"),)))
    m = manifests(
        currencies=[{"code": "USD", "name": "US Dollar"}],
        organization={"currency": "USD", "currencyConversions": []},
        accounts=[account("a", currency="USD")],
        settings={"prune": {"currencies": "delete"}},
    )
    for choose in (last_ready, lambda ready: ready[0]):
        assert check_convergence(backend, m, tmp_path, parallelism=1, choose=choose) in ("converged", "empty")


# -- account forests ---------------------------------------------------------------------------


def test_parent_and_child_swap(backend: LocalBackend, tmp_path: Path) -> None:
    seed(backend, org(accounts=(LiveAccount("a", None, None), LiveAccount("b", "a", None))))
    m = manifests(accounts=[account("a", parent="b"), account("b", parent=None)])
    assert check_convergence(backend, m, tmp_path, parallelism=1, choose=last_ready) == "converged"


def test_three_level_rotation(backend: LocalBackend, tmp_path: Path) -> None:
    seed(backend, org(accounts=(LiveAccount("a", None, None), LiveAccount("b", "a", None),
                                LiveAccount("c", "b", None))))
    m = manifests(accounts=[account("a", parent="c"), account("b", parent="a"), account("c", parent=None)])
    assert check_convergence(backend, m, tmp_path, parallelism=1, choose=last_ready) == "converged"


def test_pruned_parent_of_a_kept_child_without_parent_field(backend: LocalBackend, tmp_path: Path) -> None:
    seed(backend, org(accounts=(LiveAccount("a", None, None), LiveAccount("b", "a", None))))
    m = manifests(accounts=[account("b")], settings={"prune": {"accounts": "delete"}})
    assert_refused_naming(backend, m, tmp_path, "a", "b")


def test_account_created_under_a_pruned_parent(backend: LocalBackend, tmp_path: Path) -> None:
    seed(backend, org(accounts=(LiveAccount("a", None, None),)))
    m = manifests(accounts=[account("n", parent="a")], settings={"prune": {"accounts": "delete"}})
    assert_refused_naming(backend, m, tmp_path, "a")


def test_pruned_parent_named_by_an_account_whose_parent_is_ignored(backend: LocalBackend, tmp_path: Path) -> None:
    seed(backend, org(accounts=(LiveAccount("f", None, None), LiveAccount("g", None, None))))
    m = manifests(
        accounts=[account("f", parent="g")],
        settings={"prune": {"accounts": "delete"}, "ignoreFields": {"account": ["parent"]}},
    )
    check_convergence(backend, m, tmp_path, parallelism=1)  # refused, or converges with g kept


# -- saved plans -------------------------------------------------------------------------------


def _put_body(entity: dict[str, Any]) -> dict[str, Any]:
    return {**{k: v for k, v in entity.items() if k not in READ_ONLY_FIELDS}, "version": entity["version"]}


def _recreate(backend: LocalBackend, kind_name: str, code: str) -> None:
    """Delete and create again with the same code and fields: new id, version 1 again."""
    kind = kinds.get(kind_name)
    current = backend.find_by_code(kind, code)
    assert current is not None
    backend.delete(kind, str(current["id"]))
    backend.create(kind, {k: v for k, v in current.items() if k not in READ_ONLY_FIELDS})


def _apply_saved_after(backend: LocalBackend, tmp_path: Path, m: ManifestSet,
                       live_change: Callable[[], None]) -> None:
    outcome = plan_loaded(load_manifests([str(m.write(tmp_path / "manifests"))]), backend)
    assert outcome.plan is not None and outcome.plan.changes
    plan_file = tmp_path / "plan.json"
    save_plan(outcome.plan, str(plan_file))
    live_change()
    before = snapshot(backend)
    result = run_cli("apply", "--plan", str(plan_file), "--backend", f"local:{backend.path}",
                     "--auto-approve", "--allow-delete", "--force")
    assert (result.code, snapshot(backend) == before) == (1, True), result.output


def test_saved_plan_refuses_an_update_of_an_object_deleted_and_recreated(backend: LocalBackend,
                                                                          tmp_path: Path) -> None:
    seed(backend, org(accounts=(LiveAccount("a", None, None),)))
    m = manifests(accounts=[account("a", purchaseOrderNumber="PO-2"), account("new")])
    _apply_saved_after(backend, tmp_path, m, lambda: _recreate(backend, "account", "a"))


def test_saved_plan_refuses_to_delete_an_object_recreated_since(backend: LocalBackend, tmp_path: Path) -> None:
    seed(backend, org(picklists=(USD, LivePicklist("debitReason", "late_fee", "Late fee", False))))
    m = manifests(debitReasons=[], settings={"prune": {"debitReasons": "delete"}})
    _apply_saved_after(backend, tmp_path, m, lambda: _recreate(backend, "debitReason", "late_fee"))


def test_saved_plan_refuses_after_a_version_bump(backend: LocalBackend, tmp_path: Path) -> None:
    """Guard: the case today's code+version check already covers."""
    seed(backend, org(accounts=(LiveAccount("a", None, None),)))
    m = manifests(accounts=[account("a", purchaseOrderNumber="PO-2")])
    kind = kinds.get("account")

    def bump() -> None:
        current = backend.find_by_code(kind, "a")
        assert current is not None
        backend.update(kind, str(current["id"]), _put_body(current))

    _apply_saved_after(backend, tmp_path, m, bump)


# -- the pricing catalog (issue 15) -----------------------------------------------------------

PRODUCT = ("product", {"code": "p1", "name": "Product p1"})
METER = ("meter", {"code": "m1", "name": "Meter m1", "dataFields": [
    {"category": "MEASURE", "code": "qty", "name": "Quantity", "unit": "units"}], "derivedFields": []})
AGG = {"name": "Agg", "meter": "m1", "targetField": "qty", "aggregation": "SUM", "unit": "u", "rounding": "NONE",
       "quantityPerUnit": 1.0}
COMPOUND = {"name": "Compound", "calculation": "aggregation.ag1 * 2", "unit": "u", "rounding": "UP",
            "quantityPerUnit": 1.0}
TEMPLATE = {"name": "Template t1", "product": "p1", "currency": "USD", "billFrequency": "MONTHLY", "standingCharge": 0}
BANDS = [{"lowerLimit": 0, "fixedPrice": 0, "unitPrice": 0.5}]


def catalog_org(*catalog: tuple[str, dict[str, Any]], accounts: tuple[LiveAccount, ...] = ()) -> LiveOrg:
    return LiveOrg((USD, EUR), "USD", (), {}, accounts, catalog=catalog)


CATALOG_BASE = (
    PRODUCT, METER,
    ("aggregation", {"code": "ag1", **AGG}),
    ("compoundAggregation", {"code": "ca1", **COMPOUND}),
    ("planTemplate", {"code": "t1", **TEMPLATE}),
    ("plan", {"code": "pl1", "name": "Plan pl1", "planTemplate": "t1"}),
)


def test_coded_pricing_moved_from_its_plan_template_to_a_plan(backend: LocalBackend, tmp_path: Path) -> None:
    """A pricing with a code is known by it, so moving it from a plan template to a plan is
    an update; the manifest names ``plan`` and leaves ``planTemplate`` out, and the update
    kept the live planTemplateId beside the new planId: m3ter refused the body ("exactly one
    of planId or planTemplateId"). Naming one of an identity's ``a|b`` fields now clears the
    other."""
    seed(backend, catalog_org(*CATALOG_BASE, ("pricing", {
        "code": "pr1", "planTemplate": "t1", "aggregation": "ag1", "startDate": "2025-01-01T00:00:00Z",
        "pricingBands": BANDS})))
    m = manifests(plans=[{"code": "pl1", "name": "Plan pl1", "planTemplate": "t1", "pricings": [
        {"code": "pr1", "aggregation": "ag1", "startDate": "2025-01-01T00:00:00Z", "pricingBands": BANDS}]}])
    assert check_convergence(backend, m, tmp_path, parallelism=1) == "converged"


def test_coded_pricing_moved_from_an_aggregation_to_a_compound_one(backend: LocalBackend, tmp_path: Path) -> None:
    seed(backend, catalog_org(*CATALOG_BASE, ("pricing", {
        "code": "pr1", "plan": "pl1", "aggregation": "ag1", "startDate": "2025-01-01T00:00:00Z",
        "pricingBands": BANDS})))
    # (ag1 is not pruned: ca1's calculation names it, so m3ter would refuse its delete)
    m = manifests(pricings=[{"code": "pr1", "plan": "pl1", "compoundAggregation": "ca1",
                             "startDate": "2025-01-01T00:00:00Z", "pricingBands": BANDS}])
    assert check_convergence(backend, m, tmp_path, parallelism=1, choose=last_ready) == "converged"


def test_coded_account_plan_moved_from_a_plan_to_a_plan_group(backend: LocalBackend, tmp_path: Path) -> None:
    seed(backend, catalog_org(*CATALOG_BASE, ("planGroup", {"code": "g1", "name": "Group", "currency": "USD"}),
                              ("accountPlan", {"code": "ap1", "account": "a", "plan": "pl1",
                                               "startDate": "2024-01-01T00:00:00Z"}),
                              accounts=(LiveAccount("a", None, None),)))
    m = manifests(accountPlans=[{"code": "ap1", "account": "a", "planGroup": "g1",
                                 "startDate": "2024-01-01T00:00:00Z"}])
    assert check_convergence(backend, m, tmp_path, parallelism=1) == "converged"


def test_coded_account_plan_start_moved_past_its_live_end_date(backend: LocalBackend, tmp_path: Path) -> None:
    """The manifest moves account plan ap1's startDate past the live endDate it leaves
    unmanaged: each field is valid alone, the PUT that merges them is not ("endDate: must be
    after startDate"). The plan applied and failed; it is refused at plan time now, and
    ``endDate: null`` (or a later one) in the manifest makes it converge."""
    seed(backend, catalog_org(*CATALOG_BASE, ("accountPlan", {
        "code": "ap1", "account": "a", "plan": "pl1", "startDate": "2023-01-01T00:00:00Z",
        "endDate": "2024-01-01T00:00:00Z"}), accounts=(LiveAccount("a", None, None),)))
    moved = {"code": "ap1", "account": "a", "plan": "pl1", "startDate": "2024-06-01T00:00:00Z"}
    assert_refused_naming(backend, manifests(accountPlans=[moved]), tmp_path, "accountPlan ap1", "endDate")
    m = manifests(accountPlans=[{**moved, "endDate": None}])
    assert check_convergence(backend, m, tmp_path / "again", parallelism=1) == "converged"


def test_a_catalog_object_missing_an_identity_alternative_is_an_error_not_ignored(tmp_path: Path) -> None:
    """A pricing with neither plan nor planTemplate (or neither aggregation kind), or an
    account plan with neither plan nor planGroup, has no key: the loader used to leave it
    unclaimed and validation said "Valid: 0 objects". Each is now a located error."""
    from tests.conftest import run_cli, write_manifest

    path = write_manifest(tmp_path, "m.yaml", """
        pricings:
          - aggregation: x
            startDate: "2025-01-01T00:00:00Z"
            pricingBands: [{lowerLimit: 0, fixedPrice: 0, unitPrice: 1}]
          - plan: p
            startDate: "2025-01-01T00:00:00Z"
            pricingBands: [{lowerLimit: 0, fixedPrice: 0, unitPrice: 1}]
        accountPlans:
          - {account: a, startDate: "2025-01-01T00:00:00Z"}
        """)
    result = run_cli("validate", str(path))
    assert result.code == 1
    assert f"{path}:2:5: error: pricings[0]: give exactly one of plan or planTemplate" in result.stderr
    assert f"{path}:5:5: error: pricings[1]: give exactly one of aggregation or compoundAggregation" in result.stderr
    assert f"{path}:9:5: error: accountPlans[0]: give exactly one of plan or planGroup" in result.stderr
