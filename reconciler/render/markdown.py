"""Markdown for a pull-request comment; everything users typed is escaped so a ``|`` or
``<`` in an account name cannot break a table or inject HTML."""

from __future__ import annotations

import html
from typing import Any

from reconciler.render.values import MARKERS, show, summary_line

# Characters that start emphasis, code, links, tables or strike-through anywhere in a line;
# HTML is neutralised separately. User text never starts a line here, so block markers
# (#, -, +, >) need no escape.
_MD_SPECIAL = str.maketrans({c: "\\" + c for c in "\\`*_[]|~"})


def escape(text: str) -> str:
    """Escape HTML and markdown punctuation; newlines become spaces (tables are one line)."""
    text = text.replace("\r", " ").replace("\n", " ").translate(_MD_SPECIAL)
    return html.escape(text, quote=False)


def render_markdown(doc: dict[str, Any], *, title: str = "reconciler plan") -> str:
    out: list[str] = [f"### {escape(title)}", ""]
    out.append(f"Organization {escape(str(doc['organization']))} on {escape(str(doc['backend']))}")
    out.append("")
    out.append(f"**{escape(summary_line(doc['summary'], uncounted=doc.get('uncounted')))}**")
    out.append("")
    if doc.get("digest"):
        out.append(f"Plan digest: `{escape(str(doc['digest']))}`")
        out.append("")
    if doc.get("refusals") or doc.get("blockers"):
        for blocker in doc.get("blockers", []):
            out.append(f"> :no_entry: **Cannot succeed:** {escape(blocker)}")
        for refusal in doc.get("refusals", []):
            out.append(f"> :no_entry: **Refused:** {escape(refusal)}")
        out.append("")
    changes = doc["changes"]
    if not changes:
        out.append("No changes. The organization matches the manifests.")
    else:
        out.append("| | action | kind | key | changes |")
        out.append("|---|---|---|---|---|")
        for change in changes:
            paths = ", ".join(escape(d["path"]) for d in change["diff"]) or "—"
            out.append(
                f"| {escape(MARKERS[change['action']])} | {change['action']} | {change['kind']} "
                f"| {escape(change['key'])} | {paths} |"
            )
        out.append("")
        out.append("<details><summary>Field-level diff</summary>")
        out.append("")
        for change in changes:
            out.append(f"- **{change['action']} {change['kind']} {escape(change['key'])}**")
            for d in change["diff"]:
                out.append(f"  - {escape(d['path'])}: {escape(show(d['before']))} → {escape(show(d['after']))}")
            for warning in change["warnings"]:
                out.append(f"  - :warning: {escape(warning)}")
        out.append("")
        out.append("</details>")
    if doc["unmanaged"]:
        out.append("")
        out.append(f"<details><summary>{len(doc['unmanaged'])} unmanaged live objects</summary>")
        out.append("")
        for item in doc["unmanaged"][:200]:
            out.append(f"- {item['kind']} {escape(item['key'])}")
        out.append("")
        out.append("</details>")
    warnings = doc.get("warnings", [])
    if warnings:
        out.append("")
        for warning in warnings:
            out.append(f"- :warning: {escape(warning)}")
    return "\n".join(out) + "\n"
