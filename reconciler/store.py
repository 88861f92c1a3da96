"""m3ter organization semantics over SQLite, shared by the ``local`` backend and the emulator.

The store speaks the m3ter Config API's JSON shapes: request bodies as the API takes them and
entity dicts as the API answers them (``openapi-subset.json``), so the HTTP emulator is a thin
facade and the local backend behaves like a fresh m3ter organization.

Public API (``kind`` is a kind name from :mod:`reconciler.kinds` or a ``Kind``)::

    store = Store(path, *, fail_rules=None, extra_fields=None, kinds=None)
                                                     # fail_rules None: read RECONCILER_STORE_FAIL;
                                                     # kinds None: the registry reconciler.kinds.KINDS
    store.ensure_org(org) -> None                    # create + seed on first use (idempotent)
    store.list(org, kind, *, page_size, next_token=None, ids=None, codes=None, archived=None, where=None)
        -> (items, next_token | None)                # newest first, opaque cursor
    store.list_all(org, kind, *, codes=None, ids=None, archived=None) -> list[dict]  # one query
    store.children(org, account_id, *, page_size, next_token=None) -> (items, next_token | None)
    store.count(org, kind) -> int
    store.get(org, kind, entity_id) -> dict          # StoreError "not_found" (404)
    store.find(org, kind, entity_id) -> dict | None
    store.get_singleton(org, kind) -> dict
    store.put_singleton(org, kind, body, *, actor="reconciler") -> dict
    store.create(org, kind, body, *, actor="reconciler") -> dict
    store.create_many(org, kind, bodies, *, actor="reconciler") -> list[dict]  # one transaction
    store.update(org, kind, entity_id, body, *, actor="reconciler") -> dict   # PUT semantics
    store.delete(org, kind, entity_id, *, actor="reconciler") -> dict         # returns removed
    store.seed_statement_definition(org, name, *, aggregation_frequency="MONTH", ...) -> dict
    store.seed_account_plan(org, account_id, *, plan_id=None, start_date=..., end_date=None, ...)
        -> dict                                      # 400 when the account does not exist
    store.list_account_plans(org, *, page_size, next_token=None, account=None, plan=None,
        contract=None, product=None, include_all=False, date=None, ids=None) -> Page
    store.account_plans_of(org, account_ids) -> list[dict]   # all of them, any dates
    store.fail_on(op="*", kind="*", code="*", *, after=False, times=None, status=500,
                  predicate=None) -> FailRule
    store.clear_failures() -> None
    store.close() -> None
    StoreError(kind, message, status)                # kind: not_found | conflict | invalid |
                                                     #       duplicate | injected | unavailable

Rules (what a fresh m3ter organization does, as far as reconciler cares)

* One DB file holds any number of organizations, keyed by org id. An organization is created
  on first use with the USD currency, an organization config holding only the documented
  defaults (see ``_seed_org_config``: no ``daysBeforeBillDue``, which the document gives no
  default for) and an empty custom fields singleton, all at ``version`` 1.
* Ids are UUIDs; ``version`` is 1 on create and +1 per update. An update (or singleton put)
  whose ``version`` is missing or differs from the stored one fails with kind ``conflict``
  (status 400, "version mismatch: expected N, given M"). A create must not send ``version``.
* PUT replaces: fields left out of the body (or sent as ``null``) are cleared. Read-only fields
  (``id``, ``version``, ``dtCreated``, ``dtLastModified``, ``createdBy``, ``lastModifiedBy``)
  are maintained by the store; in a request body they are ignored (``version`` is checked).
  Picklist entries default ``archived`` to false.
* ``code`` is unique per kind within an organization (``duplicate``, 400 "code already
  exists"); accounts require it, picklists do not (openapi-full.json request schemas).
  Bodies are checked against the API's limits (required fields, types, lengths, patterns,
  enums, unknown fields): garbage is refused with ``invalid`` (400) and a message naming
  every problem. ``extra_fields`` (the emulator's ``--extra-fields``) makes some fields
  outside the document known: added to new objects, accepted, cleared when a PUT omits them.
* References come from the registry, never from code naming a kind: each ``Reference`` of a
  kind (``Kind.references``; a seeded kind outside the registry: ``SEEDED_REFERENCES``) is a
  field of the API body (``api_path``, e.g. ``parentAccountId``, ``currencyConversions[].from``)
  naming an object of its ``target`` kind by id (``by_id``) or by code. All refusals are
  ``invalid`` (400), every problem of a body in one message:

  - create, update and singleton put: every value must name an existing object of the target
    kind ("currency: currency 'XYZ' does not exist", "parentAccountId: account <id> does not
    exist", "currencyConversions[0].from: currency 'GBP' does not exist").
  - A kind's plain by-id self-reference (an account's ``parentAccountId``) makes a forest:
    an object cannot be its own parent, nor its own ancestor ("the account would become its
    own ancestor (a parent cycle)").
  - delete (and archive, where a reference's ``blocks`` names it; only delete by default):
    refused while any object of any kind holds a reference to the object whose ``blocks``
    names the action, one message naming each holding kind, through which fields, how many
    and the first few ("account 'P' cannot be deleted: it is referenced by 3 child accounts
    (parentAccountId: 'A', 'B', 'C') and 1 account plan (accountId: <id>); change or delete
    them first"; "currency 'USD' cannot be deleted: it is referenced by the organization
    config (currency); change it first"). So an account with child accounts or account plans
    (DELETE /accounts/{id} in openapi-full.json), or a currency an account or the
    organization config names, cannot be deleted.
  - Cost: each value checked on a write is one lookup on the (org, kind, id) or (org, kind,
    code) unique index (a parent cycle walks the same index up the ``parent_id`` column). A
    delete looks up holders per referring kind: the kind's ``parent_id`` reference on its
    index; other plain fields with ``json_extract`` inside SQLite (one pass over that kind's
    rows, no body parsed in Python); list paths (``currencyConversions[].from``, on small
    kinds such as the organization config) by parsing only the rows whose JSON text contains
    the value (an ``instr`` prefilter) and walking them with ``api_values``.
* Lists are newest first (creation order descending, the autoincrement ``seq`` as a unique
  tiebreak). ``next_token`` is an opaque cursor ("items created before seq N"), stable while
  objects are added or removed. ``archived``: ``None`` = all, ``True`` = only archived,
  ``False`` = only not archived. (The emulator maps an absent ``archived`` query parameter to
  ``False`` — the strictest reading of the API docs, see ``reconciler/emulator/app.py``.)

* Statement definitions (``statementDefinition``) and account plans (``accountPlan``) are
  kinds reconciler reads but does not manage: only their seed methods write them; generic
  reads (``list``, ``get``, ``find``, ``list_all``, ``count``) serve them. A seeded kind that
  joins the registry becomes an ordinary kind: its entry's references apply and the generic
  writes serve it.

Storage: one row per entity with the full response JSON in a TEXT column plus indexed
columns (org, kind, id, code, parent_id, archived, seq). ``parent_id`` holds, per kind, the
value of its plain by-id self-reference (an account's ``parentAccountId``), else of its first
plain by-id reference (an account plan's ``accountId``), else nothing; ``meta`` records which
field per kind, and a store opened with a registry naming another field refills the column
from the bodies (once). Every write is one
``BEGIN IMMEDIATE`` transaction; WAL journal with ``synchronous=NORMAL``, so a process killed
with SIGKILL mid-apply leaves a consistent database. One connection per thread;
``busy_timeout`` lets several processes share a file.

Fault injection (for tests of partial failure and convergence)

* In process: ``store.fail_on(op="create", kind="account", code="ACME")`` makes the next
  matching write raise ``StoreError("injected", ..., status=500)`` before anything is written;
  ``after=True`` commits the write first and raises afterwards (the caller sees an error but
  the change took effect); ``times=N`` fires only N times; ``predicate=f`` takes
  ``f(op, kind, code, body) -> bool`` instead of the three patterns.
* From a CLI subprocess: ``RECONCILER_STORE_FAIL`` read when a Store is constructed. Rules are
  separated by ``;``, each ``OP:KIND[:CODE][:after]`` where OP is ``create``, ``update``
  (also singleton puts, whose code is the kind name), ``delete`` or ``*``, KIND a kind name or
  ``*``, CODE a code or ``*``. Example:
  ``RECONCILER_STORE_FAIL="create:account:ACME;update:organizationConfig:*:after"``.
  The value may instead be a JSON list of objects with keys ``op``, ``kind``, ``code``,
  ``after``, ``times``, ``status`` (use it for codes containing ``;``).
  For update/delete, CODE matches the stored code or the code in the body.
"""

