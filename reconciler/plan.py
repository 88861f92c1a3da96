"""Desired state (manifests) against live state -> an ordered, reviewable list of changes.

The planner never talks to a backend: it is handed a snapshot (:class:`LiveState`) so
that ``plan``, ``apply`` and ``drift`` share one pure function and tests need no I/O. It
never names a kind either: what a kind references, which fields it spells differently
from the API, which mappings are records, all come from the registry (``kinds.py``).

What a reviewer reads is what apply does: each change carries the full request ``body``,
and its ``diff`` is computed from that body against the live object (:func:`diff_body`),
never from the manifests separately. A saved plan is checked by computing the same
function again against live *now*.

Decisions written down here because the contract leaves them open:

- A live object the manifests list is matched by code even when archived; an archived
  picklist entry listed without ``archived`` is restored (``unarchive``) only when its kind
  is pruned by ``archive`` — reconciler archived it, so listing it again means "bring it
  back". Otherwise ``archived`` absent leaves the flag alone (absent = unmanaged).
- Record-like mappings (``Kind.partial_fields``: ``address``) are managed key by key (an
  absent key keeps its live value); other mappings (``customFields``) are managed whole.
- ``settings.ignoreFields`` entries are top-level field names or dotted paths into a
  mapping (``address.region``, ``customFields.legacyId``); the body keeps their live value.
- A create body names a target that is itself being created as
  ``{"$ref": {"kind": ..., "code": ...}}``; apply swaps in the new id.
- A partial plan (``--only KIND[/CODE]``, :class:`Selection`) is the full plan cut down to
  the selected changes plus every change they depend on (``dependsOn``, closed
  transitively), then ordered again: so what a selected change needs first (a currency to
  create, a parent to create, a referrer to move off a currency being removed) comes with it,
  from the registry's references alone. Removals (archive, delete) come only from the
  selection, never as a dependency: a partial plan never prunes outside it. The summary
  counts the selected objects only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from reconciler import kinds
from reconciler.compare import MAKE_DIFF, FieldDiff, is_empty, same
from reconciler.kinds import READ_ONLY_FIELDS, Kind
from reconciler.manifest import gcpause
from reconciler.manifest.types import Manifests
from reconciler.nested_diff import NEVER_EMPTY, created_into, diff_created, diff_field, top_field

Action = Literal["create", "update", "archive", "unarchive", "delete"]
ACTIONS: tuple[Action, ...] = ("create", "update", "archive", "unarchive", "delete")
REMOVALS: frozenset[str] = frozenset({"archive", "delete"})
Entity = dict[str, Any]


@dataclass(slots=True)
class Change:
    action: Action
    kind: str
    key: str
    id: str | None
    version: int | None
    diff: list[FieldDiff]
    body: dict[str, Any]
    warnings: list[str] = field(default_factory=list)
    depends_on: list[int] = field(default_factory=list)  # indexes of earlier changes

    @property
    def is_removal(self) -> bool:
        """An archive that changes nothing but the flag, or a delete: what ``prune`` makes."""
        return self.action == "delete" or (self.action == "archive" and not self.diff_beyond_archived)

    @property
    def diff_beyond_archived(self) -> bool:
        return any(d.path != "archived" for d in self.diff)


@dataclass(frozen=True, slots=True)
class Unmanaged:
    kind: str
    key: str


@dataclass(slots=True)
class LiveState:
    """What was read from the organization: every object of a kind, or for kinds looked up
    by code (small manifests in a big organization), only those — then unmanaged objects of
    that kind cannot be counted."""

    objects: dict[str, list[Entity]]
    complete: dict[str, bool] = field(default_factory=dict)
    _codes_by_id: dict[str, dict[str, str]] = field(default_factory=dict)
    _ids_by_code: dict[str, dict[str, str]] = field(default_factory=dict)

    def of(self, kind: str) -> list[Entity]:
        return self.objects.get(kind, [])

    def is_complete(self, kind: str) -> bool:
        return self.complete.get(kind, True)

    def code_by_id(self, kind: str) -> dict[str, str]:
        """id -> code (key, for a composite identity) of the live objects of ``kind``: for
        references the API holds by id."""
        index = self._codes_by_id.get(kind)
        if index is None:
            registered = kinds.BY_NAME.get(kind)
            if registered is None or registered.by_code:
                index = {str(e["id"]): str(e.get("code")) for e in self.of(kind) if "id" in e}
            else:
                index = {str(e["id"]): self.key_of(registered, e) for e in self.of(kind) if "id" in e}
            self._codes_by_id[kind] = index
        return index

    def key_of(self, kind: Kind, entity: Mapping[str, Any]) -> str:
        """The key of an API-shaped object (a live entity or a request body) of ``kind``, as the
        manifests would write it: its code, the kind name for singletons, or its composite
        identity with references by code (``$ref`` placeholders of a body included)."""
        if kind.singleton:
            return kind.name
        if kind.by_code:
            return str(entity.get("code"))
        if kind.code_first:
            code = entity.get("code")
            if isinstance(code, str) and code:
                return code
        # Kind.key_from over the API's fields, unrolled: this runs for every live object of a
        # composite kind (10,000 pricings in the catalog benchmark)
        renamed = kind.renamed_by_path
        parts: list[str] = []
        for group in kind.identity_groups:
            for name in group:
                ref = renamed.get(name)
                raw = entity.get(name if ref is None else ref.api_path)
                value = raw if ref is None else _code_of(ref, raw, self)
                if value is not None and value != "":
                    parts.append(f"{name}={value}")
                    break
            else:
                return f"id={entity.get('id')}"
        return ", ".join(parts)

    def id_by_code(self, kind: str) -> dict[str, str]:
        index = self._ids_by_code.get(kind)
        if index is None:
            index = {code: live_id for live_id, code in self.code_by_id(kind).items()}
            self._ids_by_code[kind] = index
        return index


class SelectionError(ValueError):
    """A ``--only`` value that names no kind, or a code of a singleton."""


@dataclass(frozen=True, slots=True)
class Selection:
    """What a partial plan covers: whole kinds and single objects, as ``KIND[/CODE]``."""

    selectors: tuple[str, ...]  # as given (normalised, each once, in order)
    whole_kinds: frozenset[str]
    objects: frozenset[tuple[str, str]]

    def covers(self, kind: str, key: str) -> bool:
        return kind in self.whole_kinds or (kind, key) in self.objects

    def notice(self) -> str:
        return (f"partial plan (--only {', '.join(self.selectors)}): only these objects and what they depend on "
                "are planned; objects outside the selection are neither changed nor pruned")


def parse_selection(values: Iterable[str]) -> Selection | None:
    """``KIND`` or ``KIND/CODE`` values (kind names as in plans and JSON) -> a selection, or
    None when there are none. A code may itself contain ``/``: only the first one splits."""
    selectors: list[str] = []
    whole: set[str] = set()
    objects: set[tuple[str, str]] = set()
    for raw in values:
        name, slash, code = raw.strip().partition("/")
        kind = kinds.BY_NAME.get(name)
        if kind is None:
            raise SelectionError(f"{raw!r}: unknown kind {name!r}; known kinds: {', '.join(kinds.KIND_NAMES)}")
        if slash and kind.singleton:
            raise SelectionError(f"{raw!r}: {name} is a singleton and has no codes; write {name}")
        if slash and not code:
            raise SelectionError(f"{raw!r}: no code after '/'; write {name} for every {name}, or {name}/CODE")
        selector = f"{name}/{code}" if slash else name
        if selector in selectors:
            continue
        selectors.append(selector)
        if slash:
            objects.add((name, code))
        else:
            whole.add(name)
    if not selectors:
        return None
    return Selection(tuple(selectors), frozenset(whole), frozenset(objects))


def select_changes(changes: list[Change], selection: Selection) -> list[Change]:
    """The selected changes and, transitively, every change they depend on except removals
    outside the selection; in the order given (``changes`` carry their ``depends_on``)."""
    keep = {i for i, c in enumerate(changes) if selection.covers(c.kind, c.key)}
    todo = list(keep)
    while todo:
        for j in changes[todo.pop()].depends_on:
            c = changes[j]
            if j in keep or (c.action in REMOVALS and not selection.covers(c.kind, c.key)):
                continue
            keep.add(j)
            todo.append(j)
    return [c for i, c in enumerate(changes) if i in keep]


@dataclass(slots=True)
class Plan:
    organization: str
    backend: str
    changes: list[Change]
    unchanged: int
    unmanaged: list[Unmanaged]
    warnings: list[str] = field(default_factory=list)
    refusals: list[str] = field(default_factory=list)  # safety limits breached (need --force)
    uncounted: list[str] = field(default_factory=list)  # kinds whose unmanaged were not counted
    # Plans that cannot succeed (a delete something the plan keeps still needs, a parent
    # cycle): refused at plan time whatever the flags, each naming the blocker and the fix.
    blockers: list[str] = field(default_factory=list)
    max_remove_percent: float = 30.0  # the safety threshold the refusals were computed with
    # Kinds read by code rather than listed whole, and the codes read: a saved plan is
    # checked against live read the same way, so it sees what the plan saw.
    read_by_code: dict[str, list[str]] = field(default_factory=dict)
    # ``--only`` selectors of a partial plan (empty: the whole organization); in the JSON
    # document and its digest, so a reviewer sees, and apply --plan keeps, the selection.
    only: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, int]:
        counts: dict[str, int] = {a: 0 for a in ACTIONS}
        for change in self.changes:
            counts[change.action] += 1
        return {**counts, "unchanged": self.unchanged, "unmanaged": len(self.unmanaged)}

    @property
    def has_changes(self) -> bool:
        return bool(self.changes)

    def deletes_of(self, kind: str) -> list[Change]:
        return [c for c in self.changes if c.action == "delete" and c.kind == kind]


# --------------------------------------------------------------------------------------------


def build_plan(
    manifests: Manifests,
    live: LiveState,
    *,
    organization: str,
    backend: str,
    only: Selection | None = None,
) -> Plan:
    """Compare every managed kind and return the changes in an order derived from what
    each change needs (``reconciler.order``); with ``only``, the partial plan of the
    selection (see the module notes).

    The garbage collector is paused while the changes are made and ordered, and they are
    kept out of its later walks (``gcpause``): they hold no cycles, and at 100k changes the
    collector's full walks cost seconds."""
    with gcpause.paused():
        plan = _build_plan(manifests, live, organization=organization, backend=backend, only=only)
        gcpause.settle()  # before the collector is back on: see gcpause.settle
    return plan


