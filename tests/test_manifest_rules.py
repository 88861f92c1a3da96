"""Cross-object rules, references (offline and live) and the domain warnings from the seeds."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from reconciler.diagnostics import Diagnostic
from reconciler.manifest import load_manifests, reference_diagnostics
from reconciler.manifest.advice import looks_personal
from reconciler.manifest.types import LoadResult, Manifests


def load_text(tmp_path: Path, text: str) -> LoadResult:
    path = tmp_path / "m.yaml"
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return load_manifests([str(path)], environ={})


def manifests_of(result: LoadResult) -> Manifests:
    assert result.manifests is not None
    return result.manifests


def warnings(diagnostics: list[Diagnostic]) -> list[str]:
    return [d.message for d in diagnostics if not d.is_error]


def errors(diagnostics: list[Diagnostic]) -> list[str]:
    return [d.message for d in diagnostics if d.is_error]


REFS = """
organization:
  currency: USD
  currencyConversions:
    - {from: EUR, to: USD, multiplier: 1.1}
accounts:
  - {code: a, name: A, emailAddress: a@example.com, currency: EUR, parent: outside}
  - {code: b, name: B, emailAddress: b@example.com, currency: EUR, parent: outside}
  - {code: c, name: C, emailAddress: c@example.com, parent: a}
currencies:
  - {code: EUR, name: Euro}
