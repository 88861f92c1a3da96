"""What a registry entry says: :class:`Kind` and its :class:`Reference` statements.

Each kind lives in its own module of this package (its model, its request limits and this
entry); ``reconciler.kinds`` assembles them into the registry that loading, schema, diffing,
API paths and ordering read.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from reconciler.kinds.spec import Spec

# Fields every m3ter entity response carries and nobody may set; never diffed.
READ_ONLY_FIELDS: frozenset[str] = frozenset(
    {"id", "version", "dtCreated", "dtLastModified", "createdBy", "lastModifiedBy"}
)


@dataclass(frozen=True, slots=True)
class Reference:
    """A field whose value names another object: the one statement the planner reads to
    order changes (a referrer waits for its target to exist; a target is removed only after
    every referrer has let go) and to refuse plans that cannot succeed.

    ``path`` is the field as written in a manifest, e.g. ``currency``,
    ``currencyConversions[].from`` or ``parent``; manifests always name the target by code.
    ``api_path`` is the same field in the API's body when it is spelled differently
    (``parentAccountId``); with ``by_id`` the API holds the target's id there, not its code.
    ``blocks`` are the removal actions of the target that m3ter refuses while the reference
    is held (a currency in use cannot be deleted, a parent with children cannot be deleted);
    other removals are still ordered after the referrers let go, but not refused.
    A reference from a kind to itself (``parent``) makes a forest, which the planner keeps
    acyclic at every step of an apply.

    ``extract`` is for a field whose value is not itself the target's code but a text naming
    any number of targets (a compound aggregation's ``calculation`` names aggregations as
    ``aggregation.<code>``): it yields the codes a value names, and every walker
    (``referenced_codes``, ``referenced_fields``, ``api_values``, ``api_fields``) yields those
    instead of the value, so ordering, refusals, diagnostics and the store's checks read it
    like any other reference. Such a reference is by code and spelled alike in manifests and
    the API (neither ``by_id`` nor a different ``api_path``).
    """

    path: str
    target: str  # kind name
    api_path: str = ""  # defaults to ``path``
    by_id: bool = False
    blocks: frozenset[str] = frozenset({"delete"})
    hint: str = ""  # how to let go of the target, for refusals (e.g. "set parent: null")
    extract: Callable[[Any], Iterable[str]] | None = None  # codes named inside a field's value
    steps: tuple[str, ...] = field(init=False)  # ``path`` split at dots, once
    api_steps: tuple[str, ...] = field(init=False)
    # The field itself when the reference is one plain top-level field (an account's
    # ``currency``, ``parent`` / ``parentAccountId``), else None: hot loops over 100k objects
    # read such a reference with one ``get`` instead of the generic walk.
    plain_field: str | None = field(init=False)
    api_field: str | None = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "steps", tuple(self.path.split(".")))
        if not self.api_path:
            object.__setattr__(self, "api_path", self.path)
        object.__setattr__(self, "api_steps", tuple(self.api_path.split(".")))
        if self.extract is not None and self.renamed:
            raise ValueError(f"{self.path}: a reference with extract is by code and spelled alike in the API")
        # a reference read through ``extract`` is never one plain value: the fast paths that
        # read ``plain_field`` / ``api_field`` directly would see the whole text
        plain = self.extract is None
        object.__setattr__(self, "plain_field", _plain_field(self.steps) if plain else None)
        object.__setattr__(self, "api_field", _plain_field(self.api_steps) if plain else None)

    @property
    def renamed(self) -> bool:
        """True when the manifest spells the field differently from the API (and so the
        planner translates it both ways)."""
        return self.path != self.api_path or self.by_id


def _plain_field(steps: tuple[str, ...]) -> str | None:
    return steps[0] if len(steps) == 1 and not steps[0].endswith("[]") else None


@dataclass(frozen=True, slots=True)
class Nesting:
    """Objects of a kind that a manifest may also write inside an object of ``host``, in the
    list ``field`` (a plan's ``pricings``, an account's ``accountPlans``): each item gets the
    host's code in its ``reference`` field, which the item must not repeat. With ``scalar``,
    items may be bare codes that fill that field (a plan group's ``plans: [CODE, ...]``).
    Nesting is a manifest convenience only: the objects are planned, ordered and sent like any
    other of their kind, and ``export`` writes them back nested."""

    host: str  # kind name
    field: str
    reference: str
    scalar: str = ""


@dataclass(frozen=True, slots=True)
class FieldWarning:
    """A warning attached to a change of one field, when ``applies(before, after)``."""

    message: str
    applies: Callable[[Any, Any], bool] = field(default=lambda before, after: True)


@dataclass(frozen=True, slots=True)
class Kind:
    name: str  # plan / JSON name, e.g. "creditReason"
    manifest_key: str  # top-level manifest key, e.g. "creditReasons"
    api_path: str  # below /organizations/{orgId}/
    model: type[BaseModel]
    singleton: bool = False
    # What identifies an object: manifest fields whose values make its key; ``a|b`` takes
    # whichever of the two is set (a pricing belongs to a plan or a plan template). The usual
    # ``("code",)`` makes the code the key. A reference among them is compared by the
    # target's code, so a key reads the same in manifests and live.
    identity: tuple[str, ...] = ("code",)
    # With a composite identity: an object that has a code is known by it instead.
    code_first: bool = False
    # Where else a manifest may write objects of this kind (``Nesting``).
    nested_in: tuple[Nesting, ...] = ()
    # What people read in text and markdown ("organization config"): a singleton has no
    # code, so ``update organizationConfig organizationConfig`` would say its name twice.
    # Defaults to ``name``; JSON always keeps ``kind`` and ``key``.
    title: str = ""
    archivable: bool = False  # has an ``archived`` flag (picklists)
    deletable: bool = False
    page_size: int = 100  # the list endpoint's maximum pageSize
    # The list endpoint takes a ``codes`` filter (products, plans, plan templates and plan
    # groups do not: openapi-full.json), so a plan may read just the codes it manages.
    codes_filter: bool = True
    # Query parameters every listing sends (account plans: ``includeall=true``, else only the
    # plans in effect today are listed).
    list_params: tuple[tuple[str, str], ...] = ()
    # Query parameters of the list endpoint that filter by a top-level field of the object
    # (openapi-full.json: ``GET /meters?productId=...``, ``GET /pricings?planId=...``):
    # parameter -> API field. The emulator answers only objects whose field holds one of the
    # given values; a filter the document defines but the emulator cannot express this way
    # (a field the object does not hold itself) is not listed and so ignored.
    list_filters: Mapping[str, str] = field(default_factory=dict)
    references: tuple[Reference, ...] = ()
    pii_fields: tuple[str, ...] = ()  # masked by --redact-pii
    # Fields whose list order is meaningful; every other list compares as a multiset.
    ordered_lists: frozenset[str] = field(default_factory=frozenset)
    # Record-like mappings managed key by key (an absent key keeps its live value); every
    # other mapping (``customFields``) is managed whole.
    partial_fields: frozenset[str] = field(default_factory=frozenset)
    # Lists of objects that have an identity inside the list: field -> the item fields that
    # make it (a conversion is "from GBP to USD" wherever it sits). Diffs then name the item
    # (``currencyConversions[GBP→USD].multiplier``) instead of replacing the whole list; whether
    # the list changed is still decided on the whole list. A list nested in an item is named
    # ``outer[].inner``.
    list_identity: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    # Warnings attached to plan changes touching a field: top-level field -> warning.
    change_warnings: Mapping[str, FieldWarning] = field(default_factory=dict)
    delete_warning: str | None = None
    # Deleting is irreversible in a way m3ter cannot undo (an account's usage data), so
    # apply needs ``--allow-delete`` besides approval.
    delete_needs_flag: bool = False
    # Codes m3ter never lets a plan delete, with the reason and the fix (DESIGN §1).
    undeletable: Mapping[str, str] = field(default_factory=dict)
    # Fields the API's PUT requires (its request schema's ``required``): an update whose body
    # would lack one (the organization has none and the manifests do not set it) is refused
    # at plan time instead of by m3ter.
    put_required: tuple[str, ...] = ()
    # The API's request limits (the store and the emulator refuse bodies outside them):
    # field -> Spec, from the kind's request schema in openapi-full.json.
    request_spec: Mapping[str, Spec] = field(default_factory=dict)
    # Rules across fields of one request body (``body -> problem or None``) that the API
    # states in words rather than in the schema.
    body_rules: tuple[Callable[[dict[str, Any]], str | None], ...] = ()
    # Load-time rules that need every manifest object (``(manifests, state) -> None``, adding
    # located messages to ``state``): the kind's own domain rules, run by ``manifest.rules``.
    checks: tuple[Callable[[Any, Any], None], ...] = ()
    # Plain-field references the API spells differently from the manifests (``parent`` ->
    # ``parentAccountId``), by manifest field and by API field: derived once, read for every
    # object the planner compares and every body it diffs.
    renamed_by_path: Mapping[str, Reference] = field(init=False)
    renamed_by_api: Mapping[str, Reference] = field(init=False)
    # ``identity`` with each group split into its alternatives, once.
    identity_groups: tuple[tuple[str, ...], ...] = field(init=False)
    # Groups of manifest fields of which an object holds exactly one: the identity parts
    # written ``a|b`` (a pricing's ``plan|planTemplate``). Naming one in a manifest means the
    # others are empty, so an update clears them; validation and the store require exactly
    # one. ``exclusive_api_fields`` are the same groups as the API spells them (``planId``).
    exclusive_fields: tuple[tuple[str, ...], ...] = field(init=False)
    exclusive_api_fields: tuple[tuple[str, ...], ...] = field(init=False)

    def __post_init__(self) -> None:
        if not self.title:
            object.__setattr__(self, "title", self.name)
        renamed = [r for r in self.references
                   if r.renamed and r.plain_field is not None and r.api_field is not None]
        object.__setattr__(self, "renamed_by_path", {r.path: r for r in renamed})
        object.__setattr__(self, "renamed_by_api", {r.api_path: r for r in renamed})
        object.__setattr__(self, "identity_groups", tuple(tuple(g.split("|")) for g in self.identity))
        exclusive = tuple(g for g in self.identity_groups if len(g) > 1)
        object.__setattr__(self, "exclusive_fields", exclusive)
        by_path = {r.path: r.api_path for r in self.references}
        object.__setattr__(self, "exclusive_api_fields",
                           tuple(tuple(by_path.get(name, name) for name in g) for g in exclusive))

    @property
    def prune_modes(self) -> tuple[str, ...]:
        """What ``settings.prune`` may say for this kind besides ``false``."""
        return (("archive",) if self.archivable else ()) + (("delete",) if self.deletable else ())

    @property
    def keyed(self) -> bool:
        return not self.singleton

    @property
    def by_code(self) -> bool:
        """True when an object's key is its code (every kind but composite ones)."""
        return self.identity == ("code",)

    def body_problems(self, body: dict[str, Any]) -> list[str]:
        """What m3ter would refuse in a request body beyond each field's own limits: exactly one
        of each exclusive group (``planId`` or ``planTemplateId``), then the kind's
        ``body_rules``. The store checks every body with it and the planner every update body."""
        problems = [
            f"{', '.join(group)}: exactly one of the {len(group)} must be given"
            for group in self.exclusive_api_fields
            if not holds_exactly_one(body, group)
        ]
        for rule in self.body_rules:
            problem = rule(body)
            if problem:
                problems.append(problem)
        return problems

    def key_from(self, value: Callable[[str], Any]) -> str | None:
        """An object's key from ``value(field)`` (its manifest-shaped fields): the code, or for
        a composite identity ``plan=pro, aggregation=calls, startDate=...``. None when a part
        is missing (validation says what)."""
        if self.singleton:
            return self.name
        if not self.by_code and self.code_first:
            code = value("code")
            if isinstance(code, str) and code:
                return code
        parts: list[str] = []
        for group in self.identity_groups:
            for name in group:
                got = value(name)
                if got is not None and got != "":
                    parts.append(str(got) if self.by_code else f"{name}={got}")
                    break
            else:
                return None
        return ", ".join(parts)

    def key_in_manifest(self, fields: Mapping[str, Any]) -> str | None:
        """The key of an object as a manifest writes it (codes for references)."""
        if self.singleton:
            return self.name
        if self.by_code:
            code = fields.get("code")
            return code if type(code) is str else None
        if self.code_first:
            code = fields.get("code")
            if type(code) is str and code:
                return code
        # key_from unrolled (it runs for every pricing of a catalog): plain values only
        parts: list[str] = []
        for group in self.identity_groups:
            for name in group:
                value = fields.get(name)
                t = type(value)
                if (t is str and value) or t is int or t is float:
                    parts.append(f"{name}={value}")
                    break
            else:
                return None
        return ", ".join(parts)



FieldPath = tuple[str | int, ...]


def holds_exactly_one(fields: Mapping[str, Any], group: tuple[str, ...]) -> bool:
    """Whether ``fields`` sets exactly one name of an exclusive group (``Kind.exclusive_fields``
    in a manifest, ``exclusive_api_fields`` in a body); ``None`` and ``""`` are unset."""
    return sum(1 for name in group if fields.get(name) not in (None, "")) == 1


def referenced_codes(kind: Kind, fields: Mapping[str, Any]) -> Iterator[tuple[Reference, str]]:
    """Yield every (reference, code) that manifest ``fields`` of an object of ``kind`` names."""
    for ref in kind.references:
        for code, _ in _values(ref, fields, ref.steps):
            if isinstance(code, str):
                yield ref, code


def referenced_fields(kind: Kind, fields: Mapping[str, Any]) -> Iterator[tuple[Reference, str, FieldPath]]:
    """Every (reference, code, field path) in ``fields``: the path as written (``currency``,
    ``currencyConversions[0].from``), so that messages can point at the field."""
    for ref in kind.references:
        for code, path in _values(ref, fields, ref.steps):
            if isinstance(code, str):
                yield ref, code, path


def api_values(ref: Reference, body: Mapping[str, Any]) -> Iterator[Any]:
    """The values of one reference in an API-shaped object (a live entity or a request
    body): each a code, an id (``by_id``) or a ``{"$ref": ...}`` placeholder."""
    for value, _ in _values(ref, body, ref.api_steps):
        yield value


def api_fields(ref: Reference, body: Mapping[str, Any]) -> Iterator[tuple[Any, FieldPath]]:
    """Every (value, field path) of one reference in an API-shaped object: the path as the
    API spells it (``parentAccountId``, ``currencyConversions[0].from``), for messages."""
    return _values(ref, body, ref.api_steps)


def _values(ref: Reference, node: Any, parts: tuple[str, ...]) -> Iterator[tuple[Any, FieldPath]]:
    """``_walk``, then each code ``ref.extract`` finds in a value (once each, in order of
    appearance), at the value's path."""
    if ref.extract is None:
        yield from _walk(node, parts, ())
        return
    for value, path in _walk(node, parts, ()):
        for code in dict.fromkeys(ref.extract(value)):
            if code:
                yield code, path


def _walk(node: Any, parts: tuple[str, ...], path: FieldPath) -> Iterator[tuple[Any, FieldPath]]:
    """The values at ``parts`` (``name`` steps into a mapping, ``name[]`` into each item of
    a list) that are set (not None, not empty); anything of another shape holds no
    reference (validation reports it). Plain steps loop rather than recurse: this runs for
    every object of a large plan."""
    for i, head in enumerate(parts):
        if not isinstance(node, Mapping):
            return
        if head.endswith("[]"):
            items = node.get(head[:-2])
            if isinstance(items, list):
                for index, item in enumerate(items):
                    yield from _walk(item, parts[i + 1 :], (*path, head[:-2], index))
            return
        node = node.get(head)
        path = (*path, head)
    if node is not None and node != "":
        yield node, path
