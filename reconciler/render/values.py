"""Shared value formatting for the human-readable renderers."""

from __future__ import annotations

import json
import re
from json.encoder import encode_basestring
from typing import Any

from reconciler import kinds
from reconciler.render.document import REDACTED
from reconciler.safetext import safe, visible

MAX_VALUE_CHARS = 120
_SHOW = json.JSONEncoder(ensure_ascii=False, sort_keys=True)
_encode_string = encode_basestring  # what _SHOW.encode does with a str
# An escape cut by truncation (``\u20`` of ``\u202e``, the first ``\`` of ``\\``): dropped
# so the shortened value never ends in something that reads as a different character.
_CUT_ESCAPE = re.compile(r"(?<!\\)((?:\\\\)*)\\(?:u[0-9a-fA-F]{0,3}|U[0-9a-fA-F]{0,7})?$")


def show(value: Any) -> str:
    """A compact, unambiguous rendering of one value (strings quoted, JSON for the rest),
    safe to print: JSON escapes controls and backslashes, :func:`visible` the bidi and other
    invisible code points JSON leaves raw. Callers must not pass the result through
    ``safe()`` again (its backslashes are escapes already)."""
    if value == REDACTED:
        return REDACTED
    if value is None:
        return "(none)"
    kind = type(value)
    # json.dumps(value, ensure_ascii=False, sort_keys=True), without building an encoder per
    # call (a text plan of 100k creates shows 1.2 million values): a string or an int, most
    # values, goes straight to what the encoder itself would call.
    if kind is str:
        text = visible(_encode_string(value))
    elif kind is int:
        text = int.__repr__(value)
    else:
        text = visible(_SHOW.encode(value))
    if len(text) > MAX_VALUE_CHARS:
        text = _CUT_ESCAPE.sub(r"\1", text[: MAX_VALUE_CHARS - 1]) + "…"
    return text


def summary_line(summary: dict[str, int], *, uncounted: list[str] | None = None,
                 read_by_code: dict[str, list[str]] | None = None) -> str:
    """``Plan: 2 to create, 1 to update, 0 to archive, 1 to delete; 40 unchanged, 3 unmanaged.``
    Kinds whose unmanaged objects were not counted are named when they were read by code;
    those not read at all (none of them in the manifests) are only counted, so the line stays
    short however many kinds the registry knows (``--format json`` lists them)."""
    parts = [f"{summary['create']} to create", f"{summary['update']} to update", f"{summary['archive']} to archive"]
    if summary.get("unarchive"):
        parts.append(f"{summary['unarchive']} to unarchive")
    parts.append(f"{summary['delete']} to delete")
    unmanaged = f"{summary['unmanaged']} unmanaged"
    if uncounted:
        read = read_by_code or {}
        by_code = [kind for kind in uncounted if read.get(kind) or kind not in read]
        unread = len(uncounted) - len(by_code)
        notes = [f"not counted for {', '.join(by_code)}"] if by_code else []
        if unread:
            notes.append(f"{unread} kind{'s' if unread != 1 else ''} the manifests do not name "
                         f"{'were' if unread != 1 else 'was'} not read")
        unmanaged += f" ({'; '.join(notes)})"
    return f"Plan: {', '.join(parts)}; {summary['unchanged']} unchanged, {unmanaged}."


MARKERS = {"create": "+", "update": "~", "archive": "-", "unarchive": "~", "delete": "-"}


def change_label(change: dict[str, Any]) -> str:
    """What a change is about, for people and safe to print: ``account acme``, or a
    singleton's title (``organization config``) rather than its kind name twice."""
    kind = kinds.BY_NAME.get(str(change["kind"]))
    if kind is not None and kind.singleton:
        return safe(kind.title)
    return f"{safe(str(change['kind']))} {safe(str(change['key']))}"


SHOWN_SELECTORS = 20


def partial_notice(only: list[str]) -> str:
    """The one sentence every format shows for a partial plan (``--only``), safe to print."""
    shown = ", ".join(safe(s) for s in only[:SHOWN_SELECTORS])
    if len(only) > SHOWN_SELECTORS:
        shown += f" and {len(only) - SHOWN_SELECTORS} more"
    return (f"PARTIAL PLAN (--only {shown}): only these objects and what they depend on are planned; "
            "everything else is neither changed nor pruned, and the summary counts only them.")
