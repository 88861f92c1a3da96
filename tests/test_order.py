"""Apply order derived from constraints (issue "Correct from any live state", item 1).

Each test builds a live organization that our own apply did not build (seeded straight
into the local backend), then runs the CLI as a user would: plan, apply once, plan again.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest

from reconciler import kinds
from reconciler.backends.local import LocalBackend
from tests.conftest import CliResult, run_cli

ACCOUNT = kinds.get("account")
CURRENCY = kinds.get("currency")


def org(path: Path) -> LocalBackend:
    return LocalBackend(path)


def seed_account(backend: LocalBackend, code: str, parent: str | None = None, **fields: Any) -> str:
    body: dict[str, Any] = {"code": code, "name": code.upper(), "emailAddress": f"{code}@example.com", **fields}
    if parent is not None:
        body["parentAccountId"] = parent
    return str(backend.create(ACCOUNT, body)["id"])


def manifest(tmp_path: Path, text: str) -> str:
    path = tmp_path / "m" / "org.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return str(path.parent)


def account_yaml(code: str, **fields: Any) -> str:
    extra = "".join(f"\n    {k}: {json.dumps(v)}" for k, v in fields.items())
    return f"  - code: {code}\n    name: {code.upper()}\n    emailAddress: {code}@example.com{extra}\n"


def plan_doc(path: str, backend: str) -> dict[str, Any]:
    result = run_cli("plan", path, "--backend", backend, "--format", "json")
    assert result.code in (0, 1), result.output
    return dict(json.loads(result.stdout))


def apply(path: str, backend: str, *extra: str) -> CliResult:
    return run_cli("apply", path, "--backend", backend, "--auto-approve", "--allow-delete", *extra)


def parents(path: Path) -> dict[str, str | None]:
    with org(path) as backend:
        accounts = backend.list(ACCOUNT)
    by_id = {a["id"]: a["code"] for a in accounts}
    return {a["code"]: by_id.get(a.get("parentAccountId")) for a in accounts}


@pytest.mark.parametrize("parallelism", ["1", "8"])
def test_currency_pruned_while_its_accounts_are_deleted(tmp_path: Path, parallelism: str) -> None:
    db = tmp_path / "org.sqlite"
    with org(db) as backend:
        backend.create(CURRENCY, {"code": "EUR", "name": "Euro"})
        for n in range(3):
            seed_account(backend, f"eu{n}", currency="EUR")
    path = manifest(tmp_path, """\
        currencies:
          - {code: USD, name: US Dollar}
        settings:
          prune: {currencies: delete, accounts: delete}
          safety: {maxRemovePercent: 100}
        """)
    doc = plan_doc(path, f"local:{db}")
    changes = doc["changes"]
    [eur] = [i for i, c in enumerate(changes) if c["kind"] == "currency"]
    deletes = {i for i, c in enumerate(changes) if c["kind"] == "account"}
    assert set(changes[eur]["dependsOn"]) == deletes
    assert eur > max(deletes)
    result = apply(path, f"local:{db}", "--parallelism", parallelism)
    assert result.code == 0, result.output
    assert run_cli("plan", path, "--backend", f"local:{db}", "--detailed-exitcode").code == 0


@pytest.mark.parametrize("parallelism", ["1", "8"])
def test_parent_and_child_swap_in_one_run(tmp_path: Path, parallelism: str) -> None:
    db = tmp_path / "org.sqlite"
    with org(db) as backend:
        a = seed_account(backend, "a")
        seed_account(backend, "b", a)
    path = manifest(tmp_path, "accounts:\n" + account_yaml("a", parent="b") + account_yaml("b", parent=None))
    doc = plan_doc(path, f"local:{db}")
    order = [(c["key"], c["dependsOn"]) for c in doc["changes"]]
    assert order == [("b", []), ("a", [0])]  # b goes to the top level first, then a under b
    result = apply(path, f"local:{db}", "--parallelism", parallelism)
    assert result.code == 0, result.output
    assert parents(db) == {"a": "b", "b": None}
    assert run_cli("plan", path, "--backend", f"local:{db}", "--detailed-exitcode").code == 0


@pytest.mark.parametrize("parallelism", ["1", "8"])
def test_chain_reversed_in_one_run(tmp_path: Path, parallelism: str) -> None:
    """a > b > c > d becomes d > c > b > a: every move waits for the moves above its new place."""
    db = tmp_path / "org.sqlite"
    with org(db) as backend:
        a = seed_account(backend, "a")
        b = seed_account(backend, "b", a)
        c = seed_account(backend, "c", b)
        seed_account(backend, "d", c)
    path = manifest(tmp_path, "accounts:\n" + account_yaml("d", parent=None) + account_yaml("c", parent="d")
                    + account_yaml("b", parent="c") + account_yaml("a", parent="b"))
    result = apply(path, f"local:{db}", "--parallelism", parallelism)
    assert result.code == 0, result.output
    assert parents(db) == {"d": None, "c": "d", "b": "c", "a": "b"}


def test_pruned_parent_with_a_kept_child_is_refused_at_plan_time(tmp_path: Path) -> None:
    db = tmp_path / "org.sqlite"
    with org(db) as backend:
        p = seed_account(backend, "parent-co")
        seed_account(backend, "child-co", p)
    # child-co is listed without `parent`: its parent is unmanaged and stays parent-co
    path = manifest(tmp_path, "accounts:\n" + account_yaml("child-co")
                    + "settings:\n  prune: {accounts: delete}\n  safety: {maxRemovePercent: 100}\n")
    result = run_cli("plan", path, "--backend", f"local:{db}")
    assert result.code == 1
    assert "cannot delete account parent-co" in result.stderr
    assert "account child-co refers to it through parent" in result.stderr
    assert "parent: null" in result.stderr  # the fix
    assert "Traceback" not in result.output
    before = parents(db)
    refused = apply(path, f"local:{db}")
    assert refused.code == 1 and "cannot succeed" in refused.stderr
    assert parents(db) == before  # nothing was changed


def test_currency_used_by_an_unmanaged_account_is_refused_at_plan_time(tmp_path: Path) -> None:
    db = tmp_path / "org.sqlite"
    with org(db) as backend:
        backend.create(CURRENCY, {"code": "GBP", "name": "Pound"})
        seed_account(backend, "legacy", currency="GBP")
    path = manifest(tmp_path, """\
        currencies:
          - {code: USD, name: US Dollar}
        settings:
          prune: {currencies: delete}
          safety: {maxRemovePercent: 100}
        """)
    result = run_cli("plan", path, "--backend", f"local:{db}", "--format", "json")
    assert result.code == 1
    doc = json.loads(result.stdout)
    [blocker] = doc["blockers"]
    assert "cannot delete currency GBP" in blocker and "account legacy" in blocker
    assert "which the manifests do not list" in blocker
    assert "cannot delete currency GBP" in result.stderr


def test_default_usd_currency_is_never_deleted(tmp_path: Path) -> None:
    db = tmp_path / "org.sqlite"
    path = manifest(tmp_path, """\
        currencies:
          - {code: EUR, name: Euro}
        organization:
          currency: EUR
          daysBeforeBillDue: 30
        settings:
          prune: {currencies: delete}
        """)
    result = run_cli("plan", path, "--backend", f"local:{db}")
    assert result.code == 1
    assert "cannot delete currency USD" in result.stderr and "archive it instead" in result.stderr
    archive = manifest(tmp_path, """\
        currencies:
          - {code: EUR, name: Euro}
        organization:
          currency: EUR
          daysBeforeBillDue: 30
        settings:
          prune: {currencies: archive}
        """)
    applied = apply(archive, f"local:{db}")
    assert applied.code == 0, applied.output


def test_currency_archived_after_the_org_config_moves_off_it(tmp_path: Path) -> None:
    db = tmp_path / "org.sqlite"
    path = manifest(tmp_path, """\
        currencies:
          - {code: EUR, name: Euro}
        organization:
          currency: EUR
          daysBeforeBillDue: 30
        settings:
          prune: {currencies: archive}
        """)
    doc = plan_doc(path, f"local:{db}")
    keys = [(c["action"], c["key"]) for c in doc["changes"]]
    assert keys == [("create", "EUR"), ("update", "organizationConfig"), ("archive", "USD")]
    assert doc["changes"][1]["dependsOn"] == [0] and doc["changes"][2]["dependsOn"] == [1]


def test_cycle_through_an_unmanaged_live_account_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "org.sqlite"
    with org(db) as backend:
        top = seed_account(backend, "top")
        seed_account(backend, "hidden", top)  # not in the manifests: stays under top
    path = manifest(tmp_path, "accounts:\n" + account_yaml("top", parent="hidden"))
    result = run_cli("plan", path, "--backend", f"local:{db}")
    assert result.code == 1
    assert "cycle" in result.stderr and "hidden -> top -> hidden" in result.stderr


def test_deleted_parent_waits_for_children_moved_elsewhere(tmp_path: Path) -> None:
    db = tmp_path / "org.sqlite"
    with org(db) as backend:
        old = seed_account(backend, "old-parent")
        seed_account(backend, "kid1", old)
        seed_account(backend, "kid2", old)
    path = manifest(tmp_path, "accounts:\n" + account_yaml("new-parent") + account_yaml("kid1", parent="new-parent")
                    + account_yaml("kid2", parent=None)
                    + "settings:\n  prune: {accounts: delete}\n  safety: {maxRemovePercent: 100}\n")
    doc = plan_doc(path, f"local:{db}")
    changes = doc["changes"]
    index = {c["key"]: i for i, c in enumerate(changes)}
    assert set(changes[index["old-parent"]]["dependsOn"]) == {index["kid1"], index["kid2"]}
    assert changes[index["kid1"]]["dependsOn"] == [index["new-parent"]]
    result = apply(path, f"local:{db}", "--parallelism", "8")
    assert result.code == 0, result.output
    assert parents(db) == {"new-parent": None, "kid1": "new-parent", "kid2": None}


def test_account_with_account_plans_is_not_deleted_but_refused_at_plan_time(tmp_path: Path) -> None:
    """openapi-full.json: DELETE /accounts/{id} fails while account plans reference it."""
    db = tmp_path / "org.sqlite"
    with org(db) as backend:
        kept = seed_account(backend, "gone-co")
        seed_account(backend, "free-co")
        backend.store.seed_account_plan(backend.org_id, kept, code="gold_2024", start_date="2024-01-01",
                                        end_date="2024-12-31")
    path = manifest(tmp_path, "accounts:\n" + account_yaml("keep-co")
                    + "settings:\n  prune: {accounts: delete}\n  safety: {maxRemovePercent: 100}\n")
    result = run_cli("plan", path, "--backend", f"local:{db}")
    assert result.code == 1
    assert "cannot delete account gone-co" in result.stderr
    assert "accountPlan gold_2024, which the manifests do not list, refers to it" in result.stderr
    assert "prune it too" in result.stderr
    assert "free-co" not in result.stderr.split("error:", 1)[1]  # only the blocked account is named
    refused = apply(path, f"local:{db}")
    assert refused.code == 1
    assert set(parents(db)) == {"gone-co", "free-co"}  # nothing was changed


def test_saved_plan_refused_when_an_account_plan_appears_after_review(tmp_path: Path) -> None:
    db = tmp_path / "org.sqlite"
    with org(db) as backend:
        seed_account(backend, "old-co")
    path = manifest(tmp_path, "accounts:\n" + account_yaml("new-co")
                    + "settings:\n  prune: {accounts: delete}\n  safety: {maxRemovePercent: 100}\n")
    out = tmp_path / "plan.json"
    assert run_cli("plan", path, "--backend", f"local:{db}", "--out", str(out)).code == 0
    with org(db) as backend:
        [old] = [a for a in backend.list(ACCOUNT) if a["code"] == "old-co"]
        backend.store.seed_account_plan(backend.org_id, old["id"], code="late_plan")
    result = run_cli("apply", "--plan", str(out), "--backend", f"local:{db}", "--auto-approve", "--allow-delete")
    assert result.code == 1 and "accountPlan late_plan refers to it" in result.stderr
    assert set(parents(db)) == {"old-co"}


def test_org_config_update_without_a_put_required_field_is_refused_at_plan_time(tmp_path: Path) -> None:
    """A fresh organization has no daysBeforeBillDue (the document gives no default) and
    OrganizationConfigRequest requires it: the PUT would fail, so the plan says so first."""
    db = tmp_path / "org.sqlite"
    path = manifest(tmp_path, "organization:\n  timezone: Europe/London\n")
    result = run_cli("plan", path, "--backend", f"local:{db}")
    assert result.code == 1
    assert "m3ter requires daysBeforeBillDue on every update" in result.stderr
    assert "set daysBeforeBillDue under organization" in result.stderr
    fixed = manifest(tmp_path, "organization:\n  timezone: Europe/London\n  daysBeforeBillDue: 30\n")
    assert apply(fixed, f"local:{db}").code == 0
    assert run_cli("plan", fixed, "--backend", f"local:{db}", "--detailed-exitcode").code == 0


def test_cycle_through_an_unread_unmanaged_account_is_refused_over_http(tmp_path: Path) -> None:
    """The m3ter backend reads the accounts the manifests name by code, so an unmanaged
    account between two managed ones is not read with them: the planner still has to see
    the cycle a -> b -> hidden -> a (it reads the missing ancestors) and refuse it, and
    shows the live parent by code, not by id."""
    from reconciler.emulator import EmulatorConfig
    from reconciler.emulator.testing import running_emulator

    with running_emulator(EmulatorConfig(rate_limit=None)) as emu:
        def add(code: str, parent: str | None) -> str:
            body: dict[str, Any] = {"code": code, "name": code.upper(), "emailAddress": f"{code}@example.com"}
            if parent:
                body["parentAccountId"] = parent
            return str(emu.store.create(emu.org_id, "account", body)["id"])

        a = add("a", None)
        hidden = add("hidden", a)
        add("b", hidden)
        cyclic = manifest(tmp_path, "accounts:\n" + account_yaml("a", parent="b") + account_yaml("b"))
        result = run_cli("plan", cyclic, "--backend", "m3ter", env=emu.env())
        assert result.code == 1, result.output
        assert "cycle" in result.stderr and "a -> b -> hidden -> a" in result.stderr
        moved = manifest(tmp_path, "accounts:\n" + account_yaml("b", parent=None))
        shown = run_cli("plan", moved, "--backend", "m3ter", env=emu.env())
        assert shown.code == 0, shown.output
        assert '- parent: "hidden"' in shown.stdout
