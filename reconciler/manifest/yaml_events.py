"""Safe, fast YAML reading: Python values built straight from libyaml's event stream.

Why not ``yaml.load``? Three reasons.

* Safety and honesty: PyYAML silently keeps the last of two equal mapping keys, builds
  ``datetime.date`` objects from ``2024-01-01`` and (with unsafe loaders) runs code from tags.
  This builder reports duplicate keys, keeps dates as the strings that were written, and
  refuses every tag other than the core ones (``!!str``, ``!!int``, ``!!float``, ``!!bool``,
  ``!!null``, ``!!map``, ``!!seq``), so ``!!python/object/apply:...`` is an error, never a call.
* Bounded work: aliases are expanded as independent copies against a budget proportional to
  the size of the file, so a "billion laughs" document is refused in well under a second
  instead of exhausting memory downstream.
* Speed: composing a node graph (what ``yaml.load`` does first) allocates a node and two
  marks per scalar and calls a Python resolver for each; building values directly from the
  C parser's events is about four times faster than a bare ``CSafeLoader`` load, which leaves
  the time budget for validation (goal: validate within 2x of a bare parse).

Every problem is collected as a :class:`Problem` with a 1-based line and column; nothing here
raises for bad input.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.events import (
    AliasEvent,
    DocumentEndEvent,
    DocumentStartEvent,
    MappingEndEvent,
    MappingStartEvent,
    ScalarEvent,
    SequenceEndEvent,
    SequenceStartEvent,
    StreamEndEvent,
)

from reconciler.manifest.positions import Pos, Problem

_Y = "tag:yaml.org,2002:"
STR, INT, FLOAT, BOOL, NULL = (_Y + t for t in ("str", "int", "float", "bool", "null"))
MAP, SEQ, MERGE = _Y + "map", _Y + "seq", _Y + "merge"

# Alias expansion may add at most this many values, plus one per event of the file itself.
ALIAS_BUDGET_BASE = 100_000


@dataclass(slots=True)
class ParsedDocument:
    """One YAML document's value plus the positions the manifest layer needs up front."""

    index: int  # 0-based position of the document in its file
    data: Any
    start: Pos
    key_pos: dict[Any, Pos] = field(default_factory=dict)  # top-level key -> its position
    item_pos: dict[Any, list[Pos]] = field(default_factory=dict)  # top-level key -> item starts


def _pos(mark: Any) -> Pos:
    return (mark.line + 1, mark.column + 1)


def short_tag(tag: str) -> str:
    """``tag:yaml.org,2002:python/name`` -> ``!!python/name`` as the user wrote it."""
    return "!!" + tag[len(_Y) :] if tag.startswith(_Y) else tag


# --- scalar resolution (YAML 1.1 as PyYAML's SafeLoader, minus timestamps) --------------------

