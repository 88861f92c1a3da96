"""Meters, aggregations and compound aggregations through the CLI: create, an update of a
nested meter field, re-pointing an aggregation, prune, refusals, export round trip, and one
run over the emulator on 127.0.0.1."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from reconciler.backends.local import LOCAL_ORG_ID
from reconciler.emulator import EmulatorConfig
from reconciler.emulator.testing import RunningEmulator, running_emulator
from reconciler.store import Store, StoreError
from tests.conftest import CliResult, run_cli, write_manifest

CATALOG = """
products:
  - {code: api, name: API}
meters:
  - code: api_requests
    name: API requests
    product: api
    dataFields:
      - {category: MEASURE, code: requests, name: Requests, unit: "{request}"}
      - {category: METADATA, code: user, name: User}
      - {category: WHERE, code: region, name: Region}
    derivedFields:
      - {category: MEASURE, code: kreq, name: Thousands, unit: "k{request}", calculation: "requests / 1000"}
  - code: events
    name: Events
    dataFields:
      - {category: MEASURE, code: events, name: Events, unit: "{event}"}
    derivedFields: []
aggregations:
  - {code: requests_sum, name: Requests, meter: api_requests, targetField: requests, aggregation: SUM,
     unit: requests, rounding: NONE, quantityPerUnit: 1, defaultValue: 0}
  - {code: users_unique, name: Users, meter: api_requests, targetField: user, aggregation: UNIQUE,
     unit: users, rounding: NONE, quantityPerUnit: 1}
  - code: requests_by_region
    name: Requests by region
    meter: api_requests
    targetField: kreq
    aggregation: COUNT
    unit: requests
    rounding: UP
    quantityPerUnit: 10
    segmentedFields: [region]
    segments: [{region: eu}, {region: us}]
compoundAggregations:
  - {code: cost, name: Cost, product: api, calculation: "2 * 3", unit: units, rounding: NONE,
     quantityPerUnit: 1, evaluateNullAggregations: false}
settings:
  prune: {aggregations: delete, meters: delete, compoundAggregations: delete}
"""
USERS_UNIQUE = """  - {code: users_unique, name: Users, meter: api_requests, targetField: user, aggregation: UNIQUE,
     unit: users, rounding: NONE, quantityPerUnit: 1}
"""
assert USERS_UNIQUE in CATALOG


def manifests(tmp_path: Path, text: str = CATALOG, name: str = "m") -> Path:
    directory = tmp_path / name
    write_manifest(directory, "catalog.yaml", text)
    return directory


def ok(result: CliResult) -> CliResult:
    assert result.code == 0, result.output
    return result


def applied(tmp_path: Path, backend: str, text: str = CATALOG) -> Path:
    directory = manifests(tmp_path, text)
    ok(run_cli("apply", str(directory), "--backend", backend, "--auto-approve"))
    return directory


def no_changes(directory: Path, backend: str) -> None:
    again = run_cli("plan", str(directory), "--backend", backend, "--detailed-exitcode")
    assert again.code == 0, again.output
    assert "0 to create, 0 to update, 0 to archive, 0 to delete" in again.stdout


def test_create_then_plan_is_empty(tmp_path: Path, local_backend: str) -> None:
    directory = manifests(tmp_path)
    first = run_cli("plan", str(directory), "--backend", local_backend, "--detailed-exitcode")
    assert first.code == 2, first.output
    # the planner orders each object after what it references
    order = [m.group(1) for m in re.finditer(r"^\+ create (\w+ \w+)", first.stdout, re.M)]
    assert order.index("product api") < order.index("meter api_requests") < order.index("aggregation requests_sum")
    assert order.index("product api") < order.index("compoundAggregation cost")
    ok(run_cli("apply", str(directory), "--backend", local_backend, "--auto-approve"))
    no_changes(directory, local_backend)


def test_update_of_a_data_field_names_the_item(tmp_path: Path, local_backend: str) -> None:
    directory = applied(tmp_path, local_backend)
    write_manifest(directory, "catalog.yaml", CATALOG.replace('unit: "{request}"', 'unit: "{call}"'))
    plan = run_cli("plan", str(directory), "--backend", local_backend, "--detailed-exitcode")
    assert plan.code == 2, plan.output
    assert "~ update meter api_requests" in plan.stdout
    assert 'dataFields[requests].unit: "{request}" -> "{call}"' in plan.stdout
    assert "1 to update" in plan.stdout
    ok(run_cli("apply", str(directory), "--backend", local_backend, "--auto-approve"))
    no_changes(directory, local_backend)


def test_repointing_an_aggregation_to_another_meter(tmp_path: Path, local_backend: str) -> None:
    directory = applied(tmp_path, local_backend)
    moved = CATALOG.replace("meter: api_requests, targetField: requests,", "meter: events, targetField: events,")
    write_manifest(directory, "catalog.yaml", moved)
    plan = ok(run_cli("plan", str(directory), "--backend", local_backend))
    assert '~ meter: "api_requests" -> "events"' in plan.stdout
    assert '~ targetField: "requests" -> "events"' in plan.stdout
    ok(run_cli("apply", str(directory), "--backend", local_backend, "--auto-approve"))
    no_changes(directory, local_backend)


def test_prune_deletes_an_aggregation_and_a_meter_after_it(tmp_path: Path, local_backend: str) -> None:
    directory = applied(tmp_path, local_backend)
    text = CATALOG.replace(
        """  - code: events
    name: Events
    dataFields:
      - {category: MEASURE, code: events, name: Events, unit: "{event}"}
    derivedFields: []
