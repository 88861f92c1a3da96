"""Positions of fields inside manifest files, found only when a message needs one.

Loading records where each object starts (cheap); recording the position of every field of
100k accounts would cost more time and memory than the parse itself. When a diagnostic needs
the line and column of a nested field, the file is scanned again as a libyaml event stream
(no values are built) and only the requested paths are recorded. Requests for one file are
answered by a single scan.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from reconciler.diagnostics import Location, whole_file
from reconciler.manifest.files import DEFAULT_MAX_MANIFEST_BYTES, ManifestFileError, read_manifest_bytes
from reconciler.manifest.positions import Pos
from reconciler.manifest.types import DesiredObject, NodePath


@dataclass(slots=True)
class NodePositions:
    key: Pos | None  # the key naming this node in its mapping (None for list items, documents)
    value: Pos  # where the node itself starts
    scalar: bool


def _norm(part: Any) -> Any:
    return part if isinstance(part, int) and not isinstance(part, bool) else str(part)


def scan(text: str, wanted: Iterable[NodePath]) -> dict[NodePath, NodePositions]:
    """Positions of every node on the way to each wanted path (doc index, key or index, ...)."""
    prefixes: set[NodePath] = set()
    for want in wanted:
        norm = tuple(_norm(p) for p in want)
        for i in range(1, len(norm) + 1):
            prefixes.add(norm[:i])
    found: dict[NodePath, NodePositions] = {}
    if not prefixes:
        return found
    remaining = set(prefixes)
    # PyYAML only when a message needs a position: a clean fast-path load never imports it
    from yaml.events import (
        AliasEvent,
        DocumentStartEvent,
        MappingEndEvent,
        MappingStartEvent,
        ScalarEvent,
        SequenceEndEvent,
        SequenceStartEvent,
        StreamEndEvent,
    )

    from reconciler.manifest.yaml_events import _Loader

    loader = _Loader(text)
    # Frames: [path, is_map, next key or index, key position]
    stack: list[list[Any]] = []
    doc = -1
    try:
        while remaining:
            event: Any = loader.get_event()
            cls = event.__class__
            if cls is StreamEndEvent:
                break
            if cls is DocumentStartEvent:
                doc += 1
                continue
            if cls is MappingEndEvent or cls is SequenceEndEvent:
                stack.pop()
                continue
            if cls not in (ScalarEvent, MappingStartEvent, SequenceStartEvent, AliasEvent):
                continue
            key_pos: Pos | None = None
            path: NodePath
            if not stack:
                path = (doc,)
            else:
                frame = stack[-1]
                if frame[1]:
                    if frame[2] is None:  # this node is a key
                        if cls is ScalarEvent:
                            frame[2] = event.value
                            frame[3] = (event.start_mark.line + 1, event.start_mark.column + 1)
                        else:
                            frame[2] = object()  # complex key: its value is unreachable by path
                            stack.append([None, cls is MappingStartEvent, None, None])
                        continue
                    path = (*frame[0], frame[2]) if frame[0] is not None else ()
                    key_pos = frame[3]
                    frame[2] = None
                else:
                    path = (*frame[0], frame[2]) if frame[0] is not None else ()
                    frame[2] += 1
            pos = (event.start_mark.line + 1, event.start_mark.column + 1)
            tracked = path in prefixes
            if tracked:
                found[path] = NodePositions(key_pos, pos, cls is ScalarEvent or cls is AliasEvent)
                remaining.discard(path)
            if cls is MappingStartEvent:
                stack.append([path if tracked else None, True, None, None])
            elif cls is SequenceStartEvent:
                stack.append([path if tracked else None, False, 0, None])
    except Exception:  # a file that changed or broke since loading: use what was found
        pass
    finally:
        loader.dispose()
    return found


def best_position(found: dict[NodePath, NodePositions], path: NodePath, prefer: str) -> Pos | None:
    """Position for ``path``: its key (``prefer='key'``) or its value when that is a scalar
    (``prefer='value'``); for a missing node, the nearest ancestor that exists."""
    norm = tuple(_norm(p) for p in path)
    for i in range(len(norm), 0, -1):
        node = found.get(norm[:i])
        if node is None:
            continue
        if i == len(norm) and prefer == "value" and node.scalar:
            return node.value
        return node.key or node.value
    return None


def read_text(file: str, max_bytes: int = DEFAULT_MAX_MANIFEST_BYTES) -> str | None:
    """The file again, for positions, with the loader's checks: it may have been replaced
    by a FIFO or grown since loading, and a re-scan must neither hang nor exhaust memory."""
    try:
        return read_manifest_bytes(file, max_bytes).decode("utf-8-sig")
    except (ManifestFileError, UnicodeDecodeError):
        return None


class Locator:
    """``Manifests._locator``: field positions on demand, cached, one scan per batch and file."""

    def __init__(self, max_bytes: int = DEFAULT_MAX_MANIFEST_BYTES) -> None:
        self._cache: dict[tuple[str, NodePath], Pos | None] = {}
        self._max_bytes = max_bytes

    def __call__(self, obj: DesiredObject, field_path: tuple[str | int, ...]) -> Location:
        return self.many([(obj, field_path)])[0]

    def many(self, requests: list[tuple[DesiredObject, tuple[str | int, ...]]]) -> list[Location]:
        """Locations for several (object, field path) requests, scanning each file once."""
        by_file: dict[str, set[NodePath]] = {}
        for obj, field_path in requests:
            full = (*obj.node_path, *field_path)
            if obj.node_path and (obj.file, full) not in self._cache:
                by_file.setdefault(obj.file, set()).add(full)
        for file, paths in by_file.items():
            text = read_text(file, self._max_bytes)
            found = scan(text, paths) if text is not None else {}
            for full in paths:
                self._cache[(file, full)] = best_position(found, full, "key")
        out: list[Location] = []
        for obj, field_path in requests:
            pos = self._cache.get((obj.file, (*obj.node_path, *field_path))) if obj.node_path else None
            out.append(Location(obj.file, *pos) if pos else obj.location)
        return out


class LazyLocations:
    """Where the objects of one file start, for a file read by the fast path (no positions).

    Nothing is paid while no message names an object; the first ``location`` asked of any of
    the file's objects re-reads the file once with libyaml and places every object of it (a
    mapping item at its first key, a singleton at its top-level key, as the event builder
    does), so many messages about one file still cost one scan.
    """

    def __init__(self, file: str, max_bytes: int = DEFAULT_MAX_MANIFEST_BYTES) -> None:
        self.file = file
        self._max_bytes = max_bytes
        self._objects: list[DesiredObject] = []

    def add(self, obj: DesiredObject) -> None:
        self._objects.append(obj)

    def extend(self, objs: Iterable[DesiredObject]) -> None:
        self._objects.extend(objs)

    def resolve(self) -> None:
        text = read_text(self.file, self._max_bytes)
        found = scan(text, [o.node_path for o in self._objects]) if text is not None else {}
        fallback = whole_file(self.file)
        for obj in self._objects:
            node = found.get(tuple(_norm(p) for p in obj.node_path))
            if node is None:  # the file changed or broke since it was read
                obj.location = fallback
            elif len(obj.node_path) == 2:  # a singleton: at its top-level key
                obj.location = Location(self.file, *(node.key or node.value))
            else:
                obj.location = Location(self.file, *node.value)
        self._objects = []
