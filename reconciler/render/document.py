"""The plan as a stable JSON document (``formatVersion: 1``), its digest, and PII redaction.

The digest names the plan a reviewer approved: sha256 over a canonical serialisation
(sorted keys, no insignificant whitespace, UTF-8) of the unredacted document without the
presentation-only keys (``digest`` itself, ``saved``, ``redacted``). A redacted plan in a
CI log therefore shows the same digest as the saved plan file apply will check.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, overload

from reconciler import kinds
from reconciler.nested_diff import top_field
from reconciler.plan import Change, Plan

FORMAT_VERSION = 1
REDACTED = "(redacted)"
DIGEST_PREFIX = "sha256:"
_PRESENTATION_KEYS = frozenset({"digest", "saved", "redacted"})


class ChangeEntries(Sequence[dict[str, Any]]):
    """The ``changes`` of a plan document, made one at a time when read: a 100k-change plan
    is written, hashed and rendered without ever holding a second copy of it as dicts."""

    def __init__(self, changes: Sequence[Change], *, redact: bool = False) -> None:
        self._changes = changes
        self.redact = redact

    def __len__(self) -> int:
        return len(self._changes)

    @overload
    def __getitem__(self, index: int) -> dict[str, Any]: ...

    @overload
    def __getitem__(self, index: slice) -> list[dict[str, Any]]: ...

    def __getitem__(self, index: int | slice) -> dict[str, Any] | list[dict[str, Any]]:
        if isinstance(index, slice):
            return [self._entry(c) for c in self._changes[index]]
        return self._entry(self._changes[index])

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for change in self._changes:
            yield self._entry(change)

    def redacted(self) -> ChangeEntries:
        return ChangeEntries(self._changes, redact=True)

    def _entry(self, c: Change) -> dict[str, Any]:
        entry = {
            "action": c.action,
            "kind": c.kind,
            "key": c.key,
            "id": c.id,
            "version": c.version,
            "diff": [{"path": d.path, "before": d.before, "after": d.after} for d in c.diff],
            "body": c.body,
            "warnings": list(c.warnings),
            "dependsOn": list(c.depends_on),
        }
        return _redact_change(entry) if self.redact else entry


def _encoder(*, canonical: bool) -> json.JSONEncoder:
    if canonical:
        return json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return json.JSONEncoder(indent=2, ensure_ascii=False)


def iter_canonical(doc: Mapping[str, Any]) -> Iterator[str]:
    """The text the digest covers, in pieces: one spelling for one content (sorted keys, no
    insignificant whitespace), without the presentation-only keys."""
    encoder = _encoder(canonical=True)
    keys = sorted(k for k in doc if k not in _PRESENTATION_KEYS)
    yield "{"
    for n, key in enumerate(keys):
        yield ("," if n else "") + encoder.encode(key) + ":"
        value = doc[key]
        if key == "changes":
            yield "["
            for i, entry in enumerate(value):
                yield ("," if i else "") + encoder.encode(entry)
            yield "]"
        else:
            yield encoder.encode(value)
    yield "}"


def canonical(doc: Mapping[str, Any]) -> bytes:
    """The bytes the digest covers (see :func:`iter_canonical`)."""
    return "".join(iter_canonical(doc)).encode("utf-8")


def digest_of(doc: Mapping[str, Any]) -> str:
    hasher = hashlib.sha256()
    for piece in iter_canonical(doc):
        hasher.update(piece.encode("utf-8"))
    return DIGEST_PREFIX + hasher.hexdigest()


def iter_json(doc: Mapping[str, Any]) -> Iterator[str]:
    """The document as ``json.dumps(doc, indent=2)`` writes it, except that each change is one
    line: written in pieces (one per change), so plans of any size stream to stdout or a file,
    and each change goes through the C encoder (indenting falls back to Python's, which was
    half of a 100k-change plan's time). One change per line also greps and diffs well."""
    encoder = _encoder(canonical=False)
    one_line = json.JSONEncoder(ensure_ascii=False)
    yield "{"
    for n, (key, value) in enumerate(doc.items()):
        yield ("," if n else "") + "\n  " + encoder.encode(key) + ": "
        if key == "changes":
            if not len(value):
                yield "[]"
                continue
            yield "["
            for i, entry in enumerate(value):
                yield ("," if i else "") + "\n    " + one_line.encode(entry)
            yield "\n  ]"
        else:
            yield encoder.encode(value).replace("\n", "\n  ")
    yield "\n}" if doc else "}"


def plan_document(plan: Plan, *, redact_pii: bool = False, extra_warnings: list[str] | None = None) -> dict[str, Any]:
    """The documented JSON plan (README "JSON plan format"); saved plans use it too. Its
    ``changes`` are made when read (:class:`ChangeEntries`)."""
    doc: dict[str, Any] = {
        "formatVersion": FORMAT_VERSION,
        "organization": plan.organization,
        "backend": plan.backend,
        "summary": plan.summary(),
        "changes": ChangeEntries(plan.changes),
        "unmanaged": [{"kind": u.kind, "key": u.key} for u in plan.unmanaged],
        "uncounted": list(plan.uncounted),
        "warnings": [*(extra_warnings or []), *plan.warnings],
        "refusals": list(plan.refusals),
        "blockers": list(plan.blockers),
        "safety": {"maxRemovePercent": plan.max_remove_percent},
        "readByCode": {kind: list(codes) for kind, codes in plan.read_by_code.items()},
    }
    if plan.only:
        # Only partial plans carry the key, so a whole plan's document (and digest) is as before.
        doc["only"] = list(plan.only)
    doc["digest"] = digest_of(doc)
    return redact_document(doc) if redact_pii else doc


def _pii_fields(kind_name: str) -> tuple[str, ...]:
    kind = kinds.BY_NAME.get(kind_name)
    return kind.pii_fields if kind else ()


def _mask(value: Any) -> Any:
    return None if value is None else REDACTED


def _redact_change(change: dict[str, Any]) -> dict[str, Any]:
    pii = _pii_fields(change.get("kind", ""))
    if not pii:
        return change
    masked = dict(change)
    masked["diff"] = [
        {**d, "before": _mask(d["before"]), "after": _mask(d["after"])}
        if top_field(d["path"]) in pii
        else d
        for d in change.get("diff", [])
    ]
    masked["body"] = {k: (_mask(v) if k in pii else v) for k, v in change.get("body", {}).items()}
    return masked


def redact_document(doc: dict[str, Any]) -> dict[str, Any]:
    """Mask account name, e-mail and address in diffs and bodies (a new document; the
    changes of a plan's own document are masked as they are read)."""
    out = dict(doc)
    changes = doc.get("changes", [])
    out["changes"] = changes.redacted() if isinstance(changes, ChangeEntries) else [
        _redact_change(change) for change in changes
    ]
    out["redacted"] = True
    return out
