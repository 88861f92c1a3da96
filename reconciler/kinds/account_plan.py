"""``accountPlans:`` — an account on a plan (or plan group) from a start date, written under
the account (``accounts: - code: A ... accountPlans: [{plan: P, startDate: ...}]``) or at top
level with ``account: CODE`` (openapi-full.json, AccountPlanRequest).

Identity: the ``code`` when one is given, else account + plan (or plan group) + startDate.
``startDate``/``endDate`` are written exactly as m3ter answers them, UTC with whole seconds
(``2024-01-01T00:00:00Z``), so what is read back compares equal to what was written.
"""

from __future__ import annotations

from typing import Any, Literal

from reconciler.kinds.base import Kind, Nesting, Reference
from reconciler.kinds.fields import (
    DATE_TIME_RE,
    ENTITY_CODE_SPEC,
    AccountCode,
    CodeRef,
    CustomFields,
    IsoDate,
    Strict,
    UtcDateTime,
)
from reconciler.kinds.spec import CUSTOM_FIELDS, UUID, Spec

ChildBillingMode = Literal["PARENT_SUMMARY", "PARENT_BREAKDOWN", "CHILD"]  # openapi-full.json, ChildBillingMode


class AccountPlan(Strict):
    """``accountPlans:`` — ``account`` on ``plan`` or ``planGroup`` (exactly one, by code) from
    ``startDate`` until ``endDate`` (open-ended without one)."""

    code: AccountCode | None = None
    account: CodeRef
    plan: CodeRef | None = None
    planGroup: CodeRef | None = None
    startDate: UtcDateTime
    endDate: UtcDateTime | None = None
    billEpoch: IsoDate | None = None
    childBillingMode: ChildBillingMode | None = None
    customFields: CustomFields | None = None


# openapi-full.json, AccountPlanRequest (required: accountId, startDate).
REQUEST_SPEC: dict[str, Spec] = {
    "code": ENTITY_CODE_SPEC,
    "accountId": Spec("string", required=True, min_length=36, max_length=36),
    "planId": UUID,
    "planGroupId": UUID,
    "startDate": Spec("string", required=True, fmt="date-time"),
    "endDate": Spec("string", fmt="date-time"),
    "billEpoch": Spec("string", fmt="date"),
    "contractId": UUID,
    "childBillingMode": Spec("string", enum=("PARENT_SUMMARY", "PARENT_BREAKDOWN", "CHILD")),
    "customFields": CUSTOM_FIELDS,
}


def _end_after_start_body(body: dict[str, Any]) -> str | None:
    """An account plan ends after it starts (both normalised to the same UTC form)."""
    start, end = body.get("startDate"), body.get("endDate")
    if isinstance(start, str) and isinstance(end, str) and end <= start:
        return "endDate: must be after startDate"
    return None


def _valid_dates(fields: dict[str, Any]) -> tuple[str, str | None] | None:
    start, end = fields.get("startDate"), fields.get("endDate")
    if not isinstance(start, str) or DATE_TIME_RE.fullmatch(start) is None:
        return None
    if end is not None and (not isinstance(end, str) or DATE_TIME_RE.fullmatch(end) is None):
        return None
    return start, end


def _end_after_start(manifests: Any, state: Any) -> None:
    """``endDate`` after ``startDate`` (the plan "ceases to be active" at its end date, which
    cannot come before it became active). Exactly one of ``plan`` / ``planGroup``
    (AccountPlanRequest: "exactly one of planId or planGroupId must be used per call") is the
    registry's ``plan|planGroup`` identity part, checked for every kind by the loader."""
    for obj in manifests.of_kind("accountPlan").values():
        dates = _valid_dates(obj.fields)
        if dates is not None and dates[1] is not None and dates[1] <= dates[0]:
            state.at_field("error", f"{state.describe(obj)}: endDate {dates[1]} must be after startDate {dates[0]}",
                           obj, ("endDate",))


