"""``reconciler validate`` on malformed input: exit 1, ``FILE:LINE:`` of the culprit, a clear
message, never a traceback. A few cases run as a real subprocess; the rest in-process."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tests.conftest import EXAMPLES, REPO, CliResult, run_cli

ORG = "organization:\n  currency: USD\n"


def write(tmp_path: Path, name: str, text: str | bytes) -> Path:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def validate(*paths: Path | str, env: dict[str, str] | None = None, backend: str | None = None) -> CliResult:
    args = ["validate", *(str(p) for p in paths)]
    if backend:
        args += ["--backend", backend]
    return run_cli(*args, env=env)


def assert_error(result: CliResult, file: Path, line: int, text: str) -> None:
    """Exit 1, the message at FILE:LINE:, and no traceback anywhere."""
    assert result.code == 1, result.output
    assert "Traceback" not in result.output
    assert result.stdout == "", "diagnostics belong on stderr"
    matching = [ln for ln in result.stderr.splitlines() if ln.startswith(f"{file}:{line}:")]
    assert matching, f"nothing at {file}:{line}:\n{result.stderr}"
    assert any(text in ln for ln in matching), f"{text!r} not at {file}:{line}:\n{result.stderr}"
    assert result.stderr.splitlines()[-1].startswith("Invalid:")


@pytest.fixture(autouse=True)
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """``validate`` without --backend works offline (conftest points RECONCILER_BACKEND at a
    local org for other commands; these tests check the offline behaviour)."""
    monkeypatch.delenv("RECONCILER_BACKEND", raising=False)


def run_subprocess(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "RECONCILER_BACKEND"}
    env["PYTHONPATH"] = str(REPO)
    return subprocess.run(
        [sys.executable, "-m", "reconciler", "validate", *args],
        capture_output=True, text=True, env=env, cwd=cwd or REPO, timeout=120, check=False,
    )


# --- subprocess: the real entry point -------------------------------------------------------------


def test_subprocess_yaml_syntax_error(tmp_path: Path) -> None:
    path = write(tmp_path, "a.yaml", """
        currencies:
          - code: EUR
            name: [Euro
        """)
    proc = run_subprocess(str(path))
    assert proc.returncode == 1
    assert f"{path}:4:" in proc.stderr or f"{path}:3:" in proc.stderr
    assert "YAML syntax error" in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout


def test_subprocess_python_tag_refused_and_not_executed(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    path = write(tmp_path, "a.yaml", f"""
        organization:
          currency: USD
          billPrefix: !!python/object/apply:os.system ["touch {marker}"]
        """)
    proc = run_subprocess(str(path))
    assert proc.returncode == 1
    assert f"{path}:3:" in proc.stderr
    assert "unsupported YAML tag '!!python/object/apply:os.system'" in proc.stderr
    assert not marker.exists()
    assert "Traceback" not in proc.stderr


def test_subprocess_examples_are_valid() -> None:
    proc = run_subprocess("examples/org")
    assert proc.returncode == 0, proc.stderr
    assert "warning:" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("Valid:")
    assert proc.stdout == ""


# --- in-process: one malformed input each ---------------------------------------------------------


def test_tab_indentation(tmp_path: Path) -> None:
    path = write(tmp_path, "a.yaml", "organization:\n\tcurrency: USD\n")
    assert_error(validate(path), path, 2, "tab")


def test_duplicate_keys(tmp_path: Path) -> None:
    path = write(tmp_path, "a.yaml", """
        organization:
          currency: USD
          daysBeforeBillDue: 30
          currency: EUR
        """)
    assert_error(validate(path), path, 4, "duplicate key 'currency'")


def test_duplicate_codes_across_files_name_both_places(tmp_path: Path) -> None:
    first = write(tmp_path, "a.yaml", """
        currencies:
          - {code: EUR, name: Euro}
        """)
    second = write(tmp_path, "b.yaml", """
        # another file
        currencies:
          - {code: GBP, name: Pound}
          - {code: EUR, name: Euro again}
        """)
    result = validate(tmp_path)
    assert_error(result, second, 4, "duplicate currency code 'EUR'")
    assert f"{first}:2:" in result.stderr


def test_unknown_field_typo_suggests(tmp_path: Path) -> None:
    path = write(tmp_path, "a.yaml", """
        accounts:
          - code: acme
            name: Acme
            emailAdress: ap@acme.example.com
        """)
    result = validate(path)
    assert_error(result, path, 4, "emailAdress: unknown field (did you mean 'emailAddress'?)")


def test_string_for_int(tmp_path: Path) -> None:
    path = write(tmp_path, "a.yaml", """
        organization:
          daysBeforeBillDue: "30"
        """)
    assert_error(validate(path), path, 2, "daysBeforeBillDue: must be an integer (got string '30')")


def test_int_for_string(tmp_path: Path) -> None:
    path = write(tmp_path, "a.yaml", """
        currencies:
          - code: EUR
            name: 42
        """)
    assert_error(validate(path), path, 3, "currencies[0] (code 'EUR'): name: must be a string")


def test_days_before_bill_due_zero(tmp_path: Path) -> None:
    path = write(tmp_path, "a.yaml", """
        accounts:
          - code: a1
            name: A
            emailAddress: a@example.com
          - code: acme
            name: Acme
            emailAddress: ap@acme.example.com
            daysBeforeBillDue: 0
        """)
    assert_error(validate(path), path, 8, "accounts[1] (code 'acme'): daysBeforeBillDue: must be greater than 0")


def test_max_decimal_places_six(tmp_path: Path) -> None:
    path = write(tmp_path, "a.yaml", """
        currencies:
          - code: EUR
            name: Euro
            maxDecimalPlaces: 6
        """)
    assert_error(validate(path), path, 4, "maxDecimalPlaces: must be less than or equal to 5")


def test_scheduled_bill_offset_24(tmp_path: Path) -> None:
    path = write(tmp_path, "a.yaml", """
        organization:
          scheduledBillInterval: 24
          scheduledBillOffset: 24
        """)
    assert_error(validate(path), path, 3, "scheduledBillOffset: must be less than or equal to 23")


def test_scheduled_bill_offset_without_daily_interval(tmp_path: Path) -> None:
    path = write(tmp_path, "a.yaml", """
        organization:
          scheduledBillInterval: 12
          scheduledBillOffset: 3
        """)
    assert_error(validate(path), path, 3, "can only be set with a scheduledBillInterval of 24")


def test_scheduled_bill_interval_five(tmp_path: Path) -> None:
    path = write(tmp_path, "a.yaml", """
        organization:
          scheduledBillInterval: 5
        """)
    assert_error(validate(path), path, 2, "scheduledBillInterval: must be one of 0, 0.25, 0.5")


def test_invalid_picklist_code(tmp_path: Path) -> None:
    path = write(tmp_path, "a.yaml", """
        creditReasons:
          - code: "1abc"
            name: Starts with a digit
        """)
    assert_error(validate(path), path, 2, "code: must start with a letter")


def test_account_code_leading_space(tmp_path: Path) -> None:
    path = write(tmp_path, "a.yaml", """
        accounts:
          - code: " acme"
            name: Acme
            emailAddress: ap@acme.example.com
        """)
    assert_error(validate(path), path, 2, "code: must not start or end with whitespace")


def test_codes_ending_in_a_newline_are_refused(tmp_path: Path) -> None:
    """Regression: m3ter's Java ``matches()`` refuses a code ending in a newline, which
    Python's ``$`` used to let through; each code names its own line."""
    path = write(tmp_path, "a.yaml", """
        creditReasons:
          - code: "goodwill\\n"
            name: Goodwill
        accounts:
          - code: "acme\\n"
            name: Acme
            emailAddress: ap@acme.example.com
        """)
    result = validate(path)
    assert_error(result, path, 2, "code: must start with a letter")
    assert_error(result, path, 5, "code: must not start or end with whitespace")
    assert "\\n" in result.stderr  # the value is shown escaped, never as a raw line break


def test_account_code_control_character(tmp_path: Path) -> None:
    path = write(tmp_path, "a.yaml", """
        accounts:
          - name: Acme
            emailAddress: ap@acme.example.com
            code: "ac\\x01me"
        """)
    assert_error(validate(path), path, 4, "control characters")


def test_name_too_long(tmp_path: Path) -> None:
    path = write(tmp_path, "a.yaml", f"""
        debitReasons:
          - code: LATE
            name: {"x" * 201}
        """)
    assert_error(validate(path), path, 3, "name: must be at most 200 characters")


def test_broken_parent_is_warning_offline(tmp_path: Path) -> None:
    path = write(tmp_path, "a.yaml", """
        accounts:
          - code: child
            name: Child
            emailAddress: child@example.com
            parent: ghost
        """)
    result = validate(path)
    assert result.code == 0, result.output
    assert f"{path}:5:" in result.stderr
    assert "parent account 'ghost' is not declared in these manifests; it must already exist" in result.stderr
    assert "warning:" in result.stderr


def test_broken_parent_is_error_against_fresh_local_org(tmp_path: Path, local_backend: str) -> None:
    """A fresh local organization holds only USD: a parent nobody declares does not exist."""
    path = write(tmp_path, "a.yaml", """
        accounts:
          - code: child
            name: Child
            emailAddress: child@example.com
            currency: USD
            parent: ghost
        """)
    result = validate(path, backend=local_backend)
    assert_error(result, path, 6, "parent account 'ghost' does not exist")
    assert "'USD'" not in result.stderr  # USD exists in every fresh organization


def test_parent_cycle(tmp_path: Path) -> None:
    path = write(tmp_path, "a.yaml", """
        accounts:
          - {code: a, name: A, emailAddress: a@example.com, parent: b}
          - {code: b, name: B, emailAddress: b@example.com, parent: c}
          - {code: c, name: C, emailAddress: c@example.com, parent: a}
        """)
    result = validate(path)
    assert_error(result, path, 2, "cycle 'a' -> 'b' -> 'c' -> 'a'")


def test_self_parent(tmp_path: Path) -> None:
    path = write(tmp_path, "a.yaml", """
        accounts:
          - code: loop
            name: Loop
            emailAddress: loop@example.com
            parent: loop
        """)
    assert_error(validate(path), path, 5, "cannot be its own parent")


def test_eleven_custom_fields(tmp_path: Path) -> None:
    names = "\n".join(f"    field{i}: {i}" for i in range(11))
    path = write(tmp_path, "a.yaml", "customFields:\n  organization:\n    a: 1\n  account:\n" + names + "\n")
    assert_error(validate(path), path, 4, "has 11 custom fields; m3ter allows at most 10")


def test_bad_timezone(tmp_path: Path) -> None:
    path = write(tmp_path, "a.yaml", """
        organization:
          timezone: Europe/Atlantis
        """)
    assert_error(validate(path), path, 2, "timezone: is not an IANA timezone")


def test_a_timezone_region_directory_is_refused_not_crashed_on(tmp_path: Path) -> None:
    # zoneinfo raises IsADirectoryError for a region such as "America" (tzdata holds a folder)
    path = write(tmp_path, "a.yaml", """
        organization:
          timezone: America
        """)
    assert_error(validate(path), path, 2, "timezone: is not an IANA timezone")


def test_bad_date(tmp_path: Path) -> None:
    path = write(tmp_path, "a.yaml", """
        organization:
          yearEpoch: 2024-01-01
          monthEpoch: 2024-02-30
        """)
    assert_error(validate(path), path, 3, "monthEpoch: must be an ISO date")


def test_bad_email(tmp_path: Path) -> None:
    path = write(tmp_path, "a.yaml", """
        accounts:
          - code: acme
            name: Acme
            emailAddress: "ap at acme.example.com"
          - code: beta
            name: Beta
            emailAddress: billing@beta..example.com
        """)
    result = validate(path)
    assert_error(result, path, 4, "emailAddress: is not a valid e-mail address")
    assert_error(result, path, 7, "emailAddress: is not a valid e-mail address")


def test_top_level_list(tmp_path: Path) -> None:
    path = write(tmp_path, "a.yaml", """
        - code: acme
          name: Acme
        """)
    assert_error(validate(path), path, 1, "must be a mapping with top-level keys")


def test_unknown_top_level_key(tmp_path: Path) -> None:
    path = write(tmp_path, "a.yaml", """
        currencies: []
        acounts: []
        """)
    assert_error(validate(path), path, 2, "unknown top-level key 'acounts' (did you mean 'accounts'?)")


def test_non_utf8_bytes(tmp_path: Path) -> None:
    path = write(tmp_path, "a.yaml", b"currencies:\n  - code: EUR\n    name: Caf\xe9\n")
    assert_error(validate(path), path, 3, "not valid UTF-8")


def test_unset_variable(tmp_path: Path) -> None:
    path = write(tmp_path, "a.yaml", """
        organization:
          currency: USD
          billPrefix: "${RECONCILER_TEST_UNSET_PREFIX}-"
        """)
    os.environ.pop("RECONCILER_TEST_UNSET_PREFIX", None)
    assert_error(validate(path), path, 3, "environment variable RECONCILER_TEST_UNSET_PREFIX is not set")


def test_alias_bomb_is_refused_quickly(tmp_path: Path) -> None:
    lines = ["a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for i in range(1, 10):
        prev = f"*a{i - 1}"
        lines.append(f"a{i}: &a{i} [{', '.join([prev] * 9)}]")
    lines.append("organization:\n  billPrefix: *a9")
    path = write(tmp_path, "a.yaml", "\n".join(lines) + "\n")
    started = time.monotonic()
    result = validate(path)
    assert time.monotonic() - started < 10  # a safety bound, not a benchmark
    assert result.code == 1
    assert "alias expansion too large" in result.stderr
    assert "Traceback" not in result.output


def test_organization_declared_twice(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", ORG)
    second = write(tmp_path, "b.yaml", "# staging copy\n" + ORG)
    result = validate(tmp_path)
    assert_error(result, second, 2, "organization is declared twice")
    assert f"{tmp_path / 'a.yaml'}:1:" in result.stderr


def test_settings_unknown_key(tmp_path: Path) -> None:
    path = write(tmp_path, "a.yaml", """
        settings:
          prune:
            accounts: false
          pruning: true
        """)
    assert_error(validate(path), path, 4, "settings: pruning: unknown field (did you mean 'prune'?)")


def test_prune_value_invalid(tmp_path: Path) -> None:
    path = write(tmp_path, "a.yaml", """
        settings:
          prune:
            currencies: archive
            accounts: archive
        """)
    assert_error(validate(path), path, 4, "settings: prune.accounts: must be")


def test_account_missing_email(tmp_path: Path) -> None:
    path = write(tmp_path, "a.yaml", """
        accounts:
          - code: acme
            name: Acme
        """)
    assert_error(validate(path), path, 2, "accounts[0] (code 'acme'): emailAddress: is required")


def test_credit_application_order_bad_value(tmp_path: Path) -> None:
    path = write(tmp_path, "a.yaml", """
        organization:
          creditApplicationOrder: [PREPAYMENT, CASH]
        """)
    assert_error(validate(path), path, 2, "creditApplicationOrder[1]: must be 'PREPAYMENT' or 'BALANCE'")


def test_credit_application_order_repeated(tmp_path: Path) -> None:
    path = write(tmp_path, "a.yaml", """
        accounts:
          - code: acme
            name: Acme
            emailAddress: ap@acme.example.com
            creditApplicationOrder: [BALANCE, BALANCE]
        """)
    assert_error(validate(path), path, 5, "lists PREPAYMENT or BALANCE twice")


def test_undefined_alias(tmp_path: Path) -> None:
    path = write(tmp_path, "a.yaml", """
        organization:
          currency: *nowhere
        """)
    assert_error(validate(path), path, 2, "undefined alias *nowhere")


def test_malformed_variable_reference(tmp_path: Path) -> None:
    path = write(tmp_path, "a.yaml", """
        organization:
          billPrefix: "${1BAD}"
        """)
    assert_error(validate(path), path, 2, "malformed variable reference")


def test_currency_conversion_multiplier_not_positive(tmp_path: Path) -> None:
    path = write(tmp_path, "a.yaml", """
        organization:
          currencyConversions:
            - {from: EUR, to: USD, multiplier: 1.1}
            - {from: GBP, to: USD, multiplier: -1}
        """)
    assert_error(validate(path), path, 4, "currencyConversions[1].multiplier: must be greater than 0")


def test_every_problem_reported_at_once(tmp_path: Path) -> None:
    path = write(tmp_path, "a.yaml", """
        organization:
          daysBeforeBillDue: 0
          timezone: Mars/Olympus
        currencies:
          - {code: "9X", name: Nine}
        """)
    result = validate(path)
    assert result.code == 1
    assert "Invalid: 3 errors" in result.stderr


# --- valid input, warnings ------------------------------------------------------------------------


def test_empty_file_is_valid(tmp_path: Path) -> None:
    path = write(tmp_path, "empty.yaml", "")
    result = validate(path)
    assert result.code == 0, result.output
    assert result.stderr.strip().splitlines()[-1] == "Valid: 0 objects in 1 file, 0 warnings."


def test_variable_default_is_used(tmp_path: Path) -> None:
    path = write(tmp_path, "a.yaml", """
        currencies:
          - code: "${RECONCILER_TEST_CODE:-EUR}"
            name: Euro
        """)
    os.environ.pop("RECONCILER_TEST_CODE", None)
    result = validate(path)
    assert result.code == 0, result.output
    result = validate(path, env={"RECONCILER_TEST_CODE": "1bad"})
    assert_error(result, path, 2, "code: must start with a letter")


def test_etc_gmt_warning_is_not_fatal(tmp_path: Path) -> None:
    path = write(tmp_path, "a.yaml", """
        organization:
          timezone: Etc/GMT-1
        """)
    result = validate(path)
    assert result.code == 0, result.output
    assert f"{path}:2:13: warning: organization: timezone: Etc/GMT-1 is UTC+01:00" in result.stderr
    assert result.stderr.strip().splitlines()[-1] == "Valid: 1 object in 1 file, 1 warning."


def test_warnings_printed_after_errors_and_summary_last(tmp_path: Path) -> None:
    path = write(tmp_path, "a.yaml", """
        organization:
          timezone: Etc/GMT+5
          daysBeforeBillDue: -1
        """)
    result = validate(path)
    lines = result.stderr.strip().splitlines()
    assert result.code == 1
    assert ": error:" in lines[0]
    assert ": warning:" in lines[1]
    assert lines[-1] == "Invalid: 1 error, 1 warning in 1 file."


def test_examples_validate_in_process() -> None:
    result = validate(EXAMPLES)
    assert result.code == 0, result.output
    assert "warning:" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("Valid:")
