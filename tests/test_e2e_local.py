"""End to end through the CLI on the local backend: what a billing engineer meets."""

from __future__ import annotations

import json
import sqlite3
import textwrap
from pathlib import Path

import pytest

from tests.conftest import EXAMPLES, CliResult, run_cli


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def plan_json(*args: str) -> dict:
    result = run_cli("plan", *args, "--format", "json")
    assert result.code == 0, result.output
    return json.loads(result.stdout)


def apply_ok(*args: str) -> CliResult:
    result = run_cli("apply", *args, "--auto-approve")
    assert result.code == 0, result.output
    return result


BASE = """\
currencies:
  - {code: USD, name: US Dollar}
  - {code: EUR, name: Euro, maxDecimalPlaces: 2}
creditReasons:
  - {code: goodwill, name: Goodwill gesture}
accounts:
  - code: acme
    name: Acme Corp
    emailAddress: billing@acme.example
    purchaseOrderNumber: PO-1
    daysBeforeBillDue: 30
  - code: acme-eu
    name: Acme EU
    emailAddress: eu@acme.example
    parent: acme
    currency: EUR
"""


def test_examples_apply_then_plan_empty(local_backend: str) -> None:
    first = run_cli("plan", str(EXAMPLES), "--backend", local_backend, "--detailed-exitcode")
    assert first.code == 2, first.output
    assert "to create" in first.stdout
    apply_ok(str(EXAMPLES), "--backend", local_backend)
    again = run_cli("plan", str(EXAMPLES), "--backend", local_backend, "--detailed-exitcode")
    assert again.code == 0, again.output
    assert "No changes." in again.stdout
    assert "0 to create, 0 to update, 0 to archive, 0 to delete" in again.stdout


def test_order_parents_children_currencies(tmp_path: Path, local_backend: str) -> None:
    write(tmp_path, "m/a.yaml", BASE)
    doc = plan_json(str(tmp_path / "m"), "--backend", local_backend)
    order = [(c["action"], c["kind"], c["key"]) for c in doc["changes"]]
    assert order == [
        ("update", "currency", "USD"),
        ("create", "currency", "EUR"),
        ("create", "creditReason", "goodwill"),
        ("create", "account", "acme"),
        ("create", "account", "acme-eu"),
    ] or order == [
        ("create", "currency", "EUR"),
        ("create", "creditReason", "goodwill"),
        ("create", "account", "acme"),
        ("create", "account", "acme-eu"),
    ]
    child = doc["changes"][-1]
    assert child["body"]["parentAccountId"] == {"$ref": {"kind": "account", "code": "acme"}}
    apply_ok(str(tmp_path / "m"), "--backend", local_backend)
    assert plan_json(str(tmp_path / "m"), "--backend", local_backend)["changes"] == []


