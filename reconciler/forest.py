"""Cycles in a child -> parent map: one walk for the manifests' own parent cycles
(validation) and for the end state of a plan over live and manifests (ordering)."""

from __future__ import annotations

from collections.abc import Mapping


def find_cycles(parent: Mapping[str, str | None]) -> list[list[str]]:
    """Every cycle in a child -> parent map, each once, starting at its smallest code."""
    state: dict[str, int] = {}  # 1: on the current walk, 2: done
    cycles: list[list[str]] = []
    for start in parent:
        if start in state:
            continue
        walk: list[str] = []
        node: str | None = start
        while node is not None and node not in state:
            state[node] = 1
            walk.append(node)
            node = parent.get(node)
        if node is not None and state.get(node) == 1:
            cycle = walk[walk.index(node):]
            low = cycle.index(min(cycle))
            cycles.append(cycle[low:] + cycle[:low])
        for n in walk:
            state[n] = 2
    return cycles
