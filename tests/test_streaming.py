"""Plans stream (issue 13, P1m): the JSON written piece by piece is byte for byte what
``json.dumps`` writes (each change on one line, in the canonical form), and the digest hashed
in pieces is the digest of the whole. Each change is encoded once: the unredacted output's
change lines are the very bytes the digest hashed."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reconciler.cli import main
from reconciler.compare import FieldDiff
from reconciler.plan import Change, Plan
from reconciler.render import document
from reconciler.render.document import (
    ChangeEntries,
    canonical,
    digest_of,
    encode_canonical,
    iter_json,
    plan_document,
    redact_document,
)
from reconciler.services import save_document
from tests.conftest import REPO, run_cli, write_manifest

scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text()
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner,
                                                                                            max_size=3),
                      max_leaves=12)


def _canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


@given(st.dictionaries(st.text().filter(lambda k: k != "changes"), values, max_size=6))
def test_streamed_json_is_json_dumps(doc: dict[str, Any]) -> None:
    assert b"".join(iter_json(doc)).decode("utf-8") == json.dumps(doc, indent=2, ensure_ascii=False)


@given(st.lists(st.dictionaries(st.sampled_from(["a", "b", "é"]), values, max_size=3), max_size=4))
def test_streamed_changes_are_the_list_they_stand_for(changes: list[dict[str, Any]]) -> None:
    doc = {"formatVersion": 1, "changes": changes, "warnings": ["x"]}
    text = b"".join(iter_json(doc)).decode("utf-8")
    assert json.loads(text) == doc
    lines = text.split("\n")
    for change in changes:  # one change per line, in the canonical form
        assert "    " + _canonical_json(change) in {ln.rstrip(",") for ln in lines}
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
    assert json.loads(b"".join(iter_json(doc))) == json.loads(json.dumps(plain))
    assert digest_of(doc) == digest_of(plain) == doc["digest"]
    assert doc["changes"][1]["key"] == "a1" and [c["key"] for c in doc["changes"][1:]] == ["a1", "a2"]


def test_redaction_is_applied_as_changes_are_read() -> None:
    doc = plan_document(_plan(), redact_pii=True)
    assert doc["redacted"] is True
    assert all(c["body"]["name"] == "(redacted)" for c in doc["changes"])
    assert doc["digest"] == plan_document(_plan())["digest"]  # the digest is of the unredacted plan
    again = redact_document({**doc, "changes": list(plan_document(_plan())["changes"])})
    assert [c["diff"][0]["after"] for c in again["changes"]] == ["(redacted)"] * 3


# -- each change encoded once: the output's change lines are the digest's pieces -------------


def _rich_plan() -> Plan:
    """Bodies whose keys are not in sorted order, nested values, non-ASCII text."""
    changes = [
        Change("create", "account", f"a{i}", None, None, [FieldDiff("name", None, f"Zoë {i}")],
               {"name": f"Zoë {i}", "code": f"a{i}", "emailAddress": "z@example.com",
                "address": {"postCode": "1", "country": "GB"}, "customFields": {"b": 1.5, "a": [True, None]}},
               warnings=["ünïcode"], depends_on=[])
        for i in range(3)
    ]
    changes.append(Change("update", "currency", "EUR", "id-1", 4, [FieldDiff("name", "Euro", "€uro")],
                          {"version": 4, "name": "€uro", "code": "EUR"}, depends_on=[0]))
    return Plan(organization="org", backend="local:x", changes=changes, unchanged=1, unmanaged=[])


def _change_lines(raw: bytes) -> list[bytes]:
    """The change lines of a JSON plan as written (between ``"changes": [`` and ``],``)."""
    lines = raw.split(b"\n")
    start = lines.index(b'  "changes": [')
    end = lines.index(b"  ],", start)
    return [line.removeprefix(b"    ").removesuffix(b",") for line in lines[start + 1:end]]


def _digest_from_output(raw: bytes) -> str:
    """sha256 over the canonical document assembled from the output: its change lines as
    written, every other key encoded canonically."""
    doc = json.loads(raw)
    parts = []
    for key in sorted(k for k in doc if k not in ("digest", "saved", "redacted")):
        value = b"[" + b",".join(_change_lines(raw)) + b"]" if key == "changes" else _canonical_json(doc[key]).encode()
        parts.append(_canonical_json(key).encode() + b":" + value)
    return "sha256:" + hashlib.sha256(b"{" + b",".join(parts) + b"}").hexdigest()


@pytest.mark.parametrize("keep", [True, False])
def test_unredacted_change_lines_are_the_bytes_the_digest_hashed(keep: bool) -> None:
    doc = plan_document(_rich_plan(), keep_encoded=keep)
    raw = b"".join(iter_json(doc))
    assert _change_lines(raw) == [_canonical_json(c).encode() for c in doc["changes"]]
    assert _digest_from_output(raw) == doc["digest"] == digest_of(doc)
    assert canonical(doc) == _canonical_json({k: v for k, v in doc.items() if k != "digest"}
                                             | {"changes": list(doc["changes"])}).encode()


def test_kept_changes_are_written_without_encoding_them_again(monkeypatch: pytest.MonkeyPatch,
                                                             tmp_path: Path) -> None:
    calls: list[Any] = []

    def counted(value: Any) -> bytes:
        calls.append(value)
        return encode_canonical(value)

    monkeypatch.setattr(document, "encode_canonical", counted)
    doc = plan_document(_rich_plan(), keep_encoded=True)
    encoded = len(calls)
    assert encoded > len(doc["changes"])  # the digest encoded every change (and the other keys)
    raw = b"".join(iter_json(doc))
    save_document(doc, str(tmp_path / "plan.json"))
    assert len(calls) == encoded  # neither the output nor the saved plan encoded a change again
    saved = (tmp_path / "plan.json").read_bytes()
    assert saved == raw.removesuffix(b"\n}") + b',\n  "saved": true\n}\n'
    document.release_encoded(doc)
    assert b"".join(iter_json(doc)) == raw  # made again after release, the same bytes
    assert len(calls) == encoded + len(doc["changes"])


def test_redacted_output_has_the_same_layout() -> None:
    plain = b"".join(iter_json(plan_document(_rich_plan(), keep_encoded=True)))
    doc = plan_document(_rich_plan(), redact_pii=True)
    redacted = b"".join(iter_json(doc))
    lines = _change_lines(redacted)
    assert lines == [_canonical_json(c).encode() for c in doc["changes"]]
    assert [json.loads(line)["body"]["name"] for line in lines] == ["(redacted)"] * 3 + ["€uro"]
    assert lines[3] == _change_lines(plain)[3]  # nothing to mask: the same line
    plain_lines, redacted_lines = plain.split(b"\n"), redacted.split(b"\n")
    assert len(redacted_lines) == len(plain_lines) + 1
    for mine, theirs in zip(plain_lines[:-2], redacted_lines, strict=False):  # all but the masked values
        if not mine.startswith(b"    {"):
            assert mine == theirs
    assert redacted_lines[-3:] == [plain_lines[-2] + b",", b'  "redacted": true', b"}"]
    assert json.loads(redacted)["digest"] == json.loads(plain)["digest"]


MANIFEST = """
    accounts:
      - {code: zoe, name: "Zoë Ltd", emailAddress: z@example.com, address: {postCode: "1", country: GB}}
      - {code: acme, name: Acme, emailAddress: a@example.com}
    """


def test_cli_json_and_saved_plan_hold_the_digested_bytes(tmp_path: Path, local_backend: str) -> None:
    """stdout with a binary stream under it gets the bytes as they are; a text-only stdout (a
    test's capture, credential masking) the same text."""
    write_manifest(tmp_path, "m/a.yaml", MANIFEST)
    saved = tmp_path / "plan.json"
    args = ["plan", str(tmp_path / "m"), "--backend", local_backend, "--format", "json", "--no-redact-pii"]
    written = io.BytesIO()
    out = io.TextIOWrapper(written, encoding="utf-8")
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        main([*args, "--out", str(saved)])
    out.flush()
    raw = written.getvalue()
    digest = json.loads(raw)["digest"]
    assert len(_change_lines(raw)) == 2 and _digest_from_output(raw) == digest
    assert _digest_from_output(saved.read_bytes()) == digest == json.loads(saved.read_bytes())["digest"]
    assert _change_lines(saved.read_bytes()) == _change_lines(raw)
    as_text = run_cli(*args)
    assert as_text.code == 0 and as_text.stdout.encode("utf-8") == raw


@pytest.mark.parametrize("fmt", ["json", "text"])
def test_a_closed_pipe_ends_the_plan_quietly(tmp_path: Path, local_backend: str, fmt: str) -> None:
    """``reconciler plan | head``: the reader went away; exit 1 without a traceback."""
    write_manifest(tmp_path, "m/a.yaml", MANIFEST)
    proc = subprocess.Popen(
        [sys.executable, "-m", "reconciler", "plan", str(tmp_path / "m"), "--backend", local_backend,
         "--format", fmt, "--no-redact-pii"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # before the plan is written
    stderr = proc.stderr.read()
    assert proc.wait(timeout=60) == 1
    assert b"Traceback" not in stderr and b"Exception ignored" not in stderr, stderr
