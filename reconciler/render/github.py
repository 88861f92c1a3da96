"""GitHub Actions workflow commands (``--format github``): problems as annotations.

Why: a runner turns a line ``::error file=F,line=L,col=C::message`` printed on stdout into
an annotation shown on that line of the pull request's diff, so a reviewer sees a bad
manifest value where it was written instead of digging through a log.

Escaping follows GitHub's workflow-command rules: in the message ``%``, ``\\r`` and ``\\n``
become ``%25``, ``%0D`` and ``%0A``; in a property value ``:`` and ``,`` additionally become
``%3A`` and ``%2C``. Untrusted text (file names, manifest values, live data) first goes
through :func:`reconciler.safetext.safe`, which already writes line breaks and control
characters as visible escapes, so a value can never end the command line early and start a
command of its own; the workflow-command escaping then keeps GitHub from reading ``%``,
``:`` or ``,`` as syntax.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Iterable
from pathlib import Path
from typing import Any

from reconciler.diagnostics import Diagnostic, sort_key
from reconciler.render.values import summary_line
from reconciler.safetext import safe


def escape_data(text: str) -> str:
    """A workflow command's message (after ``::``)."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    """A workflow command's property value (``file=``, ``title=``...)."""
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def command(name: str, message: str, **properties: str | int) -> str:
    """``::name k=v,...::message`` with untrusted text made safe and escaped."""
    props = ",".join(f"{key}={escape_property(safe(str(value)))}" for key, value in properties.items())
    return f"::{name}{' ' + props if props else ''}::{escape_data(safe(message))}"


def relative_to_workspace(file: str, workspace: str | None) -> str:
    """GitHub places an annotation by a path relative to the repository root (the
    workspace); reconciler names files as given, relative to the working directory, which
    may be a subfolder. A file outside the workspace keeps its name (the annotation then
    shows in the run's summary rather than on a line)."""
    if not workspace:
        return file
    try:
        return Path(os.path.abspath(file)).relative_to(os.path.abspath(workspace)).as_posix()
    except ValueError:
        return file


def annotation(diagnostic: Diagnostic, *, workspace: str | None = None) -> str:
    """One diagnostic as ``::error`` / ``::warning`` with its place, when it has one."""
    loc = diagnostic.location
    props: dict[str, str | int] = {}
    if loc is not None:
        props["file"] = relative_to_workspace(loc.file, workspace)
        if loc.line:
            props["line"] = loc.line
            props["col"] = loc.column
    return command(diagnostic.severity, diagnostic.message, **props)


def render_annotations(diagnostics: Iterable[Diagnostic], *, workspace: str | None = None) -> str:
    """Errors first, then warnings (the order every other format uses), one per line."""
    lines = [annotation(d, workspace=workspace) for d in sorted(diagnostics, key=sort_key)]
    return "".join(line + "\n" for line in lines)


def render_plan_annotations(doc: dict[str, Any], *, located: Collection[str] = ()) -> str:
    """What a plan adds to the diagnostics: why it cannot be applied (errors), the warnings
    of each change and of the plan, and one notice with the summary and the digest, so the
    checks page names the plan a reviewer approves. Plan items carry no manifest position,
    so they appear on the run rather than on a line. ``located`` are plan warnings already
    annotated at their manifest position (the loader's warnings), not repeated here."""
    out: list[str] = []
    for blocker in doc.get("blockers", []):
        out.append(command("error", blocker, title="plan cannot succeed"))
    for refusal in doc.get("refusals", []):
        out.append(command("error", refusal, title="plan refused"))
    for change in doc.get("changes", []):
        title = f"{change['action']} {change['kind']} {change['key']}"
        for warning in change.get("warnings", []):
            out.append(command("warning", warning, title=title))
    for warning in doc.get("warnings", []):
        if warning in located:
            continue
        out.append(command("warning", warning, title="plan"))
    summary = summary_line(doc["summary"], uncounted=doc.get("uncounted"), read_by_code=doc.get("readByCode"))
    if doc.get("digest"):
        summary += f" Plan digest: {doc['digest']}"
    out.append(command("notice", summary, title=f"reconciler plan of {doc['organization']}"))
    return "".join(line + "\n" for line in out)
