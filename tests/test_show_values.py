"""``show()`` renders a value as ``visible(json.dumps(value, ensure_ascii=False,
sort_keys=True))``, cut at MAX_VALUE_CHARS; it skips building an encoder per call (a text plan
of 100k creates shows 1.2 million values). The shortcut must show exactly what the formula
shows, for every JSON value a plan can hold."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from reconciler.render.document import REDACTED
from reconciler.render.text import render_text
from reconciler.render.values import _CUT_ESCAPE, MAX_VALUE_CHARS, show, summary_line
from reconciler.safetext import visible

_SCALARS = (
    st.none() | st.booleans() | st.integers() | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=True, allow_infinity=True) | st.text()
    | st.sampled_from(["\u202e", "\x1b[31m", "a\\b", "tab\there", "€", "\U000f0001", "", "x" * 200])
)
_VALUES = st.recursive(
    _SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4), max_leaves=12
)


def _formula(value: Any) -> str:
    if value == REDACTED:
        return REDACTED
    if value is None:
        return "(none)"
    text = visible(json.dumps(value, ensure_ascii=False, sort_keys=True))
    if len(text) > MAX_VALUE_CHARS:
        text = _CUT_ESCAPE.sub(r"\1", text[: MAX_VALUE_CHARS - 1]) + "…"
    return text


@given(_VALUES)
def test_show_is_the_json_formula(value: Any) -> None:
    assert show(value) == _formula(value)


def test_bools_and_int_like_values_keep_their_json_spelling() -> None:
    """Regression guards for the shortcut: a bool is not shown as an int, a float that is a
    whole number keeps its ``.0``, a big integer is shown whole."""
    assert (show(True), show(False), show(1), show(1.0), show(10**20)) == ("true", "false", "1", "1.0", str(10**20))
    assert show("a\u202eb") == '"a\\u202eb"' and show("q\"") == '"q\\""'


def test_text_plan_lines_are_whole_and_in_order() -> None:
    """The text renderer yields one piece per change; the lines read as before."""
    doc: dict[str, Any] = {
        "organization": "org", "backend": "local:x", "summary": {
            "create": 1, "update": 1, "archive": 0, "delete": 0, "unchanged": 0, "unmanaged": 0},
        "changes": [
            {"action": "create", "kind": "currency", "key": "EUR", "id": None, "version": None, "warnings": [],
             "diff": [{"path": "code", "before": None, "after": "EUR"}]},
            {"action": "update", "kind": "currency", "key": "GBP", "id": "i-1", "version": 3,
             "warnings": ["careful"],
             "diff": [{"path": "name", "before": "Pound", "after": "Pound Sterling"},
                      {"path": "maxDecimalPlaces", "before": 2, "after": None}]},
        ],
        "unmanaged": [], "warnings": [], "refusals": [], "blockers": [], "digest": "sha256:ab",
    }
    assert render_text(doc) == (
        "Organization org (local:x)\n\n"
        "+ create currency EUR\n"
        '    + code: "EUR"\n'
        "~ update currency GBP (id i-1, version 3)\n"
        '    ~ name: "Pound" -> "Pound Sterling"\n'
        "    - maxDecimalPlaces: 2\n"
        "    ! warning: careful\n"
        "\n"
        "Plan: 1 to create, 1 to update, 0 to archive, 0 to delete; 0 unchanged, 0 unmanaged.\n"
        "Plan digest: sha256:ab\n"
    )


def test_the_summary_names_kinds_read_by_code_and_counts_kinds_not_read() -> None:
    summary = {"create": 1, "update": 0, "archive": 0, "delete": 0, "unchanged": 2, "unmanaged": 0}
    base = "Plan: 1 to create, 0 to update, 0 to archive, 0 to delete; 2 unchanged, 0 unmanaged"
    assert summary_line(summary) == base + "."
    assert summary_line(summary, uncounted=["account", "product", "meter"],
                        read_by_code={"account": ["a"], "product": [], "meter": []}) == (
        base + " (not counted for account; 2 kinds the manifests do not name were not read).")
    assert summary_line(summary, uncounted=["product"], read_by_code={"product": []}) == (
        base + " (1 kind the manifests do not name was not read).")
    # a document without readByCode (older saved plans): every uncounted kind is named
    assert summary_line(summary, uncounted=["account"]) == base + " (not counted for account)."
