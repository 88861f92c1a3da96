"""The registry of managed kinds: the one table that loading, schema, diffing, API paths
and ordering read, so that adding a kind later is one entry plus its model.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from reconciler.manifest import models

# Fields every m3ter entity response carries and nobody may set; never diffed.
READ_ONLY_FIELDS: frozenset[str] = frozenset(
    {"id", "version", "dtCreated", "dtLastModified", "createdBy", "lastModifiedBy"}
)


@dataclass(frozen=True, slots=True)
class Reference:
    """A field whose value names another object by its code.

    ``path`` is the field as written in a manifest, e.g. ``currency``,
    ``currencyConversions[].from`` or ``parent``.
    """

    path: str
    target: str  # kind name
    steps: tuple[str, ...] = field(init=False)  # ``path`` split at dots, once

    def __post_init__(self) -> None:
        object.__setattr__(self, "steps", tuple(self.path.split(".")))


@dataclass(frozen=True, slots=True)
class Kind:
    name: str  # plan / JSON name, e.g. "creditReason"
    manifest_key: str  # top-level manifest key, e.g. "creditReasons"
    api_path: str  # below /organizations/{orgId}/
    model: type[BaseModel]
    singleton: bool = False
    archivable: bool = False  # has an ``archived`` flag (picklists)
    deletable: bool = False
    rank: int = 0  # creates/updates run in ascending rank; removals in descending rank
    page_size: int = 100  # the list endpoint's maximum pageSize
    references: tuple[Reference, ...] = ()
    pii_fields: tuple[str, ...] = ()  # masked by --redact-pii
    # Fields whose list order is meaningful; every other list compares as a multiset.
    ordered_lists: frozenset[str] = field(default_factory=frozenset)
    # Warnings attached to plan changes touching a field: field -> message.
    change_warnings: Mapping[str, str] = field(default_factory=dict)
    delete_warning: str | None = None

    @property
    def keyed(self) -> bool:
        return not self.singleton

    def key_of(self, obj: Mapping[str, Any]) -> str:
        """Identity of an object of this kind: its code, or the kind name for singletons."""
        return self.name if self.singleton else str(obj["code"])


def _picklist(name: str, key: str, path: str, model: type[BaseModel], *, rank: int = 30) -> Kind:
    """Picklists share their shape: code + name + archived, archive or delete on removal."""
    return Kind(
        name=name,
        manifest_key=key,
        api_path=f"picklists/{path}",
        model=model,
        archivable=True,
        deletable=True,
        rank=rank,
    )


KINDS: tuple[Kind, ...] = (
    _picklist("currency", "currencies", "currency", models.Currency, rank=10),
    Kind(
        name="organizationConfig",
        manifest_key="organization",
        api_path="organizationconfig",
        model=models.OrganizationConfig,
        singleton=True,
        rank=20,
        references=(
            Reference("currency", "currency"),
            Reference("currencyConversions[].from", "currency"),
            Reference("currencyConversions[].to", "currency"),
        ),
        ordered_lists=frozenset({"creditApplicationOrder"}),
        change_warnings={
            "consolidateBills": (
                "enabling consolidateBills after bills exist: later bills for a bill date start afresh "
                "and do not update earlier non-consolidated bills; archive or delete those to avoid conflicts"
            ),
        },
    ),
    Kind(
        name="customFields",
        manifest_key="customFields",
        api_path="customfields",
        model=models.CustomFields,
        singleton=True,
        rank=25,
    ),
    _picklist("creditReason", "creditReasons", "creditreasons", models.CreditReason),
    _picklist("debitReason", "debitReasons", "debitreasons", models.DebitReason),
    _picklist("transactionType", "transactionTypes", "transactiontypes", models.TransactionType),
    Kind(
        name="account",
        manifest_key="accounts",
        api_path="accounts",
        model=models.Account,
        deletable=True,
        rank=40,
        references=(Reference("currency", "currency"), Reference("parent", "account")),
        pii_fields=("name", "emailAddress", "address"),
        ordered_lists=frozenset({"creditApplicationOrder"}),
        change_warnings={
            "purchaseOrderNumber": (
                "changing purchaseOrderNumber: bills already generated keep the old number when "
                "recalculated; delete and regenerate a bill to show the new one"
            ),
        },
        delete_warning=(
            "deleting an account permanently dissociates its usage data; an account created later "
            "with the same code does not get it back"
        ),
    ),
)

BY_NAME: dict[str, Kind] = {k.name: k for k in KINDS}
BY_MANIFEST_KEY: dict[str, Kind] = {k.manifest_key: k for k in KINDS}
SETTINGS_KEY = "settings"
TOP_LEVEL_KEYS: tuple[str, ...] = (*(k.manifest_key for k in KINDS), SETTINGS_KEY)
KIND_NAMES: tuple[str, ...] = tuple(k.name for k in KINDS)


def get(name: str) -> Kind:
    return BY_NAME[name]


def in_apply_order() -> list[Kind]:
    """Kinds in the order creates and updates run (DESIGN §3)."""
    return sorted(KINDS, key=lambda k: k.rank)


FieldPath = tuple[str | int, ...]


def referenced_codes(kind: Kind, fields: Mapping[str, Any]) -> Iterator[tuple[Reference, str]]:
    """Yield every (reference, code) that ``fields`` of an object of ``kind`` names."""
    for ref in kind.references:
        for code, _ in _walk(fields, ref.steps, ()):
            yield ref, code


def referenced_fields(kind: Kind, fields: Mapping[str, Any]) -> Iterator[tuple[Reference, str, FieldPath]]:
    """Every (reference, code, field path) in ``fields``: the path as written (``currency``,
    ``currencyConversions[0].from``), so that messages can point at the field."""
    for ref in kind.references:
        for code, path in _walk(fields, ref.steps, ()):
            yield ref, code, path


def _walk(node: Any, parts: tuple[str, ...], path: FieldPath) -> Iterator[tuple[str, FieldPath]]:
    """The string values at ``parts`` (``name`` steps into a mapping, ``name[]`` into each
    item of a list); anything of another shape holds no reference (validation reports it).
    Plain steps loop rather than recurse: this runs for every object of a large plan."""
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
    if isinstance(node, str):
        yield node, path