def _product_of_plan(manifests: Any, plan_code: Any) -> str | None:
    """The product a plan is for, when the manifests say it (plan -> planTemplate -> product)."""
    plan = manifests.of_kind("plan").get(plan_code) if isinstance(plan_code, str) else None
    template_code = plan.fields.get("planTemplate") if plan is not None else None
    template = manifests.of_kind("planTemplate").get(template_code) if isinstance(template_code, str) else None
    product = template.fields.get("product") if template is not None else None
    return product if isinstance(product, str) else None


def _no_overlap_on_a_product(manifests: Any, state: Any) -> None:
    """An account's plans for one product must not be in effect at the same time, unless the
    organization allows it.

    Source: openapi-full.json, OrganizationConfigRequest.allowOverlappingPlans: "FALSE -
    multiple overlapping plans for the same product cannot be attached to the same Account
    (*Default*)". Checked offline where the manifests say which product a plan is for (plan ->
    planTemplate -> product); skipped when ``organization.allowOverlappingPlans: true`` is in
    the manifests. Periods are half-open (``endDate`` is when a plan "ceases to be active"), so
    one plan may start at the instant the other ends.
    """
    org = manifests.of_kind("organizationConfig").get("organizationConfig")
    if org is not None and org.fields.get("allowOverlappingPlans") is True:
        return
    spans: dict[tuple[str, str], list[tuple[str, str | None, Any]]] = {}
    for obj in manifests.of_kind("accountPlan").values():
        account = obj.fields.get("account")
        product = _product_of_plan(manifests, obj.fields.get("plan"))
        dates = _valid_dates(obj.fields)
        if not isinstance(account, str) or product is None or dates is None:
            continue
        spans.setdefault((account, product), []).append((dates[0], dates[1], obj))
    for (account, product), items in spans.items():
        items.sort(key=lambda item: item[0])
        for i, (start, end, obj) in enumerate(items):
            for other_start, other_end, other in items[i + 1:]:
                if end is not None and other_start >= end:
                    break  # sorted by start: no later one overlaps this one either
                state.at_field(
                    "error",
                    f"{state.describe(other)}: account {account!r} would be on two plans for product {product!r} "
                    f"at once: this one from {other_start}"
                    + (f" to {other_end}" if other_end else " (open-ended)")
                    + f" overlaps {state.describe(obj)} at {obj.location} from {start}"
                    + (f" to {end}" if end else " (open-ended)")
                    + "; end the earlier one first, or set organization.allowOverlappingPlans: true "
                    "(m3ter API, OrganizationConfigRequest.allowOverlappingPlans)",
                    other, ("startDate",))


KIND = Kind(
    name="accountPlan",
    title="account plan",
    manifest_key="accountPlans",
    api_path="accountplans",
    model=AccountPlan,
    identity=("account", "plan|planGroup", "startDate"),
    code_first=True,
    nested_in=(Nesting(host="account", field="accountPlans", reference="account"),),
    deletable=True,
    page_size=100,
    codes_filter=False,  # GET /accountplans filters by account, plan, product, contract, date
    # Without includeall=true only the plans in effect today are listed (ListAccountPlans).
    list_params=(("includeall", "true"),),
    references=(
        # DELETE /accounts/{id}: "This may fail if there are any AccountPlans that reference
        # the Account being deleted."
        Reference("account", "account", api_path="accountId", by_id=True,
                  hint="delete the account plan too (ending it is not enough)"),
        Reference("plan", "plan", api_path="planId", by_id=True,
                  hint="move the account to another plan, or delete the account plan too"),
        Reference("planGroup", "planGroup", api_path="planGroupId", by_id=True,
                  hint="move the account to another plan group, or delete the account plan too"),
    ),
    delete_needs_flag=True,
    delete_warning=(
        "deleting an account plan takes the plan off the account for the whole period it covered, "
        "past included: charges under it are no longer calculated, and bills that are not yet locked "
        "change when recalculated; to stop billing from a date, set endDate instead"
    ),
    request_spec=REQUEST_SPEC,
    body_rules=(_end_after_start_body,),
    checks=(_end_after_start, _no_overlap_on_a_product),
)
