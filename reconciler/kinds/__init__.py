"""The registry of managed kinds: the one table that loading, schema, diffing, API paths,
references and ordering read.

Each kind is one module of this package holding its manifest model, its request limits
(``request_spec``, what the store and emulator refuse) and its :class:`Kind` entry; adding a
kind is writing that module and naming its entry in :data:`KINDS` below. The order of
:data:`KINDS` is only the order kinds are listed in outputs (the order of changes comes from
their references, ``reconciler.order``).
"""

from __future__ import annotations

from reconciler.kinds import (
    account,
    account_plan,
    aggregation,
    bill_grouping_key,
    compound_aggregation,
    currency,
    custom_fields,
    meter,
    organization,
    picklists,
    plan,
    plan_group,
    plan_group_link,
    plan_template,
    pricing,
    product,
)
from reconciler.kinds.base import (
    READ_ONLY_FIELDS,
    FieldPath,
    FieldWarning,
    Kind,
    Nesting,
    Reference,
    api_fields,
    api_values,
    holds_exactly_one,
    referenced_codes,
    referenced_fields,
)

KINDS: tuple[Kind, ...] = (
    currency.KIND,
    organization.KIND,
    custom_fields.KIND,
    picklists.CREDIT_REASON,
    picklists.DEBIT_REASON,
    picklists.TRANSACTION_TYPE,
    account.KIND,
    bill_grouping_key.KIND,
    product.KIND,
    meter.KIND,
    aggregation.KIND,
    compound_aggregation.KIND,
    plan_template.KIND,
    plan.KIND,
    plan_group.KIND,
    plan_group_link.KIND,
    pricing.KIND,
    account_plan.KIND,
)

BY_NAME: dict[str, Kind] = {k.name: k for k in KINDS}
BY_MANIFEST_KEY: dict[str, Kind] = {k.manifest_key: k for k in KINDS}
SETTINGS_KEY = "settings"
TOP_LEVEL_KEYS: tuple[str, ...] = (*(k.manifest_key for k in KINDS), SETTINGS_KEY)
KIND_NAMES: tuple[str, ...] = tuple(k.name for k in KINDS)


# host kind name -> (nested kind, how it nests): what the loader looks for inside a host.
NESTED_BY_HOST: dict[str, tuple[tuple[Kind, Nesting], ...]] = {
    host: tuple((k, n) for k in KINDS for n in k.nested_in if n.host == host)
    for host in {n.host for k in KINDS for n in k.nested_in}
}


def get(name: str) -> Kind:
    return BY_NAME[name]


__all__ = [
    "BY_MANIFEST_KEY",
    "BY_NAME",
    "KINDS",
    "KIND_NAMES",
    "NESTED_BY_HOST",
    "READ_ONLY_FIELDS",
    "SETTINGS_KEY",
    "TOP_LEVEL_KEYS",
    "FieldPath",
    "FieldWarning",
    "Kind",
    "Nesting",
    "Reference",
    "api_fields",
    "api_values",
    "get",
    "holds_exactly_one",
    "referenced_codes",
    "referenced_fields",
]
