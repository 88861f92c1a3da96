"""``planTemplates:`` — the pricing skeleton of a product: its currency, billing frequency,
standing charge and minimum spend, which the plans built on it inherit (openapi-full.json,
PlanTemplateRequest)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, StrictBool, StrictInt

from reconciler.kinds.base import Kind, Reference
from reconciler.kinds.fields import (
    ENTITY_CODE_SPEC,
    AccountCode,
    CodeRef,
    CurrencyCode,
    CustomFields,
    Description,
    Money,
    Name,
    Strict,
)
from reconciler.kinds.spec import BOOL, CUSTOM_FIELDS, INT64, NAME, Spec

# openapi-full.json, BillingFrequency.
BillFrequency = Literal["DAILY", "WEEKLY", "MONTHLY", "ANNUALLY", "AD_HOC", "MIXED"]
BILL_FREQUENCIES = ("DAILY", "WEEKLY", "MONTHLY", "ANNUALLY", "AD_HOC", "MIXED")
# PlanTemplateRequest: billFrequencyInterval and standingChargeInterval 1..365,
# standingChargeOffset 0..364.
Interval = Annotated[StrictInt, Field(ge=1, le=365)]
Offset = Annotated[StrictInt, Field(ge=0, le=364)]
Ordinal = Annotated[StrictInt, Field(ge=0, le=INT64[1])]


class PlanTemplate(Strict):
    """``planTemplates:`` — a plan template; ``product`` names its product by code and
    ``currency`` its pricing currency (a currency picklist code that must exist)."""

    code: AccountCode
    name: Name
    product: CodeRef
    currency: CurrencyCode
    billFrequency: BillFrequency
    standingCharge: Money
    billFrequencyInterval: Interval | None = None
    standingChargeDescription: Description | None = None
    standingChargeInterval: Interval | None = None
    standingChargeOffset: Offset | None = None
    standingChargeBillInAdvance: StrictBool | None = None
    minimumSpend: Money | None = None
    minimumSpendDescription: Description | None = None
    minimumSpendBillInAdvance: StrictBool | None = None
    ordinal: Ordinal | None = None  # "DEPRECATED - do not use" (kept so exports round-trip)
    customFields: CustomFields | None = None


MONEY = Spec("number", minimum=0)
DESCRIPTION = Spec("string", max_length=200)
INTERVAL = Spec("integer", minimum=1, maximum=365)

# openapi-full.json, PlanTemplateRequest (required: billFrequency, currency, name, productId,
# standingCharge).
REQUEST_SPEC: dict[str, Spec] = {
    "code": ENTITY_CODE_SPEC,
    "name": NAME,
    "productId": Spec("string", required=True, min_length=36, max_length=36),
    "currency": Spec("string", required=True, min_length=3, max_length=3),
    "billFrequency": Spec("string", required=True, enum=BILL_FREQUENCIES),
    "billFrequencyInterval": INTERVAL,
    "standingCharge": Spec("number", required=True, minimum=0),
    "standingChargeDescription": DESCRIPTION,
    "standingChargeInterval": INTERVAL,
    "standingChargeOffset": Spec("integer", minimum=0, maximum=364),
    "standingChargeBillInAdvance": BOOL,
    "minimumSpend": MONEY,
    "minimumSpendDescription": DESCRIPTION,
    "minimumSpendBillInAdvance": BOOL,
    "ordinal": Spec("integer", minimum=0),
    "customFields": CUSTOM_FIELDS,
}


def _frequency_combinations(manifests: Any, state: Any) -> None:
    """Warnings on ``billFrequency`` combinations the descriptions make meaningless.

    Sources (openapi-full.json):

    * BillingFrequency: "**Ad_Hoc**. Use this setting when a custom billing schedule is used
      for billing an Account" — there is no regular period, so ``billFrequencyInterval``
      ("How often bills are issued. For example, if billFrequency is Monthly and
      billFrequencyInterval is 3, bills are issued every three months") has nothing to count.
    * ``MIXED`` is in the enum but described nowhere among the frequencies a plan template's
      bills can follow ("Daily ... Weekly ... Monthly ... Annually", PlanTemplateRequest
      .billFrequency): it is what m3ter reports, not a schedule to ask for.
    * standingChargeOffset: "if the bill is issued every three months and the
      standingChargeOffset is 0, then the charge is applied to the first bill; if 1 ... the
      second bill", counted in bills, like standingChargeInterval: both count bills, so with
      an ``AD_HOC`` schedule they have no regular bill to count either.
    """
    for obj in manifests.of_kind("planTemplate").values():
        fields = obj.fields
        frequency = fields.get("billFrequency")
        if frequency == "AD_HOC":
            for name in ("billFrequencyInterval", "standingChargeInterval", "standingChargeOffset"):
                if fields.get(name) is not None:
                    state.at_field(
                        "warning",
                        f"{state.describe(obj)}: {name} counts regular bills, but billFrequency AD_HOC "
                        "bills on a custom schedule (m3ter API, BillingFrequency); it has no regular period to count",
                        obj, (name,))
        elif frequency == "MIXED":
            state.at_field(
                "warning",
                f"{state.describe(obj)}: billFrequency MIXED is not a schedule the m3ter API describes for a plan "
                "template (DAILY, WEEKLY, MONTHLY, ANNUALLY or AD_HOC); bills may not be generated as expected",
                obj, ("billFrequency",))


KIND = Kind(
    name="planTemplate",
    title="plan template",
    manifest_key="planTemplates",
    api_path="plantemplates",
    model=PlanTemplate,
    deletable=True,
    page_size=100,
    codes_filter=False,  # GET /plantemplates takes ids and productId, no codes
    list_filters={"productId": "productId"},
    references=(
        Reference("product", "product", api_path="productId", by_id=True,
                  hint="move the plan template to another product, or remove it too"),
        Reference("currency", "currency", hint="give the plan template another currency"),
    ),
    put_required=("billFrequency", "currency", "name", "productId", "standingCharge"),
    request_spec=REQUEST_SPEC,
    checks=(_frequency_combinations,),
)