def _build_plan(
    manifests: Manifests, live: LiveState, *, organization: str, backend: str, only: Selection | None
) -> Plan:
    from reconciler.order import order_changes

    planner = _Planner(manifests, live, track_unchanged=only is not None)
    for kind in kinds.KINDS:
        if kind.singleton:
            planner.plan_singleton(kind)
        else:
            planner.plan_keyed(kind)
    planner.named_removals()

    def listed(kind: str, key: str) -> bool:
        return key in manifests.of_kind(kind)

    ordering = order_changes(planner.changes, live, listed)
    unchanged, unmanaged, warnings = planner.unchanged, planner.unmanaged, []
    if only is not None:
        ordering = order_changes(select_changes(ordering.changes, only), live, listed)
        unchanged = sum(1 for kind, key in planner.unchanged_keys if only.covers(kind, key))
        unmanaged = [u for u in unmanaged if only.covers(u.kind, u.key)]
        warnings = [only.notice(), *_unmatched(only, manifests, live)]
    # A planner blocker stands when the change it is about is in the plan (a partial plan
    # without that change is not blocked by it).
    planned = {(c.kind, c.key) for c in ordering.changes}
    planner_blockers = [message for kind, key, message in planner.blockers if (kind, key) in planned]
    limit = float(manifests.settings.safety.maxRemovePercent)
    plan = Plan(
        organization=organization,
        backend=backend,
        changes=ordering.changes,
        unchanged=unchanged,
        unmanaged=unmanaged,
        warnings=warnings,
        uncounted=[k.name for k in kinds.KINDS if k.keyed and not live.is_complete(k.name)],
        blockers=[*planner_blockers, *ordering.blockers],
        max_remove_percent=limit,
        only=list(only.selectors) if only is not None else [],
    )
    plan.refusals = safety_refusals(plan.changes, live, limit)
    return plan


