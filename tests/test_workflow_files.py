"""The shipped GitHub Action, CI examples, pre-commit hook and staging/production example stay
true to GitHub, GitLab and the CLI: they validate against the published JSON Schemas (the
ones check-jsonschema vendors, offline), zizmor finds nothing in them, every action is pinned
to a commit, every ``reconciler`` command line names real options, and the example
workflows run: plan on a pull request, apply on merge, drift at night."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import sysconfig
from pathlib import Path
from typing import Any

import click
import pytest
import yaml

from reconciler import kinds
from reconciler.backends.local import LocalBackend
from reconciler.cli import cli
from reconciler.export_cli import register
from tests.conftest import REPO, run_cli
from tests.github_fake import FakeGitHub, running_github
from tests.test_github_action import Action

if "export" not in cli.commands:  # until cli.py wires it in; a no-op afterwards
    register(cli)

ACTION = REPO / "action.yml"
WORKFLOW = REPO / "examples" / "ci" / "github-actions.yml"
GITLAB = REPO / "examples" / "ci" / "gitlab-ci.yml"
HOOKS = REPO / ".pre-commit-hooks.yaml"
EXAMPLE = REPO / "examples" / "ci" / "staging-production"
MANIFESTS = EXAMPLE / "manifests"
DOCS = [REPO / "docs" / "workflow.md", REPO / "docs" / "export.md", REPO / "examples" / "ci" / "README.md"]
SHELL_OPERATORS = {">", ">>", "<", "|", "||", "&&", ";", "2>", "2>&1", "&"}
PINNED = re.compile(r"^[\w.-]+/[\w./-]+@[0-9a-f]{40}$")


def load(path: Path) -> dict[Any, Any]:
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(doc, dict)
    return doc


def steps_of(doc: dict[Any, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(where, step) for every step of a workflow's jobs or a composite action."""
    if "jobs" in doc:
        return [(f"job {name}", step) for name, job in doc["jobs"].items() for step in job.get("steps", [])]
    return [("action", step) for step in doc["runs"]["steps"]]


def reconciler_commands(script: str) -> list[tuple[list[str], str | None]]:
    """Each ``reconciler ...`` command in a shell script: its words (up to the first shell
    operator) and the file its stdout is redirected to, if any."""
    found: list[tuple[list[str], str | None]] = []
    for line in script.replace("\\\n", " ").splitlines():
        line = line.strip()
        if not line.startswith("reconciler "):
            continue
        words = shlex.split(line, comments=True)
        command: list[str] = []
        redirect: str | None = None
        for i, word in enumerate(words):
            if word in SHELL_OPERATORS:
                if word == ">" and i + 1 < len(words):
                    redirect = words[i + 1]
                break
            command.append(word)
        found.append((command, redirect))
    return found


def check_command(words: list[str], where: str) -> None:
    assert words[0] == "reconciler", where
    name = words[1]
    command = cli.commands.get(name)
    assert command is not None, f"{where}: no subcommand {name!r} in {sorted(cli.commands)}"
    options: dict[str, click.Parameter] = {}
    for param in command.params:
        if isinstance(param, click.Option):
            for opt in [*param.opts, *param.secondary_opts]:
                options[opt] = param
    for word in words[2:]:
        if word.startswith("-") and word != "-":
            opt = word.split("=", 1)[0]
            assert opt in options, f"{where}: reconciler {name} has no option {opt} ({sorted(options)})"


# ---------------------------------------------------------------------------- GitHub's schemas, zizmor


@pytest.mark.parametrize(("schema", "path"), [
    ("vendor.github-actions", ACTION),
    ("vendor.github-workflows", WORKFLOW),
    ("vendor.gitlab-ci", GITLAB),
])
def test_published_schemas(schema: str, path: Path) -> None:
    """GitHub's (and GitLab's) published JSON Schemas, as check-jsonschema vendors them:
    no network needed."""
    result = subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", schema, str(path)],
        capture_output=True, text=True, check=False, timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def zizmor() -> str:
    for folder in (sysconfig.get_path("scripts"), str(Path(sys.executable).parent)):
        candidate = Path(folder) / ("zizmor.exe" if os.name == "nt" else "zizmor")
        if candidate.exists():
            return str(candidate)
    pytest.fail("zizmor is not installed: pip install -e '.[dev]'")


