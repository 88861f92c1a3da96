"""The one living plan comment on a pull request: its hidden marker and its body.

Why a marker: a pull request gets one plan comment per organization and set of manifest
paths, edited in place on every push, so the conversation does not fill with stale plans
and the apply job knows where to read the plan a reviewer approved. The comment's first
line is an HTML comment (invisible when rendered) that names what the comment is about and
carries the facts the apply job needs::

    <!-- reconciler-plan org=ORG paths=HASH digest=sha256:... sha=HEAD_SHA run=RUN_ID -->

Only the first line is ever parsed. Everything after it is the plan, in which user text is
escaped (``<`` becomes ``&lt;``), so nothing a manifest or live value holds can forge or
move the marker.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass

from reconciler.render.markdown import escape
from reconciler.safetext import safe

MARKER_PREFIX = "<!-- reconciler-plan "
MARKER_SUFFIX = " -->"
# GitHub refuses comment bodies over 65,536 characters; leave room for the header.
MAX_COMMENT_CHARS = 65_000
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
_SHA = re.compile(r"[0-9a-f]{7,64}")
_TOKEN = re.compile(r"[A-Za-z0-9._-]{1,100}")


def org_label(org: str) -> str:
    """The organization as it can appear in the marker: ids are UUIDs (kept as they are);
    anything else is named by a short hash, so the marker stays one parseable line."""
    if _TOKEN.fullmatch(org):
        return org
    return "h" + hashlib.sha256(org.encode("utf-8")).hexdigest()[:16]


def paths_key(paths: Sequence[str], working_directory: str = ".") -> str:
    """A short stable name for a set of manifest paths (order and ``./`` do not matter), so
    two action steps planning different folders against one organization keep two comments."""
    def norm(p: str) -> str:
        parts = [part for part in p.replace("\\", "/").split("/") if part not in ("", ".")]
        return "/".join(parts)

    canonical = json.dumps({"dir": norm(working_directory), "paths": sorted({norm(p) for p in paths})},
                           separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:12]


@dataclass(frozen=True, slots=True)
class Marker:
    """What the first line of a plan comment says."""

    org: str
    paths: str
    digest: str | None = None
    sha: str | None = None
    run: str | None = None

    def identity(self) -> tuple[str, str]:
        return (self.org, self.paths)

    def render(self) -> str:
        fields = [f"org={self.org}", f"paths={self.paths}"]
        if self.digest:
            fields.append(f"digest={self.digest}")
        if self.sha:
            fields.append(f"sha={self.sha}")
        if self.run:
            fields.append(f"run={self.run}")
        return MARKER_PREFIX + " ".join(fields) + MARKER_SUFFIX


def parse_marker(body: str) -> Marker | None:
    """The marker of a comment body, or None when the comment is not a plan comment. A
    field that does not have its expected shape is dropped (a digest must be
    ``sha256:`` and 64 hex digits), never trusted half-way."""
    first = body.split("\n", 1)[0].rstrip("\r")
    if not (first.startswith(MARKER_PREFIX) and first.endswith(MARKER_SUFFIX)):
        return None
    fields: dict[str, str] = {}
    for item in first[len(MARKER_PREFIX) : -len(MARKER_SUFFIX)].split():
        key, sep, value = item.partition("=")
        if sep and key not in fields:
            fields[key] = value
    org, paths = fields.get("org", ""), fields.get("paths", "")
    if not (_TOKEN.fullmatch(org) and _TOKEN.fullmatch(paths)):
        return None
    digest = fields.get("digest")
    sha = fields.get("sha")
    run = fields.get("run")
    return Marker(
        org=org,
        paths=paths,
        digest=digest if digest and _DIGEST.fullmatch(digest) else None,
        sha=sha if sha and _SHA.fullmatch(sha) else None,
        run=run if run and run.isdigit() else None,
    )


@dataclass(frozen=True, slots=True)
class PlanComment:
    """Everything a plan comment shows besides the plan itself."""

    marker: Marker
    organization: str
    paths: Sequence[str]
    exitcode: int
    plan_markdown: str
    run_url: str | None = None
    errors: Sequence[str] = ()
    artifact: str | None = None


def _status(exitcode: int) -> str:
    if exitcode == 0:
        return ":white_check_mark: **No changes.** The organization matches the manifests."
    if exitcode == 2:
        return ":memo: **Changes pending.** Merging applies exactly this plan (see below)."
    return ":x: **The plan failed.** Nothing can be applied from this commit; the errors are below."


def render_comment(c: PlanComment) -> str:
    """The comment body: marker, a header naming organization, paths, commit and digest,
    the markdown plan, and what happens on merge. A plan too long for a comment is replaced
    by a pointer to the job summary and the artifact (never cut in the middle)."""
    m = c.marker
    where = ", ".join(f"`{escape(p)}`" for p in c.paths) or "`.`"
    lines = [
        m.render(),
        f"## reconciler plan: organization `{escape(c.organization)}`, {where}",
        "",
        _status(c.exitcode),
        "",
        f"- Commit: `{m.sha or 'unknown'}`",
        f"- Plan digest: `{m.digest}`" if m.digest else "- Plan digest: none (no plan was saved)",
    ]
    if c.run_url:
        lines.append(f"- Workflow run: {c.run_url}")
    if c.artifact and m.digest:
        lines.append(f"- Saved plan: artifact `{escape(c.artifact)}` of that run")
    lines.append("")
    if c.errors:
        lines.append("<details open><summary>Errors</summary>")
        lines.append("")
        lines.extend(f"- {escape(line)}" for line in c.errors[:100])
        if len(c.errors) > 100:
            lines.append(f"- ... and {len(c.errors) - 100} more (see the workflow run)")
        lines.append("")
        lines.append("</details>")
        lines.append("")
    footer = [
        "",
        "---",
        "<sub>Updated in place on every push. On merge, the apply job plans the default branch "
        "again and applies that plan only if its digest is the one above; if the organization "
        "or the default branch changed since this plan, it refuses and says so.</sub>",
    ]
    body = "\n".join(lines)
    plan = c.plan_markdown.rstrip("\n")
    if len(body) + len(plan) + sum(len(f) + 1 for f in footer) + 1 > MAX_COMMENT_CHARS:
        plan = ("_The plan is too long for a comment: it is in the job summary of the workflow run"
                + (" and in the saved plan artifact" if c.artifact and m.digest else "") + "._")
    return body + "\n" + plan + "\n" + "\n".join(footer) + "\n"


def error_lines(stderr: str) -> list[str]:
    """The lines of a failed command's stderr worth showing in the comment (its errors),
    made safe; they are escaped again as markdown when rendered."""
    lines = [safe(line) for line in stderr.splitlines() if line.strip()]
    errors = [line for line in lines if "error" in line.lower() or line.startswith("Invalid")]
    return errors or lines[-20:]
