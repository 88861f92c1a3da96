"""Plan templates, plans, plan groups (with their links) and account plans through the CLI:
create, update, re-pointing with the old target removed in the same apply, prune, refusals,
export round trips, against the local backend and over the emulator on 127.0.0.1."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reconciler.emulator import EmulatorConfig
from reconciler.emulator.testing import running_emulator
from tests.conftest import CliResult, run_cli, write_manifest

BASE = """\
products:
  - {code: api, name: API}
  - {code: storage, name: Storage}
planTemplates:
  - code: api-monthly
    name: API monthly
    product: api
    currency: USD
    billFrequency: MONTHLY
    standingCharge: 10
  - {code: api-yearly, name: API yearly, product: api, currency: USD, billFrequency: ANNUALLY, standingCharge: 100}
  - {code: storage-monthly, name: Storage, product: storage, currency: USD, billFrequency: MONTHLY, standingCharge: 0}
plans:
  - {code: standard, name: Standard, planTemplate: api-monthly}
  - {code: enterprise, name: Enterprise, planTemplate: api-monthly, minimumSpend: 1000}
  - {code: archive, name: Archive, planTemplate: storage-monthly}
planGroups:
  - code: bundle
    name: Bundle
    currency: USD
    minimumSpend: 500
    plans: [enterprise, archive]
accounts:
  - code: acme
    name: Acme
    emailAddress: billing@acme.example
    accountPlans:
      - {plan: standard, startDate: "2024-01-01T00:00:00Z", endDate: "2025-01-01T00:00:00Z"}
      - {plan: enterprise, startDate: "2025-01-01T00:00:00Z"}
  - {code: globex, name: Globex, emailAddress: billing@globex.example}
accountPlans:
  - {code: globex-bundle, account: globex, planGroup: bundle, startDate: "2024-06-01T00:00:00Z"}
"""

GLOBEX_LINE = '  - {code: globex-bundle, account: globex, planGroup: bundle, startDate: "2024-06-01T00:00:00Z"}\n'

PRUNE = """\
settings:
  prune: {planTemplates: delete, plans: delete, planGroups: delete, planGroupLinks: delete, accountPlans: delete}
  safety: {maxRemovePercent: 100}
"""


def plan(path: Path, backend: str, *extra: str) -> CliResult:
    return run_cli("plan", str(path), "--backend", backend, *extra)


def apply(path: Path, backend: str, *extra: str) -> CliResult:
    return run_cli("apply", str(path), "--backend", backend, "--auto-approve", *extra)


def plan_json(path: Path, backend: str) -> dict:
    result = run_cli("plan", str(path), "--backend", backend, "--format", "json")
    assert result.code == 0, result.output
    return json.loads(result.stdout)


def changes(path: Path, backend: str) -> list[tuple[str, str, str]]:
    return [(c["action"], c["kind"], c["key"]) for c in plan_json(path, backend)["changes"]]


def assert_no_changes(path: Path, backend: str) -> None:
    result = plan(path, backend, "--detailed-exitcode")
    assert result.code == 0, result.output


def test_catalog_create_update_repoint_and_prune(tmp_path: Path, local_backend: str) -> None:
    path = write_manifest(tmp_path / "m", "catalog.yaml", BASE)
    applied = apply(path, local_backend)
    assert applied.code == 0, applied.output
    assert_no_changes(path, local_backend)

    # update a field of a plan and of a nested account plan
    updated = BASE.replace("minimumSpend: 1000", "minimumSpend: 1200").replace(
        '{plan: enterprise, startDate: "2025-01-01T00:00:00Z"}',
        '{plan: enterprise, startDate: "2025-01-01T00:00:00Z", childBillingMode: PARENT_SUMMARY}')
    path = write_manifest(tmp_path / "m", "catalog.yaml", updated)
    assert changes(path, local_backend) == [
        ("update", "plan", "enterprise"),
        ("update", "accountPlan", "account=acme, plan=enterprise, startDate=2025-01-01T00:00:00Z"),
    ]
    assert apply(path, local_backend).code == 0
    assert_no_changes(path, local_backend)

    # re-point standard to the yearly template and remove api-monthly in the same apply: the
    # enterprise plan moves too, and the template goes only after both let go
    repointed = updated.replace("planTemplate: api-monthly", "planTemplate: api-yearly").replace(
        """  - code: api-monthly
    name: API monthly
    product: api
    currency: USD
    billFrequency: MONTHLY
    standingCharge: 10
