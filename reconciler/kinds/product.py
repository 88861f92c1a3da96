"""``products:`` — what a billing team sells: meters, aggregations and plan templates belong
to a product and name it by code."""

from __future__ import annotations

from reconciler.kinds.base import Kind
from reconciler.kinds.fields import (
    REQUIRED_ENTITY_CODE_SPEC,
    AccountCode,
    CustomFields,
    Name,
    Strict,
)
from reconciler.kinds.spec import CUSTOM_FIELDS, NAME


class Product(Strict):
    """``products:`` — a product (openapi-full.json, ProductRequest)."""

    code: AccountCode
    name: Name
    customFields: CustomFields | None = None


KIND = Kind(
    name="product",
    manifest_key="products",
    api_path="products",
    model=Product,
    deletable=True,
    page_size=200,
    codes_filter=False,  # GET /products takes ids but no codes
    request_spec={
        "code": REQUIRED_ENTITY_CODE_SPEC,
        "name": NAME,
        "customFields": CUSTOM_FIELDS,
    },
)