def test_zizmor_finds_nothing() -> None:
    """Pinned actions, no persisted credentials, least permissions, no template injection."""
    env = {k: v for k, v in os.environ.items() if k not in ("GH_TOKEN", "GITHUB_TOKEN", "ZIZMOR_GITHUB_TOKEN")}
    result = subprocess.run(
        [zizmor(), "--offline", "--no-progress", "--format", "json", str(ACTION), str(WORKFLOW)],
        capture_output=True, text=True, check=False, timeout=120, env=env,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert json.loads(result.stdout) == []


@pytest.mark.parametrize("path", [ACTION, WORKFLOW])
def test_actions_pinned_and_no_expressions_in_scripts(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    for where, step in steps_of(load(path)):
        if "uses" in step:
            assert PINNED.match(step["uses"]), f"{where}: {step['uses']} is not pinned to a commit SHA"
            line = next(line for line in text.splitlines() if step["uses"] in line)
            assert re.search(r"# v\d", line), f"{where}: name the pinned version in a comment: {line.strip()}"
            if step["uses"].startswith("actions/checkout@"):
                assert step["with"]["persist-credentials"] is False
        if "run" in step:
            assert "${{" not in step["run"], f"{where}: pass expressions through env:, not into the script"


def test_least_permissions() -> None:
    workflow = load(WORKFLOW)
    assert workflow["permissions"] == {}
    for name, job in workflow["jobs"].items():
        permissions = job["permissions"]
        assert permissions.get("contents") == "read", name
        writes = {scope for scope, level in permissions.items() if level == "write"}
        assert writes <= {"pull-requests", "issues"}, name
    assert workflow["jobs"]["plan"]["permissions"]["pull-requests"] == "write"
    assert workflow["jobs"]["apply"]["permissions"]["pull-requests"] == "read"


# ---------------------------------------------------------------------------- the action's interface


def test_action_inputs_reach_the_python() -> None:
    """Every input is handed to ``python -m reconciler.ci`` through env (or used by a step),
    and every ``INPUT_*`` the Python reads is passed."""
    action = load(ACTION)
    [run_step] = [s for _, s in steps_of(action) if s.get("id") == "run"]
    env = run_step["env"]
    for name in action["inputs"]:
        expression = f"${{{{ inputs.{name} }}}}"
        assert expression in ACTION.read_text(encoding="utf-8"), f"input {name} is not used"
        if name not in ("python-version", "install", "retention-days", "github-token"):
            assert env.get("INPUT_" + name.upper().replace("-", "_")) == expression, name
    assert env["GITHUB_TOKEN"] == "${{ inputs.github-token }}"
    source = (REPO / "reconciler" / "ci" / "action.py").read_text(encoding="utf-8")
    for read in set(re.findall(r'"(INPUT_[A-Z_]+)"', source)):
        assert read in env, f"action.py reads {read}, action.yml does not pass it"
    for output in action["outputs"]:
        assert action["outputs"][output]["value"] == f"${{{{ steps.run.outputs.{output} }}}}"
        assert f'"{output}"' in source, f"output {output} is never written"
    commands = re.findall(r"\w+", action["inputs"]["command"]["description"])
    assert commands == ["plan", "apply", "drift"]


def action_steps(job: str) -> list[dict[str, Any]]:
    steps = load(WORKFLOW)["jobs"][job]["steps"]
    return [s for s in steps if "your-org/reconciler@" in s.get("uses", "")]


def test_workflow_uses_the_action() -> None:
    workflow = load(WORKFLOW)
    inputs = set(load(ACTION)["inputs"])
    text = WORKFLOW.read_text(encoding="utf-8")
    for secret in ("M3TER_API_KEY", "M3TER_API_SECRET", "M3TER_ORG_ID"):
        assert f"secrets.{secret}" in text
    for job, command in (("plan", "plan"), ("apply", "apply"), ("drift", "drift")):
        [step] = action_steps(job)
        assert step["with"]["command"] == command
        assert set(step["with"]) <= inputs, f"job {job}: unknown inputs {set(step['with']) - inputs}"
        assert workflow["jobs"][job]["environment"] == "${{ matrix.environment }}"
        assert workflow["jobs"][job]["strategy"]["matrix"]["environment"] == ["staging", "production"]
    assert workflow["jobs"]["apply"]["strategy"] == {"max-parallel": 1, "fail-fast": True,
                                                     "matrix": {"environment": ["staging", "production"]}}
    for name, spec in workflow["jobs"].items():
        for _, step in steps_of({"jobs": {name: spec}}):
            for words, _ in reconciler_commands(step.get("run", "")):
                check_command(words, f"job {name}")


def test_pre_commit_hook() -> None:
    hooks = yaml.safe_load(HOOKS.read_text(encoding="utf-8"))
    [hook] = [h for h in hooks if h["id"] == "reconciler-validate"]
    assert hook["entry"] == "reconciler validate"
    assert hook["language"] == "python"
    assert re.search(hook["files"], "manifests/accounts.yaml")
    assert re.search(hook["files"], "x.yml")
    assert not re.search(hook["files"], "README.md")
    check_command(hook["entry"].split(), "pre-commit hook")


# ---------------------------------------------------------------------------- running the examples


def env_file(name: str) -> dict[str, str]:
    values: dict[str, str] = {}
    for line in (EXAMPLE / f"{name}.env").read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()
    return values


@pytest.mark.parametrize("environment", ["staging", "production"])
def test_github_workflow_runs(environment: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                              capsys: pytest.CaptureFixture[str]) -> None:
    """The example workflow's action steps, as the runner would run them for one
    environment: plan on a pull request (comment), apply on merge (pinned), drift at night."""
    monkeypatch.chdir(tmp_path)
    for name, value in env_file(environment).items():
        monkeypatch.setenv(name, value)
    paths = str(MANIFESTS)

    def inputs(job: str) -> dict[str, str]:
        [step] = action_steps(job)
        given = {k.replace("-", "_"): str(v) for k, v in step["with"].items() if k != "command"}
        assert given.pop("paths") == "manifests/"
        return {**given, "paths": paths}

    with running_github(FakeGitHub()) as github:
        action = Action(tmp_path, github)
        code, planned, log = action("plan", event="pull_request", pull=5, head="a" * 40, capsys=capsys,
                                    **inputs("plan"))
        assert code == 0 and planned["has-changes"] == "true", log
        [comment] = github.comments[5]
        assert planned["digest"] in comment["body"] and "northwind" in comment["body"]
        assert "Northwind Traders" not in comment["body"]  # CI is set: names are redacted
        github.merge(5, "c" * 40, "a" * 40)
        code, applied, log = action("apply", event="push", capsys=capsys, **inputs("apply"))
        assert code == 0 and applied["reviewed-digest"] == planned["digest"], log
        code, nightly, log = action("drift", event="schedule", capsys=capsys, **inputs("drift"))
        assert code == 0 and nightly["has-changes"] == "false", log

        # the variables made the organizations differ
        with LocalBackend(action.db) as org:
            config = org.get_singleton(kinds.get("organizationConfig"))
            accounts = {a["code"]: a for a in org.list(kinds.get("account"))}
        assert config["billPrefix"] == ("STG-INV-" if environment == "staging" else "INV-")
        assert accounts["northwind"]["emailAddress"] == f"billing@{os.environ['BILLING_CONTACT_DOMAIN']}"

        # someone changes the organization by hand: the nightly job reports drift
        with LocalBackend(action.db) as org:
            account = accounts["contoso"]
            body = {k: v for k, v in account.items() if k not in kinds.READ_ONLY_FIELDS}
            body.update(daysBeforeBillDue=7, currency="EUR", version=account["version"])
            org.update(kinds.get("account"), account["id"], body)
        code, drifted, log = action("drift", event="schedule", capsys=capsys, **inputs("drift"))
        assert code == 0 and drifted["has-changes"] == "true" and drifted["exitcode"] == "2", log
        assert "contoso" in Path(drifted["report-file"]).read_text(encoding="utf-8")


def gitlab_commands(job: str) -> list[tuple[list[str], str | None]]:
    spec = load(GITLAB)[job]
    found = []
    for line in spec["script"]:
        found.extend(reconciler_commands(line))
    return found


def test_gitlab_pipeline_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The GitLab example's commands against a local organization: plan on a merge request,
    apply pinned to the reviewed digest, drift."""
    monkeypatch.chdir(tmp_path)
    backend = f"local:{tmp_path / 'staging.sqlite'}"
    env = {"CI": "true", **env_file("staging")}
    ran: dict[str, Any] = {}

    def run_job(job: str, extra: dict[str, str]) -> list[int]:
        codes = []
        for words, redirect in gitlab_commands(job):
            check_command(words, f"gitlab job {job}")
            args = [str(MANIFESTS) if w == "$MANIFESTS" else w for w in words[1:]]
            args = [extra.get(w, w) for w in args]
            args = [backend if i and args[i - 1] == "--backend" else a for i, a in enumerate(args)]
            result = run_cli(*args, env=env)
            assert "Traceback" not in result.output
            if redirect:
                (tmp_path / redirect).write_text(result.stdout, encoding="utf-8")
            codes.append(result.code)
            ran[job] = result
        return codes

    assert run_job("plan", {}) == [0, 2]
    reviewed = json.loads((tmp_path / "plan.json").read_text(encoding="utf-8"))["digest"]
    assert reviewed in (tmp_path / "plan.md").read_text(encoding="utf-8")
    assert run_job("apply", {"$REVIEWED_DIGEST": reviewed}) == [2, 0]
    assert run_job("drift", {}) == [0]
    # a digest nobody reviewed: refused
    assert run_job("apply", {"$REVIEWED_DIGEST": "sha256:" + "0" * 64}) == [0, 1]
    assert "sha256:" + "0" * 64 in ran["apply"].stderr


def test_example_manifests_need_their_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("BILLING_CONTACT_DOMAIN", "ORG_CURRENCY", "ORG_TIMEZONE", "BILL_PREFIX", "PO_PREFIX"):
        monkeypatch.delenv(name, raising=False)
    missing = run_cli("validate", str(MANIFESTS), env={})
    assert missing.code == 1
    assert "BILLING_CONTACT_DOMAIN" in missing.stderr
    for environment in ("staging", "production"):
        ok = run_cli("validate", str(MANIFESTS), env=env_file(environment))
        assert ok.code == 0, ok.output
