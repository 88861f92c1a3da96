"""Check the emulator's traffic against m3ter's full official OpenAPI document.

``tests/fixtures/m3ter-openapi-full.json`` is the complete document (see the NOTE beside it).
Every exchange an emulator answers in a test that uses :func:`validated` is checked:

* every response against the operation's declared response (status, content type, schema,
  with openapi-core), and, beyond what JSON Schema says (``additionalProperties`` defaults to
  allowed and no schema in the document forbids extra properties), that it carries only
  properties the schema declares or the emulator's ``--extra-fields`` adds: the emulator must
  not invent fields silently;
* every request the emulator accepted (answered 2XX) against the operation's parameters and
  request body: the emulator must not accept what the document refuses, and our clients'
  requests must be valid. Refused requests are the tests' deliberate garbage.

The document's ``pattern``s are Java regular expressions (``\\p{L}``, nested classes) that
Python's ``re`` cannot compile; they are dropped from the validating copy (the store checks
them with translated patterns, see ``reconciler/store.py``).
"""

from __future__ import annotations

import contextlib
import copy
import functools
import json
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import pytest
from openapi_core import Config, OpenAPI
from openapi_core.testing import MockRequest, MockResponse
from openapi_core.validation.request.validators import V30RequestBodyValidator, V30RequestParametersValidator
from openapi_core.validation.response.validators import V30ResponseValidator

from reconciler.emulator import testing as emulator_testing
from reconciler.emulator.config import EXTRA_FIELDS
from reconciler.emulator.core import Exchange
from reconciler.emulator.testing import RunningEmulator

SPEC_PATH = Path(__file__).resolve().parent / "fixtures" / "m3ter-openapi-full.json"
SERVER = "https://api.m3ter.com"
ALLOWED_ERRORS = {400, 403, 404, 429, 500, 502, 504}


@functools.cache
def document() -> dict[str, Any]:
    return dict(json.loads(SPEC_PATH.read_text(encoding="utf-8")))


def _without_patterns(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _without_patterns(v) for k, v in node.items() if not (k == "pattern" and isinstance(v, str))}
    if isinstance(node, list):
        return [_without_patterns(v) for v in node]
    return node


@functools.cache
def _openapi() -> OpenAPI:
    return OpenAPI.from_dict(_without_patterns(copy.deepcopy(document())), config=Config(spec_validator_cls=None))


def operation(method: str, path: str) -> tuple[str, dict[str, Any]] | None:
    """The path template and operation the document declares for a request, or None."""
    spec = document()
    parts = path.strip("/").split("/")
    candidates = []
    for template, ops in spec["paths"].items():
        tparts = template.strip("/").split("/")
        if len(tparts) != len(parts) or method.lower() not in ops:
            continue
        if ops[method.lower()].get("servers"):
            continue  # another host's API (measurements: ingest.m3ter.com), not the Config API
        if all(t == p or (t.startswith("{") and t.endswith("}")) for t, p in zip(tparts, parts, strict=True)):
            literal = sum(1 for t in tparts if not t.startswith("{"))
            candidates.append((literal, template, ops[method.lower()]))
    if not candidates:
        return None
    candidates.sort(key=lambda c: c[0], reverse=True)
    return candidates[0][1], candidates[0][2]


def resolve(schema: dict[str, Any]) -> dict[str, Any]:
    spec = document()
    while "$ref" in schema:
        node: Any = spec
        for part in schema["$ref"].lstrip("#/").split("/"):
            node = node[part]
        schema = node
    return schema


