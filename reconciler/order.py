"""Apply order derived from constraints, never from a fixed list of kinds (DESIGN §3).

Each change states what must happen before it, from the data: what it references and what
references it, live and after the plan. The only input is the registry's ``references``
of each kind, so a kind registered later brings its constraints with its entry:

1. **A referrer waits for its target.** A change whose object will refer to something that
   this plan creates or restores runs after that create or unarchive.
2. **A target is removed after every referrer lets go.** An archive or delete runs after
   every change that stops referring to it (a delete of the referrer, an update moving it
   elsewhere) and after every change that still refers to it. When something the plan
   keeps (a managed object, or an unmanaged live one) still refers to it and m3ter refuses
   that removal (``Reference.blocks``), the plan is refused here, naming the blocker and the
   fix, instead of failing in apply.
3. **Forests stay forests at every step.** For a kind that refers to itself (an account's
   parent), the plan's end state must be acyclic, and a move under a new parent runs after
   every move or create above that parent in the end state. Then, whatever the
   parallelism, when a move runs, the new parent's ancestors are already where the plan
   puts them, which excludes the node being moved: no intermediate state has a cycle, so no
   move ever needs to be split into "to the top level, then under the new parent".
4. **Undeletable objects** (``Kind.undeletable``: the default USD currency) are refused.

The result is a topological order (ties broken by keeping creates and updates before
removals, then by registry position and the planner's order, so output is stable) with each
change's ``depends_on`` listing every constraint as indexes of earlier changes.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from reconciler import kinds
from reconciler.forest import find_cycles
from reconciler.kinds import Kind, Reference
from reconciler.plan import Change, LiveState, _code_of

Target = tuple[str, str]  # (kind name, code or singleton key)
_SHOWN = 5  # referrers named in one refusal


@dataclass(slots=True)
class Ordering:
    changes: list[Change]
    blockers: list[str] = field(default_factory=list)


def order_changes(changes: list[Change], live: LiveState, listed: Callable[[str, str], bool] | None = None,
                  ) -> Ordering:
    """Order ``changes`` (any order in; their ``depends_on`` is recomputed, never trusted).
    ``listed`` tells whether the manifests list an object, for the wording of refusals."""
    return _Constraints(changes, live, listed).solve()


class _Constraints:
    def __init__(self, changes: list[Change], live: LiveState, listed: Callable[[str, str], bool] | None) -> None:
        self.changes = changes
        self.live = live
        self.listed = listed
        self.at: dict[Target, int] = {(c.kind, c.key): i for i, c in enumerate(changes)}
        # i -> changes that run before i, only for the i that wait for something (a fresh
        # plan's 100k creates mostly wait for nothing: no set made for each)
        self.before: dict[int, set[int]] = {}
        self.blockers: list[str] = []
        refs = self._refs
        kind_of = kinds.get
        self.after_refs: list[list[tuple[Reference, str]]] = [
            [] if c.action == "delete" else refs(kind_of(c.kind), c.body) for c in changes
        ]

    def _refs(self, kind: Kind, obj: dict[str, Any]) -> list[tuple[Reference, str]]:
        """What an API-shaped object (a request body or a live entity) refers to, as
        (reference, code), in the registry's order. A reference that is one plain field is
        read directly, as ``api_references`` would (set, not None nor ""): a fresh 100k plan
        asks this of every change, a removal of every live referrer."""
        out: list[tuple[Reference, str]] = []
        for ref in kind.references:
            name = ref.api_field
            if name is None:
                values: Iterable[Any] = kinds.api_values(ref, obj)
            else:
                value = obj.get(name)
                if value is None or value == "":
                    continue
                if type(value) is str:
                    # _code_of for a plain string, inlined: the code itself, or the code of
                    # the live object with that id (the id when none was read)
                    if not ref.by_id:
                        out.append((ref, value))
                        continue
                    out.append((ref, self.live.code_by_id(ref.target).get(value, value)))
                    continue
                if type(value) is dict:  # _code_of for a placeholder (a create's new target)
                    placeholder = value.get("$ref")
                    code = placeholder.get("code") if isinstance(placeholder, dict) else value
                    if code is not None:
                        out.append((ref, str(code)))
                    continue
                values = (value,)
            for value in values:
                if value is None or value == "":
                    continue
                code = _code_of(ref, value, self.live)
                if code is not None:
                    out.append((ref, str(code)))
        return out

    def _after(self, first: int, then: int) -> None:
        if first != then:
            firsts = self.before.get(then)
            if firsts is None:
                self.before[then] = {first}
            else:
                firsts.add(first)

    def _label(self, target: Target) -> str:
        kind = kinds.get(target[0])
        return kind.name if kind.singleton else f"{target[0]} {target[1]}"

    # -- rules -------------------------------------------------------------------------------

    def needs(self) -> None:
        """Rule 1 (removals of referred targets are rule 2's)."""
        at, changes, before = self.at, self.changes, self.before
        for i, refs in enumerate(self.after_refs):
            for ref, code in refs:
                j = at.get((ref.target, code))
                if j is None or j == i or changes[j].action not in ("create", "unarchive"):
                    continue
                firsts = before.get(i)  # _after, inlined
                if firsts is None:
                    before[i] = {j}
                else:
                    firsts.add(j)

    def releases(self) -> None:
        """Rule 2: every live referrer of a removed target lets go first, or blocks it."""
        removed = {(c.kind, c.key): j for j, c in enumerate(self.changes) if c.action in ("archive", "delete")}
        if not removed:
            return
        holders: dict[Target, list[tuple[str, str, Reference, bool]]] = {}  # target -> (kind, key, ref, managed)
        seen: set[tuple[str, str, str]] = set()
        target_kinds = {t[0] for t in removed}
        for kind in kinds.KINDS:
            if not any(ref.target in target_kinds for ref in kind.references):
                continue
            for entity in self.live.of(kind.name):
                key = self.live.key_of(kind, entity)
                for ref, code in self._refs(kind, entity):
                    target = (ref.target, code)
                    if target not in removed:
                        continue
                    i = self.at.get((kind.name, key))
                    if i is not None:
                        self._after(i, removed[target])
                        if self.changes[i].action == "delete" or not any(
                            r.target == ref.target and c == code for r, c in self.after_refs[i]
                        ):
                            continue  # this change lets go of the target
                    if (kind.name, key, ref.target + code) not in seen:
                        seen.add((kind.name, key, ref.target + code))
                        managed = i is not None or self.listed is None or self.listed(kind.name, key)
                        holders.setdefault(target, []).append((kind.name, key, ref, managed))
        # Changes that start referring to a removed target (not live referrers).
        for i, refs in enumerate(self.after_refs):
            change = self.changes[i]
            for ref, code in refs:
                target = (ref.target, code)
                if target in removed and (change.kind, change.key, ref.target + code) not in seen:
                    seen.add((change.kind, change.key, ref.target + code))
                    self._after(i, removed[target])
                    holders.setdefault(target, []).append((change.kind, change.key, ref, True))
        for target, held in holders.items():
            removal = self.changes[removed[target]]
            blocking = [h for h in held if removal.action in h[2].blocks]
            if blocking:
                self.blockers.append(self._held_message(removal, blocking))
            else:
                names = ", ".join(f"{k} {key}" for k, key, _, _ in held[:_SHOWN])
                more = f" and {len(held) - _SHOWN} more" if len(held) > _SHOWN else ""
                warning = f"{names}{more} will still refer to it after it is archived"
                if warning not in removal.warnings:  # ordering again (a partial plan) adds nothing
                    removal.warnings.append(warning)

    def _held_message(self, removal: Change, held: list[tuple[str, str, Reference, bool]]) -> str:
        parts = []
        for kind, key, ref, managed in held[:_SHOWN]:
            who = self._label((kind, key))
            fix = ref.hint or f"change {ref.path}"
            if managed:
                parts.append(f"{who} refers to it through {ref.path} and the plan keeps that ({fix})")
            else:
                parts.append(
                    f"{who}, which the manifests do not list, refers to it through {ref.path} "
                    f"(list it with another {ref.path}, or prune it too)"
                )
        more = f"; and {len(held) - _SHOWN} more" if len(held) > _SHOWN else ""
        return (
            f"cannot {removal.action} {removal.kind} {removal.key}: " + "; ".join(parts) + more
            + f"; or keep {removal.kind} {removal.key} in the manifests"
        )

    def forests(self) -> None:
        """Rule 3 for every kind that refers to itself."""
        for kind in kinds.KINDS:
            for ref in kind.references:
                if ref.target == kind.name:
                    self._forest(kind, ref)

    def _forest(self, kind: Kind, ref: Reference) -> None:
        # Only a move of an existing object can close a cycle or need the moves above it (a
        # new object has no descendants; manifest-only cycles are validation errors), so a
        # plan without moves skips the walk over every live object.
        if not any(c.kind == kind.name and c.action != "create" and any(d.path == ref.path for d in c.diff)
                   for c in self.changes):
            return
        parent_live: dict[str, str | None] = {}
        for entity in self.live.of(kind.name):
            parent_live[self.live.key_of(kind, entity)] = next(
                (c for r, c in self._refs(kind, entity) if r is ref), None)
        parent_after = dict(parent_live)
        moving: dict[str, int] = {}  # code -> change that puts it under a new parent
        for i, change in enumerate(self.changes):
            if change.kind != kind.name:
                continue
            if change.action == "delete":
                parent_after.pop(change.key, None)
                continue
            new = next((c for r, c in self.after_refs[i] if r is ref), None)
            parent_after[change.key] = new
            if change.action == "create" or new != parent_live.get(change.key):
                moving[change.key] = i
        if not moving:
            return
        cycles = find_cycles(parent_after)
        for cycle in cycles:
            path = " -> ".join([*cycle, cycle[0]])
            self.blockers.append(
                f"the plan would make a cycle of {kind.name} {ref.path}s: {path} (each the {ref.path} of the "
                f"previous); change {ref.path} of one of them in the manifests"
            )
        if cycles:
            return
        for code, i in moving.items():
            if self.changes[i].action == "create":
                continue  # a new object has no descendants, so its create cannot close a cycle
            node = parent_after.get(code)
            steps = 0
            while node is not None and steps <= len(parent_after):
                j = moving.get(node)
                if j is not None:
                    self._after(j, i)
                node = parent_after.get(node)
                steps += 1

    def undeletable(self) -> None:
        """Rule 4."""
        for change in self.changes:
            if change.action != "delete":
                continue
            reason = kinds.get(change.kind).undeletable.get(change.key)
            if reason:
                self.blockers.append(f"cannot delete {change.kind} {change.key}: {reason}")

    # -- order -------------------------------------------------------------------------------

    def solve(self) -> Ordering:
        self.needs()
        self.releases()
        self.forests()
        self.undeletable()
        position = {k.name: n for n, k in enumerate(kinds.KINDS)}
        n_kinds = len(kinds.KINDS)
        changes = self.changes
        n = len(changes)

        def priority(i: int) -> tuple[int, int, int]:
            c = changes[i]
            if c.is_removal:  # removals of referrers (later kinds) first among ties
                return (1, n_kinds - position[c.kind], i)
            return (0, position[c.kind], i)

        waiting = [0] * n
        after: dict[int, list[int]] = {}
        for i, firsts in self.before.items():
            waiting[i] = len(firsts)
            for j in firsts:
                after.setdefault(j, []).append(i)
        order = _smallest_first(sorted(map(priority, range(n))), waiting, after, priority)
        if len(order) < n:  # cannot happen with the rules above; never hang
            stuck = [i for i in range(n) if i not in set(order)]
            shown = ", ".join(f"{changes[i].action} {self._label((changes[i].kind, changes[i].key))}"
                              for i in stuck[:_SHOWN])
            self.blockers.append(f"these changes wait for each other and cannot be ordered: {shown}")
            order.extend(stuck)
        new_index = [0] * n
        for new, old in enumerate(order):
            new_index[old] = new
        ordered = []
        for old in order:
            change = changes[old]
            waits_for = self.before.get(old)
            if waits_for:
                rank = new_index[old]
                change.depends_on = sorted(d for d in (new_index[j] for j in waits_for) if d < rank)
            else:
                change.depends_on = []
            ordered.append(change)
        return Ordering(ordered, self.blockers)


def _smallest_first(keys: list[tuple[int, int, int]], waiting: list[int], after: Mapping[int, list[int]],
                    priority: Callable[[int], tuple[int, int, int]]) -> list[int]:
    """The topological order that always runs, of the changes free to run, the one with the
    smallest priority key (each key ends with the change's index): ``keys`` is every change's
    key, sorted; ``waiting[i]`` how many changes ``i`` waits for; ``after[j]`` the changes
    that wait for ``j``. ``waiting`` is used up.

    The same order as a heap of the free changes, without pushing and popping every change
    through it: the sorted keys are walked in order, and only a change passed over because
    it was still waiting goes into a heap when it becomes free. The free change with the
    smallest key is then the smaller of the heap's top and the first free change at the walk
    (sorted, so no later free change is smaller). In a fresh plan almost every change waits
    only for changes with smaller keys and never sees the heap."""
    order: list[int] = []
    heap: list[tuple[int, int, int]] = []
    passed = bytearray(len(waiting))  # 1: passed over by the walk while waiting
    at, end = 0, len(keys)
    while True:
        while at < end and waiting[keys[at][2]]:
            passed[keys[at][2]] = 1
            at += 1
        if heap and (at == end or heap[0] < keys[at]):
            i = heapq.heappop(heap)[2]
        elif at < end:
            i = keys[at][2]
            at += 1
        else:
            return order
        order.append(i)
        for k in after.get(i, ()):
            waiting[k] -= 1
            if waiting[k] == 0 and passed[k]:
                heapq.heappush(heap, priority(k))
