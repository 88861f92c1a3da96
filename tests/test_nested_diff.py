"""The keyed diff inside fields (issue 14 item 4): changes named per list item, map key and
nested field, with the plan's own number rules, and never a change the whole-value
comparison does not see (nor a change it sees left unreported)."""

from __future__ import annotations

from typing import Any

import pytest

from reconciler import kinds
from reconciler.compare import FieldDiff, same
from reconciler.nested_diff import diff_field, top_field
from reconciler.plan import LiveState, diff_body

IDS = {"currencyConversions": ("from", "to")}


def conv(frm: str, to: str, multiplier: Any = None) -> dict[str, Any]:
    out: dict[str, Any] = {"from": frm, "to": to}
    if multiplier is not None:
        out["multiplier"] = multiplier
    return out


def diff(desired: Any, live: Any, **kw: Any) -> list[tuple[str, Any, Any]]:
    kw.setdefault("identities", IDS)
    kw.setdefault("ordered", False)
    return [(d.path, d.before, d.after) for d in diff_field("currencyConversions", desired, live, **kw)]


def test_a_changed_rate_is_named_by_its_pair() -> None:
    live = [conv("USD", "EUR", 0.92), conv("GBP", "USD", 1.27)]
    desired = [conv("GBP", "USD", 1.28), conv("USD", "EUR", 0.92)]
    assert diff(desired, live) == [("currencyConversions[GBP→USD].multiplier", 1.27, 1.28)]


def test_added_and_removed_items_are_one_entry_each() -> None:
    live = [conv("GBP", "USD", 1.27), conv("CAD", "USD", 0.73)]
    desired = [conv("GBP", "USD", 1.27), conv("JPY", "USD", 0.0067)]
    assert diff(desired, live) == [
        ("currencyConversions[JPY→USD]", None, conv("JPY", "USD", 0.0067)),
        ("currencyConversions[CAD→USD]", conv("CAD", "USD", 0.73), None),
    ]


def test_a_multiplier_left_out_is_a_removed_field_of_the_item() -> None:
    assert diff([conv("EUR", "USD")], [conv("EUR", "USD", 1.08)]) == [
        ("currencyConversions[EUR→USD].multiplier", 1.08, None)
    ]


def test_order_of_an_unordered_list_is_not_a_change() -> None:
    live = [conv("A", "B", 1), conv("C", "D", 2)]
    assert diff(list(reversed(live)), live) == []


@pytest.mark.parametrize(
    ("before", "after"),
    [
        (1.27, 1.2700000000000002),  # read back through binary floating point: the same rate
        (1, 1.0),  # numbers compare by value
        (1.27, 1.28),
        (1000000000, 1000000001),
        (0.1, 0.10000000001),
        (0.926, 0.9260000000000001),
    ],
)
def test_numbers_follow_the_plans_exact_rules(before: float, after: float) -> None:
    """Whatever ``compare.same`` says about two numbers, the nested diff says too: a change
    exactly when same() sees one, named at the item's field."""
    found = diff([conv("GBP", "USD", after)], [conv("GBP", "USD", before)])
    if same(after, before):
        assert found == []
    else:
        assert found == [("currencyConversions[GBP→USD].multiplier", before, after)]


def test_clear_number_changes_are_changes_and_equal_values_are_not() -> None:
    assert diff([conv("GBP", "USD", 1.28)], [conv("GBP", "USD", 1.27)])
    assert diff([conv("GBP", "USD", 1)], [conv("GBP", "USD", 1.0)]) == []
    assert diff([conv("GBP", "USD", 1.27)], [conv("GBP", "USD", 1.2700000000000002)]) == []


def test_duplicate_or_missing_identities_report_the_whole_list() -> None:
    live = [conv("A", "B", 1)]
    dup = [conv("A", "B", 1), conv("A", "B", 2)]
    assert diff(dup, live) == [("currencyConversions", live, dup)]
    no_id = [{"from": "A", "multiplier": 1}]
    assert diff(no_id, live) == [("currencyConversions", live, no_id)]


