"""``organization:`` — the organization config singleton, with its currency conversion rates."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, StrictBool, StrictInt, StrictStr, ValidationInfo, field_validator

from reconciler.kinds.base import FieldWarning, Kind, Reference
from reconciler.kinds.fields import (
    CreditApplicationOrder,
    IsoDate,
    Number,
    PositiveInt,
    StatementMode,
    Strict,
    Timezone,
    drop_null,
    scheduled_interval,
)
from reconciler.kinds.spec import BOOL, CREDIT_ORDER, INT32, POSITIVE_INT32, STATEMENT_MODE, STR, Spec


class CurrencyConversion(Strict):
    """One rate of ``organization.currencyConversions``: converts amounts from ``from`` (a
    plan's pricing currency) to ``to`` (the billing currency).

    Only ``from`` and ``to`` are required: the m3ter OpenAPI document's ``CurrencyConversion``
    schema lists ``required: [from, to]`` and the official SDK types ``multiplier`` as
    optional, so a live organization may hold a rate without one and ``export`` writes it
    that way.

    A missing ``multiplier`` (or ``multiplier: null``) means "this rate carries no
    multiplier", exactly as the API reads the same body; it does not mean "keep the live
    multiplier". ``currencyConversions`` is managed as a whole list (its entries have no
    identity of their own), so an entry ``{from: EUR, to: USD}`` against a live
    ``{from: EUR, to: USD, multiplier: 1.08}`` is a change that the plan shows and apply
    sends without the multiplier (the document states no default for that case). Give the
    multiplier to manage the rate.
    """

    from_: Annotated[StrictStr, Field(min_length=1, alias="from")]
    to: Annotated[StrictStr, Field(min_length=1)]
    multiplier: Annotated[Number, Field(gt=0)] | None = None



# OrganizationConfigRequest's ``required`` list in the full m3ter OpenAPI document: a PUT
# without one of these is refused, so a manifest may leave them out (unmanaged: the live
# value is sent back) but never ask for them to be empty.
ORG_CONFIG_PUT_REQUIRED = (
    "currency",
    "timezone",
    "yearEpoch",
    "monthEpoch",
    "weekEpoch",
    "dayEpoch",
    "daysBeforeBillDue",
)


def _put_required() -> Any:
    """Default of an :data:`ORG_CONFIG_PUT_REQUIRED` field: absent, never null in the schema."""
    return Field(default=None, json_schema_extra=drop_null)


class OrganizationConfig(Strict):
    """``organization:`` — the singleton organization configuration.

    currency, timezone, the four epochs and daysBeforeBillDue may be left out (not managed)
    but never set to null: m3ter requires them on every update.
    """

    # Optional (absent = unmanaged), but the JSON Schema offers no null (_put_required) and
    # the before-validator turns an explicit null into a sentence that says why.
    currency: Annotated[StrictStr, Field(min_length=1)] | None = _put_required()
    timezone: Timezone | None = _put_required()
    yearEpoch: IsoDate | None = _put_required()
    monthEpoch: IsoDate | None = _put_required()
    weekEpoch: IsoDate | None = _put_required()
    dayEpoch: IsoDate | None = _put_required()
    daysBeforeBillDue: PositiveInt | None = _put_required()
    currencyConversions: list[CurrencyConversion] | None = None
    scheduledBillInterval: Annotated[Number, AfterValidator(scheduled_interval)] | None = None
    scheduledBillOffset: Annotated[StrictInt, Field(ge=0, le=23)] | None = None
    standingChargeBillInAdvance: StrictBool | None = None
    commitmentFeeBillInAdvance: StrictBool | None = None
    minimumSpendBillInAdvance: StrictBool | None = None
    autoApproveBillsGracePeriod: PositiveInt | None = None
    autoApproveBillsGracePeriodUnit: Literal["MINUTES", "HOURS", "DAYS"] | None = None
    externalInvoiceDate: Literal["FIRST_DAY_OF_NEXT_PERIOD", "LAST_DAY_OF_ARREARS"] | None = None
    suppressedEmptyBills: StrictBool | None = None
    consolidateBills: StrictBool | None = None
    defaultStatementDefinitionId: StrictStr | None = None
    # By name instead of id (ids differ between organizations): resolved to
    # defaultStatementDefinitionId at plan time (reconciler.lookups); not both.
    defaultStatementDefinition: Annotated[StrictStr, Field(min_length=1)] | None = None
    autoGenerateStatementMode: StatementMode | None = None
    creditApplicationOrder: CreditApplicationOrder | None = None
    allowNegativeBalances: StrictBool | None = None
    allowOverlappingPlans: StrictBool | None = None
    billPrefix: StrictStr | None = None
    sequenceStartNumber: Annotated[StrictInt, Field(ge=-(2**31), le=2**31 - 1)] | None = None

    @field_validator(*ORG_CONFIG_PUT_REQUIRED, mode="before")
    @classmethod
    def _required_by_put(cls, value: Any) -> Any:
        """Source: OrganizationConfigRequest ``required`` in the m3ter OpenAPI document."""
        if value is None:
            raise ValueError(
                "cannot be null: m3ter requires it on every organization config update; "
                "give a value, or leave the field out to keep the live one"
            )
        return value

    @field_validator("scheduledBillOffset")
    @classmethod
    def _offset_needs_daily_interval(cls, value: int | None, info: ValidationInfo) -> int | None:
        """Reported on ``scheduledBillOffset`` itself, so the message points at that line."""
        interval = info.data.get("scheduledBillInterval")
        if value is not None and interval is not None and interval != 24:
            raise ValueError(
                f"can only be set with a scheduledBillInterval of 24 (it is {interval:g})"
            )
        return value




# openapi-full.json, OrganizationConfigRequest.
REQUEST_SPEC: dict[str, Spec] = {
    "currency": Spec("string", required=True, min_length=1),
    "timezone": Spec("string", required=True, fmt="timezone"),
    "yearEpoch": Spec("string", required=True, fmt="date"),
    "monthEpoch": Spec("string", required=True, fmt="date"),
    "weekEpoch": Spec("string", required=True, fmt="date"),
    "dayEpoch": Spec("string", required=True, fmt="date"),
    "daysBeforeBillDue": Spec("integer", required=True, minimum=0, exclusive_minimum=True, maximum=INT32[1]),
    "currencyConversions": Spec(
        "array",
        items=Spec(
            "object",
            fields={
                "from": Spec("string", required=True, min_length=1),
                "to": Spec("string", required=True, min_length=1),
                "multiplier": Spec("number", minimum=0, exclusive_minimum=True),
            },
        ),
    ),
    "scheduledBillInterval": Spec("number", fmt="bill-interval"),
    "scheduledBillOffset": Spec("integer", minimum=0, maximum=23),
    "standingChargeBillInAdvance": BOOL,
    "commitmentFeeBillInAdvance": BOOL,
    "minimumSpendBillInAdvance": BOOL,
    "autoApproveBillsGracePeriod": POSITIVE_INT32,
    "autoApproveBillsGracePeriodUnit": Spec("string", enum=("MINUTES", "HOURS", "DAYS")),
    "externalInvoiceDate": Spec("string", enum=("FIRST_DAY_OF_NEXT_PERIOD", "LAST_DAY_OF_ARREARS")),
    "suppressedEmptyBills": BOOL,
    "consolidateBills": BOOL,
    "defaultStatementDefinitionId": STR,
    "autoGenerateStatementMode": STATEMENT_MODE,
    "creditApplicationOrder": CREDIT_ORDER,
    "allowNegativeBalances": BOOL,
    "allowOverlappingPlans": BOOL,
    "billPrefix": STR,
    "sequenceStartNumber": Spec("integer", minimum=INT32[0], maximum=INT32[1]),
}


def _offset_needs_daily_body(body: dict[str, Any]) -> str | None:
    if "scheduledBillOffset" in body and body.get("scheduledBillInterval") != 24:
        return "scheduledBillOffset: is only supported with a scheduledBillInterval of 24"
    return None


def _conversions(manifests: Any, state: Any) -> None:
    """Each direction once; a rate to itself does nothing (a warning)."""
    org = manifests.of_kind("organizationConfig").get("organizationConfig")
    conversions = org.fields.get("currencyConversions") if org else None
    if org is None or not isinstance(conversions, list):
        return
    seen: dict[tuple[str, str], int] = {}
    for index, rate in enumerate(conversions):
        if not isinstance(rate, dict):
            continue
        pair = (rate.get("from"), rate.get("to"))
        if not all(isinstance(code, str) for code in pair):
            continue
        pair_s: tuple[str, str] = (str(pair[0]), str(pair[1]))
        if pair_s in seen:
            state.at_field(
                "error",
                f"organization: currencyConversions[{index}]: the rate from {pair_s[0]} to {pair_s[1]} is "
                f"already given at currencyConversions[{seen[pair_s]}]; give each direction once",
                org,
                ("currencyConversions", index),
            )
        else:
            seen[pair_s] = index
        if pair_s[0] == pair_s[1]:
            state.at_field(
                "warning",
                f"organization: currencyConversions[{index}]: converts {pair_s[0]} to itself, which "
                "has no effect",
                org,
                ("currencyConversions", index),
            )


KIND = Kind(
    name="organizationConfig",
    manifest_key="organization",
    api_path="organizationconfig",
    model=OrganizationConfig,
    singleton=True,
    put_required=ORG_CONFIG_PUT_REQUIRED,
    references=(
        Reference("currency", "currency", hint="set organization.currency to another currency"),
        Reference("currencyConversions[].from", "currency", hint="remove the conversion from organization"),
        Reference("currencyConversions[].to", "currency", hint="remove the conversion from organization"),
    ),
    ordered_lists=frozenset({"creditApplicationOrder"}),
    list_identity={"currencyConversions": ("from", "to")},
    title="organization config",
    change_warnings={
        "consolidateBills": FieldWarning(
            "enabling consolidateBills after bills exist: later bills for a bill date start afresh "
            "and do not update earlier non-consolidated bills; archive or delete those to avoid conflicts",
            lambda before, after: after is True,
        ),
    },
    request_spec=REQUEST_SPEC,
    body_rules=(_offset_needs_daily_body,),
    checks=(_conversions,),
)
