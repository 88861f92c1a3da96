"""References inside a compound aggregation's ``calculation`` (``aggregation.<code>``, m3ter's
documented syntax): the generic ``Reference.extract`` extension, and through the CLI the
located diagnostics, creation order, refusals and the store's checks."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from reconciler import kinds
from reconciler.backends.local import LOCAL_ORG_ID
from reconciler.kinds import Kind, Reference, api_fields, api_values, referenced_codes, referenced_fields
from reconciler.kinds.compound_aggregation import aggregation_codes
from reconciler.kinds.fields import Strict
from reconciler.store import Store, StoreError
from tests.conftest import run_cli, write_manifest
from tests.test_catalog_usage import CATALOG, USERS_UNIQUE, manifests, no_changes, ok

# --------------------------------------------------------------------------- the extension


@pytest.mark.parametrize(
    ("calculation", "codes"),
    [
        ("aggregation.watch_seconds + aggregation.test_seconds / 60",
         ["watch_seconds", "test_seconds"]),
        ("(aggregation.a*2)+aggregation.$b-aggregation._c9", ["a", "$b", "_c9"]),
        ("aggregation.été + 1", ["été"]),
        ("myaggregation.x + a.aggregation.y + aggregation_z.w + aggregation. q", []),
        ("2 * 3", []),
        ("aggregation.9x", []),  # a code does not start with a digit
    ],
)
def test_aggregation_codes(calculation: str, codes: list[str]) -> None:
    assert list(aggregation_codes(calculation)) == codes


def test_aggregation_codes_of_a_non_string_is_nothing() -> None:
    assert list(aggregation_codes(None)) == [] and list(aggregation_codes(12)) == []


class _Model(Strict):
    formula: str | None = None


def _words(value: Any) -> list[str]:
    return re.findall(r"@(\w+)", value) if isinstance(value, str) else []


def test_extract_feeds_every_walker_with_paths() -> None:
    ref = Reference("formula", "thing", extract=_words)
    kind = Kind(name="widget", manifest_key="widgets", api_path="widgets", model=_Model, references=(ref,))
    fields = {"formula": "@a + @b * @a"}
    assert ref.plain_field is None and ref.api_field is None  # never read as one plain value
    assert list(referenced_codes(kind, fields)) == [(ref, "a"), (ref, "b")]  # once each, in order
    assert list(referenced_fields(kind, fields)) == [(ref, "a", ("formula",)), (ref, "b", ("formula",))]
    assert list(api_values(ref, fields)) == ["a", "b"]
    assert list(api_fields(ref, fields)) == [("a", ("formula",)), ("b", ("formula",))]
    assert list(api_values(ref, {"formula": "1 + 2"})) == [] and list(api_values(ref, {})) == []


def test_extract_inside_lists() -> None:
    ref = Reference("rules[].when", "thing", extract=_words)
    body = {"rules": [{"when": "@x"}, {"when": "@y and @x"}, {"other": 1}]}
    assert list(api_fields(ref, body)) == [("x", ("rules", 0, "when")), ("y", ("rules", 1, "when")),
                                           ("x", ("rules", 1, "when"))]


def test_extract_is_by_code_and_spelled_alike() -> None:
    with pytest.raises(ValueError, match="by code"):
        Reference("formula", "thing", by_id=True, extract=_words)
    with pytest.raises(ValueError, match="by code"):
        Reference("formula", "thing", api_path="formulaText", extract=_words)


def test_the_registry_declares_the_calculation_reference() -> None:
    refs = [r for r in kinds.get("compoundAggregation").references if r.path == "calculation"]
    assert len(refs) == 1 and refs[0].target == "aggregation" and refs[0].extract is aggregation_codes
    assert "delete" in refs[0].blocks


# --------------------------------------------------------------------------- through the CLI

NAMING = CATALOG.replace('calculation: "2 * 3"', 'calculation: "aggregation.requests_sum + aggregation.users_unique"')
assert NAMING != CATALOG


def _calculation_position(text: str) -> tuple[int, int]:
    for number, line in enumerate(text.lstrip("\n").splitlines(), 1):
        if "calculation: \"aggregation." in line:
            return number, line.index("calculation") + 1
    raise AssertionError("no calculation")


def test_offline_an_unknown_aggregation_is_a_located_warning(tmp_path: Path) -> None:
    text = NAMING.replace("aggregation.users_unique", "aggregation.nosuch")
    result = run_cli("validate", str(manifests(tmp_path, text)))
    assert result.code == 0, result.output
    line, _ = _calculation_position(text)
    assert re.search(
        rf"catalog\.yaml:{line}:\d+: warning: compoundAggregations\[0\] \(code 'cost'\): calculation: aggregation "
        r"'nosuch' is not declared in these manifests; it must already exist", result.stderr), result.stderr
    assert "requests_sum" not in result.stderr  # declared: no diagnostic


def test_offline_declared_aggregations_need_nothing_live(tmp_path: Path) -> None:
    result = ok(run_cli("validate", str(manifests(tmp_path, NAMING))))
    assert "calculation" not in result.stderr


def test_against_a_backend_an_unknown_aggregation_is_a_located_error(tmp_path: Path, local_backend: str) -> None:
    text = NAMING.replace("aggregation.users_unique", "aggregation.nosuch")
    plan = run_cli("plan", str(manifests(tmp_path, text)), "--backend", local_backend)
    assert plan.code == 1, plan.output
    assert re.search(r"catalog\.yaml:\d+:\d+: error: compoundAggregations\[0\] \(code 'cost'\): calculation: "
                     r"aggregation 'nosuch' does not exist", plan.stderr), plan.stderr


def test_an_aggregation_only_live_satisfies_the_calculation(tmp_path: Path, local_backend: str) -> None:
    ok(run_cli("apply", str(manifests(tmp_path, NAMING)), "--backend", local_backend, "--auto-approve"))
    # another set of manifests names users_unique but does not declare it: live is enough
    other = NAMING.replace(USERS_UNIQUE, "").replace("settings:\n  prune: {aggregations: delete, meters: delete, "
                                                     "compoundAggregations: delete}\n", "")
    result = run_cli("plan", str(manifests(tmp_path, other, name="other")), "--backend", local_backend)
    assert result.code == 0, result.output
    assert "users_unique" not in result.stderr


def test_compound_aggregation_is_created_after_the_aggregations_it_names(tmp_path: Path, local_backend: str) -> None:
    directory = manifests(tmp_path, NAMING)
    first = run_cli("plan", str(directory), "--backend", local_backend, "--format", "json")
    assert first.code == 0, first.output
    changes = json.loads(first.stdout)["changes"]
    at = {(c["kind"], c["key"]): i for i, c in enumerate(changes)}
    cost = changes[at[("compoundAggregation", "cost")]]
    assert at[("aggregation", "requests_sum")] < at[("compoundAggregation", "cost")]
    assert at[("aggregation", "users_unique")] < at[("compoundAggregation", "cost")]
    assert {at[("aggregation", "requests_sum")], at[("aggregation", "users_unique")]} <= set(cost["dependsOn"])
    ok(run_cli("apply", str(directory), "--backend", local_backend, "--auto-approve", "--parallelism", "8"))
    no_changes(directory, local_backend)


def test_deleting_an_aggregation_a_kept_calculation_names_is_refused(tmp_path: Path, local_backend: str) -> None:
    directory = manifests(tmp_path, NAMING)
    ok(run_cli("apply", str(directory), "--backend", local_backend, "--auto-approve"))
    write_manifest(directory, "catalog.yaml", NAMING.replace(USERS_UNIQUE, ""))
    plan = run_cli("plan", str(directory), "--backend", local_backend)
    assert plan.code == 1, plan.output
    assert "cannot delete aggregation users_unique" in plan.stderr
    assert "calculation" in plan.stderr


def test_letting_go_in_the_calculation_then_deleting(tmp_path: Path, local_backend: str) -> None:
    directory = manifests(tmp_path, NAMING)
    ok(run_cli("apply", str(directory), "--backend", local_backend, "--auto-approve"))
    text = NAMING.replace(USERS_UNIQUE, "").replace(" + aggregation.users_unique", "")
    write_manifest(directory, "catalog.yaml", text)
    plan = ok(run_cli("plan", str(directory), "--backend", local_backend))
    order = [m.group(1) for m in re.finditer(r"^[~+-] \w+ (\w+ \w+)", plan.stdout, re.M)]
    assert order.index("compoundAggregation cost") < order.index("aggregation users_unique"), plan.stdout
    ok(run_cli("apply", str(directory), "--backend", local_backend, "--auto-approve", "--parallelism", "8"))
    no_changes(directory, local_backend)


def test_removing_both_deletes_the_compound_aggregation_first(tmp_path: Path, local_backend: str) -> None:
    directory = manifests(tmp_path, NAMING)
    ok(run_cli("apply", str(directory), "--backend", local_backend, "--auto-approve"))
    text = re.sub(r"compoundAggregations:\n  - \{code: cost.*?\n.*?\n", "", NAMING.replace(USERS_UNIQUE, ""))
    assert "code: cost" not in text
    write_manifest(directory, "catalog.yaml", text)
    plan = ok(run_cli("plan", str(directory), "--backend", local_backend))
    order = [m.group(1) for m in re.finditer(r"^- delete (\w+ \w+)", plan.stdout, re.M)]
    assert order.index("compoundAggregation cost") < order.index("aggregation users_unique"), plan.stdout
    ok(run_cli("apply", str(directory), "--backend", local_backend, "--auto-approve", "--parallelism", "8"))
    no_changes(directory, local_backend)


def test_store_checks_the_calculation(tmp_path: Path, local_backend: str) -> None:
    ok(run_cli("apply", str(manifests(tmp_path, NAMING)), "--backend", local_backend, "--auto-approve"))
    store = Store(Path(local_backend.removeprefix("local:")))
    try:
        org = LOCAL_ORG_ID
        users = next(a for a in store.list_all(org, "aggregation") if a["code"] == "users_unique")
        with pytest.raises(StoreError) as refused:
            store.delete(org, "aggregation", users["id"])
        assert "compoundAggregation (calculation: 'cost')" in str(refused.value)
        cost = next(c for c in store.list_all(org, "compoundAggregation") if c["code"] == "cost")
        body = {k: v for k, v in cost.items() if k not in ("id", "dtCreated", "dtLastModified", "createdBy",
                                                               "lastModifiedBy")}
        with pytest.raises(StoreError) as dangling:
            store.update(org, "compoundAggregation", cost["id"], {**body, "calculation": "aggregation.nosuch * 2"})
        assert "calculation: aggregation 'nosuch' does not exist" in str(dangling.value)
        store.update(org, "compoundAggregation", cost["id"], {**body, "calculation": "aggregation.requests_sum"})
        assert store.delete(org, "aggregation", users["id"])["code"] == "users_unique"
    finally:
        store.close()
