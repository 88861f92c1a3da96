"""Warnings that carry m3ter's documented domain knowledge (shown, never fatal).

Each check cites the Console documentation it comes from (``shared/seeds``). Warnings about
many objects are grouped (one message per currency or field name, at the first place, with
a count) so that 100k accounts never produce 100k lines of the same advice.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from reconciler.manifest.messages import describe
from reconciler.manifest.types import DesiredObject, Manifests

if TYPE_CHECKING:
    from reconciler.manifest.load import LoadState

_HOURS_PER_UNIT = {"MINUTES": 1 / 60, "HOURS": 1.0, "DAYS": 24.0}
_ETC_GMT = re.compile(r"^Etc/GMT([+-])(\d{1,2})$")
# Zones added to the tz database after release 2021c, which the m3ter Console offers.
_NEWER_THAN_2021C = {
    "Europe/Kyiv": "Europe/Kiev",
    "America/Ciudad_Juarez": "America/Denver",
    "America/Coyhaique": "America/Santiago",
}
# Words that, in a custom field name, suggest end-customer personal data. Per the m3ter Data
# Processing Agreement only an account's name, address and emailAddress may hold PII.
_PII_WORDS = frozenset(
    {
        "email", "mail", "phone", "telephone", "mobile", "cell", "fax", "address", "street",
        "zip", "zipcode", "postcode", "postal", "birth", "birthday", "birthdate", "dob", "ssn",
        "passport", "iban", "taxid", "tin", "nino", "surname", "lastname",
        "firstname", "fullname", "gender", "salary", "licence", "license", "ip",
    }
)
_NAME_QUALIFIERS = frozenset(
    {"first", "last", "full", "given", "family", "middle", "maiden", "contact", "person", "customer", "user",
     "owner", "holder", "billing"}
)
_WORDS = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+")


def looks_personal(name: str) -> bool:
    """Does a custom field name look like it holds personal data (emailAddress, phone, dob...)?"""
    words = [w.lower() for w in _WORDS.findall(name)]
    if any(w in _PII_WORDS for w in words):
        return True
    joined = "".join(words)
    if any(w in joined for w in ("email", "phone", "birth", "passport", "surname", "taxid", "ssn")):
        return True
    if ("tax" in words or "national" in words) and any(w in ("id", "number", "no", "insurance") for w in words):
        return True
    return "name" in words and any(w in _NAME_QUALIFIERS for w in words)


def check(manifests: Manifests, state: LoadState) -> None:
    org = manifests.of_kind("organizationConfig").get("organizationConfig")
    if org is not None:
        _auto_approval(org, state)
        _timezone(org, state)
    _account_currencies(manifests, org, state)
    _archived_currencies(manifests, org, state)
    _custom_fields(manifests, state)


def _auto_approval(org: DesiredObject, state: LoadState) -> None:
    """Seed: a bill recalculated after auto-approval reverts to pending when the grace period
    is under 24 hours and scheduled bill updates are on; 24 hours or more is recommended."""
    fields = org.fields
    period, unit, interval = (
        fields.get("autoApproveBillsGracePeriod"),
        fields.get("autoApproveBillsGracePeriodUnit"),
        fields.get("scheduledBillInterval"),
    )
    if not isinstance(period, int) or isinstance(period, bool) or unit not in _HOURS_PER_UNIT:
        return
    if not isinstance(interval, (int, float)) or isinstance(interval, bool) or interval <= 0:
        return
    hours = period * _HOURS_PER_UNIT[unit]
    if hours < 24:
        state.at_field(
            "warning",
            f"organization: autoApproveBillsGracePeriod: bills are auto-approved after {period} "
            f"{unit.lower()} while scheduled bill updates run every {interval:g} hours; a bill "
            "recalculated after approval (late usage data) reverts to pending. m3ter recommends "
            "24 hours or longer with scheduled bill updates",
            org,
            ("autoApproveBillsGracePeriod",),
        )


def _timezone(org: DesiredObject, state: LoadState) -> None:
    """Seed: ``Etc/GMT-1`` means UTC+1 (sign reversed); regional names are recommended."""
    timezone = org.fields.get("timezone")
    if not isinstance(timezone, str):
        return
    match = _ETC_GMT.match(timezone)
    if match:
        sign = "+" if match.group(1) == "-" else "-"
        state.at_field(
            "warning",
            f"organization: timezone: {timezone} is UTC{sign}{int(match.group(2)):02d}:00, not what it "
            "looks like (Etc/GMT names reverse the sign); m3ter strongly recommends a regional name "
            "such as Europe/Berlin, which also follows daylight saving time",
            org,
            ("timezone",),
            "value",
        )
    elif timezone in _NEWER_THAN_2021C:
        state.at_field(
            "warning",
            f"organization: timezone: {timezone} is newer than the tz database release 2021c that m3ter "
            f"offers; it may be refused (the older name is {_NEWER_THAN_2021C[timezone]})",
            org,
            ("timezone",),
            "value",
        )


def _grouped(
    state: LoadState, uses: dict[str, list[tuple[DesiredObject, tuple[str | int, ...]]]],
    message: Callable[[str, DesiredObject], str], prefer: str = "value",
) -> None:
    for code, places in uses.items():
        obj, path = places[0]
        others = len(places) - 1
        also = f" (and {others} more place{'s' if others != 1 else ''})" if others else ""
        state.at_field("warning", message(code, obj) + also, obj, path, prefer)


def _account_currencies(manifests: Manifests, org: DesiredObject | None, state: LoadState) -> None:
    """Bills fail for an account when no rate converts its plans' pricing currency into its
    billing currency. Checked when the manifests give both the organization currency and its
    conversion rates, taking the organization currency as the pricing currency (the common
    setup: price in one currency, bill each account in its own).

    The direction matters: m3ter converts *from* the pricing currency *to* the billing
    currency. Sources: the OpenAPI document's ``OrganizationConfigRequest.currencyConversions``
    ("conversion rates from pricing currency to billing currency"), ``AccountRequest.currency``
    ("convert line items calculated using the Plan currency into the selected billing
    currency"), and the seed page on currencies ("a conversion rate to convert a pricing
    currency you've used to the billing currency used for an Account"). So an account billed
    in EUR under a USD organization needs ``{from: USD, to: EUR}``; the reverse rate does not
    serve it, which the message says when only the reverse is given.
    """
    if org is None:
        return
    org_currency = org.fields.get("currency")
    conversions = org.fields.get("currencyConversions")
    if not isinstance(org_currency, str) or not isinstance(conversions, list):
        return
    rates = {
        (rate.get("from"), rate.get("to")) for rate in conversions if isinstance(rate, dict)
    }
    uses: dict[str, list[tuple[DesiredObject, tuple[str | int, ...]]]] = {}
    for account in manifests.of_kind("account").values():
        currency = account.fields.get("currency")
        if isinstance(currency, str) and currency != org_currency and (org_currency, currency) not in rates:
            uses.setdefault(currency, []).append((account, ("currency",)))

    def message(code: str, obj: DesiredObject) -> str:
        reverse = (
            f" (the rate from {code} to {org_currency} converts the other way and does not serve)"
            if (code, org_currency) in rates
            else ""
        )
        return (
            f"{describe(obj)}: currency: billed in {code}, but organization.currencyConversions has no "
            f"conversion from {org_currency} (the organization currency) to {code}{reverse}; m3ter converts "
            "each bill line item from its plan's pricing currency to the billing currency, so bills fail "
            f"for this account when its plans are priced in {org_currency}: add "
            f"{{from: {org_currency}, to: {code}, multiplier: ...}}"
        )

    _grouped(state, uses, message)


def _archived_currencies(manifests: Manifests, org: DesiredObject | None, state: LoadState) -> None:
    """Seed: an archived currency disappears from every Currency drop-down in the Console."""
    archived = {code for code, obj in manifests.of_kind("currency").items() if obj.fields.get("archived") is True}
    if not archived:
        return
    uses: dict[str, list[tuple[DesiredObject, tuple[str | int, ...]]]] = {}
    if org is not None:
        if org.fields.get("currency") in archived:
            uses.setdefault(org.fields["currency"], []).append((org, ("currency",)))
        conversions = org.fields.get("currencyConversions")
        for index, rate in enumerate(conversions if isinstance(conversions, list) else []):
            for side in ("from", "to"):
                if isinstance(rate, dict) and rate.get(side) in archived:
                    uses.setdefault(rate[side], []).append((org, ("currencyConversions", index, side)))
    for account in manifests.of_kind("account").values():
        if account.fields.get("currency") in archived:
            uses.setdefault(account.fields["currency"], []).append((account, ("currency",)))
    _grouped(
        state,
        uses,
        lambda code, obj: (
            f"{describe(obj)}: uses currency {code!r}, which these manifests archive; an archived "
            "currency is no longer offered in the Console's currency drop-downs"
        ),
    )


def _custom_fields(manifests: Manifests, state: LoadState) -> None:
    """Seeds: custom fields holding personal data (DPA: only name, address, emailAddress);
    contract defaults cannot be set at organization level; an account field without an
    organization-level default cannot be used in calculations."""
    org_fields = manifests.of_kind("customFields").get("customFields")
    declared: set[str] | None = None
    if org_fields is not None:
        for entity, names in org_fields.fields.items():
            if not isinstance(names, dict):
                continue
            if entity == "contract" and names:
                state.at_field(
                    "warning",
                    "customFields: contract: m3ter supports contract custom fields only on individual "
                    "contracts; organization-level defaults for contracts cannot be referenced in "
                    "calculations",
                    org_fields,
                    ("contract",),
                )
            for name in names:
                if isinstance(name, str) and looks_personal(name):
                    state.at_field(
                        "warning",
                        f"customFields: {entity}.{name}: the name suggests personal data; under m3ter's "
                        "Data Processing Agreement only an account's name, address and emailAddress may "
                        "hold end-customer personal data",
                        org_fields,
                        (entity, name),
                    )
        account_defaults = org_fields.fields.get("account")
        if isinstance(account_defaults, dict):
            declared = {str(k) for k in account_defaults}
    personal: dict[str, list[tuple[DesiredObject, tuple[str | int, ...]]]] = {}
    undeclared: dict[str, list[tuple[DesiredObject, tuple[str | int, ...]]]] = {}
    verdicts: dict[str, bool] = {}
    for account in manifests.of_kind("account").values():
        custom: Any = account.fields.get("customFields")
        if not isinstance(custom, dict):
            continue
        for name in custom:
            if not isinstance(name, str):
                continue
            verdict = verdicts.get(name)
            if verdict is None:
                verdict = verdicts[name] = looks_personal(name)
            if verdict:
                personal.setdefault(name, []).append((account, ("customFields", name)))
            if declared is not None and name not in declared:
                undeclared.setdefault(name, []).append((account, ("customFields", name)))
    _grouped(
        state,
        personal,
        lambda name, obj: (
            f"{describe(obj)}: customFields.{name}: the name suggests personal data; under m3ter's Data "
            "Processing Agreement only an account's name, address and emailAddress may hold "
            "end-customer personal data"
        ),
        "key",
    )
    _grouped(
        state,
        undeclared,
        lambda name, obj: (
            f"{describe(obj)}: customFields.{name}: no organization-level default in customFields.account; "
            "m3ter calculations can use an account's custom field only when it is also declared at "
            "organization level"
        ),
        "key",
    )
