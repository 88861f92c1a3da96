"""Markdown for a pull-request comment; everything users typed is escaped so a ``|`` or
``<`` in an account name cannot break a table or inject HTML, and control or invisible
characters (an ESC sequence in a custom field name, a bidi override in a code) show as
escapes rather than acting on the reader's screen."""

from __future__ import annotations

from typing import Any

from reconciler.render.values import MARKERS, show, summary_line
from reconciler.safetext import markdown_inert, safe


def escape(text: str) -> str:
    """Untrusted text for markdown: made visible (``safe``: controls and newlines as
    escapes, so a table row stays one line) and then inert as markdown and HTML."""
    return markdown_inert(safe(text))


def value(v: Any) -> str:
    """A value for markdown: ``show()`` is already safe, so only markdown escaping is added
    (``escape`` would double the backslashes of its JSON escapes)."""
    return markdown_inert(show(v))


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
                f"| {escape(MARKERS[change['action']])} | {change['action']} | {escape(change['kind'])} "
                f"| {escape(change['key'])} | {paths} |"
            )
        out.append("")
        out.append("<details><summary>Field-level diff</summary>")
        out.append("")
        for change in changes:
            out.append(f"- **{change['action']} {escape(change['kind'])} {escape(change['key'])}**")
            for d in change["diff"]:
                out.append(f"  - {escape(d['path'])}: {value(d['before'])} → {value(d['after'])}")
            for warning in change["warnings"]:
                out.append(f"  - :warning: {escape(warning)}")
        out.append("")
        out.append("</details>")
    if doc["unmanaged"]:
        out.append("")
        out.append(f"<details><summary>{len(doc['unmanaged'])} unmanaged live objects</summary>")
        out.append("")
        for item in doc["unmanaged"][:200]:
            out.append(f"- {escape(item['kind'])} {escape(item['key'])}")
        out.append("")
        out.append("</details>")
    warnings = doc.get("warnings", [])
    if warnings:
        out.append("")
        for warning in warnings:
            out.append(f"- :warning: {escape(warning)}")
    return "\n".join(out) + "\n"
