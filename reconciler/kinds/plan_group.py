"""``planGroups:`` — plans grouped to apply one minimum spend and standing charge across
several products; the group's ``plans: [CODE, ...]`` are its links (``planGroupLink``)
(openapi-full.json, PlanGroupRequest)."""

from __future__ import annotations

from reconciler.kinds.base import Kind, Reference
from reconciler.kinds.fields import (
    ENTITY_CODE_SPEC,
    AccountCode,
    CodeRef,
    CurrencyCode,
    CustomFields,
    Name,
)
from reconciler.kinds.plan import Charges
from reconciler.kinds.plan_template import DESCRIPTION, MONEY
from reconciler.kinds.spec import BOOL, CUSTOM_FIELDS, NAME, STR, UUID, Spec


class PlanGroup(Charges):
    """``planGroups:`` — a plan group; ``currency`` by code, ``account`` the account a bespoke
    group is for; list its plans under ``plans: [CODE, ...]``."""

    code: AccountCode
    name: Name
    currency: CurrencyCode
    account: CodeRef | None = None
    customFields: CustomFields | None = None


# openapi-full.json, PlanGroupRequest (required: currency, name). The accounting product ids
# have no length limits there.
REQUEST_SPEC: dict[str, Spec] = {
    "code": ENTITY_CODE_SPEC,
    "name": NAME,
    "currency": Spec("string", required=True, min_length=3, max_length=3),
    "accountId": UUID,
    "standingCharge": MONEY,
    "standingChargeDescription": DESCRIPTION,
    "standingChargeBillInAdvance": BOOL,
    "standingChargeAccountingProductId": STR,
    "minimumSpend": MONEY,
    "minimumSpendDescription": DESCRIPTION,
    "minimumSpendBillInAdvance": BOOL,
    "minimumSpendAccountingProductId": STR,
    "customFields": CUSTOM_FIELDS,
}


KIND = Kind(
    name="planGroup",
    title="plan group",
    manifest_key="planGroups",
    api_path="plangroups",
    model=PlanGroup,
    deletable=True,
    page_size=200,  # GET /plangroups: pageSize maximum 200
    codes_filter=False,  # ids and accountId, no codes
    list_filters={"accountId": "accountId"},
    references=(
        Reference("currency", "currency", hint="give the plan group another currency"),
        Reference("account", "account", api_path="accountId", by_id=True, hint="remove the bespoke plan group too"),
        Reference("standingChargeAccountingProduct", "product", api_path="standingChargeAccountingProductId",
                  by_id=True, hint="attribute the standing charge to another product"),
        Reference("minimumSpendAccountingProduct", "product", api_path="minimumSpendAccountingProductId",
                  by_id=True, hint="attribute the minimum spend to another product"),
    ),
    put_required=("currency", "name"),
    request_spec=REQUEST_SPEC,
)
