"""Names in manifests resolved to the organization's ids at plan time.

Some m3ter settings point at an object by UUID (``defaultStatementDefinitionId`` on the
organization config, ``statementDefinitionId`` on an account). The UUIDs differ between a
staging and a production organization, so manifests may name the object instead
(``defaultStatementDefinition: NAME``, ``statementDefinition: NAME``); the id fields stay
accepted. Resolution happens here, once per plan (``services.plan_loaded``, and
``services.validate_paths`` with a backend): each desired object's name field is rewritten
into its id field, so the planner, the diff and the request body only ever see the id field
the API knows, and the plan shows the id.

Lookups cost a request (``GET /statementdefinitions``, every page), so they are made only
when some manifest uses a name. A name that matches no definition, or more than one (m3ter
does not require names to be unique), is an error located at the name, since picking one
would be a guess.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from reconciler.diagnostics import Diagnostic
from reconciler.manifest.messages import describe
from reconciler.manifest.types import DesiredObject, Manifests

if TYPE_CHECKING:
    from reconciler.backends.base import Backend


@dataclass(frozen=True, slots=True)
class NamedReference:
    """A manifest field that names an object whose id the API field holds."""

    kind: str  # kind name of the objects that carry the fields
    name_field: str  # what a manifest may write: the target's name
    id_field: str  # what the API takes: the target's id
    target: str  # what is named, for messages


STATEMENT_DEFINITION = "statement definition"
NAMED_REFERENCES: tuple[NamedReference, ...] = (
    NamedReference("organizationConfig", "defaultStatementDefinition", "defaultStatementDefinitionId",
                   STATEMENT_DEFINITION),
    NamedReference("account", "statementDefinition", "statementDefinitionId", STATEMENT_DEFINITION),
)
#: How each target's objects are read from a backend (one list request sequence per plan).
_SOURCES: dict[str, Callable[[Backend], list[dict[str, Any]]]] = {
    STATEMENT_DEFINITION: lambda backend: backend.statement_definitions(),
}

_Use = tuple[DesiredObject, NamedReference]


def read_targets(backend: Backend, target: str) -> list[dict[str, Any]]:
    """Every live object of a named target (e.g. all statement definitions)."""
    return _SOURCES[target](backend)


def unique_names(objects: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    """id -> name for the objects whose name no other object shares (export writes those
    names; an ambiguous one is written as its id so that it resolves back to the same id)."""
    by_name: dict[str, list[str]] = {}
    for obj in objects:
        name, ident = obj.get("name"), obj.get("id")
        if isinstance(name, str) and name and isinstance(ident, str):
            by_name.setdefault(name, []).append(ident)
    return {ids[0]: name for name, ids in by_name.items() if len(ids) == 1}


def _rewrite(obj: DesiredObject, ref: NamedReference, value: str | None) -> None:
    """Replace the name field by the id field in place of it (field order kept for diffs)."""
    obj.fields = {
        (ref.id_field if key == ref.name_field else key): (value if key == ref.name_field else v)
        for key, v in obj.fields.items()
    }


def _uses(manifests: Manifests) -> dict[str, dict[str, list[_Use]]]:
    """target -> name -> the objects naming it; ``null`` names are rewritten on the way
    (``statementDefinition: null`` means the id must be empty, no lookup needed)."""
    uses: dict[str, dict[str, list[_Use]]] = {}
    for ref in NAMED_REFERENCES:
        for obj in manifests.of_kind(ref.kind).values():
            if ref.name_field not in obj.fields or ref.id_field in obj.fields:
                continue  # nothing named, or both given (a load-time error: never planned)
            name = obj.fields[ref.name_field]
            if name is None:
                _rewrite(obj, ref, None)
            elif isinstance(name, str):
                uses.setdefault(ref.target, {}).setdefault(name, []).append((obj, ref))
    return uses


def uses_names(manifests: Manifests) -> bool:
    """Does any manifest name an object that must be looked up?"""
    return any(
        ref.name_field in obj.fields for ref in NAMED_REFERENCES for obj in manifests.of_kind(ref.kind).values()
    )


def resolve_names(manifests: Manifests, backend: Backend) -> list[Diagnostic]:
    """Rewrite every name field of the desired objects into its id field, looking the names
    up through ``backend``; returns located errors for names that match no object or more
    than one (those objects keep their name field, and the plan must stop)."""
    uses = _uses(manifests)
    out: list[Diagnostic] = []
    for target, by_name in uses.items():
        live = read_targets(backend, target)
        ids_by_name: dict[str, list[str]] = {}
        for entity in live:
            name, ident = entity.get("name"), entity.get("id")
            if isinstance(name, str) and isinstance(ident, str):
                ids_by_name.setdefault(name, []).append(ident)
        failed: list[tuple[str, list[_Use], list[str]]] = []
        for name, places in by_name.items():
            ids = ids_by_name.get(name, [])
            if len(ids) == 1:
                for obj, ref in places:
                    _rewrite(obj, ref, ids[0])
            else:
                failed.append((name, places, ids))
        if failed:
            locations = manifests.locate_many([(places[0][0], (places[0][1].name_field,)) for _, places, _ in failed])
            for (name, places, ids), location in zip(failed, locations, strict=True):
                out.append(Diagnostic("error", _message(target, name, places, ids, sorted(ids_by_name)), location))
    return out


def _message(target: str, name: str, places: list[_Use], ids: list[str], known: list[str]) -> str:
    obj, ref = places[0]
    others = len(places) - 1
    also = f" (also named by {others} more object{'s' if others != 1 else ''})" if others else ""
    head = f"{describe(obj)}: {ref.name_field}: "
    if not ids:
        shown = ", ".join(repr(k) for k in known[:10]) + (f" and {len(known) - 10} more" if len(known) > 10 else "")
        has = f"it has {shown}" if known else "it has none"
        return (
            f"{head}no {target} named {name!r} in the organization ({has}){also}; create it in m3ter first, "
            f"or correct the name"
        )
    listed = ", ".join(sorted(ids)[:5]) + (" ..." if len(ids) > 5 else "")
    return (
        f"{head}{len(ids)} {target}s are named {name!r} (ids {listed}){also}; the name is ambiguous: give "
        f"{ref.id_field} instead, or rename all but one in m3ter"
    )
