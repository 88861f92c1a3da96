"""Manifest files -> :class:`Manifests` plus every problem found, never an exception.

The steps, each driven by the kind registry rather than per-kind code:

1. find files (directories recursively, ``*.yaml``/``*.yml``, sorted, hidden entries skipped);
   each must resolve to a regular file within the size limit (``files``), else it is refused
   unread as ``FILE: message``;
2. read each as UTF-8 and build its documents: with yaml-rs when ``fastyaml`` is sure that
   gives the same values and the file has the usual shape (object positions are then found
   only if a message needs them), else with ``yaml_events`` (duplicate keys, tags, aliases,
   ``${NAME}`` expansion, every problem at its line and column);
3. check each document's shape (a mapping of known top-level keys; lists for keyed kinds,
   mappings for singletons) and collect objects, reporting duplicate codes and a second
   ``organization``/``customFields``/``settings`` with both places named;
4. validate every object against its pydantic model (keyed kinds in bulk); for large manifests
   a worker process reads and validates the last files while this one reads the first
   (``validation``: same objects, same messages, same order);
5. cross-object rules (``rules``) and domain warnings (``advice``);
6. give positions to the messages that need a field's line and column: one re-scan per file
   with such messages (``locate``), so a clean run pays nothing for positions.
"""

from __future__ import annotations

import difflib
import os
import stat
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ValidationError

from reconciler import kinds
from reconciler.diagnostics import Diagnostic, Location, Severity, whole_file
from reconciler.manifest import advice, gcpause, rules, validation
from reconciler.manifest.expand import EnvExpander
from reconciler.manifest.fastyaml import NOT_FAST, fast_load
from reconciler.manifest.files import ManifestFileError, max_manifest_bytes, read_manifest_bytes
from reconciler.manifest.locate import LazyLocations, Locator, best_position, read_text, scan
from reconciler.manifest.messages import describe
from reconciler.manifest.positions import Pos, Problem
from reconciler.manifest.settings import Settings, default_settings
from reconciler.manifest.types import DesiredObject, LoadResult, Manifests, NodePath

if TYPE_CHECKING:
    from reconciler.kinds import Kind
    from reconciler.manifest.yaml_events import ParsedDocument

MANIFEST_SUFFIXES = (".yaml", ".yml")


@dataclass(slots=True)
class PendingDiagnostic:
    """A diagnostic whose position is a field path, resolved after loading in one scan per file."""

    severity: Severity
    message: str
    file: str
    path: NodePath
    prefer: str  # "key" or "value"
    obj: DesiredObject  # its location is the fallback (resolved only if the field is not found)
    location: Location | None = None  # once resolved


@dataclass(slots=True)
class LoadState:
    """Everything gathered while reading files; turned into a LoadResult at the end."""

    environ: Mapping[str, str]
    diagnostics: list[Diagnostic] = field(default_factory=list)
    pending: list[PendingDiagnostic] = field(default_factory=list)
    objects: dict[str, dict[str, DesiredObject]] = field(default_factory=dict)
    # Every object of a kind (also those without a usable code), for validation.
    items: dict[str, list[DesiredObject]] = field(default_factory=dict)
    settings: DesiredObject | None = None
    files: list[str] = field(default_factory=list)
    max_file_bytes: int = 0  # set from RECONCILER_MAX_MANIFEST_BYTES when loading starts

    def error(self, message: str, location: Location) -> None:
        self.diagnostics.append(Diagnostic("error", message, location))

    def describe(self, obj: DesiredObject) -> str:
        """How messages name an object (``account 'ACME'``): for the kinds' own checks."""
        return describe(obj)

    def at_field(
        self, severity: Severity, message: str, obj: DesiredObject, path: Sequence[str | int], prefer: str = "key"
    ) -> None:
        """Queue a message located at a field of ``obj`` (resolved in one pass at the end)."""
        self.pending.append(_pending_at(severity, message, obj, path, prefer))


def _pending_at(
    severity: Severity, message: str, obj: DesiredObject, path: Sequence[str | int], prefer: str
) -> PendingDiagnostic:
    """A message about a field of ``obj``, its position found later (``_locate``)."""
    return PendingDiagnostic(severity, message, obj.file, (*obj.node_path, *path), prefer, obj)


