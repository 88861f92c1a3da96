"""Drift reports in text and markdown (JSON is the document itself). Keys, paths and the
organization come from outside and are shown through ``safe()``; values through ``show()``."""

from __future__ import annotations

from typing import Any

import click

from reconciler.render.markdown import escape, value
from reconciler.render.values import change_label, partial_notice, show
from reconciler.safetext import markdown_inert, safe

_LABELS = {
    "changed": "changed live",
    "missing": "missing live",
    "unmanaged": "unmanaged live object (kind is pruned)",
}


def drift_summary_line(doc: dict[str, Any]) -> str:
    s = doc["summary"]
    if doc["inSync"]:
        return "In sync: the organization matches the manifests."
    return f"Drift: {s['changed']} changed, {s['missing']} missing, {s['unmanaged']} unmanaged."


def render_drift_text(doc: dict[str, Any], *, colour: bool = False) -> str:
    lines = [f"Organization {safe(str(doc['organization']))} ({safe(str(doc['backend']))})", ""]
    if doc.get("only"):
        lines += [partial_notice(doc["only"]), ""]
    for item in doc["drift"]:
        head = f"{change_label(item)}: {_LABELS[item['type']]}"
        lines.append(click.style(head, fg="yellow") if colour else head)
        for f in item["fields"]:
            lines.append(f"    {safe(f['path'])}: manifest {show(f['manifest'])}, live {show(f['live'])}")
    if doc["drift"]:
        lines.append("")
    lines.append(drift_summary_line(doc))
    return "\n".join(lines) + "\n"


def render_drift_markdown(doc: dict[str, Any]) -> str:
    out = ["### reconciler drift", "",
           f"Organization {escape(str(doc['organization']))} on {escape(str(doc['backend']))}", "",
           f"**{escape(drift_summary_line(doc))}**", ""]
    if doc.get("only"):
        out[-1:-1] = ["", f"> :warning: **{markdown_inert(partial_notice(doc['only']))}**"]
    if doc["drift"]:
        out += ["| kind | key | drift | field | manifest | live |", "|---|---|---|---|---|---|"]
        for item in doc["drift"]:
            fields = item["fields"] or [None]
            for f in fields:
                out.append(
                    f"| {escape(item['kind'])} | {escape(item['key'])} | {escape(_LABELS[item['type']])} | "
                    + (f"{escape(f['path'])} | {value(f['manifest'])} | {value(f['live'])} |"
                       if f else "— | — | — |")
                )
    return "\n".join(out) + "\n"
