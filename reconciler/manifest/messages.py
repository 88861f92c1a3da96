"""pydantic validation errors turned into sentences a billing engineer can act on.

pydantic reports ``loc`` tuples that mix real field names with the names of union members
(``str``, ``function-after[...]``) and messages such as "Input should be greater than 0".
Here each error becomes (field path, message) where the path is the one written in the YAML
(so it can be located) and the message reads ``daysBeforeBillDue: must be greater than 0
(got 0)``. Several errors for one field (one per union member) are merged into one.

Values and names are quoted with ``safetext.quote``, not ``repr``: messages keep exact text
and are escaped once, when shown (``Diagnostic.display``); ``repr`` would escape first and
the display would then double its backslashes.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel
from pydantic_core import ErrorDetails

from reconciler import kinds
from reconciler.kinds.fields import PATTERN_MESSAGES
from reconciler.manifest.types import DesiredObject
from reconciler.safetext import quote

_TYPE_WORDS = {
    "string_type": "a string",
    "int_type": "an integer",
    "int_parsing": "an integer",
    "float_type": "a number",
    "float_parsing": "a number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
    "list_type": "a list",
    "none_required": "null",
}
_SHOULD = re.compile(r"^(?:Input|String|List|Dictionary|Value) should (?:be |have )?")


@dataclass(slots=True)
class FieldError:
    path: tuple[str | int, ...]  # field path as written in the YAML, inside the object
    message: str
    on_key: bool  # the problem is the key itself (unknown field, bad custom field name)


_PLAIN_NAME = re.compile(r"^[A-Za-z_$][\w$-]*$")


def describe(obj: DesiredObject) -> str:
    """How messages name an object: ``accounts[3] (code 'acme')`` or ``organization`` (an
    object whose code is missing or not a string is named by its place alone)."""
    kind = kinds.get(obj.kind)
    if kind.singleton:
        return kind.manifest_key
    index = obj.node_path[-1] if obj.node_path else "?"
    code = obj.fields.get("code") if isinstance(obj.fields, dict) else None
    named = f" (code {quote(code)})" if isinstance(code, str) else ""
    return f"{kind.manifest_key}[{index}]{named}"


def display_path(path: Sequence[str | int]) -> str:
    """``('address', 'postCode')`` -> ``address.postCode``; indexes as ``[0]``; names that are
    not plain words (empty, spaces, dots) quoted as ``['a b']``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        elif _PLAIN_NAME.match(part):
            out += f".{part}" if out else part
        else:
            out += f"[{quote(part)}]"
    return out


def show_value(value: Any, typed: bool = False, limit: int = 40) -> str:
    """A short YAML-like rendering of an offending input for "(got ...)"; ``typed`` names the
    type too, for type errors (``string '30'``)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        text = quote(value if len(value) <= limit - 2 else value[: limit - 5] + "...")
        return f"string {text}" if typed else text
    if isinstance(value, (int, float)):
        return f"number {value!r}" if typed else repr(value)
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return type(value).__name__


def _real_path(loc: Sequence[Any], data: Any) -> tuple[tuple[str | int, ...], bool]:
    """Split ``loc`` into the path that exists in ``data`` (dropping union-member names)."""
    path: list[str | int] = []
    on_key = False
    node = data
    for part in loc:
        if part == "[key]":
            on_key = True
            continue
        exists = (isinstance(node, dict) and part in node) or (
            isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)
        )
        if exists:
            path.append(part)
            node = node[part]
        elif isinstance(node, dict) and isinstance(part, str) and not _is_member_tag(part):
            path.append(part)  # a missing or unknown field
            node = None
        # anything else names a union member or validator: not part of the YAML path
    return tuple(path), on_key


def _is_member_tag(part: str) -> bool:
    return part in ("str", "int", "float", "bool", "list", "dict", "none") or "[" in part


def _sentence(error: ErrorDetails, model: type[BaseModel] | None, path: Sequence[str | int]) -> str:
    kind = error["type"]
    value = error.get("input")
    if kind == "missing":
        return "is required"
    if kind == "extra_forbidden":
        name = str(path[-1]) if path else "?"
        hint = _suggest(name, _fields_at(model, path[:-1]))
        return f"unknown field{hint}"
    if kind in _TYPE_WORDS:
        return f"must be {_TYPE_WORDS[kind]} (got {show_value(value, typed=True)})"
    if kind == "string_pattern_mismatch" and error.get("ctx", {}).get("pattern") in PATTERN_MESSAGES:
        return f"{PATTERN_MESSAGES[error['ctx']['pattern']]} (got {show_value(value)})"
    if kind == "value_error":
        message = str(error["ctx"].get("error", error["msg"])) if "ctx" in error else error["msg"]
        return f"{message} (got {show_value(value)})" if "(got" not in message else message
    message = _SHOULD.sub("must be ", error["msg"]) if _SHOULD.match(error["msg"]) else error["msg"]
    if kind == "literal_error":  # YAML spells the booleans in lower case
        message = message.replace("False", "false").replace("True", "true")
    if kind.startswith(("string_too", "too_")):
        return f"{message} (got {show_value(value) if kind.startswith('string') else len(value)})"
    return f"{message} (got {show_value(value)})"


def _fields_at(model: type[BaseModel] | None, path: Sequence[str | int]) -> list[str]:
    """Field names (aliases) of the model found at ``path`` under ``model``, for suggestions."""
    for part in path:
        if model is None or isinstance(part, int):
            continue
        info = model.model_fields.get(str(part))
        if info is None:
            by_alias = {f.alias: f for f in model.model_fields.values() if f.alias}
            info = by_alias.get(str(part))
        if info is None:
            return []
        model = _model_in(info.annotation)
    if model is None:
        return []
    return [f.alias or name for name, f in model.model_fields.items()]


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()) or ():
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def _suggest(name: str, candidates: Iterable[str]) -> str:
    options = list(candidates)
    close = difflib.get_close_matches(name, options, n=1, cutoff=0.6)
    if not close:
        lowered = {c.lower(): c for c in options}
        if name.lower() in lowered:
            close = [lowered[name.lower()]]
    return f" (did you mean {close[0]!r}?)" if close else ""


def field_errors(
    errors: Iterable[ErrorDetails], data: Any, model: type[BaseModel] | None, skip: int = 0
) -> list[FieldError]:
    """Readable errors for one object; ``skip`` drops leading ``loc`` parts (a list index)."""
    grouped: dict[tuple[tuple[str | int, ...], bool], list[ErrorDetails]] = {}
    for error in errors:
        path, on_key = _real_path(error["loc"][skip:], data)
        if error["type"] == "extra_forbidden":
            on_key = True
        grouped.setdefault((path, on_key), []).append(error)
    out: list[FieldError] = []
    for (path, on_key), group in grouped.items():
        types = [e for e in group if e["type"] in _TYPE_WORDS]
        if len(group) > 1 and len(types) == len(group):
            words = list(dict.fromkeys(_TYPE_WORDS[e["type"]] for e in group))
            message = f"must be {' or '.join(words)} (got {show_value(group[0].get('input'), typed=True)})"
        else:
            chosen = next((e for e in group if e["type"] not in _TYPE_WORDS), group[0])
            message = _sentence(chosen, model, path)
        if on_key and not any(e["type"] == "extra_forbidden" for e in group):
            message = f"the name {message}"  # the key itself is wrong, e.g. an empty field name
        out.append(FieldError(path, message, on_key))
    return out
