"""Readable plans (issue 14 items 4-5) through the CLI: nested changes named per item in
every format, singletons by their title, and markdown that fits a pull-request comment
however large the plan is, without a table row cut in half."""

from __future__ import annotations

import json
import re
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from reconciler.render.markdown import COMMENT_LIMIT, LONG_PLAN, render_markdown
from tests.conftest import run_cli

ORG = """\
currencies:
  - {code: USD, name: US Dollar}
  - {code: GBP, name: Pound}
  - {code: JPY, name: Yen}
  - {code: CAD, name: Canadian Dollar}
organization:
  daysBeforeBillDue: 30
  currencyConversions:
    - {from: GBP, to: USD, multiplier: %(gbp)s}
    - {from: %(third)s, to: USD, multiplier: 0.0067}
customFields:
  account: {tier: %(tier)s, seats: 5}
"""


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


@pytest.fixture
def changed_org(tmp_path: Path, local_backend: str) -> list[str]:
    """A live organization with GBP→USD 1.27 and CAD→USD; manifests moving GBP→USD to 1.28,
    replacing CAD→USD by JPY→USD and changing a custom field default."""
    manifests = tmp_path / "m"
    write(manifests, "org.yaml", ORG % {"gbp": "1.27", "third": "CAD", "tier": "gold"})
    applied = run_cli("apply", str(manifests), "--backend", local_backend, "--auto-approve")
    assert applied.code == 0, applied.output
    write(manifests, "org.yaml", ORG % {"gbp": "1.28", "third": "JPY", "tier": "platinum"})
    return [str(manifests), "--backend", local_backend]


def test_text_names_the_conversion_that_changed(changed_org: list[str]) -> None:
    result = run_cli("plan", *changed_org)
    assert result.code == 0, result.output
    out = result.stdout
    assert "~ update organization config (id " in out
    assert "organizationConfig organizationConfig" not in out
    assert "    ~ currencyConversions[GBP→USD].multiplier: 1.27 -> 1.28" in out
    assert '    + currencyConversions[JPY→USD]: {"from": "JPY", "multiplier": 0.0067, "to": "USD"}' in out
    assert '    - currencyConversions[CAD→USD]: {"from": "CAD", "multiplier": 0.0067, "to": "USD"}' in out
    assert "~ update custom fields (id " in out
    assert '    ~ account.tier: "gold" -> "platinum"' in out


def test_markdown_names_the_conversion_that_changed(changed_org: list[str]) -> None:
    result = run_cli("plan", *changed_org, "--format", "markdown")
    assert result.code == 0, result.output
    row = next(line for line in result.stdout.splitlines() if "organization config" in line)
    assert row.startswith("| \\~ | update | organization config | — | ")
    assert "\\~ currencyConversions\\[GBP→USD\\].multiplier: 1.27 → 1.28" in row
    assert "+ currencyConversions\\[JPY→USD\\]: " in row
    assert "- currencyConversions\\[CAD→USD\\]: " in row
    assert "organizationConfig" not in result.stdout


def test_json_paths_name_items_and_keep_kind_and_key(changed_org: list[str]) -> None:
    result = run_cli("plan", *changed_org, "--format", "json")
    assert result.code == 0, result.output
    doc = json.loads(result.stdout)
    by_kind = {c["kind"]: c for c in doc["changes"]}
    org = by_kind["organizationConfig"]
    assert org["key"] == "organizationConfig"
    assert {(d["path"], json.dumps(d["before"], sort_keys=True), json.dumps(d["after"], sort_keys=True))
            for d in org["diff"]} == {
        ("currencyConversions[GBP→USD].multiplier", "1.27", "1.28"),
        ("currencyConversions[JPY→USD]", "null", '{"from": "JPY", "multiplier": 0.0067, "to": "USD"}'),
        ("currencyConversions[CAD→USD]", '{"from": "CAD", "multiplier": 0.0067, "to": "USD"}', "null"),
    }
    assert [d["path"] for d in by_kind["customFields"]["diff"]] == ["account.tier"]
    # the body apply sends is still the whole list
    assert len(org["body"]["currencyConversions"]) == 2


def test_a_saved_plan_with_nested_diffs_applies(changed_org: list[str], tmp_path: Path) -> None:
    """The saved-plan check recomputes the same per-item diff, so it agrees with the file."""
    saved = tmp_path / "plan.json"
    planned = run_cli("plan", *changed_org, "--out", str(saved))
    assert planned.code == 0, planned.output
    applied = run_cli("apply", "--plan", str(saved), *changed_org[1:], "--auto-approve")
    assert applied.code == 0, applied.output
    again = run_cli("plan", *changed_org, "--detailed-exitcode")
    assert again.code == 0, again.output


def test_drift_names_the_conversion_that_changed(changed_org: list[str]) -> None:
    text = run_cli("drift", *changed_org)
    assert text.code == 2
    assert "organization config: changed live" in text.stdout
    assert "currencyConversions[GBP→USD].multiplier: manifest 1.28, live 1.27" in text.stdout
    as_json = json.loads(run_cli("drift", *changed_org, "--format", "json").stdout)
    paths = {f["path"] for item in as_json["drift"] for f in item["fields"]}
    assert "currencyConversions[GBP→USD].multiplier" in paths


