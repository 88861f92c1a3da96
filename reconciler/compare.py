"""Semantic comparison of desired and live values: noise in a diff is a bug.

Rules (DESIGN §3): numbers compare by value and exactly (:func:`numbers_equal`): two numbers
are equal when they are the same number (``1`` equals ``1.0``, ``1e3`` equals ``1000``), or,
when either is not an integer, when they are within 4 units in the last place as IEEE doubles
(a multiplier read back as ``1.2700000000000002`` equals ``1.27``), because that is the noise
binary floating point adds on a round trip and nothing a person typed can be that close.
Integers, including integral floats such as ``1e9`` or ``4e9``, never get a tolerance: a config
tool that cannot see ``1000000000 -> 1000000001`` is unsafe. No relative tolerance either:
``0.1 -> 0.10000000001`` and ``1e-12 -> 2e-12`` are changes. NaN equals nothing; an infinity
equals only itself; integers beyond 2**53 are compared with floats exactly, never through a
rounding float conversion.

Strings compare exactly; booleans are not numbers; an explicit ``None`` in a manifest means
"must be empty", which an absent, empty-string, empty-list or empty-map live value satisfies;
lists compare in order only where order carries meaning (``creditApplicationOrder``),
otherwise as multisets (``currencyConversions``); record-like maps (``address``) are managed
field by field, while maps of names (``customFields``) are managed whole.

Hand-written rather than deepdiff because plan runs over 100k accounts must stay close to
the bare YAML parse time: the equal case (by far the most common) costs one recursive walk.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Mapping
from typing import Any, NamedTuple

#: Non-integers this many units in the last place apart (or fewer) are the same number.
MAX_ULPS = 4
_F64 = struct.Struct("<d")
_I64 = struct.Struct("<q")
_MAGNITUDE = (1 << 63) - 1  # every bit of a double but the sign


class FieldDiff(NamedTuple):
    """One difference a plan shows: at ``path`` (``reconciler.nested_diff`` names paths),
    the live value ``before`` and the desired one ``after`` (None: absent).

    A named tuple rather than a frozen dataclass: as immutable and hashable, and equal to
    another FieldDiff exactly when its three values are, but made in half the time (a
    frozen dataclass's ``__init__`` goes through ``object.__setattr__``), and a fresh plan of
    100k accounts makes over a million of them."""

    path: str
    before: Any
    after: Any


#: ``MAKE_DIFF(FieldDiff, (path, before, after))`` is ``FieldDiff(path, before, after)`` without
#: the named tuple's Python-level ``__new__`` (half the time again), for the hot loops that
#: make a create's diff (``plan.diff_body``, ``nested_diff.created_into``).
MAKE_DIFF = tuple.__new__


def is_empty(value: Any) -> bool:
    return value is None or value == "" or value == [] or value == {}


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _ordered_bits(x: float) -> int:
    """The double ``x`` as an integer whose order is the order of the doubles, with adjacent
    doubles one apart: the bit pattern for non-negative values, its negated magnitude for
    negative ones (so ``-0.0`` and ``0.0`` both map to 0 and the scale crosses zero evenly)."""
    (bits,) = _I64.unpack(_F64.pack(x))
    return bits if bits >= 0 else -(bits & _MAGNITUDE)


def ulp_distance(a: float, b: float) -> int:
    """How many steps from one representable double to the next separate finite ``a`` and
    ``b`` (0 when they are the same number; ``0.0`` and ``-0.0`` are the same)."""
    return abs(_ordered_bits(a) - _ordered_bits(b))


def numbers_equal(a: int | float, b: int | float) -> bool:
    """The comparison rule for two numbers (neither a bool), see the module docstring.

    Python compares an int with a float exactly (no rounding of the int), so ``a == b`` is
    "the same number" even beyond 2**53; only when that fails is the ULP rule considered.
    """
    if a == b:
        return True
    return _near(a, b)


def _near(a: int | float, b: int | float) -> bool:
    """Within ``MAX_ULPS`` when either is not an integer; called only when ``a != b``."""
    # A float here must be finite (NaN and infinities equal only what ``==`` accepted), and
    # the pair must hold a non-integer: two integral values were already compared exactly.
    if isinstance(a, int):
        if isinstance(b, int) or not math.isfinite(b) or b.is_integer():
            return False  # two ints first: the common unequal case, decided at once
    elif isinstance(b, int):
        if not math.isfinite(a) or a.is_integer():
            return False
    elif not (math.isfinite(a) and math.isfinite(b)) or (a.is_integer() and b.is_integer()):
        return False
    try:
        # An int beside a non-integral float: the float is below 2**52 in magnitude, so an int
        # that converts inexactly (beyond 2**53) is far more than 4 ULPs away however it rounds.
        fa, fb = float(a), float(b)
    except OverflowError:  # an int beyond the largest double is no near neighbour of a float
        return False
    return abs(_ordered_bits(fa) - _ordered_bits(fb)) <= MAX_ULPS


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
            return desired == live or _near(desired, live)
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
        return _is_number(live) and (desired == live or _near(desired, live))
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
