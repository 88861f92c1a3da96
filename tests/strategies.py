"""Hypothesis strategies: random live organizations and random valid manifest sets against them.

A live organization (:class:`LiveOrg`) is plain data, drawn first and then seeded straight into
a fresh backend (:func:`seed`), so that it can be one our own apply never built: archived
entries still in use, forests up to depth 4, an organization billed in a currency nobody lists.
A manifest set (:class:`ManifestSet`) is drawn *against* a live organization, because the
interesting plans are the ones that move, swap, delete and re-point what is already there.
Both print as readable YAML-like text, so a counterexample can be read and turned into a
regression test by hand.

Manifests are constructed valid rather than filtered (``reconciler validate`` must accept them,
offline and against the live organization): codes from fixed pools that match the code
patterns, references only to codes declared in the manifests or live, no parent cycle among
listed accounts, at most 10 organization custom fields per entity type. What validation does
not reject stays in: a parent whose live parent is a listed child (a cycle only through live
data), a currency pruned while something still uses it, ``ignoreFields`` hiding a field a
removal depends on. The planner must either refuse those at plan time or apply them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from hypothesis import event
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument

from reconciler import kinds
from reconciler.backends.base import Backend
from reconciler.kinds import READ_ONLY_FIELDS

CURRENCY_POOL = ("USD", "EUR", "GBP", "JPY", "CHF")
PICKLIST_POOLS: dict[str, tuple[str, ...]] = {
    "creditReason": ("goodwill", "outage", "promo"),
    "debitReason": ("late_fee", "adjustment"),
    "transactionType": ("topup", "refund", "bonus"),
}
PICKLIST_KINDS = ("currency", *PICKLIST_POOLS)
ACCOUNT_POOL = ("a", "b", "c", "d", "e", "f", "g", "acme co")  # one with a space: a valid account code
MAX_DEPTH = 4  # live forests: a root plus at most three levels below it
CUSTOM_FIELD_TYPES = ("organization", "account", "product")
CUSTOM_FIELD_NAMES = ("tier", "region", "seats", "owner")
ROUNDING = ("UP", "DOWN", "HALF_UP", "HALF_EVEN")

CustomValue = str | int | float

custom_values: st.SearchStrategy[CustomValue] = st.one_of(
    st.sampled_from(["gold", "silver", "eu", "us", "x"]),
    st.integers(min_value=0, max_value=1000),
    st.sampled_from([0.5, 1.25, 2.0]),
)
custom_maps: st.SearchStrategy[dict[str, CustomValue]] = st.dictionaries(
    st.sampled_from(CUSTOM_FIELD_NAMES), custom_values, max_size=3
)


# -- live organizations -----------------------------------------------------------------------


@dataclass(frozen=True)
class LivePicklist:
    kind: str
    code: str
    name: str
    archived: bool
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class LiveAccount:
    code: str
    parent: str | None  # the code of an account earlier in LiveOrg.accounts
    currency: str | None
    custom_fields: Mapping[str, CustomValue] | None = None
    purchase_order: str | None = None


@dataclass(frozen=True)
class LiveOrg:
    """An organization as it is before the plan; ``picklists`` always holds USD (every m3ter
    organization starts with it), ``accounts`` lists parents before children."""

    picklists: tuple[LivePicklist, ...]
    org_currency: str
    conversions: tuple[tuple[str, str, float], ...]
    org_custom_fields: Mapping[str, Mapping[str, CustomValue]]
    accounts: tuple[LiveAccount, ...]

    def codes(self, kind: str) -> list[str]:
        if kind == "account":
            return [a.code for a in self.accounts]
        return [p.code for p in self.picklists if p.kind == kind]

    def picklist(self, kind: str, code: str) -> LivePicklist | None:
        return next((p for p in self.picklists if p.kind == kind and p.code == code), None)

    def account(self, code: str) -> LiveAccount | None:
        return next((a for a in self.accounts if a.code == code), None)

    def __repr__(self) -> str:
        lines = [f"LiveOrg(currency={self.org_currency}, conversions={list(self.conversions)}"]
        for p in self.picklists:
            lines.append(f"  {p.kind} {p.code}{' (archived)' if p.archived else ''} {dict(p.extra) or ''}".rstrip())
        for a in self.accounts:
            lines.append(
                f"  account {a.code!r} parent={a.parent!r} currency={a.currency!r}"
                + (f" customFields={dict(a.custom_fields)}" if a.custom_fields is not None else "")
            )
        if self.org_custom_fields:
            lines.append(f"  customFields {json.dumps(self.org_custom_fields)}")
        return "\n".join(lines) + ")"


@st.composite
def live_orgs(draw: st.DrawFn, *, max_accounts: int = 6) -> LiveOrg:
    picklists: list[LivePicklist] = []
    extra_currencies = draw(st.lists(st.sampled_from(CURRENCY_POOL[1:]), unique=True, max_size=3))
    for code in ("USD", *extra_currencies):
        extra: dict[str, Any] = {}
        if draw(st.booleans()):
            extra["maxDecimalPlaces"] = draw(st.integers(min_value=0, max_value=5))
        picklists.append(LivePicklist("currency", code, f"Currency {code}", draw(st.booleans()), extra))
    currency_codes = ["USD", *extra_currencies]
    for kind, pool in PICKLIST_POOLS.items():
        for code in draw(st.lists(st.sampled_from(pool), unique=True, max_size=2)):
            picklists.append(LivePicklist(kind, code, f"{kind} {code}", draw(st.booleans())))
    org_currency = draw(st.sampled_from(currency_codes))
    pairs = [(a, b) for a in currency_codes for b in currency_codes if a != b]
    chosen = draw(st.lists(st.sampled_from(pairs), unique=True, max_size=2)) if pairs else []
    conversions = tuple((a, b, draw(st.sampled_from([0.5, 1.1, 1.27, 2.0]))) for a, b in chosen)
    org_custom = draw(st.dictionaries(st.sampled_from(CUSTOM_FIELD_TYPES), custom_maps, max_size=2))

    accounts: list[LiveAccount] = []
    depth: dict[str, int] = {}
    for code in draw(st.lists(st.sampled_from(ACCOUNT_POOL), unique=True, max_size=max_accounts)):
        candidates = [a.code for a in accounts if depth[a.code] < MAX_DEPTH - 1]
        parent = draw(st.none() | st.sampled_from(candidates)) if candidates else None
        depth[code] = 0 if parent is None else depth[parent] + 1
        accounts.append(
            LiveAccount(
                code=code,
                parent=parent,
                currency=draw(st.none() | st.sampled_from(currency_codes)),
                custom_fields=draw(st.none() | custom_maps),
                purchase_order=draw(st.none() | st.just(f"PO-{code}")),
            )
        )
    return LiveOrg(tuple(picklists), org_currency, conversions, org_custom, tuple(accounts))


def _put_body(entity: Mapping[str, Any]) -> dict[str, Any]:
    body = {k: v for k, v in entity.items() if k not in READ_ONLY_FIELDS}
    body["version"] = entity["version"]
    return body


def seed(backend: Backend, org: LiveOrg) -> None:
    """Write ``org`` into a fresh organization through the backend interface (as someone
    clicking in the Console would), not through reconciler's planner."""
    currency = kinds.get("currency")
    for p in org.picklists:
        kind = kinds.get(p.kind)
        fields = {"code": p.code, "name": p.name, "archived": p.archived, **p.extra}
        existing = backend.find_by_code(kind, p.code)
        if existing is None:
            backend.create(kind, fields)
        else:  # USD, which every organization starts with
            backend.update(kind, str(existing["id"]), {**_put_body(existing), **fields})
    assert backend.find_by_code(currency, org.org_currency) is not None
    config_kind = kinds.get("organizationConfig")
    config = backend.get_singleton(config_kind)
    backend.put_singleton(
        config_kind,
        {
            **_put_body(config),
            # a fresh organization has none, and the PUT requires one (OrganizationConfigRequest)
            "daysBeforeBillDue": config.get("daysBeforeBillDue") or 30,
            "currency": org.org_currency,
            "currencyConversions": [{"from": a, "to": b, "multiplier": m} for a, b, m in org.conversions],
        },
    )
    if org.org_custom_fields:
        cf_kind = kinds.get("customFields")
        cf = backend.get_singleton(cf_kind)
        backend.put_singleton(cf_kind, {**_put_body(cf), **{k: dict(v) for k, v in org.org_custom_fields.items()}})
    account_kind = kinds.get("account")
    ids: dict[str, str] = {}
    for a in org.accounts:
        body: dict[str, Any] = {"code": a.code, "name": f"Account {a.code}", "emailAddress": "billing@example.com"}
        if a.parent is not None:
            body["parentAccountId"] = ids[a.parent]
        if a.currency is not None:
            body["currency"] = a.currency
        if a.custom_fields is not None:
            body["customFields"] = dict(a.custom_fields)
        if a.purchase_order is not None:
            body["purchaseOrderNumber"] = a.purchase_order
        ids[a.code] = str(backend.create(account_kind, body)["id"])


