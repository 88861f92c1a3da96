"""Terraform-like text: ``+ ~ -`` markers, colour only on a terminal and never with NO_COLOR."""

from __future__ import annotations

from typing import Any

import click

from reconciler.render.values import MARKERS, show, summary_line

_COLOURS = {"+": "green", "~": "yellow", "-": "red", "!": "magenta"}


def render_text(doc: dict[str, Any], *, colour: bool = False) -> str:
    def paint(marker: str, text: str) -> str:
        return click.style(text, fg=_COLOURS.get(marker)) if colour else text

    lines: list[str] = [
        f"Organization {doc['organization']} ({doc['backend']})",
        "",
    ]
    changes = doc["changes"]
    if not changes:
        lines.append("No changes. The organization matches the manifests.")
    for change in changes:
        marker = MARKERS[change["action"]]
        ident = f" (id {change['id']}, version {change['version']})" if change.get("id") else ""
        lines.append(paint(marker, f"{marker} {change['action']} {change['kind']} {change['key']}") + ident)
        for d in change["diff"]:
            if d["before"] is None:
                lines.append(paint("+", f"    + {d['path']}: {show(d['after'])}"))
            elif d["after"] is None:
                lines.append(paint("-", f"    - {d['path']}: {show(d['before'])}"))
            else:
                lines.append(paint("~", f"    ~ {d['path']}: {show(d['before'])} -> {show(d['after'])}"))
        for warning in change["warnings"]:
            lines.append(paint("!", f"    ! warning: {warning}"))
    if doc["unmanaged"]:
        lines.append("")
        lines.append(f"Unmanaged (live, not in any manifest; left alone): {len(doc['unmanaged'])}")
        for item in doc["unmanaged"][:20]:
            lines.append(f"    {item['kind']} {item['key']}")
        if len(doc["unmanaged"]) > 20:
            lines.append(f"    ... and {len(doc['unmanaged']) - 20} more (see --format json)")
    for warning in doc.get("warnings", []):
        lines.append(paint("!", f"warning: {warning}"))
    for refusal in doc.get("refusals", []):
        lines.append(paint("-", f"refused: {refusal}"))
    for blocker in doc.get("blockers", []):
        lines.append(paint("-", f"cannot succeed: {blocker}"))
    lines.append("")
    lines.append(summary_line(doc["summary"], uncounted=doc.get("uncounted")))
    if doc.get("digest"):
        lines.append(f"Plan digest: {doc['digest']}")
    return "\n".join(lines) + "\n"