from __future__ import annotations

import base64
import binascii
import builtins
import contextlib
import datetime as _dt
import json
import math
import os
import re
import sqlite3
import threading
import uuid
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from reconciler.kinds import BY_NAME, KINDS, READ_ONLY_FIELDS, Kind, Reference, api_fields, api_values
from reconciler.kinds.fields import SCHEDULED_BILL_INTERVALS, is_timezone
from reconciler.kinds.spec import INT64, Spec
from reconciler.manifest import gcpause

FAIL_ENV = "RECONCILER_STORE_FAIL"
SYSTEM_ACTOR = "system"
DEFAULT_ACTOR = "reconciler"
MAX_PAGE_SIZE = 200
BUSY_TIMEOUT_MS = 30_000
SCHEMA_VERSION = 1

ORG_CONFIG = "organizationConfig"
CUSTOM_FIELDS = "customFields"
CURRENCY = "currency"
ACCOUNT = "account"
# Which kinds exist, what shape they have and what they refer to are the registry's facts
# (``reconciler.kinds``; each store reads them once, see ``_Rules``), as are the read-only
# audit fields and each kind's request limits.
# Kinds reconciler reads but does not manage: the store keeps them so the emulator can serve
# them and the local backend can answer, and tests seed them (``seed_statement_definition``,
# ``seed_account_plan``); they have no create/update/delete through the generic methods.
# Once such a kind joins the registry it is an ordinary kind there (its entry's references
# replace the ones below, the generic writes serve it) and its seed method keeps working.
STATEMENT_DEFINITION = "statementDefinition"
ACCOUNT_PLAN = "accountPlan"
SEEDED_KINDS = (STATEMENT_DEFINITION, ACCOUNT_PLAN)
SEEDED_TITLES = {STATEMENT_DEFINITION: "statement definition", ACCOUNT_PLAN: "account plan"}
# What a seeded kind refers to while it is not in the registry. openapi-full.json, DELETE
# /organizations/{orgId}/accounts/{id}: "This may fail if there are any AccountPlans that
# reference the Account being deleted." Any plan counts, ended or not: the description does
# not limit it to active ones.
SEEDED_REFERENCES: dict[str, tuple[Reference, ...]] = {
    ACCOUNT_PLAN: (Reference("accountId", ACCOUNT, by_id=True),),
}
# The field ``parent_id`` held per kind before it was derived from the registry: a database
# written then has no ``parent_id:<kind>`` row in ``meta`` (see ``Store._sync_parent_column``).
_LEGACY_PARENT_COLUMN = {ACCOUNT: "parentAccountId", ACCOUNT_PLAN: "accountId"}
# Removal actions the store refuses while a reference that ``blocks`` them is held.
_BLOCKED_ACTIONS = {"delete": "deleted", "archive": "archived"}
_PLAIN_FIELD = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")  # safe to spell inside a JSON path
# openapi-full.json, AccountPlanResponse / AggregationFrequency / ChildBillingMode enums.
AGGREGATION_FREQUENCIES = ("DAY", "WEEK", "MONTH", "QUARTER", "YEAR", "WHOLE_PERIOD")
CHILD_BILLING_MODES = ("PARENT_SUMMARY", "PARENT_BREAKDOWN", "CHILD")


class _HasName(Protocol):
    @property
    def name(self) -> str: ...


KindLike = str | _HasName
Entity = dict[str, Any]
EntityList = list[Entity]
Page = tuple[EntityList, str | None]


# --------------------------------------------------------------------------- errors


