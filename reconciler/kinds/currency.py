"""``currencies:`` — the currency picklist: the pricing and billing currencies that accounts,
the organization config and plan templates name by code."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, StrictInt

from reconciler.kinds.base import Kind
from reconciler.kinds.fields import PICKLIST_FIELDS, Picklist, RoundingMode
from reconciler.kinds.spec import Spec


class Currency(Picklist):
    """``currencies:`` — a currency picklist entry."""

    maxDecimalPlaces: Annotated[StrictInt, Field(ge=0, le=5)] | None = None
    roundingMode: RoundingMode | None = None


KIND = Kind(
    name="currency",
    manifest_key="currencies",
    api_path="picklists/currency",
    model=Currency,
    archivable=True,
    deletable=True,
    # Seed page "Currencies", Tip: Default Currency?: "a single currency is created by default -
    # USD. You can go on to archive this currency if not required" - archive, not delete; m3ter
    # refuses to delete the default currency, so a plan must never contain that delete.
    undeletable={
        "USD": "m3ter does not allow deleting the organization's default USD currency; archive it "
               "instead (list it with archived: true, or prune currencies with archive)",
    },
    # openapi-full.json, CurrencyRequest.
    request_spec={
        **PICKLIST_FIELDS,
        "maxDecimalPlaces": Spec("integer", minimum=0, maximum=5),
        "roundingMode": Spec(
            "string",
            enum=("UP", "DOWN", "CEILING", "FLOOR", "HALF_UP", "HALF_DOWN", "HALF_EVEN", "UNNECESSARY"),
        ),
    },
)