def test_an_ordered_list_with_identity_reports_a_reordering_whole() -> None:
    a, b = conv("A", "B", 1), conv("C", "D", 2)
    assert diff([b, a], [a, b], ordered=True) == [("currencyConversions", [a, b], [b, a])]
    assert diff([a, conv("C", "D", 3)], [a, b], ordered=True) == [("currencyConversions[C→D].multiplier", 2, 3)]


def test_lists_without_identity_stay_whole_and_keep_their_order_rule() -> None:
    assert diff_field("creditApplicationOrder", ["BALANCE", "PREPAYMENT"], ["PREPAYMENT", "BALANCE"],
                      ordered=True) == [FieldDiff("creditApplicationOrder", ["PREPAYMENT", "BALANCE"],
                                                  ["BALANCE", "PREPAYMENT"])]
    assert diff_field("tags", ["b", "a"], ["a", "b"], ordered=False) == []


def test_maps_and_nested_objects_are_named_key_by_key() -> None:
    live = {"tier": "gold", "seats": 5, "old": "x", "nested": {"a": 1, "b": 2}}
    desired = {"tier": "platinum", "seats": 5.0, "nested": {"a": 1, "b": 3}}
    assert [(d.path, d.before, d.after) for d in diff_field("customFields", desired, live)] == [
        ("customFields.tier", "gold", "platinum"),
        ("customFields.nested.b", 2, 3),
        ("customFields.old", "x", None),
    ]


def test_nested_lists_with_identity_use_the_item_shape() -> None:
    ids = {"pricings": ("code",), "pricings[].bands": ("lowerLimit",)}
    live = [{"code": "p1", "bands": [{"lowerLimit": 0, "price": 1}, {"lowerLimit": 100, "price": 0.5}]}]
    desired = [{"code": "p1", "bands": [{"lowerLimit": 0, "price": 1}, {"lowerLimit": 100, "price": 0.4}]}]
    assert [(d.path, d.before, d.after) for d in diff_field("pricings", desired, live, identities=ids)] == [
        ("pricings[p1].bands[100].price", 0.5, 0.4)
    ]


@pytest.mark.parametrize(
    ("desired", "live"),
    [
        ([conv("A", "B", 1)], None),
        ([], [conv("A", "B", 1)]),
        ([conv("A", "B", 1), conv("C", "D", 2)], [conv("C", "D", 2.5), conv("E", "F", 1)]),
        ([conv("A", "B", {"x": 1})], [conv("A", "B", {"x": 2})]),
        ("not a list", [conv("A", "B", 1)]),
    ],
)
def test_a_change_is_reported_exactly_when_the_whole_value_differs(desired: Any, live: Any) -> None:
    found = diff(desired, live)
    assert bool(found) == (not same(desired, live, ordered=False))


def test_top_field() -> None:
    assert top_field("currencyConversions[GBP→USD].multiplier") == "currencyConversions"
    assert top_field("address.locality") == "address"
    assert top_field("name") == "name"


def test_diff_body_names_conversions_of_the_organization_config() -> None:
    """The planner's one diff function (also used to re-check saved plans) names items."""
    kind = kinds.get("organizationConfig")
    live = {"id": "x", "version": 3, "currency": "USD", "currencyConversions": [conv("GBP", "USD", 1.27)]}
    body = {"version": 3, "currency": "USD",
            "currencyConversions": [conv("GBP", "USD", 1.28), conv("JPY", "USD", 0.0067)]}
    assert diff_body(kind, body, live, LiveState({})) == [
        FieldDiff("currencyConversions[GBP→USD].multiplier", 1.27, 1.28),
        FieldDiff("currencyConversions[JPY→USD]", None, conv("JPY", "USD", 0.0067)),
    ]
