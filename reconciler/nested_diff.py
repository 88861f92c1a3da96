"""Field-level diffs that name what changed *inside* a field, for people reading a plan.

A reviewer must see which conversion rate or which custom field changed, not one long JSON
line holding the whole list. This module only refines how a difference is *reported*;
*whether* a field differs is still decided by :func:`reconciler.compare.same` on the whole
value (an unordered ``currencyConversions`` multiset, an ordered ``creditApplicationOrder``),
so a refinement can never invent or hide a change: when it finds nothing to name, the whole
field is reported as before.

Path syntax (also in the README, "Diff paths"):

- ``field`` a top-level field of the request body;
- ``field.key`` a key of a mapping (custom fields, ``address``) or a field of a nested
  object, the key written exactly as it is (like ``settings.ignoreFields`` paths);
- ``field[ID]`` an item of a list whose items have an identity (``Kind.list_identity``):
  ``ID`` is the identity's values joined by ``→`` (``currencyConversions[GBP→USD]``); a
  value that is not a string is written as JSON;
- these compose: ``currencyConversions[GBP→USD].multiplier``.

An item added or removed is one entry at ``field[ID]`` with ``before`` or ``after`` null.
Lists without a declared identity, or whose items do not all carry a unique identity, are
reported whole.

Hand-written over ``compare.same`` rather than with ``deepdiff``: deepdiff's number rules
(significant digits, an epsilon) are not the plan's exact rules, its paths (``root['x'][0]``)
are not the manifests' terms, and the plan needs the whole-value verdict from ``same``
anyway; a second engine could only disagree with it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from reconciler.compare import MAKE_DIFF, FieldDiff, is_empty, same

Identities = Mapping[str, tuple[str, ...]]
ITEM_SEPARATOR = "→"


def diff_field(name: str, desired: Any, live: Any, *, ordered: bool = True,
               identities: Identities | None = None) -> list[FieldDiff]:
    """Differences of one top-level field, named as deep as they can be named.

    ``ordered`` says whether this field's list order matters (the registry's
    ``ordered_lists``); lists nested deeper compare in order, as ``compare.same`` does."""
    return _diff(name, name, desired, live, ordered, identities or {})


# Exact types ``same(value, None)`` is False for (also used by ``plan.diff_body``).
NEVER_EMPTY = frozenset({str, int, float, bool})


def diff_created(name: str, desired: Any) -> list[FieldDiff]:
    """``diff_field(name, desired, None)``, the diff of a field of a created object, without
    the comparisons: nothing is live, so every scalar is a change and only empty values
    (``None``, ``[]``, ``{}``) are not. A fresh plan of 100k accounts makes a million of
    these; ``tests/test_nested_diff_created.py`` holds the two to the same output."""
    if isinstance(desired, Mapping):
        return _created_mapping(name, desired)
    if type(desired) not in NEVER_EMPTY and same(desired, None):
        return []
    return [FieldDiff(name, None, desired)]


def _created_mapping(path: str, desired: Mapping[str, Any]) -> list[FieldDiff]:
    """``_diff_mapping(path, ..., desired, {})``: a non-empty mapping inside with nothing to
    name (all its values empty) is reported whole, as ``_refine`` does."""
    out: list[FieldDiff] = []
    created_into(path, desired, out)
    return out


def created_into(path: str, desired: Mapping[str, Any], out: list[FieldDiff]) -> None:
    """:func:`_created_mapping` appending to ``out`` (``plan.diff_body`` calls it for each
    mapping field of a create: no list made and copied per field)."""
    prefix = path + "."
    append = out.append
    for key, value in desired.items():
        t = type(value)
        if t in NEVER_EMPTY:
            append(MAKE_DIFF(FieldDiff, (f"{prefix}{key}", None, value)))
        elif value is None or same(value, None):
            continue
        elif t is dict or isinstance(value, Mapping):
            sub = f"{prefix}{key}"
            start = len(out)
            created_into(sub, value, out)
            if len(out) == start:
                append(MAKE_DIFF(FieldDiff, (sub, None, value)))
        else:
            append(MAKE_DIFF(FieldDiff, (f"{prefix}{key}", None, value)))


def top_field(path: str) -> str:
    """The top-level field a diff path is in (``currencyConversions[GBP→USD].multiplier`` ->
    ``currencyConversions``), for rules kept per field: redaction, field warnings."""
    return path.split(".", 1)[0].split("[", 1)[0]


def item_label(identity: tuple[Any, ...]) -> str:
    return ITEM_SEPARATOR.join(v if isinstance(v, str) else json.dumps(v, ensure_ascii=False) for v in identity)


def _diff(path: str, shape: str, desired: Any, live: Any, ordered: bool, identities: Identities) -> list[FieldDiff]:
    if isinstance(desired, Mapping) and (isinstance(live, Mapping) or is_empty(live)):
        return _diff_mapping(path, shape, desired, live if isinstance(live, Mapping) else {}, identities)
    if same(desired, live, ordered=ordered):
        return []
    return _refine(path, shape, desired, live, ordered, identities)


def _diff_mapping(path: str, shape: str, desired: Mapping[str, Any], live: Mapping[str, Any],
                  identities: Identities) -> list[FieldDiff]:
    """A mapping managed whole: keys that differ, and live keys the desired value lacks."""
    out: list[FieldDiff] = []
    get = live.get
    for key, value in desired.items():
        before = get(key)
        if not same(value, before):
            out.extend(_refine(f"{path}.{key}", f"{shape}.{key}", value, before, True, identities))
    out.extend(FieldDiff(f"{path}.{key}", before, None) for key, before in live.items()
               if before is not None and key not in desired)
    return out


def _refine(path: str, shape: str, desired: Any, live: Any, ordered: bool, identities: Identities) -> list[FieldDiff]:
    """Name the parts of a value known to differ; the whole value when no part can be named."""
    found: list[FieldDiff] = []
    if isinstance(desired, Mapping) and (isinstance(live, Mapping) or is_empty(live)):
        found = _diff_mapping(path, shape, desired, live if isinstance(live, Mapping) else {}, identities)
    elif isinstance(desired, list) and isinstance(live, list) and shape in identities:
        found = _diff_keyed(path, shape, desired, live, identities[shape], ordered, identities)
    return found or [FieldDiff(path, live, desired)]


def _identity_of(items: list[Any], fields: tuple[str, ...]) -> list[tuple[Any, ...]] | None:
    """Each item's identity, or None when some item has none or two share one (then the
    list can only be reported whole)."""
    out: list[tuple[Any, ...]] = []
    for item in items:
        if not isinstance(item, Mapping):
            return None
        values = tuple(item.get(f) for f in fields)
        if any(v is None or isinstance(v, dict | list) for v in values):
            return None
        out.append(values)
    return out if len(set(out)) == len(out) else None


def _diff_keyed(path: str, shape: str, desired: list[Any], live: list[Any], fields: tuple[str, ...],
                ordered: bool, identities: Identities) -> list[FieldDiff]:
    desired_ids = _identity_of(desired, fields)
    live_ids = _identity_of(live, fields)
    if desired_ids is None or live_ids is None:
        return []
    live_by = dict(zip(live_ids, live, strict=True))
    desired_set = set(desired_ids)
    if ordered and [i for i in desired_ids if i in live_by] != [i for i in live_ids if i in desired_set]:
        return []  # a reordering has no item to name: reported whole
    out: list[FieldDiff] = []
    for identity, item in zip(desired_ids, desired, strict=True):
        item_path = f"{path}[{item_label(identity)}]"
        if identity not in live_by:
            out.append(FieldDiff(item_path, None, item))
            continue
        before = live_by[identity]
        if not same(item, before):
            out.extend(_refine(item_path, shape + "[]", item, before, True, identities))
    out.extend(FieldDiff(f"{path}[{item_label(identity)}]", item, None)
               for identity, item in zip(live_ids, live, strict=True) if identity not in desired_set)
    return out
