"""``compoundAggregations:`` — a pricing metric calculated from simple aggregations and
custom fields: ``product: CODE`` or global, and a ``calculation`` (openapi-full.json,
CompoundAggregationRequest and AbstractAggregationRequest).

The calculation is kept as written. The document says it "can reference simple Aggregations
or Custom Fields" but defines no syntax for those references, so references inside it are
not parsed, checked offline or used to order changes: m3ter checks them when the compound
aggregation is created or updated.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, StrictBool, StrictStr

from reconciler.kinds.aggregation import COMMON_SPEC, QuantityPerUnit, Rounding, Unit
from reconciler.kinds.base import Kind, Reference
from reconciler.kinds.fields import AccountCode, CustomFieldValue, Name, PicklistCode, Strict
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
    customFields: dict[Annotated[StrictStr, Field(min_length=1)], CustomFieldValue] | None = Field(
        default=None, max_length=100
    )


# openapi-full.json, CompoundAggregationRequest.
REQUEST_SPEC: dict[str, Spec] = {
    **COMMON_SPEC,
    "productId": UUID,
    "calculation": Spec("string", required=True, min_length=1, max_length=5000),
    "evaluateNullAggregations": BOOL,
}


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
    ),
    request_spec=REQUEST_SPEC,
)
