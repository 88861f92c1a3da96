"""Rules that look across objects: parent cycles, conversion rates, and references.

These need the whole set of manifests, so they run after every file is loaded. References
(a currency code, a parent account) are checked in two steps: what the manifests declare is
known at load time; what the live organization holds is known only with a backend. Offline,
an unresolved reference is therefore a warning saying it must exist live; with the live codes
it becomes an error when the organization does not hold it either (DESIGN §2).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from reconciler import kinds
from reconciler.diagnostics import Diagnostic
from reconciler.forest import find_cycles
from reconciler.manifest.messages import describe, display_path
from reconciler.manifest.types import DesiredObject, Manifests

if TYPE_CHECKING:
    from reconciler.manifest.load import LoadState


def check(manifests: Manifests, state: LoadState) -> None:
    """Load-time rules that need every object: parent cycles, conversion-rate sanity and
    settings that m3ter refuses inside a parent/child hierarchy."""
    _parent_cycles(manifests, state)
    _exactly_one(manifests, state)
    _name_or_id(manifests, state)
    for kind in kinds.KINDS:
        for rule in kind.checks:
            rule(manifests, state)


def _name_or_id(manifests: Manifests, state: LoadState) -> None:
    """A setting given both by name (``statementDefinition``) and by id
    (``statementDefinitionId``) is refused: which one wins would be a guess."""
    from reconciler.lookups import NAMED_REFERENCES

    for ref in NAMED_REFERENCES:
        for obj in manifests.of_kind(ref.kind).values():
            if ref.name_field in obj.fields and ref.id_field in obj.fields:
                state.at_field(
                    "error",
                    f"{describe(obj)}: {ref.name_field}: give the {ref.target} either by name ({ref.name_field}) "
                    f"or by id ({ref.id_field}), not both",
                    obj,
                    (ref.name_field,),
                )


def _exactly_one(manifests: Manifests, state: LoadState) -> None:
    """An object holds exactly one field of each ``a|b`` identity part (a pricing's plan or plan
    template; an account plan's plan or plan group): the API refuses neither and both. Every
    object is checked, also one that has no key for lack of such a field."""
    for kind in kinds.KINDS:
        for group in kind.exclusive_fields:
            for obj in state.items.get(kind.name, ()):
                if not kinds.holds_exactly_one(obj.fields, group):
                    state.at_field("error", f"{describe(obj)}: give exactly one of {' or '.join(group)} (m3ter API)",
                                   obj, (group[0],))


def _parent_cycles(manifests: Manifests, state: LoadState) -> None:
    """A kind that refers to itself by one plain field (an account's ``parent``) must not form a
    cycle within the manifests (cycles through live objects are the planner's to refuse)."""
    for kind in kinds.KINDS:
        for ref in kind.references:
            if ref.target == kind.name and ref.plain_field is not None:
                _cycles_of(kind, ref.plain_field, manifests, state)


def _cycles_of(kind: kinds.Kind, field: str, manifests: Manifests, state: LoadState) -> None:
    objects = manifests.of_kind(kind.name)
    parent_of = {code: obj.fields[field] for code, obj in objects.items() if isinstance(obj.fields.get(field), str)}
    article = "an" if kind.name[:1] in "aeiou" else "a"
    for cycle in find_cycles(parent_of):
        first = min(cycle, key=lambda c: (objects[c].location.file, objects[c].location.line))
        at = cycle.index(first)
        cycle = cycle[at:] + cycle[:at]
        obj = objects[first]
        if len(cycle) == 1:
            message = f"{describe(obj)}: {field}: {article} {kind.name} cannot be its own {field}"
        else:
            chain = " -> ".join(repr(c) for c in [*cycle, cycle[0]])
            message = (
                f"{describe(obj)}: {field}: {kind.manifest_key} form a cycle {chain}; "
                f"{article} {kind.name} cannot be its own ancestor"
            )
        state.at_field("error", message, obj, (field,), "value")


def reference_diagnostics(
    manifests: Manifests, live_codes: Mapping[str, set[str]] | None
) -> list[Diagnostic]:
    """References the manifests do not resolve: warnings offline (``live_codes`` None), errors
    when the live organization does not hold them either. One message per missing code,
    placed at its first use and counting the others."""
    declared = {name: set(per_kind) for name, per_kind in manifests.objects.items()}
    unresolved: dict[tuple[str, str], list[tuple[DesiredObject, kinds.FieldPath]]] = {}
    no_codes: set[str] = set()
    for kind in kinds.KINDS:
        if not kind.references:
            continue
        # A reference that is one plain field (an account's ``currency``, ``parent``) is read
        # here directly, as ``kinds.referenced_fields`` would (a non-empty string): at 100k
        # accounts the generic walk was most of this function's time.
        steps = [
            (ref, ref.plain_field, declared.get(ref.target, no_codes),
             live_codes.get(ref.target, no_codes) if live_codes is not None else no_codes)
            for ref in kind.references
        ]
        for obj in manifests.of_kind(kind.name).values():
            fields = obj.fields
            for ref, name, known, live in steps:
                if name is None:
                    for found, code, path in kinds.referenced_fields(kind, fields):
                        if found is ref and code not in known and code not in live:
                            unresolved.setdefault((ref.target, code), []).append((obj, path))
                    continue
                value = fields.get(name)
                if not isinstance(value, str) or value == "" or value in known or value in live:
                    continue
                unresolved.setdefault((ref.target, value), []).append((obj, (name,)))
    if not unresolved:
        return []
    firsts = [(uses[0][0], uses[0][1]) for uses in unresolved.values()]
    locations = manifests.locate_many(firsts)
    out: list[Diagnostic] = []
    for ((target, code), uses), location in zip(unresolved.items(), locations, strict=True):
        obj, path = uses[0]
        field = display_path(path)
        others = len(uses) - 1
        also = f" (also referenced by {others} more object{'s' if others != 1 else ''})" if others else ""
        what = "parent account" if target == "account" else target
        if live_codes is None:
            hint = " (m3ter creates USD in every new organization)" if (target, code) == ("currency", "USD") else ""
            message = (
                f"{describe(obj)}: {field}: {what} {code!r} is not declared in these manifests; "
                f"it must already exist in the organization{hint}{also}"
            )
            out.append(Diagnostic("warning", message, location))
        else:
            message = (
                f"{describe(obj)}: {field}: {what} {code!r} does not exist: it is neither declared in "
                f"the manifests nor present in the organization{also}"
            )
            out.append(Diagnostic("error", message, location))
    return out
