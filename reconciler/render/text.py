"""Terraform-like text: ``+ ~ -`` markers, colour only on a terminal and never with NO_COLOR.

Every string from the document goes through ``safe()`` (values through ``show()``, which is
safe already): keys, paths, ids and warnings come from the live organization or manifests
and must not be able to recolour or reorder what the reviewer reads."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import click

from reconciler.render.values import MARKERS, change_label, partial_notice, show, summary_line
from reconciler.safetext import safe

_COLOURS = {"+": "green", "~": "yellow", "-": "red", "!": "magenta"}


def render_text(doc: Mapping[str, Any], *, colour: bool = False) -> str:
    return "".join(iter_text(doc, colour=colour))


def iter_text(doc: Mapping[str, Any], *, colour: bool = False) -> Iterator[str]:
    """The text plan in pieces of whole lines (each ending in a newline), so a plan of any
    size streams."""

    def paint(marker: str, text: str) -> str:
        return click.style(text, fg=_COLOURS.get(marker)) if colour else text

    yield f"Organization {safe(str(doc['organization']))} ({safe(str(doc['backend']))})\n"
    yield "\n"
    if doc.get("only"):
        yield paint("!", partial_notice(doc["only"])) + "\n"
        yield "\n"
    changes = doc["changes"]
    if not changes:
        yield "No changes. The organization matches the manifests.\n"
    for change in changes:  # one piece per change: a fresh 100k plan is 1.3 million lines
        marker = MARKERS[change["action"]]
        ident = (f" (id {safe(str(change['id']))}, version {safe(str(change['version']))})"
                 if change.get("id") else "")
        head = f"{marker} {change['action']} {change_label(change)}"
        lines = [paint(marker, head) + ident]
        for d in change["diff"]:
            path = safe(d["path"])
            if d["before"] is None:
                lines.append(paint("+", f"    + {path}: {show(d['after'])}"))
            elif d["after"] is None:
                lines.append(paint("-", f"    - {path}: {show(d['before'])}"))
            else:
                lines.append(paint("~", f"    ~ {path}: {show(d['before'])} -> {show(d['after'])}"))
        for warning in change["warnings"]:
            lines.append(paint("!", f"    ! warning: {safe(warning)}"))
        lines.append("")
        yield "\n".join(lines)
    if doc["unmanaged"]:
        yield "\n"
        yield f"Unmanaged (live, not in any manifest; left alone): {len(doc['unmanaged'])}\n"
        for item in doc["unmanaged"][:20]:
            yield f"    {safe(item['kind'])} {safe(item['key'])}\n"
        if len(doc["unmanaged"]) > 20:
            yield f"    ... and {len(doc['unmanaged']) - 20} more (see --format json)\n"
    for warning in doc.get("warnings", []):
        yield paint("!", f"warning: {safe(warning)}") + "\n"
    for refusal in doc.get("refusals", []):
        yield paint("-", f"refused: {safe(refusal)}") + "\n"
    for blocker in doc.get("blockers", []):
        yield paint("-", f"cannot succeed: {safe(blocker)}") + "\n"
    yield "\n"
    yield summary_line(doc["summary"], uncounted=doc.get("uncounted"), read_by_code=doc.get("readByCode")) + "\n"
    if doc.get("digest"):
        yield f"Plan digest: {doc['digest']}\n"
