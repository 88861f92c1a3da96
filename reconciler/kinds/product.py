"""``products:`` — what a billing team sells: meters, aggregations and plan templates belong
to a product and name it by code."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, StrictStr

from reconciler.kinds.base import Kind
from reconciler.kinds.fields import ENTITY_CODE_SPEC, AccountCode, CustomFieldValue, Name, Strict
from reconciler.kinds.spec import CUSTOM_FIELDS, NAME, Spec


class Product(Strict):
    """``products:`` — a product (openapi-full.json, ProductRequest)."""

    code: AccountCode
    name: Name
    customFields: dict[Annotated[StrictStr, Field(min_length=1)], CustomFieldValue] | None = Field(
        default=None, max_length=100
    )


KIND = Kind(
    name="product",
    manifest_key="products",
    api_path="products",
    model=Product,
    deletable=True,
    page_size=200,
    codes_filter=False,  # GET /products takes ids but no codes
    request_spec={
        "code": Spec("string", required=True, min_length=1, max_length=80, pattern=ENTITY_CODE_SPEC.pattern,
                     pattern_hint=ENTITY_CODE_SPEC.pattern_hint),
        "name": NAME,
        "customFields": CUSTOM_FIELDS,
    },
)
