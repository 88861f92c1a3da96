"""The code patterns checked with ``re`` give the verdicts of the ``regex`` originals."""

from __future__ import annotations

import regex
from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler.kinds.compound_aggregation import aggregation_codes
from reconciler.kinds.fields import ACCOUNT_CODE, PICKLIST_CODE

_PICKLIST = regex.compile(r"^[\p{L}_$][\p{L}_$0-9]*$")
_V = r"[^\x00-\x1f\x7f \t\n\x0b\f\r]"
_ACCOUNT = regex.compile(rf"^{_V}(?:(?:{_V}| )*{_V})?$")
_CHARS = st.sampled_from([chr(i) for i in range(160)] + list("éßЖ中ª²Ⅻ\u2028\u00a0\u0660_$ "))


@settings(max_examples=3000)
@given(st.text(_CHARS, max_size=6))
def test_code_patterns_match_the_regex_originals(text: str) -> None:
    assert bool(PICKLIST_CODE.match(text)) == bool(_PICKLIST.match(text))
    assert bool(ACCOUNT_CODE.match(text)) == bool(_ACCOUNT.match(text))


def test_usual_and_edge_codes() -> None:
    for text in ("abc", "a_1", "$x", "1a", "a-b", "abc\n", "", "é1", "Ⅻ", "ª"):
        assert bool(PICKLIST_CODE.match(text)) == bool(_PICKLIST.match(text)), repr(text)
    assert list(aggregation_codes("aggregation.a + aggregation.é_1 - xaggregation.b")) == ["a", "é_1"]
