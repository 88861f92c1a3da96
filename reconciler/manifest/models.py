"""pydantic models of what a manifest may say, with the m3ter API's own limits.

The models validate; they do not transform. The planner works on the mapping exactly as
written (absent field = unmanaged, explicit ``null`` = must be empty), so every field is
optional-with-sentinel at the model level and "required" is checked only where the API
requires a value on create. Limits come from ``shared/m3ter-api/openapi-subset.json``.

Patterns in the OpenAPI document are Java regular expressions; they are translated here
(``\\p{L}`` via the ``regex`` package, ``\\p{Cntrl}`` and Java's ``\\s`` spelled out) and the
JSON Schema carries a portable approximation for editors.
"""

from __future__ import annotations

import datetime as _dt
import re
import zoneinfo
from functools import lru_cache
from typing import Annotated, Any, Literal

import regex
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
)

# --- Java patterns, translated -------------------------------------------------------------

# AbstractPickListRequest.code: ^[\p{L}_$][\p{L}_$0-9]*$
PICKLIST_CODE = regex.compile(r"^[\p{L}_$][\p{L}_$0-9]*$")
PICKLIST_CODE_JSON = r"^[A-Za-z\u00C0-\uFFFF_$][A-Za-z\u00C0-\uFFFF_$0-9]*$"

# AccountRequest.code: one visible character, or visible characters at both ends with
# visible characters or plain spaces between. Java's \p{Cntrl} is [\x00-\x1F\x7F] and its \s
# (without UNICODE_CHARACTER_CLASS) is [ \t\n\x0B\f\r].
_VISIBLE = r"[^\x00-\x1f\x7f \t\n\x0b\f\r]"
ACCOUNT_CODE = regex.compile(rf"^{_VISIBLE}(?:(?:{_VISIBLE}| )*{_VISIBLE})?$")
_VISIBLE_JSON = r"[^\u0000-\u001f\u007f \t\n\u000b\f\r]"
ACCOUNT_CODE_JSON = (
    rf"^{_VISIBLE_JSON}(?:[^\u0000-\u001f\u007f\t\n\u000b\f\r]*{_VISIBLE_JSON})?$"
)

SCHEDULED_BILL_INTERVALS = (0, 0.25, 0.5, 1, 2, 3, 4, 6, 8, 12, 24)
CUSTOM_FIELD_ENTITY_TYPES = (
    "organization",
    "account",
    "accountPlan",
    "meter",
    "product",
    "plan",
    "planTemplate",
    "aggregation",
    "compoundAggregation",
    "contract",
)
ORG_LEVEL_CUSTOM_FIELD_LIMIT = 10  # the Console's documented limit (seed); the API allows 25


def _picklist_code(value: str) -> str:
    if not PICKLIST_CODE.match(value):
        raise ValueError(
            "must start with a letter, '_' or '$' and hold only letters, digits, '_' and '$'"
        )
    return value


def _account_code(value: str) -> str:
    if not ACCOUNT_CODE.match(value):
        raise ValueError(
            "must not start or end with whitespace nor contain control characters, tabs or newlines"
        )
    return value


@lru_cache(maxsize=4096)
@lru_cache(maxsize=1024)
def is_timezone(name: str) -> bool:
    """An IANA name zoneinfo can load. A region directory such as ``America`` makes zoneinfo
    raise ``IsADirectoryError`` (an OSError), so that counts as "not a timezone" too."""
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        return False
    return True


def _timezone(value: str) -> str:
    if not is_timezone(value):
        raise ValueError("is not an IANA timezone name such as 'Europe/London' or 'UTC'")
    return value


def _iso_date(value: str) -> str:
    try:
        _dt.date.fromisoformat(value)
    except ValueError:
        raise ValueError("must be an ISO date such as 2024-01-31") from None
    if len(value) != 10:
        raise ValueError("must be an ISO date such as 2024-01-31")
    return value