def find_files(paths: Sequence[str], state: LoadState) -> list[str]:
    """Manifest files named by ``paths``, each once, directories expanded in sorted order."""
    files: list[str] = []
    seen: set[str] = set()

    def add(path: str) -> None:
        real = os.path.realpath(path)
        if real not in seen:
            seen.add(real)
            files.append(path)

    for path in paths:
        try:
            is_dir = stat.S_ISDIR(os.stat(path).st_mode)
        except OSError:
            state.error("no such file or directory (or a broken symbolic link)", whole_file(path))
            continue
        if is_dir:
            found: list[str] = []
            for root, dirs, names in os.walk(path):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                found.extend(
                    os.path.join(root, n) for n in names if n.endswith(MANIFEST_SUFFIXES) and not n.startswith(".")
                )
            if not found:
                state.error("no manifest files (*.yaml, *.yml) under this directory", whole_file(path))
            for file in sorted(found, key=lambda f: os.path.relpath(f, path).split(os.sep)):
                add(file)
        else:
            add(path)  # whatever it is: reading checks it is a regular file of sane size
    return files


def _read(file: str, state: LoadState) -> str | None:
    """A file's text (or None, with the problem reported)."""
    try:
        data = read_manifest_bytes(file, state.max_file_bytes)
    except ManifestFileError as exc:
        state.error(str(exc), whole_file(file))
        return None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        state.error(
            f"file is not valid UTF-8 (byte 0x{data[exc.start]:02x}); manifests must be saved as UTF-8",
            Location(file, line, column),
        )
        return None


def _loc(file: str, pos: Pos) -> Location:
    return Location(file, pos[0], pos[1])


def _read_document(file: str, doc: ParsedDocument, state: LoadState) -> None:
    """Check one document's shape and collect its objects."""
    data = doc.data
    if data is None:
        return  # an empty document declares nothing
    if not isinstance(data, dict):
        what = "a list" if isinstance(data, list) else f"a single value ({type(data).__name__})"
        state.error(
            f"a manifest document must be a mapping with top-level keys such as organization, currencies "
            f"or accounts, not {what}",
            _loc(file, doc.start),
        )
        return
    for key, value in data.items():
        key_loc = _loc(file, doc.key_pos.get(key, doc.start))
        if key not in kinds.TOP_LEVEL_KEYS:
            close = difflib.get_close_matches(str(key), kinds.TOP_LEVEL_KEYS, n=1, cutoff=0.6)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            state.error(
                f"unknown top-level key {key!r}{hint}; allowed: {', '.join(kinds.TOP_LEVEL_KEYS)}", key_loc
            )
            continue
        if value is None:
            continue  # ``accounts:`` with nothing under it declares nothing
        if key == kinds.SETTINGS_KEY:
            _singleton(file, doc, key, value, key_loc, state, None)
            continue
        kind = kinds.BY_MANIFEST_KEY[key]
        if kind.singleton:
            _singleton(file, doc, key, value, key_loc, state, kind)
        else:
            _keyed(file, doc, kind, value, key_loc, state)


def _singleton(
    file: str, doc: ParsedDocument, key: str, value: Any, key_loc: Location, state: LoadState, kind: Kind | None
) -> None:
    if not isinstance(value, dict):
        state.error(f"{key}: must be a mapping of fields (got {type(value).__name__})", key_loc)
        return
    name = kind.name if kind else kinds.SETTINGS_KEY
    obj = DesiredObject(name, name, value, key_loc, (doc.index, key))
    previous = state.settings if kind is None else state.objects[name].get(name)
    if previous is not None:
        state.error(f"{key} is declared twice: here and at {previous.location}; declare it once", key_loc)
        return
    if kind is None:
        state.settings = obj
    else:
        state.objects[name][name] = obj
        state.items[name].append(obj)


def _keyed(file: str, doc: ParsedDocument, kind: Kind, value: Any, key_loc: Location, state: LoadState) -> None:
    if not isinstance(value, list):
        state.error(f"{kind.manifest_key}: must be a list (got {type(value).__name__})", key_loc)
        return
    positions = doc.item_pos.get(kind.manifest_key, [])
    per_kind = state.objects[kind.name]
    items = state.items[kind.name]
    for index, item in enumerate(value):
        location = _loc(file, positions[index]) if index < len(positions) else key_loc
        if not isinstance(item, dict):
            state.error(f"{kind.manifest_key}[{index}]: must be a mapping of fields (got {_kind_of(item)})",
                        location)
            continue
        obj = DesiredObject(kind.name, "", item, location, (doc.index, kind.manifest_key, index))
        items.append(obj)
        _claim_code(state, per_kind, obj, kind, index)


