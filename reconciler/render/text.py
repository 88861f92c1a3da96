"""Terraform-like text: ``+ ~ -`` markers, colour only on a terminal and never with NO_COLOR.

Every string from the document goes through ``safe()`` (values through ``show()``, which is
safe already): keys, paths, ids and warnings come from the live organization or manifests
and must not be able to recolour or reorder what the reviewer reads."""

from __future__ import annotations

from typing import Any

import click

from reconciler.render.values import MARKERS, change_label, partial_notice, show, summary_line
from reconciler.safetext import safe

_COLOURS = {"+": "green", "~": "yellow", "-": "red", "!": "magenta"}


def render_text(doc: dict[str, Any], *, colour: bool = False) -> str:
    def paint(marker: str, text: str) -> str:
        return click.style(text, fg=_COLOURS.get(marker)) if colour else text

    lines: list[str] = [
        f"Organization {safe(str(doc['organization']))} ({safe(str(doc['backend']))})",
        "",
    ]
    if doc.get("only"):
        lines += [paint("!", partial_notice(doc["only"])), ""]
    changes = doc["changes"]
    if not changes:
        lines.append("No changes. The organization matches the manifests.")
    for change in changes:
        marker = MARKERS[change["action"]]
        ident = (f" (id {safe(str(change['id']))}, version {safe(str(change['version']))})"
                 if change.get("id") else "")
        head = f"{marker} {change['action']} {change_label(change)}"
        lines.append(paint(marker, head) + ident)
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
    if doc["unmanaged"]:
        lines.append("")
        lines.append(f"Unmanaged (live, not in any manifest; left alone): {len(doc['unmanaged'])}")
        for item in doc["unmanaged"][:20]:
            lines.append(f"    {safe(item['kind'])} {safe(item['key'])}")
        if len(doc["unmanaged"]) > 20:
            lines.append(f"    ... and {len(doc['unmanaged']) - 20} more (see --format json)")
    for warning in doc.get("warnings", []):
        lines.append(paint("!", f"warning: {safe(warning)}"))
    for refusal in doc.get("refusals", []):
        lines.append(paint("-", f"refused: {safe(refusal)}"))
    for blocker in doc.get("blockers", []):
        lines.append(paint("-", f"cannot succeed: {safe(blocker)}"))
    lines.append("")
    lines.append(summary_line(doc["summary"], uncounted=doc.get("uncounted")))
    if doc.get("digest"):
        lines.append(f"Plan digest: {doc['digest']}")
    return "\n".join(lines) + "\n"
