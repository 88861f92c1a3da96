"""``compoundAggregations:`` — a pricing metric calculated from simple aggregations and
custom fields: ``product: CODE`` or global, and a ``calculation`` (openapi-full.json,
CompoundAggregationRequest and AbstractAggregationRequest).

openapi-full.json says the calculation "can reference simple Aggregations or Custom Fields"
without a syntax; m3ter's documentation gives it: "You can reference the resultant values of
simple Aggregations in a Compound Aggregation calculation using a simple Aggregation's Code.
The general format is: aggregation.<aggregationCode>", and the calculation "can reference all
simple Aggregations - any Product-specific and any Global simple Aggregations"
(https://www.m3ter.com/docs/guides/usage-data-aggregations/calculations-syntax-and-supported-functions-operators;
examples such as ``aggregation.watch_seconds + ...`` at
https://m3ter.com/docs/guides/usage-data-aggregations/compound-aggregations-examples).

So ``calculation`` is a ``Reference`` to aggregations, read through ``extract``
(:func:`aggregation_codes`): every aggregation it names must be in the manifests or live (a
located error at ``calculation``; offline a warning that it must exist live), a compound
aggregation is created after the aggregations it names, and an aggregation is not deleted
while a compound aggregation it is named by is kept (the planner refuses; the store, and so
the emulator, refuses too, as it does for a meter an aggregation uses). Any product's or a
global aggregation may be named, so nothing is checked about products. Custom field
references in the calculation are not parsed.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import Annotated, Any

from pydantic import Field, StrictBool, StrictStr

from reconciler.kinds.aggregation import COMMON_SPEC, QuantityPerUnit, Rounding, Unit
from reconciler.kinds.base import Kind, Reference
from reconciler.kinds.fields import AccountCode, CustomFields, Name, PicklistCode, Strict
from reconciler.kinds.spec import BOOL, UUID, Spec


class CompoundAggregation(Strict):
    """``compoundAggregations:`` — a compound aggregation (CompoundAggregationRequest);
    ``code`` is required here because it is the identity."""

    code: PicklistCode
    name: Name
    product: AccountCode | None = None
    calculation: Annotated[StrictStr, Field(min_length=1, max_length=5000)]
    unit: Unit
    rounding: Rounding
    quantityPerUnit: QuantityPerUnit
    evaluateNullAggregations: StrictBool | None = None
    accountingProduct: AccountCode | None = None
    customFields: CustomFields | None = None


# openapi-full.json, CompoundAggregationRequest.
REQUEST_SPEC: dict[str, Spec] = {
    **COMMON_SPEC,
    "productId": UUID,
    "calculation": Spec("string", required=True, min_length=1, max_length=5000),
    "evaluateNullAggregations": BOOL,
}


# ``aggregation.<aggregationCode>``: the code is a picklist-style code (PICKLIST_CODE in
# fields.py); ``aggregation`` must not be the tail of a longer name (``myaggregation.x``, ``a.aggregation.x``).
_AGGREGATION_REFERENCE_SOURCE = r"(?<![\p{L}\p{N}_$.])aggregation\.([\p{L}_$][\p{L}_$0-9]*)"


@functools.cache
def _aggregation_reference() -> Any:
    """Compiled on first use: the ``regex`` package costs ~8 ms to import."""
    import regex

    return regex.compile(_AGGREGATION_REFERENCE_SOURCE)


def aggregation_codes(calculation: Any) -> Iterator[str]:
    """The codes of the simple aggregations a calculation names (``aggregation.<code>``), in
    order of appearance; nothing for a value that is not a string."""
    if isinstance(calculation, str):
        for match in _aggregation_reference().finditer(calculation):
            yield match.group(1)


KIND = Kind(
    name="compoundAggregation",
    manifest_key="compoundAggregations",
    api_path="compoundaggregations",
    model=CompoundAggregation,
    deletable=True,
    page_size=100,  # GET /compoundaggregations: pageSize maximum 100, with a codes filter
    list_filters={"productId": "productId"},
    references=(
        Reference("product", "product", api_path="productId", by_id=True,
                  hint="move it to another product (or product: null for a global one), or remove it too"),
        Reference("accountingProduct", "product", api_path="accountingProductId", by_id=True,
                  blocks=frozenset(), hint="give it another accountingProduct, or remove it"),
        Reference("calculation", "aggregation", extract=aggregation_codes,
                  hint="stop naming it as aggregation.<code> in the calculation, or remove the compound "
                       "aggregation too"),
    ),
    request_spec=REQUEST_SPEC,
)
