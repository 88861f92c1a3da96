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
    # catalog objects as manifests would write them (references by code, top level), in an
    # order that puts every target before its referrers; empty unless drawn with catalog=True
    catalog: tuple[tuple[str, Mapping[str, Any]], ...] = ()

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
        for kind_name, fields in self.catalog:
            lines.append(f"  {kind_name} {json.dumps(fields, sort_keys=True)}")
        return "\n".join(lines) + ")"

    def catalog_of(self, kind: str) -> list[Mapping[str, Any]]:
        return [fields for name, fields in self.catalog if name == kind]


@st.composite
def live_orgs(draw: st.DrawFn, *, max_accounts: int = 6, catalog: bool = False) -> LiveOrg:
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
    org = LiveOrg(tuple(picklists), org_currency, conversions, org_custom, tuple(accounts))
    if catalog:
        org = dataclasses.replace(org, catalog=draw(live_catalogs(org)))
    return org


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
    seed_catalog(backend, org, ids)


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
def manifest_sets(draw: st.DrawFn, live: LiveOrg, *, live_cycles: bool = True, catalog: bool = False) -> ManifestSet:
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
            # with a catalog, the organization part is tested lightly: the properties without
            # one cover its refusals (a pruned USD, a pruned parent still named), which would
            # otherwise refuse most catalog examples before the catalog is even applied
            ("currencies", draw(st.sampled_from([False, False, "archive"]) if catalog else PRUNE_PICKLIST)),
            ("creditReasons", draw(PRUNE_PICKLIST)),
            ("debitReasons", draw(PRUNE_PICKLIST)),
            ("transactionTypes", draw(PRUNE_PICKLIST)),
            ("accounts", draw(st.sampled_from([False, False, False, "delete"] if catalog else [False, "delete"]))),
        )
        if mode or draw(st.booleans())
    }
    if catalog:
        prune.update(draw(catalog_manifests(live, docs, accounts, usable_currencies, prune)))
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
def scenarios(
    draw: st.DrawFn, *, max_accounts: int = 6, live_cycles: bool = True, catalog: bool = False
) -> Scenario:
    live = draw(live_orgs(max_accounts=max_accounts, catalog=catalog))
    return Scenario(live, draw(manifest_sets(live, live_cycles=live_cycles, catalog=catalog)))


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
    from reconciler.services import ApplyRefused, check_apply_allowed, plan_loaded, run_apply

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
    # apply asks for --allow-delete exactly when the plan deletes a kind whose delete needs it
    flagged = sorted({c.kind for c in plan.changes if c.action == "delete" and kinds.get(c.kind).delete_needs_flag})
    try:
        check_apply_allowed(plan, force=True, allow_delete=False)
    except ApplyRefused as refused:
        assert flagged, f"apply refused without a delete that needs --allow-delete: {refused}"
        assert "--allow-delete" in str(refused), str(refused)
        _event("needs --allow-delete: " + ", ".join(flagged))
    else:
        assert not flagged, f"deletes of {flagged} went through without --allow-delete"
    check_apply_allowed(plan, force=True, allow_delete=True)
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


# -- the pricing catalog (issue 15) -----------------------------------------------------------
#
# Small pools, so a live catalog and the manifests drawn against it keep meeting: a plan moves
# to another template, a pricing to another plan (a coded pricing is updated; one known by
# plan + aggregation + startDate is deleted and created), an aggregation to another meter, a
# template is pruned while its plans move off it, a start date changes. Everything is written
# valid: targetField a field of the meter the aggregation ends up on with a function suited to
# its category, account plans never overlapping on one product (periods from fixed slots),
# pricing identities unique.