""", "").replace(USERS_UNIQUE, "")
    write_manifest(directory, "catalog.yaml", text)
    plan = ok(run_cli("plan", str(directory), "--backend", local_backend))
    assert "- delete aggregation users_unique" in plan.stdout
    assert "- delete meter events" in plan.stdout
    ok(run_cli("apply", str(directory), "--backend", local_backend, "--auto-approve"))
    no_changes(directory, local_backend)


def test_without_prune_settings_nothing_is_deleted(tmp_path: Path, local_backend: str) -> None:
    directory = applied(tmp_path, local_backend)
    write_manifest(directory, "catalog.yaml", "products:\n  - {code: api, name: API}\n")
    plan = ok(run_cli("plan", str(directory), "--backend", local_backend, "--detailed-exitcode"))
    assert "0 to delete" in plan.stdout
    assert "aggregation users_unique" in plan.stdout  # listed as unmanaged


def test_deleting_a_meter_its_kept_aggregations_use_is_refused(tmp_path: Path, local_backend: str) -> None:
    directory = applied(tmp_path, local_backend)
    write_manifest(directory, "catalog.yaml", CATALOG.replace("  - code: api_requests\n", "  - code: renamed\n"))
    plan = run_cli("plan", str(directory), "--backend", local_backend)
    assert plan.code == 1, plan.output
    assert "cannot delete meter api_requests" in plan.stderr
    assert "aggregation requests_sum" in plan.stderr
    assert "point the aggregation at another meter" in plan.stderr


def test_store_refuses_deleting_a_meter_that_aggregations_use(tmp_path: Path, local_backend: str) -> None:
    applied(tmp_path, local_backend)
    store = Store(Path(local_backend.removeprefix("local:")))
    try:
        org = LOCAL_ORG_ID
        meter = next(m for m in store.list_all(org, "meter") if m["code"] == "api_requests")
        with pytest.raises(StoreError) as refused:
            store.delete(org, "meter", meter["id"])
        assert "aggregation" in str(refused.value)
    finally:
        store.close()


def test_aggregation_naming_an_unknown_meter_is_a_located_error(tmp_path: Path, local_backend: str) -> None:
    text = CATALOG.replace("meter: api_requests, targetField: requests,", "meter: nosuch, targetField: requests,")
    directory = manifests(tmp_path, text)
    plan = run_cli("plan", str(directory), "--backend", local_backend)
    assert plan.code == 1, plan.output
    assert re.search(r"catalog\.yaml:\d+:\d+: error: aggregations\[0\] \(code 'requests_sum'\): meter: meter "
                     r"'nosuch' does not exist", plan.stderr), plan.stderr


def test_target_field_must_be_a_field_of_the_meter(tmp_path: Path) -> None:
    text = CATALOG.replace("targetField: user,", "targetField: nosuch,")
    result = run_cli("validate", str(manifests(tmp_path, text)))
    assert result.code == 1, result.output
    line = next(i for i, t in enumerate(text.lstrip("\n").splitlines(), 1) if "targetField: nosuch" in t)
    assert re.search(rf"catalog\.yaml:{line}:\d+: error: aggregations\[1\] \(code 'users_unique'\): targetField: "
                     r"meter 'api_requests' has no data or derived field 'nosuch'", result.stderr), result.stderr


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("targetField: user, aggregation: UNIQUE", "targetField: user, aggregation: SUM",
         "aggregation SUM cannot be applied to targetField 'user', a METADATA field"),
        ("targetField: requests, aggregation: SUM", "targetField: requests, aggregation: UNIQUE",
         "aggregation UNIQUE cannot be applied to targetField 'requests', a MEASURE field"),
        ("segmentedFields: [region]", "segmentedFields: [requests]",
         "segmentedFields[0]: 'requests' is a MEASURE field"),
        ("segmentedFields: [region]", "segmentedFields: [nosuch]",
         "segmentedFields[0]: meter 'api_requests' has no data or derived field 'nosuch'"),
        ("segments: [{region: eu}, {region: us}]", "segments: [{region: eu}, {country: us}]",
         "segments[1] names field 'country', which segmentedFields does not list"),
        ("aggregation: COUNT", "aggregation: CUSTOM_SQL", "aggregation CUSTOM_SQL needs customSql"),
        ("{category: METADATA, code: user,", "{category: METADATA, code: requests,",
         "dataFields[1].code: 'requests' is already the code of a field"),
    ],
)
def test_aggregation_and_meter_rules(tmp_path: Path, old: str, new: str, expected: str) -> None:
    assert old in CATALOG
    result = run_cli("validate", str(manifests(tmp_path, CATALOG.replace(old, new))))
    assert result.code == 1, result.output
    assert re.search(r"catalog\.yaml:\d+:\d+: error: .*" + re.escape(expected), result.stderr), result.stderr
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("quantityPerUnit: 10", "quantityPerUnit: ten", "quantityPerUnit: must be a number"),
        ("quantityPerUnit: 10", "quantityPerUnit: 0", "quantityPerUnit: must be greater than 0"),
        ("rounding: UP", "rounding: SIDEWAYS", "rounding: must be"),
        ("calculation: \"2 * 3\"", "calculation: \"\"", "calculation: must be at least 1 character"),
        ("{category: WHERE, code: region, name: Region}", "{category: WHERE, code: region, name: Region, colour: red}",
         "dataFields[2].colour: unknown field"),
        ("{category: WHERE,", "{category: PLACE,", "dataFields[2].category: must be"),
        ("    derivedFields: []\n", "", "derivedFields: "),
        ("aggregation: COUNT", "aggregation: [COUNT]", "aggregation: "),
        ("segments: [{region: eu}, {region: us}]", "segments: [{region: 1}]", "segments[0].region"),
    ],
)
def test_bad_input_is_located_never_a_traceback(tmp_path: Path, old: str, new: str, expected: str) -> None:
    assert old in CATALOG
    result = run_cli("validate", str(manifests(tmp_path, CATALOG.replace(old, new))))
    assert result.code == 1, result.output
    assert re.search(r"catalog\.yaml:\d+:\d+: error: .*" + re.escape(expected), result.stderr), result.stderr
    assert "Traceback" not in result.output


def test_numeric_field_without_unit_warns(tmp_path: Path) -> None:
    text = CATALOG.replace('{category: MEASURE, code: events, name: Events, unit: "{event}"}',
                           "{category: MEASURE, code: events, name: Events}")
    result = ok(run_cli("validate", str(manifests(tmp_path, text))))
    assert "warning: meters[1] (code 'events'): dataFields[0] (MEASURE): give a unit" in result.output


def test_segmenting_a_metadata_field_warns(tmp_path: Path) -> None:
    text = CATALOG.replace("segmentedFields: [region]", "segmentedFields: [user]").replace(
        "segments: [{region: eu}, {region: us}]", "segments: [{user: alice}]")
    result = ok(run_cli("validate", str(manifests(tmp_path, text))))
    assert re.search(r"catalog\.yaml:\d+:\d+: warning: .*segmentedFields\[0\]: 'user' is a METADATA field",
                     result.output), result.output


def test_export_round_trip(tmp_path: Path, local_backend: str) -> None:
    applied(tmp_path, local_backend)
    out = tmp_path / "export"
    ok(run_cli("export", "--out", str(out), "--backend", local_backend))
    text = "\n".join(p.read_text(encoding="utf-8") for p in sorted(out.rglob("*.yaml")))
    assert "meterId" not in text and "productId" not in text
    assert "meter: api_requests" in text
    no_changes(out, local_backend)


@pytest.fixture
def emu() -> Iterator[RunningEmulator]:
    with running_emulator(EmulatorConfig(rate_limit=None)) as running:
        yield running


def test_over_the_emulator(emu: RunningEmulator, tmp_path: Path) -> None:
    backend = f"m3ter:{emu.base_url}"

    def cli(*args: str) -> CliResult:
        return run_cli(*args, "--backend", backend, env=emu.env())

    directory = manifests(tmp_path)
    ok(cli("apply", str(directory), "--auto-approve"))
    again = cli("plan", str(directory), "--detailed-exitcode")
    assert again.code == 0, again.output
    write_manifest(directory, "catalog.yaml", CATALOG.replace('unit: "{request}"', 'unit: "{call}"')
                   .replace("meter: api_requests, targetField: requests,", "meter: events, targetField: events,")
                   .replace(USERS_UNIQUE, ""))
    plan = ok(cli("plan", str(directory)))
    assert 'dataFields[requests].unit: "{request}" -> "{call}"' in plan.stdout
    assert '~ meter: "api_requests" -> "events"' in plan.stdout
    assert "- delete aggregation users_unique" in plan.stdout
    ok(cli("apply", str(directory), "--auto-approve"))
    again = cli("plan", str(directory), "--detailed-exitcode")
    assert again.code == 0, again.output
    out = tmp_path / "export"
    ok(cli("export", "--out", str(out)))
    again = cli("plan", str(out), "--detailed-exitcode")
    assert again.code == 0, again.output