# -- manifest sets ----------------------------------------------------------------------------


@dataclass
class ManifestSet:
    """YAML documents by file name; ``write`` puts them in a directory for ``load_manifests``."""

    files: dict[str, list[dict[str, Any]]]

    def text(self) -> str:
        return "\n".join(
            f"# {name}\n" + yaml.safe_dump_all(docs, sort_keys=False, allow_unicode=True, width=1000)
            for name, docs in sorted(self.files.items())
        )

    def write(self, directory: Path) -> Path:
        directory.mkdir(parents=True, exist_ok=True)
        for name, docs in self.files.items():
            (directory / name).write_text(
                yaml.safe_dump_all(docs, sort_keys=False, allow_unicode=True, width=1000), encoding="utf-8"
            )
        return directory

    def __repr__(self) -> str:
        return "ManifestSet(\n" + self.text() + ")"


PRUNE_PICKLIST = st.sampled_from([False, False, "archive", "delete"])
IGNORABLE: dict[str, tuple[str, ...]] = {
    "account": ("purchaseOrderNumber", "currency", "parent", "customFields", "name"),
    "currency": ("name", "maxDecimalPlaces", "archived"),
    "organizationConfig": ("currencyConversions", "currency", "daysBeforeBillDue"),
    "customFields": ("account", "organization"),
    "creditReason": ("name",),
}