def _unmatched(only: Selection, manifests: Manifests, live: LiveState) -> list[str]:
    """A selected code that neither the manifests nor the organization hold is most likely a
    typo: say so rather than show an empty plan that looks like "in sync"."""
    out = []
    for kind_name, code in sorted(only.objects):
        kind = kinds.get(kind_name)
        if code in manifests.of_kind(kind_name) or any(live.key_of(kind, e) == code for e in live.of(kind_name)):
            continue
        where = "the manifests or the organization" if live.is_complete(kind_name) else "the manifests"
        out.append(f"--only {kind_name}/{code} matches no {kind_name} in {where}")
    return out


# What _Planner._same does with a desired field that is not plainly equal (_Planner._field_rules)
_PLAIN, _CODE, _IGNORED, _RENAMED, _PARTIAL, _ORDERED = range(6)


class _Planner:
    def __init__(self, manifests: Manifests, live: LiveState, *, track_unchanged: bool = False) -> None:
        self.manifests = manifests
        self.live = live
        self.settings = manifests.settings
        self.changes: list[Change] = []
        self.unchanged = 0
        # which objects are unchanged, only for partial plans (which count the selection's)
        self.track_unchanged = track_unchanged
        self.unchanged_keys: list[tuple[str, str]] = []
        self.unmanaged: list[Unmanaged] = []
        self.blockers: list[tuple[str, str, str]] = []  # (kind, key of the change, message)
        self.ignored_by_kind: dict[str, tuple[str, ...]] = {
            k.name: tuple(getattr(self.settings.ignoreFields, k.name, [])) for k in kinds.KINDS
        }
        self._rules_by_kind: dict[str, dict[str, int]] = {}  # see _field_rules

    # -- per kind ----------------------------------------------------------------------------

    def plan_singleton(self, kind: Kind) -> None:
        desired = self.manifests.of_kind(kind.name).get(kind.name)
        if desired is None:
            return
        live_items = self.live.of(kind.name)
        live = live_items[0] if live_items else {}
        self._plan_existing(kind, kind.name, desired.fields, live, forced_action=None)

    def plan_keyed(self, kind: Kind) -> None:
        desired_by_code = self.manifests.of_kind(kind.name)
        live_by_code: dict[str, Entity] = {}
        if kind.by_code:
            for entity in self.live.of(kind.name):
                live_by_code.setdefault(str(entity.get("code")), entity)
        else:
            for entity in self.live.of(kind.name):
                live_by_code.setdefault(self.live.key_of(kind, entity), entity)
        prune_mode = getattr(self.settings.prune, kind.manifest_key, False)

        # _plan_existing unrolled for the common case (at 100k accounts the calls showed):
        # the quick check, then only a change that may differ goes on to its body
        restores = kind.archivable and prune_mode == "archive"
        same_ = self._same
        for code, desired in desired_by_code.items():
            live = live_by_code.get(code)
            if live is None:
                body = self._create_body(kind, desired.fields)
                self.changes.append(Change("create", kind.name, code, None, None,
                                           diff_body(kind, body, {}, self.live), body))
                continue
            fields = desired.fields
            if restores and "archived" not in fields and live.get("archived") is True:
                fields = {**fields, "archived": False}
            if same_(kind, fields, live):
                self._unchanged(kind, code)
            else:
                self._plan_changed(kind, code, fields, live, forced_action=None)

        for code, live in live_by_code.items():
            if code in desired_by_code:
                continue
            if prune_mode == "archive" and kind.archivable:
                if live.get("archived") is True:
                    self.unmanaged.append(Unmanaged(kind.name, code))
                    continue
                self._plan_existing(kind, code, {"archived": True}, live, forced_action="archive")
            elif prune_mode == "delete" and kind.deletable:
                change = Change("delete", kind.name, code, live.get("id"), live.get("version"), [], {})
                if kind.delete_warning:
                    change.warnings.append(kind.delete_warning)
                self.changes.append(change)
            else:
                self.unmanaged.append(Unmanaged(kind.name, code))

    def named_removals(self) -> None:
        """A delete of something the manifests name (even through a field ``ignoreFields``
        leaves unmanaged, so the body does not refer to it) leaves the manifests pointing at
        nothing: the next plan would fail validation. Refused here instead."""
        deleted = {(c.kind, c.key) for c in self.changes if c.action == "delete"}
        if not deleted:
            return
        for obj in self.manifests:
            for ref, code, path in kinds.referenced_fields(kinds.get(obj.kind), obj.fields):
                if (ref.target, code) in deleted:
                    where = obj.kind if kinds.get(obj.kind).singleton else f"{obj.kind} {obj.key}"
                    field_path = ".".join(str(p) for p in path)
                    self.blockers.append((ref.target, code,
                        f"cannot delete {ref.target} {code}: the manifests name it ({where}, {field_path}); list it "
                        f"in the manifests or change {field_path}"
                    ))

    def _plan_existing(self, kind: Kind, key: str, fields: Mapping[str, Any], live: Entity,
                       forced_action: Action | None) -> None:
        if self._same(kind, fields, live):
            self._unchanged(kind, key)
            return
        self._plan_changed(kind, key, fields, live, forced_action)

    def _plan_changed(self, kind: Kind, key: str, fields: Mapping[str, Any], live: Entity,
                      forced_action: Action | None) -> None:
        """``_plan_existing`` once the quick check has said "may differ"."""
        body = self._update_body(kind, fields, live)
        diff = diff_body(kind, body, live, self.live)
        if not diff:  # the quick check is cautious: only the body's diff is authoritative
            self._unchanged(kind, key)
            return
        change = Change(action_of(diff, forced_action or "update"), kind.name, key, live.get("id"),
                        live.get("version"), diff, body)
        change.warnings.extend(field_warnings(kind, diff))
        self.changes.append(change)
        missing = [f for f in kind.put_required if is_empty(body.get(f))]
        if missing:
            where = kind.name if kind.singleton else f"{kind.name} {key}"
            self.blockers.append((kind.name, key,
                f"cannot update {where}: m3ter requires {', '.join(missing)} on every update and the "
                f"organization has no value; set {', '.join(missing)} under {kind.manifest_key} in the manifests"
            ))
        # The manifests' fields laid over the live ones can break a rule across fields that
        # neither breaks alone (a new startDate after the live endDate): m3ter would refuse
        # the PUT, so the plan is refused now, naming the rule.
        if not (kind.body_rules or kind.exclusive_api_fields):
            return  # most kinds (accounts: every update of a big plan) have no such rule
        sent = {k: v for k, v in body.items() if v is not None}
        for problem in kind.body_problems(sent):
            where = kind.name if kind.singleton else f"{kind.name} {key}"
            self.blockers.append((kind.name, key,
                f"cannot update {where}: with the fields the manifests leave to the organization, the "
                f"update would be refused ({problem}); set those fields in the manifests too"
            ))

    def _unchanged(self, kind: Kind, key: str) -> None:
        self.unchanged += 1
        if self.track_unchanged:
            self.unchanged_keys.append((kind.name, key))

    # -- comparison and bodies ---------------------------------------------------------------

    def _field_rules(self, kind: Kind) -> dict[str, int]:
        """What ``_same`` must do with a desired field whose value is not plainly equal to the
        live one, for the names that are not plain fields (code, then ignored, renamed, record,
        ordered list: the first that applies). Worked out once per kind instead of once per
        field of every object (at 100k accounts these tests were a large part of ``_same``);
        names absent from the result are plain fields, compared as unordered."""
        rules = self._rules_by_kind.get(kind.name)
        if rules is not None:
            return rules
        rules = {}
        for name in kind.ordered_lists:
            rules[name] = _ORDERED
        for name in kind.partial_fields:
            rules[name] = _PARTIAL
        for name in kind.renamed_by_path:
            rules[name] = _RENAMED
        for path in self.ignored_by_kind[kind.name]:
            # a desired field ``name`` is touched by an ignored ``path`` when ``path == name``
            # or ``path`` starts with ``name + "."``: exactly ``path`` and its prefixes that
            # end before a dot
            rules[path] = _IGNORED
            for at, char in enumerate(path):
                if char == ".":
                    rules[path[:at]] = _IGNORED
        rules["code"] = _CODE
        self._rules_by_kind[kind.name] = rules
        return rules

    def _same(self, kind: Kind, desired: Mapping[str, Any], live: Mapping[str, Any]) -> bool:
        """A quick check that ``live`` already satisfies ``desired``, without building a
        body: the equal case is by far the most common (most fields of most objects at
        100k). It may say "different" where the body's diff then finds nothing; it never
        says "same" where the body would change something (a property test holds it to that,
        and ``tests/test_plan_same.py`` to the rules spelled out field by field).

        Every test on a value is one of ``compare.same``'s own, inlined for the exact types
        manifests and JSON produce (``str``, ``int``, ``bool`` of one type, and flat dicts);
        anything else is handed to ``same``."""
        rules = self._field_rules(kind)
        renamed = kind.renamed_by_path
        live_get = live.get
        for name, value in desired.items():
            t = type(value)
            live_value = live_get(name)
            if (t is str or t is int or t is bool) and type(live_value) is t and value == live_value \
                    and name not in renamed:
                continue
            rule = rules.get(name, _PLAIN)
            if rule == _PLAIN:
                if t is dict and type(live_value) is dict:
                    # same()'s dict case (a map managed whole: customFields), with same()'s
                    # own first test inlined for its values
                    for k, v in live_value.items():
                        if v is not None and k not in value:
                            return False
                    if not _each_same(value, live_value.get):
                        return False
                elif not same(value, live_value, ordered=False):
                    return False
            elif rule == _CODE:
                continue
            elif rule == _IGNORED:
                return False  # rare: let the body decide what the ignored paths leave
            elif rule == _RENAMED:
                ref = renamed[name]
                api_value = live_get(ref.api_path)
                if ref.by_id and type(api_value) is str and api_value:
                    # _code_of for the usual case, an id read from the API (``parentAccountId``)
                    code = self.live.code_by_id(ref.target).get(api_value, api_value)
                else:
                    code = _code_of(ref, api_value, self.live)
                if value != code:
                    return False
            elif rule == _PARTIAL and (t is dict or isinstance(value, Mapping)):
                part: Mapping[Any, Any] = live_value if (type(live_value) is dict or isinstance(live_value, Mapping)) \
                    else {}
                if not _each_same(value, part.get):
                    return False
            elif not same(value, live_value, ordered=name in kind.ordered_lists):
                return False
        return True

    def _target_ref(self, ref: kinds.Reference, code: Any) -> Any:
        """The API value for a manifest reference: the code, or the live id, or a ``$ref``
        placeholder when the target is created in the same apply."""
        if not ref.by_id or code is None:
            return code
        live_id = self.live.id_by_code(ref.target).get(code)
        return live_id if live_id is not None else {"$ref": {"kind": ref.target, "code": code}}

    def _create_body(self, kind: Kind, desired: Mapping[str, Any]) -> dict[str, Any]:
        renamed = kind.renamed_by_path
        body: dict[str, Any] = {}
        for name, value in desired.items():
            if value is None:
                continue
            ref = renamed.get(name)
            if ref is not None:
                body[ref.api_path] = self._target_ref(ref, value)
            elif name in kind.partial_fields and isinstance(value, Mapping):
                body[name] = {k: v for k, v in value.items() if v is not None}
            else:
                body[name] = value
        return body

    def _update_body(self, kind: Kind, desired: Mapping[str, Any], live: Mapping[str, Any]) -> dict[str, Any]:
        """PUT replaces the whole entity: start from the live object so unmanaged and
        ignored fields keep their values, then lay the managed fields over it."""
        body = put_body(live)
        ignored = self.ignored_by_kind[kind.name]
        renamed = kind.renamed_by_path
        for name, value in desired.items():
            if name in ignored:
                continue
            ref = renamed.get(name)
            target = ref.api_path if ref is not None else name
            if value is None:
                body.pop(target, None)
            elif ref is not None:
                body[target] = self._target_ref(ref, value)
            elif name in kind.partial_fields and isinstance(value, Mapping):
                merged = dict(live.get(name) or {})
                for k, v in value.items():
                    if v is None:
                        merged.pop(k, None)
                    else:
                        merged[k] = v
                body[name] = merged
            else:
                body[name] = value
        for group in kind.exclusive_fields:
            # one of these is named: the live value of another (a pricing moving from its plan
            # template to a plan) must go, or the body holds two
            if any(desired.get(name) is not None and name not in ignored for name in group):
                for other in group:
                    if other not in desired and other not in ignored:
                        ref = renamed.get(other)
                        body.pop(ref.api_path if ref is not None else other, None)
        for path in ignored:
            if "." in path:
                _keep_live(body, live, path.split("."))
        return body


