"""A valid API request body for each kind that the generic emulator tours exercise
(``test_emulator_conformance``): a kind added to the registry adds its sample here.

A sample is ``factory(need) -> body``; ``need(kind_name)`` creates a fresh object of
another kind (its own sample) and returns its id, for references by id, and ``unique()``
gives a code no other sample uses.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

Need = Callable[[str], str]
Body = dict[str, Any]

_counter = itertools.count(1)


def unique(prefix: str = "S") -> str:
    return f"{prefix}_{next(_counter)}"


SAMPLES: dict[str, Callable[[Need], Body]] = {
    "product": lambda need: {"code": unique("prod"), "name": "Product", "customFields": {"tier": "gold"}},
    "billGroupingKey": lambda need: {"code": unique("bgk"), "name": "Region", "exclusive": True},
    "meter": lambda need: {
        "code": unique("meter"),
        "name": "API requests",
        "productId": need("product"),
        "dataFields": [
            {"category": "MEASURE", "code": "requests", "name": "Requests", "unit": "{request}"},
            {"category": "WHERE", "code": "region", "name": "Region"},
        ],
        "derivedFields": [
            {"category": "MEASURE", "code": "kreq", "name": "Thousands", "unit": "k{request}",
             "calculation": "requests / 1000"},
        ],
        "customFields": {"team": "platform"},
    },
    "aggregation": lambda need: {
        "code": unique("agg"),
        "name": "Requests by region",
        "meterId": need("meter"),
        "targetField": "requests",
        "aggregation": "SUM",
        "unit": "requests",
        "rounding": "UP",
        "quantityPerUnit": 1000,
        "segmentedFields": ["region"],
        "segments": [{"region": "eu"}, {"region": "us"}],
        "defaultValue": 0,
    },
    "compoundAggregation": lambda need: {
        "code": unique("cagg"),
        "name": "Cost",
        "productId": need("product"),
        "calculation": "2 * 3",
        "unit": "units",
        "rounding": "NONE",
        "quantityPerUnit": 1,
        "evaluateNullAggregations": False,
    },
    # plans, plan groups and account plans (catalog issue): the account sample only serves
    # references (accounts are toured by hand)
    "account": lambda need: {"code": unique("acct"), "name": "Account", "emailAddress": "billing@acct.example"},
    "planTemplate": lambda need: {
        "code": unique("tmpl"), "name": "Monthly", "productId": need("product"), "currency": "USD",
        "billFrequency": "MONTHLY", "billFrequencyInterval": 1, "standingCharge": 10,
        "standingChargeInterval": 1, "standingChargeOffset": 0, "minimumSpend": 0, "customFields": {"tier": "gold"},
    },
    "plan": lambda need: {
        "code": unique("plan"), "name": "Standard", "planTemplateId": need("planTemplate"), "minimumSpend": 100,
        "standingChargeBillInAdvance": True,
    },
    "planGroup": lambda need: {"code": unique("group"), "name": "Bundle", "currency": "USD", "minimumSpend": 50},
    "pricing": lambda need: {
        "planId": need("plan"), "aggregationId": need("aggregation"), "startDate": "2024-01-01T00:00:00Z",
        "cumulative": True, "description": "API calls",
        "pricingBands": [{"lowerLimit": 0, "fixedPrice": 0, "unitPrice": 0.01},
                         {"lowerLimit": 1000, "fixedPrice": 0, "unitPrice": 0.005}],
    },
    "planGroupLink": lambda need: {"planGroupId": need("planGroup"), "planId": need("plan")},
    "accountPlan": lambda need: {
        "accountId": need("account"), "planId": need("plan"), "startDate": "2024-01-01T00:00:00Z",
        "endDate": "2025-01-01T00:00:00Z", "childBillingMode": "PARENT_BREAKDOWN", "code": unique("ap"),
    },
}
# Kinds the conformance tour covers by hand (their own richer sections).
TOURED_BY_HAND = frozenset(
    {"currency", "creditReason", "debitReason", "transactionType", "account", "organizationConfig", "customFields"}
)
