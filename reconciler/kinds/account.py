"""``accounts:`` — end-customer accounts, with their parent/child structure (``parent: CODE``)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, StrictStr

from reconciler.kinds.base import FieldWarning, Kind, Reference
from reconciler.kinds.fields import (
    REQUIRED_ENTITY_CODE_SPEC,
    AccountCode,
    CreditApplicationOrder,
    CustomFields,
    Email,
    IsoDate,
    Name,
    PositiveInt,
    StatementMode,
    Strict,
)
from reconciler.kinds.spec import CF_VALUE, CREDIT_ORDER, NAME, POSITIVE_INT32, STATEMENT_MODE, STR, Spec


class Address(Strict):
    addressLine1: Annotated[StrictStr, Field(max_length=50)] | None = None
    addressLine2: Annotated[StrictStr, Field(max_length=50)] | None = None
    addressLine3: StrictStr | None = None
    addressLine4: StrictStr | None = None
    locality: Annotated[StrictStr, Field(max_length=100)] | None = None
    region: Annotated[StrictStr, Field(max_length=50)] | None = None
    postCode: Annotated[StrictStr, Field(max_length=20)] | None = None
    country: Annotated[StrictStr, Field(max_length=100)] | None = None


class Account(Strict):
    """``accounts:`` — an end-customer account; ``parent`` names the parent by code."""

    code: AccountCode
    name: Name
    emailAddress: Email
    address: Address | None = None
    parent: AccountCode | None = None
    billEpoch: IsoDate | None = None
    purchaseOrderNumber: Annotated[StrictStr, Field(max_length=100)] | None = None
    currency: Annotated[StrictStr, Field(min_length=1)] | None = None
    statementDefinitionId: StrictStr | None = None
    # By name instead of id: resolved to statementDefinitionId at plan time; not both.
    statementDefinition: Annotated[StrictStr, Field(min_length=1)] | None = None
    autoGenerateStatementMode: StatementMode | None = None
    creditApplicationOrder: CreditApplicationOrder | None = None
    daysBeforeBillDue: PositiveInt | None = None
    customFields: CustomFields | None = None


# openapi-full.json, AccountRequest.
REQUEST_SPEC: dict[str, Spec] = {
    "code": REQUIRED_ENTITY_CODE_SPEC,
    "name": NAME,
    "emailAddress": Spec("string", required=True, fmt="email"),  # AccountRequest: no maxLength
    "address": Spec(
        "object",
        fields={
            "addressLine1": Spec("string", max_length=50),
            "addressLine2": Spec("string", max_length=50),
            "addressLine3": STR,
            "addressLine4": STR,
            "locality": Spec("string", max_length=100),
            "region": Spec("string", max_length=50),
            "postCode": Spec("string", max_length=20),
            "country": Spec("string", max_length=100),
        },
    ),
    # AccountRequest gives these no minLength; an empty one names nothing that exists
    # and is refused by the reference checks below.
    "parentAccountId": STR,
    "billEpoch": Spec("string", fmt="date"),
    "purchaseOrderNumber": Spec("string", max_length=100),
    "currency": STR,
    "statementDefinitionId": STR,
    "autoGenerateStatementMode": STATEMENT_MODE,
    "creditApplicationOrder": CREDIT_ORDER,
    "daysBeforeBillDue": POSITIVE_INT32,
    "customFields": Spec("map", values=CF_VALUE, max_items=100),
}


def _credit_order_in_hierarchy(manifests: Any, state: Any) -> None:
    """An account with a parent, or one that is the parent of another account in the
    manifests, may not set ``creditApplicationOrder``.

    Source: the m3ter OpenAPI document, ``AccountRequest.creditApplicationOrder``: "If the
    Account belongs to a Parent/Child Account hierarchy, then the creditApplicationOrder
    settings are not available, and the draw-down order defaults always to Prepayment then
    Balance order." A parent known only live (not in the manifests) is covered through the
    child's own ``parent``; children that exist only live cannot be seen offline.
    An explicit ``null`` or ``[]`` (leave it empty) is what the rule asks for, so it passes.
    """
    accounts = manifests.of_kind("account")
    # the few accounts that set an order first: usually none, and then no hierarchy is built
    ordered = [(code, obj) for code, obj in accounts.items()
               if obj.fields.get("creditApplicationOrder") not in (None, [])]
    if not ordered:
        return
    children: dict[str, list[str]] = {}
    for code, obj in accounts.items():
        parent = obj.fields.get("parent")
        if isinstance(parent, str):
            children.setdefault(parent, []).append(code)
    for code, obj in ordered:
        parent = obj.fields.get("parent")
        if isinstance(parent, str):
            why = f"it is a child of {parent!r}"
        elif code in children:
            kids = sorted(children[code])
            shown = ", ".join(repr(k) for k in kids[:3]) + (f" and {len(kids) - 3} more" if len(kids) > 3 else "")
            why = f"it is the parent of {shown}"
        else:
            continue
        state.at_field(
            "error",
            f"{state.describe(obj)}: creditApplicationOrder: not available for an account in a parent/child "
            f"hierarchy ({why}); m3ter always draws down Prepayment then Balance for such accounts. "
            "Remove the field (m3ter API, AccountRequest.creditApplicationOrder)",
            obj,
            ("creditApplicationOrder",),
        )


KIND = Kind(
    name="account",
    manifest_key="accounts",
    api_path="accounts",
    model=Account,
    deletable=True,
    references=(
        Reference("currency", "currency", hint="give it another currency"),
        Reference("parent", "account", api_path="parentAccountId", by_id=True,
                  hint="give it another parent (or parent: null), or remove it too"),
    ),
    pii_fields=("name", "emailAddress", "address"),
    ordered_lists=frozenset({"creditApplicationOrder"}),
    partial_fields=frozenset({"address"}),
    change_warnings={
        "purchaseOrderNumber": FieldWarning(
            "changing purchaseOrderNumber: bills already generated keep the old number when "
            "recalculated; delete and regenerate a bill to show the new one",
            # setting a first number changes no existing bill
            lambda before, after: not (before is None or before == ""),
        ),
    },
    delete_needs_flag=True,
    delete_warning=(
        "deleting an account permanently dissociates its usage data; an account created later "
        "with the same code does not get it back"
    ),
    request_spec=REQUEST_SPEC,
    checks=(_credit_order_in_hierarchy,),
)