PRODUCT_POOL = ("p1", "p2", "p3")
METER_POOL = ("m1", "m2", "m3")
AGGREGATION_POOL = ("ag1", "ag2", "ag3")
COMPOUND_POOL = ("ca1", "ca2")
TEMPLATE_POOL = ("t1", "t2", "t3")
PLAN_POOL = ("pl1", "pl2", "pl3")
GROUP_POOL = ("g1", "g2")
BGK_POOL = ("bg1", "bg2")
PRICING_CODES = ("pr1", "pr2")
ACCOUNT_PLAN_CODES = ("ap1", "ap2")
START_DATES = ("2024-01-01T00:00:00Z", "2024-06-01T00:00:00Z", "2025-01-01T00:00:00Z")
# Account plan periods on one (account, product): never overlapping (half-open periods).
PERIODS = (
    ("2023-01-01T00:00:00Z", "2024-01-01T00:00:00Z"),
    ("2024-01-01T00:00:00Z", "2024-06-01T00:00:00Z"),
    ("2024-06-01T00:00:00Z", None),
)
DATA_FIELDS = (
    {"category": "MEASURE", "code": "qty", "name": "Quantity", "unit": "units"},
    {"category": "COST", "code": "cost", "name": "Cost", "unit": "usd"},
    {"category": "WHO", "code": "user", "name": "User"},
    {"category": "METADATA", "code": "sess", "name": "Session"},
)
DERIVED_FIELD = {"category": "INCOME", "code": "dbl", "name": "Double", "unit": "units", "calculation": "qty * 2"}
# AggregationRequest.aggregation: which function suits which field category (aggregation.py).
FUNCTIONS_FOR: dict[str, tuple[str, ...]] = {
    "MEASURE": ("SUM", "MAX", "COUNT", "MEAN"),
    "COST": ("SUM", "MIN", "LATEST"),
    "INCOME": ("SUM", "MAX"),
    "METADATA": ("UNIQUE",),
}
# settings.prune keys of the catalog kinds, and what each may say besides false
CATALOG_PRUNE = (
    "products", "meters", "aggregations", "compoundAggregations", "planTemplates", "plans", "planGroups",
    "planGroupLinks", "pricings", "accountPlans", "billGroupingKeys",
)  # fmt: skip


def _some(draw: st.DrawFn, pool: Iterable[str], max_size: int, min_size: int = 0) -> list[str]:
    pool = tuple(pool)
    if not pool:
        return []
    return draw(st.lists(st.sampled_from(pool), unique=True, min_size=min(min_size, len(pool)), max_size=max_size))


@st.composite
def _meter_fields(draw: st.DrawFn) -> dict[str, Any]:
    data = [dict(f) for f in DATA_FIELDS if draw(st.booleans())] or [dict(DATA_FIELDS[0])]
    derived = [dict(DERIVED_FIELD)] if draw(st.booleans()) else []
    if not any(f["category"] in FUNCTIONS_FOR for f in [*data, *derived]):  # every meter can be aggregated
        data.insert(0, dict(DATA_FIELDS[0]))
    return {"dataFields": data, "derivedFields": derived}


