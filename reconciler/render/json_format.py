"""JSON output: exactly one document on stdout, so ``| jq`` always works."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from reconciler.render.document import iter_json


def render_json(doc: Mapping[str, Any]) -> str:
    return "".join(iter_json_lines(doc))


def iter_json_lines(doc: Mapping[str, Any]) -> Iterator[str]:
    """The JSON document in pieces, ending with a newline: what the CLI streams to stdout."""
    yield from iter_json(doc)
    yield "\n"
