"""``reconciler drift``: 0 in sync right after apply, 2 after a hand edit, in every format."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reconciler import kinds
from reconciler.backends.local import LocalBackend
from tests.conftest import EXAMPLES, run_cli
from tests.test_e2e_local import BASE, apply_ok, write


def hand_edit(backend: str, code: str, **fields: object) -> None:
    """Change an account the way a person in the Console would: not through reconciler."""
    with LocalBackend(backend.split(":", 1)[1]) as org:
        account = org.find_by_code(kinds.get("account"), code)
        assert account is not None
        body = {k: v for k, v in account.items() if k not in kinds.READ_ONLY_FIELDS or k == "version"}
        org.update(kinds.get("account"), account["id"], {**body, **fields})


@pytest.mark.parametrize("fmt", ["text", "json", "markdown"])
def test_drift_zero_after_apply_two_after_hand_edit(tmp_path: Path, local_backend: str, fmt: str) -> None:
    apply_ok(str(EXAMPLES), "--backend", local_backend)
    clean = run_cli("drift", str(EXAMPLES), "--backend", local_backend, "--format", fmt)
    assert clean.code == 0, clean.output
    if fmt == "json":
        assert json.loads(clean.stdout)["inSync"] is True
    else:
        assert "In sync" in clean.stdout

    with LocalBackend(local_backend.split(":", 1)[1]) as org:
        code = sorted(a["code"] for a in org.list(kinds.get("account")))[0]
    hand_edit(local_backend, code, name="HAND-EDITED-NAME")
    drifted = run_cli("drift", str(EXAMPLES), "--backend", local_backend, "--format", fmt)
    assert drifted.code == 2, drifted.output
    if fmt == "json":
        doc = json.loads(drifted.stdout)
        [item] = doc["drift"]
        assert (item["type"], item["kind"], item["key"]) == ("changed", "account", code)
        assert [f["path"] for f in item["fields"]] == ["name"]
        assert item["fields"][0]["live"] == "HAND-EDITED-NAME"
    else:
        assert code.replace("-", "\\-") in drifted.stdout or code in drifted.stdout
        assert "name" in drifted.stdout
        assert "HAND\\-EDITED\\-NAME" in drifted.stdout or "HAND-EDITED-NAME" in drifted.stdout
        assert "Drift: 1 changed, 0 missing, 0 unmanaged." in drifted.stdout


def test_drift_reports_missing_and_unmanaged_of_pruned_kinds(tmp_path: Path, local_backend: str) -> None:
    write(tmp_path, "m/a.yaml", BASE)
    apply_ok(str(tmp_path / "m"), "--backend", local_backend)
    # the manifests gain an account nobody created, and prune accounts
    write(
        tmp_path,
        "m/a.yaml",
        BASE.replace("  - code: acme-eu\n", "  - code: acme-eu-2\n") + "settings:\n  prune: {accounts: delete}\n",
    )
    result = run_cli("drift", str(tmp_path / "m"), "--backend", local_backend, "--format", "json")
    assert result.code == 2
    items = {(i["type"], i["key"]) for i in json.loads(result.stdout)["drift"]}
    assert items == {("missing", "acme-eu-2"), ("unmanaged", "acme-eu")}
    # unlisted accounts are not drift when accounts are not pruned
    write(
        tmp_path,
        "m/a.yaml",
        BASE.replace(
            "  - code: acme-eu\n    name: Acme EU\n    emailAddress: eu@acme.example\n"
            "    parent: acme\n    currency: EUR\n",
            "",
        ),
    )
    assert run_cli("drift", str(tmp_path / "m"), "--backend", local_backend).code == 0


def test_drift_on_invalid_manifests_is_an_error(tmp_path: Path, local_backend: str) -> None:
    write(tmp_path, "m/a.yaml", "accounts:\n  - {code: x, name: X, emailAddress: not-an-email}\n")
    result = run_cli("drift", str(tmp_path / "m"), "--backend", local_backend)
    assert result.code == 1
    assert "a.yaml:2:" in result.stderr and "Traceback" not in result.output


def test_drift_covers_the_catalog(tmp_path: Path, local_backend: str) -> None:
    """A pricing band and an account plan changed by hand in the example organization are
    drift, named by their composite keys and the band's lower limit."""
    apply_ok(str(EXAMPLES), "--backend", local_backend)
    pricing, account_plan = kinds.get("pricing"), kinds.get("accountPlan")
    with LocalBackend(local_backend.split(":", 1)[1]) as org:
        plans = {p["id"]: p["code"] for p in org.list(kinds.get("plan"))}
        target = next(p for p in org.list(pricing)
                      if plans.get(p.get("planId")) == "analytics-standard" and len(p["pricingBands"]) == 3)
        body = {k: v for k, v in target.items() if k not in kinds.READ_ONLY_FIELDS or k == "version"}
        bands = [dict(b) for b in body["pricingBands"]]
        bands[1]["unitPrice"] = 0.0009
        org.update(pricing, target["id"], {**body, "pricingBands": bands})
        ap = next(iter(org.list(account_plan)))
        org.delete(account_plan, ap["id"])
    drifted = run_cli("drift", str(EXAMPLES), "--backend", local_backend, "--format", "json")
    assert drifted.code == 2, drifted.output
    items = {(i["type"], i["kind"]): i for i in json.loads(drifted.stdout)["drift"]}
    changed = items[("changed", "pricing")]
    assert changed["key"] == "plan=analytics-standard, aggregation=api_requests, startDate=2025-01-01T00:00:00Z"
    assert [f["path"] for f in changed["fields"]] == ["pricingBands[100000].unitPrice"]
    assert items[("missing", "accountPlan")]["key"].startswith("account=")
