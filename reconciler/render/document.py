"""The plan as a stable JSON document (``formatVersion: 1``), its digest, and PII redaction.

The digest names the plan a reviewer approved: sha256 over a canonical serialisation
(sorted keys, no insignificant whitespace, UTF-8) of the unredacted document without the
presentation-only keys (``digest`` itself, ``saved``, ``redacted``). A redacted plan in a
CI log therefore shows the same digest as the saved plan file apply will check.

Each change is encoded once: the JSON output writes every change on one line in that same
canonical form, so the line of an unredacted plan *is* the piece the digest hashed (kept
from the digest when the caller asks, :class:`ChangeEntries`), and a 100k-change plan is not
encoded a second time to be written.
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


_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def encode_canonical(value: Any) -> bytes:
    """``value`` in the canonical form (sorted keys, no spaces), UTF-8."""
    return _CANONICAL.encode(value).encode("utf-8")


class ChangeEntries(Sequence[dict[str, Any]]):
    """The ``changes`` of a plan document, made one at a time when read: a 100k-change plan
    is written, hashed and rendered without ever holding a second copy of it as dicts.

    With ``keep_encoded``, the canonical bytes of every change are kept the first time they
    are made (for the digest), and the JSON output and a saved plan write those same bytes
    instead of encoding each change again; :meth:`release` lets them go. They are a snapshot:
    the changes must not be modified after the digest is computed (a plan document never is).
    """

    def __init__(self, changes: Sequence[Change], *, redact: bool = False, keep_encoded: bool = False) -> None:
        self._changes = changes
        self.redact = redact
        self._keep = keep_encoded
        self._encoded: list[bytes] | None = None

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

    def encoded(self) -> Iterator[bytes]:
        """Each change in the canonical form, UTF-8 (the kept bytes when there are some)."""
        if self._encoded is None and self._keep:
            self._encoded = [encode_canonical(entry) for entry in self]
        if self._encoded is not None:
            return iter(self._encoded)
        return (encode_canonical(entry) for entry in self)

    def release(self) -> None:
        """Drop the kept bytes (and keep no more): the document has been written."""
        self._encoded = None
        self._keep = False

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


def _encoded_changes(changes: Any) -> Iterator[bytes]:
    if isinstance(changes, ChangeEntries):
        return changes.encoded()
    return (encode_canonical(entry) for entry in changes)


def iter_canonical(doc: Mapping[str, Any]) -> Iterator[bytes]:
    """The bytes the digest covers, in pieces: one spelling for one content (sorted keys, no
    insignificant whitespace, UTF-8), without the presentation-only keys. Each change is one
    piece of its own, the same bytes :func:`iter_json` writes as the change's line."""
    keys = sorted(k for k in doc if k not in _PRESENTATION_KEYS)
    yield b"{"
    for n, key in enumerate(keys):
        yield (b"," if n else b"") + encode_canonical(key) + b":"
        value = doc[key]
        if key == "changes":
            yield b"["
            for i, piece in enumerate(_encoded_changes(value)):
                if i:
                    yield b","
                yield piece
            yield b"]"
        else:
            yield encode_canonical(value)
    yield b"}"


def canonical(doc: Mapping[str, Any]) -> bytes:
    """The bytes the digest covers (see :func:`iter_canonical`)."""
    return b"".join(iter_canonical(doc))


def digest_of(doc: Mapping[str, Any]) -> str:
    hasher = hashlib.sha256()
    for piece in iter_canonical(doc):
        hasher.update(piece)
    return DIGEST_PREFIX + hasher.hexdigest()


_INDENTED = json.JSONEncoder(indent=2, ensure_ascii=False)


def iter_json(doc: Mapping[str, Any]) -> Iterator[bytes]:
    """The document as UTF-8 JSON in pieces: ``json.dumps(doc, indent=2)``'s layout, except
    that each change is one line in the canonical form (sorted keys, no spaces). Plans of any
    size stream to stdout or a file, each change goes through the C encoder (indenting falls
    back to Python's, which was half of a 100k-change plan's time), and an unredacted change's
    line is the very piece the digest hashed (kept, not encoded again, see
    :class:`ChangeEntries`). One change per line also greps and diffs well."""
    yield b"{"
    for n, (key, value) in enumerate(doc.items()):
        yield (("," if n else "") + "\n  " + _INDENTED.encode(key) + ": ").encode("utf-8")
        if key == "changes":
            if not len(value):
                yield b"[]"
                continue
            yield b"["
            for i, piece in enumerate(_encoded_changes(value)):
                yield b",\n    " if i else b"\n    "
                yield piece
            yield b"\n  ]"
        else:
            yield _INDENTED.encode(value).replace("\n", "\n  ").encode("utf-8")
    yield b"\n}" if doc else b"}"


def plan_document(plan: Plan, *, redact_pii: bool = False, extra_warnings: list[str] | None = None,
                  keep_encoded: bool = False) -> dict[str, Any]:
    """The documented JSON plan (README "JSON plan format"); saved plans use it too. Its
    ``changes`` are made when read (:class:`ChangeEntries`); with ``keep_encoded`` their
    canonical bytes are kept from the digest, for an unredacted JSON output or saved plan
    to write without encoding them again (:func:`release_encoded` when written)."""
    doc: dict[str, Any] = {
        "formatVersion": FORMAT_VERSION,
        "organization": plan.organization,
        "backend": plan.backend,
        "summary": plan.summary(),
        "changes": ChangeEntries(plan.changes, keep_encoded=keep_encoded),
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


def release_encoded(doc: Mapping[str, Any]) -> None:
    """Let go of the changes' kept canonical bytes (see ``plan_document(keep_encoded=True)``)."""
    changes = doc.get("changes")
    if isinstance(changes, ChangeEntries):
        changes.release()


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
