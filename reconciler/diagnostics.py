"""Problems found in manifests or plans, each pointing at a place a person can open.

Every user-facing complaint goes through :class:`Diagnostic` so that the CLI can print
them uniformly as ``FILE:LINE:COL: message`` and sort errors before warnings.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Severity = Literal["error", "warning"]


@dataclass(frozen=True, slots=True)
class Location:
    """A 1-based line and column in a manifest file."""

    file: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


@dataclass(frozen=True, slots=True)
class Diagnostic:
    severity: Severity
    message: str
    location: Location | None = None

    @property
    def is_error(self) -> bool:
        return self.severity == "error"

    def format(self) -> str:
        """``FILE:LINE:COL: error: message`` (or without the place when there is none)."""
        where = f"{self.location}: " if self.location else ""
        return f"{where}{self.severity}: {self.message}"


def error(message: str, location: Location | None = None) -> Diagnostic:
    return Diagnostic("error", message, location)


def warning(message: str, location: Location | None = None) -> Diagnostic:
    return Diagnostic("warning", message, location)


def sort_key(d: Diagnostic) -> tuple[int, str, int, int, str]:
    """Errors first, then by file and position, so output is stable across runs."""
    loc = d.location
    return (
        0 if d.is_error else 1,
        loc.file if loc else "",
        loc.line if loc else 0,
        loc.column if loc else 0,
        d.message,
    )


class ReconcilerError(Exception):
    """An error with a message fit for a person; the CLI prints it and exits 1, never a traceback."""
