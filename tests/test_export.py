"""``reconciler export``: round trip (export -> plan shows nothing), byte stability, safe file
names for any account code, and the refusals (non-empty DIR, symlinks, unknown kinds)."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from reconciler import export, kinds
from reconciler.backends.local import LocalBackend
from reconciler.cli import cli
from reconciler.export import HEADER, safe_slug
from reconciler.export_cli import register
from tests.conftest import EXAMPLES, CliResult, run_cli

if "export" not in cli.commands:  # until cli.py wires it in; a no-op afterwards
    register(cli)

ACCOUNT = kinds.get("account")
CURRENCY = kinds.get("currency")

AWKWARD_CODES = [
    "a/b",
    "../../etc/passwd",
    "..",
    ".",
    "space inside",
    "colon:code",
    "*",
    "star*",
    "café-ü",
    "Acme",
    "acme",
    "ACME",
    "a-b",
    "a b",
    "a_b",
    "con",
    "x" * 80,
    "x" * 79 + "y",
    "${HOME}",
    "-leading-dash",
    "日本語",
]


def backend_spec(tmp_path: Path) -> str:
    return f"local:{tmp_path / 'org.sqlite'}"


def export_cli(tmp_path: Path, out: Path, *args: str) -> CliResult:
    return run_cli("export", "--out", str(out), "--backend", backend_spec(tmp_path), *args)


def files_under(root: Path) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    for dirpath, _dirs, names in os.walk(root):
        for name in names:
            path = Path(dirpath) / name
            out[path.relative_to(root).as_posix()] = path.read_bytes()
    return out


def snapshot(root: Path) -> set[str]:
    return {str(p) for p in root.rglob("*")}


def plan_is_empty(tmp_path: Path, manifests: Path) -> CliResult:
    result = run_cli("plan", str(manifests), "--backend", backend_spec(tmp_path), "--detailed-exitcode")
    assert result.code == 0, result.output
    return result


@pytest.fixture
def org(tmp_path: Path) -> Iterator[LocalBackend]:
    backend = LocalBackend(tmp_path / "org.sqlite")
    yield backend
    backend.close()


PARENT_CODES = frozenset({"a/b", "a/b/child", "..", "acme", "Acme"})


def populate_awkward(backend: LocalBackend) -> None:
    """An organization with every kind filled, awkward values and awkward account codes."""
    org_kind = kinds.get("organizationConfig")
    live = backend.get_singleton(org_kind)
    body = {k: v for k, v in live.items() if k not in kinds.READ_ONLY_FIELDS}
    body.update(
        currencyConversions=[
            {"from": "USD", "to": "EUR", "multiplier": 0.92},
            {"from": "GBP", "to": "EUR", "multiplier": 1.0},
        ],
        creditApplicationOrder=["BALANCE", "PREPAYMENT"],
        scheduledBillInterval=0.0,
        currency="EUR",
        billPrefix="INV-${YEAR}-",
        autoApproveBillsGracePeriod=2,
        autoApproveBillsGracePeriodUnit="DAYS",
        daysBeforeBillDue=30,  # required by PUT; a fresh organization has none
        version=live["version"],
    )
    for code, name, archived in [("EUR", "Euro", False), ("GBP", "Pound", False), ("JPY", "Yen", True)]:
        backend.create(CURRENCY, {"code": code, "name": name, "archived": archived, "maxDecimalPlaces": 2})
    backend.put_singleton(org_kind, body)
    backend.create(kinds.get("creditReason"), {"code": "goodwill", "name": "Goodwill", "archived": False})
    backend.create(kinds.get("creditReason"), {"code": "old", "name": "Old reason", "archived": True})
    backend.create(kinds.get("debitReason"), {"code": "late", "name": "Late fee: 5% | ${FEE}"})
    backend.create(kinds.get("transactionType"), {"code": "topup", "name": "Top-up"})
    cf_kind = kinds.get("customFields")
    cf = backend.get_singleton(cf_kind)
    backend.put_singleton(
        cf_kind,
        {"account": {"tier": "gold", "seats": 10, "ratio": 1.5}, "meter": {}, "version": cf["version"]},
    )
    ids: dict[str, str] = {}
    for i, code in enumerate(AWKWARD_CODES):
        body = {
            "code": code,
            "name": f"Name of {code} \"quoted\" 'single' # not a comment",
            "emailAddress": f"billing{i}@example.com",
        }
        if i % 3 == 0:
            body["address"] = {"addressLine1": "1 Main St", "country": "UK", "locality": ""}
        if i % 4 == 0:
            body["customFields"] = {"tier": "gold", "seats": 3.0, "weight": 0.25, "empty": ""}
        if i % 5 == 0:
            body.update(currency="GBP", daysBeforeBillDue=30, purchaseOrderNumber="PO ${X} $${Y}")
            if code not in PARENT_CODES:  # m3ter offers no credit order inside a hierarchy
                body["creditApplicationOrder"] = ["PREPAYMENT"]
        ids[code] = backend.create(ACCOUNT, body)["id"]
    # families whose codes are awkward too: parents before children across files
    for parent, child in [("a/b", "a/b/child"), ("a/b/child", "a/b/child/grandchild"), ("..", "../child"),
                          ("acme", "acme-eu"), ("Acme", "Acme:uk")]:
        ids[child] = backend.create(ACCOUNT, {"code": child, "name": child, "emailAddress": "c@example.com",
                                              "parentAccountId": ids[parent]})["id"]


# ---------------------------------------------------------------------------- round trips


def test_examples_round_trip_and_validate(tmp_path: Path) -> None:
    assert EXAMPLES.is_dir(), "examples/org is missing"
    applied = run_cli("apply", str(EXAMPLES), "--backend", backend_spec(tmp_path), "--auto-approve")
    assert applied.code == 0, applied.output
    out = tmp_path / "export"
    result = export_cli(tmp_path, out)
    assert result.code == 0, result.output
    assert result.stdout == ""
    assert re.search(r"Exported .*\d+ accounts?.* to .*\(\d+ files?\)\.", result.stderr), result.stderr
    written = files_under(out)
    assert {"organization.yaml", "currencies.yaml"} <= set(written)
    assert any(name.startswith("accounts/") for name in written)
    for data in written.values():
        assert data.startswith(HEADER.encode())
    valid = run_cli("validate", str(out))
    assert valid.code == 0, valid.output
    plan_is_empty(tmp_path, out)


def test_fresh_organization_round_trips(tmp_path: Path) -> None:
    out = tmp_path / "export"
    assert export_cli(tmp_path, out).code == 0
    assert sorted(files_under(out)) == ["currencies.yaml", "organization.yaml"]
    org = yaml.safe_load((out / "organization.yaml").read_text(encoding="utf-8"))["organization"]
    # false booleans of the org config are kept; empty conversions are left out
    assert org["consolidateBills"] is False
    assert "currencyConversions" not in org
    assert org["scheduledBillInterval"] == 0 and isinstance(org["scheduledBillInterval"], int)
    plan_is_empty(tmp_path, out)


def test_awkward_organization_round_trips_inside_dir(
    tmp_path: Path, org: LocalBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    populate_awkward(org)
    monkeypatch.setattr(export, "MAX_ACCOUNTS_PER_FILE", 1)  # one file per account: every name tested
    before = snapshot(tmp_path.parent)
    out = tmp_path / "deep" / "export"
    result = export_cli(tmp_path, out)
    assert result.code == 0, result.output

    written = files_under(out)
    real_out = out.resolve()
    names = set()
    for rel in written:
        path = out / rel
        assert path.resolve().is_relative_to(real_out)
        assert not path.is_symlink()
        assert re.fullmatch(r"(accounts/)?[a-z0-9][a-z0-9_-]*\.yaml", rel), rel
        assert rel.lower() not in names  # distinct on case-insensitive file systems
        names.add(rel.lower())
    n_accounts = len(AWKWARD_CODES) + 5
    assert len([r for r in written if r.startswith("accounts/")]) == n_accounts
    after = snapshot(tmp_path.parent)
    created = {p for p in after - before
               if not Path(p).is_relative_to(out) and not p.startswith(str(tmp_path / "org.sqlite"))}
    assert created <= {str(tmp_path / "deep"), str(out)}, created

    # every code came back exactly, parents first, and variable-like text was escaped
    codes: list[str] = []
    for rel in sorted(written):
        doc = yaml.safe_load(written[rel].decode("utf-8"))
        if rel.startswith("accounts/"):
            codes.extend(a["code"] for a in doc["accounts"])
    children = ["a/b/child", "a/b/child/grandchild", "../child", "acme-eu", "Acme:uk"]
    assert sorted(codes) == sorted(c.replace("${", "$${") for c in [*AWKWARD_CODES, *children])
    text = b"".join(written.values()).decode("utf-8")
    assert "PO $${X} $$${Y}" in text
    assert "INV-$${YEAR}-" in text
    for field in ("id:", "version:", "dtCreated", "parentAccountId", "createdBy"):
        assert field not in text
    currencies = yaml.safe_load(written["currencies.yaml"])["currencies"]
    assert [c["code"] for c in currencies] == ["EUR", "GBP", "JPY", "USD"]
    assert [c.get("archived") for c in currencies] == [None, None, True, None]
    custom = yaml.safe_load(written["custom-fields.yaml"])["customFields"]
    assert custom == {"account": {"ratio": 1.5, "seats": 10, "tier": "gold"}}

    valid = run_cli("validate", str(out))
    assert valid.code == 0, valid.output
    plan_is_empty(tmp_path, out)


def test_families_keep_parents_before_children(tmp_path: Path, org: LocalBackend) -> None:
    populate_awkward(org)
    out = tmp_path / "export"
    assert export_cli(tmp_path, out).code == 0
    order: list[dict[str, Any]] = []
    for rel, data in sorted(files_under(out).items()):
        if rel.startswith("accounts/"):
            order.extend(yaml.safe_load(data)["accounts"])
    position = {a["code"]: i for i, a in enumerate(order)}
    for a in order:
        if "parent" in a:
            assert position[a["parent"]] < position[a["code"]]
    assert order[position["a/b"] + 1]["code"] == "a/b/child"
    assert order[position["a/b"] + 2]["code"] == "a/b/child/grandchild"


# ---------------------------------------------------------------------------- stability


def test_export_is_byte_stable(tmp_path: Path, org: LocalBackend) -> None:
    populate_awkward(org)
    first, second = tmp_path / "one", tmp_path / "two"
    assert export_cli(tmp_path, first).code == 0
    assert export_cli(tmp_path, second).code == 0
    assert files_under(first) == files_under(second)
    again = export_cli(tmp_path, first, "--force")
    assert again.code == 0, again.output
    assert files_under(first) == files_under(second)
    assert not [p for p in first.rglob("*.tmp")]


def test_force_replaces_only_exported_files(tmp_path: Path, org: LocalBackend) -> None:
    out = tmp_path / "export"
    assert export_cli(tmp_path, out).code == 0
    (out / "accounts").mkdir()
    stale = out / "accounts" / "gone.yaml"
    stale.write_text(f"{HEADER} from organization local.\naccounts: []\n", encoding="utf-8")
    mine = out / "mine.yaml"
    mine.write_text("# hand-written\ncurrencies: []\n", encoding="utf-8")
    notes = out / "notes.txt"
    notes.write_text(f"{HEADER}\n", encoding="utf-8")
    hidden = out / ".git" / "x.yaml"
    hidden.parent.mkdir()
    hidden.write_text(f"{HEADER}\n", encoding="utf-8")
    org.create(ACCOUNT, {"code": "new", "name": "New", "emailAddress": "n@example.com"})

    refused = export_cli(tmp_path, out)
    assert refused.code == 1
    assert "not empty" in refused.stderr and "--force" in refused.stderr
    assert "Traceback" not in refused.output
    assert not (out / "accounts" / "new.yaml").exists()

    result = export_cli(tmp_path, out, "--force")
    assert result.code == 0, result.output
    assert not stale.exists()
    assert mine.exists() and notes.exists() and hidden.exists()
    assert (out / "accounts" / "new.yaml").exists()
    assert "stale" in result.stderr


# ---------------------------------------------------------------------------- refusals


def test_refuses_non_empty_dir_without_force(tmp_path: Path) -> None:
    out = tmp_path / "export"
    out.mkdir()
    (out / "README").write_text("keep me", encoding="utf-8")
    before = files_under(out)
    result = export_cli(tmp_path, out)
    assert result.code == 1
    assert "error:" in result.stderr and "not empty" in result.stderr and "--force" in result.stderr
    assert files_under(out) == before
    assert not (tmp_path / "org.sqlite").exists()  # refused before opening the organization


def test_refuses_to_write_through_a_symlinked_subdir(tmp_path: Path, org: LocalBackend) -> None:
    org.create(ACCOUNT, {"code": "acme", "name": "Acme", "emailAddress": "a@example.com"})
    outside = tmp_path / "outside"
    outside.mkdir()
    out = tmp_path / "export"
    out.mkdir()
    (out / "accounts").symlink_to(outside, target_is_directory=True)
    result = export_cli(tmp_path, out, "--force")
    assert result.code == 1
    assert "symbolic link" in result.stderr
    assert list(outside.iterdir()) == []
    assert sorted(p.name for p in out.iterdir()) == ["accounts"]  # nothing written at all


def test_kinds_selects_files(tmp_path: Path, org: LocalBackend) -> None:
    populate_awkward(org)
    out = tmp_path / "export"
    result = export_cli(tmp_path, out, "--kinds", "accounts,currencies")
    assert result.code == 0, result.output
    written = sorted(files_under(out))
    assert "currencies.yaml" in written
    assert all(r == "currencies.yaml" or r.startswith("accounts/") for r in written), written
    other = tmp_path / "other"
    result = export_cli(tmp_path, other, "--kinds", "account", "--kinds", "credit-reasons,organization")
    assert result.code == 0, result.output
    assert {"credit-reasons.yaml", "organization.yaml"} <= set(files_under(other))
    assert "currencies.yaml" not in files_under(other)


def test_unknown_kind_lists_valid_names(tmp_path: Path) -> None:
    out = tmp_path / "export"
    result = export_cli(tmp_path, out, "--kinds", "accounts,widgets")
    assert result.code == 1
    assert "widgets" in result.stderr
    for name in ("accounts", "currencies", "creditReasons", "organization", "customFields"):
        assert name in result.stderr
    assert not out.exists()


# ---------------------------------------------------------------------------- units


def test_safe_slug() -> None:
    assert safe_slug("acme") == "acme"
    assert safe_slug("acme-eu_1") == "acme-eu_1"
    slugs = {code: safe_slug(code) for code in AWKWARD_CODES}
    for code, slug in slugs.items():
        assert re.fullmatch(r"[a-z0-9][a-z0-9_-]*", slug), (code, slug)
        assert len(slug) <= export.SLUG_MAX + 1 + export.HASH_LEN
    assert len({s.lower() for s in slugs.values()}) == len(slugs)
    assert safe_slug("con") != "con"
    assert safe_slug("café-ü").startswith("cafe-u-")


def fam(code: str, size: int = 1) -> list[dict[str, Any]]:
    return [{"id": f"{code}-{i}", "code": code if i == 0 else f"{code}-{i}"} for i in range(size)]


def test_packing_limits_and_locality() -> None:
    codes = [f"c{i:05d}" for i in range(3000)]
    files = export._pack([fam(c) for c in codes])
    assert all(len(f) <= export.MAX_ACCOUNTS_PER_FILE for f in files)
    assert len(files) > 3
    # inserting one family changes at most two files: later files keep their contents
    inserted = sorted([*codes, "c01000x"])
    files2 = export._pack([fam(c) for c in inserted])
    firsts = {tuple(a["code"] for a in f) for f in files}
    firsts2 = {tuple(a["code"] for a in f) for f in files2}
    assert len(firsts - firsts2) <= 2
    # a family larger than a file is split over consecutive files, parents first
    big = export._pack([fam("big", 1200), fam("small")])
    assert [len(f) for f in big][:2] == [500, 500]
    assert big[0][0]["code"] == "big"
