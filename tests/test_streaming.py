"""Plans stream (issue 13, P1m): the JSON written piece by piece is byte for byte what
``json.dumps`` writes, and the digest hashed in pieces is the digest of the whole."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from reconciler.compare import FieldDiff
from reconciler.plan import Change, Plan
from reconciler.render.document import (
    ChangeEntries,
    canonical,
    digest_of,
    iter_json,
    plan_document,
    redact_document,
)

scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text()
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner,
                                                                                            max_size=3),
                      max_leaves=12)


@given(st.dictionaries(st.text(), values, max_size=6))
def test_streamed_json_is_json_dumps(doc: dict[str, Any]) -> None:
    assert "".join(iter_json(doc)) == json.dumps(doc, indent=2, ensure_ascii=False)


@given(st.lists(st.dictionaries(st.sampled_from(["a", "b", "é"]), values, max_size=3), max_size=4))
def test_streamed_changes_are_the_list_they_stand_for(changes: list[dict[str, Any]]) -> None:
    doc = {"formatVersion": 1, "changes": changes, "warnings": ["x"]}
    text = "".join(iter_json(doc))
    assert json.loads(text) == doc
    lines = text.split("\n")
    for change in changes:  # one change per line
        assert "    " + json.dumps(change, ensure_ascii=False) in {ln.rstrip(",") for ln in lines}
    expected = json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    assert canonical(doc) == expected
    assert digest_of(doc) == "sha256:" + hashlib.sha256(expected).hexdigest()


def _plan() -> Plan:
    changes = [
        Change("create", "account", f"a{i}", None, None, [FieldDiff("name", None, f"Name {i}")],
               {"code": f"a{i}", "name": f"Name {i}", "emailAddress": "x@example.com"}, depends_on=[])
        for i in range(3)
    ]
    return Plan(organization="org", backend="local:x", changes=changes, unchanged=1, unmanaged=[])


def test_lazy_changes_read_as_the_plain_document() -> None:
    doc = plan_document(_plan())
    assert isinstance(doc["changes"], ChangeEntries)
    plain = {**doc, "changes": list(doc["changes"])}
    assert json.loads("".join(iter_json(doc))) == json.loads(json.dumps(plain))
    assert digest_of(doc) == digest_of(plain) == doc["digest"]
    assert doc["changes"][1]["key"] == "a1" and [c["key"] for c in doc["changes"][1:]] == ["a1", "a2"]


def test_redaction_is_applied_as_changes_are_read() -> None:
    doc = plan_document(_plan(), redact_pii=True)
    assert doc["redacted"] is True
    assert all(c["body"]["name"] == "(redacted)" for c in doc["changes"])
    assert doc["digest"] == plan_document(_plan())["digest"]  # the digest is of the unredacted plan
    again = redact_document({**doc, "changes": list(plan_document(_plan())["changes"])})
    assert [c["diff"][0]["after"] for c in again["changes"]] == ["(redacted)"] * 3
