"""Exact comparison of numbers (issue 11 item 2): a config tool that cannot see a changed
number is unsafe, and one that shows binary floating-point noise as a change is noisy.

Integers (and integral floats) compare exactly; a pair holding a non-integer is equal
within 4 units in the last place of an IEEE double.
"""

from __future__ import annotations

import math
import textwrap
from pathlib import Path

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from reconciler.compare import MAX_ULPS, FieldDiff, numbers_equal, same, ulp_distance
from reconciler.nested_diff import diff_field
from tests.conftest import run_cli

NAN = float("nan")
INF = float("inf")


def steps(x: float, n: int) -> float:
    """``x`` moved ``n`` representable doubles towards +inf (towards -inf when negative)."""
    target = INF if n >= 0 else -INF
    for _ in range(abs(n)):
        x = math.nextafter(x, target)
    return x


def both_ways(a: object, b: object) -> bool:
    """Equality must not depend on which side is the manifest: check both and require agreement."""
    forward, backward = same(a, b), same(b, a)
    assert forward == backward, (a, b)
    return forward


# -- the examples -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("desired", "live"),
    [
        (1000000000, 1000000001),
        (4000000000, 4000000003),
        (1e-12, 2e-12),
        (0.1, 0.10000000001),
    ],
)
def test_the_reported_changes_are_seen(desired: float, live: float) -> None:
    assert not both_ways(desired, live)
    assert diff_field("n", desired, live) == [FieldDiff("n", live, desired)]


def test_float_round_trip_noise_is_not_a_change() -> None:
    assert both_ways(1.27, 1.2700000000000002)
    assert diff_field("multiplier", 1.27, 1.2700000000000002) == []


# -- integers ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("a", "b"),
    [
        (2**53, 2**53 + 1),
        (2**63 - 1, 2**63),
        (10**30, 10**30 + 1),
        (-(10**18), -(10**18) - 1),
        (0, 1),
        (-1, 1),
    ],
)
def test_large_and_negative_integers_differ_by_one(a: int, b: int) -> None:
    assert not both_ways(a, b)


def test_integer_spelled_as_float_is_the_same_number() -> None:
    assert both_ways(1, 1.0)
    assert both_ways(1000, 1e3)
    assert both_ways(-42, -42.0)
    assert both_ways(0, -0.0)
    assert both_ways(2**60, float(2**60))  # exactly representable
    assert both_ways(10**20, 1e20)  # 1e20 is exactly 100000000000000000000


def test_integral_floats_get_no_tolerance() -> None:
    assert not both_ways(1000000000, 1000000001.0)
    assert not both_ways(1e9, 1000000001)
    # 2**53 + 1 has no double; the int must not be rounded onto its neighbour to compare.
    assert not both_ways(2**53 + 1, float(2**53))
    assert not both_ways(2**60 + 1, float(2**60))
    # Adjacent doubles above 2**53 are different integers, so they differ too.
    assert not both_ways(float(2**60), steps(float(2**60), 1))
    assert not both_ways(1e300, steps(1e300, 1))


def test_integer_beyond_the_largest_double() -> None:
    assert not both_ways(10**400, 1.5)
    assert not both_ways(10**400, 1e308)
    assert not both_ways(10**400, INF)
    assert both_ways(10**400, 10**400)


# -- floats ------------------------------------------------------------------------------------


@pytest.mark.parametrize("x", [1.27, 0.1, -0.1, 1e-300, 5e-324, 3.5e-310, 123456.789, -2.5, 1e15 + 0.5])
def test_within_four_ulps_equal_five_differ(x: float) -> None:
    for n in range(1, MAX_ULPS + 1):
        assert both_ways(x, steps(x, n)), (x, n)
        assert both_ways(x, steps(x, -n)), (x, -n)
    assert not both_ways(x, steps(x, MAX_ULPS + 1))
    assert not both_ways(x, steps(x, -(MAX_ULPS + 1)))


def test_tiny_and_huge_floats() -> None:
    assert not both_ways(1e-300, 2e-300)
    assert not both_ways(1e-320, 1e-319)
    assert both_ways(5e-324, 1e-323)  # adjacent subnormals: one ULP apart
    assert not both_ways(1e308, 1.7e308)
    assert both_ways(1e-12, 1.0000000000000002e-12)


def test_across_zero_counts_ulps_through_zero() -> None:
    assert ulp_distance(0.0, -0.0) == 0
    assert ulp_distance(5e-324, -5e-324) == 2
    assert both_ways(0.0, -5e-324)  # 0 is an integer but -5e-324 is not: ULP rule
    assert both_ways(2 * 5e-324, -2 * 5e-324)
    assert not both_ways(3 * 5e-324, -3 * 5e-324)  # six steps apart


def test_negatives_and_exponent_forms() -> None:
    assert both_ways(-1.27, -1.2700000000000002)
    assert not both_ways(-1.27, 1.27)
    assert both_ways(1.5e3, 1500)
    assert both_ways(2.5e-3, 0.0025)
    assert not both_ways(1.0e-5, 1.0001e-5)
    assert both_ways(float("1E+2"), 100)


