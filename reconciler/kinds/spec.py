"""A request field's limits as the m3ter API states them: what the store (and so the local
backend and the emulator) refuses, per kind. Each kind's module holds its request spec next
to its manifest model; the shapes shared by several kinds are here.

Java patterns in the OpenAPI document are translated where they are compiled
(``reconciler.kinds.fields``): ``\\p{L}`` via ``regex``, ``\\p{Cntrl}`` and ``\\s`` spelled out.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

INT32 = (-(2**31), 2**31 - 1)
INT64 = (-(2**63), 2**63 - 1)


@dataclass(frozen=True, slots=True)
class Spec:
    """One field's limits. ``type``: string, integer, number, boolean, scalar (string or
    number), array, object, map."""

    type: str
    required: bool = False
    min_length: int | None = None
    max_length: int | None = None
    pattern: Any = None  # compiled re / regex pattern
    pattern_hint: str = ""
    enum: tuple[Any, ...] | None = None
    minimum: float | None = None
    exclusive_minimum: bool = False
    maximum: float | None = None
    fmt: str | None = None  # date | date-time | email | timezone | bill-interval | uuid
    items: Spec | None = None
    unique_items: bool = False
    max_items: int | None = None
    fields: Mapping[str, Spec] | None = None  # object
    values: Spec | None = None  # map


STR = Spec("string")
BOOL = Spec("boolean")
CF_VALUE = Spec("scalar")  # string | integer | number
NAME = Spec("string", required=True, min_length=1, max_length=200)
# BillCreditType items; the description lists the four allowed orders ("PREPAYMENT","BALANCE" /
# "BALANCE","PREPAYMENT" / one alone), so no repeats and at most two.
CREDIT_ORDER = Spec("array", items=Spec("string", enum=("PREPAYMENT", "BALANCE")), unique_items=True, max_items=2)
STATEMENT_MODE = Spec("string", enum=("NONE", "JSON", "JSON_AND_CSV"))
POSITIVE_INT32 = Spec("integer", minimum=0, exclusive_minimum=True, maximum=INT32[1])
CUSTOM_FIELDS = Spec("map", values=CF_VALUE, max_items=100)
# A UUID field naming another object (``productId``, ``meterId``...): minLength/maxLength 36.
UUID = Spec("string", min_length=36, max_length=36)
