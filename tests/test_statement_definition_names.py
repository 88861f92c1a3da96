"""Statement definitions named in manifests (``defaultStatementDefinition: NAME``,
``statementDefinition: NAME``) and resolved to the organization's ids at plan time, so one
set of manifests serves a staging and a production organization (issue 12, item 10)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from reconciler import kinds
from reconciler.backends.base import Backend
from reconciler.backends.local import LocalBackend
from reconciler.lookups import resolve_names, unique_names, uses_names
from reconciler.manifest import load_manifests
from tests.conftest import CliResult, run_cli
from tests.conftest import write_manifest as write

ACCOUNT = kinds.get("account")
ORG_KIND = kinds.get("organizationConfig")


class FakeBackend:
    """Only what resolution needs: the statement definitions, and a count of reads."""

    def __init__(self, definitions: list[dict[str, Any]]) -> None:
        self.definitions = definitions
        self.reads = 0

    def statement_definitions(self) -> list[dict[str, Any]]:
        self.reads += 1
        return self.definitions


def fake(*pairs: tuple[str, str]) -> Backend:
    return FakeBackend([{"id": i, "name": n, "aggregationFrequency": "MONTH"} for i, n in pairs])  # type: ignore[return-value]


MANIFEST = """
    organization:
      defaultStatementDefinition: Monthly detail
    accounts:
      - code: a
        name: A
        emailAddress: a@example.com
        statementDefinition: Daily usage
      - code: b
        name: B
        emailAddress: b@example.com
        statementDefinition: Monthly detail
      - code: c
        name: C
        emailAddress: c@example.com
        statementDefinition: null
      - code: d
        name: D
        emailAddress: d@example.com
        statementDefinitionId: given-by-id
    """


# ------------------------------------------------------------------ unit: resolution with a fake backend


def test_names_rewritten_into_id_fields(tmp_path: Path) -> None:
    loaded = load_manifests([str(write(tmp_path, "m.yaml", MANIFEST))])
    assert loaded.ok and loaded.manifests is not None
    manifests = loaded.manifests
    backend = fake(("sd-1", "Monthly detail"), ("sd-2", "Daily usage"))
    assert resolve_names(manifests, backend) == []
    org = manifests.of_kind("organizationConfig")["organizationConfig"].fields
    assert org == {"defaultStatementDefinitionId": "sd-1"}
    accounts = manifests.of_kind("account")
    assert accounts["a"].fields["statementDefinitionId"] == "sd-2"
    assert "statementDefinition" not in accounts["a"].fields
    assert list(accounts["a"].fields)[-1] == "statementDefinitionId"  # the name's place is kept
    assert accounts["b"].fields["statementDefinitionId"] == "sd-1"
    assert accounts["c"].fields == {"code": "c", "name": "C", "emailAddress": "c@example.com",
                                    "statementDefinitionId": None}
    assert accounts["d"].fields["statementDefinitionId"] == "given-by-id"
    assert backend.reads == 1  # type: ignore[attr-defined]
    # a second resolution (already rewritten) reads nothing and changes nothing
    assert resolve_names(manifests, backend) == [] and backend.reads == 1  # type: ignore[attr-defined]


def test_no_names_no_request(tmp_path: Path) -> None:
    loaded = load_manifests([str(write(tmp_path, "m.yaml", "accounts:\n  - {code: a, name: A, "
                                       "emailAddress: a@example.com, statementDefinitionId: x}\n"))])
    assert loaded.manifests is not None and not uses_names(loaded.manifests)
    backend = fake()
    assert resolve_names(loaded.manifests, backend) == []
    assert backend.reads == 0  # type: ignore[attr-defined]


def test_missing_and_ambiguous_names_are_located_errors(tmp_path: Path) -> None:
    path = write(tmp_path, "m.yaml", MANIFEST)
    loaded = load_manifests([str(path)])
    assert loaded.manifests is not None
    backend = fake(("sd-1", "Monthly detail"), ("sd-3", "Monthly detail"), ("sd-4", "Weekly"))
    diagnostics = resolve_names(loaded.manifests, backend)
    by_line = {d.location.line: d.message for d in diagnostics if d.location}
    assert len(diagnostics) == 2 and all(d.is_error for d in diagnostics)
    assert "organization: defaultStatementDefinition: 2 statement definitions are named 'Monthly detail' " \
           "(ids sd-1, sd-3) (also named by 1 more object); the name is ambiguous" in by_line[2]
    assert "give defaultStatementDefinitionId instead" in by_line[2]
    assert "accounts[0] (code 'a'): statementDefinition: no statement definition named 'Daily usage' in the " \
           "organization (it has 'Monthly detail', 'Weekly')" in by_line[7]
    assert diagnostics[1].location is not None and diagnostics[1].location.file == str(path)


def test_unique_names_leave_out_shared_ones() -> None:
    assert unique_names([{"id": "1", "name": "A"}, {"id": "2", "name": "B"}, {"id": "3", "name": "B"},
                         {"id": "4", "name": ""}]) == {"1": "A"}


# ------------------------------------------------------------------ CLI against the local backend


@pytest.fixture
def org(tmp_path: Path) -> Iterator[tuple[str, LocalBackend]]:
    """A local organization whose config has the PUT-required daysBeforeBillDue (a fresh one
    has none), so plans that touch the config can apply."""
    backend = LocalBackend(tmp_path / "org.sqlite")
    live = backend.get_singleton(ORG_KIND)
    body = {k: v for k, v in live.items() if k not in kinds.READ_ONLY_FIELDS}
    backend.put_singleton(ORG_KIND, {**body, "daysBeforeBillDue": 30, "version": live["version"]})
    yield f"local:{tmp_path / 'org.sqlite'}", backend
    backend.close()


def seed(backend: LocalBackend, name: str) -> str:
    return str(backend.store.seed_statement_definition(backend.org_id, name)["id"])


def plan(path: Path, spec: str, *extra: str) -> CliResult:
    return run_cli("plan", str(path), "--backend", spec, *extra)


def test_validate_both_name_and_id_is_a_located_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RECONCILER_BACKEND", raising=False)
    path = write(tmp_path, "m.yaml", """
        organization:
          defaultStatementDefinitionId: abc
          defaultStatementDefinition: Monthly
        accounts:
          - code: a
            name: A
            emailAddress: a@example.com
            statementDefinition: Monthly
            statementDefinitionId: abc
        """)
    result = run_cli("validate", str(path))
    assert result.code == 1, result.output
    assert any(ln.startswith(f"{path}:3:3: error: organization: defaultStatementDefinition: give the statement "
                             "definition either by name") for ln in result.stderr.splitlines()), result.stderr
    assert any(ln.startswith(f"{path}:8:5: error: accounts[0] (code 'a'): statementDefinition: give")
               for ln in result.stderr.splitlines()), result.stderr


def test_plan_resolves_names_and_shows_the_id(tmp_path: Path, org: tuple[str, LocalBackend]) -> None:
    spec, backend = org
    monthly, daily = seed(backend, "Monthly detail"), seed(backend, "Daily usage")
    path = write(tmp_path, "m.yaml", """
        organization:
          defaultStatementDefinition: Monthly detail
        accounts:
          - {code: a, name: A, emailAddress: a@example.com, statementDefinition: Daily usage}
        """)
    result = plan(path, spec, "--format", "json")
    assert result.code == 0, result.output
    changes = {c["kind"]: c for c in json.loads(result.stdout)["changes"]}
    assert changes["organizationConfig"]["body"]["defaultStatementDefinitionId"] == monthly
    assert "defaultStatementDefinition" not in changes["organizationConfig"]["body"]
    assert [d["path"] for d in changes["organizationConfig"]["diff"]] == ["defaultStatementDefinitionId"]
    assert changes["account"]["body"]["statementDefinitionId"] == daily
    assert "statementDefinition" not in changes["account"]["body"]
    applied = run_cli("apply", str(path), "--backend", spec, "--auto-approve")
    assert applied.code == 0, applied.output
    assert backend.get_singleton(ORG_KIND)["defaultStatementDefinitionId"] == monthly
    assert plan(path, spec, "--detailed-exitcode").code == 0
    assert run_cli("drift", str(path), "--backend", spec).code == 0
    assert run_cli("validate", str(path), "--backend", spec).code == 0


def test_plan_refuses_unknown_and_ambiguous_names(tmp_path: Path, org: tuple[str, LocalBackend]) -> None:
    spec, backend = org
    seed(backend, "Twin")
    seed(backend, "Twin")
    path = write(tmp_path, "m.yaml", """
        organization:
          defaultStatementDefinition: Twin
        accounts:
          - {code: a, name: A, emailAddress: a@example.com, statementDefinition: Nope}
        """)
    before = backend.get_singleton(ORG_KIND)["version"]
    for command in (("plan",), ("apply", "--auto-approve"), ("validate",)):
        result = run_cli(*command, str(path), "--backend", spec)
        assert result.code == 1, result.output
        assert "Traceback" not in result.output
        lines = result.stderr.splitlines()
        assert any(ln.startswith(f"{path}:2:3: error: organization: defaultStatementDefinition: 2 statement "
                                 "definitions are named 'Twin'") for ln in lines), result.stderr
        assert any(ln.startswith(f"{path}:4:") and "no statement definition named 'Nope'" in ln
                   for ln in lines), result.stderr
    assert backend.get_singleton(ORG_KIND)["version"] == before
    assert backend.list(ACCOUNT) == []


def test_export_writes_names_and_round_trips(tmp_path: Path, org: tuple[str, LocalBackend]) -> None:
    spec, backend = org
    monthly = seed(backend, "Monthly detail")
    twin = seed(backend, "Twin")
    seed(backend, "Twin")
    live = backend.get_singleton(ORG_KIND)
    body = {k: v for k, v in live.items() if k not in kinds.READ_ONLY_FIELDS}
    body.update(defaultStatementDefinitionId=monthly, version=live["version"])
    backend.put_singleton(ORG_KIND, body)
    backend.create(ACCOUNT, {"code": "named", "name": "N", "emailAddress": "n@example.com",
                             "statementDefinitionId": monthly})
    backend.create(ACCOUNT, {"code": "twin", "name": "T", "emailAddress": "t@example.com",
                             "statementDefinitionId": twin})
    backend.create(ACCOUNT, {"code": "gone", "name": "G", "emailAddress": "g@example.com",
                             "statementDefinitionId": "no-longer-exists"})
    out = tmp_path / "export"
    exported = run_cli("export", "--out", str(out), "--backend", spec)
    assert exported.code == 0, exported.output
    assert "2 statement definition id(s) written as ids" in exported.stderr
    org_doc = yaml.safe_load((out / "organization.yaml").read_text(encoding="utf-8"))["organization"]
    assert org_doc["defaultStatementDefinition"] == "Monthly detail"
    assert "defaultStatementDefinitionId" not in org_doc
    accounts = {a["code"]: a for f in sorted((out / "accounts").iterdir())
                for a in yaml.safe_load(f.read_text(encoding="utf-8"))["accounts"]}
    assert accounts["named"] == {"code": "named", "name": "N", "emailAddress": "n@example.com",
                                 "statementDefinition": "Monthly detail"}
    assert accounts["twin"]["statementDefinitionId"] == twin and "statementDefinition" not in accounts["twin"]
    assert accounts["gone"]["statementDefinitionId"] == "no-longer-exists"
    assert plan(out, spec, "--detailed-exitcode").code == 0


def test_plan_over_http_resolves_names_through_the_emulator(tmp_path: Path) -> None:
    from reconciler.emulator.config import EmulatorConfig
    from reconciler.emulator.testing import running_emulator

    with running_emulator(EmulatorConfig()) as emu:
        sd = emu.store.seed_statement_definition(emu.org_id, "Monthly detail")
        manifest = "organization:\n  defaultStatementDefinition: Monthly detail\n  daysBeforeBillDue: 30\n"
        path = write(tmp_path, "m.yaml", manifest)
        result = run_cli("plan", str(path), "--backend", "m3ter", "--format", "json", env=emu.env())
        assert result.code == 0, result.output
        [change] = json.loads(result.stdout)["changes"]
        assert change["body"]["defaultStatementDefinitionId"] == sd["id"]
        applied = run_cli("apply", str(path), "--backend", "m3ter", "--auto-approve", env=emu.env())
        assert applied.code == 0, applied.output
        again = run_cli("plan", str(path), "--backend", "m3ter", "--detailed-exitcode", env=emu.env())
        assert again.code == 0, again.output
