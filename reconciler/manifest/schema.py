"""JSON Schema of one manifest file document, generated from the models via the kind registry.

Editors use it (``# yaml-language-server: $schema=...``) for completion and inline errors.
The checked-in copy is ``schemas/manifest.schema.json``; regenerate it after changing a model
with ``python -m reconciler.manifest.schema`` (a test fails while it is out of date). The
output is pretty-printed with sorted keys, so regenerating is stable and diffs stay small.

The schema is a convenience for editors; ``reconciler validate`` stays the authority (it also
checks things a schema cannot: duplicate codes across files, references, IANA timezones, real
calendar dates, parent cycles).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from pydantic.json_schema import models_json_schema

from reconciler import kinds
from reconciler.manifest.settings import Settings
from reconciler.schemafile import write_or_check

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "schemas" / "manifest.schema.json"
SCHEMA_ID = "https://reconciler.example.com/schemas/manifest.schema.json"
REGENERATE = "python -m reconciler.manifest.schema"


def manifest_schema() -> dict[str, Any]:
    """The schema of one YAML document of a manifest file (draft 2020-12)."""
    models = [(kind.model, "validation") for kind in kinds.KINDS] + [(Settings, "validation")]
    refs, definitions = models_json_schema(models, ref_template="#/$defs/{model}")  # type: ignore[arg-type]
    properties: dict[str, Any] = {}
    for kind in kinds.KINDS:
        ref = refs[(kind.model, "validation")]
        if kind.singleton:
            properties[kind.manifest_key] = {
                "anyOf": [ref, {"type": "null"}],
                "description": f"The {kind.name} singleton (declare it once across all files).",
            }
        else:
            properties[kind.manifest_key] = {
                "anyOf": [{"type": "array", "items": ref}, {"type": "null"}],
                "description": f"{kind.name} objects, identified by code; lists merge across files.",
            }
    defs = definitions.get("$defs", {})
    _add_nested_lists(refs, defs)
    properties[kinds.SETTINGS_KEY] = {
        "anyOf": [refs[(Settings, "validation")], {"type": "null"}],
        "description": "How plans treat live objects no manifest lists (declare once).",
    }
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "reconciler manifest",
        "description": (
            "One YAML document of a reconciler manifest file. Generated from reconciler's models by "
            f"`{REGENERATE}`; do not edit by hand."
        ),
        "type": ["object", "null"],
        "additionalProperties": False,
        "properties": properties,
        "$defs": defs,
    }


def _def_name(ref: dict[str, Any]) -> str:
    return str(ref["$ref"]).rsplit("/", 1)[-1]


def _add_nested_lists(refs: dict[Any, Any], defs: dict[str, Any]) -> None:
    """Show the lists a manifest may write inside a host (``Kind.nested_in``: an account's
    ``accountPlans``, a plan group's ``plans``) on the host's definition: items are the nested
    kind's fields without the one naming the host (the loader fills it in), or with
    ``scalar`` also a bare code."""
    for host_name, nested in kinds.NESTED_BY_HOST.items():
        host = kinds.get(host_name)
        host_def = defs[_def_name(refs[(host.model, "validation")])]
        for kind, nesting in nested:
            own = defs[_def_name(refs[(kind.model, "validation")])]
            item = json.loads(json.dumps(own))
            item.get("properties", {}).pop(nesting.reference, None)
            if nesting.reference in item.get("required", []):
                item["required"] = [r for r in item["required"] if r != nesting.reference]
                if not item["required"]:
                    del item["required"]
            item["description"] = (
                f"A {kind.title} of this {host.title}: its {nesting.reference} is this {host.title}, so leave "
                f"{nesting.reference} out."
                + (f" A bare code stands for {{{nesting.scalar}: CODE}}." if nesting.scalar else "")
            )
            item_name = f"{_def_name(refs[(kind.model, 'validation')])}In{_def_name(refs[(host.model, 'validation')])}"
            defs[item_name] = item
            items: dict[str, Any] = {"$ref": f"#/$defs/{item_name}"}
            if nesting.scalar:
                scalar = own.get("properties", {}).get(nesting.scalar, {"type": "string"})
                items = {"anyOf": [{k: v for k, v in scalar.items() if k != "title"}, items]}
            host_def.setdefault("properties", {})[nesting.field] = {
                "anyOf": [{"type": "array", "items": items}, {"type": "null"}],
                "description": f"{kind.title}s written inside this {host.title} (also allowed at top level as "
                               f"{kind.manifest_key} with {nesting.reference}: CODE).",
                "title": nesting.field[:1].upper() + nesting.field[1:],
            }


def render() -> str:
    """The schema as checked in: two-space indentation, sorted keys, trailing newline."""
    return json.dumps(manifest_schema(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Write (or with ``--check``, compare) ``schemas/manifest.schema.json``."""
    return write_or_check(SCHEMA_PATH, render(), regenerate=REGENERATE, argv=argv)


if __name__ == "__main__":
    sys.exit(main())