def _keep_live(body: dict[str, Any], live: Mapping[str, Any], parts: list[str]) -> None:
    """Put the live value back at a dotted path of ``body`` (or remove it when live has none)."""
    head, rest = parts[0], parts[1:]
    node = body.get(head)
    live_node = live.get(head)
    if not rest:
        if live_node is None:
            body.pop(head, None)
        else:
            body[head] = live_node
        return
    if not isinstance(node, dict):
        return
    node = dict(node)
    _keep_live(node, live_node if isinstance(live_node, Mapping) else {}, rest)
    body[head] = node


def _code_of(ref: kinds.Reference, value: Any, live: LiveState) -> Any:
    """The code a reference's API value names: the value itself for references by code; for
    references by id the live object's code (the id itself when that object was not read),
    or the code inside a ``$ref`` placeholder."""
    if value is None or value == "":
        return None
    if isinstance(value, dict):
        ref_obj = value.get("$ref")
        return ref_obj.get("code") if isinstance(ref_obj, dict) else value
    if not ref.by_id:
        return value
    return live.code_by_id(ref.target).get(str(value), str(value))


def _each_same(desired: Mapping[Any, Any], live_get: Callable[[Any], Any]) -> bool:
    """``same(v, live[k])`` for every desired item, with ``same``'s own first test inlined
    (equal plain values of one type): the maps of ``_Planner._same`` (a record managed key by
    key, a map managed whole) hold a few such values for each of 100k accounts."""
    for k, v in desired.items():
        lv = live_get(k)
        tv = type(v)
        if (tv is str or tv is int or tv is bool) and type(lv) is tv and v == lv:
            continue
        if not same(v, lv):
            return False
    return True


