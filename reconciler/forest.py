"""Cycles in a child -> parent map: one walk for the manifests' own parent cycles
(validation) and for the end state of a plan over live and manifests (ordering)."""

from __future__ import annotations

from collections.abc import Mapping


def find_cycles(parent: Mapping[str, str | None]) -> list[list[str]]:
    """Every cycle in a child -> parent map, each once, starting at its smallest code.

    Each node is marked once, with the number of the walk that reached it: a walk that
    meets its own number has closed a cycle; one that meets an earlier number joins a path
    already walked (one dict write per node: at 100k accounts this runs on every load)."""
    walk_of: dict[str, int] = {}
    cycles: list[list[str]] = []
    get = parent.get
    for number, start in enumerate(parent):
        if start in walk_of:
            continue
        node: str | None = start
        while node is not None and node not in walk_of:
            walk_of[node] = number
            node = get(node)
        if node is not None and walk_of[node] == number:
            cycle = [node]
            step = get(node)
            while step != node:
                assert step is not None
                cycle.append(step)
                step = get(step)
            low = cycle.index(min(cycle))
            cycles.append(cycle[low:] + cycle[:low])
    return cycles
