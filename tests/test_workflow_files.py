"""The shipped CI workflow, pre-commit hook and staging/production example stay true to the CLI:
they parse, every ``reconciler`` command line they hold names a real subcommand and real
options, and the workflow's commands do what the workflow expects against the local backend."""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator
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

if "export" not in cli.commands:  # until cli.py wires it in; a no-op afterwards
    register(cli)

WORKFLOW = REPO / "examples" / "ci" / "github-actions.yml"
HOOKS = REPO / ".pre-commit-hooks.yaml"
EXAMPLE = REPO / "examples" / "ci" / "staging-production"
MANIFESTS = EXAMPLE / "manifests"
DOCS = [REPO / "docs" / "workflow.md", REPO / "docs" / "export.md"]
SHELL_OPERATORS = {">", ">>", "<", "|", "||", "&&", ";", "2>", "2>&1", "&"}


def load_workflow() -> dict[Any, Any]:
    doc = yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))
    assert isinstance(doc, dict)
    return doc


def run_scripts(workflow: dict[Any, Any], job: str | None = None) -> Iterator[tuple[str, str]]:
    """(job name, run script) for every ``run:`` step, in order."""
    for name, spec in workflow["jobs"].items():
        if job is not None and name != job:
            continue
        for step in spec.get("steps", []):
            if "run" in step:
                yield name, step["run"]


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


# ---------------------------------------------------------------------------- static checks


def test_files_parse_as_yaml() -> None:
    workflow = load_workflow()
    triggers = workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` as true
    assert isinstance(triggers, dict)
    assert {"pull_request", "push", "schedule"} <= set(triggers)
    assert set(workflow["jobs"]) >= {"plan", "apply", "drift"}
    hooks = yaml.safe_load(HOOKS.read_text(encoding="utf-8"))
    [hook] = [h for h in hooks if h["id"] == "reconciler-validate"]
    assert hook["entry"] == "reconciler validate"
    assert hook["language"] == "python"
    assert re.search(hook["files"], "manifests/accounts.yaml")
    assert re.search(hook["files"], "x.yml")
    assert not re.search(hook["files"], "README.md")
    check_command(hook["entry"].split(), "pre-commit hook")


def test_workflow_commands_exist() -> None:
    seen: set[str] = set()
    for job, script in run_scripts(load_workflow()):
        for words, _redirect in reconciler_commands(script):
            check_command(words, f"job {job}")
            seen.add(words[1])
    assert {"validate", "plan", "apply", "drift"} <= seen


def test_workflow_uses_secrets_and_saved_plans() -> None:
    workflow = load_workflow()
    text = WORKFLOW.read_text(encoding="utf-8")
    for secret in ("M3TER_API_KEY", "M3TER_API_SECRET", "M3TER_ORG_ID"):
        assert f"secrets.{secret}" in text
    apply_cmds = [w for _, s in run_scripts(workflow, "apply") for w, _ in reconciler_commands(s)]
    assert [w[1] for w in apply_cmds if w[1] != "validate"] == ["plan", "apply"]
    plan_words, apply_words = apply_cmds[-2], apply_cmds[-1]
    assert "--out" in plan_words and "--plan" in apply_words and "--auto-approve" in apply_words
    assert plan_words[plan_words.index("--out") + 1] == apply_words[apply_words.index("--plan") + 1]
    for job in ("plan", "apply", "drift"):
        assert workflow["jobs"][job]["environment"] == "${{ matrix.environment }}"
        assert workflow["jobs"][job]["strategy"]["matrix"]["environment"] == ["staging", "production"]
    assert "gh pr comment" in text


def test_documented_commands_exist() -> None:
    for doc in DOCS:
        assert doc.exists(), doc
        in_block = False
        for n, line in enumerate(doc.read_text(encoding="utf-8").splitlines(), 1):
            if line.startswith("```"):
                in_block = not in_block
                continue
            if in_block and line.strip().startswith("reconciler ") and "..." not in line and "[" not in line:
                for words, _ in reconciler_commands(line.strip()):
                    check_command(words, f"{doc.name}:{n}")


# ---------------------------------------------------------------------------- running the workflow


def env_file(name: str) -> dict[str, str]:
    values: dict[str, str] = {}
    for line in (EXAMPLE / f"{name}.env").read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()
    return values