def _aggregation_targets(meter: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(field code, function) pairs valid on ``meter``."""
    fields = [*meter.get("dataFields", []), *meter.get("derivedFields", [])]
    return [(f["code"], fn) for f in fields for fn in FUNCTIONS_FOR.get(f["category"], ())]


def _bands(draw: st.DrawFn) -> list[dict[str, Any]]:
    bands = [{"lowerLimit": 0, "fixedPrice": 0, "unitPrice": draw(st.sampled_from([0.5, 1, 2.25]))}]
    if draw(st.booleans()):
        bands.append({"lowerLimit": 100, "fixedPrice": draw(st.sampled_from([0, 5])), "unitPrice": 0.25})
    return bands


def _slots(
    draw: st.DrawFn, account_plans: list[dict[str, Any]], pairs: list[tuple[str, str]], product_of: Callable[[str], str]
) -> None:
    """Add account plans on ``pairs`` (account, plan), each (account, product) using each period
    at most once (so none overlap)."""
    used: set[tuple[str, str, int]] = set()
    for account, plan_code in pairs:
        product = product_of(plan_code)
        free = [i for i in range(len(PERIODS)) if (account, product, i) not in used]
        if not free:
            continue
        slot = draw(st.sampled_from(free))
        used.add((account, product, slot))
        start, end = PERIODS[slot]
        entry: dict[str, Any] = {"account": account, "plan": plan_code, "startDate": start}
        if end is not None:
            entry["endDate"] = end
        account_plans.append(entry)


@st.composite
def live_catalogs(draw: st.DrawFn, org: LiveOrg) -> tuple[tuple[str, Mapping[str, Any]], ...]:
    out: list[tuple[str, dict[str, Any]]] = []
    # mostly a whole chain (product -> template -> plan -> pricing, meter -> aggregation), as
    # that is what the manifests then move, re-point and prune; sometimes whatever is drawn
    least = 1 if draw(st.integers(0, 4)) > 0 else 0
    products = _some(draw, PRODUCT_POOL, 2, least)
    out += [("product", {"code": c, "name": f"Product {c}"}) for c in products]
    for code in _some(draw, BGK_POOL, 2):
        out.append(("billGroupingKey", {"code": code, "name": f"Key {code}", "exclusive": draw(st.booleans()),
                                        "archived": draw(st.booleans())}))
    meters: dict[str, dict[str, Any]] = {}
    for code in _some(draw, METER_POOL, 2, least):
        meter = {"code": code, "name": f"Meter {code}", **draw(_meter_fields())}
        if products and draw(st.booleans()):
            meter["product"] = draw(st.sampled_from(products))
        meters[code] = meter
        out.append(("meter", meter))
    aggregations = []
    for code in _some(draw, AGGREGATION_POOL, 2, least) if meters else []:
        meter_code = draw(st.sampled_from(sorted(meters)))
        target, function = draw(st.sampled_from(_aggregation_targets(meters[meter_code])))
        aggregations.append(code)
        out.append(("aggregation", {"code": code, "name": f"Agg {code}", "meter": meter_code, "targetField": target,
                                    "aggregation": function, "unit": "u", "rounding": "NONE", "quantityPerUnit": 1.0}))
    compounds = []
    # a calculation names live aggregations (m3ter reads ``aggregation.<code>``): only with some
    for code in _some(draw, COMPOUND_POOL, 1) if aggregations else []:
        named = draw(st.sampled_from(aggregations))
        compound = {"code": code, "name": f"Compound {code}", "calculation": f"aggregation.{named} * 2",
                    "unit": "u", "rounding": "UP", "quantityPerUnit": 1.0}
        if products and draw(st.booleans()):
            compound["product"] = draw(st.sampled_from(products))
        compounds.append(code)
        out.append(("compoundAggregation", compound))
    templates: dict[str, str] = {}
    currencies = org.codes("currency")
    for code in _some(draw, TEMPLATE_POOL, 2, least) if products else []:
        templates[code] = draw(st.sampled_from(products))
        out.append(("planTemplate", {"code": code, "name": f"Template {code}", "product": templates[code],
                                     "currency": draw(st.sampled_from(currencies)), "billFrequency": "MONTHLY",
                                     "standingCharge": draw(st.sampled_from([0, 10]))}))
    plans: dict[str, str] = {}
    for code in _some(draw, PLAN_POOL, 2, least) if templates else []:
        plans[code] = draw(st.sampled_from(sorted(templates)))
        out.append(("plan", {"code": code, "name": f"Plan {code}", "planTemplate": plans[code]}))
    for code in _some(draw, GROUP_POOL, 1):
        group = {"code": code, "name": f"Group {code}", "currency": draw(st.sampled_from(currencies))}
        out.append(("planGroup", group))
        for plan_code in _some(draw, sorted(plans), 2):
            out.append(("planGroupLink", {"planGroup": code, "plan": plan_code}))
    hosts = [("plan", c) for c in plans] + [("planTemplate", c) for c in templates]
    metrics = [("aggregation", c) for c in aggregations] + [("compoundAggregation", c) for c in compounds]
    if hosts and metrics:
        seen: set[tuple[Any, ...]] = set()
        codes = iter(PRICING_CODES)
        for _ in range(draw(st.integers(least, 3))):
            host, metric = draw(st.sampled_from(hosts)), draw(st.sampled_from(metrics))
            start = draw(st.sampled_from(START_DATES))
            if (host, metric, start) in seen:
                continue
            seen.add((host, metric, start))
            pricing = {host[0]: host[1], metric[0]: metric[1], "startDate": start, "pricingBands": _bands(draw)}
            if draw(st.integers(0, 3)) == 0:
                pricing["code"] = next(codes, None)
                if pricing["code"] is None:
                    del pricing["code"]
            out.append(("pricing", pricing))
    accounts = org.codes("account")
    if accounts and plans:
        pairs = draw(st.lists(st.tuples(st.sampled_from(accounts), st.sampled_from(sorted(plans))), min_size=least,
                              max_size=3))
        account_plans: list[dict[str, Any]] = []
        _slots(draw, account_plans, pairs, lambda p: templates[plans[p]])
        codes = iter(ACCOUNT_PLAN_CODES)
        for ap in account_plans:
            if draw(st.integers(0, 3)) == 0 and (code := next(codes, None)) is not None:
                ap["code"] = code
            out.append(("accountPlan", ap))
    return tuple(out)


def seed_catalog(backend: Backend, org: LiveOrg, account_ids: Mapping[str, str]) -> None:
    """Create ``org.catalog`` through the backend, references turned into what the API holds
    (ids, by the registry's ``Reference.api_path`` and ``by_id``)."""
    ids: dict[str, dict[str, str]] = {"account": dict(account_ids)}
    for kind_name, fields in org.catalog:
        kind = kinds.get(kind_name)
        body = dict(fields)
        for ref in kind.references:
            if ref.path in body:
                value = body.pop(ref.path)
                body[ref.api_path] = ids[ref.target][value] if ref.by_id else value
        created = backend.create(kind, body)
        if "code" in fields:
            ids.setdefault(kind_name, {})[str(fields["code"])] = str(created["id"])


@st.composite
def catalog_manifests(
    draw: st.DrawFn,
    live: LiveOrg,
    docs: dict[str, Any],
    accounts: list[dict[str, Any]],
    currencies: list[str],
    org_prune: Mapping[str, Any],
) -> dict[str, Any]:
    """Add catalog entries to ``docs`` (and account plans under ``accounts`` entries) against
    ``live``; returns the catalog's ``settings.prune`` entries.

    A reference mostly names an object the manifests list; one only live is named mostly when
    its kind is not pruned (naming a pruned one is refused at plan time, which is tested, but
    should not be most of what is drawn)."""
    prune: dict[str, Any] = {}
    # pruning one kind and not its referrers is mostly refused (a kept referrer holds it), so
    # prune settings come correlated: none, all, or some at random
    style = draw(st.sampled_from(["none", "all", "some", "some"]))
    for key in CATALOG_PRUNE:
        if style == "all" or (key == "accountPlans" and org_prune.get("accounts") and draw(st.integers(0, 3)) > 0):
            mode: Any = "delete"
        elif style == "some":
            mode = draw(st.sampled_from([False, False, "delete"]))
        else:
            mode = False
        if key == "billGroupingKeys" and mode:
            mode = draw(st.sampled_from(["archive", "delete"]))
        if mode or draw(st.integers(0, 3)) == 0:
            prune[key] = mode

    def unpruned_live(kind: str) -> list[str]:
        """Live codes of ``kind`` a reference may name: all of them unless the kind is pruned,
        then mostly none."""
        codes = live.codes(kind) if kind in ("account", "currency") else live_codes(kind)
        pruned = {**org_prune, **prune}.get(kinds.get(kind).manifest_key)
        return codes if not pruned or draw(st.integers(0, 7)) == 0 else []

    def live_codes(kind: str) -> list[str]:
        return [str(f["code"]) for f in live.catalog_of(kind) if "code" in f]

    def live_entry(kind: str, code: str) -> Mapping[str, Any] | None:
        return next((f for f in live.catalog_of(kind) if f.get("code") == code), None)

    def listed(kind: str, pool: tuple[str, ...], max_new: int) -> list[str]:
        """Mostly keep the live codes, add a few from the pool."""
        existing = live_codes(kind)
        kept = [c for c in existing if draw(st.integers(0, 3)) > 0]
        new = [c for c in pool if c not in existing]
        added = _some(draw, new, max_new) if new else []
        return [*kept, *added]

    def keep_or_pick(old: Any, listed_codes: list[str], kind: str) -> str | None:
        """Mostly the live reference ``old`` when it may still be named, else :func:`pick`."""
        if old is not None and (old in listed_codes or old in unpruned_live(kind)) and draw(st.integers(0, 3)) > 0:
            return str(old)
        return pick(listed_codes, kind)

    def pick(listed_codes: list[str], kind: str) -> str | None:
        """A reference target: mostly one the manifests list, sometimes one only live."""
        usable = list(dict.fromkeys([*listed_codes, *unpruned_live(kind)]))
        if not usable:
            return None
        if listed_codes and draw(st.integers(0, 3)) > 0:
            return draw(st.sampled_from(listed_codes))
        return draw(st.sampled_from(usable))

    declared_currencies = [c for c in currencies if c not in live.codes("currency")]
    if docs.get("currencies"):
        declared_currencies = [c["code"] for c in docs["currencies"]]

    def renamed(kind: str, code: str, title: str) -> str:
        old = live_entry(kind, code)
        if old is not None and draw(st.integers(0, 2)) > 0:
            return str(old["name"])
        return f"{title} {code} v2"

    # products
    products = listed("product", PRODUCT_POOL, 2)
    if products:
        docs["products"] = [{"code": c, "name": renamed("product", c, "Product")} for c in products]

    # bill grouping keys
    bgks = listed("billGroupingKey", BGK_POOL, 1)
    if bgks:
        entries = []
        for c in bgks:
            old = live_entry("billGroupingKey", c)
            entry = {"code": c, "name": renamed("billGroupingKey", c, "Key"), "exclusive": draw(st.booleans())}
            if old is not None and draw(st.booleans()):
                entry["exclusive"] = old["exclusive"]
            if draw(st.booleans()):
                entry["archived"] = draw(st.booleans())
            entries.append(entry)
        docs["billGroupingKeys"] = entries

    # meters: a kept meter mostly keeps its fields (so aggregations on it stay valid)
    meter_codes = listed("meter", METER_POOL, 2)
    final_meters: dict[str, Mapping[str, Any]] = {f["code"]: f for f in live.catalog_of("meter")}
    if meter_codes:
        entries = []
        for c in meter_codes:
            old = live_entry("meter", c)
            entry: dict[str, Any] = {"code": c, "name": renamed("meter", c, "Meter")}
            if old is not None and draw(st.integers(0, 3)) > 0:
                entry.update({"dataFields": [dict(f) for f in old["dataFields"]],
                              "derivedFields": [dict(f) for f in old["derivedFields"]]})
            else:
                entry.update(draw(_meter_fields()))
            product_choice = draw(st.sampled_from(["absent", "null", "pick"]))
            if product_choice == "null":
                entry["product"] = None
            elif product_choice == "pick" and (target := pick(products, "product")) is not None:
                entry["product"] = target
            entries.append(entry)
            final_meters[c] = entry
        docs["meters"] = entries

    # aggregations: re-pointed to another meter now and then; the target field and function
    # always suit the meter the aggregation ends up on
    aggregation_codes = listed("aggregation", AGGREGATION_POOL, 2)
    aggregations = []
    for c in aggregation_codes:
        old = live_entry("aggregation", c)
        meter_code = keep_or_pick(old and old["meter"], meter_codes, "meter")
        if meter_code is None:
            continue
        choices = _aggregation_targets(final_meters[meter_code])
        if old is not None and (old["targetField"], old["aggregation"]) in choices and draw(st.booleans()):
            target, function = old["targetField"], old["aggregation"]
        else:
            target, function = draw(st.sampled_from(choices))
        aggregations.append({"code": c, "name": renamed("aggregation", c, "Agg"), "meter": meter_code,
                             "targetField": target, "aggregation": function, "unit": "u",
                             "rounding": draw(st.sampled_from(["NONE", "UP"])), "quantityPerUnit": 1.0})
    if aggregations:
        docs["aggregations"] = aggregations
    aggregation_codes = [a["code"] for a in aggregations]

    # compound aggregations
    compound_codes = listed("compoundAggregation", COMPOUND_POOL, 1)
    # a calculation names an aggregation the manifests list or one live (which pruning may refuse)
    nameable = sorted({*aggregation_codes, *(a["code"] for a in live.catalog_of("aggregation"))})
    if compound_codes and nameable:
        entries = []
        for c in compound_codes:
            named = draw(st.sampled_from(nameable))
            entry = {"code": c, "name": renamed("compoundAggregation", c, "Compound"),
                     "calculation": draw(st.sampled_from([f"aggregation.{named} * 2", f"aggregation.{named} + 1"])),
                     "unit": "u", "rounding": "UP", "quantityPerUnit": 1.0}
            if draw(st.booleans()) and (target := pick(products, "product")) is not None:
                entry["product"] = target
            entries.append(entry)
        docs["compoundAggregations"] = entries

    # plan templates (a product is required; currency one the org has or the manifests add)
    final_templates: dict[str, str] = {f["code"]: f["product"] for f in live.catalog_of("planTemplate")}
    templates = []
    for c in listed("planTemplate", TEMPLATE_POOL, 2):
        old = live_entry("planTemplate", c)
        product = keep_or_pick(old and old["product"], products, "product")
        if product is None:
            continue
        currency = keep_or_pick(old and old["currency"], declared_currencies, "currency")
        if currency is None:
            continue
        templates.append({"code": c, "name": renamed("planTemplate", c, "Template"), "product": product,
                          "currency": currency, "billFrequency": draw(st.sampled_from(["MONTHLY", "ANNUALLY"])),
                          "standingCharge": draw(st.sampled_from([0, 10]))})
        final_templates[c] = product
    template_codes = [t["code"] for t in templates]

    # plans: moved to another template now and then
    final_plans: dict[str, str] = {f["code"]: f["planTemplate"] for f in live.catalog_of("plan")}
    plans = []
    for c in listed("plan", PLAN_POOL, 2):
        old = live_entry("plan", c)
        template = keep_or_pick(old and old["planTemplate"], template_codes, "planTemplate")
        if template is None:
            continue
        entry = {"code": c, "name": renamed("plan", c, "Plan"), "planTemplate": template}
        if draw(st.integers(0, 3)) == 0:
            entry["minimumSpend"] = draw(st.sampled_from([0, 100]))
        plans.append(entry)
        final_plans[c] = template
    plan_codes = [p["code"] for p in plans]

    # plan groups, their links written as plans: [CODE] or at top level
    groups = []
    links: list[dict[str, Any]] = []
    live_links = {(f["planGroup"], f["plan"]) for f in live.catalog_of("planGroupLink")}
    for c in listed("planGroup", GROUP_POOL, 1):
        old_group = live_entry("planGroup", c)
        group_currency = keep_or_pick(old_group and old_group["currency"], declared_currencies, "currency")
        if group_currency is None:
            continue
        entry = {"code": c, "name": renamed("planGroup", c, "Group"), "currency": group_currency}
        linked = [p for p in dict.fromkeys([*plan_codes, *unpruned_live("plan")])
                  if ((c, p) in live_links and draw(st.integers(0, 3)) > 0) or draw(st.integers(0, 3)) == 0]
        how = draw(st.sampled_from(["nested", "nested", "top level", "absent"]))
        if how == "nested":
            entry["plans"] = linked
        elif how == "top level":
            links += [{"planGroup": c, "plan": p} for p in linked]
        groups.append(entry)

    # pricings: live ones kept, moved to another host, or given another start date; a few new
    hosts = [("plan", c) for c in dict.fromkeys([*plan_codes, *unpruned_live("plan")])]
    hosts += [("planTemplate", c) for c in dict.fromkeys([*template_codes, *unpruned_live("planTemplate")])]
    metrics = [("aggregation", c) for c in dict.fromkeys([*aggregation_codes, *unpruned_live("aggregation")])]
    metrics += [
        ("compoundAggregation", c) for c in dict.fromkeys([*compound_codes, *unpruned_live("compoundAggregation")])
    ]
    pricings: list[dict[str, Any]] = []
    if hosts and metrics:
        seen: set[tuple[Any, ...]] = set()
        codes_used: set[str] = set()

        def add(host: tuple[str, str], metric: tuple[str, str], start: str, code: Any, bands: Any) -> None:
            if (host, metric, start) in seen or (code is not None and code in codes_used):
                return
            seen.add((host, metric, start))
            pricing: dict[str, Any] = {host[0]: host[1], metric[0]: metric[1], "startDate": start}
            pricing["pricingBands"] = bands
            if code is not None:
                pricing["code"] = code
                codes_used.add(code)
            if draw(st.integers(0, 3)) == 0:
                pricing["cumulative"] = draw(st.booleans())
            pricings.append(pricing)

        for old in live.catalog_of("pricing"):
            what = draw(st.sampled_from(["keep", "keep", "drop", "move", "restart"]))
            if what == "drop":
                continue
            host = next((h, old[h]) for h in ("plan", "planTemplate") if h in old)
            metric = next((m, old[m]) for m in ("aggregation", "compoundAggregation") if m in old)
            start = old["startDate"]
            if what == "move":
                host = draw(st.sampled_from(hosts))
            elif what == "restart":
                start = draw(st.sampled_from(START_DATES))
            bands = old["pricingBands"] if draw(st.booleans()) else _bands(draw)
            if host in hosts and metric in metrics:
                add(host, metric, start, old.get("code"), bands)
        for _ in range(draw(st.integers(0, 2))):
            code = draw(st.sampled_from([None, None, *PRICING_CODES]))
            add(draw(st.sampled_from(hosts)), draw(st.sampled_from(metrics)), draw(st.sampled_from(START_DATES)),
                code, _bands(draw))

    # account plans: on plans whose product is known, never overlapping on one product
    account_codes = list(dict.fromkeys([*(a["code"] for a in accounts), *unpruned_live("account")]))
    account_plans: list[dict[str, Any]] = []
    all_plans = list(dict.fromkeys([*plan_codes, *unpruned_live("plan")]))
    if account_codes and all_plans:
        pairs = [(ap["account"], ap["plan"]) for ap in live.catalog_of("accountPlan")
                 if ap["account"] in account_codes and ap["plan"] in all_plans and draw(st.integers(0, 3)) > 0]
        pairs += draw(st.lists(st.tuples(st.sampled_from(account_codes), st.sampled_from(all_plans)), max_size=2))
        _slots(draw, account_plans, pairs, lambda p: final_templates.get(final_plans[p], "?"))
        live_coded = {(ap["account"], ap["plan"], ap["startDate"]): ap["code"]
                      for ap in live.catalog_of("accountPlan") if "code" in ap}
        used_codes: set[str] = set()
        for ap in account_plans:
            code = live_coded.get((ap["account"], ap["plan"], ap["startDate"]))
            if code is None and draw(st.integers(0, 4)) == 0:
                code = draw(st.sampled_from(ACCOUNT_PLAN_CODES))
            if code is not None and code not in used_codes:
                ap["code"] = code
                used_codes.add(code)

    # nested or at top level: the same objects, written either way
    nest_pricings = draw(st.booleans())
    plan_entries = {p["code"]: p for p in plans}
    template_entries = {t["code"]: t for t in templates}
    top_pricings = []
    for pricing in pricings:
        host_kind = "plan" if "plan" in pricing else "planTemplate"
        host_entry = (plan_entries if host_kind == "plan" else template_entries).get(pricing[host_kind])
        if host_entry is not None and (nest_pricings or draw(st.integers(0, 3)) == 0):
            host_entry.setdefault("pricings", []).append({k: v for k, v in pricing.items() if k != host_kind})
        else:
            top_pricings.append(pricing)
    account_entries = {a["code"]: a for a in accounts}
    top_account_plans = []
    for ap in account_plans:
        host_entry = account_entries.get(ap["account"])
        if host_entry is not None and draw(st.booleans()):
            host_entry.setdefault("accountPlans", []).append({k: v for k, v in ap.items() if k != "account"})
        else:
            top_account_plans.append(ap)
    for key, values in (("planTemplates", templates), ("plans", plans), ("planGroups", groups),
                        ("planGroupLinks", links), ("pricings", top_pricings), ("accountPlans", top_account_plans)):
        if values:
            docs[key] = values
    return prune
