"""JSON output: exactly one document on stdout, so ``| jq`` always works."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from reconciler.render.document import iter_json


def render_json(doc: Mapping[str, Any]) -> str:
    return b"".join(iter_json_lines(doc)).decode("utf-8")


def iter_json_lines(doc: Mapping[str, Any]) -> Iterator[bytes]:
    """The JSON document in UTF-8 pieces, ending with a newline: what the CLI streams to
    stdout and a saved plan's file holds."""
    yield from iter_json(doc)
    yield b"\n"