class StoreError(Exception):
    """A refused or failed store operation, with the API status it maps to."""

    STATUS = {
        "not_found": 404,
        "conflict": 400,
        "invalid": 400,
        "duplicate": 400,
        "injected": 500,
        "unavailable": 500,
    }

    def __init__(self, kind: str, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.status = status if status is not None else self.STATUS.get(kind, 400)


def _invalid(message: str) -> StoreError:
    return StoreError("invalid", message)


# --------------------------------------------------------------------------- request limits
# A summary of the request schemas in the m3ter OpenAPI subset: enough to refuse garbage with
# the API's limits. Java patterns are translated (\p{L} via ``regex``; \p{Cntrl}/\s spelled out).

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\Z")  # \Z: a final newline is not an address
# Each kind's request limits live in its registry module (``Kind.request_spec``).
REQUEST_SPECS: dict[str, Mapping[str, Spec]] = {k.name: k.request_spec for k in KINDS}


class _Rules:
    """What a store reads from the kind registry, derived once per store (the default
    registry's once per process): which names are kinds, which are keyed, singletons,
    picklists or seeded, and who refers to whom.

    * ``references[name]``: the kind's references (a seeded kind outside the registry: its
      ``SEEDED_REFERENCES``).
    * ``column[name]``: the reference whose value the indexed ``parent_id`` column holds:
      the kind's plain by-id self-reference (an account's ``parentAccountId``: parent cycles
      are walked and children listed on the index), else its first plain by-id reference (an
      account plan's ``accountId``), else none.
    * ``held[(target, action)]``: ``(referrer kind, its references to target whose blocks
      hold action)`` pairs: what to look at before removing an object of ``target``.
    """

    def __init__(self, kinds: Iterable[Kind]) -> None:
        registered = tuple(kinds)
        self.by_name: dict[str, Kind] = {k.name: k for k in registered}
        self.keyed = frozenset(k.name for k in registered if k.keyed)
        self.singletons = frozenset(k.name for k in registered if k.singleton)
        self.picklists = frozenset(k.name for k in registered if k.archivable)
        self.seeded = frozenset(n for n in SEEDED_KINDS if n not in self.by_name)
        self.names = frozenset(self.by_name) | self.seeded
        self.titles: dict[str, str] = {**SEEDED_TITLES, **{k.name: k.title for k in registered}}
        self.references: dict[str, tuple[Reference, ...]] = {k.name: k.references for k in registered}
        for name in self.seeded:
            self.references[name] = SEEDED_REFERENCES.get(name, ())
        self.column: dict[str, Reference | None] = {}
        held: dict[tuple[str, str], dict[str, builtins.list[Reference]]] = {}
        for name, refs in self.references.items():
            for ref in refs:
                if ref.api_field is not None and not _PLAIN_FIELD.match(ref.api_field):
                    raise ValueError(f"{name}: reference field {ref.api_field!r} is not a plain name")
                for action in ref.blocks:
                    held.setdefault((ref.target, action), {}).setdefault(name, []).append(ref)
            by_id = [r for r in refs if r.by_id and r.api_field is not None]
            self.column[name] = next((r for r in by_id if r.target == name), by_id[0] if by_id else None)
        self.held: dict[tuple[str, str], tuple[tuple[str, tuple[Reference, ...]], ...]] = {
            key: tuple((name, tuple(refs)) for name, refs in by_kind.items()) for key, by_kind in held.items()
        }

    def title(self, name: str) -> str:
        return self.titles.get(name, name)

    def name(self, kind: KindLike) -> str:
        name = kind if isinstance(kind, str) else kind.name
        if name not in self.names:
            raise StoreError("invalid", f"unknown kind {name!r}")
        return name

    def managed(self, kind: KindLike) -> str:
        """The kind name for a write: seeded (read-only) kinds are written only by their seed methods."""
        name = self.name(kind)
        if name in self.seeded:
            raise _invalid(f"{name} is read-only here; use the store's seed method")
        return name

    def field_sql(self, name: str, field: str) -> str:
        """SQL for the value of top-level ``field`` of a ``name`` object: the indexed
        ``parent_id`` column when it holds that field, else ``json_extract`` of the body."""
        column = self.column.get(name)
        if column is not None and column.api_field == field:
            return "parent_id"
        if not _PLAIN_FIELD.match(field):  # pragma: no cover - callers pass API field names
            raise ValueError(f"not a plain field name: {field!r}")
        return f"json_extract(body, '$.{field}')"

    def column_value(self, name: str, entity: Mapping[str, Any]) -> str | None:
        column = self.column.get(name)
        value = entity.get(column.api_field) if column is not None and column.api_field else None
        return value if isinstance(value, str) else None


_DEFAULT_RULES = _Rules(KINDS)


def _is_date(value: str) -> bool:
    if len(value) != 10:
        return False
    try:
        _dt.date.fromisoformat(value)
    except ValueError:
        return False
    return True


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _check(value: Any, spec: Spec, path: str, problems: list[str]) -> Any:
    """Validate ``value`` against ``spec``; append problems; return the normalised value."""
    t = spec.type
    if t == "string":
        if not isinstance(value, str):
            problems.append(f"{path}: must be a string, not {_type_name(value)}")
            return value
        if spec.min_length is not None and len(value) < spec.min_length:
            problems.append(
                f"{path}: must not be empty"
                if spec.min_length == 1
                else f"{path}: must be at least {spec.min_length} characters"
            )
        if spec.max_length is not None and len(value) > spec.max_length:
            problems.append(f"{path}: must be at most {spec.max_length} characters")
        if spec.pattern is not None and value and not spec.pattern.match(value):
            problems.append(f"{path}: {spec.pattern_hint or 'has an invalid format'}")
        if spec.enum is not None and value not in spec.enum:
            problems.append(f"{path}: must be one of {', '.join(spec.enum)}")
        if spec.fmt == "date" and not _is_date(value):
            problems.append(f"{path}: must be an ISO date such as 2024-01-31")
        elif spec.fmt == "email" and not _EMAIL.match(value):
            problems.append(f"{path}: must be an e-mail address")
        elif spec.fmt == "timezone" and not is_timezone(value):
            problems.append(f"{path}: must be an IANA timezone name such as Europe/London")
        elif spec.fmt == "date-time":
            # kept as m3ter answers it: UTC, whole seconds, ``Z`` (and so comparable as text)
            try:
                return _instant(value, path) if "T" in value else _date_time_refused(path, problems, value)
            except StoreError:
                return _date_time_refused(path, problems, value)
        return value
    if t == "boolean":
        if not isinstance(value, bool):
            problems.append(f"{path}: must be a boolean, not {_type_name(value)}")
        return value
    if t in ("integer", "number"):
        if isinstance(value, bool) or not isinstance(value, int | float):
            problems.append(f"{path}: must be a{'n integer' if t == 'integer' else ' number'}, not {_type_name(value)}")
            return value
        if isinstance(value, float) and not math.isfinite(value):  # NaN / Infinity
            problems.append(f"{path}: must be a finite number")
            return value
        if t == "integer":
            if isinstance(value, float):
                if not value.is_integer():
                    problems.append(f"{path}: must be an integer")
                    return value
                value = int(value)
            lo, hi = INT64
            if not lo <= value <= hi:
                problems.append(f"{path}: is out of range")
                return value
        if spec.minimum is not None:
            if spec.exclusive_minimum and not value > spec.minimum:
                problems.append(f"{path}: must be greater than {spec.minimum:g}")
            elif not spec.exclusive_minimum and value < spec.minimum:
                problems.append(f"{path}: must be at least {spec.minimum:g}")
        if spec.maximum is not None and value > spec.maximum:
            problems.append(f"{path}: must be at most {spec.maximum:g}")
        if spec.fmt == "bill-interval" and value not in SCHEDULED_BILL_INTERVALS:
            allowed = ", ".join(f"{v:g}" for v in SCHEDULED_BILL_INTERVALS)
            problems.append(f"{path}: must be one of {allowed}")
        return value
    if t == "scalar":
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            problems.append(f"{path}: must be a string or a number, not {_type_name(value)}")
        elif isinstance(value, float) and not math.isfinite(value):
            problems.append(f"{path}: must be a finite number")
        return value
    if t == "array":
        if not isinstance(value, list):
            problems.append(f"{path}: must be an array, not {_type_name(value)}")
            return value
        if spec.max_items is not None and len(value) > spec.max_items:
            problems.append(f"{path}: must have at most {spec.max_items} items")
        assert spec.items is not None
        out = [_check(v, spec.items, f"{path}[{i}]", problems) for i, v in enumerate(value)]
        if spec.unique_items:
            seen: list[Any] = []
            for v in out:
                if v in seen:
                    problems.append(f"{path}: lists {v!r} twice")
                seen.append(v)
        return out
    if t == "object":
        assert spec.fields is not None
        return _check_object(value, spec.fields, path, problems, drop_read_only=False)
    if t == "map":
        if not isinstance(value, dict):
            problems.append(f"{path}: must be an object, not {_type_name(value)}")
            return value
        if spec.max_items is not None and len(value) > spec.max_items:
            problems.append(f"{path}: must have at most {spec.max_items} entries")
        assert spec.values is not None
        for k, v in value.items():
            if not k:
                problems.append(f"{path}: names must not be empty")
            _check(v, spec.values, f"{path}.{k}", problems)
        return dict(value)
    raise AssertionError(f"unknown spec type {t}")  # pragma: no cover


def _check_object(
    value: Any,
    fields: Mapping[str, Spec],
    path: str,
    problems: list[str],
    *,
    drop_read_only: bool,
    extra: Collection[str] = (),
) -> dict[str, Any]:
    prefix = f"{path}." if path else ""
    if not isinstance(value, dict):
        problems.append(f"{path or 'body'}: must be a JSON object, not {_type_name(value)}")
        return {}
    out: dict[str, Any] = {}
    for key, v in value.items():
        if drop_read_only and key in READ_ONLY_FIELDS:
            continue
        spec = fields.get(key)
        if spec is None:
            if key in extra and v is not None:
                out[key] = v  # a field this (newer) server knows beyond the document: kept as sent
            elif key not in extra:
                problems.append(f"{prefix}{key}: unknown field")
            continue
        if v is None:  # null clears the field
            continue
        out[key] = _check(v, spec, f"{prefix}{key}", problems)
    for key, spec in fields.items():
        if spec.required and key not in out:
            problems.append(f"{prefix}{key}: is required")
    return out


def validate_body(kind: str | Kind, body: Any, extra: Collection[str] = ()) -> dict[str, Any]:
    """Check a request body for ``kind`` (a registry name or a ``Kind``) against the API
    limits; the cleaned fields (read-only fields and nulls dropped) or StoreError ``invalid``
    naming every problem. ``extra``: field names accepted (any value) beyond the document,
    see ``Store(extra_fields=...)``."""
    entry = BY_NAME[kind] if isinstance(kind, str) else kind
    problems: list[str] = []
    out = _check_object(body, entry.request_spec, "", problems, drop_read_only=True, extra=extra)
    problems.extend(entry.body_problems(out))
    if problems:
        raise _invalid("invalid request body: " + "; ".join(problems))
    return out


# --------------------------------------------------------------------------- fault injection


@dataclass(slots=True)
class FailRule:
    """Makes matching writes raise an injected StoreError (see the module docstring)."""

    op: str = "*"
    kind: str = "*"
    code: str = "*"
    after: bool = False
    times: int | None = None
    status: int = 500
    predicate: Callable[[str, str, str | None, Mapping[str, Any] | None], bool] | None = None
    fired: int = 0

    def matches(self, op: str, kind: str, codes: Collection[str | None], body: Mapping[str, Any] | None) -> bool:
        if self.times is not None and self.fired >= self.times:
            return False
        if self.predicate is not None:
            return any(self.predicate(op, kind, c, body) for c in (codes or [None]))
        if self.op not in ("*", op):
            return False
        if self.kind not in ("*", kind):
            return False
        return self.code == "*" or self.code in codes


def parse_fail_rules(spec: str) -> list[FailRule]:
    """Parse ``RECONCILER_STORE_FAIL`` (``OP:KIND[:CODE][:after]`` rules joined by ``;``, or JSON)."""
    spec = spec.strip()
    if not spec:
        return []
    if spec.startswith("["):
        try:
            raw = json.loads(spec)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{FAIL_ENV}: invalid JSON: {exc}") from None
        rules = []
        for item in raw:
            if not isinstance(item, dict):
                raise ValueError(f"{FAIL_ENV}: each JSON rule must be an object")
            rules.append(
                FailRule(
                    op=str(item.get("op", "*")),
                    kind=str(item.get("kind", "*")),
                    code=str(item.get("code", "*")),
                    after=bool(item.get("after", False)),
                    times=item.get("times"),
                    status=int(item.get("status", 500)),
                )
            )
        return rules
    rules = []
    for part in spec.split(";"):
        part = part.strip()
        if not part:
            continue
        after = False
        if part.endswith(":after"):
            after, part = True, part[: -len(":after")]
        op, _, rest = part.partition(":")
        kind, _, code = rest.partition(":")
        if op not in ("*", "create", "update", "delete"):
            raise ValueError(f"{FAIL_ENV}: unknown operation {op!r} (create, update, delete or *)")
        rules.append(FailRule(op=op, kind=kind or "*", code=code or "*", after=after))
    return rules


# --------------------------------------------------------------------------- helpers


def _now() -> str:
    now = _dt.datetime.now(_dt.UTC)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


def _show_path(path: Iterable[str | int]) -> str:
    """``('currencyConversions', 0, 'from')`` -> ``currencyConversions[0].from``."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


def _plural(noun: str, count: int) -> str:
    if count == 1:
        return noun
    if noun.endswith("y") and noun[-2:-1] not in ("a", "e", "i", "o", "u"):
        return noun[:-1] + "ies"
    return noun + "s"


def _article(noun: str) -> str:
    return "an" if noun[:1].lower() in ("a", "e", "i", "o", "u") else "a"


def _and(parts: builtins.list[str]) -> str:
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def _label(entity: Mapping[str, Any]) -> str:
    """How a message names an object: its code, or its id when it has none."""
    code = entity.get("code")
    return repr(code) if code is not None else str(entity.get("id"))


def _instant(value: str | _dt.date, what: str) -> str:
    """An ISO date or date-time as the UTC date-time string the store keeps and compares
    (``YYYY-MM-DDTHH:MM:SSZ``: fixed width, so SQLite compares it as text correctly)."""
    if isinstance(value, _dt.datetime):
        moment = value
    elif isinstance(value, _dt.date):
        moment = _dt.datetime(value.year, value.month, value.day)
    else:
        try:
            moment = _dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError:
            raise _invalid(f"{what}: must be an ISO date or date-time, not {value!r}") from None
    if moment.tzinfo is not None:
        moment = moment.astimezone(_dt.UTC).replace(tzinfo=None)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _date_time_refused(path: str, problems: list[str], value: str) -> str:
    problems.append(f"{path}: must be an ISO-8601 date-time such as 2024-01-01T00:00:00Z")
    return value


def _dumps(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def encode_token(seq: int) -> str:
    raw = _dumps({"v": 1, "before": seq}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_token(token: str) -> int:
    try:
        pad = "=" * (-len(token) % 4)
        data = json.loads(base64.urlsafe_b64decode(token + pad))
        seq = data["before"]
        if data.get("v") != 1 or not isinstance(seq, int) or isinstance(seq, bool):
            raise ValueError
        return seq
    except (ValueError, KeyError, TypeError, binascii.Error, UnicodeDecodeError):
        raise _invalid("invalid nextToken: pass back the value of a previous response") from None


def _seed_currency() -> dict[str, Any]:
    return {"name": "US Dollar", "code": "USD", "archived": False, "maxDecimalPlaces": 2, "roundingMode": "HALF_UP"}


def _seed_org_config() -> dict[str, Any]:
    """A fresh organization's config: only values the official document or the seed pages
    give as defaults (openapi-full.json, OrganizationConfigRequest / OrganizationConfigResponse;
    seed page "Settings>Organization"). What neither states is left out, as the response
    schema requires no field:

    * ``daysBeforeBillDue``: PUT requires it (> 0) but no default is documented, so a fresh
      organization here has none and the first PUT must give one (as m3ter's does).
    * ``billPrefix``, ``sequenceStartNumber``: "If you do not define a billPrefix, a default
      will be used in the Console" - i.e. unset (OrganizationConfigRequest.billPrefix).
    * ``autoApproveBillsGracePeriod`` (+ unit), ``scheduledBillOffset``,
      ``defaultStatementDefinitionId``: optional settings, off until set.
    """
    return {
        "currency": "USD",  # OrganizationConfigRequest.currency default
        "timezone": "UTC",  # OrganizationConfigRequest/Response.timezone default
        "yearEpoch": "2022-01-01",  # ...yearEpoch default
        "monthEpoch": "2022-01-01",  # ...monthEpoch default
        "weekEpoch": "2022-01-04",  # ...weekEpoch default
        "dayEpoch": "2022-01-01",  # ...dayEpoch default
        "scheduledBillInterval": 0.0,  # description: "The default is 0, which disables scheduling"
        # seed page: "Standing charge billing. Default is to bill in arrears. Minimum spend billing.
        # Default is to bill in arrears. Prepayments/Commitment fee billing. Default is to bill in advance."
        "standingChargeBillInAdvance": False,
        "commitmentFeeBillInAdvance": True,
        "minimumSpendBillInAdvance": False,
        # seed page: "First day of next period ... This is the default."
        "externalInvoiceDate": "FIRST_DAY_OF_NEXT_PERIOD",
        "suppressedEmptyBills": False,  # seed page: "Suppress empty bills ... Default is disabled."
        "consolidateBills": False,  # seed page: "Consolidate bills ... Default is disabled."
        # StatementAutoGenerateMode: "The default value is **None**."
        "autoGenerateStatementMode": "NONE",
        # seed page: "Prepayment then balance ... Default."
        "creditApplicationOrder": ["PREPAYMENT", "BALANCE"],
        # allowNegativeBalances: "This feature is enabled on request" - off on a fresh organization.
        "allowNegativeBalances": False,
        # OrganizationConfigRequest.allowOverlappingPlans: "FALSE ... (*Default*)"
        "allowOverlappingPlans": False,
        "currencyConversions": [],  # none defined yet
    }


_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS orgs (org TEXT PRIMARY KEY, dt_created TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS entities (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    org TEXT NOT NULL,
    kind TEXT NOT NULL,
    id TEXT NOT NULL,
    code TEXT,
    parent_id TEXT,
    archived INTEGER NOT NULL DEFAULT 0,
    version INTEGER NOT NULL,
    body TEXT NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS ux_entities_id ON entities (org, kind, id);
CREATE UNIQUE INDEX IF NOT EXISTS ux_entities_code ON entities (org, kind, code) WHERE code IS NOT NULL;
DROP INDEX IF EXISTS ix_entities_parent;
CREATE INDEX IF NOT EXISTS ix_entities_kind_parent ON entities (org, kind, parent_id) WHERE parent_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS ix_entities_list ON entities (org, kind, seq);
"""


def _filters(
    org: str,
    name: str,
    *,
    ids: Collection[str] | None,
    codes: Collection[str] | None,
    archived: bool | None,
) -> tuple[builtins.list[str], builtins.list[Any]]:
    """WHERE terms and parameters for a listing of one kind. ``json_each`` takes any number of
    ids or codes in one parameter, clear of SQLite's bound-parameter limit."""
    where = ["org = ?", "kind = ?"]
    params: builtins.list[Any] = [org, name]
    if ids is not None:
        where.append("id IN (SELECT value FROM json_each(?))")
        params.append(_dumps(builtins.list(ids)))
    if codes is not None:
        where.append("code IN (SELECT value FROM json_each(?))")
        params.append(_dumps(builtins.list(codes)))
    if archived is not None:
        where.append("archived = ?")
        params.append(1 if archived else 0)
    return where, params


#: A whole kind of at least this many objects is read in chunks (see ``_list_whole``).
CHUNKED_READ_MIN = 20_000
_READ_CHUNKS = 8


def _list_whole(conn: sqlite3.Connection, where: str, params: builtins.list[Any]) -> EntityList:
    """Every object matching ``where``, newest first, as JSON arrays built by SQLite and each
    parsed by one ``json.loads`` (about a third faster than parsing row by row). A large kind
    comes in chunks: SQLite builds the next chunk on a second thread (it lets go of the GIL
    while it works) while this one parses the last, ~0.1 s of the 0.5 s that 100k accounts
    take. The count and every chunk are read in one transaction, so they see one state of
    the organization even while another process writes."""
    rows = f"SELECT body FROM entities WHERE {where} ORDER BY seq DESC"
    joined = f"SELECT '[' || coalesce(group_concat(body, ','), '') || ']' FROM ({rows}{{}})"
    own = not conn.in_transaction
    if own:
        conn.execute("BEGIN")
    worker: threading.Thread | None = None
    try:
        (count,) = conn.execute(f"SELECT count(*) FROM entities WHERE {where}", params).fetchone()
        with gcpause.paused():  # no cycles in parsed JSON; see reconciler.manifest.gcpause
            if count < CHUNKED_READ_MIN:
                (text,) = conn.execute(joined.format(""), params).fetchone()
                result: EntityList = json.loads(text)
                return result
            size = -(-count // _READ_CHUNKS)
            chunk = joined.format(" LIMIT ? OFFSET ?")
            made: dict[int, Any] = {}

            def make(index: int) -> None:
                try:
                    made[index] = conn.execute(chunk, [*params, size, index * size]).fetchone()[0]
                except BaseException as exc:  # handed to the reading thread
                    made[index] = exc

            result = []
            for index in range(_READ_CHUNKS):
                if worker is None:
                    make(index)
                else:
                    worker.join()
                    worker = None
                if index + 1 < _READ_CHUNKS:
                    worker = threading.Thread(target=make, args=(index + 1,), name="store-read", daemon=True)
                    worker.start()
                text = made.pop(index)
                if isinstance(text, BaseException):
                    raise text
                result.extend(json.loads(text))
            return result
    finally:
        if worker is not None:
            worker.join()  # never leave a statement running on the connection
        if own:
            conn.execute("COMMIT")


# --------------------------------------------------------------------------- the store


class Store:
    """m3ter organizations in one SQLite file; thread-safe, multi-process-safe."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        fail_rules: builtins.list[FailRule] | None = None,
        extra_fields: Mapping[str, Any] | None = None,
        kinds: Iterable[Kind] | None = None,
    ) -> None:
        """``extra_fields``: fields outside the official document that this store behaves as
        if it knew (a newer m3ter): every new object gets them with these values unless the
        create body sets them, bodies may carry them, and a PUT that leaves one out clears it
        like any known field. They test that clients keep live fields they do not manage.
        ``kinds``: the registry to serve (default ``reconciler.kinds.KINDS``); tests give one
        with extra entries to exercise the generic rules."""
        self.path = Path(path)
        self._rules = _DEFAULT_RULES if kinds is None else _Rules(kinds)
        self.extra_fields: dict[str, Any] = dict(extra_fields or {})
        if str(self.path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._lock = threading.Lock()
        self._connections: builtins.list[sqlite3.Connection] = []
        self._known_orgs: set[str] = set()
        self._closed = False
        if fail_rules is None:
            fail_rules = parse_fail_rules(os.environ.get(FAIL_ENV, ""))
        self._fail_rules: builtins.list[FailRule] = builtins.list(fail_rules)
        conn = self._conn()
        with self._write(conn):
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    conn.execute(statement)
            conn.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
            self._sync_parent_column(conn)

    def _sync_parent_column(self, conn: sqlite3.Connection) -> None:
        """``parent_id`` holds each kind's ``_Rules.column`` field, recorded in ``meta`` as
        ``parent_id:<kind>``; when the registry now names another field for a kind (or a
        database predates the record and held another), the column is refilled from the
        bodies once, so lookups on it never read a stale field."""
        recorded = dict(conn.execute("SELECT key, value FROM meta WHERE key LIKE 'parent_id:%'").fetchall())
        for name, ref in self._rules.column.items():
            key = f"parent_id:{name}"
            field = ref.api_field if ref is not None and ref.api_field else ""
            if recorded.get(key, _LEGACY_PARENT_COLUMN.get(name, "")) != field:
                value = (  # strings only, as ``_Rules.column_value`` writes it
                    f"CASE WHEN json_type(body, '$.{field}') = 'text' THEN json_extract(body, '$.{field}') END"
                    if field
                    else "NULL"
                )
                conn.execute(f"UPDATE entities SET parent_id = {value} WHERE kind = ?", (name,))
            if recorded.get(key) != field:
                conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, field))

    # ---- connections and transactions

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None:
            return conn
        if self._closed:
            raise StoreError("unavailable", "the store is closed")
        conn = sqlite3.connect(
            str(self.path), timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False
        )
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        with contextlib.suppress(sqlite3.OperationalError):
            conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA foreign_keys = OFF")
        self._local.conn = conn
        with self._lock:
            self._connections.append(conn)
        return conn

    @contextlib.contextmanager
    def _write(self, conn: sqlite3.Connection) -> Iterator[None]:
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            raise StoreError("unavailable", f"the database is busy: {exc}") from None
        try:
            yield
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        else:
            try:
                conn.execute("COMMIT")
            except sqlite3.OperationalError as exc:
                with contextlib.suppress(sqlite3.OperationalError):
                    conn.execute("ROLLBACK")
                raise StoreError("unavailable", f"the database is busy: {exc}") from None

    def close(self) -> None:
        """Close every connection this store opened (from any thread)."""
        with self._lock:
            self._closed = True
            conns, self._connections = self._connections, []
        for conn in conns:
            with contextlib.suppress(sqlite3.Error):
                conn.close()
        self._local = threading.local()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- organizations

    def ensure_org(self, org: str) -> None:
        """Create and seed ``org`` unless it exists (idempotent, safe across processes)."""
        if org in self._known_orgs:
            return
        conn = self._conn()
        if conn.execute("SELECT 1 FROM orgs WHERE org = ?", (org,)).fetchone() is None:
            with self._write(conn):
                cur = conn.execute("INSERT OR IGNORE INTO orgs (org, dt_created) VALUES (?, ?)", (org, _now()))
                if cur.rowcount:
                    self._seed(conn, org)
        self._known_orgs.add(org)

    def org_exists(self, org: str) -> bool:
        return self._conn().execute("SELECT 1 FROM orgs WHERE org = ?", (org,)).fetchone() is not None

    def _seed(self, conn: sqlite3.Connection, org: str) -> None:
        self._insert(conn, org, CURRENCY, _seed_currency(), SYSTEM_ACTOR)
        self._insert(conn, org, ORG_CONFIG, _seed_org_config(), SYSTEM_ACTOR)
        self._insert(conn, org, CUSTOM_FIELDS, {}, SYSTEM_ACTOR)

    # ---- reads

    def list(
        self,
        org: str,
        kind: KindLike,
        *,
        page_size: int,
        next_token: str | None = None,
        ids: Collection[str] | None = None,
        codes: Collection[str] | None = None,
        archived: bool | None = None,
        where: Mapping[str, Collection[str]] | None = None,
    ) -> Page:
        """One page, newest first; the token for the next page or None on the last page.
        ``where`` keeps only objects whose top-level ``field`` holds one of the given values
        (the list filters of a kind's registry entry, ``Kind.list_filters``)."""
        name = self._rules.name(kind)
        if name in self._rules.singletons:
            raise _invalid(f"{name} is a singleton; it has no list")
        extra = [
            (f"{self._rules.field_sql(name, field)} IN (SELECT value FROM json_each(?))",
             (_dumps(builtins.list(values)),))
            for field, values in (where or {}).items()
        ]
        return self._page(org, name, page_size, next_token, ids=ids, codes=codes, archived=archived, extra=extra)

    def children(self, org: str, account_id: str, *, page_size: int, next_token: str | None = None) -> Page:
        """Child accounts of ``account_id``, newest first (404 when the account does not exist)."""
        self.get(org, ACCOUNT, account_id)
        parent = self._rules.field_sql(ACCOUNT, "parentAccountId")
        return self._page(org, ACCOUNT, page_size, next_token, extra=[(f"{parent} = ?", (account_id,))])

    def _page(
        self,
        org: str,
        name: str,
        page_size: int,
        next_token: str | None,
        *,
        ids: Collection[str] | None = None,
        codes: Collection[str] | None = None,
        archived: bool | None = None,
        extra: Iterable[tuple[str, Iterable[Any]]] = (),
    ) -> Page:
        if isinstance(page_size, bool) or not isinstance(page_size, int) or not 1 <= page_size <= MAX_PAGE_SIZE:
            raise _invalid(f"pageSize must be between 1 and {MAX_PAGE_SIZE}")
        self.ensure_org(org)
        where, params = _filters(org, name, ids=ids, codes=codes, archived=archived)
        if next_token:
            where.append("seq < ?")
            params.append(decode_token(next_token))
        for term, values in extra:
            where.append(term)
            params.extend(values)
        sql = f"SELECT seq, body FROM entities WHERE {' AND '.join(where)} ORDER BY seq DESC LIMIT ?"
        params.append(page_size + 1)
        rows = self._conn().execute(sql, params).fetchall()
        token = encode_token(rows[page_size - 1][0]) if len(rows) > page_size else None
        return [json.loads(body) for _, body in rows[:page_size]], token

    def list_all(
        self,
        org: str,
        kind: KindLike,
        *,
        codes: Collection[str] | None = None,
        ids: Collection[str] | None = None,
        archived: bool | None = None,
    ) -> EntityList:
        """Every object of ``kind`` (archived included unless filtered), newest first, no paging."""
        name = self._rules.name(kind)
        self.ensure_org(org)
        conn = self._conn()
        where, params = _filters(org, name, ids=ids, codes=codes, archived=archived)
        if codes is None and ids is None:
            return _list_whole(conn, " AND ".join(where), params)
        # No ORDER BY: sorting in Python keeps SQLite on the (org, kind, code) unique index.
        found = conn.execute(f"SELECT seq, body FROM entities WHERE {' AND '.join(where)}", params).fetchall()
        found.sort(reverse=True)
        return [json.loads(body) for _, body in found]

    def count(self, org: str, kind: KindLike) -> int:
        self.ensure_org(org)
        row = (
            self._conn()
            .execute("SELECT COUNT(*) FROM entities WHERE org = ? AND kind = ?", (org, self._rules.name(kind)))
            .fetchone()
        )
        return int(row[0])

    def find(self, org: str, kind: KindLike, entity_id: str) -> dict[str, Any] | None:
        name = self._rules.name(kind)
        self.ensure_org(org)
        row = (
            self._conn()
            .execute("SELECT body FROM entities WHERE org = ? AND kind = ? AND id = ?", (org, name, entity_id))
            .fetchone()
        )
        return json.loads(row[0]) if row else None

    def get(self, org: str, kind: KindLike, entity_id: str) -> dict[str, Any]:
        found = self.find(org, kind, entity_id)
        if found is None:
            raise StoreError("not_found", f"{self._rules.name(kind)} {entity_id} not found")
        return found

    def get_singleton(self, org: str, kind: KindLike) -> dict[str, Any]:
        name = self._rules.name(kind)
        if name not in self._rules.singletons:
            raise _invalid(f"{name} is not a singleton")
        self.ensure_org(org)
        row = (
            self._conn()
            .execute("SELECT body FROM entities WHERE org = ? AND kind = ? ORDER BY seq LIMIT 1", (org, name))
            .fetchone()
        )
        if row is None:  # pragma: no cover - seeded with the organization
            raise StoreError("not_found", f"{name} not found")
        return dict(json.loads(row[0]))

    # ---- statement definitions and account plans (read-only kinds, seeded by tests)

    def seed_statement_definition(
        self,
        org: str,
        name: str,
        *,
        aggregation_frequency: str = "MONTH",
        include_price_per_unit: bool = False,
        generate_slim_statements: bool = False,
        dimensions: Iterable[Mapping[str, Any]] = (),
        measures: Iterable[Mapping[str, Any]] = (),
        actor: str = SYSTEM_ACTOR,
    ) -> dict[str, Any]:
        """Add a statement definition as m3ter answers it (openapi-full.json,
        StatementDefinitionResponse). ``aggregationFrequency`` is the one field its request
        schema requires (StatementDefinitionRequest); names need not be unique in m3ter, so
        two definitions may share one (tests of ambiguous names need that)."""
        if aggregation_frequency not in AGGREGATION_FREQUENCIES:
            raise _invalid(f"aggregationFrequency: must be one of {', '.join(AGGREGATION_FREQUENCIES)}")
        fields = {
            "name": name,
            "aggregationFrequency": aggregation_frequency,
            "includePricePerUnit": include_price_per_unit,
            "generateSlimStatements": generate_slim_statements,
            "dimensions": [dict(d) for d in dimensions],
            "measures": [dict(m) for m in measures],
        }
        self.ensure_org(org)
        conn = self._conn()
        with self._write(conn):
            return self._insert(conn, org, STATEMENT_DEFINITION, fields, actor)

    def seed_account_plan(
        self,
        org: str,
        account_id: str,
        *,
        plan_id: str | None = None,
        plan_group_id: str | None = None,
        start_date: str | _dt.date = "2024-01-01",
        end_date: str | _dt.date | None = None,
        code: str | None = None,
        product_id: str | None = None,
        contract_id: str | None = None,
        bill_epoch: str | None = None,
        child_billing_mode: str | None = None,
        custom_fields: Mapping[str, Any] | None = None,
        actor: str = SYSTEM_ACTOR,
    ) -> dict[str, Any]:
        """Attach a plan (or plan group) to an account, as m3ter answers it (openapi-full.json,
        AccountPlanResponse). AccountPlanRequest requires ``accountId`` and ``startDate``, and
        exactly one of ``planId``/``planGroupId``; with neither given a random plan id is used
        (plans themselves are not modelled). Dates are stored as UTC date-times."""
        if plan_id is not None and plan_group_id is not None:
            raise _invalid("planId and planGroupId are exclusive: give exactly one")
        if plan_id is None and plan_group_id is None:
            plan_id = str(uuid.uuid4())
        if child_billing_mode is not None and child_billing_mode not in CHILD_BILLING_MODES:
            raise _invalid(f"childBillingMode: must be one of {', '.join(CHILD_BILLING_MODES)}")
        start = _instant(start_date, "startDate")
        end = None if end_date is None else _instant(end_date, "endDate")
        if end is not None and end <= start:
            raise _invalid("endDate: must be after startDate")
        fields: dict[str, Any] = {"accountId": account_id, "startDate": start}
        optional = {
            "planId": plan_id,
            "planGroupId": plan_group_id,
            "productId": product_id if plan_id is not None else None,  # not on plan groups
            "endDate": end,
            "code": code,
            "contractId": contract_id,
            "billEpoch": bill_epoch,
            "childBillingMode": child_billing_mode,
            "customFields": dict(custom_fields) if custom_fields is not None else None,
        }
        fields.update({k: v for k, v in optional.items() if v is not None})
        self.ensure_org(org)
        conn = self._conn()
        with self._write(conn):
            found = conn.execute(
                "SELECT 1 FROM entities WHERE org = ? AND kind = ? AND id = ?", (org, ACCOUNT, account_id)
            ).fetchone()
            if found is None:
                raise _invalid(f"accountId: account {account_id} does not exist")
            return self._insert(conn, org, ACCOUNT_PLAN, fields, actor)

    def list_account_plans(
        self,
        org: str,
        *,
        page_size: int,
        next_token: str | None = None,
        account: str | None = None,
        plan: str | None = None,
        contract: str | None = None,
        product: str | None = None,
        include_all: bool = False,
        date: str | None = None,
        ids: Collection[str] | None = None,
        now: _dt.datetime | None = None,
    ) -> Page:
        """One page of account plans with the filters of ``GET /accountplans``
        (openapi-full.json, ListAccountPlans): ``account``, ``plan`` and ``contract`` return only
        the plans active now unless ``include_all`` ("includeall ... only operative if you also
        have one of account, plan or contract"); ``product`` only together with ``account``;
        ``date`` the plans active on that date; ``ids`` those ids."""
        if product is not None and account is None:
            raise _invalid("product: can only be used together with account")
        extra: builtins.list[tuple[str, Iterable[Any]]] = []
        for column, value in (("planId", plan), ("contractId", contract), ("productId", product)):
            if value is not None:
                extra.append((f"json_extract(body, '$.{column}') = ?", (value,)))
        active_at: str | None = None
        if date is not None:
            active_at = _instant(date, "date")
        elif not include_all and (account is not None or plan is not None or contract is not None):
            active_at = _instant(now or _dt.datetime.now(_dt.UTC), "now")
        if active_at is not None:
            extra.append(
                (
                    "json_extract(body, '$.startDate') <= ? AND (json_extract(body, '$.endDate') IS NULL "
                    "OR json_extract(body, '$.endDate') > ?)",
                    (active_at, active_at),
                )
            )
        if account is not None:
            extra.append((f"{self._rules.field_sql(ACCOUNT_PLAN, 'accountId')} = ?", (account,)))
        return self._page(org, ACCOUNT_PLAN, page_size, next_token, ids=ids, extra=extra)

    def account_plans_of(self, org: str, account_ids: Collection[str]) -> EntityList:
        """Every account plan (active, future or ended) of the given accounts, newest first:
        each of them blocks the account's deletion."""
        self.ensure_org(org)
        rows = (
            self._conn()
            .execute(
                "SELECT body FROM entities WHERE org = ? AND kind = ? "
                f"AND {self._rules.field_sql(ACCOUNT_PLAN, 'accountId')} IN (SELECT value FROM json_each(?)) "
                "ORDER BY seq DESC",
                (org, ACCOUNT_PLAN, _dumps(builtins.list(dict.fromkeys(account_ids)))),
            )
            .fetchall()
        )
        return [json.loads(body) for (body,) in rows]

    # ---- fault injection

    def fail_on(
        self,
        op: str = "*",
        kind: str = "*",
        code: str = "*",
        *,
        after: bool = False,
        times: int | None = None,
        status: int = 500,
        predicate: Callable[[str, str, str | None, Mapping[str, Any] | None], bool] | None = None,
    ) -> FailRule:
        """Make matching writes fail (see the module docstring); returns the rule."""
        rule = FailRule(op=op, kind=kind, code=code, after=after, times=times, status=status, predicate=predicate)
        with self._lock:
            self._fail_rules.append(rule)
        return rule

    def clear_failures(self) -> None:
        with self._lock:
            self._fail_rules.clear()

    def _injected(
        self, op: str, kind: str, codes: Collection[str | None], body: Mapping[str, Any] | None, *, after: bool
    ) -> StoreError | None:
        if not self._fail_rules:
            return None
        with self._lock:
            for rule in self._fail_rules:
                if rule.after == after and rule.matches(op, kind, codes, body):
                    rule.fired += 1
                    what = next((c for c in codes if c), None)
                    label = f" {what!r}" if what else ""
                    when = " after the write" if after else ""
                    return StoreError("injected", f"injected failure{when}: {op} {kind}{label}", rule.status)
        return None

    # ---- writes

    def create(
        self, org: str, kind: KindLike, body: Mapping[str, Any], *, actor: str = DEFAULT_ACTOR
    ) -> dict[str, Any]:
        name = self._rules.managed(kind)
        if name in self._rules.singletons:
            raise _invalid(f"{name} is a singleton; it cannot be created")
        if isinstance(body, Mapping) and body.get("version") is not None:
            raise _invalid("version: must not be sent when creating an entity (the new entity gets version 1)")
        fields = validate_body(self._rules.by_name[name], body, self.extra_fields)
        self.ensure_org(org)
        codes = [fields.get("code")]
        err = self._injected("create", name, codes, fields, after=False)
        if err:
            raise err
        conn = self._conn()
        with self._write(conn):
            if fields.get("code") is not None:
                self._check_unique_code(conn, org, name, fields["code"], None)
            self._check_references(conn, org, name, fields, None)
            entity = self._insert(conn, org, name, fields, actor)
        err = self._injected("create", name, codes, fields, after=True)
        if err:
            raise err
        return entity

    def create_many(
        self, org: str, kind: KindLike, bodies: Iterable[Mapping[str, Any]], *, actor: str = DEFAULT_ACTOR
    ) -> EntityList:
        """Create several objects in one transaction, all or nothing (for seeding benchmarks
        and tests quickly; same rules as :meth:`create`, no fault injection)."""
        name = self._rules.managed(kind)
        if name in self._rules.singletons:
            raise _invalid(f"{name} is a singleton; it cannot be created")
        self.ensure_org(org)
        checked = []
        for body in bodies:
            if isinstance(body, Mapping) and body.get("version") is not None:
                raise _invalid("version: must not be sent when creating an entity")
            checked.append(validate_body(self._rules.by_name[name], body, self.extra_fields))
        conn = self._conn()
        out: EntityList = []
        with self._write(conn):
            known: set[tuple[str, bool, Any]] = set()  # reference targets already found in this batch
            for fields in checked:
                self._check_references(conn, org, name, fields, None, known=known)
                out.append(self._insert(conn, org, name, fields, actor))  # the unique index checks codes
        return out

    def update(
        self, org: str, kind: KindLike, entity_id: str, body: Mapping[str, Any], *, actor: str = DEFAULT_ACTOR
    ) -> dict[str, Any]:
        """Replace the entity (PUT): ``body`` must carry the stored ``version``."""
        name = self._rules.managed(kind)
        if name in self._rules.singletons:
            raise _invalid(f"{name} is a singleton; use put_singleton")
        return self._replace(org, name, entity_id, body, actor)

    def put_singleton(
        self, org: str, kind: KindLike, body: Mapping[str, Any], *, actor: str = DEFAULT_ACTOR
    ) -> dict[str, Any]:
        name = self._rules.name(kind)
        if name not in self._rules.singletons:
            raise _invalid(f"{name} is not a singleton")
        return self._replace(org, name, None, body, actor)

    def _replace(
        self, org: str, name: str, entity_id: str | None, body: Mapping[str, Any], actor: str
    ) -> dict[str, Any]:
        """PUT: ``entity_id`` None for a singleton (the organization's one object of the kind).
        The row is read once, inside the write transaction that checks and replaces it."""
        if not isinstance(body, Mapping):
            raise _invalid(f"body: must be a JSON object, not {_type_name(body)}")
        self.ensure_org(org)
        conn = self._conn()
        with self._write(conn):
            if entity_id is None:
                row = conn.execute(
                    "SELECT id, version, body FROM entities WHERE org = ? AND kind = ? ORDER BY seq LIMIT 1",
                    (org, name),
                ).fetchone()
            else:
                row = conn.execute(
                    "SELECT id, version, body FROM entities WHERE org = ? AND kind = ? AND id = ?",
                    (org, name, entity_id),
                ).fetchone()
            if row is None:
                raise StoreError("not_found", f"{name} {entity_id} not found" if entity_id else f"{name} not found")
            entity_id, version, stored = str(row[0]), row[1], json.loads(row[2])
            given = body.get("version")
            if isinstance(given, bool) or not isinstance(given, int | None):
                raise _invalid("version: must be an integer")
            fields = validate_body(self._rules.by_name[name], body, self.extra_fields)
            rules = self._rules
            codes = [name if name in rules.singletons else stored.get("code"), fields.get("code")]
            err = self._injected("update", name, codes, fields, after=False)
            if err:
                raise err  # inside the transaction: rolled back, nothing written
            if given != version:
                shown = "none" if given is None else str(given)
                raise StoreError(
                    "conflict",
                    f"version mismatch for {name} {entity_id}: expected version {version}, given {shown}; "
                    "re-read it and try again",
                )
            if name in rules.keyed and fields.get("code") is not None:
                self._check_unique_code(conn, org, name, fields["code"], entity_id)
            self._check_references(conn, org, name, fields, entity_id)
            if fields.get("archived") is True and not stored.get("archived"):
                self._check_unheld(conn, org, name, stored, "archive")
            entity = self._entity(name, entity_id, version + 1, fields, stored, actor)
            conn.execute(
                "UPDATE entities SET code = ?, parent_id = ?, archived = ?, version = ?, body = ? "
                "WHERE org = ? AND kind = ? AND id = ?",
                (
                    entity.get("code") if name in rules.keyed else None,
                    rules.column_value(name, entity),
                    1 if entity.get("archived") else 0,
                    version + 1,
                    _dumps(entity),
                    org,
                    name,
                    entity_id,
                ),
            )
        err = self._injected("update", name, codes, fields, after=True)
        if err:
            raise err
        return entity

    def delete(self, org: str, kind: KindLike, entity_id: str, *, actor: str = DEFAULT_ACTOR) -> dict[str, Any]:
        """Remove the entity and return it as it was."""
        name = self._rules.managed(kind)
        if name in self._rules.singletons:
            raise _invalid(f"{name} is a singleton; it cannot be deleted")
        self.ensure_org(org)
        conn = self._conn()
        with self._write(conn):
            row = conn.execute(
                "SELECT body FROM entities WHERE org = ? AND kind = ? AND id = ?", (org, name, entity_id)
            ).fetchone()
            if row is None:
                raise StoreError("not_found", f"{name} {entity_id} not found")
            entity = json.loads(row[0])
            codes = [entity.get("code")]
            err = self._injected("delete", name, codes, None, after=False)
            if err:
                raise err  # inside the transaction: rolled back, nothing written
            self._check_unheld(conn, org, name, entity, "delete")
            conn.execute("DELETE FROM entities WHERE org = ? AND kind = ? AND id = ?", (org, name, entity_id))
        err = self._injected("delete", name, codes, None, after=True)
        if err:
            raise err
        return dict(entity)

    # ---- write helpers (inside a transaction)

    def _entity(
        self,
        name: str,
        entity_id: str,
        version: int,
        fields: Mapping[str, Any],
        previous: Mapping[str, Any] | None,
        actor: str,
    ) -> dict[str, Any]:
        now = _now()
        entity: dict[str, Any] = {"id": entity_id, "version": version}
        entity.update(fields)
        if name in self._rules.picklists:
            entity.setdefault("archived", False)
        entity["dtCreated"] = previous.get("dtCreated", now) if previous else now
        entity["dtLastModified"] = now
        entity["createdBy"] = previous.get("createdBy", actor) if previous else actor
        entity["lastModifiedBy"] = actor
        return entity

    def _insert(
        self, conn: sqlite3.Connection, org: str, name: str, fields: Mapping[str, Any], actor: str
    ) -> dict[str, Any]:
        if self.extra_fields:
            fields = {**json.loads(_dumps(self.extra_fields)), **fields}  # a deep copy of the defaults
        entity = self._entity(name, str(uuid.uuid4()), 1, fields, None, actor)
        code = entity.get("code") if name in self._rules.keyed else None
        try:
            conn.execute(
                "INSERT INTO entities (org, kind, id, code, parent_id, archived, version, body) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    org,
                    name,
                    entity["id"],
                    code,
                    self._rules.column_value(name, entity),
                    1 if entity.get("archived") else 0,
                    1,
                    _dumps(entity),
                ),
            )
        except sqlite3.IntegrityError:
            if code is not None:
                self._check_unique_code(conn, org, name, code, None)
            raise
        return entity

    @staticmethod
    def _check_unique_code(conn: sqlite3.Connection, org: str, name: str, code: str, entity_id: str | None) -> None:
        row = conn.execute(
            "SELECT id FROM entities WHERE org = ? AND kind = ? AND code = ?", (org, name, code)
        ).fetchone()
        if row is not None and row[0] != entity_id:
            raise StoreError("duplicate", f"code already exists: a {name} with code {code!r} exists ({row[0]})")

    def _check_references(
        self,
        conn: sqlite3.Connection,
        org: str,
        name: str,
        fields: Mapping[str, Any],
        entity_id: str | None,
        *,
        known: set[tuple[str, bool, Any]] | None = None,
    ) -> None:
        """Every reference value in ``fields`` (an object of ``name``, ``entity_id`` None on
        create) must name an existing object of its target kind, by id or by code; the
        kind's parent (its plain by-id self-reference, kept in ``parent_id``) must not be the
        object itself or make it its own ancestor. One indexed lookup per value; ``known``
        (a batch's cache) skips targets already found. All problems in one ``invalid``."""
        problems: builtins.list[str] = []
        rules = self._rules
        parent = rules.column.get(name)
        for ref in rules.references.get(name, ()):
            plain = ref.api_field
            located = [(fields.get(plain), (plain,))] if plain is not None else api_fields(ref, fields)
            for value, path in located:
                if value is None or value == "":
                    continue
                where, what = _show_path(path), rules.title(ref.target)
                shown = str(value) if ref.by_id else repr(value)
                key = (ref.target, ref.by_id, value)
                if known is not None and key in known:
                    continue
                if isinstance(value, bool) or not isinstance(value, str | int | float):
                    problems.append(f"{where}: {what} {value!r} does not exist")
                    continue
                forest = ref is parent and ref.target == name
                if forest and value == entity_id:
                    problems.append(f"{where}: {_article(what)} {what} cannot be its own parent")
                    continue
                column = "id" if ref.by_id else "code"
                row = conn.execute(
                    f"SELECT parent_id FROM entities WHERE org = ? AND kind = ? AND {column} = ?",
                    (org, ref.target, value),
                ).fetchone()
                if row is None:
                    problems.append(f"{where}: {what} {shown} does not exist")
                    continue
                if known is not None:
                    known.add(key)
                cycle = forest and entity_id is not None
                if cycle and self._is_ancestor(conn, org, name, str(entity_id), str(value), row[0]):
                    problems.append(f"{where}: the {what} would become its own ancestor (a parent cycle)")
        if problems:
            raise _invalid("; ".join(problems))

    @staticmethod
    def _is_ancestor(
        conn: sqlite3.Connection, org: str, name: str, entity_id: str, parent: str, grandparent: str | None
    ) -> bool:
        """Whether ``entity_id`` is an ancestor of ``parent`` (whose own parent is
        ``grandparent``), walking ``parent_id`` on the unique (org, kind, id) index."""
        seen = {parent}
        ancestor = grandparent
        while ancestor is not None and ancestor not in seen:
            if ancestor == entity_id:
                return True
            seen.add(ancestor)
            row = conn.execute(
                "SELECT parent_id FROM entities WHERE org = ? AND kind = ? AND id = ?", (org, name, ancestor)
            ).fetchone()
            ancestor = row[0] if row else None
        return False

    def _check_unheld(
        self, conn: sqlite3.Connection, org: str, name: str, entity: Mapping[str, Any], action: str
    ) -> None:
        """Refuse ``action`` ("delete", "archive") on ``entity`` while any object holds a
        reference to it whose ``blocks`` name that action: one ``invalid`` naming every kind
        that holds it, how many objects, through which fields, and the first few of them."""
        parts: builtins.list[str] = []
        holders = 0
        any_keyed = False
        for referrer, refs in self._rules.held.get((name, action), ()):
            count, held_fields, sample = self._holders(conn, org, referrer, refs, entity)
            if not count:
                continue
            holders += count
            fields_text = ", ".join(held_fields)
            title = self._rules.title(referrer)
            if referrer in self._rules.singletons:
                parts.append(f"the {title} ({fields_text})")
                continue
            any_keyed = True
            noun = f"child {title}" if referrer == name else title
            more = count - len(sample)
            shown = ", ".join(sample) + (f" and {more} more" if more > 0 else "")
            parts.append(f"{count} {_plural(noun, count)} ({fields_text}: {shown})")
        if parts:
            todo = "change or delete" if any_keyed else "change"
            raise _invalid(
                f"{self._rules.title(name)} {_label(entity)} cannot be {_BLOCKED_ACTIONS.get(action, action)}: "
                f"it is referenced by {_and(parts)}; {todo} {'it' if holders == 1 else 'them'} first"
            )

    _SAMPLE = 5  # referrers named in a refusal

    def _holders(
        self,
        conn: sqlite3.Connection,
        org: str,
        referrer: str,
        refs: tuple[Reference, ...],
        entity: Mapping[str, Any],
    ) -> tuple[int, builtins.list[str], builtins.list[str]]:
        """How many ``referrer`` objects hold ``entity`` through ``refs``, which of the refs'
        fields do, and the labels of the first few (oldest first).

        Plain fields are matched in SQL: the indexed ``parent_id`` column when it holds the
        field (an account's children, an account plan's account), else ``json_extract`` over
        the referrer kind's rows, evaluated inside SQLite (no body reaches Python). List paths
        (``currencyConversions[].from``: the organization config, small kinds) and references
        read through ``extract`` (codes inside a calculation) are matched in Python over the
        rows whose JSON text contains the value (an ``instr`` prefilter)."""
        wanted = [(ref, entity.get("id") if ref.by_id else entity.get("code")) for ref in refs]
        wanted = [(ref, value) for ref, value in wanted if value is not None]
        if not wanted:
            return 0, [], []
        if all(ref.api_field is not None for ref, _ in wanted):
            terms = [f"{self._rules.field_sql(referrer, str(ref.api_field))} = ?" for ref, _ in wanted]
            values = [value for _, value in wanted]
            where = f"org = ? AND kind = ? AND ({' OR '.join(terms)})"
            flags = ", ".join(f"max({t})" for t in terms)
            count, *held = conn.execute(
                f"SELECT COUNT(*), {flags} FROM entities WHERE {where}", (*values, org, referrer, *values)
            ).fetchone()
            if not count:
                return 0, [], []
            rows = conn.execute(
                f"SELECT id, code FROM entities WHERE {where} ORDER BY seq LIMIT ?",
                (org, referrer, *values, self._SAMPLE),
            ).fetchall()
            sample = [_label({"id": i, "code": c}) for i, c in rows]
            return int(count), [ref.api_path for (ref, _), flag in zip(wanted, held, strict=True) if flag], sample
        # a reference read through ``extract`` names the value inside a text (a calculation),
        # so its needle is the value without JSON quotes; the walk below decides
        needles = builtins.list(dict.fromkeys(
            _dumps(value)[1:-1] if ref.extract is not None and isinstance(value, str) else _dumps(value)
            for ref, value in wanted
        ))
        found = conn.execute(
            "SELECT body FROM entities WHERE org = ? AND kind = ? AND ("
            + " OR ".join("instr(body, ?) > 0" for _ in needles)
            + ") ORDER BY seq",
            (org, referrer, *needles),
        ).fetchall()
        held_refs: set[int] = set()
        labels: builtins.list[str] = []
        for (body,) in found:
            obj = json.loads(body)
            hits = {i for i, (ref, value) in enumerate(wanted) if any(v == value for v in api_values(ref, obj))}
            if hits:
                held_refs |= hits
                labels.append(_label(obj))
        held_fields = [ref.api_path for i, (ref, _) in enumerate(wanted) if i in held_refs]
        return len(labels), held_fields, labels[: self._SAMPLE]


__all__ = [
    "FAIL_ENV",
    "MAX_PAGE_SIZE",
    "REQUEST_SPECS",
    "FailRule",
    "Spec",
    "Store",
    "StoreError",
    "decode_token",
    "encode_token",
    "parse_fail_rules",
    "validate_body",
]
