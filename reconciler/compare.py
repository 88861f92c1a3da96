"""Semantic comparison of desired and live values: noise in a diff is a bug.

Rules (DESIGN §3): numbers compare by value with a tolerance for binary floating point
(``1`` equals ``1.0``; a multiplier read back as ``1.2700000000000002`` equals ``1.27``);
booleans are not numbers; an explicit ``None`` in a manifest means "must be empty", which an
absent, empty-string, empty-list or empty-map live value satisfies; lists compare in order
only where order carries meaning (``creditApplicationOrder``), otherwise as multisets
(``currencyConversions``); record-like maps (``address``) are managed field by field, while
maps of names (``customFields``) are managed whole.

Hand-written rather than deepdiff because plan runs over 100k accounts must stay close to
the bare YAML parse time: the equal case (by far the most common) costs one recursive walk.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

_REL_TOL = 1e-9
_ABS_TOL = 1e-12


@dataclass(frozen=True, slots=True)
class FieldDiff:
    path: str
    before: Any
    after: Any


def is_empty(value: Any) -> bool:
    return value is None or value == "" or value == [] or value == {}


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def same(desired: Any, live: Any, *, ordered: bool = True) -> bool:
    """True when ``live`` already satisfies ``desired`` (a whole value, not partial)."""
    # Fast paths on the exact built-in types manifests and JSON produce (the equal case of a
    # plan over 100k accounts is millions of these); anything else takes the general rules.
    t = type(desired)
    if t is str or t is bool:
        return type(live) is t and desired == live
    if t is int or t is float:
        tl = type(live)
        if tl is int or tl is float:
            return desired == live or math.isclose(desired, live, rel_tol=_REL_TOL, abs_tol=_ABS_TOL)
    elif t is dict and type(live) is dict:
        for k, v in live.items():
            if v is not None and k not in desired:
                return False
        get = live.get
        for k, v in desired.items():  # noqa: SIM110 - a plain loop is faster than all(genexpr)
            if not same(v, get(k)):
                return False
        return True
    return _same(desired, live, ordered)


def _same(desired: Any, live: Any, ordered: bool) -> bool:
    if desired is None:
        return is_empty(live)
    if _is_number(desired):
        return _is_number(live) and (
            desired == live or math.isclose(desired, live, rel_tol=_REL_TOL, abs_tol=_ABS_TOL)
        )
    if isinstance(desired, bool | str):
        return type(live) is type(desired) and desired == live
    if isinstance(desired, Mapping):
        if not isinstance(live, Mapping):
            return not desired and is_empty(live)
        if any(k not in desired and v is not None for k, v in live.items()):
            return False
        return all(same(v, live.get(k)) for k, v in desired.items())
    if isinstance(desired, list):
        if not isinstance(live, list):
            return not desired and is_empty(live)
        if len(desired) != len(live):
            return False
        if ordered:
            return all(same(d, v) for d, v in zip(desired, live, strict=True))
        remaining = list(live)
        for d in desired:
            for i, v in enumerate(remaining):
                if same(d, v):
                    del remaining[i]
                    break
            else:
                return False
        return True
    return bool(desired == live)


def diff_field(
    name: str,
    desired: Any,
    live: Any,
    *,
    partial: bool = False,
    ordered: bool = True,
) -> list[FieldDiff]:
    """Field-level differences for one top-level field.

    ``partial`` makes a mapping managed key by key (absent keys unmanaged), for records such
    as ``address``; otherwise a mapping is compared whole and reported key by key.
    """
    t = type(desired)
    live_map: Mapping[str, Any] | None = None
    if t is dict and type(live) is dict:
        live_map = live
    elif isinstance(desired, Mapping) and (isinstance(live, Mapping) or is_empty(live)):
        live_map = live if isinstance(live, Mapping) else {}
    if live_map is not None:
        get = live_map.get
        out = [FieldDiff(f"{name}.{key}", get(key), value)
               for key, value in desired.items() if not same(value, get(key))]
        if not partial:
            out += [FieldDiff(f"{name}.{key}", value, None) for key, value in live_map.items()
                    if value is not None and key not in desired]
        return out
    if same(desired, live, ordered=ordered):
        return []
    return [FieldDiff(name, live, desired)]
