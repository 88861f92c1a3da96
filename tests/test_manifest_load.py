"""Loading manifests through the API: what objects look like, YAML safety, positions."""

from __future__ import annotations

import random
import string
import textwrap
from pathlib import Path

import pytest
import yaml
from email_validator import EmailNotValidError, validate_email

from reconciler import kinds
from reconciler.diagnostics import Diagnostic
from reconciler.kinds.fields import _email_fast_ok
from reconciler.manifest import load_manifests
from reconciler.manifest.types import LoadResult
from reconciler.manifest.yaml_events import DocumentBuilder, resolve_plain


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def load(*paths: Path, environ: dict[str, str] | None = None) -> LoadResult:
    return load_manifests([str(p) for p in paths], environ=environ or {})


def errors(result: LoadResult) -> list[Diagnostic]:
    return [d for d in result.diagnostics if d.is_error]


def only_error(result: LoadResult) -> Diagnostic:
    found = errors(result)
    assert len(found) == 1, [d.format() for d in result.diagnostics]
    return found[0]


def test_fields_are_kept_exactly_as_written(tmp_path: Path) -> None:
    path = write(tmp_path, "a.yaml", """
        organization:
          currency: USD
          yearEpoch: 2024-01-01
          billPrefix: null
        accounts:
          - code: acme
            name: Acme
            emailAddress: AP@Acme.example.com
            billEpoch: 2024-03-01
            daysBeforeBillDue: 30
            customFields: {seats: 1.0, tier: gold}
        """)
    result = load(path)
    assert result.ok, result.diagnostics
    assert result.manifests is not None
    org = result.manifests.objects["organizationConfig"]["organizationConfig"]
    assert org.fields == {"currency": "USD", "yearEpoch": "2024-01-01", "billPrefix": None}
    acme = result.manifests.objects["account"]["acme"]
    assert acme.fields["billEpoch"] == "2024-03-01"  # a string, not a date
    assert acme.fields["emailAddress"] == "AP@Acme.example.com"  # not normalised
    assert "address" not in acme.fields  # absent stays absent
    assert acme.fields["customFields"] == {"seats": 1.0, "tier": "gold"}
    assert acme.kind == "account" and acme.key == "acme"
    assert (acme.location.line, acme.location.column) == (6, 5)
    assert set(result.manifests.objects) == set(kinds.KIND_NAMES)
    assert result.manifests.objects["currency"] == {}


def test_directories_recursive_sorted_multi_document_and_merging(tmp_path: Path) -> None:
    write(tmp_path, "b/currencies.yml", "currencies:\n  - {code: GBP, name: Pound}\n")
    write(tmp_path, "a.yaml", """
        currencies:
          - {code: EUR, name: Euro}
        ---
        # an empty document declares nothing
        ---
        currencies:
          - {code: USD, name: Dollar}
        """)
    write(tmp_path, ".hidden/x.yaml", "not: [valid")
    write(tmp_path, "notes.txt", "not yaml at all: [")
    result = load(tmp_path)
    assert result.ok, result.diagnostics
    assert result.manifests is not None
    assert list(result.manifests.objects["currency"]) == ["EUR", "USD", "GBP"]
    assert [Path(f).name for f in result.manifests.files] == ["a.yaml", "currencies.yml"]
    assert result.manifests.objects["currency"]["USD"].node_path == (2, "currencies", 0)


def test_same_file_given_twice_is_read_once(tmp_path: Path) -> None:
    path = write(tmp_path, "a.yaml", "currencies:\n  - {code: EUR, name: Euro}\n")
    result = load(path, tmp_path)
    assert result.ok, result.diagnostics


def test_missing_path_and_empty_directory_are_errors(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    result = load(tmp_path / "nope.yaml", tmp_path / "empty")
    messages = [d.message for d in errors(result)]
    assert any("no such file" in m for m in messages)
    assert any("no manifest files" in m for m in messages)


def test_duplicate_key_in_nested_mapping_is_located(tmp_path: Path) -> None:
    path = write(tmp_path, "a.yaml", """
        accounts:
          - code: acme
            name: Acme
            emailAddress: ap@acme.example.com
            address:
              locality: Leeds
              locality: York
        """)
    error = only_error(load(path))
    assert "duplicate key 'locality'" in error.message
    assert error.location is not None and (error.location.line, error.location.column) == (7, 7)


@pytest.mark.parametrize(
    "value",
    ["!!binary aGVsbG8=", "!custom thing", "!!timestamp 2024-01-01", "!!set {a, b}", "!!python/name:os.system"],
)
def test_non_core_tags_are_refused(tmp_path: Path, value: str) -> None:
    path = write(tmp_path, "a.yaml", f"organization:\n  billPrefix: {value}\n")
    error = only_error(load(path))
    assert "unsupported YAML tag" in error.message
    assert error.location is not None and error.location.line == 2


def test_core_tags_are_applied(tmp_path: Path) -> None:
    path = write(tmp_path, "a.yaml", """
        organization:
          billPrefix: !!str 2024
          daysBeforeBillDue: !!int "30"
        """)
    result = load(path)
    assert result.ok, result.diagnostics
    assert result.manifests is not None
    fields = result.manifests.objects["organizationConfig"]["organizationConfig"].fields
    assert fields == {"billPrefix": "2024", "daysBeforeBillDue": 30}


def test_merge_keys_and_independent_alias_copies(tmp_path: Path) -> None:
    path = write(tmp_path, "a.yaml", """
        accounts:
          - &base
            code: one
            name: One
            emailAddress: one@example.com
            customFields: &cf {tier: gold}
          - <<: *base
            code: two
            customFields: *cf
        """)
    result = load(path)
    assert result.ok, result.diagnostics
    assert result.manifests is not None
    accounts = result.manifests.objects["account"]
    assert accounts["two"].fields["name"] == "One"
    assert accounts["two"].fields["customFields"] == {"tier": "gold"}
    assert accounts["two"].fields["customFields"] is not accounts["one"].fields["customFields"]


def test_recursive_alias_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path, "a.yaml", "organization: &o\n  currency: USD\n  billPrefix: *o\n")
    assert "recursive alias" in only_error(load(path)).message