def test_every_action_with_its_diff(tmp_path: Path, local_backend: str) -> None:
    write(tmp_path, "m/a.yaml", BASE)
    apply_ok(str(tmp_path / "m"), "--backend", local_backend)
    write(
        tmp_path,
        "m/a.yaml",
        BASE.replace("PO-1", "PO-2").replace(
            "{code: goodwill, name: Goodwill gesture}", "{code: goodwill, name: Goodwill, archived: true}"
        )
        + "  - {code: new-co, name: New Co, emailAddress: a@new.example}\n",
    )
    doc = plan_json(str(tmp_path / "m"), "--backend", local_backend)
    by_key = {c["key"]: c for c in doc["changes"]}
    assert by_key["new-co"]["action"] == "create"
    assert by_key["acme"]["action"] == "update"
    assert by_key["acme"]["diff"] == [{"path": "purchaseOrderNumber", "before": "PO-1", "after": "PO-2"}]
    assert any("purchaseOrderNumber" in w for w in by_key["acme"]["warnings"])
    assert by_key["goodwill"]["action"] == "archive"
    assert {"path": "archived", "before": False, "after": True} in by_key["goodwill"]["diff"]
    text = run_cli("plan", str(tmp_path / "m"), "--backend", local_backend).stdout
    assert '~ purchaseOrderNumber: "PO-1" -> "PO-2"' in text
    assert "+ create account new-co" in text
    apply_ok(str(tmp_path / "m"), "--backend", local_backend)

    # unarchive and delete
    write(
        tmp_path,
        "m/a.yaml",
        BASE.replace("{code: goodwill, name: Goodwill gesture}", "{code: goodwill, name: Goodwill, archived: false}")
        + "settings:\n  prune: {accounts: delete}\n",
    )
    doc = plan_json(str(tmp_path / "m"), "--backend", local_backend)
    actions = {(c["action"], c["key"]) for c in doc["changes"]}
    assert ("unarchive", "goodwill") in actions and ("delete", "new-co") in actions
    delete = next(c for c in doc["changes"] if c["action"] == "delete")
    assert any("usage data" in w for w in delete["warnings"])
    refused = run_cli("apply", str(tmp_path / "m"), "--backend", local_backend, "--auto-approve")
    assert refused.code == 1 and "--allow-delete" in refused.stderr
    assert ("delete", "new-co") in {
        (c["action"], c["key"]) for c in plan_json(str(tmp_path / "m"), "--backend", local_backend)["changes"]
    }
    apply_ok(str(tmp_path / "m"), "--backend", local_backend, "--allow-delete")
    assert plan_json(str(tmp_path / "m"), "--backend", local_backend)["changes"] == []


def test_absent_versus_null(tmp_path: Path, local_backend: str) -> None:
    write(tmp_path, "m/a.yaml", BASE)
    apply_ok(str(tmp_path / "m"), "--backend", local_backend)
    # absent: daysBeforeBillDue no longer written -> unmanaged, kept live
    write(tmp_path, "m/a.yaml", BASE.replace("    daysBeforeBillDue: 30\n", ""))
    assert plan_json(str(tmp_path / "m"), "--backend", local_backend)["changes"] == []
    # explicit null -> must be empty
    write(tmp_path, "m/a.yaml", BASE.replace("daysBeforeBillDue: 30", "daysBeforeBillDue: null"))
    [change] = plan_json(str(tmp_path / "m"), "--backend", local_backend)["changes"]
    assert change["diff"] == [{"path": "daysBeforeBillDue", "before": 30, "after": None}]
    assert "daysBeforeBillDue" not in change["body"] and change["body"]["purchaseOrderNumber"] == "PO-1"
    apply_ok(str(tmp_path / "m"), "--backend", local_backend)
    assert plan_json(str(tmp_path / "m"), "--backend", local_backend)["changes"] == []


def test_prune_archive_picklists(tmp_path: Path, local_backend: str) -> None:
    write(tmp_path, "m/a.yaml", BASE)
    apply_ok(str(tmp_path / "m"), "--backend", local_backend)
    write(
        tmp_path,
        "m/a.yaml",
        BASE.replace("creditReasons:\n  - {code: goodwill, name: Goodwill gesture}\n", "")
        + "settings:\n  prune: {creditReasons: archive}\n",
    )
    [change] = plan_json(str(tmp_path / "m"), "--backend", local_backend)["changes"]
    assert (change["action"], change["key"]) == ("archive", "goodwill")
    apply_ok(str(tmp_path / "m"), "--backend", local_backend)
    doc = plan_json(str(tmp_path / "m"), "--backend", local_backend)
    assert doc["changes"] == [] and {"kind": "creditReason", "key": "goodwill"} in doc["unmanaged"]


