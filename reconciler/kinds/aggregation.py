"""``aggregations:`` — how a meter's usage becomes a pricing metric: an aggregation names its
meter by code (``meter: CODE``) and a ``targetField`` of that meter (openapi-full.json,
AggregationRequest and AbstractAggregationRequest)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, StrictFloat, StrictStr

from reconciler.kinds.base import Kind, Reference
from reconciler.kinds.fields import (
    PICKLIST_CODE_SPEC,
    AccountCode,
    CustomFields,
    Name,
    PicklistCode,
    Strict,
)
from reconciler.kinds.meter import NUMERIC_CATEGORIES, meter_fields
from reconciler.kinds.spec import CUSTOM_FIELDS, NAME, UUID, Spec

FUNCTIONS = ("SUM", "MIN", "MAX", "COUNT", "LATEST", "MEAN", "UNIQUE", "CUSTOM_SQL")
ROUNDINGS = ("UP", "DOWN", "NEAREST", "NONE")
Rounding = Literal["UP", "DOWN", "NEAREST", "NONE"]
Unit = Annotated[StrictStr, Field(min_length=1, max_length=50)]
QuantityPerUnit = Annotated[StrictFloat, Field(gt=0)]
# The categories each function "Can be applied to" (AggregationRequest.aggregation):
# SUM, MIN, MAX, COUNT, LATEST and MEAN to a Measure, Income or Cost targetField, UNIQUE to a
# Metadata one. CUSTOM_SQL reads the measurements table through ``customSql``: no rule.
APPLIES_TO: dict[str, frozenset[str]] = {
    **{f: NUMERIC_CATEGORIES for f in ("SUM", "MIN", "MAX", "COUNT", "LATEST", "MEAN")},
    "UNIQUE": frozenset({"METADATA"}),
}
# DataFieldCategory: Who, What, Where, Metadata and Other are strings; AggregationRequest.
# segmentedFields: "String dataFields ... Any string derivedFields ... can also be segmented."
STRING_CATEGORIES = frozenset({"WHO", "WHAT", "WHERE", "METADATA", "OTHER"})


class Aggregation(Strict):
    """``aggregations:`` — an aggregation (AggregationRequest). ``code`` is the API's
    optional picklist-style code, required here because it is the aggregation's identity;
    ``accountingProduct`` names AbstractAggregationRequest.accountingProductId's product by
    code."""

    code: PicklistCode
    name: Name
    meter: AccountCode
    targetField: Annotated[StrictStr, Field(min_length=1, max_length=80)]
    aggregation: Literal["SUM", "MIN", "MAX", "COUNT", "LATEST", "MEAN", "UNIQUE", "CUSTOM_SQL"]
    unit: Unit
    rounding: Rounding
    quantityPerUnit: QuantityPerUnit
    segmentedFields: Annotated[list[StrictStr], Field(max_length=5)] | None = None
    segments: Annotated[list[dict[StrictStr, StrictStr]], Field(max_length=1000)] | None = None
    defaultValue: Annotated[StrictFloat, Field(ge=0)] | None = None
    customSql: Annotated[StrictStr, Field(max_length=2048)] | None = None
    accountingProduct: AccountCode | None = None
    customFields: CustomFields | None = None


# AbstractAggregationRequest: what simple and compound aggregations share.
COMMON_SPEC: dict[str, Spec] = {
    "code": PICKLIST_CODE_SPEC,
    "name": NAME,
    "unit": Spec("string", required=True, min_length=1, max_length=50),
    "rounding": Spec("string", required=True, enum=ROUNDINGS),
    "quantityPerUnit": Spec("number", required=True, minimum=0, exclusive_minimum=True),
    "accountingProductId": UUID,
    "customFields": CUSTOM_FIELDS,
}

# openapi-full.json, AggregationRequest.
REQUEST_SPEC: dict[str, Spec] = {
    **COMMON_SPEC,
    "meterId": Spec("string", required=True, min_length=36, max_length=36),
    "targetField": Spec("string", required=True, min_length=1, max_length=80),
    "aggregation": Spec("string", required=True, enum=FUNCTIONS),
    "segmentedFields": Spec("array", items=Spec("string"), max_items=5),
    "segments": Spec("array", items=Spec("map", values=Spec("string")), max_items=1000),
    "defaultValue": Spec("number", minimum=0),
    "customSql": Spec("string", max_length=2048),
}


def _segments_read_segmented_fields(body: dict[str, Any]) -> str | None:
    """AggregationRequest.segments: "the values that are to be used as the segments, read
    from the fields in the meter pointed at by ``segmentedFields``": a segment may name only
    fields listed in ``segmentedFields``."""
    problem = _segment_problem(body.get("segmentedFields"), body.get("segments"))
    return f"segments: {problem}" if problem else None


def _segment_problem(segmented: Any, segments: Any) -> str | None:
    if not isinstance(segments, list) or not segments:
        return None
    allowed = {f for f in segmented if isinstance(f, str)} if isinstance(segmented, list) else set()
    for index, segment in enumerate(segments):
        if not isinstance(segment, dict):
            continue
        for name in segment:
            if name not in allowed:
                listed = ", ".join(sorted(allowed)) or "none"
                return (f"[{index}] names field {name!r}, which segmentedFields does not list "
                        f"(segmentedFields: {listed})")
    return None


def _aggregation_rules(manifests: Any, state: Any) -> None:
    """An aggregation's rules against its meter, when the meter is in the manifests (a meter
    known only live is checked by m3ter). Sources, openapi-full.json:

    - AggregationRequest.targetField: "`Code` of the target `dataField` or `derivedField` on
      the Meter" — so it must be one of that meter's field codes (error).
    - AggregationRequest.aggregation (and the Aggregation enum): SUM, MIN, MAX, COUNT, LATEST
      and MEAN "Can be applied to a Measure, Income, or Cost targetField"; UNIQUE "Can be
      applied to a Metadata targetField" (error otherwise).
    - AggregationRequest.segmentedFields: "Enter the Codes of the fields in the target
      Meter ... String dataFields ... Any string derivedFields ... can also be segmented"
      (error for a code that is not a field of the meter, or a numeric field). A METADATA
      field is a warning: DataFieldCategory calls Metadata "for high-cardinality fields that
      you don't intend to segment".
    - AggregationRequest.segments: values "read from the fields in the meter pointed at by
      segmentedFields" (error for a segment naming another field; checked without the meter).
    - AggregationRequest.aggregation, CUSTOM_SQL: "If you select this Aggregation type, use
      the customSQL request parameter to enter an SQL query" (error when it is missing).
    """
    meters = manifests.of_kind("meter")
    for obj in manifests.of_kind("aggregation").values():
        f = obj.fields
        where = state.describe(obj)
        function = f.get("aggregation")
        problem = _segment_problem(f.get("segmentedFields"), f.get("segments"))
        if problem:
            state.at_field("error", f"{where}: segments{problem}", obj, ("segments",))
        if function == "CUSTOM_SQL" and not f.get("customSql"):
            state.at_field("error", f"{where}: aggregation CUSTOM_SQL needs customSql, the SQL query to run",
                           obj, ("aggregation",))
        meter_code = f.get("meter")
        meter = meters.get(meter_code) if isinstance(meter_code, str) else None
        if meter is None:
            continue
        fields = meter_fields(meter.fields)
        known = ", ".join(sorted(fields)) or "none"
        target = f.get("targetField")
        if isinstance(target, str):
            field = fields.get(target)
            if field is None:
                state.at_field(
                    "error",
                    f"{where}: targetField: meter {meter_code!r} has no data or derived field {target!r} "
                    f"(its fields: {known})",
                    obj, ("targetField",),
                )
            elif isinstance(function, str) and function in APPLIES_TO:
                category = field.get("category")
                if isinstance(category, str) and category not in APPLIES_TO[function]:
                    suits = ", ".join(sorted(APPLIES_TO[function]))
                    state.at_field(
                        "error",
                        f"{where}: aggregation {function} cannot be applied to targetField {target!r}, a "
                        f"{category} field; {function} applies to {suits} fields (m3ter API, "
                        "AggregationRequest.aggregation)",
                        obj, ("aggregation",),
                    )
        segmented = f.get("segmentedFields")
        if isinstance(segmented, list):
            for index, name in enumerate(segmented):
                if not isinstance(name, str):
                    continue
                field = fields.get(name)
                if field is None:
                    state.at_field(
                        "error",
                        f"{where}: segmentedFields[{index}]: meter {meter_code!r} has no data or derived field "
                        f"{name!r} (its fields: {known})",
                        obj, ("segmentedFields", index),
                    )
                elif field.get("category") not in STRING_CATEGORIES:
                    state.at_field(
                        "error",
                        f"{where}: segmentedFields[{index}]: {name!r} is a {field.get('category')} field; only "
                        "string fields (WHO, WHAT, WHERE, METADATA, OTHER) can be segmented",
                        obj, ("segmentedFields", index),
                    )
                elif field.get("category") == "METADATA":
                    state.at_field(
                        "warning",
                        f"{where}: segmentedFields[{index}]: {name!r} is a METADATA field, which m3ter "
                        "describes as high-cardinality and not meant for segmenting; a WHO, WHAT, WHERE or "
                        "OTHER field suits segments better",
                        obj, ("segmentedFields", index),
                    )


KIND = Kind(
    name="aggregation",
    manifest_key="aggregations",
    api_path="aggregations",
    model=Aggregation,
    deletable=True,
    page_size=100,  # GET /aggregations: pageSize maximum 100, with a codes filter
    # GET /aggregations?productId= names the meter's product, which an aggregation does not
    # hold itself: no list_filters.
    references=(
        Reference("meter", "meter", api_path="meterId", by_id=True,
                  hint="point the aggregation at another meter, or remove it too"),
        # The document says nothing of m3ter refusing to delete an accounting product, so
        # that delete is ordered after the aggregation lets go but not refused.
        Reference("accountingProduct", "product", api_path="accountingProductId", by_id=True,
                  blocks=frozenset(), hint="give it another accountingProduct, or remove it"),
    ),
    request_spec=REQUEST_SPEC,
    body_rules=(_segments_read_segmented_fields,),
    checks=(_aggregation_rules,),
)