def test_alias_bomb_bounded(tmp_path: Path) -> None:
    lines = ["x0: &x0 [a, a, a, a, a, a, a, a, a, a]"]
    lines += [f"x{i}: &x{i} [{', '.join([f'*x{i - 1}'] * 10)}]" for i in range(1, 9)]
    path = write(tmp_path, "a.yaml", "\n".join(lines) + "\n")
    result = load(path)
    assert any("alias expansion too large" in d.message for d in errors(result))


def test_deep_nesting_does_not_crash(tmp_path: Path) -> None:
    path = tmp_path / "deep.yaml"
    path.write_text("organization:\n  billPrefix: " + "[" * 10_000 + "]" * 10_000 + "\n", encoding="utf-8")
    result = load(path)
    assert errors(result)  # a list is not a string; what matters is no crash


def test_environment_expansion_rules(tmp_path: Path) -> None:
    path = write(tmp_path, "a.yaml", """
        organization:
          billPrefix: "${PREFIX}-$${LITERAL}-${EMPTY:-dflt}-${MISSING:-x}-cost $5"
          currency: ${CUR}
        """)
    result = load(path, environ={"PREFIX": "STG", "EMPTY": "", "CUR": "EUR"})
    assert result.ok, result.diagnostics
    assert result.manifests is not None
    fields = result.manifests.objects["organizationConfig"]["organizationConfig"].fields
    assert fields["billPrefix"] == "STG-${LITERAL}-dflt-x-cost $5"
    assert fields["currency"] == "EUR"


def test_unset_variable_names_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, "a.yaml", "currencies:\n  - code: EUR\n    name: ${NAME_OF_EUR}\n")
    error = only_error(load(path))
    assert "NAME_OF_EUR is not set" in error.message
    assert error.location is not None and (error.location.line, error.location.column) == (3, 11)


def test_keys_are_not_expanded(tmp_path: Path) -> None:
    path = write(tmp_path, "a.yaml", "customFields:\n  account:\n    ${X}: 1\n")
    result = load(path, environ={"X": "tier"})
    assert result.ok
    assert result.manifests is not None
    assert result.manifests.objects["customFields"]["customFields"].fields == {"account": {"${X}": 1}}


def test_nested_field_position_is_exact(tmp_path: Path) -> None:
    path = write(tmp_path, "a.yaml", """
        accounts:
          - code: acme
            name: Acme
            emailAddress: ap@acme.example.com
            address: {locality: Leeds,   postCode: "123456789012345678901"}
        """)
    error = only_error(load(path))
    assert error.message.startswith("accounts[0] (code 'acme'): address.postCode: must be at most 20")
    assert error.location is not None and (error.location.line, error.location.column) == (5, 44)


def test_unknown_field_points_at_key_and_missing_at_object(tmp_path: Path) -> None:
    path = write(tmp_path, "a.yaml", """
        currencies:
          - code: EUR
            name: Euro
            roundingMod: UP
          - name: No code
        """)
    found = {d.location.line if d.location else 0: d for d in errors(load(path))}
    assert (found[4].location.column if found[4].location else 0) == 5
    assert "roundingMod: unknown field (did you mean 'roundingMode'?)" in found[4].message
    assert "currencies[1]: code: is required" in found[5].message


def test_locator_resolves_fields_lazily(tmp_path: Path) -> None:
    path = write(tmp_path, "a.yaml", """
        organization:
          currency: USD
          currencyConversions:
            - {from: EUR, to: USD, multiplier: 1.1}
            - from: GBP
              to: USD
              multiplier: 1.3
        """)
    result = load(path)
    assert result.manifests is not None
    org = result.manifests.objects["organizationConfig"]["organizationConfig"]
    where = result.manifests.locate(org, "currencyConversions", 1, "to")
    assert (where.line, where.column) == (6, 7)
    assert result.manifests.locate(org, "nothing", "here").line == 1  # falls back to the object
    assert result.manifests.locate(org) == org.location