def test_safety_threshold_and_force(tmp_path: Path, local_backend: str) -> None:
    accounts = "".join(f"  - {{code: c{i}, name: C{i}, emailAddress: c{i}@x.example}}\n" for i in range(10))
    write(tmp_path, "m/a.yaml", "accounts:\n" + accounts)
    apply_ok(str(tmp_path / "m"), "--backend", local_backend)
    write(
        tmp_path,
        "m/a.yaml",
        "accounts:\n"
        + accounts.split("\n", 5)[-1]
        + "settings:\n  prune: {accounts: delete}\n  safety: {maxRemovePercent: 30}\n",
    )
    plan = run_cli("plan", str(tmp_path / "m"), "--backend", local_backend)
    assert plan.code == 1 and "maxRemovePercent" in plan.stderr and "--force" in plan.stderr
    refused = run_cli("apply", str(tmp_path / "m"), "--backend", local_backend, "--auto-approve", "--allow-delete")
    assert refused.code == 1 and "maxRemovePercent" in refused.stderr
    assert len(plan_json(str(tmp_path / "m"), "--backend", local_backend, "--force")["changes"]) == 5
    apply_ok(str(tmp_path / "m"), "--backend", local_backend, "--allow-delete", "--force")
    assert plan_json(str(tmp_path / "m"), "--backend", local_backend)["changes"] == []


def test_saved_plan_stale_refused_fresh_applied_exactly(tmp_path: Path, local_backend: str) -> None:
    write(tmp_path, "m/a.yaml", BASE)
    apply_ok(str(tmp_path / "m"), "--backend", local_backend)
    write(tmp_path, "m/a.yaml", BASE.replace("PO-1", "PO-2"))
    saved = tmp_path / "plan.json"
    assert run_cli("plan", str(tmp_path / "m"), "--backend", local_backend, "--out", str(saved)).code == 0
    # someone edits the account by hand in between
    write(tmp_path, "hand/a.yaml", BASE.replace("PO-1", "PO-HAND"))
    apply_ok(str(tmp_path / "hand"), "--backend", local_backend)
    before = _dump(local_backend)
    stale = run_cli("apply", "--plan", str(saved), "--backend", local_backend, "--auto-approve")
    assert stale.code == 1
    assert "changed since the plan was saved" in stale.stderr and "account acme" in stale.stderr
    assert _dump(local_backend) == before  # nothing changed
    # a fresh plan applies exactly
    assert run_cli("plan", str(tmp_path / "m"), "--backend", local_backend, "--out", str(saved)).code == 0
    apply_ok("--plan", str(saved), "--backend", local_backend)
    assert plan_json(str(tmp_path / "m"), "--backend", local_backend)["changes"] == []
    # and the same saved plan cannot be applied twice
    twice = run_cli("apply", "--plan", str(saved), "--backend", local_backend, "--auto-approve")
    assert twice.code == 1 and "nothing was changed" in twice.stderr


def test_failure_part_way_then_converging_rerun(tmp_path: Path, local_backend: str) -> None:
    write(tmp_path, "m/a.yaml", BASE + "  - {code: other, name: Other, emailAddress: o@x.example}\n")
    failed = run_cli(
        "apply",
        str(tmp_path / "m"),
        "--backend",
        local_backend,
        "--auto-approve",
        env={"RECONCILER_STORE_FAIL": "create:account:acme"},
    )
    assert failed.code == 1
    assert "failed: create account acme" in failed.stderr
    assert "skipped: create account acme-eu" in failed.stderr  # its parent failed
    assert "2 failed" not in failed.stderr and "1 failed" in failed.stderr
    doc = plan_json(str(tmp_path / "m"), "--backend", local_backend)
    assert sorted(c["key"] for c in doc["changes"]) == ["acme", "acme-eu"]  # EUR, goodwill, other applied
    apply_ok(str(tmp_path / "m"), "--backend", local_backend)
    assert plan_json(str(tmp_path / "m"), "--backend", local_backend)["changes"] == []


def test_failure_after_write_converges(tmp_path: Path, local_backend: str) -> None:
    write(tmp_path, "m/a.yaml", BASE)
    failed = run_cli(
        "apply",
        str(tmp_path / "m"),
        "--backend",
        local_backend,
        "--auto-approve",
        env={"RECONCILER_STORE_FAIL": "create:account:acme:after"},
    )
    assert failed.code == 1
    apply_ok(str(tmp_path / "m"), "--backend", local_backend)
    assert plan_json(str(tmp_path / "m"), "--backend", local_backend)["changes"] == []


