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


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(["name", "address", "customFields", "id", "version", "tags", "n"]), _VALUES,
                       max_size=5),
       st.sampled_from([None, "", "id-p", "id-unknown", {"$ref": {"kind": "account", "code": "new"}}]))
def test_diff_body_of_a_create_is_diff_field_against_nothing(fields: dict[str, Any], parent: Any) -> None:
    """``plan.diff_body`` inlines ``diff_created`` for a create's fields; it must still be
    ``diff_field(name, value, None)`` field by field (references in the manifests' terms)."""
    from reconciler import kinds
    from reconciler.kinds import READ_ONLY_FIELDS
    from reconciler.plan import LiveState, diff_body

    account = kinds.get("account")
    index = LiveState({"account": [{"id": "id-p", "code": "p"}]})
    body = {**fields, "parentAccountId": parent}
    expected: list[Any] = []
    for name, value in body.items():
        if name == "parentAccountId":
            code = {"id-p": "p", "id-unknown": "id-unknown"}.get(value) if isinstance(value, str) else (
                "new" if value is not None else None)
            expected += [] if code is None else [("parent", repr(None), repr(code))]
        elif name not in READ_ONLY_FIELDS:
            expected += _plain(diff_field(name, value, None))
    assert _plain(diff_body(account, body, {}, index)) == expected
