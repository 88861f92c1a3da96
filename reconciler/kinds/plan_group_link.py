"""``planGroupLinks:`` — a plan's membership of a plan group. Manifests usually write them as
the group's ``plans: [CODE, ...]``; a link has no code: it is known by its group and plan
(openapi-full.json, PlanGroupLinkRequest: required planGroupId, planId)."""

from __future__ import annotations

from reconciler.kinds.base import Kind, Nesting, Reference
from reconciler.kinds.fields import CodeRef, Strict
from reconciler.kinds.spec import Spec


class PlanGroupLink(Strict):
    """``planGroupLinks:`` — plan ``plan`` in plan group ``planGroup`` (both by code)."""

    planGroup: CodeRef
    plan: CodeRef


KIND = Kind(
    name="planGroupLink",
    title="plan group link",
    manifest_key="planGroupLinks",
    api_path="plangrouplinks",
    model=PlanGroupLink,
    identity=("planGroup", "plan"),
    nested_in=(Nesting(host="planGroup", field="plans", reference="planGroup", scalar="plan"),),
    deletable=True,
    page_size=100,
    codes_filter=False,  # GET /plangrouplinks filters by planGroup and plan ids, not codes
    list_filters={"planGroup": "planGroupId", "plan": "planId"},
    references=(
        Reference("planGroup", "planGroup", api_path="planGroupId", by_id=True,
                  hint="remove the plan from the plan group's plans (and prune planGroupLinks)"),
        Reference("plan", "plan", api_path="planId", by_id=True,
                  hint="remove the plan from the plan group's plans (and prune planGroupLinks)"),
    ),
    request_spec={
        "planGroupId": Spec("string", required=True, min_length=1),
        "planId": Spec("string", required=True, min_length=1),
    },
)