def diff_body(kind: Kind, body: Mapping[str, Any], live: Mapping[str, Any], index: LiveState) -> list[FieldDiff]:
    """Field-level differences between a request body and the live object it replaces (``{}``
    for a create): exactly what apply will change, in the manifests' terms (``parent`` and
    codes, not ``parentAccountId`` and ids). Plans and saved-plan checks both use it, so a
    reviewed diff and the body sent can never disagree. Changes inside a field are named per
    item or key (``currencyConversions[GBP→USD].multiplier``; ``reconciler.nested_diff``)."""
    renamed_api = kind.renamed_by_api
    out: list[FieldDiff] = []
    if not live:  # a create: every field is new (``diff_created`` is ``diff_field`` against None)
        append = out.append
        for name, value in body.items():
            if name in READ_ONLY_FIELDS:
                continue
            ref = renamed_api.get(name)
            if ref is not None:
                after = _code_of(ref, value, index)
                if after is not None:
                    append(MAKE_DIFF(FieldDiff, (ref.path, None, after)))
                continue
            # diff_created, inlined for a fresh plan's million fields: a scalar is new, a
            # mapping is named key by key (``diff_created``'s own cases, in its order)
            t = type(value)
            if t in NEVER_EMPTY:
                append(MAKE_DIFF(FieldDiff, (name, None, value)))
            elif t is dict:
                created_into(name, value, out)
            else:
                out.extend(diff_created(name, value))
        return out
    for name, value in body.items():
        if name in READ_ONLY_FIELDS:
            continue
        live_value = live.get(name)
        ref = renamed_api.get(name)
        if ref is not None:
            before, after = _code_of(ref, live_value, index), _code_of(ref, value, index)
            if before != after:
                out.append(FieldDiff(ref.path, before, after))
            continue
        out.extend(diff_field(name, value, live_value, ordered=name in kind.ordered_lists,
                              identities=kind.list_identity))
    for name, live_value in live.items():
        if name in body or name in READ_ONLY_FIELDS or is_empty(live_value):
            continue
        ref = renamed_api.get(name)
        if ref is not None:
            out.append(FieldDiff(ref.path, _code_of(ref, live_value, index), None))
        else:
            out.append(FieldDiff(name, live_value, None))
    return out


