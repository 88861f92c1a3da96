"""``customFields:`` — organization-level custom field defaults per entity type (a singleton)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, StrictStr, field_validator

from reconciler.kinds.base import Kind
from reconciler.kinds.fields import CUSTOM_FIELD_ENTITY_TYPES, ORG_LEVEL_CUSTOM_FIELD_LIMIT, CustomFieldValue, Strict
from reconciler.kinds.spec import CF_VALUE, Spec

CustomFieldMap = dict[Annotated[StrictStr, Field(min_length=1)], CustomFieldValue]


class CustomFields(Strict):
    """``customFields:`` — organization-level custom field defaults per entity type."""

    organization: CustomFieldMap | None = None
    account: CustomFieldMap | None = None
    accountPlan: CustomFieldMap | None = None
    meter: CustomFieldMap | None = None
    product: CustomFieldMap | None = None
    plan: CustomFieldMap | None = None
    planTemplate: CustomFieldMap | None = None
    aggregation: CustomFieldMap | None = None
    compoundAggregation: CustomFieldMap | None = None
    contract: CustomFieldMap | None = None

    @field_validator("*")
    @classmethod
    def _at_most_ten(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is not None and len(value) > ORG_LEVEL_CUSTOM_FIELD_LIMIT:
            raise ValueError(
                f"has {len(value)} custom fields; m3ter allows at most "
                f"{ORG_LEVEL_CUSTOM_FIELD_LIMIT} per entity type at organization level"
            )
        return value


KIND = Kind(
    name="customFields",
    manifest_key="customFields",
    api_path="customfields",
    model=CustomFields,
    singleton=True,
    title="custom fields",
    # openapi-full.json, CustomFieldsRequest: a map per entity type, at most 25 fields each.
    request_spec={name: Spec("map", values=CF_VALUE, max_items=25) for name in CUSTOM_FIELD_ENTITY_TYPES},
)
