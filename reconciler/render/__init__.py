"""Renderers for plans and drift reports: text (terminal), JSON (machines), markdown (PRs).

Every renderer works from the same JSON-shaped document (:func:`plan_document`), so the
three formats cannot disagree, and redaction happens once, before any of them sees data.
"""

from __future__ import annotations

from reconciler.render.document import plan_document, redact_document
from reconciler.render.json_format import render_json
from reconciler.render.markdown import render_markdown
from reconciler.render.text import render_text

FORMATS = ("text", "json", "markdown")

__all__ = ["FORMATS", "plan_document", "redact_document", "render_json", "render_markdown", "render_text"]
