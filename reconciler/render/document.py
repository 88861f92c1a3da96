"""The plan as a stable JSON document (``formatVersion: 1``), its digest, and PII redaction.

The digest names the plan a reviewer approved: sha256 over a canonical serialisation
(sorted keys, no insignificant whitespace, UTF-8) of the unredacted document without the
presentation-only keys (``digest`` itself, ``saved``, ``redacted``). A redacted plan in a
CI log therefore shows the same digest as the saved plan file apply will check.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from reconciler import kinds
from reconciler.nested_diff import top_field
from reconciler.plan import Plan

FORMAT_VERSION = 1
REDACTED = "(redacted)"
DIGEST_PREFIX = "sha256:"
_PRESENTATION_KEYS = frozenset({"digest", "saved", "redacted"})


def canonical(doc: dict[str, Any]) -> bytes:
    """The bytes the digest covers: one spelling for one content, whatever the indentation."""
    content = {k: v for k, v in doc.items() if k not in _PRESENTATION_KEYS}
    return json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False).encode("utf-8")


def digest_of(doc: dict[str, Any]) -> str:
    return DIGEST_PREFIX + hashlib.sha256(canonical(doc)).hexdigest()


def plan_document(plan: Plan, *, redact_pii: bool = False, extra_warnings: list[str] | None = None) -> dict[str, Any]:
    """The documented JSON plan (README "JSON plan format"); saved plans use it too."""
    doc: dict[str, Any] = {
        "formatVersion": FORMAT_VERSION,
        "organization": plan.organization,
        "backend": plan.backend,
        "summary": plan.summary(),
        "changes": [
            {
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
            for c in plan.changes
        ],
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


def redact_document(doc: dict[str, Any]) -> dict[str, Any]:
    """Mask account name, e-mail and address in diffs and bodies (a new document)."""
    out = dict(doc)
    changes = []
    for change in doc.get("changes", []):
        pii = _pii_fields(change.get("kind", ""))
        if not pii:
            changes.append(change)
            continue
        masked = dict(change)
        masked["diff"] = [
            {**d, "before": _mask(d["before"]), "after": _mask(d["after"])}
            if top_field(d["path"]) in pii
            else d
            for d in change.get("diff", [])
        ]
        masked["body"] = {k: (_mask(v) if k in pii else v) for k, v in change.get("body", {}).items()}
        changes.append(masked)
    out["changes"] = changes
    out["redacted"] = True
    return out
