"""The registry of managed kinds: the one table that loading, schema, diffing, API paths,
references and ordering read.

Each kind is one module of this package holding its manifest model, its request limits
(``request_spec``, what the store and emulator refuse) and its :class:`Kind` entry; adding a
kind is writing that module and naming its entry in :data:`KINDS` below. The order of
:data:`KINDS` is only the order kinds are listed in outputs (the order of changes comes from
their references, ``reconciler.order``).
"""

from __future__ import annotations

from reconciler.kinds import account, currency, custom_fields, organization, picklists
from reconciler.kinds.base import (
    READ_ONLY_FIELDS,
    FieldPath,
    FieldWarning,
    Kind,
    Reference,
    api_fields,
    api_values,
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
)

BY_NAME: dict[str, Kind] = {k.name: k for k in KINDS}
BY_MANIFEST_KEY: dict[str, Kind] = {k.manifest_key: k for k in KINDS}
SETTINGS_KEY = "settings"
TOP_LEVEL_KEYS: tuple[str, ...] = (*(k.manifest_key for k in KINDS), SETTINGS_KEY)
KIND_NAMES: tuple[str, ...] = tuple(k.name for k in KINDS)


def get(name: str) -> Kind:
    return BY_NAME[name]


__all__ = [
    "BY_MANIFEST_KEY",
    "BY_NAME",
    "KINDS",
    "KIND_NAMES",
    "READ_ONLY_FIELDS",
    "SETTINGS_KEY",
    "TOP_LEVEL_KEYS",
    "FieldPath",
    "FieldWarning",
    "Kind",
    "Reference",
    "api_fields",
    "api_values",
    "get",
    "referenced_codes",
    "referenced_fields",
]
