"""Credentials never expand: ``${M3TER_API_SECRET}`` (or any *_SECRET, *_TOKEN, *_PASSWORD)
in a manifest is a located error, default or not; and as a second line of defence a
credential's value that reaches output by another route is masked on stdout and stderr."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import run_cli
from tests.test_e2e_local import write

SECRET = "s3cr3t-Value_with*markdown|chars"


@pytest.mark.parametrize(
    ("variable", "reference"),
    [
        ("M3TER_API_SECRET", "${M3TER_API_SECRET}"),
        ("M3TER_API_SECRET", "${M3TER_API_SECRET:-fallback}"),
        ("M3TER_API_KEY", "prefix-${M3TER_API_KEY}"),
        ("M3TER_API_TOKEN", "${M3TER_API_TOKEN}"),
        ("GITHUB_TOKEN", "${GITHUB_TOKEN}"),
        ("db_password", "${db_password}"),
        ("Stripe_Secret", "${Stripe_Secret:-x}"),
    ],
)
@pytest.mark.parametrize("command", ["validate", "plan"])
def test_credential_variable_is_never_expanded(
    tmp_path: Path, local_backend: str, command: str, variable: str, reference: str
) -> None:
    path = write(tmp_path, "m/a.yaml", f'accounts:\n  - code: acme\n    name: "{reference}"\n'
                                       "    emailAddress: a@x.example\n")
    args = [command, str(tmp_path / "m")] + (["--backend", local_backend] if command == "plan" else [])
    result = run_cli(*args, env={variable: SECRET})
    assert result.code == 1
    assert f"{path}:3:11: error: ${{{variable}}}: {variable} is a credential variable and is never expanded" \
        in result.stderr
    assert SECRET not in result.output
    assert "(secret " not in result.output  # refused before any value could be printed at all


def test_ordinary_variables_still_expand(tmp_path: Path, local_backend: str) -> None:
    write(tmp_path, "m/a.yaml", 'accounts:\n  - {code: acme, name: "${ACCOUNT_NAME}", emailAddress: a@x.example}\n')
    result = run_cli("plan", str(tmp_path / "m"), "--backend", local_backend, "--no-redact-pii", "--format", "json",
                     env={"ACCOUNT_NAME": "Acme Staging"})
    assert result.code == 0, result.output
    assert json.loads(result.stdout)["changes"][0]["body"]["name"] == "Acme Staging"


@pytest.mark.parametrize("fmt", ["text", "json", "markdown"])
def test_a_secret_reaching_output_another_way_is_masked(tmp_path: Path, local_backend: str, fmt: str) -> None:
    # The same value typed into the manifest (not expanded from the variable): nothing in the
    # loader can know it is secret, so the output layer masks it.
    write(tmp_path, "m/a.yaml", f'accounts:\n  - {{code: acme, name: "{SECRET}", emailAddress: a@x.example}}\n')
    result = run_cli("plan", str(tmp_path / "m"), "--backend", local_backend, "--no-redact-pii", "--format", fmt,
                     env={"MY_TOKEN": SECRET})
    assert result.code == 0, result.output
    assert SECRET not in result.output
    assert "(secret MY_TOKEN)" in result.stdout
    if fmt == "json":
        doc = json.loads(result.stdout)  # still one valid JSON document
        assert doc["changes"][0]["body"]["name"] == "(secret MY_TOKEN)"
    if fmt == "markdown":
        assert "s3cr3t" not in result.stdout  # nor its markdown-escaped spelling


def test_masking_covers_stderr(tmp_path: Path) -> None:
    write(tmp_path, "m/a.yaml", f'accounts:\n  - {{code: acme, name: 12, emailAddress: "{SECRET}"}}\n')
    result = run_cli("validate", str(tmp_path / "m"), env={"DEPLOY_PASSWORD": SECRET})
    assert result.code == 1
    assert SECRET not in result.output
    assert "(secret DEPLOY_PASSWORD)" in result.stderr


def test_short_values_are_not_masked(tmp_path: Path, local_backend: str) -> None:
    """Masking ``true`` or ``1`` wherever it appears would corrupt plans and protect nothing."""
    write(tmp_path, "m/a.yaml", 'accounts:\n  - {code: acme, name: "Acme", emailAddress: a@x.example}\n')
    result = run_cli("plan", str(tmp_path / "m"), "--backend", local_backend, "--no-redact-pii",
                     env={"SHORT_TOKEN": "Acme"})
    assert result.code == 0
    assert 'name: "Acme"' in result.stdout


def test_saved_plan_keeps_exact_values_so_apply_sends_them(tmp_path: Path, local_backend: str) -> None:
    """Saved plans are the documented exception: apply sends their bodies, so a masked body
    would write the mask into the organization. Output while applying stays masked."""
    write(tmp_path, "m/a.yaml", f'accounts:\n  - {{code: acme, name: "{SECRET}", emailAddress: a@x.example}}\n')
    saved = tmp_path / "plan.json"
    env = {"MY_TOKEN": SECRET}
    planned = run_cli("plan", str(tmp_path / "m"), "--backend", local_backend, "--out", str(saved), env=env)
    assert planned.code == 0 and SECRET not in planned.output
    assert SECRET in saved.read_text(encoding="utf-8")
    applied = run_cli("apply", "--plan", str(saved), "--backend", local_backend, "--auto-approve",
                      "--no-redact-pii", env=env)
    assert applied.code == 0, applied.output
    assert SECRET not in applied.output
    again = run_cli("plan", str(tmp_path / "m"), "--backend", local_backend, "--format", "json",
                       "--detailed-exitcode")
    assert again.code == 0, again.output  # live now holds the exact value: nothing to change


def test_a_long_secret_cut_short_for_display_is_masked_too(tmp_path: Path, local_backend: str) -> None:
    token = "eyJhbGciOiJSUzI1NiJ9." + "x" * 150  # longer than the 120 characters a value shows
    write(tmp_path, "m/a.yaml", f'accounts:\n  - {{code: acme, name: "{token}", emailAddress: a@x.example}}\n')
    result = run_cli("plan", str(tmp_path / "m"), "--backend", local_backend, "--no-redact-pii",
                     env={"M3TER_API_TOKEN": token, "M3TER_ORG_ID": "org-1"})
    assert result.code == 0, result.output
    assert "eyJhbGciOiJSUzI1NiJ9" not in result.output
    assert '+ name: "(secret M3TER_API_TOKEN)…' in result.stdout
