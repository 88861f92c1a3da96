"""``meters:`` — what collects usage: a meter belongs to a product (``product: CODE``) or is
global, and carries the ``dataFields`` and ``derivedFields`` that usage data fills
(openapi-full.json, MeterRequest, DataField, DerivedField, DataFieldCategory)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, StrictStr

from reconciler.kinds.base import Kind, Reference
from reconciler.kinds.fields import (
    PICKLIST_CODE,
    PICKLIST_CODE_HINT,
    REQUIRED_ENTITY_CODE_SPEC,
    AccountCode,
    CustomFields,
    Name,
    PicklistCode,
    Strict,
)
from reconciler.kinds.spec import CUSTOM_FIELDS, NAME, UUID, Spec

# DataFieldCategory: "Measure. Numeric ... Income. Numeric ... Cost. Numeric"; the others
# (Who, What, Where, Metadata, Other) are strings.
CATEGORIES = ("WHO", "WHERE", "WHAT", "OTHER", "METADATA", "MEASURE", "INCOME", "COST")
NUMERIC_CATEGORIES = frozenset({"MEASURE", "INCOME", "COST"})
Category = Literal["WHO", "WHERE", "WHAT", "OTHER", "METADATA", "MEASURE", "INCOME", "COST"]
Unit = Annotated[StrictStr, Field(min_length=1, max_length=50)]


class DataField(Strict):
    """A raw usage field (DataField): ``code`` keys it inside the meter."""

    category: Category
    code: PicklistCode
    name: Name
    unit: Unit | None = None


class DerivedField(DataField):
    """A field computed from data fields, custom fields or timestamps (DerivedField)."""

    calculation: Annotated[StrictStr, Field(min_length=1, max_length=5000)]


class Meter(Strict):
    """``meters:`` — a meter (MeterRequest). ``dataFields`` (1 to 15) and ``derivedFields``
    (up to 15, ``[]`` for none) are required, as the API requires them on create and update;
    ``product`` names the product by code, absent or null for a global meter."""

    code: AccountCode
    name: Name
    product: AccountCode | None = None
    dataFields: Annotated[list[DataField], Field(min_length=1, max_length=15)]
    derivedFields: Annotated[list[DerivedField], Field(max_length=15)]
    customFields: CustomFields | None = None


_FIELD_SPEC: dict[str, Spec] = {
    "category": Spec("string", required=True, enum=CATEGORIES),
    "code": Spec("string", required=True, min_length=1, max_length=80, pattern=PICKLIST_CODE,
                 pattern_hint=PICKLIST_CODE_HINT),
    "name": NAME,
    "unit": Spec("string", min_length=1, max_length=50),
}
_DERIVED_SPEC: dict[str, Spec] = {
    **_FIELD_SPEC, "calculation": Spec("string", required=True, min_length=1, max_length=5000),
}

# openapi-full.json, MeterRequest.
REQUEST_SPEC: dict[str, Spec] = {
    "code": REQUIRED_ENTITY_CODE_SPEC,
    "name": NAME,
    "productId": UUID,
    "groupId": UUID,  # accepted by the API; not managed by manifests
    "dataFields": Spec("array", required=True, items=Spec("object", fields=_FIELD_SPEC), max_items=15),
    "derivedFields": Spec("array", required=True, items=Spec("object", fields=_DERIVED_SPEC), max_items=15),
    "customFields": CUSTOM_FIELDS,
}


def _at_least_one_data_field(body: dict[str, Any]) -> str | None:
    """MeterRequest.dataFields: ``minItems: 1`` ("At least one required per Meter")."""
    fields = body.get("dataFields")
    if isinstance(fields, list) and not fields:
        return "dataFields: must have at least 1 item (at least one data field per meter)"
    return None


def meter_fields(fields: Any) -> dict[str, dict[str, Any]]:
    """A meter's data and derived fields by code (manifest-shaped ``fields`` of a meter);
    the first of a repeated code wins (the meter's own check reports the repeat)."""
    out: dict[str, dict[str, Any]] = {}
    if not isinstance(fields, dict):
        return out
    for list_name in ("dataFields", "derivedFields"):
        items = fields.get(list_name)
        if not isinstance(items, list):
            continue
        for item in items:
            if isinstance(item, dict) and isinstance(item.get("code"), str):
                out.setdefault(item["code"], item)
    return out


def _field_codes_unique_and_units(manifests: Any, state: Any) -> None:
    """Within one meter, every data and derived field has its own code: aggregations name
    their ``targetField`` and ``segmentedFields`` by that code ("`Code` of the target
    `dataField` or `derivedField` on the Meter", AggregationRequest.targetField), so a code
    used twice, even once in each list, is an error.

    A numeric field (MEASURE, INCOME, COST) without ``unit`` is a warning: DataField.unit
    says "Required only for numeric field categories".
    """
    for obj in manifests.of_kind("meter").values():
        seen: dict[str, str] = {}
        for list_name in ("dataFields", "derivedFields"):
            items = obj.fields.get(list_name)
            if not isinstance(items, list):
                continue
            for index, item in enumerate(items):
                if not isinstance(item, dict):
                    continue
                code = item.get("code")
                if isinstance(code, str):
                    if code in seen:
                        state.at_field(
                            "error",
                            f"{state.describe(obj)}: {list_name}[{index}].code: {code!r} is already the code of "
                            f"a field in {seen[code]}; aggregations name meter fields by code, so each must be "
                            "unique across dataFields and derivedFields",
                            obj,
                            (list_name, index, "code"),
                        )
                    else:
                        seen[code] = list_name
                if item.get("category") in NUMERIC_CATEGORIES and "unit" not in item:
                    state.at_field(
                        "warning",
                        f"{state.describe(obj)}: {list_name}[{index}] ({item.get('category')}): give a unit; "
                        "m3ter requires one for numeric field categories (DataField.unit)",
                        obj,
                        (list_name, index),
                    )


KIND = Kind(
    name="meter",
    manifest_key="meters",
    api_path="meters",
    model=Meter,
    deletable=True,
    page_size=100,  # GET /meters: pageSize maximum 100, with a codes filter
    list_filters={"productId": "productId"},
    references=(
        Reference("product", "product", api_path="productId", by_id=True,
                  hint="move the meter to another product (or product: null for a global meter), or remove it too"),
    ),
    list_identity={"dataFields": ("code",), "derivedFields": ("code",)},
    request_spec=REQUEST_SPEC,
    body_rules=(_at_least_one_data_field,),
    checks=(_field_codes_unique_and_units,),
)