def test_nan_and_infinities() -> None:
    assert not both_ways(NAN, NAN)
    assert not both_ways(NAN, 1.0)
    assert both_ways(INF, INF)
    assert both_ways(-INF, -INF)
    assert not both_ways(INF, -INF)
    assert not both_ways(INF, 1.7976931348623157e308)  # one step below inf, yet not the same
    assert not both_ways(-INF, -1.7976931348623157e308)


def test_integer_near_a_non_integer() -> None:
    assert not both_ways(3, 3.5)
    assert not both_ways(1, 1.0000000001)
    assert both_ways(1, steps(1.0, 1))  # 1.0000000000000002 is not an integer: ULP rule
    assert both_ways(1, steps(1.0, -4))
    assert not both_ways(1, steps(1.0, 5))


def test_bool_is_not_a_number() -> None:
    assert not both_ways(True, 1)
    assert not both_ways(False, 0)
    assert not both_ways(True, 1.0)
    assert both_ways(True, True)
    assert not both_ways("1", 1)


def test_numbers_inside_structures() -> None:
    assert same({"m": 1.27, "n": 1000}, {"m": 1.2700000000000002, "n": 1000.0})
    assert not same({"n": 1000000000}, {"n": 1000000001})
    conversions = [{"from": "EUR", "to": "USD", "multiplier": 0.1}]
    assert not same(conversions, [{"from": "EUR", "to": "USD", "multiplier": 0.10000000001}], ordered=False)
    assert same(conversions, [{"from": "EUR", "to": "USD", "multiplier": 0.1 + 1e-17}], ordered=False)
    assert diff_field("cfg", {"x": 4000000000}, {"x": 4000000003}) == [FieldDiff("cfg.x", 4000000003, 4000000000)]


def test_numbers_equal_is_the_rule_same_uses() -> None:
    assert numbers_equal(1, 1.0) and not numbers_equal(2**53 + 1, float(2**53))


# -- properties --------------------------------------------------------------------------------

numbers = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False),
)
finite = st.floats(allow_nan=False, allow_infinity=False)


@given(numbers)
def test_reflexive(x: float) -> None:
    assert same(x, x)


@given(numbers, numbers)
def test_symmetric(a: float, b: float) -> None:
    assert same(a, b) == same(b, a)


@given(finite, st.integers(min_value=1, max_value=MAX_ULPS), st.sampled_from([1, -1]))
def test_up_to_four_ulps_is_the_same_non_integer(x: float, n: int, sign: int) -> None:
    y = steps(x, sign * n)
    assume(math.isfinite(y))
    assume(not (x.is_integer() and y.is_integer()))  # two integers compare exactly
    assert same(x, y) and same(y, x)


@given(finite, st.integers(min_value=MAX_ULPS + 1, max_value=MAX_ULPS + 50), st.sampled_from([1, -1]))
def test_five_ulps_or_more_differ(x: float, n: int, sign: int) -> None:
    y = steps(x, sign * n)
    assume(math.isfinite(y))
    assert not same(x, y) and not same(y, x)


@given(st.integers(), st.sampled_from([1, -1]))
def test_integers_differing_by_one_never_equal(n: int, d: int) -> None:
    assert not same(n, n + d)
    # nor when one of them is spelled as a float that holds it exactly
    if abs(n) <= 2**53:
        assert not same(float(n), n + d) and not same(n + d, float(n))


# -- through the CLI ---------------------------------------------------------------------------


def _plan(directory: Path, backend: str) -> tuple[int, str]:
    result = run_cli("plan", str(directory), "--backend", backend, "--detailed-exitcode")
    assert result.code in (0, 2), result.output
    return result.code, result.stdout


def _manifest(directory: Path, days: int, multiplier: str) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "org.yaml").write_text(
        textwrap.dedent(
            f"""\
            currencies:
              - {{code: USD, name: US Dollar}}
              - {{code: EUR, name: Euro}}
            organization:
              daysBeforeBillDue: 30
              currencyConversions:
                - {{from: EUR, to: USD, multiplier: {multiplier}}}
            accounts:
              - code: big
                name: Big Co
                emailAddress: billing@big.example
                daysBeforeBillDue: {days}
            """
        ),
        encoding="utf-8",
    )


def test_cli_plan_sees_a_changed_large_integer_and_a_changed_float(tmp_path: Path, local_backend: str) -> None:
    m = tmp_path / "m"
    _manifest(m, 1000000000, "0.1")
    applied = run_cli("apply", str(m), "--backend", local_backend, "--auto-approve")
    assert applied.code == 0, applied.output
    assert _plan(m, local_backend)[0] == 0

    _manifest(m, 1000000001, "0.1")
    code, out = _plan(m, local_backend)
    assert code == 2, out
    assert "daysBeforeBillDue: 1000000000 -> 1000000001" in out

    _manifest(m, 1000000000, "0.10000000001")
    code, out = _plan(m, local_backend)
    assert code == 2, out
    assert "0.10000000001" in out

    # the same numbers spelled differently are not changes
    _manifest(m, 1000000000, "1.0e-1")
    assert _plan(m, local_backend)[0] == 0
