"""``validate`` and ``plan`` with ``--format github``: problems as workflow-command
annotations on stdout, escaped by GitHub's rules after ``safe()``; through the CLI."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.diagnostics import Location, error, warning
from reconciler.render.github import annotation, command, escape_data, escape_property
from tests.conftest import EXAMPLES, run_cli


def test_escaping_rules() -> None:
    assert escape_data("100% done\r\nnext") == "100%25 done%0D%0Anext"
    assert escape_property("a:b,c%\n") == "a%3Ab%2Cc%25%0A"
    # safe() first: a newline or a bidi override in untrusted text becomes a visible escape
    assert command("error", "bad\nline\u202e", file="x,y:z.yaml") == "::error file=x%2Cy%3Az.yaml::bad\\nline\\u202e"
    d = error("name: 50% off, really", Location("m/a.yaml", 3, 7))
    assert annotation(d) == "::error file=m/a.yaml,line=3,col=7::name: 50%25 off, really"
    assert annotation(warning("whole file", Location("big.yaml", 0, 0))) == "::warning file=big.yaml::whole file"
    assert annotation(warning("nowhere")) == "::warning::nowhere"


def test_validate_github_annotations(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "manifests"
    folder.mkdir()
    (folder / "cur,1:x.yaml").write_text(
        "currencies:\n  - {code: EUR, name: Euro, maxDecimalPlaces: 99, bogus: 1}\n", encoding="utf-8")
    (folder / "accounts.yaml").write_text(
        "accounts:\n  - {code: acme, name: \"Acme\\u202e 100%\", emailAddress: a@b.example, currency: XYZ,\n"
        "     purchaseOrderNumber: \"PO\"}\n", encoding="utf-8")
    result = run_cli("validate", "manifests", "--format", "github", env={"GITHUB_WORKSPACE": str(tmp_path)})
    assert result.code == 1
    lines = result.stdout.splitlines()
    assert lines and all(line.startswith(("::error ", "::warning ")) for line in lines), result.stdout
    assert any(line.startswith("::error file=manifests/cur%2C1%3Ax.yaml,line=2,col=") and "maxDecimalPlaces" in line
               for line in lines)
    assert any("bogus: unknown field" in line for line in lines)
    errors_first = [line.split(" ", 1)[0] for line in lines]
    assert errors_first == sorted(errors_first)  # ::error before ::warning
    assert "Invalid: 2 errors" in result.stderr and "::" not in result.stderr
    # without --format github nothing changes: diagnostics on stderr, stdout empty
    plain = run_cli("validate", "manifests")
    assert plain.stdout == "" and "cur,1:x.yaml:2:" in plain.stderr


def test_validate_github_paths_relative_to_workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sub = tmp_path / "billing"
    sub.mkdir()
    (sub / "bad.yaml").write_text("currencies:\n  - {code: eur}\n", encoding="utf-8")
    monkeypatch.chdir(sub)
    result = run_cli("validate", "bad.yaml", "--format", "github", env={"GITHUB_WORKSPACE": str(tmp_path)})
    assert result.code == 1
    assert result.stdout.startswith("::error file=billing/bad.yaml,line=2,")


def test_valid_manifests_print_no_annotations() -> None:
    result = run_cli("validate", str(EXAMPLES), "--format", "github")
    assert result.code == 0 and result.stdout == "" and "Valid:" in result.stderr


def test_plan_github(tmp_path: Path, local_backend: str) -> None:
    (tmp_path / "m.yaml").write_text(
        "organization:\n  timezone: Etc/GMT+5\n  daysBeforeBillDue: 30\n"
        "currencies:\n  - {code: EUR, name: \"Euro, 100%\", maxDecimalPlaces: 2}\n", encoding="utf-8")
    result = run_cli("plan", str(tmp_path / "m.yaml"), "--backend", local_backend, "--format", "github",
                     "--detailed-exitcode", env={"GITHUB_WORKSPACE": str(tmp_path)})
    assert result.code == 2, result.output
    lines = result.stdout.splitlines()
    assert all(line.startswith("::") for line in lines), result.stdout
    # the loader's warning, at its line (the timezone advice), once
    located = [line for line in lines if line.startswith("::warning file=m.yaml,line=2,")]
    assert len(located) == 1 and "Etc/GMT" in located[0]
    assert sum("Etc/GMT" in line for line in lines) == 1
    [notice] = [line for line in lines if line.startswith("::notice ")]
    assert "title=reconciler plan of local" in notice and "Plan: 1 to create" in notice and "sha256:" in notice
    # the plan itself is in the log, on stderr
    assert "+ create currency EUR" in result.stderr


def test_plan_github_blocker_is_an_error(tmp_path: Path, local_backend: str) -> None:
    (tmp_path / "m.yaml").write_text(
        "organization:\n  currency: EUR\n  daysBeforeBillDue: 30\ncurrencies:\n  - {code: EUR, name: Euro}\n"
        "settings:\n  prune: {currencies: delete}\n", encoding="utf-8")
    result = run_cli("plan", str(tmp_path / "m.yaml"), "--backend", local_backend, "--format", "github")
    assert result.code == 1
    lines = result.stdout.splitlines()
    assert lines[0].startswith("::error title=plan cannot succeed::cannot delete currency USD")
    assert lines[-1].startswith("::notice ")
    assert "The plan cannot succeed" in result.stderr