# A conservative shape that email_validator always accepts: ASCII dot-atom local part of at
# most 64 characters, a hostname of LDH labels without "--" (so no "xn--" labels) and an
# alphabetic, non-special-use TLD, 254 characters in all (so the domain is under 253).
# email_validator costs about 100 microseconds per call, which for 100k accounts would
# dominate ``validate``; addresses outside this shape (IDNs, quoted local parts...) still go
# through it. One ``fullmatch`` holds every condition: ``$`` would let a trailing newline
# through, which email_validator refuses.
_EMAIL_FAST = re.compile(
    r"(?=.{1,254}\Z)(?=[^@]{1,64}@)"
    r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@(?![^@]*--)(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+"
    r"(?!(?i:arpa|invalid|local|localhost|onion|test)\Z)[A-Za-z]{2,63}",
    re.DOTALL,
)
_email_fast_match = _EMAIL_FAST.fullmatch


def _email_fast_ok(value: str) -> bool:
    """True when ``value`` has the shape above (email_validator then always accepts it)."""
    return _email_fast_match(value) is not None


@lru_cache(maxsize=65536)
def _email_ok(value: str) -> str | None:
    """email_validator's verdict: None, or why the address is refused. Imported here, on the
    first address outside the fast shape: importing it compiles its RFC patterns (~30 ms),
    a tenth of ``validate``'s start-up, for manifests whose addresses all have that shape."""
    from email_validator import EmailNotValidError, validate_email

    try:
        validate_email(value, check_deliverability=False)
    except EmailNotValidError as exc:
        return str(exc)
    return None


def _email(value: str) -> str:
    if _email_fast_match(value) is None:
        problem = _email_ok(value)
        if problem:
            raise ValueError(f"is not a valid e-mail address ({problem})")
    return value  # kept as written: normalising would show up as a diff


def _scheduled_interval(value: float) -> float:
    if value not in SCHEDULED_BILL_INTERVALS:
        allowed = ", ".join(str(v) for v in SCHEDULED_BILL_INTERVALS)
        raise ValueError(f"must be one of {allowed} (hours; 0 disables)")
    return value


PicklistCode = Annotated[
    StrictStr,
    Field(max_length=80, min_length=1),
    AfterValidator(_picklist_code),
    WithJsonSchema({"type": "string", "maxLength": 80, "minLength": 1, "pattern": PICKLIST_CODE_JSON}),
]
AccountCode = Annotated[
    StrictStr,
    Field(max_length=80, min_length=1),
    AfterValidator(_account_code),
    WithJsonSchema({"type": "string", "maxLength": 80, "minLength": 1, "pattern": ACCOUNT_CODE_JSON}),
]
Name = Annotated[StrictStr, Field(min_length=1, max_length=200)]
IsoDate = Annotated[
    StrictStr,
    AfterValidator(_iso_date),
    WithJsonSchema({"type": "string", "format": "date"}),
]
Email = Annotated[
    StrictStr,
    AfterValidator(_email),
    WithJsonSchema({"type": "string", "format": "email"}),
]
Timezone = Annotated[StrictStr, AfterValidator(_timezone)]
PositiveInt = Annotated[StrictInt, Field(gt=0, le=2**31 - 1)]
# StrictFloat accepts integers but not booleans or strings: one type, so one error message.
Number = StrictFloat
CustomFieldValue = StrictStr | StrictFloat
StatementMode = Literal["NONE", "JSON", "JSON_AND_CSV"]
BillCreditType = Literal["PREPAYMENT", "BALANCE"]
RoundingMode = Literal["UP", "DOWN", "CEILING", "FLOOR", "HALF_UP", "HALF_DOWN", "HALF_EVEN", "UNNECESSARY"]


def _credit_order(value: list[str] | None) -> list[str] | None:
    if value is not None and len(set(value)) != len(value):
        raise ValueError("lists PREPAYMENT or BALANCE twice; give one of the two orders, or one alone")
    return value


CreditApplicationOrder = Annotated[
    list[BillCreditType], Field(max_length=2), AfterValidator(_credit_order)
]


class _Strict(BaseModel):
    """Unknown fields are errors: a typo must never be silently ignored."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class CurrencyConversion(_Strict):
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


def _drop_null(schema: dict[str, Any]) -> None:
    """JSON Schema of a field that may be absent but not null: keep the non-null branch."""
    branches = [b for b in schema.pop("anyOf", []) if b != {"type": "null"}]
    if len(branches) == 1:
        schema.update(branches[0])
    elif branches:
        schema["anyOf"] = branches


def _put_required() -> Any:
    """Default of an :data:`ORG_CONFIG_PUT_REQUIRED` field: absent, never null in the schema."""
    return Field(default=None, json_schema_extra=_drop_null)


class OrganizationConfig(_Strict):
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
    scheduledBillInterval: Annotated[Number, AfterValidator(_scheduled_interval)] | None = None
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


class _Picklist(_Strict):
    code: PicklistCode
    name: Name
    archived: StrictBool | None = None


class Currency(_Picklist):
    """``currencies:`` — a currency picklist entry."""

    maxDecimalPlaces: Annotated[StrictInt, Field(ge=0, le=5)] | None = None
    roundingMode: RoundingMode | None = None


class CreditReason(_Picklist):
    """``creditReasons:`` — a credit reason picklist entry."""


class DebitReason(_Picklist):
    """``debitReasons:`` — a debit reason picklist entry."""


class TransactionType(_Picklist):
    """``transactionTypes:`` — a transaction type picklist entry."""


CustomFieldMap = dict[Annotated[StrictStr, Field(min_length=1)], CustomFieldValue]


class CustomFields(_Strict):
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


class Address(_Strict):
    addressLine1: Annotated[StrictStr, Field(max_length=50)] | None = None
    addressLine2: Annotated[StrictStr, Field(max_length=50)] | None = None
    addressLine3: StrictStr | None = None
    addressLine4: StrictStr | None = None
    locality: Annotated[StrictStr, Field(max_length=100)] | None = None
    region: Annotated[StrictStr, Field(max_length=50)] | None = None
    postCode: Annotated[StrictStr, Field(max_length=20)] | None = None
    country: Annotated[StrictStr, Field(max_length=100)] | None = None


class Account(_Strict):
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
    customFields: dict[Annotated[StrictStr, Field(min_length=1)], CustomFieldValue] | None = Field(
        default=None, max_length=100
    )


PruneFlag = Literal[False, "archive", "delete"]


class Prune(_Strict):
    currencies: PruneFlag = False
    creditReasons: PruneFlag = False
    debitReasons: PruneFlag = False
    transactionTypes: PruneFlag = False
    accounts: Literal[False, "delete"] = False


class IgnoreFields(_Strict):
    organizationConfig: list[StrictStr] = Field(default_factory=list)
    currency: list[StrictStr] = Field(default_factory=list)
    creditReason: list[StrictStr] = Field(default_factory=list)
    debitReason: list[StrictStr] = Field(default_factory=list)
    transactionType: list[StrictStr] = Field(default_factory=list)
    customFields: list[StrictStr] = Field(default_factory=list)
    account: list[StrictStr] = Field(default_factory=list)


class Safety(_Strict):
    maxRemovePercent: Annotated[Number, Field(ge=0, le=100)] = 30


class Settings(_Strict):
    """``settings:`` — how the plan treats live objects that no manifest lists."""

    prune: Prune = Field(default_factory=Prune)
    ignoreFields: IgnoreFields = Field(default_factory=IgnoreFields)
    safety: Safety = Field(default_factory=Safety)
