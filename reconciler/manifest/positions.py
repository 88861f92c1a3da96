"""Positions and YAML-level problems: shared by the event builder, ``${}`` expansion and the
loader without importing PyYAML, which a file read by the fast path never needs."""

from __future__ import annotations

from dataclasses import dataclass

# Position (line, column), both 1-based.
Pos = tuple[int, int]


@dataclass(slots=True)
class Problem:
    """A complaint about the YAML text, before any manifest meaning is applied."""

    message: str
    line: int
    column: int