def declared(schema: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Properties a schema declares, following $ref and allOf."""
    schema = resolve(schema)
    out: dict[str, dict[str, Any]] = {}
    for part in schema.get("allOf", []):
        out.update(declared(part))
    out.update(schema.get("properties", {}))
    return out


def undeclared(schema: dict[str, Any], value: Any, where: str, allowed: frozenset[str]) -> list[str]:
    """Properties of ``value`` its schema does not declare (``allowed`` names excepted)."""
    schema = resolve(schema)
    if isinstance(value, list) and "items" in schema:
        return [p for i, item in enumerate(value) for p in undeclared(schema["items"], item, f"{where}[{i}]", allowed)]
    if not isinstance(value, dict):
        return []
    props = declared(schema)
    if not props:
        return []  # a free-form map (custom field values)
    problems = []
    extra = set(value) - set(props) - allowed
    if extra:
        problems.append(f"{where}: properties not in the document: {sorted(extra)}")
    for key, item in value.items():
        if key in props:
            problems.extend(undeclared(props[key], item, f"{where}.{key}", allowed))
    return problems


# Responses the document declares with another entity's schema: POST and PUT
# /compoundaggregations say ``AggregationResponse`` while GET and DELETE of the same object say
# ``CompoundAggregationResponse``; the emulator answers the object itself, so its fields are
# checked against the compound aggregation's own response schema.
RESPONSE_SLIPS: dict[tuple[str, str], str] = {
    ("POST", "/organizations/{orgId}/compoundaggregations"): "CompoundAggregationResponse",
    ("PUT", "/organizations/{orgId}/compoundaggregations/{id}"): "CompoundAggregationResponse",
}


def check_exchange(ex: Exchange, *, allowed_extra: frozenset[str] = frozenset()) -> list[str]:
    """Every way ``ex`` disagrees with the document (empty when it conforms)."""
    label = f"{ex.method} {ex.path} -> {ex.status}"
    problems: list[str] = []
    if ex.status != 200 and ex.status not in ALLOWED_ERRORS:
        problems.append(f"{label}: status not among the documented ones")
    content_type = ex.response_headers.get("content-type", "").split(";")[0]
    if content_type != "application/json":
        problems.append(f"{label}: content type {content_type!r}")
    found = operation(ex.method, ex.path)
    if found is None:
        # no such operation on this host: the emulator must refuse it (404, or 403 before auth)
        if ex.status not in (403, 404):
            problems.append(f"{label}: answered an operation the document does not have")
        return problems
    template, op = found
    args = parse_qsl(ex.query, keep_blank_values=True)
    query: dict[str, Any] = {}
    for key, value in args:
        query.setdefault(key, []).append(value)
    flat = {k: v[0] if len(v) == 1 else v for k, v in query.items()}
    request = MockRequest(
        SERVER,
        ex.method.lower(),
        ex.path,
        args=flat,
        headers=ex.request_headers,
        data=ex.request_body or None,
        content_type=ex.request_headers.get("content-type", "application/json").split(";")[0],
    )
    response = MockResponse(
        ex.response_body, status_code=ex.status, headers=ex.response_headers, content_type=content_type
    )
    spec = _openapi().spec
    with warnings.catch_warnings():
        # the document marks query parameters allowEmptyValue, which openapi-core warns about
        warnings.simplefilter("ignore", DeprecationWarning)
        problems.extend(_validate(spec, request, response, ex, label))
    responses = op["responses"]
    declared_response = responses.get(str(ex.status)) or responses.get(f"{str(ex.status)[0]}XX")
    if declared_response is not None and ex.response_body:
        content = resolve(declared_response).get("content", {}).get("application/json")
        if content is not None:
            slip = RESPONSE_SLIPS.get((ex.method.upper(), template)) if ex.status == 200 else None
            schema = {"$ref": f"#/components/schemas/{slip}"} if slip else content["schema"]
            problems.extend(undeclared(schema, json.loads(ex.response_body), label, allowed_extra))
    return problems


def _validate(spec: Any, request: MockRequest, response: MockResponse, ex: Exchange, label: str) -> list[str]:
    problems: list[str] = []
    try:
        V30ResponseValidator(spec).validate(request, response)
    except Exception as exc:
        problems.append(f"{label}: response: {exc}")
    if 200 <= ex.status < 300 and ex.path != "/oauth/token":
        for validator in (V30RequestParametersValidator, V30RequestBodyValidator):
            try:
                validator(spec).validate(request)
            except Exception as exc:
                problems.append(f"{label}: accepted request: {exc}")
    return problems


@contextlib.contextmanager
def validated(emu: RunningEmulator) -> Iterator[list[Exchange]]:
    """Record every exchange of ``emu`` while the block runs; then check each against the
    full document and fail the test naming the first problems. Yields the recording."""
    assert emu.emulator is not None, "validation needs an in-process emulator"
    recorded: list[Exchange] = []
    emu.emulator.observers.append(recorded.append)
    try:
        yield recorded
    finally:
        emu.emulator.observers.remove(recorded.append)
    # (not reached when the block raised: that failure is the one to report)
    allowed = frozenset(EXTRA_FIELDS) if emu.config.extra_fields else frozenset()
    problems = [p for ex in recorded for p in check_exchange(ex, allowed_extra=allowed)]
    assert not problems, f"{len(problems)} disagreements with the official document:\n" + "\n".join(problems[:20])


def _modes(extra_fields: bool) -> Iterator[bool]:
    saved = dict(emulator_testing.CONFIG_OVERRIDES)
    if extra_fields:  # plain mode leaves each test's own config alone
        emulator_testing.CONFIG_OVERRIDES["extra_fields"] = True
    emulator_testing.ON_START.append(validated)
    try:
        yield extra_fields
    finally:
        emulator_testing.ON_START.remove(validated)
        emulator_testing.CONFIG_OVERRIDES.clear()
        emulator_testing.CONFIG_OVERRIDES.update(saved)


@pytest.fixture(autouse=True, params=[False, True], ids=["plain", "extra-fields"])
def full_document_mode(request: pytest.FixtureRequest) -> Iterator[bool]:
    """Import into an end-to-end module: each test runs twice, plain and with the emulator's
    ``--extra-fields``, and every in-process emulator's traffic is validated against the full
    official document."""
    yield from _modes(bool(request.param))


@pytest.fixture(scope="module", autouse=True, params=[False, True], ids=["plain", "extra-fields"])
def full_document_mode_module(request: pytest.FixtureRequest) -> Iterator[bool]:
    """:func:`full_document_mode` for modules whose emulator is a module-scoped fixture."""
    yield from _modes(bool(request.param))
