"""Drift: how the live organization differs from the manifests, told from the manifests'
point of view (what someone changed by hand), not as work to do.

It is the plan read the other way round: an update is a managed object whose fields
changed live, a create is a managed object missing live, and an archive or delete that
``settings.prune`` would make is an unmanaged live object of a pruned kind. Sharing the
planner means ``drift`` and ``plan`` can never disagree about what is in sync.
"""

from __future__ import annotations

from typing import Any

from reconciler.plan import REMOVALS, Plan
from reconciler.render.document import FORMAT_VERSION, REDACTED, redact_document


def drift_document(plan: Plan, *, redact_pii: bool = False) -> dict[str, Any]:
    items: list[dict[str, Any]] = []
    for change in plan.changes:
        if change.action == "create":
            items.append({"type": "missing", "kind": change.kind, "key": change.key, "fields": []})
        elif change.action in REMOVALS and change.is_removal:
            items.append({"type": "unmanaged", "kind": change.kind, "key": change.key, "fields": [],
                          "pruneAction": change.action})
        else:
            items.append({
                "type": "changed", "kind": change.kind, "key": change.key,
                "fields": [{"path": d.path, "manifest": d.after, "live": d.before} for d in change.diff],
            })
    counts = {t: sum(1 for i in items if i["type"] == t) for t in ("changed", "missing", "unmanaged")}
    doc: dict[str, Any] = {
        "formatVersion": FORMAT_VERSION,
        "organization": plan.organization,
        "backend": plan.backend,
        "inSync": not items,
        "summary": counts,
        "drift": items,
    }
    if plan.only:  # a partial plan's drift covers only the selection: say so in every format
        doc["only"] = list(plan.only)
        doc["warnings"] = [w for w in plan.warnings if w.startswith(("partial plan", "--only"))]
    return _redact(doc) if redact_pii else doc


def _redact(doc: dict[str, Any]) -> dict[str, Any]:
    """Reuse the plan's redaction rules by viewing the fields as a diff."""
    as_plan = {"changes": [
        {"kind": i["kind"], "diff": [{"path": f["path"], "before": f["live"], "after": f["manifest"]}
                                     for f in i["fields"]], "body": {}}
        for i in doc["drift"]
    ]}
    masked = redact_document(as_plan)["changes"]
    items = []
    for item, m in zip(doc["drift"], masked, strict=True):
        fields = [{"path": d["path"], "manifest": d["after"], "live": d["before"]} for d in m["diff"]]
        items.append({**item, "fields": fields})
    return {**doc, "drift": items, "redacted": True}


__all__ = ["REDACTED", "drift_document"]