def test_reader_error_for_control_character(tmp_path: Path) -> None:
    path = tmp_path / "a.yaml"
    path.write_text("currencies:\n  - code: EUR\n    name: Eu\x07ro\n", encoding="utf-8")
    error = only_error(load(path))
    assert "unacceptable character" in error.message
    assert error.location is not None and error.location.line == 3


def test_non_mapping_items_and_wrong_container(tmp_path: Path) -> None:
    path = write(tmp_path, "a.yaml", """
        currencies:
          - EUR
        accounts: {code: acme}
        organization: [USD]
        """)
    messages = sorted((d.location.line if d.location else 0, d.message) for d in errors(load(path)))
    assert messages[0][0] == 2 and "currencies[0]: must be a mapping" in messages[0][1]
    assert messages[1][0] == 3 and "accounts: must be a list" in messages[1][1]
    assert messages[2][0] == 4 and "organization: must be a mapping" in messages[2][1]


def test_plain_scalar_resolution_matches_safe_loader_except_dates() -> None:
    samples = [
        "yes", "No", "on", "OFF", "true", "False", "~", "null", "NULL", "0", "-12", "+7", "0x1F", "017",
        "0b101", "1_000", "190:20:30", "1.5", "-.5e+3", ".inf", "-.Inf", "1e5", "12abc", "v1.2", "USD",
        "3.", "+.5", "0.0", "1:30.5", "y", "n",
    ]
    for text in samples:
        expected = yaml.load(f"v: {text}", Loader=yaml.CSafeLoader)["v"]
        assert resolve_plain(text) == expected, text
    assert resolve_plain("2024-01-01") == "2024-01-01"
    assert resolve_plain("2024-01-01T10:00:00Z") == "2024-01-01T10:00:00Z"


def test_document_builder_reports_every_duplicate() -> None:
    builder = DocumentBuilder()
    docs = list(builder.documents("a: 1\na: 2\nb: {c: 1, c: 2}\n"))
    assert docs[0].data == {"a": 2, "b": {"c": 2}}
    assert [(p.line, p.column) for p in builder.problems] == [(2, 1), (3, 11)]


def test_email_fast_path_never_accepts_what_email_validator_rejects() -> None:
    rng = random.Random(1)
    alphabet = string.ascii_letters + string.digits + ".-_+@!#'`|~"
    accepted = 0
    tlds = ["com", "test", "local", "co", "x", "io", "localhost", "example"]
    for _ in range(3000):
        local = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12)))
        domain = "".join(rng.choice(string.ascii_lowercase + "-.0") for _ in range(rng.randint(0, 10)))
        candidate = f"{local}@{domain}.{rng.choice(tlds)}"
        if _email_fast_ok(candidate):
            accepted += 1
            try:
                validate_email(candidate, check_deliverability=False)
            except EmailNotValidError as exc:  # pragma: no cover - this is the failure
                pytest.fail(f"fast path accepted {candidate!r}: {exc}")
    assert accepted > 100
    assert not _email_fast_ok("a@b.test") and not _email_fast_ok("a..b@example.com")


def test_email_fast_path_edges_agree_with_email_validator() -> None:
    """Lengths, a trailing newline (``$`` would let it through), ``--`` labels and special-use
    TLDs: the fast path accepts only what email_validator accepts."""
    cases = [
        "a@b.com\n", "a@b.com\r", "\na@b.com", "a@xn--b.com", "a@b--c.com", "a@b.TEST", "a@b.Localhost",
        "a@b.testing", "a@b.arpa", "x" * 64 + "@b.com", "x" * 65 + "@b.com",
        "a@" + ".".join(["b" * 60] * 4) + ".com", "a@" + ".".join(["b" * 61] * 4) + ".com",
        "a@" + "b" * 63 + ".com", "a@" + "b" * 64 + ".com", "a@-b.com", "a@b-.com", "a@b.c0m", "a@b.c",
    ]
    for candidate in cases:
        try:
            validate_email(candidate, check_deliverability=False)
            exact = True
        except EmailNotValidError:
            exact = False
        if _email_fast_ok(candidate):
            assert exact, candidate
    assert not _email_fast_ok("a@b.com\n")
    assert _email_fast_ok("billing.0@globex-0.example.com")


def test_manifests_without_settings_get_exactly_the_validated_defaults(tmp_path: Path) -> None:
    """The defaults are built without validators (a speed-up); they must be ``Settings()``."""
    from reconciler.manifest.settings import Settings, default_settings

    built, validated = default_settings(), Settings()
    assert built == validated and built.model_dump() == validated.model_dump()
    assert built.model_fields_set == validated.model_fields_set == set()
    assert built.ignoreFields.account is not default_settings().ignoreFields.account  # never shared
    (tmp_path / "a.yaml").write_text("currencies:\n  - code: EUR\n    name: Euro\n", encoding="utf-8")
    assert load_manifests([str(tmp_path)]).manifests.settings == validated
