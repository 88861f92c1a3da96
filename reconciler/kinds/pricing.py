"""``pricings:`` — the price of an aggregation (or compound aggregation) on a plan or plan
template from a start date, in pricing bands. A pricing has no code of its own in most
organizations: it is known by what it prices, where and from when, and manifests write it
nested under its plan or plan template (``plans: - code: pro ... pricings: [...]``).

Sources: openapi-full.json, PricingRequest and PricingBand, and the POST/PUT /pricings
descriptions ("Exactly one of planId or planTemplateId ... Exactly one of aggregationId or
compoundAggregationId"); the ``overagePricingBands`` constraints are quoted at the rule.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, StrictBool, StrictStr

from reconciler.kinds.base import FieldWarning, Kind, Nesting, Reference
from reconciler.kinds.fields import ENTITY_CODE_SPEC, AccountCode, Number, PicklistCode, Strict, UtcDateTime
from reconciler.kinds.spec import BOOL, STR, Spec

PricingType = Literal["DEBIT", "PRODUCT_CREDIT", "GLOBAL_CREDIT"]
_BAND = Spec(
    "object",
    fields={
        "id": STR,
        "lowerLimit": Spec("number", required=True, minimum=0),
        "fixedPrice": Spec("number", required=True),
        "unitPrice": Spec("number", required=True),
        "creditTypeId": STR,
    },
)


class PricingBand(Strict):
    """One band: from ``lowerLimit`` units up, a ``fixedPrice`` plus ``unitPrice`` per unit.
    Bands are known by their ``lowerLimit`` (a diff names ``pricingBands[100].unitPrice``)."""

    lowerLimit: Annotated[Number, Field(ge=0)]
    fixedPrice: Number
    unitPrice: Number


class Pricing(Strict):
    """``pricings:`` — written under a plan or plan template (which it then names itself), or
    at top level with ``plan:`` or ``planTemplate:``."""

    code: AccountCode | None = None
    plan: AccountCode | None = None
    planTemplate: AccountCode | None = None
    aggregation: PicklistCode | None = None
    compoundAggregation: PicklistCode | None = None
    startDate: UtcDateTime
    endDate: UtcDateTime | None = None
    description: Annotated[StrictStr, Field(max_length=200)] | None = None
    pricingBands: Annotated[list[PricingBand], Field(min_length=1)]
    overagePricingBands: list[PricingBand] | None = None
    cumulative: StrictBool | None = None
    tiersSpanPlan: StrictBool | None = None
    type: PricingType | None = None
    segment: dict[Annotated[StrictStr, Field(min_length=1)], StrictStr] | None = None
    minimumSpend: Annotated[Number, Field(ge=0)] | None = None
    minimumSpendDescription: Annotated[StrictStr, Field(max_length=200)] | None = None
    minimumSpendBillInAdvance: StrictBool | None = None


def _checks(manifests: Any, state: Any) -> None:
    """Rules the API states in words (the model validates each field alone; exactly one of
    plan / plan template and of aggregation / compound aggregation, POST /pricings, is the
    registry's ``a|b`` identity parts, checked for every kind by the loader and the store)."""
    for obj in manifests.of_kind("pricing").values():
        f = obj.fields
        start, end = f.get("startDate"), f.get("endDate")
        if isinstance(start, str) and isinstance(end, str) and end <= start:
            state.at_field("error", f"{state.describe(obj)}: endDate: must be after startDate ({start})", obj,
                           ("endDate",))
        bands = f.get("pricingBands")
        if isinstance(bands, list) and len(bands) > 1:
            seen: set[Any] = set()
            for i, band in enumerate(bands):
                limit = band.get("lowerLimit") if isinstance(band, dict) else None
                if limit is None:
                    continue
                if limit in seen:
                    state.at_field("error", f"{state.describe(obj)}: pricingBands[{i}]: lowerLimit {limit} is "
                                   "given twice; each band starts at its own lower limit", obj, ("pricingBands", i))
                seen.add(limit)
        if f.get("overagePricingBands"):
            # PricingRequest.overagePricingBands: "Can only be used for a Tiered pricing structure. If
            # cumulative is FALSE and you defined overagePricingBands, then you'll receive an error. If
            # tiersSpanPlan is set to TRUE ..., then cannot be used."
            if f.get("cumulative") is not True:
                state.at_field("error", f"{state.describe(obj)}: overagePricingBands: only for tiered pricing "
                               "(cumulative: true)", obj, ("overagePricingBands",))
            if f.get("tiersSpanPlan") is True:
                state.at_field("error", f"{state.describe(obj)}: overagePricingBands: cannot be used with "
                               "tiersSpanPlan: true", obj, ("overagePricingBands",))


_IN_EFFECT = (
    "pricing that is in effect prices usage on bills that are not yet locked: those bills are "
    "recalculated with the new pricing"
)

KIND = Kind(
    name="pricing",
    manifest_key="pricings",
    api_path="pricings",
    model=Pricing,
    deletable=True,
    codes_filter=False,  # GET /pricings filters by date, plan, plan template, aggregation and ids
    list_filters={"planId": "planId", "planTemplateId": "planTemplateId", "aggregationId": "aggregationId"},
    identity=("plan|planTemplate", "aggregation|compoundAggregation", "startDate"),
    code_first=True,  # segmented pricings share all three: give them codes
    nested_in=(
        Nesting(host="plan", field="pricings", reference="plan"),
        Nesting(host="planTemplate", field="pricings", reference="planTemplate"),
    ),
    references=(
        Reference("plan", "plan", api_path="planId", by_id=True, hint="move the pricing to another plan or remove it"),
        Reference("planTemplate", "planTemplate", api_path="planTemplateId", by_id=True,
                  hint="move the pricing to another plan template or remove it"),
        Reference("aggregation", "aggregation", api_path="aggregationId", by_id=True,
                  hint="price another aggregation or remove the pricing"),
        Reference("compoundAggregation", "compoundAggregation", api_path="compoundAggregationId", by_id=True,
                  hint="price another compound aggregation or remove the pricing"),
    ),
    list_identity={"pricingBands": ("lowerLimit",), "overagePricingBands": ("lowerLimit",)},
    change_warnings={
        name: FieldWarning(f"changing {name}: {_IN_EFFECT}")
        for name in ("pricingBands", "overagePricingBands", "cumulative", "tiersSpanPlan", "minimumSpend", "type",
                     "startDate", "endDate")
    },
    delete_needs_flag=True,
    delete_warning=f"deleting a pricing: {_IN_EFFECT}; usage in its period is then not priced by it",
    request_spec={
        "code": ENTITY_CODE_SPEC,
        "planId": STR,
        "planTemplateId": STR,
        "aggregationId": Spec("string", max_length=36),
        "compoundAggregationId": Spec("string", max_length=36),
        "startDate": Spec("string", required=True, fmt="date-time"),
        "endDate": Spec("string", fmt="date-time"),
        "description": Spec("string", max_length=200),
        "accountingProductId": Spec("string", min_length=36, max_length=36),
        "pricingBands": Spec("array", required=True, items=_BAND),
        "overagePricingBands": Spec("array", items=_BAND),
        "cumulative": BOOL,
        "tiersSpanPlan": BOOL,
        "type": Spec("string", enum=("DEBIT", "PRODUCT_CREDIT", "GLOBAL_CREDIT")),
        "segment": Spec("map", values=STR),
        "minimumSpend": Spec("number", minimum=0),
        "minimumSpendDescription": Spec("string", max_length=200),
        "minimumSpendBillInAdvance": BOOL,
    },
    checks=(_checks,),
)
