"""``billGroupingKeys:`` — the bill grouping key picklist: code, name, ``archived`` and
``exclusive`` (openapi-full.json, BillGroupingKeyRequest: ``required: [exclusive, name]``)."""

from __future__ import annotations

from pydantic import StrictBool

from reconciler.kinds.base import Kind
from reconciler.kinds.fields import PICKLIST_FIELDS, Picklist
from reconciler.kinds.spec import Spec


class BillGroupingKey(Picklist):
    """``billGroupingKeys:`` — a bill grouping key; ``exclusive``: used by one entity only."""

    exclusive: StrictBool


KIND = Kind(
    name="billGroupingKey",
    manifest_key="billGroupingKeys",
    api_path="picklists/billgroupingkeys",
    model=BillGroupingKey,
    archivable=True,
    deletable=True,
    request_spec={**PICKLIST_FIELDS, "exclusive": Spec("boolean", required=True)},
)
