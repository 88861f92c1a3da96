"""The GitHub Action end to end (``python -m reconciler.ci``), against a local organization
and a fake GitHub on 127.0.0.1: one plan comment per pull request, edited in place; apply
pinned by the digest in that comment; refusal, naming both digests, when the organization
changed after the review."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest

from reconciler import kinds
from reconciler.backends.local import LocalBackend
from reconciler.ci.action import run
from reconciler.ci.comment import parse_marker
from tests.github_fake import BOT, FakeGitHub, running_github

TOKEN = "ghs_test_token_0123456789"
HEAD1, HEAD2 = "a" * 40, "b" * 40
MERGE = "c" * 40
PRINT_SAMPLE = bool(os.environ.get("RECONCILER_PRINT_SAMPLE_COMMENT"))

CURRENCIES = """currencies:
  - {code: EUR, name: Euro, maxDecimalPlaces: 2}
"""
ACCOUNTS = """accounts:
  - {code: acme, name: Acme Ltd, emailAddress: billing@acme.example, currency: EUR}
"""


class Action:
    """A job step running the action: the runner's variables, the inputs, output files."""

    def __init__(self, tmp: Path, github: FakeGitHub) -> None:
        self.tmp = tmp
        self.github = github
        self.db = tmp / "org.sqlite"
        self.step = 0

    def __call__(self, command: str, *, event: str, pull: int | None = None, head: str | None = None,
                 sha: str = MERGE, capsys: pytest.CaptureFixture[str],
                 **inputs: str) -> tuple[int, dict[str, str], str]:
        self.step += 1
        payload: dict[str, Any] = {}
        if pull is not None:
            payload["pull_request"] = {"number": pull, "head": {"sha": head}}
        event_path = self.tmp / f"event{self.step}.json"
        event_path.write_text(json.dumps(payload), encoding="utf-8")
        output = self.tmp / f"output{self.step}"
        env = {
            "CI": "true",
            "GITHUB_ACTIONS": "true",
            "GITHUB_EVENT_NAME": event,
            "GITHUB_EVENT_PATH": str(event_path),
            "GITHUB_REPOSITORY": self.github.repository,
            "GITHUB_SHA": sha,
            "GITHUB_RUN_ID": str(4000 + self.step),
            "GITHUB_SERVER_URL": "https://github.example",
            "GITHUB_API_URL": self.github.base_url,
            "GITHUB_TOKEN": TOKEN,
            "GITHUB_OUTPUT": str(output),
            "GITHUB_STEP_SUMMARY": str(self.tmp / "summary.md"),
            "GITHUB_WORKSPACE": str(self.tmp),
            "RUNNER_TEMP": str(self.tmp / "runner-temp"),
            "INPUT_COMMAND": command,
            "INPUT_PATHS": "manifests/",
            "INPUT_BACKEND": f"local:{self.db}",
            "INPUT_COMMENT": "true",
            "INPUT_COMMENT_AUTHOR": BOT,
            **{f"INPUT_{k.upper()}": v for k, v in inputs.items()},
        }
        code = run([command], env={**os.environ, **env})
        captured = capsys.readouterr()
        return code, read_outputs(output), captured.out + captured.err


def read_outputs(path: Path) -> dict[str, str]:
    """Parse ``$GITHUB_OUTPUT`` written in the heredoc form."""
    values: dict[str, str] = {}
    if not path.exists():
        return values
    lines = path.read_text(encoding="utf-8").split("\n")
    i = 0
    while i < len(lines):
        if "<<" in lines[i]:
            name, delimiter = lines[i].split("<<", 1)
            end = lines.index(delimiter, i + 1)
            values[name] = "\n".join(lines[i + 1 : end])
            i = end
        i += 1
    return values


def write_manifests(root: Path, *extra: str) -> None:
    (root / "manifests").mkdir(exist_ok=True)
    (root / "manifests" / "currencies.yaml").write_text(CURRENCIES + "".join(extra), encoding="utf-8")
    (root / "manifests" / "accounts.yaml").write_text(ACCOUNTS, encoding="utf-8")


