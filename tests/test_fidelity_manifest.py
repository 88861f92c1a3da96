"""Manifest rules that follow the official m3ter API document and seed pages (issue 12),
each checked through the CLI the way a billing engineer meets it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reconciler import kinds
from reconciler.backends.local import LocalBackend
from tests.conftest import EXAMPLES, CliResult, run_cli
from tests.conftest import write_manifest as write

ORG_KIND = kinds.get("organizationConfig")


def validate(*paths: Path | str) -> CliResult:
    return run_cli("validate", *(str(p) for p in paths))


def lines_at(result: CliResult, file: Path, line: int) -> list[str]:
    return [ln for ln in result.stderr.splitlines() if ln.startswith(f"{file}:{line}:")]


def assert_located_error(result: CliResult, file: Path, line: int, text: str) -> None:
    assert result.code == 1, result.output
    assert "Traceback" not in result.output
    found = lines_at(result, file, line)
    assert any("error:" in ln and text in ln for ln in found), f"{text!r} not at {file}:{line}:\n{result.stderr}"


@pytest.fixture(autouse=True)
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """``validate`` without --backend stays offline (conftest sets a default local org)."""
    monkeypatch.delenv("RECONCILER_BACKEND", raising=False)


# ------------------------------------------------------------------ 1: credit order in a hierarchy


def test_credit_order_refused_on_parent_and_child(tmp_path: Path) -> None:
    path = write(tmp_path, "accounts.yaml", """
        accounts:
          - code: group
            name: Group
            emailAddress: ap@group.example.com
            creditApplicationOrder: [PREPAYMENT, BALANCE]
          - code: group-uk
            name: Group UK
            emailAddress: uk@group.example.com
            parent: group
            creditApplicationOrder: [BALANCE]
          - code: alone
            name: Standalone
            emailAddress: a@alone.example.com
            creditApplicationOrder: [BALANCE]
          - code: live-child
            name: Child of an account managed elsewhere
            emailAddress: c@child.example.com
            parent: somewhere-live
            creditApplicationOrder: [PREPAYMENT]
          - code: empty-is-fine
            name: Explicitly empty
            emailAddress: e@child.example.com
            parent: group
            creditApplicationOrder: null
        """)
    result = validate(path)
    assert_located_error(result, path, 5, "(code 'group'): creditApplicationOrder: not available for an account "
                                          "in a parent/child hierarchy (it is the parent of 'empty-is-fine', "
                                          "'group-uk')")
    assert_located_error(result, path, 10, "(code 'group-uk'): creditApplicationOrder: not available")
    assert_located_error(result, path, 10, "it is a child of 'group'")
    assert_located_error(result, path, 19, "(code 'live-child'): creditApplicationOrder")
    assert not lines_at(result, path, 14), "a standalone account may set its credit order"
    assert sum("creditApplicationOrder: not available" in ln for ln in result.stderr.splitlines()) == 3


def test_example_organization_validates_and_applies_cleanly(local_backend: str) -> None:
    result = validate(EXAMPLES)
    assert result.code == 0, result.output
    assert "0 warnings" in result.stderr, result.stderr
    applied = run_cli("apply", str(EXAMPLES), "--backend", local_backend, "--auto-approve")
    assert applied.code == 0, applied.output
    again = run_cli("plan", str(EXAMPLES), "--backend", local_backend, "--detailed-exitcode")
    assert again.code == 0, again.output


# ------------------------------------------------------------------ 3: null on fields the PUT requires


@pytest.mark.parametrize(
    "field", ["currency", "timezone", "dayEpoch", "weekEpoch", "monthEpoch", "yearEpoch", "daysBeforeBillDue"]
)
def test_null_on_a_field_the_put_requires_is_a_located_error(tmp_path: Path, field: str) -> None:
    path = write(tmp_path, "org.yaml", f"""
        organization:
          billPrefix: INV-
          {field}: null
        """)
    result = validate(path)
    assert_located_error(result, path, 3, f"organization: {field}: cannot be null: m3ter requires it")


def test_absent_required_fields_are_unmanaged_and_other_nulls_fine(tmp_path: Path) -> None:
    path = write(tmp_path, "org.yaml", """
        organization:
          billPrefix: null
          scheduledBillInterval: 24
        """)
    assert validate(path).code == 0


# ------------------------------------------------------------------ 7: conversion without multiplier


def test_conversion_without_multiplier_validates(tmp_path: Path) -> None:
    path = write(tmp_path, "org.yaml", """
        organization:
          currencyConversions:
            - {from: EUR, to: USD}
            - {from: GBP, to: USD, multiplier: null}
            - {from: USD, to: GBP, multiplier: 0}
        """)
    result = validate(path)
    assert_located_error(result, path, 5, "currencyConversions[2].multiplier: must be greater than 0")
    assert len([ln for ln in result.stderr.splitlines() if "error:" in ln]) == 1, result.stderr


def test_export_round_trips_a_live_conversion_without_multiplier(tmp_path: Path) -> None:
    backend_spec = f"local:{tmp_path / 'org.sqlite'}"
    backend = LocalBackend(tmp_path / "org.sqlite")
    try:
        backend.create(kinds.get("currency"), {"code": "EUR", "name": "Euro"})
        live = backend.get_singleton(ORG_KIND)
        body = {k: v for k, v in live.items() if k not in kinds.READ_ONLY_FIELDS}
        body.update(
            currencyConversions=[{"from": "EUR", "to": "USD"}, {"from": "USD", "to": "EUR", "multiplier": 0.9}],
            daysBeforeBillDue=30,
            version=live["version"],
        )
        backend.put_singleton(ORG_KIND, body)
    finally:
        backend.close()
    out = tmp_path / "export"
    exported = run_cli("export", "--out", str(out), "--backend", backend_spec)
    assert exported.code == 0, exported.output
    text = (out / "organization.yaml").read_text(encoding="utf-8")
    assert "from: EUR" in text and "multiplier: 0.9" in text
    assert validate(out).code == 0
    plan = run_cli("plan", str(out), "--backend", backend_spec, "--detailed-exitcode")
    assert plan.code == 0, plan.output


def test_missing_multiplier_against_a_live_one_is_a_change(tmp_path: Path, local_backend: str) -> None:
    """A missing multiplier means "no multiplier" (as the API reads the body), not "keep
    the live one": the plan shows the multiplier going away."""
    first = write(tmp_path, "a/org.yaml", """
        currencies: [{code: EUR, name: Euro}]
        organization:
          daysBeforeBillDue: 30
          currencyConversions: [{from: EUR, to: USD, multiplier: 1.08}]
        """)
    assert run_cli("apply", str(first), "--backend", local_backend, "--auto-approve").code == 0
    second = write(tmp_path, "b/org.yaml", """
        currencies: [{code: EUR, name: Euro}]
        organization:
          daysBeforeBillDue: 30
          currencyConversions: [{from: EUR, to: USD}]
        """)
    result = run_cli("plan", str(second), "--backend", local_backend, "--format", "json")
    assert result.code == 0, result.output
    [change] = json.loads(result.stdout)["changes"]
    assert change["body"]["currencyConversions"] == [{"from": "EUR", "to": "USD"}]
    # the diff names the conversion and the field that goes away (issue 14 item 4)
    assert [(d["path"], d["before"], d["after"]) for d in change["diff"]] == [
        ("currencyConversions[EUR→USD].multiplier", 1.08, None)
    ]


# ------------------------------------------------------------------ 9: conversion direction in the warning


def test_missing_conversion_warning_names_the_direction(tmp_path: Path) -> None:
    path = write(tmp_path, "all.yaml", """
        organization:
          currency: USD
          currencyConversions:
            - {from: EUR, to: USD, multiplier: 1.08}
            - {from: USD, to: JPY, multiplier: 150}
        accounts:
          - {code: eu, name: EU, emailAddress: eu@example.com, currency: EUR}
          - {code: jp, name: JP, emailAddress: jp@example.com, currency: JPY}
          - {code: us, name: US, emailAddress: us@example.com, currency: USD}
        """)
    result = validate(path)
    assert result.code == 0, result.output
    [warning] = [ln for ln in lines_at(result, path, 7) if 'conversion' in ln]
    assert "warning:" in warning
    assert "no conversion from USD (the organization currency) to EUR" in warning
    assert "the rate from EUR to USD converts the other way" in warning
    assert "{from: USD, to: EUR, multiplier: ...}" in warning
    assert not [ln for ln in result.stderr.splitlines() if "code 'jp'" in ln or "code 'us'" in ln]
