"""Partial plans (issue 14 item 3) through the CLI: ``--only KIND[/CODE]`` plans the selected
objects and what they depend on, says so in every format, never prunes outside the
selection, and a saved partial plan keeps its selection under the digest."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest

from reconciler import kinds
from tests.conftest import run_cli

MANIFESTS = """\
currencies:
  - {code: USD, name: US Dollar}
  - {code: EUR, name: Euro}
creditReasons:
  - {code: goodwill, name: Goodwill gesture}
accounts:
  - {code: acme, name: Acme Corp, emailAddress: billing@acme.example}
  - {code: acme-eu, name: Acme EU, emailAddress: eu@acme.example, parent: acme, currency: EUR}
  - {code: beta, name: Beta, emailAddress: beta@x.example}
"""


def write(directory: Path, name: str, text: str) -> None:
    path = directory / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")


def plan(manifests: Path, backend: str, *args: str) -> dict[str, Any]:
    result = run_cli("plan", str(manifests), "--backend", backend, "--format", "json", *args)
    assert result.code == 0, result.output
    return json.loads(result.stdout)


def keys(doc: dict[str, Any]) -> list[tuple[str, str, str]]:
    return [(c["action"], c["kind"], c["key"]) for c in doc["changes"]]


def test_an_object_comes_with_what_it_depends_on(tmp_path: Path, local_backend: str) -> None:
    write(tmp_path, "m/a.yaml", MANIFESTS)
    doc = plan(tmp_path / "m", local_backend, "--only", "account/acme-eu")
    assert keys(doc) == [("create", "currency", "EUR"), ("create", "account", "acme"),
                         ("create", "account", "acme-eu")]
    assert doc["only"] == ["account/acme-eu"]
    assert any(w.startswith("partial plan (--only account/acme-eu)") for w in doc["warnings"])
    assert doc["summary"]["create"] == 3
    # indexes are of the partial plan
    assert doc["changes"][2]["dependsOn"] == [0, 1]


def test_whole_kinds_and_several_selectors(tmp_path: Path, local_backend: str) -> None:
    write(tmp_path, "m/a.yaml", MANIFESTS)
    doc = plan(tmp_path / "m", local_backend, "--only", "creditReason", "--only", "currency/EUR",
               "--only", "currency/EUR")
    assert keys(doc) == [("create", "currency", "EUR"), ("create", "creditReason", "goodwill")]
    assert doc["only"] == ["creditReason", "currency/EUR"]


@pytest.mark.parametrize("fmt", ["text", "markdown"])
def test_every_format_says_the_plan_is_partial(tmp_path: Path, local_backend: str, fmt: str) -> None:
    write(tmp_path, "m/a.yaml", MANIFESTS)
    result = run_cli("plan", str(tmp_path / "m"), "--backend", local_backend, "--format", fmt,
                     "--only", "account/beta")
    assert result.code == 0, result.output
    assert "PARTIAL PLAN (--only account/beta)" in result.stdout
    assert "goodwill" not in result.stdout and "acme" not in result.stdout


def test_never_prunes_outside_the_selection(tmp_path: Path, local_backend: str) -> None:
    write(tmp_path, "m/a.yaml", MANIFESTS + "  - {code: legacy, name: Legacy, emailAddress: l@x.example}\n"
                                           "transactionTypes:\n  - {code: old, name: Old}\n")
    assert run_cli("apply", str(tmp_path / "m"), "--backend", local_backend, "--auto-approve").code == 0
    write(tmp_path, "m/a.yaml", MANIFESTS.replace("name: Beta", "name: Beta Ltd")
          + "settings:\n  prune: {accounts: delete, transactionTypes: archive}\n")

    full = plan(tmp_path / "m", local_backend)
    assert ("delete", "account", "legacy") in keys(full) and ("archive", "transactionType", "old") in keys(full)

    only_beta = plan(tmp_path / "m", local_backend, "--only", "account/beta")
    assert keys(only_beta) == [("update", "account", "beta")]
    assert only_beta["unmanaged"] == [] and only_beta["summary"]["unchanged"] == 0

    accounts = plan(tmp_path / "m", local_backend, "--only", "account")
    assert set(keys(accounts)) == {("update", "account", "beta"), ("delete", "account", "legacy")}
    assert accounts["summary"]["unchanged"] == 2  # acme and acme-eu: the selection's only

    picked = plan(tmp_path / "m", local_backend, "--only", "transactionType/old")
    assert keys(picked) == [("archive", "transactionType", "old")]


def test_a_removal_brings_the_referrers_that_must_let_go_first(tmp_path: Path, local_backend: str) -> None:
    write(tmp_path, "m/a.yaml", "currencies:\n  - {code: CAD, name: Canadian Dollar}\n"
                                "accounts:\n  - {code: acme, name: Acme, emailAddress: a@x.example, currency: CAD}\n"
                                "  - {code: beta, name: Beta, emailAddress: b@x.example}\n")
    assert run_cli("apply", str(tmp_path / "m"), "--backend", local_backend, "--auto-approve").code == 0
    write(tmp_path, "m/a.yaml", "currencies:\n  - {code: EUR, name: Euro}\n"
                                "accounts:\n  - {code: acme, name: Acme, emailAddress: a@x.example, currency: EUR}\n"
                                "  - {code: beta, name: Beta 2, emailAddress: b@x.example}\n"
                                "settings:\n  prune: {currencies: delete}\n")
    doc = plan(tmp_path / "m", local_backend, "--only", "currency/CAD")
    assert keys(doc) == [("create", "currency", "EUR"), ("update", "account", "acme"), ("delete", "currency", "CAD")]
    assert doc["blockers"] == []


def test_a_selected_removal_blocked_by_something_outside_is_refused(tmp_path: Path, local_backend: str) -> None:
    """A dependency that is itself a removal outside the selection is not pulled in: the
    partial plan cannot succeed on its own and says so, naming the blocker."""
    write(tmp_path, "m/a.yaml", "accounts:\n  - {code: top, name: Top, emailAddress: t@x.example}\n"
                                "  - {code: kid, name: Kid, emailAddress: k@x.example, parent: top}\n")
    assert run_cli("apply", str(tmp_path / "m"), "--backend", local_backend, "--auto-approve").code == 0
    write(tmp_path, "m/a.yaml", "settings:\n  prune: {accounts: delete}\n")
    result = run_cli("plan", str(tmp_path / "m"), "--backend", local_backend, "--format", "json",
                     "--only", "account/top")
    assert result.code == 1, result.output
    doc = json.loads(result.stdout)
    assert keys(doc) == [("delete", "account", "top")]
    assert doc["blockers"] and "kid" in doc["blockers"][0]


def test_unknown_kind_is_a_usage_error_naming_the_known_kinds(tmp_path: Path, local_backend: str) -> None:
    write(tmp_path, "m/a.yaml", MANIFESTS)
    for command in ("plan", "drift"):
        result = run_cli(command, str(tmp_path / "m"), "--backend", local_backend, "--only", "acount/acme")
        assert result.code == 1 and result.stdout == ""
        assert "Invalid value for '--only'" in result.stderr
        assert "unknown kind 'acount'" in result.stderr
        assert ", ".join(kinds.KIND_NAMES) in result.stderr
    singleton = run_cli("plan", str(tmp_path / "m"), "--backend", local_backend, "--only", "organizationConfig/x")
    assert singleton.code == 1 and "singleton" in singleton.stderr
    empty = run_cli("plan", str(tmp_path / "m"), "--backend", local_backend, "--only", "account/")
    assert empty.code == 1 and "no code" in empty.stderr


def test_a_selected_code_that_matches_nothing_is_a_warning(tmp_path: Path, local_backend: str) -> None:
    write(tmp_path, "m/a.yaml", MANIFESTS)
    doc = plan(tmp_path / "m", local_backend, "--only", "account/acmee")
    assert doc["changes"] == []
    assert any("--only account/acmee matches no account" in w for w in doc["warnings"])


def test_singleton_selection(tmp_path: Path, local_backend: str) -> None:
    write(tmp_path, "m/a.yaml", MANIFESTS + "organization:\n  daysBeforeBillDue: 30\n  currencyConversions:\n"
                                           "    - {from: EUR, to: USD, multiplier: 1.08}\n")
    doc = plan(tmp_path / "m", local_backend, "--only", "organizationConfig")
    assert keys(doc) == [("create", "currency", "EUR"), ("update", "organizationConfig", "organizationConfig")]


def test_saved_partial_plan_keeps_its_selection_under_the_digest(tmp_path: Path, local_backend: str) -> None:
    write(tmp_path, "m/a.yaml", MANIFESTS)
    saved = tmp_path / "plan.json"
    made = run_cli("plan", str(tmp_path / "m"), "--backend", local_backend, "--only", "account/beta",
                   "--out", str(saved))
    assert made.code == 0, made.output
    assert "PARTIAL PLAN" in made.stdout
    doc = json.loads(saved.read_text())
    assert doc["only"] == ["account/beta"] and doc["saved"] is True

    # the selection is content: editing it breaks the digest
    edited = dict(doc, only=["account"])
    (tmp_path / "edited.json").write_text(json.dumps(edited))
    refused = run_cli("apply", "--plan", str(tmp_path / "edited.json"), "--backend", local_backend, "--auto-approve")
    assert refused.code == 1 and "does not match its digest" in refused.stderr

    with_only = run_cli("apply", "--plan", str(saved), "--backend", local_backend, "--auto-approve",
                        "--only", "account")
    assert with_only.code == 1 and "saved plan keeps the selection" in with_only.stderr

    applied = run_cli("apply", "--plan", str(saved), "--backend", local_backend, "--auto-approve",
                      "--expect-digest", doc["digest"])
    assert applied.code == 0, applied.output
    assert "PARTIAL PLAN (--only account/beta)" in applied.stdout
    rest = plan(tmp_path / "m", local_backend)
    assert ("create", "account", "beta") not in keys(rest) and ("create", "account", "acme") in keys(rest)


def test_a_whole_plan_has_no_only_key(tmp_path: Path, local_backend: str) -> None:
    write(tmp_path, "m/a.yaml", MANIFESTS)
    doc = plan(tmp_path / "m", local_backend)
    assert "only" not in doc and not any("partial plan" in w for w in doc["warnings"])


def test_apply_only(tmp_path: Path, local_backend: str) -> None:
    write(tmp_path, "m/a.yaml", MANIFESTS)
    result = run_cli("apply", str(tmp_path / "m"), "--backend", local_backend, "--auto-approve",
                     "--only", "creditReason/goodwill")
    assert result.code == 0, result.output
    assert "PARTIAL PLAN" in result.stdout
    rest = plan(tmp_path / "m", local_backend)
    assert ("create", "creditReason", "goodwill") not in keys(rest) and rest["summary"]["create"] == 4


@pytest.mark.parametrize("fmt", ["text", "json", "markdown"])
def test_drift_only(tmp_path: Path, local_backend: str, fmt: str) -> None:
    write(tmp_path, "m/a.yaml", MANIFESTS)
    assert run_cli("apply", str(tmp_path / "m"), "--backend", local_backend, "--auto-approve").code == 0
    write(tmp_path, "m/a.yaml", MANIFESTS.replace("Beta", "Beta 2").replace("Goodwill gesture", "Goodwill"))
    result = run_cli("drift", str(tmp_path / "m"), "--backend", local_backend, "--format", fmt,
                     "--only", "creditReason")
    assert result.code == 2, result.output
    assert "beta" not in result.stdout and "goodwill" in result.stdout
    if fmt == "json":
        doc = json.loads(result.stdout)
        assert doc["only"] == ["creditReason"] and doc["summary"]["changed"] == 1
        assert doc["warnings"][0].startswith("partial plan")
    else:
        assert "PARTIAL PLAN (--only creditReason)" in result.stdout


def test_a_partial_plan_states_each_removal_warning_once(tmp_path: Path, local_backend: str) -> None:
    """Regression: ordering the selected changes again appended the "still refers to it"
    warning a second time to the same archive."""
    from reconciler.backends.local import LocalBackend

    with LocalBackend(local_backend.removeprefix("local:")) as org:
        org.create(kinds.get("currency"), {"code": "EUR", "name": "Euro"})
        org.create(kinds.get("account"), {"code": "legacy", "name": "L", "emailAddress": "l@example.com",
                                          "currency": "EUR"})
    write(tmp_path, "m/a.yaml", "currencies:\n  - {code: USD, name: US Dollar}\nsettings:\n"
                                "  prune: {currencies: archive}\n  safety: {maxRemovePercent: 100}\n")
    doc = plan(tmp_path / "m", local_backend, "--only", "currency/EUR")
    [archive] = doc["changes"]
    assert archive["warnings"] == ["account legacy will still refer to it after it is archived"]
