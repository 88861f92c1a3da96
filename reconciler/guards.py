"""Blockers that only the backend can tell: what outside the managed kinds stands in the
way of a delete (``Kind.delete_guard``), read only when a plan deletes objects of such a
kind, so plans without deletes cost nothing more. Kept out of the planner, which stays a
pure function of manifests and a live snapshot."""

from __future__ import annotations

from reconciler import kinds
from reconciler.backends.base import Backend
from reconciler.plan import Change


def delete_blockers(changes: list[Change], backend: Backend) -> list[str]:
    out: list[str] = []
    for kind in kinds.KINDS:
        if kind.delete_guard is None:
            continue
        deletes = [c for c in changes if c.kind == kind.name and c.action == "delete" and c.id is not None]
        if not deletes:
            continue
        in_the_way = kind.delete_guard(backend, [str(c.id) for c in deletes])
        for change in deletes:
            reason = in_the_way.get(str(change.id))
            if reason:
                out.append(f"cannot delete {kind.name} {change.key}: {reason}")
    return out