PII = ("Acme Corp", "billing@acme.example", "eu@acme.example", "Leeds", "1 High Street")


@pytest.mark.parametrize("fmt", ["text", "json", "markdown"])
def test_no_personal_data_in_ci_output(tmp_path: Path, local_backend: str, fmt: str) -> None:
    text = BASE.replace(
        "    daysBeforeBillDue: 30\n",
        "    daysBeforeBillDue: 30\n    address: {addressLine1: 1 High Street, locality: Leeds}\n",
    )
    write(tmp_path, "m/a.yaml", text)
    created = run_cli("plan", str(tmp_path / "m"), "--backend", local_backend, "--format", fmt, env={"CI": "true"})
    apply_ok(str(tmp_path / "m"), "--backend", local_backend)
    write(tmp_path, "m/a.yaml", text.replace("Acme Corp", "Acme Corp Ltd").replace("Leeds", "York"))
    updated = run_cli("plan", str(tmp_path / "m"), "--backend", local_backend, "--format", fmt, env={"CI": "1"})
    drift = run_cli("drift", str(tmp_path / "m"), "--backend", local_backend, "--format", fmt, env={"CI": "1"})
    for result in (created, updated, drift):
        assert result.code in (0, 2), result.output
        for secret in PII:
            assert secret not in result.output
        assert "(redacted)" in result.stdout
    shown = run_cli(
        "plan", str(tmp_path / "m"), "--backend", local_backend, "--format", fmt, "--no-redact-pii", env={"CI": "1"}
    )
    assert "York" in shown.stdout


def test_markdown_escapes_user_text(tmp_path: Path, local_backend: str) -> None:
    write(
        tmp_path, "m/a.yaml", "accounts:\n  - {code: 'a|b<script>', name: 'x | <b>y</b>', emailAddress: a@x.example}\n"
    )
    out = run_cli("plan", str(tmp_path / "m"), "--backend", local_backend, "--format", "markdown", "--no-redact-pii")
    assert out.code == 0, out.output
    assert "<script>" not in out.stdout and "<b>" not in out.stdout
    row = next(line for line in out.stdout.splitlines() if "create" in line and line.startswith("|"))
    assert row.count("|") - row.count("\\|") == 6


def test_apply_without_terminal_needs_auto_approve(tmp_path: Path, local_backend: str) -> None:
    write(tmp_path, "m/a.yaml", BASE)
    result = run_cli("apply", str(tmp_path / "m"), "--backend", local_backend)
    assert result.code == 1 and "--auto-approve" in result.stderr
    assert plan_json(str(tmp_path / "m"), "--backend", local_backend)["summary"]["create"] >= 3


def test_json_output_is_one_document_and_nothing_else_on_stdout(tmp_path: Path, local_backend: str) -> None:
    write(tmp_path, "m/a.yaml", BASE + "organization:\n  timezone: Etc/GMT+5\n  daysBeforeBillDue: 30\n")
    result = run_cli("plan", str(tmp_path / "m"), "--backend", local_backend, "--format", "json")
    assert result.code == 0
    doc = json.loads(result.stdout)
    assert doc["formatVersion"] == 1 and doc["organization"] and doc["backend"] == local_backend
    assert set(doc["summary"]) == {"create", "update", "archive", "unarchive", "delete", "unchanged", "unmanaged"}
    assert "Etc/GMT" in result.stderr  # the warning goes to stderr ...
    assert any("Etc/GMT" in w for w in doc["warnings"])  # ... and into the document


def _dump(backend: str) -> list[tuple]:
    path = backend.split(":", 1)[1]
    with sqlite3.connect(path) as conn:
        tables = [r[0] for r in conn.execute("select name from sqlite_master where type='table'")]
        return [row for t in sorted(tables) for row in conn.execute(f"select * from {t} order by 1")]