""", "") + PRUNE
    path = write_manifest(tmp_path / "m", "catalog.yaml", repointed)
    doc = plan_json(path, local_backend)
    index = {(c["action"], c["kind"], c["key"]): i for i, c in enumerate(doc["changes"])}
    delete = doc["changes"][index[("delete", "planTemplate", "api-monthly")]]
    assert set(delete["dependsOn"]) >= {index[("update", "plan", "standard")], index[("update", "plan", "enterprise")]}
    result = apply(path, local_backend)
    assert result.code == 0, result.output
    assert_no_changes(path, local_backend)

    # prune: drop a plan from the group, the group's account plan and the archive plan
    pruned = repointed.replace("plans: [enterprise, archive]", "plans: [enterprise]").replace(
        GLOBEX_LINE, "")
    pruned = pruned.replace("  - {code: archive, name: Archive, planTemplate: storage-monthly}\n", "")
    path = write_manifest(tmp_path / "m", "catalog.yaml", pruned)
    got = changes(path, local_backend)
    assert set(got) == {
        ("delete", "planGroupLink", "planGroup=bundle, plan=archive"),
        ("delete", "accountPlan", "globex-bundle"),
        ("delete", "plan", "archive"),
    }
    link = ("delete", "planGroupLink", "planGroup=bundle, plan=archive")
    assert got.index(link) < got.index(("delete", "plan", "archive"))
    refused = apply(path, local_backend)
    assert refused.code != 0 and "--allow-delete" in refused.output
    done = apply(path, local_backend, "--allow-delete")
    assert done.code == 0, done.output
    assert_no_changes(path, local_backend)


def test_plan_shows_warnings_for_deleting_account_plans_and_plans(tmp_path: Path, local_backend: str) -> None:
    path = write_manifest(tmp_path / "m", "catalog.yaml", BASE)
    assert apply(path, local_backend).code == 0
    less = BASE.replace(GLOBEX_LINE, "")
    path = write_manifest(tmp_path / "m", "catalog.yaml", less + PRUNE)
    shown = plan(path, local_backend)
    assert shown.code == 0, shown.output
    assert "bills that are not yet locked" in shown.output
    assert "set endDate instead" in shown.output
    refused = apply(path, local_backend)
    assert refused.code != 0 and "--allow-delete" in refused.output


def test_export_round_trip_nests_account_plans_and_group_plans(tmp_path: Path, local_backend: str) -> None:
    path = write_manifest(tmp_path / "m", "catalog.yaml", BASE)
    assert apply(path, local_backend).code == 0
    out = tmp_path / "export"
    exported = run_cli("export", "--out", str(out), "--backend", local_backend)
    assert exported.code == 0, exported.output
    text = "\n".join(p.read_text(encoding="utf-8") for p in sorted(out.rglob("*.yaml")))
    assert "accountPlans:" in text and "planGroupLinks:" not in text and "  plans:\n  - archive\n  - enterprise" in text
    assert "planTemplate: api-monthly" in text and "product: api" in text
    assert_no_changes(out, local_backend)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (BASE.replace("planTemplate: api-monthly, minimumSpend", "planTemplate: nope, minimumSpend"),
         "catalog.yaml:15:42: error: plans[1] (code 'enterprise'): planTemplate: planTemplate 'nope' does not exist"),
        (BASE.replace("standingCharge: 100}", "standingCharge: 100}\n  - {code: eur, name: EUR, product: api, "
                      "currency: EUR, billFrequency: MONTHLY, standingCharge: 1}"), "EUR"),
        (BASE.replace('endDate: "2025-01-01T00:00:00Z"', 'endDate: "2025-03-01T00:00:00Z"'),
         "would be on two plans for product 'api' at once"),
        (BASE.replace('startDate: "2025-01-01T00:00:00Z"', 'startDate: "2025-01-01"'), "2024-01-01T00:00:00Z"),
        (BASE.replace("{plan: enterprise, startDate", "{plan: enterprise, planGroup: bundle, startDate"),
         "exactly one of plan or planGroup"),
        (BASE.replace("{plan: standard, startDate", "{plan: standard, account: acme, startDate"),
         "account: leave it out"),
        (BASE.replace("    plans: [enterprise, archive]", "    plans: enterprise"), "must be a list"),
        (BASE.replace("billFrequency: MONTHLY\n", "billFrequency: SOMETIMES\n"),
         "catalog.yaml:9:20: error: planTemplates[0]"),
        (BASE.replace("standingCharge: 10\n", "standingCharge: ten\n"),
         "catalog.yaml:10:21: error: planTemplates[0] (code 'api-monthly'): standingCharge"),
        (BASE.replace("minimumSpend: 500", "minimumSpend: 500\n    colour: red"), "colour"),
        (BASE.replace('endDate: "2025-01-01T00:00:00Z"', 'endDate: "2023-01-01T00:00:00Z"'),
         "must be after startDate"),
    ],
    ids=["unknown-template", "missing-currency", "overlap", "date-form", "plan-and-group", "nested-names-host",
         "nested-not-list", "enum", "type", "unknown-field", "end-before-start"],
)
def test_bad_catalogs_are_located_errors(tmp_path: Path, local_backend: str, text: str, expected: str) -> None:
    path = write_manifest(tmp_path / "m", "catalog.yaml", text)
    result = plan(path, local_backend)
    assert result.code != 0, result.output
    assert "Traceback" not in result.output
    assert expected in result.stderr, result.stderr
    assert "catalog.yaml:" in result.stderr


def test_overlap_allowed_when_the_organization_allows_it(tmp_path: Path, local_backend: str) -> None:
    text = BASE.replace('endDate: "2025-01-01T00:00:00Z"', 'endDate: "2025-03-01T00:00:00Z"')
    path = write_manifest(tmp_path / "m", "catalog.yaml", text + "organization:\n  allowOverlappingPlans: true\n")
    result = run_cli("validate", str(path))
    assert "two plans for product" not in result.output


def test_deleting_a_template_kept_plans_use_is_refused(tmp_path: Path, local_backend: str) -> None:
    path = write_manifest(tmp_path / "m", "catalog.yaml", BASE)
    assert apply(path, local_backend).code == 0
    without = BASE.replace("""  - code: api-monthly
    name: API monthly
    product: api
    currency: USD
    billFrequency: MONTHLY
    standingCharge: 10
