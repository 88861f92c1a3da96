"""Golden tests of the two YAML readings: the fast path (yaml-rs behind ``fastyaml``'s gate)
must give exactly the event builder's values, or step aside so the builder reads the file.

Every scalar form of YAML 1.1 and 1.2 that the two could read differently is listed with the
value today's loader gives; each must come out the same through ``load_manifests`` (whatever
path it takes), and the gate must refuse the forms where yaml-rs alone would differ. Bad
inputs keep their exact ``FILE:LINE:COL`` messages. A property test feeds random scalar
texts: whenever the gate lets a text through and yaml-rs reads it, the values are the same.
"""

from __future__ import annotations

import math
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml_rs
from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler.manifest import load_manifests
from reconciler.manifest.fastyaml import NOT_FAST, fast_eligible, fast_load
from reconciler.manifest.yaml_events import DocumentBuilder


def builder_values(text: str) -> tuple[list[Any], list[str]]:
    b = DocumentBuilder()
    docs = [d.data for d in b.documents(text)]
    return docs, [p.message for p in b.problems]


def same(a: Any, b: Any) -> bool:
    """Equal values of equal types all the way down (``1 == 1.0 == True`` is not enough)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and math.isnan(a):
        return math.isnan(b)
    return bool(a == b)


# (plain scalar as written, value today's loader gives)
SCALARS: list[tuple[str, Any]] = [
    # YAML 1.1 booleans: words yes/no/on/off as PyYAML reads them; y/n stay strings
    *[(w, True) for w in ("yes", "Yes", "YES", "on", "On", "ON", "true", "True", "TRUE")],
    *[(w, False) for w in ("no", "No", "NO", "off", "Off", "OFF", "false", "False", "FALSE")],
    ("y", "y"), ("n", "n"), ("tRUE", "tRUE"),
    # null
    ("~", None), ("null", None), ("Null", None), ("NULL", None), ("", None), ("nULL", "nULL"),
    # integers: decimal, signs, YAML 1.1 octal, binary, hex, underscores, base 60
    ("0", 0), ("12", 12), ("-12", -12), ("+12", 12), ("-0", 0), ("00", 0),
    ("07", 7), ("0777", 511), ("08", "08"), ("012345678", "012345678"), ("0o17", "0o17"),
    ("0b101", 5), ("0x1F", 31), ("0xff", 255), ("1_000", 1000), ("0x_1", 1), ("_1", "_1"),
    ("1:30", 90), ("190:20:30", 685230), ("12:60", "12:60"),
    ("123456789012345678901234567890", 123456789012345678901234567890),
    # floats: YAML 1.1 needs a dot, and a sign in an exponent
    ("1.5", 1.5), ("-1.5", -1.5), ("1.", 1.0), ("0.", 0.0), (".5", 0.5), ("-.5", "-.5"), ("+.5", "+.5"),
    ("1.08", 1.08), ("1.0e+5", 100000.0), ("6.8523015e+5", 685230.15), ("1e5", "1e5"), ("1.0e5", "1.0e5"),
    ("1.5E3", "1.5E3"), ("1.5E+3", 1500.0), ("1_0.5", 10.5), ("08.5", 8.5),
    (".inf", math.inf), ("-.Inf", -math.inf), ("+.inf", math.inf), (".NaN", math.nan),
    # timestamps stay the strings that were written (deliberately: the API wants the text)
    ("2024-01-01", "2024-01-01"), ("2024-01-01T10:00:00Z", "2024-01-01T10:00:00Z"),
    # look like numbers, are strings in both readings
    ("1.2.3", "1.2.3"), ("0b", "0b"), ("0x", "0x"), ("3rd", "3rd"), ("SW1A 0AA", "SW1A 0AA"),
    ("10-20", "10-20"), ("http://x:8080", "http://x:8080"), ("Smith & Sons", "Smith & Sons"),
]


@pytest.mark.parametrize(("written", "expected"), SCALARS, ids=[w or "<empty>" for w, _ in SCALARS])
def test_every_scalar_form_reads_as_today(tmp_path: Path, written: str, expected: Any) -> None:
    text = f"a: {written}\nb: [{written}]\n" if written else "a:\n"
    docs, problems = builder_values(text)
    assert not problems
    assert same(docs[0], {"a": expected, "b": [expected]} if written else {"a": None})
    fast = fast_load(text)
    if fast is not NOT_FAST:  # when the gate lets it through, the values are the same
        assert same(fast, docs[0]), (written, fast)
    # and through the whole loader (an unknown top-level key shows the value in its message)
    f = tmp_path / "m.yaml"
    f.write_text(f"currencies:\n  - code: X\n    name: {written or '~'}\n", encoding="utf-8")
    fast_name = load_manifests([str(f)], environ={}).manifests
    assert fast_name is not None
    value = fast_name.objects["currency"]["X"].fields["name"]
    assert same(value, expected if written else None)


# Forms where yaml-rs alone reads a different value: the gate must refuse each.
DIFFERENT_IN_YAML_RS = ["yes", "on", "Off", "0777", "08", "012345678", "0o17", "_1", "1:30", "-.5", "+.5",
                        "1e5", "1.0e5", "1.5E3"]


@pytest.mark.parametrize("written", DIFFERENT_IN_YAML_RS)
def test_gate_refuses_what_yaml_rs_reads_otherwise(written: str) -> None:
    for text in (f"a: {written}\n", f"- {written}\n", f"a: [{written}]\n", f"{written}: 1\n",
                 f"a:\n  - {written}\n", f"a: x\n  {written}\n"):
        assert not fast_eligible(text), text


@pytest.mark.parametrize("text", [
    "a: &x 1\nb: *x\n", "a: !!str 5\n", "a: ! 5\n", "<<: {a: 1}\n", "%YAML 1.1\n---\na: 1\n",
    "a: 1\n---\nb: 2\n", "a: 1\n...\n", "? a\n: 1\n", ": x\n", "a: |\n  x\n", "a: >-\n  x\n",
    "a: \"\\x41\"\n", "a: ${X}\n", "a:\n\t1\n", "a: \x85x\n", "a: x\u2028y\n", "1: a\n", "true: a\n", "~: a\n",
    "{1: a, 1.0: b}\n", "a: [yes]\n", "a: [x - 'b:c']\n", "a: [u:v, 'x:y']\n", "a: [b:c]\n",
])
def test_gate_refuses_structures_yaml_rs_reads_otherwise_or_positions_matter(text: str) -> None:
    assert not fast_eligible(text)


@pytest.mark.parametrize("text", [
    "a: 1\n", "---\na: 1\n", "# c\n---\na: 1\n", "a: 1.08\n", "a: x & y\n", "a: b > c\n", "a: \"yes\"\n",
    "a: '07'\n", "a: [1, 2]\n", "a: {b: 1}\n", "a: true\n", "a: null\n", "a: 2024-01-01\n",
    # a ':' inside a one-line quoted scalar is no plain-scalar ':' in a flow collection
    "a: ['b:c', d]\n", "a: {b: \"2024-01-01T00:00:00Z\"}\n", "- '2024-01-01T00:00:00Z'\n- [1]\n",
    "a: [x, 'it''s:y']\n", "startDate: \"2025-01-01T00:00:00Z\"\nbands: [{lowerLimit: 0}]\n",
])
def test_gate_lets_usual_manifests_through(text: str) -> None:
    assert fast_eligible(text)
    docs, problems = builder_values(text)
    assert not problems
    assert same(yaml_rs.loads(text, parse_datetime=False), docs[0])


def _write(tmp_path: Path, text: str) -> str:
    f = tmp_path / "m.yaml"
    f.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return str(f)


@pytest.mark.parametrize(("text", "where", "says"), [
    ("currencies:\n  - code: A\n    code: B\n", "3:5", "duplicate key 'code'"),
    ("currencies:\n  - {code: A, name: x, name: y}\n", "2:24", "duplicate key 'name'"),
    ("a: !!python/object/apply:os.system [echo]\n", "1:4", "unsupported YAML tag"),
    ("currencies:\n  - code: A\n\tname: x\n", "3:1", "tab"),
    ("currencies: [\n", "2:1", "YAML syntax error"),
    ("a: &a [1]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n" + "".join(
        f"{c}: &{c} [{', '.join(['*' + p] * 9)}]\n" for p, c in zip("bcdefghi", "cdefghij", strict=True)),
     None, "alias expansion too large"),
    ("organization:\n  currency: USD\norganization:\n  currency: EUR\n", "3:1", "duplicate key 'organization'"),
    ("accounts:\n  - code: a\n    name: A\n    nmae: x\n", "4:5", "nmae"),
    ("currencies:\n  - code: A\n    name: A\n  - code: A\n    name: B\n", "4:5", "duplicate currency code"),
    ("accounts: {code: a}\n", "1:1", "must be a list"),
    ("acounts: []\n", "1:1", "unknown top-level key"),
    ("currencies:\n  - code: A\n    name: A\n    maxDecimalPlaces: yes\n", "4:23", "maxDecimalPlaces"),
])
def test_refused_inputs_keep_their_place(tmp_path: Path, text: str, where: str | None, says: str) -> None:
    path = _write(tmp_path, text)
    result = load_manifests([path], environ={})
    errors = [d for d in result.diagnostics if d.is_error]
    assert errors, result.diagnostics
    hit = [d for d in errors if says in d.message]
    assert hit, [d.format() for d in errors]
    if where is not None:
        assert f"{path}:{where}:" in hit[0].format(), hit[0].format()


def test_messages_from_a_fast_read_file_have_exact_positions(tmp_path: Path) -> None:
    """A file the fast path reads has no positions until a message needs one: then the
    object and field positions are those the event builder gives."""
    text = "currencies:\n  - code: A\n    name: A\n  - code: B\n    name: B\n    maxDecimalPlaces: -1\n"
    path = _write(tmp_path, text)
    assert fast_load(text) is not NOT_FAST
    result = load_manifests([path], environ={})
    assert [d.format().split(": ")[0] for d in result.diagnostics if d.is_error] == [f"{path}:6:23"]
    manifests = result.manifests
    assert manifests is not None
    b = manifests.objects["currency"]["B"]
    assert (b.location.line, b.location.column) == (4, 5)


_TOKEN = st.text(alphabet="0123456789+-._:eExXoObB aAyYnNsSfF~", min_size=1, max_size=8)


@settings(max_examples=1500, deadline=None)
@given(_TOKEN)
def test_any_text_the_gate_lets_through_reads_alike(token: str) -> None:
    for text in (f"a: {token}\n", f"- {token}\n", f"{token}: 1\n", f"a: [{token}]\n"):
        if not fast_eligible(text):
            continue
        try:
            fast = yaml_rs.loads(text, parse_datetime=False)
        except Exception:
            continue  # yaml-rs refuses it: the event builder reads the file
        docs, problems = builder_values(text)
        if problems:
            raise AssertionError(f"yaml-rs accepts {text!r} that the builder refuses: {problems}")
        assert same(fast, docs[0] if docs else None), (text, fast, docs)


_QUOTY = st.text(alphabet="ab:'\" -[]{},#", min_size=1, max_size=10)


@settings(max_examples=1500, deadline=None)
@given(_QUOTY)
def test_quoted_colons_near_flow_collections_read_alike(token: str) -> None:
    """Regression guard for the quoted-scalar allowance of ``_colon_in_plain``: any text with
    quotes, colons and flow indicators that the gate lets through reads as the builder does."""
    # (values only: a flow collection as a key, ``{}: 1``, is refused later by the shape check)
    for text in (f"a: {token}\n", f"- {token}\n- [x]\n", f"a: [{token}]\n", f"a: {{b: {token}}}\n"):
        if not fast_eligible(text):
            continue
        try:
            fast = yaml_rs.loads(text, parse_datetime=False)
        except Exception:
            continue
        docs, problems = builder_values(text)
        if problems:
            raise AssertionError(f"yaml-rs accepts {text!r} that the builder refuses: {problems}")
        assert same(fast, docs[0] if docs else None), (text, fast, docs)


@pytest.mark.parametrize("code", range(128))
def test_rare_ascii_check_finds_what_the_pattern_finds(code: int) -> None:
    from reconciler.manifest.fastyaml import _RARE_ASCII, _has_rare_ascii

    for text in (chr(code), f"a: b{chr(code)}\n", f"{chr(code)}x", "clean: text\n" * 3 + chr(code)):
        assert _has_rare_ascii(text) == (_RARE_ASCII.search(text) is not None), repr(text)
    assert not _has_rare_ascii("a: b\r\n  - c: 'd'\n")


_LINE_TOKENS = ["-", " ", "\t", "- ", "-\t", ":", ": ", "\n", "\n  ", "\n- ", "1", "0", "12", "1.5", "1e5", "0x1",
                "+", ".", "...", "_", "yes", "no", "No", "on", "OFF", "true", "null", "~", "%", "!", "&", "*", "|",
                ">", "?", "a", "name", "x:", "#", ",", "[", "]", "{", "}", "'", '"', "1:30", ".inf", "-1", "- -"]


@settings(max_examples=3000)
@given(st.lists(st.sampled_from(_LINE_TOKENS), min_size=1, max_size=10).map("".join))
def test_line_start_pattern_finds_what_the_reference_finds(text: str) -> None:
    import re

    from reconciler.manifest.fastyaml import _LINE_START, _LINE_START_REFERENCE

    reference = re.compile(_LINE_START_REFERENCE, re.M | re.X)
    for candidate in (text, "\n" + text):
        assert (_LINE_START.search(candidate) is None) == (reference.search(candidate) is None), repr(candidate)
