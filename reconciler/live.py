"""Reading the live organization for a plan: what the planner needs, and no less.

A kind read by code (only the objects the manifests name) misses the unmanaged objects in
between: an account's live parent that no manifest lists. For a kind that refers to itself
(``Reference.target`` is its own kind, by id), the planner must still see every live
ancestor of what it read — to show a parent by code rather than id, and above all to see a
cycle that a move would close through an unmanaged account — so the missing ancestors are
read by id until every chain ends. Plans and saved-plan checks read through here alike, so
they see the same organization.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from reconciler import kinds
from reconciler.backends.base import Backend, ReadProgress

Entity = dict[str, Any]
_MAX_ROUNDS = 1_000  # deeper than any real hierarchy; a cycle in live data cannot loop forever


def read_live(backend: Backend, wanted: Mapping[str, Collection[str] | None],
              progress: ReadProgress | None = None) -> dict[str, list[Entity]]:
    objects = backend.fetch_live(wanted, progress) if progress is not None else backend.fetch_live(wanted)
    for kind in kinds.KINDS:
        if wanted.get(kind.name) is None:
            continue  # listed whole: every ancestor is there already
        for ref in kind.references:
            if ref.target == kind.name and ref.by_id and ref.api_field is not None:
                objects[kind.name] = _with_ancestors(backend, kind, ref.api_field, objects.get(kind.name, []))
    return objects


def _with_ancestors(backend: Backend, kind: kinds.Kind, field: str, entities: list[Entity]) -> list[Entity]:
    known = {str(e["id"]) for e in entities if "id" in e}
    out = list(entities)
    frontier = list(entities)
    for _ in range(_MAX_ROUNDS):
        missing = sorted({str(p) for e in frontier if (p := e.get(field)) and str(p) not in known})
        if not missing:
            break
        frontier = []
        for entity_id in missing:
            known.add(entity_id)
            found = backend.get(kind, entity_id)
            if found is not None:
                frontier.append(found)
        out.extend(frontier)
    return out