_BOOL_WORDS = {
    **dict.fromkeys(("yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON"), True),
    **dict.fromkeys(("no", "No", "NO", "false", "False", "FALSE", "off", "Off", "OFF"), False),
}
_NULL_WORDS = ("", "~", "null", "Null", "NULL")
_NUMERIC_START = frozenset("0123456789+-.")
_INT_RE = re.compile(
    r"""^(?:[-+]?0b[0-1_]+
    |[-+]?0[0-7_]+
    |[-+]?(?:0|[1-9][0-9_]*)
    |[-+]?0x[0-9a-fA-F_]+
    |[-+]?[1-9][0-9_]*(?::[0-5]?[0-9])+)$""",
    re.X,
)
_FLOAT_RE = re.compile(
    r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?
    |\.[0-9_]+(?:[eE][-+][0-9]+)?
    |[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*
    |[-+]?\.(?:inf|Inf|INF)
    |\.(?:nan|NaN|NAN))$""",
    re.X,
)
_MISSING = object()
_PLAIN_WORDS: dict[str, Any] = {**_BOOL_WORDS, **dict.fromkeys(_NULL_WORDS)}


def _sexagesimal(digits: str) -> float:
    total = 0.0
    for part in digits.split(":"):
        total = total * 60 + float(part)
    return total


def to_int(text: str) -> int:
    """YAML 1.1 integer, as PyYAML reads it (underscores, 0b, 0x, leading-0 octal, base 60)."""
    value = text.replace("_", "")
    sign = -1 if value[:1] == "-" else 1
    if value[:1] in "+-":
        value = value[1:]
    if value == "0":
        return 0
    if value.startswith("0b"):
        return sign * int(value[2:], 2)
    if value.startswith("0x"):
        return sign * int(value[2:], 16)
    if value.startswith("0") and ":" not in value:
        return sign * int(value, 8)
    if ":" in value:
        return sign * int(_sexagesimal(value))
    return sign * int(value)


def to_float(text: str) -> float:
    """YAML 1.1 float, as PyYAML reads it."""
    value = text.replace("_", "").lower()
    sign = -1.0 if value[:1] == "-" else 1.0
    if value[:1] in "+-":
        value = value[1:]
    if value == ".inf":
        return sign * float("inf")
    if value == ".nan":
        return float("nan")
    if ":" in value:
        return sign * _sexagesimal(value)
    return sign * float(value)


def resolve_plain(value: str) -> Any:
    """Value of an untagged plain scalar. Dates are deliberately left as strings."""
    word = _PLAIN_WORDS.get(value, _MISSING)
    if word is not _MISSING:
        return word
    if value[0] in _NUMERIC_START:
        if _INT_RE.match(value):
            return to_int(value)
        if _FLOAT_RE.match(value):
            return to_float(value)
    return value


class UnsupportedTag(ValueError):
    pass


def _tagged_scalar(tag: str, value: str) -> Any:
    """A scalar with an explicit core tag; anything else is refused."""
    if tag in (STR, "!"):
        return value
    try:
        if tag == INT and _INT_RE.match(value):
            return to_int(value)
        if tag == FLOAT and (_FLOAT_RE.match(value) or _INT_RE.match(value)):
            return to_float(value) if _FLOAT_RE.match(value) else float(to_int(value))
    except ValueError:
        pass
    if tag == BOOL and value in _BOOL_WORDS:
        return _BOOL_WORDS[value]
    if tag == NULL and value in _NULL_WORDS:
        return None
    if tag in (INT, FLOAT, BOOL, NULL):
        raise UnsupportedTag(f"{value!r} is not a valid {short_tag(tag)} value")
    raise UnsupportedTag(_tagged_error(tag))


# --- the builder -----------------------------------------------------------------------------

_PENDING = object()  # an anchored collection still being built (an alias to it is recursive)
_SKIP = object()  # key of a mapping entry that was already reported and is dropped
_MERGE_KEY = object()  # the ``<<`` merge key


class _AliasBomb(Exception):
    pass


class _Frame:
    """A mapping or sequence under construction."""

    __slots__ = ("anchor", "container", "is_map", "key", "merges", "refused", "top_key")

    def __init__(self, is_map: bool, container: Any, anchor: str | None, top_key: Any) -> None:
        self.is_map = is_map
        self.container = container
        self.key: Any = _MISSING  # _MISSING: a key comes next
        self.anchor = anchor
        self.merges: list[tuple[Any, Any]] | None = None
        self.top_key = top_key  # for sequences directly under a top-level key
        self.refused = False  # carried a tag that is not applied; built, then dropped


class _Loader(yaml.CSafeLoader):
    """libyaml's parser; only its event stream is used, never PyYAML's constructor."""


Expander = Callable[[str, Pos], str]


class DocumentBuilder:
    """Turns the events of one YAML stream into documents, collecting problems as it goes."""

    def __init__(self, expand: Expander | None = None, problems: list[Problem] | None = None) -> None:
        self.problems: list[Problem] = [] if problems is None else problems
        self._expand = expand
        self._alias_used = 0

    def _problem(self, message: str, mark: Any) -> None:
        line, column = _pos(mark)
        self.problems.append(Problem(message, line, column))

    def documents(self, text: str) -> Iterator[ParsedDocument]:
        """Yield each document of ``text``; a syntax error ends the stream with a problem."""
        loader = _Loader(text)
        try:
            yield from self._run(loader)
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            line, column = _pos(mark) if mark is not None else (1, 1)
            self.problems.append(Problem(_syntax_message(exc, text, line, column), line, column))
        except yaml.reader.ReaderError as exc:
            line, column = _offset_position(text, exc.position)
            char = f"#x{exc.character:04x}" if isinstance(exc.character, int) else repr(exc.character)
            self.problems.append(
                Problem(f"YAML syntax error: unacceptable character {char} ({exc.reason})", line, column)
            )
        except yaml.YAMLError as exc:  # any other libyaml complaint, without a mark
            self.problems.append(Problem(f"YAML error: {exc}", 1, 1))
        except _AliasBomb as exc:
            self.problems.append(Problem(str(exc.args[0]), *exc.args[1]))
        except RecursionError:
            self.problems.append(Problem("YAML nesting too deep to be a manifest", 1, 1))
        finally:
            loader.dispose()

    def _run(self, loader: Any) -> Iterator[ParsedDocument]:
        """The hot loop: one pass over the events, one branch per event type, no recursion."""
        get_event = loader.get_event
        problem = self._problem
        plain_words = _PLAIN_WORDS
        numeric_start = _NUMERIC_START
        expand = self._expand
        stack: list[_Frame] = []
        anchors: dict[str, Any] = {}
        events = 0
        doc_index = -1
        doc: ParsedDocument | None = None
        value: Any = None
        is_value_scalar = False
        while True:
            event = get_event()
            events += 1
            cls = event.__class__
            # Each branch either sets ``value`` (a finished node) or continues.
            if cls is ScalarEvent:
                raw = event.value
                tag = event.tag
                frame = stack[-1] if stack else None
                in_key = frame is not None and frame.is_map and frame.key is _MISSING
                if tag is None:
                    if event.implicit[0]:
                        if in_key and raw == "<<":
                            frame.key = _MERGE_KEY  # type: ignore[union-attr]
                            continue
                        # resolve_plain, inlined for the common cases (this runs per scalar)
                        value = plain_words.get(raw, _MISSING)
                        if value is _MISSING:
                            value = resolve_plain(raw) if raw[0] in numeric_start else raw
                    else:
                        value = raw
                else:
                    if in_key and tag == MERGE:
                        frame.key = _MERGE_KEY  # type: ignore[union-attr]
                        continue
                    try:
                        value = _tagged_scalar(tag, raw)
                    except UnsupportedTag as exc:
                        problem(str(exc), event.start_mark)
                        value = None
                if expand is not None and value.__class__ is str and not in_key and "$" in value:
                    value = expand(value, _pos(event.start_mark))
                if event.anchor is not None:
                    anchors[event.anchor] = value
                is_value_scalar = True
                if len(stack) == 2 and stack[1].top_key is not None and not stack[1].is_map:
                    doc.item_pos[stack[1].top_key].append(_pos(event.start_mark))  # type: ignore[union-attr]
            elif cls is MappingStartEvent or cls is SequenceStartEvent:
                is_map = cls is MappingStartEvent
                tag = event.tag
                refused = tag is not None and tag not in ((MAP, "!") if is_map else (SEQ, "!"))
                if refused:
                    problem(_tagged_error(tag), event.start_mark)
                if event.anchor is not None:
                    anchors[event.anchor] = _PENDING
                top_key = None
                if len(stack) == 1 and stack[0].is_map and stack[0].key is not _MISSING:
                    top_key = stack[0].key  # the list (or mapping) under a top-level key
                    if not is_map and doc is not None:
                        doc.item_pos[top_key] = []
                elif len(stack) == 2 and stack[1].top_key is not None and not stack[1].is_map:
                    doc.item_pos[stack[1].top_key].append(_pos(event.start_mark))  # type: ignore[union-attr]
                frame = _Frame(is_map, {} if is_map else [], event.anchor, top_key)
                frame.refused = refused
                stack.append(frame)
                continue
            elif cls is MappingEndEvent or cls is SequenceEndEvent:
                done = stack.pop()
                value = None if done.refused else done.container  # refused: reported once, not twice
                if done.merges and value is not None:
                    value = self._merged(value, done.merges)
                if done.anchor is not None:
                    anchors[done.anchor] = value
                is_value_scalar = False
            elif cls is AliasEvent:
                target = anchors.get(event.anchor, _MISSING)
                if target is _MISSING:
                    problem(f"undefined alias *{event.anchor} (no anchor &{event.anchor} before it)",
                            event.start_mark)
                    value = None
                elif target is _PENDING:
                    problem(f"alias *{event.anchor} refers to a node that contains it (recursive alias)",
                            event.start_mark)
                    value = None
                else:
                    value = self._copy(target, events, event.start_mark)
                is_value_scalar = not isinstance(value, (dict, list))
                if len(stack) == 2 and stack[1].top_key is not None and not stack[1].is_map:
                    doc.item_pos[stack[1].top_key].append(_pos(event.start_mark))  # type: ignore[union-attr]
            elif cls is DocumentStartEvent:
                doc_index += 1
                doc = ParsedDocument(doc_index, None, _pos(event.start_mark))
                anchors = {}
                continue
            elif cls is DocumentEndEvent:
                if doc is not None:
                    yield doc
                doc = None
                continue
            elif cls is StreamEndEvent:
                return
            else:  # StreamStartEvent
                continue

            # Attach the finished node to its parent.
            if not stack:
                if doc is not None:
                    doc.data = value
                continue
            frame = stack[-1]
            if not frame.is_map:
                frame.container.append(value)
                continue
            key = frame.key
            if key is _MISSING:  # this node is a key
                if not is_value_scalar:
                    problem("a mapping key must be a plain value such as a string, not a list or mapping",
                            event.start_mark)
                    frame.key = _SKIP
                    continue
                if value in frame.container:
                    problem(
                        f"duplicate key {value!r}: this mapping already has it "
                        "(YAML would silently keep only the last value)",
                        event.start_mark,
                    )
                frame.key = value
                if len(stack) == 1 and doc is not None:
                    doc.key_pos[value] = _pos(event.start_mark)
                continue
            frame.key = _MISSING
            if key is _SKIP:
                continue
            if key is _MERGE_KEY:
                if frame.merges is None:
                    frame.merges = []
                frame.merges.append((value, event.start_mark))
                continue
            frame.container[key] = value

    def _merged(self, own: dict[Any, Any], merges: list[tuple[Any, Any]]) -> dict[Any, Any]:
        """Apply ``<<`` merge keys: own keys win, then earlier merged mappings over later ones."""
        sources: list[dict[Any, Any]] = []
        for value, mark in merges:
            items = value if isinstance(value, list) else [value]
            for item in items:
                if isinstance(item, dict):
                    sources.append(item)
                else:
                    self._problem("'<<' (merge) needs a mapping or a list of mappings", mark)
        result: dict[Any, Any] = {}
        for source in reversed(sources):
            result.update(source)
        result.update(own)
        return result

    def _copy(self, value: Any, events: int, mark: Any) -> Any:
        """Independent copy of an anchored value, counted against the alias budget."""
        if not isinstance(value, (dict, list)):
            return value
        budget = ALIAS_BUDGET_BASE + events
        todo = [value]
        # Count first (cheap, iterative) so that a bomb is refused before anything is built.
        count = 0
        while todo:
            node = todo.pop()
            children = node.values() if isinstance(node, dict) else node
            count += len(children)
            if self._alias_used + count > budget:
                raise _AliasBomb(
                    f"alias expansion too large (more than {budget} values): refusing a "
                    "'billion laughs'-style document",
                    _pos(mark),
                )
            todo.extend(c for c in children if isinstance(c, (dict, list)))
        self._alias_used += count

        def clone(node: Any) -> Any:
            if isinstance(node, dict):
                return {k: clone(v) for k, v in node.items()}
            if isinstance(node, list):
                return [clone(v) for v in node]
            return node

        return clone(value)


def _tagged_error(tag: str) -> str:
    return (
        f"unsupported YAML tag {short_tag(tag)!r}: manifests may hold only plain strings, numbers, "
        "booleans, null, lists and mappings (the tag was not applied)"
    )


def _syntax_message(exc: yaml.MarkedYAMLError, text: str, line: int, column: int) -> str:
    """A plain message; a tab in the indentation of the offending line is named as the cause
    (libyaml's own wording, "found character that cannot start any token", does not say so)."""
    problem = exc.problem or "invalid YAML"
    lines = text.splitlines()
    source = lines[line - 1] if 0 < line <= len(lines) else ""
    indentation = source[: len(source) - len(source.lstrip(" \t-"))]
    at_tab = source[column - 1 : column] == "\t"
    if "'\\t'" in problem or "\t" in problem or "\t" in indentation or at_tab:
        return (
            "YAML syntax error: a tab character where indentation or a value is expected "
            "(YAML does not allow tabs for indentation; use spaces)"
        )
    context = f" {exc.context}" if exc.context else ""
    return f"YAML syntax error: {problem}{context}"


def _offset_position(text: str, offset: int) -> Pos:
    """1-based line and column of a byte offset into the UTF-8 form of ``text``."""
    data = text.encode("utf-8", "surrogatepass")[: max(offset, 0)]
    line = data.count(b"\n") + 1
    column = len(data) - (data.rfind(b"\n") + 1) + 1
    return line, column
