"""``find_cycles``: every cycle of a child -> parent map once, in the order walks meet them.

The loader runs it over every account on each load, so it was rewritten for speed (one mark
per node); this holds it to a plain reference over random maps, dangling parents included."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from reconciler.forest import find_cycles


def _reference(parent: dict[str, str | None]) -> list[list[str]]:
    """From each node in map order, follow parents; the first time a path runs into a cycle
    not reported yet, report it, rotated to start at its smallest node."""
    reported: set[str] = set()
    out: list[list[str]] = []
    for start in parent:
        path: list[str] = []
        node: str | None = start
        while node is not None and node in parent and node not in path:
            path.append(node)
            node = parent[node]
        if node is None or node not in path or node in reported:
            continue
        cycle = path[path.index(node):]
        reported.update(cycle)
        low = cycle.index(min(cycle))
        out.append(cycle[low:] + cycle[:low])
    return out


_NODES = [str(n) for n in range(10)]


@given(st.dictionaries(st.sampled_from(_NODES), st.one_of(st.none(), st.sampled_from([*_NODES, "gone"]))))
def test_find_cycles_matches_the_plain_walk(parent: dict[str, str | None]) -> None:
    assert find_cycles(parent) == _reference(parent)


def test_self_loops_and_two_cycles_behind_a_tail() -> None:
    parent: dict[str, str | None] = {"t": "b", "b": "c", "c": "b", "s": "s", "r": None, "q": "gone"}
    assert find_cycles(parent) == [["b", "c"], ["s"]]