def _claim_code(state: LoadState, per_kind: dict[str, DesiredObject], obj: DesiredObject, kind: Kind,
                index: int) -> None:
    """The object takes its key (its code, or its composite identity) as its key; a second
    object with a key already taken is reported at its own place, naming the first. A missing
    or mistyped code is left to validation, which says what is wrong with it. Objects nested
    in it (``Kind.nested_in``) are collected as objects of their own kinds."""
    nested = kinds.NESTED_BY_HOST.get(kind.name)
    if nested and not _NESTED_FIELDS[kind.name].isdisjoint(obj.fields):
        _unnest(state, obj, nested)
    code = obj.fields.get("code") if kind.by_code else kind.key_in_manifest(obj.fields)
    if type(code) is not str:
        return
    obj.key = code
    first = per_kind.get(code)
    if first is not None:
        what = f"{kind.name} code" if kind.by_code else kind.name
        state.error(
            f"{_place(obj)}: duplicate {what} {code!r}, first declared at "
            f"{first.location}; each {'code' if kind.by_code else 'one'} may appear once across all manifests",
            obj.location,
        )
        return
    per_kind[code] = obj


# host kind name -> the fields its nested kinds are written under (``accountPlans``)
_NESTED_FIELDS: dict[str, frozenset[str]] = {
    host: frozenset(n.field for _, n in nested) for host, nested in kinds.NESTED_BY_HOST.items()
}


def _place(obj: DesiredObject) -> str:
    """``accounts[3]`` or ``plans[0].pricings[2]``: where an object sits in its document."""
    path = obj.node_path[1:]
    out = ""
    for step in path:
        out += f"[{step}]" if isinstance(step, int) else (f".{step}" if out else str(step))
    return out


def _unnest(state: LoadState, host: DesiredObject, nested: tuple[tuple[Kind, kinds.Nesting], ...]) -> None:
    """Take the nested lists out of a host object (its model does not know them) and collect
    their items as objects of the nested kinds, each naming the host by its code."""
    host.fields = fields = dict(host.fields)
    host_code = fields.get("code")
    for kind, nesting in nested:
        if nesting.field not in fields:
            continue
        value = fields.pop(nesting.field)
        if value is None:
            continue
        place = f"{_place(host)}.{nesting.field}"
        if not isinstance(value, list):
            state.at_field("error", f"{place}: must be a list (got {_kind_of(value)})", host, (nesting.field,))
            continue
        if type(host_code) is not str:
            continue  # validation reports the host's code; its nested objects cannot name it
        per_kind = state.objects[kind.name]
        items = state.items[kind.name]
        for index, item in enumerate(value):
            if nesting.scalar and not isinstance(item, dict | list) and item is not None:
                item = {nesting.scalar: item}
            if not isinstance(item, dict):
                state.at_field("error", f"{place}[{index}]: must be a mapping of fields (got {_kind_of(item)})",
                               host, (nesting.field, index))
                continue
            if nesting.reference in item:
                state.at_field(
                    "error",
                    f"{place}[{index}]: {nesting.reference}: leave it out; an object written under "
                    f"{host.kind} {host_code!r} belongs to it",
                    host, (nesting.field, index, nesting.reference))
                continue
            obj = DesiredObject(kind.name, "", {nesting.reference: host_code, **item}, host._location,
                                (*host.node_path, nesting.field, index), host._lazy)
            if host._lazy is not None:
                host._lazy.add(obj)
            items.append(obj)
            _claim_code(state, per_kind, obj, kind, index)