""", "")
    path = write_manifest(tmp_path / "m", "catalog.yaml", without + PRUNE)
    result = plan(path, local_backend)
    assert result.code != 0
    assert "api-monthly" in result.stderr and "Traceback" not in result.output


def test_catalog_over_the_emulator(tmp_path: Path) -> None:
    with running_emulator(EmulatorConfig(rate_limit=None)) as emu:
        backend = f"m3ter:{emu.base_url}"

        def cli(*args: str) -> CliResult:
            return run_cli(*args, "--backend", backend, env=emu.env())

        path = write_manifest(tmp_path / "m", "catalog.yaml", BASE)
        applied = cli("apply", str(path), "--auto-approve")
        assert applied.code == 0, applied.output
        again = cli("plan", str(path), "--detailed-exitcode")
        assert again.code == 0, again.output
        repointed = BASE.replace("{code: standard, name: Standard, planTemplate: api-monthly}",
                                 "{code: standard, name: Standard, planTemplate: api-yearly}")
        path = write_manifest(tmp_path / "m", "catalog.yaml", repointed)
        assert cli("apply", str(path), "--auto-approve").code == 0
        assert cli("plan", str(path), "--detailed-exitcode").code == 0
        out = tmp_path / "export"
        exported = cli("export", "--out", str(out))
        assert exported.code == 0, exported.output
        assert cli("plan", str(out), "--detailed-exitcode").code == 0
        gone = repointed.replace(GLOBEX_LINE, "")
        path = write_manifest(tmp_path / "m", "catalog.yaml", gone + PRUNE)
        refused = cli("apply", str(path), "--auto-approve")
        assert refused.code != 0 and "--allow-delete" in refused.output
        done = cli("apply", str(path), "--auto-approve", "--allow-delete")
        assert done.code == 0, done.output
        assert cli("plan", str(path), "--detailed-exitcode").code == 0
