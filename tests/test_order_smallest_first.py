"""``order._smallest_first`` (the sorted walk that keeps most changes out of a heap) must give
exactly the order of the plain algorithm: a heap of the free changes, smallest key first."""

from __future__ import annotations

import heapq

from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler.order import _smallest_first


def _heap_order(keys: dict[int, tuple[int, int, int]], before: dict[int, set[int]]) -> list[int]:
    waiting = {i: len(before.get(i, ())) for i in keys}
    after: dict[int, list[int]] = {}
    for i, firsts in before.items():
        for j in firsts:
            after.setdefault(j, []).append(i)
    heap = [keys[i] for i in keys if waiting[i] == 0]
    heapq.heapify(heap)
    order = []
    while heap:
        i = heapq.heappop(heap)[2]
        order.append(i)
        for k in after.get(i, ()):
            waiting[k] -= 1
            if waiting[k] == 0:
                heapq.heappush(heap, keys[k])
    return order


@st.composite
def _graphs(draw: st.DrawFn) -> tuple[dict[int, tuple[int, int, int]], dict[int, set[int]]]:
    n = draw(st.integers(0, 25))
    keys = {i: (draw(st.integers(0, 1)), draw(st.integers(0, 3)), i) for i in range(n)}
    before: dict[int, set[int]] = {}
    for i in range(n):
        # edges either way (a cycle leaves changes stuck: both must leave the same ones out)
        firsts = set(draw(st.lists(st.integers(0, n - 1), max_size=3))) - {i}
        if firsts:
            before[i] = firsts
    return keys, before


@settings(max_examples=600, deadline=None)
@given(_graphs())
def test_sorted_walk_is_the_heap_order(graph: tuple[dict[int, tuple[int, int, int]], dict[int, set[int]]]) -> None:
    keys, before = graph
    waiting = [len(before.get(i, ())) for i in range(len(keys))]
    after: dict[int, list[int]] = {}
    for i, firsts in before.items():
        for j in firsts:
            after.setdefault(j, []).append(i)
    assert _smallest_first(sorted(keys.values()), waiting, after, keys.__getitem__) == _heap_order(keys, before)


def test_a_change_waiting_for_a_larger_key_comes_after_it() -> None:
    keys = {0: (0, 0, 0), 1: (0, 0, 1), 2: (0, 1, 2)}
    waiting = [1, 0, 0]
    assert _smallest_first(sorted(keys.values()), waiting, {2: [0]}, keys.__getitem__) == [1, 2, 0]
