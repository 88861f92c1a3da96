"""The planner's quick check (``_Planner._same``) is tuned for 100k-object plans: its per-field
rules are worked out once per kind and ``compare.same`` is inlined for plain values. These
properties hold it to the rules spelled out plainly, field by field, on random values where
Python's ``==`` and the plan's rules disagree (``True == 1``, ``1 == 1.0``, ``None`` against
empty values, NaN, nested maps and lists). That it never says "same" where the update body
would change something is the end-to-end properties' business (``test_properties.py``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler import kinds
from reconciler.compare import same
from reconciler.kinds import Kind
from reconciler.manifest.settings import Settings
from reconciler.manifest.types import Manifests
from reconciler.plan import LiveState, _code_of, _Planner

ACCOUNT = kinds.get("account")

_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-3, max_value=3),
    st.integers(),
    st.sampled_from([0.0, 1.0, -0.0, 1.5, 1.27, 1.2700000000000002, float("nan"), float("inf")]),
    st.floats(),
    st.sampled_from(["", "a", "GBP", "p"]),
)
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(st.sampled_from(["a", "b", "locality", "tier"]), inner, max_size=3),
    ),
    max_leaves=8,
)
_NAMES = ["code", "name", "address", "customFields", "parent", "creditApplicationOrder", "archived",
          "currency", "daysBeforeBillDue", "a.b"]
_IGNORABLE = ["name", "address", "address.locality", "customFields.tier", "parent", "creditApplicationOrder",
              "a.b.c", "a", "currency"]
# live accounts a ``parentAccountId`` can name (by id), and codes a ``parent`` can name
_LIVE_PARENTS = [{"id": "id-p", "code": "p"}, {"id": "id-q", "code": "q"}]


def _alike(value: Any) -> st.SearchStrategy[Any]:
    """Values that are equal to ``value`` under ``==`` or under the plan's rules, or nearly:
    where a quick test on one of them could be wrong."""
    options: list[Any] = [value]
    if isinstance(value, bool):
        options += [int(value), float(value)]
    elif isinstance(value, int):
        options += [float(value), value + 1]
        if value in (0, 1):
            options.append(bool(value))
    elif isinstance(value, float):
        options += [value * (1 + 2.2e-16), value + 1]
        if value == value and value.is_integer() and abs(value) < 2**53:
            options.append(int(value))
    elif value is None:
        options += ["", [], {}]
    elif isinstance(value, dict):
        return st.one_of(
            st.just(dict(value)),
            st.fixed_dictionaries({k: _alike(v) for k, v in value.items()}),
            st.fixed_dictionaries({k: _alike(v) for k, v in value.items()}).map(lambda d: {**d, "extra": None}),
            st.fixed_dictionaries({k: _alike(v) for k, v in value.items()}).map(lambda d: {**d, "extra": 1}),
        )
    elif isinstance(value, list):
        return st.one_of(
            st.just(list(value)),
            st.just(list(reversed(value))),
            st.tuples(*[_alike(v) for v in value]).map(list),
        )
    return st.sampled_from(options)


@st.composite
def _cases(draw: st.DrawFn) -> tuple[tuple[str, ...], dict[str, Any], dict[str, Any]]:
    ignored = tuple(draw(st.lists(st.sampled_from(_IGNORABLE), max_size=2, unique=True)))
    desired: dict[str, Any] = {}
    live: dict[str, Any] = {"id": "id-x", "version": 3}
    for name in draw(st.lists(st.sampled_from(_NAMES), max_size=6, unique=True)):
        if name == "code":  # the key the live object was matched by
            desired[name] = live[name] = "x"
            continue
        if name == "parent":
            desired[name] = draw(st.sampled_from(["p", "q", "id-p", "", None, 1]))
            live["parentAccountId"] = draw(st.sampled_from(["id-p", "id-q", "id-z", "p", "", None, 1,
                                                            {"$ref": {"kind": "account", "code": "p"}}]))
            continue
        value = draw(_VALUES)
        desired[name] = value
        choice = draw(st.integers(0, 3))
        if choice < 3:
            live[name] = draw(_alike(value))
        elif choice == 3 and draw(st.booleans()):
            live[name] = draw(_VALUES)  # else: absent live
    for name in draw(st.lists(st.sampled_from(["name", "extra", "customFields"]), max_size=2, unique=True)):
        live.setdefault(name, draw(_VALUES))
    return ignored, desired, live


def _planner(ignored: tuple[str, ...]) -> _Planner:
    manifests = Manifests(objects={name: {} for name in kinds.KIND_NAMES},
                          settings=Settings.model_validate({"ignoreFields": {"account": list(ignored)}}))
    return _Planner(manifests, LiveState({"account": [dict(e) for e in _LIVE_PARENTS]}))


def _same_by_the_rules(planner: _Planner, kind: Kind, desired: Mapping[str, Any], live: Mapping[str, Any]) -> bool:
    """``_Planner._same`` written plainly: one field at a time, each rule in its order."""
    ignored = planner.ignored_by_kind[kind.name]
    for name, value in desired.items():
        live_value = live.get(name)
        plainly_equal = type(value) in (str, int, bool) and type(live_value) is type(value) and value == live_value
        if name == "code" or (plainly_equal and name not in kind.renamed_by_path):
            continue
        if any(path == name or path.startswith(name + ".") for path in ignored):
            return False  # the body decides
        ref = kind.renamed_by_path.get(name)
        if ref is not None:
            if value != _code_of(ref, live.get(ref.api_path), planner.live):
                return False
        elif name in kind.partial_fields and isinstance(value, Mapping):
            sub = live_value if isinstance(live_value, Mapping) else {}
            if not all(same(v, sub.get(k)) for k, v in value.items()):
                return False
        elif not same(value, live_value, ordered=name in kind.ordered_lists):
            return False
    return True


@settings(max_examples=1500, deadline=None)
@given(_cases())
def test_quick_check_follows_the_rules(case: tuple[tuple[str, ...], dict[str, Any], dict[str, Any]]) -> None:
    ignored, desired, live = case
    planner = _planner(ignored)
    assert planner._same(ACCOUNT, desired, live) == _same_by_the_rules(planner, ACCOUNT, desired, live)


def test_quick_check_examples() -> None:
    planner = _planner(("address.region",))
    live = {"id": "i", "code": "a", "archived": 1, "n": 1.0, "address": {"region": "x", "locality": "L"},
            "customFields": {"tier": True, "seats": None}, "parentAccountId": "id-p"}
    assert not planner._same(ACCOUNT, {"archived": True}, live)  # a bool is not a number
    assert planner._same(ACCOUNT, {"n": 1}, live)  # 1 == 1.0 is the same number
    assert not planner._same(ACCOUNT, {"customFields": {"tier": 1}}, live)
    assert planner._same(ACCOUNT, {"customFields": {"tier": True}}, live)  # a None live key is absent
    assert planner._same(ACCOUNT, {"parent": "p"}, live)
    assert not planner._same(ACCOUNT, {"parent": "id-p"}, live)
    assert planner._same(ACCOUNT, {"address": {"locality": "L"}}, live) is False  # address.region ignored
    assert planner._same(ACCOUNT, {"missing": None, "code": "other"}, live)