@st.composite
def _picklist_entries(draw: st.DrawFn, live: LiveOrg, kind: str, pool: Iterable[str]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    candidates = list(dict.fromkeys([*live.codes(kind), *pool]))
    for code in candidates:
        if not draw(st.booleans()):
            continue
        existing = live.picklist(kind, code)
        entry: dict[str, Any] = {"code": code}
        entry["name"] = existing.name if existing is not None and draw(st.booleans()) else f"{kind} {code} v2"
        archived = draw(st.sampled_from(["absent", "absent", True, False]))
        if archived != "absent":
            entry["archived"] = archived
        if kind == "currency":
            if draw(st.booleans()):
                entry["maxDecimalPlaces"] = draw(st.integers(min_value=0, max_value=5))
            if draw(st.integers(0, 3)) == 0:
                entry["roundingMode"] = draw(st.sampled_from(ROUNDING))
        out.append(entry)
    return out


@st.composite
def manifest_sets(draw: st.DrawFn, live: LiveOrg, *, live_cycles: bool = True) -> ManifestSet:
    """A valid manifest set against ``live``. With ``live_cycles`` False, a listed account's
    new parent is never a live account below it that the manifests do not re-parent (so the
    target forest has no cycle through unlisted accounts)."""
    docs: dict[str, Any] = {}

    def put(key: str, value: Any) -> None:
        docs[key] = value

    # picklists
    currencies = draw(_picklist_entries(live, "currency", CURRENCY_POOL))
    if currencies:
        put("currencies", currencies)
    for kind, pool in PICKLIST_POOLS.items():
        entries = draw(_picklist_entries(live, kind, pool))
        if entries:
            put(kinds.get(kind).manifest_key, entries)
    declared_currencies = [c["code"] for c in currencies]
    usable_currencies = list(dict.fromkeys([*declared_currencies, *live.codes("currency")]))

    # accounts: listed in a random order; a listed account's parent is drawn among accounts
    # listed before it (never a cycle among listed accounts) or live accounts not listed.
    live_codes = live.codes("account")
    new_codes = [c for c in ACCOUNT_POOL if c not in live_codes]
    # Mostly keep live accounts listed (that is where moves and swaps happen) and add a few.
    kept = [c for c in live_codes if draw(st.integers(0, 3)) > 0]
    added = draw(st.lists(st.sampled_from(new_codes), unique=True, max_size=3)) if new_codes else []
    listed = draw(st.permutations([*kept, *added]))
    accounts: list[dict[str, Any]] = []
    for position, code in enumerate(listed):
        entry: dict[str, Any] = {"code": code, "name": f"Account {code}", "emailAddress": "billing@example.com"}
        if draw(st.integers(0, 3)) == 0:
            entry["name"] = f"Account {code} renamed"
        earlier = list(listed[:position])
        unlisted_live = [c for c in live_codes if c not in listed]
        # A parent below this account in the live forest makes a swap (or a longer rotation).
        below = [c for c in earlier if c != code and _below(live, c, code)]
        choice = draw(st.sampled_from(["absent", "null", "pick", "pick", "below"]))
        parent_pool = earlier + unlisted_live
        if choice == "null":
            entry["parent"] = None
        elif choice == "below" and below:
            entry["parent"] = draw(st.sampled_from(below))
        elif choice in ("pick", "below") and parent_pool:
            entry["parent"] = draw(st.sampled_from(parent_pool))
        currency_choice = draw(st.sampled_from(["absent", "null", "pick"]))
        if currency_choice == "null":
            entry["currency"] = None
        elif currency_choice == "pick":
            entry["currency"] = draw(st.sampled_from(usable_currencies))
        if draw(st.integers(0, 3)) == 0:
            entry["customFields"] = draw(custom_maps)
        if draw(st.integers(0, 3)) == 0:
            entry["purchaseOrderNumber"] = draw(st.sampled_from([None, f"PO-{code}", f"PO-{code}-2"]))
        accounts.append(entry)
    if not live_cycles:
        _break_live_cycles(live, accounts)
    if accounts:
        put("accounts", accounts)

    # organization config
    if draw(st.booleans()):
        org: dict[str, Any] = {}
        if draw(st.booleans()):
            org["currency"] = draw(st.sampled_from(usable_currencies))
        if draw(st.booleans()):
            pairs = [(a, b) for a in usable_currencies for b in usable_currencies if a != b]
            chosen = draw(st.lists(st.sampled_from(pairs), unique=True, max_size=2)) if pairs else []
            org["currencyConversions"] = [
                {"from": a, "to": b, "multiplier": draw(st.sampled_from([0.5, 1.1, 1.27, 3.0]))} for a, b in chosen
            ]
        if draw(st.booleans()):
            org["daysBeforeBillDue"] = draw(st.integers(min_value=1, max_value=60))
        put("organization", org)

    # organization custom fields: listed entity types are managed whole
    if draw(st.booleans()):
        put("customFields", draw(st.dictionaries(st.sampled_from(CUSTOM_FIELD_TYPES), custom_maps, max_size=2)))

    # settings
    settings: dict[str, Any] = {}
    prune = {
        key: mode
        for key, mode in (
            ("currencies", draw(PRUNE_PICKLIST)),
            ("creditReasons", draw(PRUNE_PICKLIST)),
            ("debitReasons", draw(PRUNE_PICKLIST)),
            ("transactionTypes", draw(PRUNE_PICKLIST)),
            ("accounts", draw(st.sampled_from([False, "delete"]))),
        )
        if mode or draw(st.booleans())
    }
    if prune:
        settings["prune"] = prune
    if draw(st.integers(0, 3)) == 0:
        ignore = {}
        for kind_name, fields in IGNORABLE.items():
            chosen_fields = draw(st.lists(st.sampled_from(fields), unique=True, max_size=2))
            if chosen_fields:
                ignore[kind_name] = chosen_fields
        if ignore:
            settings["ignoreFields"] = ignore
    if draw(st.booleans()):
        settings["safety"] = {"maxRemovePercent": draw(st.sampled_from([30, 100]))}
    if settings:
        put("settings", settings)

    # spread over one to three files (lists merge across files; the singletons stay whole)
    n_files = draw(st.integers(min_value=1, max_value=3))
    files: dict[str, list[dict[str, Any]]] = {}
    for key, value in docs.items():
        name = f"m{draw(st.integers(0, n_files - 1))}.yaml"
        doc_list = files.setdefault(name, [{}])
        doc_list[0][key] = value
    if not files:
        files["empty.yaml"] = [{"accounts": []}]
    return ManifestSet(files)


def _below(live: LiveOrg, code: str, ancestor: str) -> bool:
    """Whether live account ``code`` lies under ``ancestor`` in the live forest."""
    found = live.account(code)
    node = found.parent if found else None
    seen: set[str] = set()
    while node is not None and node not in seen:
        if node == ancestor:
            return True
        seen.add(node)
        parent = live.account(node)
        node = parent.parent if parent else None
    return False


def target_parents(live: LiveOrg, accounts: list[dict[str, Any]]) -> dict[str, str | None]:
    """The parent of every account once the manifests hold (ignoring prune): a listed
    account's ``parent`` when given, else its live parent; unlisted accounts keep theirs."""
    parents: dict[str, str | None] = {a.code: a.parent for a in live.accounts}
    for entry in accounts:
        code = entry["code"]
        parents[code] = entry["parent"] if "parent" in entry else parents.get(code)
    return parents


def _break_live_cycles(live: LiveOrg, accounts: list[dict[str, Any]]) -> None:
    """Make the target forest acyclic by moving a listed account of each cycle to the top
    level (the live forest is acyclic, so every cycle holds a listed account with a parent)."""
    by_code = {e["code"]: e for e in accounts}
    while True:
        parents = target_parents(live, accounts)
        cycle = _a_cycle(parents)
        if not cycle:
            return
        victim = next(c for c in cycle if c in by_code and by_code[c].get("parent") is not None)
        by_code[victim]["parent"] = None


def _a_cycle(parents: Mapping[str, str | None]) -> list[str]:
    for start in parents:
        path: list[str] = []
        node: str | None = start
        while node is not None and node not in path:
            path.append(node)
            node = parents.get(node)
        if node is not None:
            return path[path.index(node):]
    return []


@dataclass
class Scenario:
    live: LiveOrg
    manifests: ManifestSet

    def __repr__(self) -> str:
        return f"Scenario(\n{self.live!r}\n{self.manifests!r})"


@st.composite
def scenarios(draw: st.DrawFn, *, max_accounts: int = 6, live_cycles: bool = True) -> Scenario:
    live = draw(live_orgs(max_accounts=max_accounts))
    return Scenario(live, draw(manifest_sets(live, live_cycles=live_cycles)))


# -- checking a scenario ----------------------------------------------------------------------


def snapshot(backend: Backend) -> str:
    """Everything live, ids and versions included, in a canonical text: equal before and
    after means nothing at all was written."""
    live = backend.fetch_live({k.name: None for k in kinds.KINDS})
    ordered = {name: sorted(entities, key=lambda e: str(e.get("id"))) for name, entities in sorted(live.items())}
    return json.dumps(ordered, sort_keys=True, indent=1)


def describe_changes(changes: Iterable[Any]) -> str:
    return "\n".join(
        f"  [{i}] {c.action} {c.kind} {c.key} dependsOn={c.depends_on} diff="
        + ", ".join(f"{d.path}: {d.before!r} -> {d.after!r}" for d in c.diff)
        for i, c in enumerate(changes)
    )


def reordered(changes: list[Any], choose: Callable[[list[int]], int]) -> list[Any]:
    """The changes in another order that keeps every ``depends_on`` (a linear extension of
    the dependency graph; ``choose`` picks the next among the ready ones), indexes remapped.

    Apply may run independent changes in any order at parallelism N; running them one by one
    in an adversarial order makes a missing dependency fail deterministically instead of
    only when threads happen to race."""
    remaining = set(range(len(changes)))
    placed: dict[int, int] = {}
    out: list[Any] = []
    while remaining:
        ready = sorted(i for i in remaining if all(d in placed for d in changes[i].depends_on))
        assert ready, "depends_on has a cycle"
        pick = choose(ready)
        remaining.discard(pick)
        placed[pick] = len(out)
        out.append(dataclasses.replace(changes[pick], depends_on=sorted(placed[d] for d in changes[pick].depends_on)))
    return out


def _event(label: str) -> None:
    """Count what each example exercised (``--hypothesis-show-statistics``), so a run shows
    how often plans converge and which refusals are met; outside a test it does nothing."""
    with contextlib.suppress(InvalidArgument):
        event(label)


def check_convergence(
    backend: Backend,
    manifests: ManifestSet,
    workdir: Path,
    *,
    parallelism: int,
    choose: Callable[[list[int]], int] | None = None,
) -> str:
    """The convergence property for one scenario, already seeded into ``backend``.

    Either the plan is refused at plan time with a message (errors instead of a plan, or
    ``Plan.blockers``), or one apply succeeds completely and the next plan is empty. The
    safety threshold (``plan.refusals``) and ``--allow-delete`` are treated as forced: they
    are a reviewer's brakes, not a statement that the plan cannot succeed. Returns
    ``"refused"``, ``"empty"`` or ``"converged"`` so callers can see what was exercised.
    With ``choose``, the changes run in an order picked by it among those ``depends_on``
    allows (see :func:`reordered`).
    """
    from reconciler.manifest import load_manifests
    from reconciler.services import plan_loaded, run_apply

    directory = manifests.write(workdir / "manifests")
    loaded = load_manifests([str(directory)])
    assert loaded.ok, "generated manifests must validate:\n" + "\n".join(d.format() for d in loaded.diagnostics)
    outcome = plan_loaded(loaded, backend)
    if outcome.plan is None:
        errors = [d.format() for d in outcome.diagnostics if d.is_error]
        assert errors, "no plan and no error message"
        _event("refused: invalid against live")
        return "refused"
    plan = outcome.plan
    blockers = list(getattr(plan, "blockers", None) or [])
    if blockers:
        assert all(isinstance(b, str) and b.strip() for b in blockers), blockers
        for blocker in blockers:  # "cannot delete currency EUR: ..." -> "cannot delete currency"
            _event("refused: " + " ".join(blocker.split(":", 1)[0].split()[:3]))
        return "refused"
    if not plan.changes:
        _event("empty")
        return "empty"
    _event("converged" if len(plan.changes) < 10 else "converged (10+ changes)")
    if choose is not None:
        plan = dataclasses.replace(plan, changes=reordered(plan.changes, choose))
    result = run_apply(plan, backend, parallelism=parallelism)
    if not result.ok:
        failed = [
            f"  [{o.index}] {o.status}: {o.change.action} {o.change.kind} {o.change.key}: {o.message}"
            for o in result.outcomes
            if o.status != "applied"
        ]
        raise AssertionError(
            f"apply (parallelism {parallelism}) did not succeed and the plan was not refused:\n"
            + "\n".join(failed)
            + "\nplan:\n"
            + describe_changes(plan.changes)
        )
    again = plan_loaded(load_manifests([str(directory)]), backend)
    assert again.plan is not None, [d.format() for d in again.diagnostics]
    assert not again.plan.changes, (
        "the plan after a successful apply is not empty:\n"
        + describe_changes(again.plan.changes)
        + "\nfirst plan:\n"
        + describe_changes(plan.changes)
    )
    return "converged"
