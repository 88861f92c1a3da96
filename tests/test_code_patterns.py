"""The code patterns checked with ``re`` give the verdicts of the Java originals: Bean
Validation's @Pattern is ``Matcher.matches()``, the whole value, which the references below
spell as a ``regex`` ``fullmatch``."""

from __future__ import annotations

import regex
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from reconciler.kinds.compound_aggregation import aggregation_codes
from reconciler.kinds.fields import ACCOUNT_CODE, ACCOUNT_CODE_MESSAGE, PICKLIST_CODE, AccountCode
from reconciler.manifest.messages import field_errors

_PICKLIST = regex.compile(r"^[\p{L}_$][\p{L}_$0-9]*$")
_V = r"[^\x00-\x1f\x7f \t\n\x0b\f\r]"
_ACCOUNT = regex.compile(rf"^{_V}(?:(?:{_V}| )*{_V})?$")
_CHARS = st.sampled_from([chr(i) for i in range(160)] + list("éßЖ中ª²Ⅻ\u2028\u00a0\u0660_$ "))


@settings(max_examples=3000)
@given(st.text(_CHARS, max_size=6))
def test_code_patterns_match_the_regex_originals(text: str) -> None:
    assert bool(PICKLIST_CODE.match(text)) == bool(_PICKLIST.fullmatch(text))
    assert bool(ACCOUNT_CODE.match(text)) == bool(_ACCOUNT.fullmatch(text))


def test_usual_and_edge_codes() -> None:
    for text in ("abc", "a_1", "$x", "1a", "a-b", "abc\n", "", "é1", "Ⅻ", "ª"):
        assert bool(PICKLIST_CODE.match(text)) == bool(_PICKLIST.fullmatch(text)), repr(text)
    assert list(aggregation_codes("aggregation.a + aggregation.é_1 - xaggregation.b")) == ["a", "é_1"]


_ACCOUNT_CODE_ADAPTER = TypeAdapter(AccountCode)


@settings(max_examples=3000)
@given(st.text(_CHARS, min_size=1, max_size=6))
def test_the_account_code_type_gives_the_patterns_verdict(text: str) -> None:
    """Manifests check account codes with pydantic's Rust regex engine (no call into Python
    per value); it must accept exactly what ``ACCOUNT_CODE`` accepts and refuse with the same
    message."""
    try:
        _ACCOUNT_CODE_ADAPTER.validate_python(text)
    except ValidationError as exc:
        assert not ACCOUNT_CODE.match(text), repr(text)
        (error,) = exc.errors()
        assert error["type"] == "string_pattern_mismatch"
        assert field_errors([error], text, None)[0].message.startswith(ACCOUNT_CODE_MESSAGE)
    else:
        assert ACCOUNT_CODE.match(text), repr(text)


def test_a_final_newline_is_refused_as_java_matches_refuses_it() -> None:
    """Regression: Python's ``$`` matches before a final newline, so "abc\\n" used to pass
    every code check here while m3ter (Java ``matches()``) answers 400."""
    for text in ("abc\n", "a\n", "$x\n"):
        assert not PICKLIST_CODE.match(text), repr(text)
        assert not ACCOUNT_CODE.match(text), repr(text)
        try:
            _ACCOUNT_CODE_ADAPTER.validate_python(text)
        except ValidationError:
            pass
        else:
            raise AssertionError(f"AccountCode accepted {text!r}")
    assert not PICKLIST_CODE.match("é1\n")  # the ``regex`` path, for non-ASCII values
    assert PICKLIST_CODE.match("é1") and ACCOUNT_CODE.match("a b")
