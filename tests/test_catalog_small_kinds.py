"""Products and bill grouping keys through the CLI: the two small catalog kinds (each one
registry module): create, update, archive/prune, refusals, export round trip."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import run_cli, write_manifest

KEYS = """\
billGroupingKeys:
  - {code: costCenter, name: Cost center, exclusive: false}
  - {code: region, name: Region, exclusive: true}
products:
  - {code: analytics, name: Analytics, customFields: {line: core}}
  - {code: storage, name: Storage}
"""


def _plan(path: Path, backend: str) -> dict:
    result = run_cli("plan", str(path), "--backend", backend, "--format", "json")
    assert result.code == 0, result.output
    return json.loads(result.stdout)


def _apply(path: Path, backend: str, *extra: str) -> None:
    result = run_cli("apply", str(path), "--backend", backend, "--auto-approve", *extra)
    assert result.code == 0, result.output


def test_create_update_archive_and_prune(tmp_path: Path, local_backend: str) -> None:
    path = write_manifest(tmp_path, "m/keys.yaml", KEYS)
    assert {(c["action"], c["kind"], c["key"]) for c in _plan(path, local_backend)["changes"]} == {
        ("create", "billGroupingKey", "costCenter"), ("create", "billGroupingKey", "region"),
        ("create", "product", "analytics"), ("create", "product", "storage")}
    _apply(path, local_backend)
    path.write_text(KEYS.replace("exclusive: false}", "exclusive: true, archived: true}")
                    .replace("{line: core}", "{line: premium}"), encoding="utf-8")
    changes = {(c["kind"], c["key"]): c for c in _plan(path, local_backend)["changes"]}
    assert changes[("billGroupingKey", "costCenter")]["action"] == "archive"
    assert {d["path"] for d in changes[("billGroupingKey", "costCenter")]["diff"]} == {"archived", "exclusive"}
    assert [d["path"] for d in changes[("product", "analytics")]["diff"]] == ["customFields.line"]
    _apply(path, local_backend)
    # prune: the storage product and the region key go when no manifest lists them
    pruned = KEYS.replace("  - {code: region, name: Region, exclusive: true}\n", "").replace(
        "  - {code: storage, name: Storage}\n", "")
    path.write_text(pruned.replace("exclusive: false}", "exclusive: true, archived: true}").replace(
        "{line: core}", "{line: premium}")
        + "settings:\n  prune: {billGroupingKeys: archive, products: delete}\n  safety: {maxRemovePercent: 100}\n",
        encoding="utf-8")
    actions = {(c["action"], c["kind"], c["key"]) for c in _plan(path, local_backend)["changes"]}
    assert actions == {("archive", "billGroupingKey", "region"), ("delete", "product", "storage")}
    _apply(path, local_backend)
    again = run_cli("plan", str(path), "--backend", local_backend, "--detailed-exitcode")
    assert again.code == 0, again.output


def test_refusals_are_located(tmp_path: Path, local_backend: str) -> None:
    path = write_manifest(tmp_path, "m/keys.yaml", KEYS.replace(", exclusive: true}", "}"))
    result = run_cli("validate", str(path))
    assert result.code == 1 and "keys.yaml:3:" in result.stderr and "exclusive" in result.stderr
    path.write_text(KEYS.replace("code: costCenter", "code: cost center"), encoding="utf-8")
    result = run_cli("validate", str(path))
    assert result.code == 1 and "must start with a letter" in result.stderr
    path.write_text(KEYS.replace("code: storage", "code: ' storage'"), encoding="utf-8")
    result = run_cli("validate", str(path))
    assert result.code == 1 and "whitespace" in result.stderr and "Traceback" not in result.stderr
    path.write_text(KEYS + "prune-typo: 1\n", encoding="utf-8")
    assert run_cli("validate", str(path)).code == 1


def test_a_product_its_meters_use_is_not_pruned(tmp_path: Path, local_backend: str) -> None:
    meter = ("meters:\n  - code: m1\n    name: M1\n    product: storage\n"
             "    dataFields: [{category: MEASURE, code: gib, name: GiB, unit: GiB}]\n    derivedFields: []\n")
    path = write_manifest(tmp_path, "m/keys.yaml", KEYS + meter)
    _apply(path, local_backend)
    # storage leaves the manifests, but the meter the manifests keep still belongs to it
    path.write_text(KEYS.replace("  - {code: storage, name: Storage}\n", "") + meter
                    + "settings:\n  prune: {products: delete}\n  safety: {maxRemovePercent: 100}\n",
                    encoding="utf-8")
    result = run_cli("plan", str(path), "--backend", local_backend)
    assert result.code == 1 and "cannot delete product storage" in result.stderr.replace("'", "")


def test_export_round_trips(tmp_path: Path, local_backend: str) -> None:
    path = write_manifest(tmp_path, "m/keys.yaml", KEYS)
    _apply(path, local_backend)
    out = tmp_path / "export"
    assert run_cli("export", "--out", str(out), "--backend", local_backend).code == 0
    assert "exclusive: false" in (out / "bill-grouping-keys.yaml").read_text()
    again = run_cli("plan", str(out), "--backend", local_backend, "--detailed-exitcode")
    assert again.code == 0, again.output
