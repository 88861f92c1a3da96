"""Shared value formatting for the human-readable renderers."""

from __future__ import annotations

import json
from typing import Any

from reconciler.render.document import REDACTED

MAX_VALUE_CHARS = 120


def show(value: Any) -> str:
    """A compact, unambiguous rendering of one value (strings quoted, JSON for the rest)."""
    if value == REDACTED:
        return REDACTED
    if value is None:
        return "(none)"
    text = json.dumps(value, ensure_ascii=False, sort_keys=True)
    if len(text) > MAX_VALUE_CHARS:
        text = text[: MAX_VALUE_CHARS - 1] + "…"
    return text


def summary_line(summary: dict[str, int], *, uncounted: list[str] | None = None) -> str:
    """``Plan: 2 to create, 1 to update, 0 to archive, 1 to delete; 40 unchanged, 3 unmanaged.``"""
    parts = [f"{summary['create']} to create", f"{summary['update']} to update", f"{summary['archive']} to archive"]
    if summary.get("unarchive"):
        parts.append(f"{summary['unarchive']} to unarchive")
    parts.append(f"{summary['delete']} to delete")
    unmanaged = f"{summary['unmanaged']} unmanaged"
    if uncounted:
        unmanaged += f" (not counted for {', '.join(uncounted)})"
    return f"Plan: {', '.join(parts)}; {summary['unchanged']} unchanged, {unmanaged}."


MARKERS = {"create": "+", "update": "~", "archive": "-", "unarchive": "~", "delete": "-"}
