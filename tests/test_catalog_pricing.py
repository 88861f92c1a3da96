"""Pricings through the CLI: nested under plans and plan templates, keyed by what they price,
where and from when; band diffs named by lowerLimit; re-pointing; prune with --allow-delete;
refusals; export round trip; over the emulator on 127.0.0.1 too."""

from __future__ import annotations

import json
from pathlib import Path

from reconciler.emulator import EmulatorConfig
from reconciler.emulator.testing import running_emulator
from tests.conftest import CliResult, run_cli, write_manifest

CATALOG = """\
products:
  - {code: api, name: API}
meters:
  - code: api-meter
    name: API meter
    product: api
    dataFields:
      - {category: MEASURE, code: calls, name: Calls, unit: calls}
      - {category: MEASURE, code: bytes, name: Bytes, unit: bytes}
    derivedFields: []
aggregations:
  - {code: api_calls, name: API calls, meter: api-meter, targetField: calls, aggregation: SUM,
     rounding: NONE, quantityPerUnit: 1, unit: calls}
  - {code: api_bytes, name: API bytes, meter: api-meter, targetField: bytes, aggregation: SUM,
     rounding: NONE, quantityPerUnit: 1, unit: bytes}
planTemplates:
  - code: api-monthly
    name: API monthly
    product: api
    currency: USD
    billFrequency: MONTHLY
    standingCharge: 0
    pricings:
      - aggregation: api_bytes
        startDate: "2024-01-01T00:00:00Z"
        pricingBands: [{lowerLimit: 0, fixedPrice: 0, unitPrice: 0.0001}]
plans:
  - code: pro
    name: Pro
    planTemplate: api-monthly
    pricings:
      - aggregation: api_calls
        startDate: "2024-01-01T00:00:00Z"
        cumulative: true
        pricingBands:
          - {lowerLimit: 0, fixedPrice: 0, unitPrice: 0.01}
          - {lowerLimit: 1000, fixedPrice: 0, unitPrice: 0.005}
  - {code: basic, name: Basic, planTemplate: api-monthly}
"""
KEY = "plan=pro, aggregation=api_calls, startDate=2024-01-01T00:00:00Z"


def _plan_json(path: Path, backend: str) -> dict:
    result = run_cli("plan", str(path), "--backend", backend, "--format", "json")
    assert result.code in (0, 2), result.output
    return json.loads(result.stdout)


def _apply(path: Path, backend: str, *extra: str) -> CliResult:
    return run_cli("apply", str(path), "--backend", backend, "--auto-approve", *extra)


def _converged(path: Path, backend: str) -> None:
    result = run_cli("plan", str(path), "--backend", backend, "--detailed-exitcode")
    assert result.code == 0, result.output


def test_nested_pricings_are_created_after_what_they_name_and_converge(tmp_path: Path, local_backend: str) -> None:
    path = write_manifest(tmp_path, "m/catalog.yaml", CATALOG)
    doc = _plan_json(path, local_backend)
    keys = [(c["kind"], c["key"]) for c in doc["changes"]]
    assert ("pricing", KEY) in keys
    assert ("pricing", "planTemplate=api-monthly, aggregation=api_bytes, startDate=2024-01-01T00:00:00Z") in keys
    at = {k: i for i, k in enumerate(keys)}
    pricing = doc["changes"][at[("pricing", KEY)]]
    # a pricing waits for its plan and its aggregation (dependsOn, complete)
    assert at[("plan", "pro")] in pricing["dependsOn"] and at[("aggregation", "api_calls")] in pricing["dependsOn"]
    assert pricing["body"]["planId"] == {"$ref": {"kind": "plan", "code": "pro"}}
    assert _apply(path, local_backend).code == 0
    _converged(path, local_backend)


def test_a_band_change_is_named_by_its_lower_limit_and_warns(tmp_path: Path, local_backend: str) -> None:
    path = write_manifest(tmp_path, "m/catalog.yaml", CATALOG)
    assert _apply(path, local_backend).code == 0
    path.write_text(CATALOG.replace("unitPrice: 0.005", "unitPrice: 0.004"), encoding="utf-8")
    doc = _plan_json(path, local_backend)
    (change,) = doc["changes"]
    assert (change["action"], change["kind"], change["key"]) == ("update", "pricing", KEY)
    assert [d["path"] for d in change["diff"]] == ["pricingBands[1000].unitPrice"]
    assert any("not yet locked" in w for w in change["warnings"])
    assert _apply(path, local_backend).code == 0
    _converged(path, local_backend)


