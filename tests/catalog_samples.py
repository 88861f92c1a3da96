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
}
# Kinds the conformance tour covers by hand (their own richer sections).
TOURED_BY_HAND = frozenset(
    {"currency", "creditReason", "debitReason", "transactionType", "account", "organizationConfig", "customFields"}
)
