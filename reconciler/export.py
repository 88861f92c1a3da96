"""Write manifests for an existing organization: ``reconciler export --out DIR``.

The export is the starting point of a team's manifests, so it is written for people who
review diffs: stable (a second export of the same organization is byte-identical), small
files, and a round trip that holds (``plan`` on an export against the same organization
shows no changes).

Layout of DIR (file names come from the kind registry, never from raw codes)::

    organization.yaml        organization:      (the organization config)
    currencies.yaml          currencies:        sorted by code
    credit-reasons.yaml      creditReasons:
    debit-reasons.yaml       debitReasons:
    transaction-types.yaml   transactionTypes:
    custom-fields.yaml       customFields:      (organization-level defaults)
    accounts/<slug>.yaml     accounts:          families of accounts, see below

A kind with nothing live (say, no debit reasons) gets no file.

Accounts. A *family* is a root account (no parent) with all its descendants, written parents
before children (depth first, children sorted by code); families are taken in root-code order
and packed into files of at most :data:`MAX_ACCOUNTS_PER_FILE` accounts. Where one file ends
and the next begins is decided by the families themselves rather than by a running count: a
new file starts before a family whose root code hashes to a boundary value (about one family
in :data:`BOUNDARY_MODULUS`) once the current file holds :data:`MIN_ACCOUNTS_PER_FILE`
accounts, or when the family would overflow the file. So adding or removing a family changes
one file, not every file after it, and a re-export after hand changes in the Console reads
as a small diff. A family larger than a file is split over consecutive files. Each file is
named after the first account code in it: :func:`safe_slug` keeps ``[a-z0-9_-]`` only and
adds a short hash of the raw code whenever the slug is not exactly the code (case, unicode,
``/``, ``..``, spaces, ``:``, ``*``, length, reserved device names), so codes differing only
by case never share a file name on a case-insensitive file system; a clash left after that
gets ``-2``, ``-3`` ...

What is written:

- Field names and order come from the manifest models (``code`` and ``name`` first, then the
  model's order); fields the models do not know (m3ter may add some) are left out and
  reported. Read-only fields (``id``, ``version``, audit fields) are never written.
- An account's ``parentAccountId`` is written as ``parent: <code>``.
- A statement definition id (``defaultStatementDefinitionId``, ``statementDefinitionId``) is
  written as its name (``defaultStatementDefinition: NAME``, ``statementDefinition: NAME``),
  which plan resolves back to the id (``reconciler.lookups``), so the manifests serve another
  organization holding a definition of that name. An id whose definition shares its name
  with another, or no longer exists, is written as the id (a name would not resolve back).
  Statement definitions are read only when some exported object points at one.
- Empty values (``null``, ``""``, ``[]``, ``{}``) are left out: absent means unmanaged, so the
  round trip holds. An empty list the kind's model requires (a meter's ``derivedFields: []``)
  is written, since leaving it out would not load back. ``archived: true`` is kept on
  archived picklist entries (``archived: false`` is the default and left out); booleans of
  the organization config are kept whether true or false.
- Numbers are written by value: an integral float such as ``30.0`` is written ``30``.
  ``currencyConversions`` are sorted (their order has no meaning); ``creditApplicationOrder``
  keeps its order (it has one); map keys (custom fields) are sorted.
- A string value holding ``${`` is written with ``$${`` so that loading it back does not
  expand a variable (the loader turns ``$${`` into a literal ``${``; mapping keys are never
  expanded, so custom field names are written as they are).
- Values are exported exactly as live, even one the manifest models would reject (a live
  value outside today's limits): ``reconciler validate DIR`` then points at it.
- ``settings`` are not exported: what to prune is the team's decision.

Writing is careful: nothing is written when reading the organization fails; DIR must be
empty (or absent) unless ``force``; every path is checked to resolve inside DIR; nothing is
written through or over a symbolic link; each file is written to a temporary file beside
it and renamed into place. With ``force``, files of the same names are replaced and stale
``*.yaml`` files under DIR whose first line is reconciler's export header (:data:`HEADER`)
are removed; nothing else in DIR is touched.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import math
import os
import re
import tempfile
import typing
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from reconciler import kinds as registry
from reconciler.backends.base import Backend, Entity
from reconciler.compare import is_empty
from reconciler.diagnostics import ReconcilerError
from reconciler.kinds import READ_ONLY_FIELDS, Kind
from reconciler.lookups import NAMED_REFERENCES, read_targets, unique_names
from reconciler.plan import LiveState

#: First line of every exported file; ``--force`` only ever removes files starting with it.
HEADER = "# Written by reconciler export"
MAX_ACCOUNTS_PER_FILE = 500
MIN_ACCOUNTS_PER_FILE = 50
BOUNDARY_MODULUS = 128
SLUG_MAX = 48
HASH_LEN = 8



def _family_ref(kind: Kind) -> registry.Reference | None:
    """A kind that refers to itself by id (accounts' ``parent``) makes families: written as a
    directory of files, parents before children."""
    return next((r for r in kind.references if r.target == kind.name and r.by_id and r.plain_field), None)

# Booleans worth keeping when false (their defaults differ per organization).
_KEEP_FALSE_KINDS = frozenset({"organizationConfig"})
_WINDOWS_RESERVED = frozenset(
    {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(10)), *(f"lpt{i}" for i in range(10))}
)
_DROP = object()


class ExportError(ReconcilerError):
    """The export refused to start or to write; nothing or only whole files were written."""


@dataclass(slots=True)
class ExportResult:
    out_dir: str
    files: list[str] = field(default_factory=list)  # written, relative POSIX paths, sorted
    counts: dict[str, int] = field(default_factory=dict)  # kind name -> objects written
    removed: list[str] = field(default_factory=list)  # stale exported files removed (--force)
    warnings: list[str] = field(default_factory=list)

    def summary_line(self) -> str:
        parts = [_count_label(registry.get(name), n) for name, n in self.counts.items() if n]
        files = f"{len(self.files)} file{'' if len(self.files) == 1 else 's'}"
        removed = f", {len(self.removed)} stale file{'' if len(self.removed) == 1 else 's'} removed" if (
            self.removed) else ""
        return f"Exported {', '.join(parts) or 'nothing'} to {self.out_dir} ({files}{removed})."


# ---------------------------------------------------------------------------- kinds


def _norm(name: str) -> str:
    return re.sub(r"[-_\s]", "", name).lower()


def resolve_kinds(names: Iterable[str]) -> list[Kind]:
    """Kinds named by kind name (``account``) or manifest key (``accounts``), in registry order.

    Spelling is forgiving about case, ``-`` and ``_`` (``credit-reasons`` works)."""
    table: dict[str, Kind] = {}
    for kind in registry.KINDS:
        table[_norm(kind.name)] = kind
        table[_norm(kind.manifest_key)] = kind
    chosen: set[str] = set()
    unknown: list[str] = []
    given = [n.strip() for n in names if n.strip()]
    if not given:
        raise ExportError(f"no kinds given; valid kinds: {_valid_kinds()}")
    for name in given:
        found = table.get(_norm(name))
        if found is None:
            unknown.append(name)
        else:
            chosen.add(found.name)
    if unknown:
        listed = ", ".join(repr(u) for u in unknown)
        raise ExportError(f"unknown kind {listed}; valid kinds: {_valid_kinds()}")
    return [k for k in registry.KINDS if k.name in chosen]


def _valid_kinds() -> str:
    return ", ".join(
        k.name if k.name == k.manifest_key else f"{k.manifest_key} ({k.name})" for k in registry.KINDS
    )


def _words(camel: str) -> str:
    return re.sub(r"(?<!^)([A-Z])", r" \1", camel).lower()


def _count_label(kind: Kind, n: int) -> str:
    if kind.singleton:
        return _words(kind.name) if n == 1 else f"{n} {_words(kind.name)}"
    return f"{n} {_words(kind.name) if n == 1 else _words(kind.manifest_key)}"


def file_name(kind: Kind) -> str:
    """``creditReasons`` -> ``credit-reasons`` (a file stem, or the directory of a split kind)."""
    return _words(kind.manifest_key).replace(" ", "-")


# ---------------------------------------------------------------------------- file names


def safe_slug(code: str) -> str:
    """A file-name stem for ``code``: ``[a-z0-9_-]`` only, never empty, never a path.

    Lossless (the stem is exactly the code) or it carries a hash of the raw code, so two
    different codes get different stems, also on case-insensitive file systems."""
    ascii_text = unicodedata.normalize("NFKD", code).encode("ascii", "ignore").decode("ascii")
    slug = re.sub(r"[^a-z0-9_-]+", "-", ascii_text.lower()).strip("-_")[:SLUG_MAX].rstrip("-_")
    if slug == code and slug not in _WINDOWS_RESERVED:
        return slug
    digest = hashlib.sha256(code.encode("utf-8")).hexdigest()[:HASH_LEN]
    return f"{slug}-{digest}" if slug else digest


def _unique_names(stems: Sequence[str]) -> list[str]:
    seen: set[str] = set()
    out: list[str] = []
    for stem in stems:
        name, n = stem, 1
        while name.lower() in seen:
            n += 1
            name = f"{stem}-{n}"
        seen.add(name.lower())
        out.append(name)
    return out


# ---------------------------------------------------------------------------- values


def _escape(text: str) -> str:
    """``${`` -> ``$${`` so the loader's variable expansion gives the text back unchanged."""
    return text.replace("${", "$${") if "${" in text else text


def _number(value: int | float) -> int | float:
    if isinstance(value, float) and value.is_integer() and math.isfinite(value) and abs(value) < 2**53:
        return int(value)
    return value


def _plain(value: Any) -> Any:
    """A live value as a manifest writes it: numbers by value, strings escaped, maps sorted."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int | float):
        return _number(value)
    if isinstance(value, str):
        return _escape(value)
    if isinstance(value, Mapping):
        # keys are never expanded by the loader, so they are written as they are
        return {str(k): _plain(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _submodel(annotation: Any) -> type[BaseModel] | None:
    """The pydantic model a field holds (directly, optionally or as list items), if any."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _submodel(arg)
        if found is not None:
            return found
    return None


@dataclass(frozen=True, slots=True)
class _FieldPlan:
    name: str  # as written in a manifest (alias when there is one)
    submodel: type[BaseModel] | None
    # The model requires the field (a meter's ``derivedFields``, which the API requires and
    # which may be ``[]``): an empty list or mapping is written, not left out.
    required: bool = False


@functools.cache
def _field_order(model: type[BaseModel], *, first: tuple[str, ...] = ()) -> tuple[_FieldPlan, ...]:
    """The fields of ``model`` in the order a manifest writes them (``first`` ahead); cached,
    since every nested record of every exported object asks again."""
    fields = [
        _FieldPlan(info.alias or name, _submodel(info.annotation), info.is_required())
        for name, info in model.model_fields.items()
    ]
    head = [f for name in first for f in fields if f.name == name]
    return (*head, *(f for f in fields if f.name not in first))


def _record(model: type[BaseModel], live: Mapping[str, Any]) -> dict[str, Any]:
    """A nested record (address, currency conversion) in model order, empties left out."""
    out: dict[str, Any] = {}
    for f in _field_order(model):
        value = live.get(f.name)
        if not is_empty(value):
            out[f.name] = _plain(value)
    return out


def _sort_key(item: Any) -> str:
    return yaml.dump(item, Dumper=_Dumper, sort_keys=True, default_flow_style=True, width=1 << 20)


class _Converter:
    """Live entities of one kind -> manifest mappings."""

    def __init__(self, kind: Kind, live: LiveState, warnings: list[str],
                 names_by_id: Mapping[str, Mapping[str, str]] | None = None,
                 nested: Mapping[tuple[str, str], dict[str, list[Any]]] | None = None) -> None:
        self.kind = kind
        self.fields = _field_order(kind.model, first=("code", "name"))
        self.known = {f.name for f in self.fields} | READ_ONLY_FIELDS
        # references the API holds by id (``parentAccountId``): written by code (``parent``)
        self.renamed = {name: ref for name, ref in kind.renamed_by_path.items() if ref.by_id}
        self.known.update(ref.api_path for ref in self.renamed.values())
        self.live = live
        self.warnings = warnings
        self.skipped: set[str] = set()
        self.dangling: dict[str, list[str]] = {}  # target kind -> keys of objects naming a missing one
        # name field -> (id field, id -> unique name) for the kind's named references
        # (targets not looked up are absent: their ids are written as ids, without a warning)
        looked_up = names_by_id or {}
        self.named = {
            ref.name_field: (ref.id_field, looked_up[ref.target])
            for ref in NAMED_REFERENCES if ref.kind == kind.name and ref.target in looked_up
        }
        self.by_id_field = {id_field: names for id_field, names in self.named.values()}
        self.kept_ids = 0  # ids written as ids: their name is ambiguous or gone
        # (kind name, host key) -> nesting field -> items written inside this kind's objects
        self.nested = nested or {}

    def convert(self, live: Mapping[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in self.fields:
            ref = self.renamed.get(f.name)
            if ref is not None:
                value = self._code(ref, live)
            elif f.name in self.named:
                id_field, names = self.named[f.name]
                ident = live.get(id_field)
                value = _escape(names[ident]) if isinstance(ident, str) and ident in names else _DROP
            elif f.name in self.by_id_field:
                ident = live.get(f.name)
                if isinstance(ident, str) and ident in self.by_id_field[f.name]:
                    value = _DROP  # written by name
                else:
                    value = self._value(f, ident)
                    self.kept_ids += value is not _DROP
            else:
                value = self._value(f, live.get(f.name))
            if value is not _DROP:
                out[f.name] = value
        if self.nested and self.kind.by_code:
            out.update(self.nested.get((self.kind.name, str(live.get("code"))), {}))
        self.skipped.update(k for k in live if k not in self.known)
        return out

    def _code(self, ref: registry.Reference, live: Mapping[str, Any]) -> Any:
        ident = live.get(ref.api_path)
        if is_empty(ident):
            return _DROP
        code = self.live.code_by_id(ref.target).get(str(ident))
        if code is None:
            self.dangling.setdefault(ref.target, []).append(self.live.key_of(self.kind, live))
            return _DROP
        return _escape(code)

    def _value(self, f: _FieldPlan, value: Any) -> Any:
        if is_empty(value):
            return [] if f.required and isinstance(value, list) else _DROP
        if isinstance(value, bool):
            if value is False and self.kind.name not in _KEEP_FALSE_KINDS and not f.required:
                # false is the default (``archived`` included): absent leaves it unmanaged; a
                # field the model requires (a bill grouping key's ``exclusive``) is kept
                return _DROP
            return value
        if f.submodel is not None and isinstance(value, Mapping):
            record = _record(f.submodel, value)
            return record or _DROP
        if f.submodel is not None and isinstance(value, list):
            items = [_record(f.submodel, v) if isinstance(v, Mapping) else _plain(v) for v in value]
            if f.name not in self.kind.ordered_lists:
                items.sort(key=_sort_key)
            return items
        if isinstance(value, list) and f.name not in self.kind.ordered_lists:
            return sorted((_plain(v) for v in value), key=_sort_key)
        return _plain(value)

    def finish(self) -> None:
        label = self.kind.name
        if self.kept_ids:
            self.warnings.append(
                f"{label}: {self.kept_ids} statement definition id(s) written as ids, not names: no definition, "
                "or more than one, has that id's name (an id differs between organizations)"
            )
        if self.skipped:
            names = ", ".join(sorted(self.skipped))
            self.warnings.append(f"{label}: field(s) {names} not exported (reconciler does not manage them)")
        for target, keys in sorted(self.dangling.items()):
            shown = ", ".join(repr(c) for c in sorted(keys)[:5])
            more = f" and {len(keys) - 5} more" if len(keys) > 5 else ""
            what = "a parent that is not a live account" if target == label else f"a {target} that does not exist"
            self.warnings.append(
                f"{label}: {len(keys)} object(s) name {what} ({shown}{more}); that field was left out"
            )


# ---------------------------------------------------------------------------- account families


def _families(accounts: list[Entity], parent_field: str) -> list[list[Entity]]:
    """Root accounts in code order, each with its descendants depth first (parents first)."""
    ids = {str(a["id"]) for a in accounts if a.get("id") is not None}
    children: dict[str, list[Entity]] = {}
    roots: list[Entity] = []
    for a in accounts:
        parent_id = a.get(parent_field)
        if not is_empty(parent_id) and str(parent_id) in ids and str(parent_id) != str(a.get("id")):
            children.setdefault(str(parent_id), []).append(a)
        else:
            roots.append(a)
    for kids in children.values():
        kids.sort(key=lambda e: str(e.get("code")))
    visited: set[int] = set()

    def family(root: Entity) -> list[Entity]:
        out: list[Entity] = []
        stack = [root]
        while stack:
            node = stack.pop()
            if id(node) in visited:
                continue
            visited.add(id(node))
            out.append(node)
            stack.extend(reversed(children.get(str(node.get("id")), [])))
        return out

    result = [family(r) for r in sorted(roots, key=lambda e: str(e.get("code")))]
    # Accounts in a parent cycle (never valid in m3ter, but be safe) are reached from nowhere.
    for a in sorted(accounts, key=lambda e: str(e.get("code"))):
        if id(a) not in visited:
            result.append(family(a))
    return result


def _is_boundary(code: str) -> bool:
    return int(hashlib.sha256(code.encode("utf-8")).hexdigest()[:8], 16) % BOUNDARY_MODULUS == 0


def _pack(families: list[list[Entity]]) -> list[list[Entity]]:
    files: list[list[Entity]] = []
    current: list[Entity] = []
    for fam in families:
        root_code = str(fam[0].get("code"))
        if current and (
            len(current) + len(fam) > MAX_ACCOUNTS_PER_FILE
            or (len(current) >= MIN_ACCOUNTS_PER_FILE and _is_boundary(root_code))
        ):
            files.append(current)
            current = []
        while len(fam) > MAX_ACCOUNTS_PER_FILE:
            files.append(fam[:MAX_ACCOUNTS_PER_FILE])
            fam = fam[MAX_ACCOUNTS_PER_FILE:]
        current.extend(fam)
    if current:
        files.append(current)
    return files


# ---------------------------------------------------------------------------- YAML


class _Dumper(yaml.CSafeDumper):
    pass


def _header(org_id: str) -> str:
    org = "".join(ch for ch in org_id if ch.isprintable())
    return (
        f"{HEADER} from organization {org}.\n"
        "# Edit freely. `reconciler export --force` replaces or removes files starting with the line above.\n"
    )


def _dump(header: str, document: Mapping[str, Any]) -> bytes:
    body = yaml.dump(
        dict(document),
        Dumper=_Dumper,
        sort_keys=False,
        allow_unicode=True,
        default_flow_style=False,
        width=1 << 20,
        indent=2,
    )
    return (header + body).encode("utf-8")


# ---------------------------------------------------------------------------- building


def build_files(live: Mapping[str, list[Entity]], selected: Sequence[Kind], org_id: str,
                warnings: list[str], names_by_id: Mapping[str, Mapping[str, str]] | None = None,
                ) -> tuple[dict[str, bytes], dict[str, int]]:
    """Relative POSIX path -> file bytes, and objects per kind; pure (no I/O).

    ``names_by_id`` maps a named target (``lookups.STATEMENT_DEFINITION``) to id -> unique
    name; ids found there are written by name."""
    header = _header(org_id)
    state = LiveState(dict(live))
    names = {k.name for k in selected}
    nested = _nested_docs(state, selected, names, warnings, names_by_id)
    files: dict[str, bytes] = {}
    counts: dict[str, int] = {}
    for kind in selected:
        entities = live.get(kind.name, [])
        conv = _Converter(kind, state, warnings, names_by_id, nested)
        if kind.singleton:
            doc = conv.convert(entities[0]) if entities else {}
            conv.finish()
            if doc:
                files[f"{file_name(kind)}.yaml"] = _dump(header, {kind.manifest_key: doc})
                counts[kind.name] = 1
            else:
                counts[kind.name] = 0
            continue
        counts[kind.name] = len(entities)
        # objects written inside their hosts are not written again at top level
        entities = [e for e in entities if _host_of(state, kind, e, names) is None]
        family = _family_ref(kind)
        if family is not None:
            groups = _pack(_families(entities, family.api_path))
            stems = _unique_names([safe_slug(str(g[0].get("code"))) for g in groups])
            for stem, group in zip(stems, groups, strict=True):
                docs = [conv.convert(e) for e in group]
                files[f"{file_name(kind)}/{stem}.yaml"] = _dump(header, {kind.manifest_key: docs})
        elif entities:
            docs = [conv.convert(e) for e in sorted(entities, key=lambda e: state.key_of(kind, e))]
            files[f"{file_name(kind)}.yaml"] = _dump(header, {kind.manifest_key: docs})
        conv.finish()
    return files, counts


def _host_of(state: LiveState, kind: Kind, entity: Entity, exported: set[str]) -> tuple[str, str] | None:
    """(nesting field, host code) when ``entity`` is written inside an exported host object
    (a pricing under its plan), else None."""
    for nesting in kind.nested_in:
        if nesting.host not in exported:
            continue
        ref = kind.renamed_by_path.get(nesting.reference)
        if ref is None:
            continue
        ident = entity.get(ref.api_path)
        code = state.code_by_id(nesting.host).get(str(ident)) if not is_empty(ident) else None
        if code is not None:
            return nesting.field, code
    return None


def _nested_docs(state: LiveState, selected: Sequence[Kind], exported: set[str], warnings: list[str],
                 names_by_id: Mapping[str, Mapping[str, str]] | None) -> dict[tuple[str, str], dict[str, list[Any]]]:
    """(host kind, host code) -> nesting field -> the nested objects written inside it, in key
    order, without the field that names the host (implied by where they are written)."""
    out: dict[tuple[str, str], dict[str, list[Any]]] = {}
    for kind in selected:
        if not kind.nested_in:
            continue
        conv = _Converter(kind, state, warnings, names_by_id)
        for entity in sorted(state.of(kind.name), key=lambda e: state.key_of(kind, e)):
            host = _host_of(state, kind, entity, exported)
            if host is None:
                continue
            nesting = next(n for n in kind.nested_in if n.field == host[0] and n.host in exported)
            doc = conv.convert(entity)
            doc.pop(nesting.reference, None)
            item: Any = doc[nesting.scalar] if nesting.scalar and list(doc) == [nesting.scalar] else doc
            out.setdefault((nesting.host, host[1]), {}).setdefault(nesting.field, []).append(item)
    return out


# ---------------------------------------------------------------------------- writing


def check_out_dir(out_dir: str | Path, *, force: bool) -> None:
    """Refuse a target that is not a directory, or a non-empty one without ``force``."""
    root = Path(out_dir)
    if root.exists() and not root.is_dir():
        raise ExportError(f"{root} exists and is not a directory")
    if root.is_dir() and not force and any(root.iterdir()):
        raise ExportError(f"{root} is not empty: pass --force to overwrite reconciler's files in it "
                          "(other files are left alone), or choose an empty or new directory")


def _check_paths(root: Path, rels: Iterable[str]) -> None:
    """Every path must resolve inside DIR, through no symbolic link, onto no directory."""
    real_root = root.resolve()
    for rel in rels:
        parts = Path(rel).parts
        if Path(rel).is_absolute() or any(p in ("", ".", "..") for p in parts):
            raise ExportError(f"refusing to write {rel!r}: not a plain path inside {root}")
        node = root
        for part in parts:
            node = node / part
            if node.is_symlink():
                raise ExportError(
                    f"{node} is a symbolic link: reconciler does not write through or over links; remove it "
                    "or export into another directory"
                )
        if node.exists() and not node.is_file():
            raise ExportError(f"{node} exists and is not a file")
        target = (real_root / rel).resolve()
        if not target.is_relative_to(real_root) or target == real_root:
            raise ExportError(f"refusing to write {rel!r}: it resolves outside {root}")


def _owned_files(root: Path) -> list[str]:
    """Relative paths of regular ``*.yaml`` files under DIR that an export wrote (by header)."""
    owned: list[str] = []
    marker = HEADER.encode("utf-8")
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and not os.path.islink(
            os.path.join(dirpath, d)))
        for name in sorted(filenames):
            if not name.endswith(".yaml"):
                continue
            path = os.path.join(dirpath, name)
            if os.path.islink(path) or not os.path.isfile(path):
                continue
            try:
                with open(path, "rb") as fh:
                    head = fh.read(len(marker))
            except OSError:
                continue
            if head == marker:
                owned.append(Path(os.path.relpath(path, root)).as_posix())
    return owned


def _write_atomic(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_files(root: Path, files: Mapping[str, bytes], *, force: bool) -> list[str]:
    """Write ``files`` under ``root``; with ``force`` remove stale exported files. Returns removed."""
    check_out_dir(root, force=force)
    _check_paths(root, files)
    stale = [rel for rel in _owned_files(root) if rel not in files] if force and root.is_dir() else []
    try:
        root.mkdir(parents=True, exist_ok=True)
        for rel in sorted(files):
            target = root / rel
            if not target.parent.is_dir():
                target.parent.mkdir(parents=True, exist_ok=True)
            if target.parent.is_symlink() or not target.parent.resolve().is_relative_to(root.resolve()):
                raise ExportError(f"{target.parent} is a symbolic link or leaves {root}; nothing more was written")
            _write_atomic(target, files[rel])
        for rel in stale:
            (root / rel).unlink()
    except OSError as exc:
        raise ExportError(f"cannot write the export to {root}: {exc.strerror or exc}") from None
    return stale


# ---------------------------------------------------------------------------- entry point


def _names_by_id(backend: Backend, live: Mapping[str, list[Entity]]) -> dict[str, dict[str, str]]:
    """id -> unique name for each named target some live object points at; a target nobody
    points at is not read (no request)."""
    out: dict[str, dict[str, str]] = {}
    for ref in NAMED_REFERENCES:
        if ref.target in out:
            continue
        if any(isinstance(e.get(ref.id_field), str) and e.get(ref.id_field) for e in live.get(ref.kind, [])):
            out[ref.target] = unique_names(read_targets(backend, ref.target))
    return out


def export_organization(
    backend: Backend,
    out_dir: str,
    *,
    kinds: Sequence[str] | None = None,
    force: bool = False,
) -> ExportResult:
    """Write manifests for the organization behind ``backend`` into ``out_dir``.

    ``kinds`` limits the export to some kinds (kind names or manifest keys). Refusals raise
    :class:`ExportError` before anything is written."""
    selected = resolve_kinds(kinds) if kinds is not None else list(registry.KINDS)
    root = Path(out_dir)
    check_out_dir(root, force=force)  # fail fast, before reading a big organization
    # the targets of their references too: ids are written as the targets' codes
    wanted = {k.name: None for k in selected}
    wanted.update({ref.target: None for k in selected for ref in k.references if ref.by_id})
    live = backend.fetch_live(wanted)
    warnings: list[str] = []
    files, counts = build_files(live, selected, backend.org_id, warnings, _names_by_id(backend, live))
    removed = write_files(root, files, force=force)
    return ExportResult(out_dir=out_dir, files=sorted(files), counts=counts, removed=removed, warnings=warnings)
