"""The checked-in JSON Schema matches the models, is portable, and accepts the examples."""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import pytest

from reconciler import kinds
from reconciler.manifest.schema import REGENERATE, SCHEMA_PATH, manifest_schema, render
from reconciler.manifest.yaml_events import DocumentBuilder
from tests.conftest import EXAMPLES

EXAMPLE_FILES = sorted(EXAMPLES.rglob("*.yaml"))


def test_checked_in_schema_is_up_to_date() -> None:
    assert SCHEMA_PATH.exists(), f"{SCHEMA_PATH} is missing; run: {REGENERATE}"
    assert SCHEMA_PATH.read_text(encoding="utf-8") == render(), (
        f"{SCHEMA_PATH} is out of date with the kind models (reconciler/kinds/); run: {REGENERATE}"
    )


def test_schema_is_a_valid_draft_2020_12_schema() -> None:
    schema = manifest_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    assert set(schema["properties"]) == set(kinds.TOP_LEVEL_KEYS)
    assert schema["additionalProperties"] is False


def _patterns(node: object) -> list[str]:
    if isinstance(node, dict):
        found = [node["pattern"]] if isinstance(node.get("pattern"), str) else []
        return found + [p for v in node.values() for p in _patterns(v)]
    if isinstance(node, list):
        return [p for v in node for p in _patterns(v)]
    return []


def test_patterns_are_portable_regexes() -> None:
    patterns = _patterns(json.loads(SCHEMA_PATH.read_text(encoding="utf-8")))
    assert patterns
    for pattern in patterns:
        re.compile(pattern)
        # Java/PCRE-only constructs that ECMA-262 (JSON Schema's dialect) does not understand.
        for construct in (r"\p{", r"\P{", "(?P<", r"\A", r"\Z", "(?i)", "++", "*+", "?+"):
            assert construct not in pattern, (construct, pattern)


def test_schema_patterns_agree_with_models_on_samples() -> None:
    validator = jsonschema.Draft202012Validator(manifest_schema())
    good = {"currencies": [{"code": "EUR", "name": "Euro"}], "accounts": [
        {"code": "a b/c:d", "name": "A", "emailAddress": "a@example.com"}]}
    assert not list(validator.iter_errors(good))
    for bad in (
        {"currencies": [{"code": "1EUR", "name": "Euro"}]},
        {"accounts": [{"code": " lead", "name": "A", "emailAddress": "a@example.com"}]},
        {"accounts": [{"code": "a", "name": "A", "emailAddress": "a@example.com", "emailAdress": "x"}]},
        {"organisation": {}},
    ):
        assert list(validator.iter_errors(bad)), bad


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=lambda p: str(p.relative_to(EXAMPLES)))
def test_example_validates_against_schema(path: Path) -> None:
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    validator = jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())
    text = path.read_text(encoding="utf-8")
    depth = len(path.relative_to(EXAMPLES.parent.parent).parts) - 1
    assert text.splitlines()[0] == f"# yaml-language-server: $schema={'../' * depth}schemas/manifest.schema.json"
    builder = DocumentBuilder(lambda value, _pos: value.replace("${BILL_PREFIX_ENV:-}", ""))
    documents = list(builder.documents(text))
    assert not builder.problems
    for document in documents:
        errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(document.data)]
        assert not errors, errors


def test_example_set_is_substantial() -> None:
    assert len(EXAMPLE_FILES) >= 6