def _fast_shape_ok(data: Any) -> bool:
    """True when ``_read_document`` would find nothing wrong with a document's shape (a
    mapping of known top-level keys, mappings for singletons, lists of mappings for keyed
    kinds). Any other file is read again by the event builder, whose messages carry the exact
    position of the problem."""
    if data is None:
        return True
    if type(data) is not dict:
        return False
    for key, value in data.items():
        if key not in kinds.TOP_LEVEL_KEYS:
            return False
        if value is None:
            continue
        if key == kinds.SETTINGS_KEY or kinds.BY_MANIFEST_KEY[key].singleton:
            if type(value) is not dict:
                return False
        elif type(value) is not list or not all(type(item) is dict for item in value):
            return False
    return True


def _read_fast(file: str, data: dict[str, Any] | None, state: LoadState) -> None:
    """``_read_document`` for a well-shaped document read by yaml-rs: the same objects and
    messages, with positions resolved only when a message asks for one."""
    if data is None:
        return
    lazy = LazyLocations(file, state.max_file_bytes)
    for key, value in data.items():
        if value is None:
            continue
        if key == kinds.SETTINGS_KEY or kinds.BY_MANIFEST_KEY[key].singleton:
            kind = None if key == kinds.SETTINGS_KEY else kinds.BY_MANIFEST_KEY[key]
            name = kind.name if kind else kinds.SETTINGS_KEY
            obj = DesiredObject(name, name, value, None, (0, key), lazy)
            lazy.add(obj)
            previous = state.settings if kind is None else state.objects[name].get(name)
            if previous is not None:
                state.error(f"{key} is declared twice: here and at {previous.location}; declare it once",
                            obj.location)
            elif kind is None:
                state.settings = obj
            else:
                state.objects[name][name] = obj
                state.items[name].append(obj)
            continue
        kind = kinds.BY_MANIFEST_KEY[key]
        per_kind = state.objects[kind.name]
        items = state.items[kind.name]
        manifest_key = kind.manifest_key
        kind_name = kind.name
        by_code = kind.by_code  # the usual case (a new code, nothing nested in it) is inlined
        hosted = _NESTED_FIELDS.get(kind.name)  # the fields other kinds nest under, if any
        registered = len(items)  # objects before this are known to ``lazy``
        for index, item in enumerate(value):
            obj = DesiredObject(kind_name, "", item, None, (0, manifest_key, index), lazy)
            items.append(obj)
            if by_code and (hosted is None or hosted.isdisjoint(item)):
                code = item.get("code")
                if type(code) is str and code not in per_kind:
                    obj.key = code  # _claim_code's outcome for a new code
                    per_kind[code] = obj
                    continue
            lazy.extend(items[registered:])  # a message may ask where this object is
            registered = len(items)
            _claim_code(state, per_kind, obj, kind, index)
        lazy.extend(items[registered:])


def _kind_of(value: Any) -> str:
    return "a list" if isinstance(value, list) else "null" if value is None else type(value).__name__


def _validate_settings(state: LoadState) -> Settings:
    """The ``settings`` block as a model (defaults when absent or invalid; errors reported)."""
    if state.settings is None:
        return default_settings()
    try:
        return Settings.model_validate(state.settings.fields)
    except ValidationError as exc:
        _report(Settings, kinds.SETTINGS_KEY, state.settings, exc.errors(include_url=False), state)
        return Settings()


def _report(
    model: type[BaseModel], name: str, obj: DesiredObject, errors: list[Any], state: LoadState, skip: int = 0
) -> None:
    for message, path, prefer in validation.problems(model, name, obj, errors, skip=skip):
        state.at_field("error", message, obj, path, prefer)


def _locate(state: LoadState, pending: Sequence[PendingDiagnostic]) -> None:
    """Give each queued message without one its field position: one scan per file."""
    by_file: dict[str, list[PendingDiagnostic]] = {}
    for p in pending:
        if p.location is None:
            by_file.setdefault(p.file, []).append(p)
    for file, group in by_file.items():
        text = read_text(file, state.max_file_bytes)
        found = scan(text, [p.path for p in group]) if text is not None else {}
        for p in group:
            pos = best_position(found, p.path, p.prefer)
            p.location = _loc(file, pos) if pos else p.obj.location


def _resolve_pending(state: LoadState) -> list[Diagnostic]:
    """The queued messages, located, grouped by file in the order files first appear."""
    _locate(state, state.pending)
    by_file: dict[str, list[PendingDiagnostic]] = {}
    for pending in state.pending:
        by_file.setdefault(pending.file, []).append(pending)
    return [Diagnostic(p.severity, p.message, p.location) for group in by_file.values() for p in group]


