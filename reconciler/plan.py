"""Desired state (manifests) against live state -> an ordered, reviewable list of changes.

The planner never talks to a backend: it is handed a snapshot (:class:`LiveState`) so
that ``plan``, ``apply`` and ``drift`` share one pure function and tests need no I/O.

Decisions written down here because the contract leaves them open:

- A live object the manifests list is matched by code even when archived; an archived
  picklist entry listed without ``archived`` is restored (``unarchive``) only when its kind
  is pruned by ``archive`` — reconciler archived it, so listing it again means "bring it
  back". Otherwise ``archived`` absent leaves the flag alone (absent = unmanaged).
- ``address`` is managed key by key (an absent key keeps its live value); ``customFields``
  maps are managed whole (names not listed are removed), like organization-level custom
  fields per entity type.
- A create body names a parent that is itself being created as
  ``{"$ref": {"kind": "account", "code": ...}}``; apply swaps in the new id.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from reconciler import kinds
from reconciler.compare import FieldDiff, diff_field, is_empty
from reconciler.kinds import READ_ONLY_FIELDS, Kind
from reconciler.manifest.types import DesiredObject, Manifests

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
        """Removals run after every create and update (DESIGN §3)."""
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

    def of(self, kind: str) -> list[Entity]:
        return self.objects.get(kind, [])

    def is_complete(self, kind: str) -> bool:
        return self.complete.get(kind, True)


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

    def summary(self) -> dict[str, int]:
        counts: dict[str, int] = {a: 0 for a in ACTIONS}
        for change in self.changes:
            counts[change.action] += 1
        return {**counts, "unchanged": self.unchanged, "unmanaged": len(self.unmanaged)}

    @property
    def has_changes(self) -> bool:
        return bool(self.changes)

    def account_deletes(self) -> list[Change]:
        return [c for c in self.changes if c.action == "delete" and c.kind == "account"]


# --------------------------------------------------------------------------------------------


def build_plan(
    manifests: Manifests,
    live: LiveState,
    *,
    organization: str,
    backend: str,
) -> Plan:
    """Compare every managed kind and return the changes in apply order."""
    planner = _Planner(manifests, live)
    for kind in kinds.in_apply_order():
        if kind.singleton:
            planner.plan_singleton(kind)
        else:
            planner.plan_keyed(kind)
    changes = planner.ordered_changes()
    plan = Plan(
        organization=organization,
        backend=backend,
        changes=changes,
        unchanged=planner.unchanged,
        unmanaged=planner.unmanaged,
        uncounted=[k.name for k in kinds.KINDS if k.keyed and not live.is_complete(k.name)],
    )
    plan.refusals = _safety_refusals(plan, manifests, live)
    return plan


class _Planner:
    def __init__(self, manifests: Manifests, live: LiveState) -> None:
        self.manifests = manifests
        self.live = live
        self.settings = manifests.settings
        self.changes: list[Change] = []
        self.unchanged = 0
        self.unmanaged: list[Unmanaged] = []
        accounts = live.of("account")
        self.account_code_by_id: dict[str, str] = {
            str(a["id"]): str(a.get("code")) for a in accounts if "id" in a
        }
        self.account_id_by_code: dict[str, str] = {v: k for k, v in self.account_code_by_id.items()}
        self.ignored_by_kind: dict[str, list[str]] = {
            k.name: list(getattr(self.settings.ignoreFields, k.name, [])) for k in kinds.KINDS
        }
        self._children_by_parent_id: dict[Any, list[str]] | None = None

    # -- per kind ----------------------------------------------------------------------------

    def plan_singleton(self, kind: Kind) -> None:
        desired = self.manifests.of_kind(kind.name).get(kind.name)
        if desired is None:
            return
        live_items = self.live.of(kind.name)
        live = live_items[0] if live_items else {}
        diff = self._diff(kind, desired.fields, live)
        if not diff:
            self.unchanged += 1
            return
        change = Change(
            action="update",
            kind=kind.name,
            key=kind.name,
            id=live.get("id"),
            version=live.get("version"),
            diff=diff,
            body=self._update_body(kind, desired.fields, live),
        )
        change.warnings.extend(_field_warnings(kind, diff))
        self.changes.append(change)

    def plan_keyed(self, kind: Kind) -> None:
        desired_by_code = self.manifests.of_kind(kind.name)
        live_by_code: dict[str, Entity] = {}
        for entity in self.live.of(kind.name):
            live_by_code.setdefault(str(entity.get("code")), entity)
        prune_mode = self._prune_mode(kind)

        for code, desired in desired_by_code.items():
            live = live_by_code.get(code)
            if live is None:
                self.changes.append(
                    Change("create", kind.name, code, None, None, self._create_diff(kind, desired),
                           self._create_body(kind, desired.fields))
                )
                continue
            fields = desired.fields
            if (
                kind.archivable
                and "archived" not in fields
                and prune_mode == "archive"
                and live.get("archived") is True
            ):
                fields = {**fields, "archived": False}
            diff = self._diff(kind, fields, live)
            if not diff:
                self.unchanged += 1
                continue
            action: Action = "update"
            for d in diff:
                if d.path == "archived":
                    action = "archive" if d.after is True else "unarchive"
            change = Change(action, kind.name, code, live.get("id"), live.get("version"), diff,
                            self._update_body(kind, fields, live))
            change.warnings.extend(_field_warnings(kind, diff))
            self.changes.append(change)

        for code, live in live_by_code.items():
            if code in desired_by_code:
                continue
            if prune_mode == "archive" and kind.archivable:
                if live.get("archived") is True:
                    self.unmanaged.append(Unmanaged(kind.name, code))
                    continue
                body = _put_body(live)
                body["archived"] = True
                change = Change("archive", kind.name, code, live.get("id"), live.get("version"),
                                [FieldDiff("archived", live.get("archived", False), True)], body)
            elif prune_mode == "delete" and kind.deletable:
                change = Change("delete", kind.name, code, live.get("id"), live.get("version"), [], {})
                if kind.delete_warning:
                    change.warnings.append(kind.delete_warning)
            else:
                self.unmanaged.append(Unmanaged(kind.name, code))
                continue
            change.warnings.extend(self._removal_warnings(kind, code))
            self.changes.append(change)

    # -- diff and bodies ---------------------------------------------------------------------

    def _prune_mode(self, kind: Kind) -> Any:
        return getattr(self.settings.prune, kind.manifest_key, False)

    def _diff(self, kind: Kind, desired: Mapping[str, Any], live: Mapping[str, Any]) -> list[FieldDiff]:
        ignored = self.ignored_by_kind[kind.name]
        ordered_lists = kind.ordered_lists
        live_get = live.get
        out: list[FieldDiff] = []
        for name, value in desired.items():
            # The common case first, before any other rule: an equal scalar of the same plain
            # type (str, int, bool) is never a change (most fields of most objects at 100k).
            t = type(value)
            live_value = live_get(name)
            if (t is str or t is int or t is bool) and type(live_value) is t and value == live_value \
                    and name != "parent":
                continue
            if name in ignored or name == "code":
                continue
            if name == "parent":
                live_parent = self.account_code_by_id.get(str(live_get("parentAccountId")))
                if live_get("parentAccountId") and live_parent is None:
                    live_parent = str(live_get("parentAccountId"))
                if value != live_parent and not (value is None and live_parent is None):
                    out.append(FieldDiff("parent", live_parent, value))
                continue
            found = diff_field(
                name,
                value,
                live_value,
                partial=name == "address",
                ordered=name in ordered_lists,
            )
            if found:
                out.extend(found)
        if ignored and out:
            out = [d for d in out if not any(d.path == f or d.path.startswith(f + ".") for f in ignored)]
        return out

    def _create_diff(self, kind: Kind, desired: DesiredObject) -> list[FieldDiff]:
        return [
            FieldDiff(name, None, value)
            for name, value in desired.fields.items()
            if not is_empty(value)
        ]

    def _parent_ref(self, code: str) -> Any:
        live_id = self.account_id_by_code.get(code)
        if live_id is not None:
            return live_id
        return {"$ref": {"kind": "account", "code": code}}

    def _create_body(self, kind: Kind, desired: Mapping[str, Any]) -> dict[str, Any]:
        body: dict[str, Any] = {}
        for name, value in desired.items():
            if value is None:
                continue
            if name == "parent":
                body["parentAccountId"] = self._parent_ref(value)
            elif isinstance(value, Mapping) and name == "address":
                body[name] = {k: v for k, v in value.items() if v is not None}
            else:
                body[name] = value
        return body

    def _update_body(self, kind: Kind, desired: Mapping[str, Any], live: Mapping[str, Any]) -> dict[str, Any]:
        """PUT replaces the whole entity: start from the live object so unmanaged and
        ignored fields keep their values, then lay the managed fields over it."""
        body = _put_body(live)
        ignored = self.ignored_by_kind[kind.name]
        for name, value in desired.items():
            if name in ignored:
                continue
            if name == "parent":
                if value is None:
                    body.pop("parentAccountId", None)
                else:
                    body["parentAccountId"] = self._parent_ref(value)
            elif value is None:
                body.pop(name, None)
            elif name == "address" and isinstance(value, Mapping):
                merged = dict(live.get("address") or {})
                for k, v in value.items():
                    if v is None:
                        merged.pop(k, None)
                    else:
                        merged[k] = v
                body[name] = merged
            else:
                body[name] = value
        return body

    def _removal_warnings(self, kind: Kind, code: str) -> list[str]:
        if kind.name != "currency":
            return []
        users = [
            f"{obj.kind} {obj.key}"
            for obj in self.manifests
            if any(ref.target == "currency" and c == code for ref, c in kinds.referenced_codes(
                kinds.get(obj.kind), obj.fields))
        ]
        if not users:
            return []
        shown = ", ".join(users[:5]) + (f" and {len(users) - 5} more" if len(users) > 5 else "")
        return [f"currency {code} is still referenced by {shown}"]

    # -- ordering ----------------------------------------------------------------------------

    def ordered_changes(self) -> list[Change]:
        """Creates and updates by kind rank, parents before children; then removals in
        reverse (children before parents, accounts before picklists); dependencies as
        indexes of earlier changes."""
        rank = {k.name: k.rank for k in kinds.KINDS}
        depth = self._account_depths()
        forward = [c for c in self.changes if not c.is_removal]
        removals = [c for c in self.changes if c.is_removal]
        forward.sort(key=lambda c: (rank[c.kind], depth.get(c.key, 0) if c.kind == "account" else 0))
        removals.sort(key=lambda c: (-rank[c.kind], -depth.get(c.key, 0) if c.kind == "account" else 0))
        ordered = forward + removals
        index = {(c.kind, c.key): i for i, c in enumerate(ordered)}
        creating = {(c.kind, c.key) for c in forward if c.action in ("create", "unarchive")}
        for i, change in enumerate(ordered):
            deps: set[int] = set()
            if not change.is_removal:
                desired = self.manifests.of_kind(change.kind).get(change.key)
                if desired is not None:
                    for ref, code in kinds.referenced_codes(kinds.get(change.kind), desired.fields):
                        target = (ref.target, code)
                        if target in creating and target != (change.kind, change.key):
                            deps.add(index[target])
            elif change.kind == "account":
                for child_code in self._live_children(change.key):
                    j = index.get(("account", child_code))
                    if j is not None and ordered[j].action == "delete":
                        deps.add(j)
            change.depends_on = sorted(d for d in deps if d < i)
        return ordered

    def _live_children(self, code: str) -> Iterable[str]:
        parent_id = self.account_id_by_code.get(code)
        if parent_id is None:
            return []
        if self._children_by_parent_id is None:
            # One pass over the live accounts, not one per deleted account (pruning thousands
            # of accounts in a 100k organization must not be quadratic).
            index: dict[Any, list[str]] = {}
            for a in self.live.of("account"):
                index.setdefault(a.get("parentAccountId"), []).append(str(a.get("code")))
            self._children_by_parent_id = index
        return self._children_by_parent_id.get(parent_id, [])

    def _account_depths(self) -> dict[str, int]:
        """Depth in the parent tree that results from manifests over live (root = 0)."""
        parent: dict[str, str | None] = {}
        for a in self.live.of("account"):
            p = a.get("parentAccountId")
            parent[str(a.get("code"))] = self.account_code_by_id.get(str(p)) if p else None
        for code, obj in self.manifests.of_kind("account").items():
            if "parent" in obj.fields:
                parent[code] = obj.fields["parent"]
        depth: dict[str, int] = {}

        def walk(code: str) -> int:
            seen: list[str] = []
            node: str | None = code
            while node is not None and node not in depth and node not in seen:
                seen.append(node)
                node = parent.get(node)
            base = depth.get(node, 0) if node is not None and node in depth else -1
            for n in reversed(seen):
                base += 1
                depth[n] = base
            return depth[code]

        for code in parent:
            if code not in depth:
                walk(code)
        return depth


def _put_body(live: Mapping[str, Any]) -> dict[str, Any]:
    """Start of a PUT body: the live object without read-only fields, plus the version read
    (the server rejects a PUT whose version is not the current one)."""
    body = {k: v for k, v in live.items() if k not in READ_ONLY_FIELDS}
    if "version" in live:
        body["version"] = live["version"]
    return body


def _field_warnings(kind: Kind, diff: list[FieldDiff]) -> list[str]:
    out: list[str] = []
    for d in diff:
        message = kind.change_warnings.get(d.path.split(".", 1)[0])
        if message is None:
            continue
        if d.path == "purchaseOrderNumber" and is_empty(d.before):
            continue  # setting a first number changes no existing bill
        if d.path == "consolidateBills" and d.after is not True:
            continue
        out.append(message)
    return out


def _safety_refusals(plan: Plan, manifests: Manifests, live: LiveState) -> list[str]:
    limit = float(manifests.settings.safety.maxRemovePercent)
    out: list[str] = []
    for kind in kinds.KINDS:
        if kind.singleton:
            continue
        removing = sum(1 for c in plan.changes if c.kind == kind.name and c.action in REMOVALS
                       and c.is_removal)
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