def substitute(words: list[str], backend: str) -> list[str]:
    out = [str(MANIFESTS) if w in ("$MANIFESTS", "manifests/") else w for w in words]
    for i, word in enumerate(out):
        if word == "--backend":
            out[i + 1] = backend
    return out


def run_job(job: str, backend: str, env: dict[str, str], cwd: Path) -> list[tuple[list[str], int, str]]:
    """Run the ``reconciler`` commands of one workflow job in order, like the runner would
    (stdout redirected where the script redirects it); returns (words, exit code, stdout)."""
    results = []
    for _, script in run_scripts(load_workflow(), job):
        for words, redirect in reconciler_commands(script):
            args = substitute(words, backend)[1:]
            result = run_cli(*args, env=env)
            assert result.code in (0, 2), f"{' '.join(args)}:\n{result.output}"
            assert "Traceback" not in result.output
            if redirect:
                (cwd / redirect).write_text(result.stdout, encoding="utf-8")
            results.append((words, result.code, result.stdout))
    return results


@pytest.mark.parametrize("environment", ["staging", "production"])
def test_workflow_runs_against_local_backend(
    environment: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    backend = f"local:{tmp_path / (environment + '.sqlite')}"
    env = {"CI": "true", **env_file(environment)}

    # pull request: validate, plan (markdown to plan.md, saved plan.json), changes pending
    pr = run_job("plan", backend, env, tmp_path)
    assert [w[1] for w, _, _ in pr] == ["validate", "plan"]
    assert pr[-1][1] == 2
    plan_md = (tmp_path / "plan.md").read_text(encoding="utf-8")
    assert plan_md.strip() and "northwind" in plan_md
    assert "Northwind Traders" not in plan_md  # CI is set: names are redacted
    assert (tmp_path / "plan.json").exists()

    # push to main: plan again, apply exactly that saved plan
    (tmp_path / "plan.json").unlink()
    merged = run_job("apply", backend, env, tmp_path)
    assert [w[1] for w, _, _ in merged] == ["validate", "plan", "apply"]
    assert merged[1][1] == 2 and merged[2][1] == 0

    # afterwards: nothing to plan, nightly drift in sync
    again = run_cli("plan", str(MANIFESTS), "--backend", backend, "--detailed-exitcode", env=env)
    assert again.code == 0, again.output
    nightly = run_job("drift", backend, env, tmp_path)
    assert [(w[1], code) for w, code, _ in nightly] == [("drift", 0)]

    # the variables made the organizations differ
    with LocalBackend(tmp_path / f"{environment}.sqlite") as org:
        config = org.get_singleton(kinds.get("organizationConfig"))
        accounts = {a["code"]: a for a in org.list(kinds.get("account"))}
    assert config["billPrefix"] == ("STG-INV-" if environment == "staging" else "INV-")
    assert config["currency"] == "GBP"
    assert accounts["northwind"]["emailAddress"] == f"billing@{env['BILLING_CONTACT_DOMAIN']}"
    assert accounts["northwind-de"]["purchaseOrderNumber"] == (
        "TEST-PO-1002" if environment == "staging" else "PO-1002"
    )

    # someone changes the organization by hand: the nightly job reports drift (exit 2)
    with LocalBackend(tmp_path / f"{environment}.sqlite") as org:
        account = accounts["contoso"]
        body = {k: v for k, v in account.items() if k not in kinds.READ_ONLY_FIELDS}
        body.update(daysBeforeBillDue=7, currency="EUR", version=account["version"])
        org.update(kinds.get("account"), account["id"], body)
    drifted = run_job("drift", backend, env, tmp_path)
    assert drifted[0][1] == 2
    drift_md = (tmp_path / "drift.md").read_text(encoding="utf-8")
    assert "contoso" in drift_md


def test_example_manifests_need_their_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("BILLING_CONTACT_DOMAIN", "ORG_CURRENCY", "ORG_TIMEZONE", "BILL_PREFIX", "PO_PREFIX"):
        monkeypatch.delenv(name, raising=False)
    missing = run_cli("validate", str(MANIFESTS), env={})
    assert missing.code == 1
    assert "BILLING_CONTACT_DOMAIN" in missing.stderr
    for environment in ("staging", "production"):
        ok = run_cli("validate", str(MANIFESTS), env=env_file(environment))
        assert ok.code == 0, ok.output
