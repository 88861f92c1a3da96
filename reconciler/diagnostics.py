"""Problems found in manifests or plans, each pointing at a place a person can open.

Every user-facing complaint goes through :class:`Diagnostic` so that the CLI can print
them uniformly as ``FILE:LINE:COL: message`` and sort errors before warnings. A message
about a whole file (not a regular file, too large) has line 0 and prints as ``FILE: ...``.

Messages hold exact text (file names and values as they are, so JSON output and tests see
the truth); :meth:`Diagnostic.display` is what people read, through ``safe()``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from reconciler.safetext import safe

Severity = Literal["error", "warning"]


@dataclass(frozen=True, slots=True)
class Location:
    """A 1-based line and column in a manifest file; line 0 names the whole file."""

    file: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}" if self.line else self.file


def whole_file(file: str) -> Location:
    """The location of a problem with a file itself rather than with something in it."""
    return Location(file, 0, 0)


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

    def display(self) -> str:
        """:meth:`format` as shown to people: a file name or value holding control or bidi
        characters appears escaped, so it cannot rewrite the terminal or the line."""
        return safe(self.format())


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