def test_a_reordered_unordered_list_is_no_change(tmp_path: Path, local_backend: str) -> None:
    manifests = tmp_path / "m"
    write(manifests, "org.yaml", ORG % {"gbp": "1.27", "third": "CAD", "tier": "gold"})
    assert run_cli("apply", str(manifests), "--backend", local_backend, "--auto-approve").code == 0
    text = (ORG % {"gbp": "1.2700000000000002", "third": "CAD", "tier": "gold"}).replace(
        "    - {from: GBP, to: USD, multiplier: 1.2700000000000002}\n    - {from: CAD, to: USD, multiplier: 0.0067}",
        "    - {from: CAD, to: USD, multiplier: 0.0067}\n    - {from: GBP, to: USD, multiplier: 1.2700000000000002}",
    )
    write(manifests, "org.yaml", text)
    result = run_cli("plan", str(manifests), "--backend", local_backend, "--detailed-exitcode")
    assert result.code == 0, result.output


# -- big plans -----------------------------------------------------------------------------


def _check_markdown(md: str) -> list[str]:
    """Structural checks every rendering must pass; returns the change rows."""
    assert len(md) <= COMMENT_LIMIT
    assert md.count("<details>") == md.count("</details>")
    rows = []
    for line in md.splitlines():
        if line.startswith("|"):
            assert line.endswith("|"), line
            cells = re.split(r"(?<!\\)\|", line)[1:-1]
            assert len(cells) in (2, 5), line
            if len(cells) == 5 and not line.startswith(("| |", "|---")):
                rows.append(line)
    return rows


def _change(i: int, kind: str = "account", action: str = "create", width: int = 40) -> dict[str, Any]:
    return {
        "action": action, "kind": kind, "key": f"acct-{i:05d}|<b>", "id": None, "version": None,
        "diff": [{"path": "name", "before": None, "after": f"Customer | {i} " + "x" * width},
                 {"path": "customFields.tier", "before": None, "after": "gold"}],
        "body": {}, "warnings": [], "dependsOn": [],
    }


def _doc(changes: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    summary = {a: sum(1 for c in changes if c["action"] == a) for a in
               ("create", "update", "archive", "unarchive", "delete")}
    return {"formatVersion": 1, "organization": "org", "backend": "local", "changes": changes,
            "summary": {**summary, "unchanged": 0, "unmanaged": 0}, "unmanaged": [], "uncounted": [],
            "warnings": [], "refusals": [], "blockers": [], "digest": "sha256:" + "0" * 64, **extra}


def test_a_short_plan_is_one_open_table() -> None:
    md = render_markdown(_doc([_change(i) for i in range(3)]))
    assert "<details>" not in md and len(_check_markdown(md)) == 3
    assert "too long" not in md


def test_a_long_plan_collapses_each_kind() -> None:
    changes = [_change(i) for i in range(LONG_PLAN)] + [_change(i, "currency") for i in range(5)]
    md = render_markdown(_doc(changes))
    assert "<details><summary><b>account</b>: 25 changes (25 to create)</summary>" in md
    assert "<details><summary><b>currency</b>: 5 changes (5 to create)</summary>" in md
    assert len(_check_markdown(md)) == 30 and "too long" not in md


@pytest.mark.parametrize("width", [40, 5000])
def test_a_plan_of_10k_changes_fits_a_comment_without_cut_rows(width: int) -> None:
    changes = ([_change(i, width=width) for i in range(9_000)]
               + [_change(i, "currency", "delete") for i in range(1_000)])
    doc = _doc(changes, warnings=[f"warning {i} |" for i in range(2_000)],
               blockers=[f"blocker {i}" for i in range(3)],
               unmanaged=[{"kind": "account", "key": f"u{i}"} for i in range(5_000)])
    started = time.monotonic()
    md = render_markdown(doc)
    assert time.monotonic() - started < 10
    rows = _check_markdown(md)
    assert 0 < len(rows) < 10_000
    assert "**Plan too long for a comment**: 10,000 changes; not shown here: " in md
    assert f"{10_000 - len(rows):,} changes" in md
    assert "saved plan artifact" in md and "run `reconciler plan`" in md
    # every kind is counted at the top, shown or not
    assert "| account | 9,000 to create |" in md and "| currency | 1,000 to delete |" in md
    assert "blocker 0" in md  # what blocks the plan comes before the rows


def test_a_huge_plan_through_the_cli_fits_a_comment(tmp_path: Path, local_backend: str) -> None:
    accounts = "".join(f"  - {{code: a{i:05d}, name: Account {i}, emailAddress: a{i}@x.example}}\n"
                       for i in range(10_000))
    write(tmp_path, "m/accounts.yaml", "accounts:\n" + accounts)
    result = run_cli("plan", str(tmp_path / "m"), "--backend", local_backend, "--format", "markdown",
                     "--no-redact-pii")
    assert result.code == 0, result.stderr[-2000:]
    rows = _check_markdown(result.stdout)
    assert 100 < len(rows) < 10_000
    assert "**Plan too long for a comment**: 10,000 changes" in result.stdout
    assert "| account | 10,000 to create |" in result.stdout