def test_a_new_start_date_is_another_pricing_and_the_old_one_needs_allow_delete(
    tmp_path: Path, local_backend: str
) -> None:
    path = write_manifest(tmp_path, "m/catalog.yaml", CATALOG)
    assert _apply(path, local_backend).code == 0
    moved = CATALOG.replace('aggregation: api_calls\n        startDate: "2024-01-01T00:00:00Z"',
                            'aggregation: api_calls\n        startDate: "2025-01-01T00:00:00Z"')
    path.write_text(moved + "settings:\n  prune: {pricings: delete}\n  safety: {maxRemovePercent: 100}\n",
                    encoding="utf-8")
    doc = _plan_json(path, local_backend)
    actions = {(c["action"], c["key"]) for c in doc["changes"]}
    assert ("delete", KEY) in actions and ("create", KEY.replace("2024", "2025")) in actions
    refused = _apply(path, local_backend)
    assert refused.code == 1 and "--allow-delete" in refused.stderr
    assert _apply(path, local_backend, "--allow-delete").code == 0
    _converged(path, local_backend)


def test_a_pricing_written_at_top_level_is_the_same_pricing_as_nested(tmp_path: Path, local_backend: str) -> None:
    path = write_manifest(tmp_path, "m/catalog.yaml", CATALOG)
    assert _apply(path, local_backend).code == 0
    # the same pricing written at top level with its plan spelled out: no change
    top = CATALOG.replace("""  - code: pro
    name: Pro
    planTemplate: api-monthly
    pricings:
      - aggregation: api_calls""", """  - code: pro
    name: Pro
    planTemplate: api-monthly
pricings:
  - plan: pro
    aggregation: api_calls""").replace("""        startDate: "2024-01-01T00:00:00Z"
        cumulative: true
        pricingBands:
          - {lowerLimit: 0, fixedPrice: 0, unitPrice: 0.01}
          - {lowerLimit: 1000, fixedPrice: 0, unitPrice: 0.005}
""", """    startDate: "2024-01-01T00:00:00Z"
    cumulative: true
    pricingBands:
      - {lowerLimit: 0, fixedPrice: 0, unitPrice: 0.01}
      - {lowerLimit: 1000, fixedPrice: 0, unitPrice: 0.005}
""").replace("  - {code: basic, name: Basic, planTemplate: api-monthly}\n", "")
    path.write_text(top + "  - {code: basic, name: Basic, planTemplate: api-monthly}\n" if "plans:" in top.split(
        "pricings:\n  - plan")[1] else top.replace("pricings:\n  - plan", "  - {code: basic, name: Basic, "
                                                  "planTemplate: api-monthly}\npricings:\n  - plan"),
                    encoding="utf-8")
    _converged(path, local_backend)  # nested or top level: the same pricing