def _problems(file: str, problems: list[Problem], state: LoadState) -> None:
    for problem in problems:
        state.error(problem.message, Location(file, problem.line, problem.column))


def load_manifests(paths: Sequence[str], environ: Mapping[str, str] | None = None) -> LoadResult:
    """Load, validate and cross-check manifests; every problem is a Diagnostic, never a raise.

    The garbage collector is paused meanwhile and what was loaded is kept out of its later
    walks (``gcpause``): the loaded data has no cycles, and at 100k accounts the collector
    otherwise costs about a quarter of the load and slows every later step of a plan."""
    with gcpause.paused():
        result = _load(paths, environ)
        gcpause.settle()  # before the collector is back on: see gcpause.settle
    return result


def _read_slow(file: str, text: str, state: LoadState) -> None:
    """A file off the fast path: the event builder, with every position and problem."""
    from reconciler.manifest.yaml_events import DocumentBuilder  # PyYAML: only off the fast path

    problems: list[Problem] = []
    builder = DocumentBuilder(EnvExpander(state.environ, problems), problems)
    for doc in builder.documents(text):
        _read_document(file, doc, state)
    _problems(file, problems, state)


def _load(paths: Sequence[str], environ: Mapping[str, str] | None) -> LoadResult:
    state = _new_state(os.environ if environ is None else environ)
    state.max_file_bytes, limit_problem = max_manifest_bytes(state.environ)
    if limit_problem:
        state.diagnostics.append(Diagnostic("error", limit_problem))
    validator = validation.Validator(_fast_data, _objects_of_data, fork=validation.can_fork(state.environ),
                                     limit=state.max_file_bytes)
    try:
        files = find_files(paths, state)
        validator.start(files)  # a worker may read the last files meanwhile
        for index, file in enumerate(files):
            state.files.append(file)
            taken = validator.take(index)
            if taken is not None:
                _read_fast(file, taken[0], state)
                validator.done(state)
                continue
            text = _read(file, state)
            if text is None:
                continue
            data = fast_load(text)
            if data is not NOT_FAST and _fast_shape_ok(data):
                del text
                validator.hand(index, data)  # the worker may validate it meanwhile
                _read_fast(file, data, state)
            else:
                _read_slow(file, text, state)
            validator.done(state)
        at = len(state.pending)  # where one process validating here would have put its messages
        manifests = Manifests(
            objects=state.objects,
            settings=_validate_settings(state),
            settings_object=state.settings,
            files=state.files,
            _locator=Locator(state.max_file_bytes),
        )
        rules.check(manifests, state)  # meanwhile, the worker validates the last files
        advice.check(manifests, state)
        _locate(state, state.pending)  # still meanwhile: usually the only scan for positions
        found = validator.finish(state)
    finally:
        validator.abandon()
    state.pending[at:at] = [_pending_at("error", message, obj, path, prefer) for obj, message, path, prefer in found]
    state.diagnostics.extend(_resolve_pending(state))
    return LoadResult(manifests, state.diagnostics)


def _new_state(environ: Mapping[str, str]) -> LoadState:
    state = LoadState(environ=environ)
    for kind in kinds.KINDS:
        state.objects[kind.name] = {}
        state.items[kind.name] = []
    return state


def _fast_data(file: str, limit: int) -> tuple[Any] | None:
    """For the validation worker: a file's value as ``_load`` would take it on the fast path
    (read, decoded, gated, parsed, well shaped), or None when ``_load`` must read the file
    itself (to report its problem, or to read it off the fast path)."""
    try:
        text = read_manifest_bytes(file, limit).decode("utf-8-sig")
    except (ManifestFileError, UnicodeDecodeError):
        return None
    data = fast_load(text)
    if data is NOT_FAST or not _fast_shape_ok(data):
        return None
    return (data,)


def _objects_of_data(file: str, data: Any) -> dict[str, list[DesiredObject]]:
    """The objects of one file's fast-path value, by kind, in the order ``_load`` collects
    them (for the validation worker, whose messages name them by index)."""
    state = _new_state({})  # the fast path never expands ${NAME}: no environment needed
    _read_fast(file, data, state)
    return state.items
