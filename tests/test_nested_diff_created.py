"""``nested_diff.diff_created`` (the create fast path of ``plan.diff_body``) must give exactly
``diff_field(name, value, None)`` for every value a manifest or body can hold."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler.nested_diff import diff_created, diff_field

_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True),
    st.text(max_size=3),
    st.just(""),
)
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(st.text(max_size=2), inner, max_size=3),
    ),
    max_leaves=12,
)


def _plain(diffs: list[Any]) -> list[tuple[str, Any, Any]]:
    return [(d.path, repr(d.before), repr(d.after)) for d in diffs]


@settings(max_examples=400, deadline=None)
@given(_VALUES)
def test_created_matches_diff_field(value: Any) -> None:
    assert _plain(diff_created("field", value)) == _plain(diff_field("field", value, None))


def test_created_edge_cases() -> None:
    for value in ({}, [], None, "", {"a": None}, {"a": {"b": None}}, {"a": {}, "b": []}, {"a": [1]}, 0, False):
        assert _plain(diff_created("f", value)) == _plain(diff_field("f", value, None)), value
