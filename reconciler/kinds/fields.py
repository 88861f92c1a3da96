"""Field types shared by the kinds' manifest models, with the m3ter API's own limits.

The models validate; they do not transform. The planner works on the mapping exactly as
written (absent field = unmanaged, explicit ``null`` = must be empty), so every field is
optional-with-sentinel at the model level and "required" is checked only where the API
requires a value on create. Limits come from ``shared/m3ter-api/openapi-subset.json``.

Patterns in the OpenAPI document are Java regular expressions; they are translated here
(``\\p{L}`` via the ``regex`` package, ``\\p{Cntrl}`` and Java's ``\\s`` spelled out) and the
JSON Schema carries a portable approximation for editors.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import re
import zoneinfo
from functools import lru_cache
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    WithJsonSchema,
)

from reconciler.kinds.spec import BOOL, NAME, Spec

# --- Java patterns, translated -------------------------------------------------------------

# AbstractPickListRequest.code: ^[\p{L}_$][\p{L}_$0-9]*$
# m3ter checks it with Bean Validation's @Pattern, that is Java's ``Matcher.matches()``: the
# whole value must match, so a final newline is refused, where Python's and ``regex``'s ``$``
# would let one through ("abc\n"). Every check below is therefore a ``fullmatch``.
_PICKLIST_CODE_SOURCE = r"^[\p{L}_$][\p{L}_$0-9]*$"
# The same for ASCII text, where \p{L} is [A-Za-z].
_PICKLIST_CODE_ASCII = re.compile(r"[A-Za-z_$][A-Za-z_$0-9]*")


class _PicklistCode:
    """Java's ``matches()`` of ``_PICKLIST_CODE_SOURCE`` (a ``regex`` ``fullmatch``), with
    ASCII values checked by ``re`` (the same verdict): the ``regex`` package (~8 ms to import)
    loads only for a value with a non-ASCII character. ``match`` is the name every pattern
    check calls."""

    pattern = _PICKLIST_CODE_SOURCE
    _full: Any = None

    def match(self, value: str) -> Any:
        if value.isascii():
            return _PICKLIST_CODE_ASCII.fullmatch(value)
        if _PicklistCode._full is None:
            import regex

            _PicklistCode._full = regex.compile(_PICKLIST_CODE_SOURCE)
        return _PicklistCode._full.fullmatch(value)


PICKLIST_CODE = _PicklistCode()
PICKLIST_CODE_JSON = r"^[A-Za-z\u00C0-\uFFFF_$][A-Za-z\u00C0-\uFFFF_$0-9]*$"

# AccountRequest.code: one visible character, or visible characters at both ends with
# visible characters or plain spaces between. Java's \p{Cntrl} is [\x00-\x1F\x7F] and its \s
# (without UNICODE_CHARACTER_CLASS) is [ \t\n\x0B\f\r].
_VISIBLE = r"[^\x00-\x1f\x7f \t\n\x0b\f\r]"
# ``\Z``, not ``$``: Java's ``matches()`` refuses a final newline (see the picklist code above).
ACCOUNT_CODE = re.compile(rf"^{_VISIBLE}(?:(?:{_VISIBLE}| )*{_VISIBLE})?\Z")  # no \p{..}: plain ``re``
# The same verdicts for pydantic's Rust regex engine, which checks a value without a call back
# into Python (a third of the time, for two codes of each of 100k accounts).
ACCOUNT_CODE_RUST = rf"^{_VISIBLE}(?:(?:{_VISIBLE}| )*{_VISIBLE})?\z"
ACCOUNT_CODE_MESSAGE = "must not start or end with whitespace nor contain control characters, tabs or newlines"
#: What a value that fails one of these patterns is told (``messages`` reads it by pattern).
PATTERN_MESSAGES = {ACCOUNT_CODE_RUST: ACCOUNT_CODE_MESSAGE}
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
        raise ValueError(PICKLIST_CODE_HINT)  # the store's words for the same pattern
    return value


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


def scheduled_interval(value: float) -> float:
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
    Field(max_length=80, min_length=1, pattern=ACCOUNT_CODE_RUST),
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


class Strict(BaseModel):
    """Unknown fields are errors: a typo must never be silently ignored."""

    # defer_build: a kind's validator is built when its first object is validated, so a plan of
    # accounts alone does not pay for building the catalog's models
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, defer_build=True)


def drop_null(schema: dict[str, Any]) -> None:
    """JSON Schema of a field that may be absent but not null: keep the non-null branch."""
    branches = [b for b in schema.pop("anyOf", []) if b != {"type": "null"}]
    if len(branches) == 1:
        schema.update(branches[0])
    elif branches:
        schema["anyOf"] = branches




# --- request limits shared by several kinds (see reconciler.kinds.spec) ------------------------

PICKLIST_CODE_HINT = "must start with a letter, '_' or '$' and hold only letters, digits, '_' and '$'"
ACCOUNT_CODE_HINT = "must not start or end with whitespace nor contain control characters"
# openapi-full.json, CurrencyRequest / CreditReasonRequest / DebitReasonRequest /
# TransactionTypeRequest / BillGroupingKeyRequest: ``code`` is optional (maxLength 80 and a
# pattern that an empty string does not match).
PICKLIST_CODE_SPEC = Spec("string", min_length=1, max_length=80, pattern=PICKLIST_CODE, pattern_hint=PICKLIST_CODE_HINT)
# The "no control characters or whitespace at the ends" code of accounts, products, meters,
# plans, plan templates, plan groups, pricings and account plans.
ENTITY_CODE_SPEC = Spec("string", min_length=1, max_length=80, pattern=ACCOUNT_CODE, pattern_hint=ACCOUNT_CODE_HINT)
# The same where the request schema lists ``code`` as required (accounts, products, meters, plans).
REQUIRED_ENTITY_CODE_SPEC = dataclasses.replace(ENTITY_CODE_SPEC, required=True)
PICKLIST_FIELDS: dict[str, Spec] = {"code": PICKLIST_CODE_SPEC, "name": NAME, "archived": BOOL}


class Picklist(Strict):
    """The shape every picklist entry shares: code, name and an ``archived`` flag."""

    code: PicklistCode
    name: Name
    archived: StrictBool | None = None


# AccountPlanRequest.startDate / endDate: "date-time" in ISO-8601. A manifest writes the one
# form m3ter answers with (UTC, whole seconds, ``Z``: ``2024-01-01T00:00:00Z``), so a value
# read back compares equal to the one written and a key built from it never drifts.
DATE_TIME_RE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")
DATE_TIME_HINT = "must be a UTC date-time such as 2024-01-01T00:00:00Z (the form m3ter answers with)"


def _utc_date_time(value: str) -> str:
    if DATE_TIME_RE.fullmatch(value) is None:
        raise ValueError(DATE_TIME_HINT)
    try:
        _dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(DATE_TIME_HINT) from None
    return value


UtcDateTime = Annotated[
    StrictStr,
    AfterValidator(_utc_date_time),
    WithJsonSchema({"type": "string", "format": "date-time", "pattern": r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$"}),
]
# A reference to another object by its code (``product: CODE``): resolved to an id at plan time.
CodeRef = Annotated[StrictStr, Field(min_length=1)]
Money = Annotated[StrictFloat, Field(ge=0)]
Description = Annotated[StrictStr, Field(max_length=200)]
CurrencyCode = Annotated[StrictStr, Field(min_length=3, max_length=3)]
CustomFields = Annotated[
    dict[Annotated[StrictStr, Field(min_length=1)], CustomFieldValue], Field(max_length=100)
]
