"""Every malformed input the foundation rejects is rejected by ``plan`` and ``apply`` too:
exit 1, FILE:LINE: and a message, no traceback, and nothing written (the organization's
database is not even created)."""

from __future__ import annotations

import sqlite3
import textwrap
from pathlib import Path

import pytest

from tests.conftest import run_cli

ACCOUNT = "accounts:\n  - code: acme\n    name: Acme\n    emailAddress: billing@acme.example\n"

# name -> (file text or bytes, line of the culprit, text in the message)
CASES: dict[str, tuple[str | bytes, int, str]] = {
    "yaml syntax": ("currencies:\n  - code: EUR\n    name: [Euro\n", 4, "YAML"),
    "tab indentation": ("currencies:\n\t- code: EUR\n", 2, "tab"),
    "duplicate key": ("currencies:\n  - code: EUR\n    name: Euro\n    name: Euro again\n", 4, "name"),
    "unknown field": (ACCOUNT + "    purchaseOrdreNumber: PO-1\n", 5, "purchaseOrdreNumber"),
    "string for int": (ACCOUNT + "    daysBeforeBillDue: thirty\n", 5, "daysBeforeBillDue"),
    "int for string": ("currencies:\n  - code: EUR\n    name: 42\n", 3, "name"),
    "out of range": (ACCOUNT + "    daysBeforeBillDue: 0\n", 5, "daysBeforeBillDue"),
    "decimal places": ("currencies:\n  - {code: EUR, name: Euro, maxDecimalPlaces: 6}\n", 2, "maxDecimalPlaces"),
    "bill interval": ("organization:\n  scheduledBillInterval: 5\n", 2, "scheduledBillInterval"),
    "picklist code": ("creditReasons:\n  - {code: 1abc, name: One}\n", 2, "code"),
    "account code": ("accounts:\n  - {code: ' acme', name: Acme, emailAddress: a@acme.example}\n", 2, "code"),
    "parent cycle": (
        "accounts:\n  - {code: a, name: A, emailAddress: a@x.example, parent: b}\n"
        "  - {code: b, name: B, emailAddress: b@x.example, parent: a}\n",
        2,
        "cycle",
    ),
    "custom fields": ("customFields:\n  account:\n" + "".join(f"    f{i}: {i}\n" for i in range(11)), 2, "at most 10"),
    "timezone": ("organization:\n  timezone: Mars/Olympus\n", 2, "timezone"),
    "date": (ACCOUNT + "    billEpoch: 2024-02-30\n", 5, "billEpoch"),
    "e-mail": ("accounts:\n  - {code: x, name: X, emailAddress: not-an-email}\n", 2, "emailAddress"),
    "top-level list": ("- currencies: []\n", 1, "mapping"),
    "python tag": ("currencies: !!python/object/apply:os.system ['touch /tmp/reconciler-pwned']\n", 1, "tag"),
    "unset variable": (
        "accounts:\n  - {code: x, name: X, emailAddress: '${UNSET_RECONCILER_VAR}@x.example'}\n",
        2,
        "UNSET_RECONCILER_VAR",
    ),
    "unknown top-level key": ("acounts: []\n", 1, "acounts"),
    "missing e-mail": ("accounts:\n  - {code: x, name: X}\n", 2, "emailAddress"),
    "credit order": ("organization:\n  creditApplicationOrder: [PREPAYMENT, CASH]\n", 2, "creditApplicationOrder"),
    "prune value": ("settings:\n  prune: {accounts: archive}\n", 2, "accounts"),
    "non-utf8": (b"currencies:\n  - code: EUR\n    name: \xff\xfe\n", 3, "UTF-8"),
}


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("command", ["plan", "apply"])
def test_bad_input_rejected_and_nothing_written(tmp_path: Path, command: str, name: str) -> None:
    text, line, message = CASES[name]
    path = tmp_path / "m" / "bad.yaml"
    path.parent.mkdir()
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(textwrap.dedent(text), encoding="utf-8")
    db = tmp_path / "org.sqlite"
    args = [command, str(path.parent), "--backend", f"local:{db}"]
    if command == "apply":
        args.append("--auto-approve")
    result = run_cli(*args)
    assert result.code == 1, result.output
    assert "Traceback" not in result.output
    assert result.stdout == ""
    at_line = [ln for ln in result.stderr.splitlines() if ln.startswith(f"{path}:{line}:")]
    assert at_line, result.stderr
    assert any(message.lower() in ln.lower() for ln in at_line), result.stderr
    assert not db.exists(), "bad input must not create or touch the organization"


def test_bad_input_leaves_an_existing_organization_untouched(tmp_path: Path) -> None:
    good = tmp_path / "good"
    good.mkdir()
    (good / "a.yaml").write_text(ACCOUNT, encoding="utf-8")
    backend = f"local:{tmp_path / 'org.sqlite'}"
    assert run_cli("apply", str(good), "--backend", backend, "--auto-approve").code == 0
    before = _rows(tmp_path / "org.sqlite")
    (good / "b.yaml").write_text("currencies:\n  - {code: 1bad, name: Bad}\n", encoding="utf-8")
    (good / "a.yaml").write_text(ACCOUNT.replace("Acme", "Acme Renamed"), encoding="utf-8")
    assert run_cli("apply", str(good), "--backend", backend, "--auto-approve").code == 1
    assert _rows(tmp_path / "org.sqlite") == before


def _rows(path: Path) -> list[tuple[object, ...]]:
    with sqlite3.connect(path) as conn:
        tables = [r[0] for r in conn.execute("select name from sqlite_master where type='table' order by name")]
        return [row for t in tables for row in conn.execute(f"select * from {t} order by 1")]