def plan_comments(github: FakeGitHub, number: int) -> list[dict[str, Any]]:
    return [c for c in github.comments.get(number, []) if parse_marker(c["body"]) is not None]


@pytest.fixture
def github() -> Any:
    with running_github() as fake:
        yield fake


def test_plan_comment_apply_pinned_and_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], github: FakeGitHub
) -> None:
    monkeypatch.chdir(tmp_path)
    write_manifests(tmp_path)
    action = Action(tmp_path, github)
    # A busy pull request: 120 other comments, so the plan comment lands on the second page.
    for i in range(120):
        github.add_comment(7, f"looks good {i}", author="reviewer")

    # pull request, first push: the plan comment is created
    code, out, log = action("plan", event="pull_request", pull=7, head=HEAD1, capsys=capsys)
    assert code == 0, log
    assert out["exitcode"] == "2" and out["has-changes"] == "true"
    assert out["digest"].startswith("sha256:") and Path(out["plan-file"]).is_file()
    assert out["artifact-name"].startswith("reconciler-plan-local-")
    [first] = plan_comments(github, 7)
    marker = parse_marker(first["body"])
    assert marker is not None and marker.digest == out["digest"] and marker.sha == HEAD1
    assert HEAD1 in first["body"] and out["digest"] in first["body"]
    assert "| currency | EUR |" in first["body"]
    if PRINT_SAMPLE:
        print(first["body"], file=sys.__stderr__)
    assert "Acme Ltd" not in first["body"]  # CI is set: names are redacted in the comment
    assert "::stop-commands::" in log and TOKEN not in log

    # second push: the same comment is edited in place, not a second one
    write_manifests(tmp_path, "  - {code: JPY, name: Yen, maxDecimalPlaces: 0}\n")
    code, out2, log = action("plan", event="pull_request", pull=7, head=HEAD2, capsys=capsys)
    assert code == 0, log
    comments = plan_comments(github, 7)
    assert len(comments) == 1 and comments[0]["id"] == first["id"]
    marker2 = parse_marker(comments[0]["body"])
    assert marker2 is not None and marker2.sha == HEAD2 and marker2.digest == out2["digest"] != out["digest"]
    assert "JPY" in comments[0]["body"]
    assert len(github.comments[7]) == 121
    assert ("PATCH", f"/repos/{github.repository}/issues/comments/{first['id']}") in github.requests
    assert ("GET", f"/repos/{github.repository}/issues/7/comments?per_page=100&page=2") in github.requests

    # merge: apply finds the digest in the merged pull request's comment and applies
    github.merge(7, MERGE, HEAD2)
    code, applied, log = action("apply", event="push", capsys=capsys)
    assert code == 0, log
    assert applied["exitcode"] == "0" and applied["reviewed-digest"] == out2["digest"] == applied["digest"]
    with LocalBackend(action.db) as org:
        codes = {c["code"] for c in org.list(kinds.get("currency"))}
    assert {"EUR", "JPY"} <= codes

    # second pull request: reviewed, then someone changes the organization by hand
    (tmp_path / "manifests" / "accounts.yaml").write_text(ACCOUNTS.replace("Acme Ltd", "Acme Group"), encoding="utf-8")
    code, out3, log = action("plan", event="pull_request", pull=8, head="d" * 40, capsys=capsys)
    assert code == 0 and out3["has-changes"] == "true", log
    with LocalBackend(action.db) as org:
        [acme] = [a for a in org.list(kinds.get("account")) if a["code"] == "acme"]
        body = {k: v for k, v in acme.items() if k not in kinds.READ_ONLY_FIELDS}
        body.update(daysBeforeBillDue=9, version=acme["version"])
        org.update(kinds.get("account"), acme["id"], body)
    github.merge(8, "e" * 40, "d" * 40)
    code, refused, log = action("apply", event="push", sha="e" * 40, capsys=capsys)
    assert code == 1
    assert refused["exitcode"] == "1"
    assert out3["digest"] in log and refused["digest"] in log and refused["digest"] != out3["digest"]
    assert "reviewed" in log and "changed since the review" in log and "Nothing was applied" in log
    with LocalBackend(action.db) as org:
        [acme] = [a for a in org.list(kinds.get("account")) if a["code"] == "acme"]
    assert acme["name"] == "Acme Ltd"  # the reviewed change was not applied half-way either


