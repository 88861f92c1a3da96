"""``plans:`` — a priced plan built on a plan template; ``account: CODE`` makes it a
custom/bespoke plan for that account (openapi-full.json, PlanRequest)."""

from __future__ import annotations

from typing import Any

from pydantic import StrictBool

from reconciler.kinds.base import FieldWarning, Kind, Reference
from reconciler.kinds.fields import (
    REQUIRED_ENTITY_CODE_SPEC,
    AccountCode,
    CodeRef,
    CustomFields,
    Description,
    Money,
    Name,
    Strict,
)
from reconciler.kinds.plan_template import DESCRIPTION, MONEY, Ordinal
from reconciler.kinds.spec import BOOL, CUSTOM_FIELDS, NAME, UUID, Spec


class Charges(Strict):
    """The charges a plan and a plan group both set, overriding the plan template's (the
    accounting products by code)."""

    standingCharge: Money | None = None
    standingChargeDescription: Description | None = None
    standingChargeBillInAdvance: StrictBool | None = None
    standingChargeAccountingProduct: CodeRef | None = None
    minimumSpend: Money | None = None
    minimumSpendDescription: Description | None = None
    minimumSpendBillInAdvance: StrictBool | None = None
    minimumSpendAccountingProduct: CodeRef | None = None


class Plan(Charges):
    """``plans:`` — a plan; ``planTemplate`` names its plan template by code, ``account`` the
    account a bespoke plan is for, and the accounting products name products by code."""

    code: AccountCode
    name: Name
    planTemplate: CodeRef
    account: CodeRef | None = None
    bespoke: StrictBool | None = None
    ordinal: Ordinal | None = None  # "DEPRECATED - do not use" (kept so exports round-trip)
    customFields: CustomFields | None = None


# openapi-full.json, PlanRequest (required: code, name, planTemplateId).
REQUEST_SPEC: dict[str, Spec] = {
    "code": REQUIRED_ENTITY_CODE_SPEC,
    "name": NAME,
    "planTemplateId": Spec("string", required=True, min_length=36, max_length=36),
    "accountId": UUID,
    "bespoke": BOOL,
    "standingCharge": MONEY,
    "standingChargeDescription": DESCRIPTION,
    "standingChargeBillInAdvance": BOOL,
    "standingChargeAccountingProductId": UUID,
    "minimumSpend": MONEY,
    "minimumSpendDescription": DESCRIPTION,
    "minimumSpendBillInAdvance": BOOL,
    "minimumSpendAccountingProductId": UUID,
    "ordinal": Spec("integer", minimum=0),
    "customFields": CUSTOM_FIELDS,
}


def _bespoke_needs_an_account(manifests: Any, state: Any) -> None:
    """``bespoke: true`` names no account to be bespoke for.

    Source: openapi-full.json, PlanRequest.bespoke: "When creating a Plan, use the accountId
    request parameter to specify the Account for which the Plan will be custom/bespoke", and
    PlanRequest.accountId: "Use when first creating a Plan". A warning, not an error: a live
    bespoke plan keeps the account it was created for when a manifest leaves ``account`` out.
    """
    for obj in manifests.of_kind("plan").values():
        if obj.fields.get("bespoke") is True and "account" not in obj.fields:
            state.at_field(
                "warning",
                f"{state.describe(obj)}: bespoke: true without account: name the account the plan is for "
                "(account: CODE); m3ter takes it only when the plan is created (PlanRequest.accountId)",
                obj, ("bespoke",))


KIND = Kind(
    name="plan",
    manifest_key="plans",
    api_path="plans",
    model=Plan,
    deletable=True,
    page_size=100,
    codes_filter=False,  # GET /plans takes ids, productId and accountId, no codes
    # productId names the plan template's product, which a plan does not hold itself
    list_filters={"accountId": "accountId"},
    references=(
        Reference("planTemplate", "planTemplate", api_path="planTemplateId", by_id=True,
                  hint="move the plan to another plan template (planTemplate: CODE), or remove it too"),
        Reference("account", "account", api_path="accountId", by_id=True,
                  hint="remove the bespoke plan too (its account cannot be changed once created)"),
        Reference("standingChargeAccountingProduct", "product", api_path="standingChargeAccountingProductId",
                  by_id=True, hint="attribute the standing charge to another product"),
        Reference("minimumSpendAccountingProduct", "product", api_path="minimumSpendAccountingProductId",
                  by_id=True, hint="attribute the minimum spend to another product"),
    ),
    change_warnings={
        # PlanRequest.accountId: "Once created, a custom/bespoke Plan cannot be updated to be made
        # a custom/bespoke Plan for a different Account."
        "account": FieldWarning(
            "changing the account of a bespoke plan: m3ter takes accountId only when a plan is created "
            "(\"once created, a custom/bespoke Plan cannot be updated to be made a custom/bespoke Plan for "
            "a different Account\"); the update is likely refused. Give the new account its own plan "
            "(a new code) instead",
            lambda before, after: before not in (None, ""),
        ),
    },
    delete_needs_flag=True,
    delete_warning=(
        "deleting a plan removes its pricing; accounts attached to it (account plans) must be moved "
        "off it first, and bills that are not yet locked are calculated without its charges"
    ),
    put_required=("code", "name", "planTemplateId"),
    request_spec=REQUEST_SPEC,
    checks=(_bespoke_needs_an_account,),
)