def test_refusals_are_located(tmp_path: Path) -> None:
    bad = CATALOG.replace("aggregation: api_calls\n", "aggregation: api_calls\n        plan: basic\n", 1)
    path = write_manifest(tmp_path, "m/catalog.yaml", bad)
    result = run_cli("validate", str(path))
    assert result.code == 1
    assert "leave it out" in result.stderr and "catalog.yaml:" in result.stderr
    both = CATALOG.replace("aggregation: api_bytes\n", "aggregation: api_bytes\n        compoundAggregation: x\n")
    path.write_text(both, encoding="utf-8")
    result = run_cli("validate", str(path))
    assert result.code == 1 and "exactly one of aggregation or compoundAggregation" in result.stderr
    dates = CATALOG.replace('startDate: "2024-01-01T00:00:00Z"\n        cumulative', 'startDate: "2024-01-01"\n'
                            '        cumulative')
    path.write_text(dates, encoding="utf-8")
    result = run_cli("validate", str(path))
    assert result.code == 1 and "startDate" in result.stderr and "2024-01-01T00:00:00Z" in result.stderr
    overage = CATALOG.replace("        pricingBands: [{lowerLimit: 0, fixedPrice: 0, unitPrice: 0.0001}]",
                              "        pricingBands: [{lowerLimit: 0, fixedPrice: 0, unitPrice: 0.0001}]\n"
                              "        overagePricingBands: [{lowerLimit: 0, fixedPrice: 0, unitPrice: 0.1}]")
    path.write_text(overage, encoding="utf-8")
    result = run_cli("validate", str(path))
    assert result.code == 1 and "overagePricingBands: only for tiered pricing" in result.stderr
    dup = CATALOG.replace("lowerLimit: 1000", "lowerLimit: 0")
    path.write_text(dup, encoding="utf-8")
    result = run_cli("validate", str(path))
    assert result.code == 1 and "lowerLimit 0 is given twice" in result.stderr
    notlist = CATALOG.replace("  - {code: basic, name: Basic, planTemplate: api-monthly}",
                              "  - {code: basic, name: Basic, planTemplate: api-monthly, pricings: 3}")
    path.write_text(notlist, encoding="utf-8")
    result = run_cli("validate", str(path))
    assert result.code == 1 and "plans[1].pricings: must be a list" in result.stderr
    assert "Traceback" not in result.stderr


def test_unknown_aggregation_is_an_error_against_the_organization(tmp_path: Path, local_backend: str) -> None:
    text = CATALOG.replace("aggregation: api_calls\n", "aggregation: nope\n")
    path = write_manifest(tmp_path, "m/catalog.yaml", text)
    result = run_cli("plan", str(path), "--backend", local_backend)
    assert result.code == 1 and "aggregation 'nope' does not exist" in result.stderr


def test_deleting_a_plan_its_pricings_still_name_is_refused_at_plan_time(tmp_path: Path, local_backend: str) -> None:
    path = write_manifest(tmp_path, "m/catalog.yaml", CATALOG)
    assert _apply(path, local_backend).code == 0
    # the plan goes, but the pricing is kept (pricings are not pruned): m3ter would refuse
    kept = CATALOG.replace("  - {code: basic, name: Basic, planTemplate: api-monthly}\n", "")
    path.write_text(kept + "settings:\n  prune: {plans: delete}\n  safety: {maxRemovePercent: 100}\n",
                    encoding="utf-8")
    assert _apply(path, local_backend, "--allow-delete").code == 0  # basic has no pricing: fine
    gone = kept.replace("""  - code: pro
    name: Pro
    planTemplate: api-monthly
    pricings:""", """  - code: pro2
    name: Pro
    planTemplate: api-monthly
    pricings:""")
    path.write_text(gone + "settings:\n  prune: {plans: delete}\n  safety: {maxRemovePercent: 100}\n",
                    encoding="utf-8")
    result = run_cli("plan", str(path), "--backend", local_backend)
    assert result.code == 1 and "cannot delete plan pro" in result.stderr.replace("'", "")


def test_export_writes_pricings_under_their_plans_and_round_trips(tmp_path: Path, local_backend: str) -> None:
    path = write_manifest(tmp_path, "m/catalog.yaml", CATALOG)
    assert _apply(path, local_backend).code == 0
    out = tmp_path / "export"
    result = run_cli("export", "--out", str(out), "--backend", local_backend)
    assert result.code == 0, result.output
    plans = (out / "plans.yaml").read_text()
    assert "pricings:" in plans and "planId" not in plans and "plan: pro" not in plans
    assert "lowerLimit: 1000" in plans
    assert not (out / "pricings.yaml").exists()
    _converged(out, local_backend)


def test_pricings_over_the_emulator(tmp_path: Path) -> None:
    path = write_manifest(tmp_path, "m/catalog.yaml", CATALOG)
    with running_emulator(EmulatorConfig(port=0, latency_ms=0, rate_limit=0)) as emu:
        env = emu.env()
        applied = run_cli("apply", str(path), "--backend", f"m3ter:{emu.base_url}", "--auto-approve", env=env)
        assert applied.code == 0, applied.output
        again = run_cli("plan", str(path), "--backend", f"m3ter:{emu.base_url}", "--detailed-exitcode", env=env)
        assert again.code == 0, again.output