def test_apply_without_reviewed_plan_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], github: FakeGitHub
) -> None:
    monkeypatch.chdir(tmp_path)
    write_manifests(tmp_path)
    action = Action(tmp_path, github)
    # a direct push (no pull request) with changes: nothing was reviewed
    code, out, log = action("apply", event="push", capsys=capsys)
    assert code == 1 and out["has-changes"] == "true"
    assert "not the merge of a pull request" in log and "Nothing was applied" in log
    # merged pull request whose plan comment is someone else's (a copied marker): not trusted
    code, planned, _ = action("plan", event="pull_request", pull=9, head=HEAD1, capsys=capsys, comment="false")
    assert code == 0 and not github.comments.get(9)
    forged = f"<!-- reconciler-plan org=local paths={planned['artifact-name'].rsplit('-', 1)[1]} " \
             f"digest={planned['digest']} sha={HEAD1} -->\nplan"
    github.add_comment(9, forged, author="mallory")
    github.merge(9, MERGE, HEAD1)
    code, out, log = action("apply", event="push", capsys=capsys)
    assert code == 1 and "has no plan comment" in log
    # the expect-digest input pins explicitly
    code, out, log = action("apply", event="push", capsys=capsys, expect_digest=planned["digest"])
    assert code == 0, log
    # nothing left to do: no reviewed plan needed
    code, out, log = action("apply", event="push", sha="f" * 40, capsys=capsys)
    assert code == 0 and out["has-changes"] == "false" and "Nothing to apply" in log


def test_failed_plan_updates_the_comment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], github: FakeGitHub
) -> None:
    monkeypatch.chdir(tmp_path)
    write_manifests(tmp_path)
    action = Action(tmp_path, github)
    code, _, _ = action("plan", event="pull_request", pull=3, head=HEAD1, capsys=capsys)
    assert code == 0
    (tmp_path / "manifests" / "currencies.yaml").write_text(
        "currencies:\n  - {code: EUR, name: Euro, maxDecimalPlaces: 99}\n", encoding="utf-8")
    code, out, log = action("plan", event="pull_request", pull=3, head=HEAD2, capsys=capsys)
    assert code == 1 and out["exitcode"] == "1" and out["digest"] == "" and out["plan-file"] == ""
    # the annotation for the bad line, let through as a workflow command
    assert "::error file=manifests/currencies.yaml,line=2," in log
    [comment] = plan_comments(github, 3)
    marker = parse_marker(comment["body"])
    assert marker is not None and marker.digest is None and marker.sha == HEAD2
    assert "The plan failed" in comment["body"] and "maxDecimalPlaces" in comment["body"]
    # apply of a merge whose last plan failed: refused, says why
    github.merge(3, MERGE, HEAD2)
    write_manifests(tmp_path)
    code, _, log = action("apply", event="push", capsys=capsys)
    assert code == 1 and "holds no digest" in log


def test_drift_sets_outputs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], github: FakeGitHub
) -> None:
    monkeypatch.chdir(tmp_path)
    write_manifests(tmp_path)
    action = Action(tmp_path, github)
    code, out, log = action("drift", event="schedule", capsys=capsys)
    assert code == 0, log
    assert out["exitcode"] == "2" and out["has-changes"] == "true"
    report = Path(out["report-file"]).read_text(encoding="utf-8")
    assert "EUR" in report
    assert "reconciler drift" in (tmp_path / "summary.md").read_text(encoding="utf-8")
    assert not github.requests  # drift never talks to GitHub


def test_bad_input_is_one_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    output = tmp_path / "out"
    assert run(["deploy"], env={"GITHUB_OUTPUT": str(output)}) == 1
    assert "command must be one of plan, apply, drift" in capsys.readouterr().err
    assert read_outputs(output) == {"exitcode": "1"}