def action_of(diff: Iterable[FieldDiff], default: Action = "update") -> Action:
    """What a change to an existing object is, from its diff: a change of ``archived`` makes
    it an archive or unarchive. Plans and saved-plan checks both name changes this way."""
    action = default
    for d in diff:
        if d.path == "archived":
            action = "archive" if d.after is True else "unarchive"
    return action


def put_body(live: Mapping[str, Any]) -> dict[str, Any]:
    """Start of a PUT body: the live object without read-only fields, plus the version read
    (the server rejects a PUT whose version is not the current one)."""
    body = {k: v for k, v in live.items() if k not in READ_ONLY_FIELDS}
    if "version" in live:
        body["version"] = live["version"]
    return body


def field_warnings(kind: Kind, diff: Iterable[FieldDiff]) -> list[str]:
    """The registry's warnings for the fields a change touches, each once."""
    out: list[str] = []
    for d in diff:
        warning = kind.change_warnings.get(top_field(d.path))
        if warning is not None and warning.applies(d.before, d.after) and warning.message not in out:
            out.append(warning.message)
    return out


def safety_refusals(changes: list[Change], live: LiveState, limit: float) -> list[str]:
    """``settings.safety.maxRemovePercent``: removals of more than this share of a kind's live
    objects (when it has at least 10) need ``--force``. Computed from the changes, so a saved
    plan's refusals are recomputed, never read from the file."""
    # one pass over the changes, not one per kind (18 passes over a 100k-change plan)
    removals: dict[str, int] = {}
    for c in changes:
        if c.action in REMOVALS and c.is_removal:
            removals[c.kind] = removals.get(c.kind, 0) + 1
    out: list[str] = []
    for kind in kinds.KINDS:
        if kind.singleton:
            continue
        removing = removals.get(kind.name, 0)
        total = len(live.of(kind.name))
        if removing == 0 or total < 10:
            continue
        share = 100.0 * removing / total
        if share > limit:
            out.append(
                f"refusing to archive or delete {removing} of {total} live {kind.name} objects "
                f"({share:.0f}%), more than settings.safety.maxRemovePercent ({limit:g}%); "
                "check the manifests, then re-run with --force if this is intended"
            )
    return out