"""


def test_references_offline_are_warnings_grouped(tmp_path: Path) -> None:
    result = load_text(tmp_path, REFS)
    assert result.ok, result.diagnostics
    found = reference_diagnostics(manifests_of(result), None)
    assert all(not d.is_error for d in found)
    messages = sorted(d.message for d in found)
    assert len(messages) == 2
    assert "organization: currency: currency 'USD' is not declared in these manifests" in messages[1]
    assert "m3ter creates USD in every new organization" in messages[1]
    assert "parent account 'outside'" in messages[0]
    assert "also referenced by 1 more object" in messages[0]
    usd = next(d for d in found if "'USD'" in d.message)
    assert usd.location is not None and (usd.location.line, usd.location.column) == (2, 3)


def test_references_live_are_errors_unless_present(tmp_path: Path) -> None:
    manifests = manifests_of(load_text(tmp_path, REFS))
    live = {"currency": {"USD"}, "account": set[str]()}
    found = reference_diagnostics(manifests, live)
    assert [d.severity for d in found] == ["error"]
    assert "parent account 'outside' does not exist" in found[0].message
    assert found[0].location is not None and found[0].location.line == 6
    assert reference_diagnostics(manifests, {"currency": {"USD"}, "account": {"outside"}}) == []


def test_conversion_references_are_checked(tmp_path: Path) -> None:
    manifests = manifests_of(load_text(tmp_path, """
        organization:
          currencyConversions:
            - {from: JPY, to: USD, multiplier: 0.0067}
        """))
    found = reference_diagnostics(manifests, {"currency": {"USD"}})
    assert len(found) == 1 and "currencyConversions[0].from: currency 'JPY'" in found[0].message
    assert found[0].location is not None and (found[0].location.line, found[0].location.column) == (3, 8)


def test_two_account_cycle_and_chain_without_cycle(tmp_path: Path) -> None:
    result = load_text(tmp_path, """
        accounts:
          - {code: x, name: X, emailAddress: x@example.com, parent: y}
          - {code: y, name: Y, emailAddress: y@example.com, parent: x}
          - {code: top, name: Top, emailAddress: t@example.com}
          - {code: mid, name: Mid, emailAddress: m@example.com, parent: top}
          - {code: leaf, name: Leaf, emailAddress: l@example.com, parent: mid}
        """)
    assert errors(result.diagnostics) == [
        "accounts[0] (code 'x'): parent: accounts form a cycle 'x' -> 'y' -> 'x'; "
        "an account cannot be its own ancestor"
    ]


def test_duplicate_and_self_conversions(tmp_path: Path) -> None:
    result = load_text(tmp_path, """
        organization:
          currencyConversions:
            - {from: EUR, to: USD, multiplier: 1.1}
            - {from: EUR, to: USD, multiplier: 1.2}
            - {from: USD, to: USD, multiplier: 1}
        """)
    assert any("already given at currencyConversions[0]" in m for m in errors(result.diagnostics))
    assert any("converts USD to itself" in m for m in warnings(result.diagnostics))


@pytest.mark.parametrize(
    ("period", "unit", "interval", "warned"),
    [
        (60, "MINUTES", 1, True),
        (23, "HOURS", 24, True),
        (24, "HOURS", 24, False),
        (1, "DAYS", 0.5, False),
        (2, "HOURS", 0, False),  # no scheduled updates: no conflict
    ],
)
def test_auto_approval_under_24_hours_with_scheduled_updates(
    tmp_path: Path, period: int, unit: str, interval: float, warned: bool
) -> None:
    result = load_text(tmp_path, f"""
        organization:
          scheduledBillInterval: {interval}
          autoApproveBillsGracePeriod: {period}
          autoApproveBillsGracePeriodUnit: {unit}
        """)
    assert result.ok
    found = [d for d in result.diagnostics if "autoApproveBillsGracePeriod" in d.message]
    assert bool(found) is warned
    if warned:
        assert found[0].location is not None and found[0].location.line == 3
        assert "24 hours or longer" in found[0].message


def test_etc_gmt_sign_explained(tmp_path: Path) -> None:
    result = load_text(tmp_path, "organization:\n  timezone: Etc/GMT+5\n")
    assert any("Etc/GMT+5 is UTC-05:00" in m and "regional name" in m for m in warnings(result.diagnostics))
    result = load_text(tmp_path, "organization:\n  timezone: Europe/Kyiv\n")
    assert any("tz database release 2021c" in m for m in warnings(result.diagnostics))


def test_account_currency_without_conversion_rate(tmp_path: Path) -> None:
    result = load_text(tmp_path, """
        organization:
          currency: USD
          currencyConversions:
            - {from: USD, to: EUR, multiplier: 0.9}
        accounts:
          - {code: a, name: A, emailAddress: a@example.com, currency: EUR}
          - {code: b, name: B, emailAddress: b@example.com, currency: GBP}
          - {code: c, name: C, emailAddress: c@example.com, currency: GBP}
          - {code: d, name: D, emailAddress: d@example.com, currency: USD}
        """)
    found = [d for d in result.diagnostics if "has no conversion from" in d.message]
    assert len(found) == 1
    assert "no conversion from USD (the organization currency) to GBP" in found[0].message
    assert "(and 1 more place)" in found[0].message
    assert found[0].location is not None and (found[0].location.line, found[0].location.column) == (7, 63)


def test_no_conversion_warning_when_rates_unknown(tmp_path: Path) -> None:
    result = load_text(tmp_path, """
        organization:
          currency: USD
        accounts:
          - {code: b, name: B, emailAddress: b@example.com, currency: GBP}
        """)
    assert warnings(result.diagnostics) == []


def test_personal_data_custom_fields(tmp_path: Path) -> None:
    result = load_text(tmp_path, """
        customFields:
          account:
            tier: gold
            contactPhone: ""
        accounts:
          - code: a
            name: A
            emailAddress: a@example.com
            customFields: {tier: gold, contactPhone: "+44 20 7946 0000", billing_contact_name: Jo}
        """)
    found = [d for d in result.diagnostics if "personal data" in d.message]
    assert len(found) == 3
    assert any(d.location is not None and d.location.line == 4 for d in found)
    assert any("customFields.billing_contact_name" in d.message for d in found)
    assert any("no organization-level default" in d.message for d in result.diagnostics)


@pytest.mark.parametrize(
    ("name", "personal"),
    [
        ("contactEmail", True), ("phoneNumber", True), ("dateOfBirth", True), ("ssn", True),
        ("TAX_ID", True), ("homeAddress", True), ("firstName", True), ("customer_name", True),
        ("tier", False), ("salesRegion", False), ("crmId", False), ("productName", False),
        ("seats", False), ("taxExempt", False), ("planName", False),
    ],
)
def test_looks_personal(name: str, personal: bool) -> None:
    assert looks_personal(name) is personal


def test_archived_currency_in_use(tmp_path: Path) -> None:
    result = load_text(tmp_path, """
        currencies:
          - {code: CAD, name: Canadian Dollar, archived: true}
        accounts:
          - {code: a, name: A, emailAddress: a@example.com, currency: CAD}
        """)
    assert any("archive" in m and "drop-downs" in m for m in warnings(result.diagnostics))


def test_contract_defaults_at_organization_level(tmp_path: Path) -> None:
    result = load_text(tmp_path, "customFields:\n  contract:\n    region: eu\n")
    assert any("contract custom fields only on individual contracts" in m for m in warnings(result.diagnostics))


def test_warnings_never_make_a_load_invalid(tmp_path: Path) -> None:
    result = load_text(tmp_path, "organization:\n  timezone: Etc/GMT-3\n")
    assert result.ok
    assert warnings(result.diagnostics)
