"""Saved plans that cannot lie: schema, digest, and the check against live *now*.

``plan --out FILE`` writes the JSON plan document. ``apply --plan FILE`` trusts nothing in
it but the changes themselves, and those only after checking them:

1. the file validates against the published schema (``schemas/plan.schema.json``,
   generated from the models below, used through ``jsonschema``);
2. its digest is the sha256 of its content (so an edit after review shows), and equals
   ``--expect-digest`` when given (so CI applies exactly the plan a reviewer approved);
3. each touched object is re-read: an existing object must still have the recorded id
   *and* version (deleted and re-created with the same code is a different object), a
   create's code must still be absent;
4. each change's diff is recomputed from its body against live now and must equal the
   saved diff, and its action must be the one that diff implies (a body edited after
   review is caught even if the diff was left alone);
5. blockers, safety refusals and the order (``dependsOn``) are recomputed from the
   changes; a saved order that differs is refused, and the recomputed refusals apply.

Any difference refuses the whole plan before anything is written.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

import jsonschema
from pydantic import BaseModel, ConfigDict, Field

from reconciler import kinds
from reconciler.backends.base import Backend
from reconciler.compare import FieldDiff
from reconciler.diagnostics import ReconcilerError
from reconciler.live import read_live
from reconciler.manifest.files import ManifestFileError, read_manifest_bytes
from reconciler.order import order_changes
from reconciler.plan import (
    ACTIONS,
    REMOVALS,
    Change,
    LiveState,
    Plan,
    SelectionError,
    action_of,
    diff_body,
    parse_selection,
    safety_refusals,
)
from reconciler.render.document import DIGEST_PREFIX, FORMAT_VERSION, digest_of
from reconciler.safetext import safe
from reconciler.schemafile import write_or_check

SCHEMA_PATH = Path(__file__).resolve().parents[1] / "schemas" / "plan.schema.json"
SCHEMA_ID = "https://reconciler.example.com/schemas/plan.schema.json"
REGENERATE = "python -m reconciler.planfile"
MAX_PLAN_BYTES = 512 * 1024 * 1024  # a saved plan of 100k changes is well under this


class PlanRefused(ReconcilerError):
    """The saved plan is not applied: nothing was changed."""


# -- the published format ------------------------------------------------------------------


class _Doc(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DiffEntry(_Doc):
    path: Annotated[str, Field(min_length=1)]
    before: Any
    after: Any


class ChangeEntry(_Doc):
    action: Literal["create", "update", "archive", "unarchive", "delete"]
    kind: Literal[kinds.KIND_NAMES]  # type: ignore[valid-type]
    key: Annotated[str, Field(min_length=1)]
    id: str | None
    version: int | None
    diff: list[DiffEntry]
    body: dict[str, Any]
    warnings: list[str]
    dependsOn: list[Annotated[int, Field(ge=0)]]


class Summary(_Doc):
    create: Annotated[int, Field(ge=0)]
    update: Annotated[int, Field(ge=0)]
    archive: Annotated[int, Field(ge=0)]
    unarchive: Annotated[int, Field(ge=0)]
    delete: Annotated[int, Field(ge=0)]
    unchanged: Annotated[int, Field(ge=0)]
    unmanaged: Annotated[int, Field(ge=0)]


class UnmanagedEntry(_Doc):
    kind: str
    key: str


class SafetyEntry(_Doc):
    maxRemovePercent: Annotated[float, Field(ge=0, le=100)]


class PlanDocument(_Doc):
    """The JSON plan (``plan --format json`` and ``plan --out``), ``formatVersion`` 1."""

    formatVersion: Literal[1]
    organization: str
    backend: str
    summary: Summary
    changes: list[ChangeEntry]
    unmanaged: list[UnmanagedEntry]
    uncounted: list[str]
    warnings: list[str]
    refusals: list[str]
    blockers: list[str]
    safety: SafetyEntry
    readByCode: dict[str, list[str]]
    # present only in partial plans (``--only``): the selectors, part of the digest
    only: list[Annotated[str, Field(min_length=1)]] | None = None
    digest: Annotated[str, Field(pattern=r"^sha256:[0-9a-f]{64}$")]
    saved: bool | None = None
    redacted: bool | None = None


def plan_schema() -> dict[str, Any]:
    schema = PlanDocument.model_json_schema()
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "reconciler plan (formatVersion 1)",
        **{k: v for k, v in schema.items() if k != "title"},
    }


def render_schema() -> str:
    return json.dumps(plan_schema(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


_VALIDATOR: jsonschema.Draft202012Validator | None = None


def schema_problems(doc: Any) -> list[str]:
    """Every way ``doc`` breaks the published schema, each as ``PATH: message``."""
    global _VALIDATOR
    if _VALIDATOR is None:
        _VALIDATOR = jsonschema.Draft202012Validator(plan_schema())
    out = []
    for error in sorted(_VALIDATOR.iter_errors(doc), key=lambda e: list(map(str, e.absolute_path))):
        where = "/".join(str(p) for p in error.absolute_path) or "(document)"
        out.append(f"{where}: {error.message[:200]}")
    return out


# -- reading -------------------------------------------------------------------------------


class SavedPlan:
    """A saved plan read from a file and checked for shape and digest, not yet against live."""

    def __init__(self, doc: dict[str, Any], plan: Plan) -> None:
        self.doc = doc
        self.plan = plan

    @property
    def digest(self) -> str:
        return str(self.doc["digest"])


def read_saved_plan(path: str, *, expect_digest: str | None = None) -> SavedPlan:
    name = safe(path)
    try:
        doc = json.loads(read_manifest_bytes(path, MAX_PLAN_BYTES).decode("utf-8"))
    except ManifestFileError as exc:
        raise PlanRefused(f"{name}: cannot read the saved plan: {exc}") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise PlanRefused(f"{name}: cannot read the saved plan ({type(exc).__name__}: {str(exc)[:200]})") from None
    if not isinstance(doc, dict) or doc.get("formatVersion") != FORMAT_VERSION:
        raise PlanRefused(f"{name}: not a saved plan of formatVersion {FORMAT_VERSION} (write one with plan --out)")
    if doc.get("redacted"):
        raise PlanRefused(f"{name}: this plan is redacted and cannot be applied; save it with plan --out")
    problems = schema_problems(doc)
    if problems:
        shown = "\n  ".join(problems[:10]) + (f"\n  ... and {len(problems) - 10} more" if len(problems) > 10 else "")
        raise PlanRefused(f"{name}: not a valid saved plan (schema {SCHEMA_ID}):\n  {shown}")
    actual = digest_of(doc)
    if doc["digest"] != actual:
        raise PlanRefused(
            f"{name}: the plan's content does not match its digest (it says {doc['digest']}, the content is "
            f"{actual}): it was edited after it was written; plan again"
        )
    if expect_digest is not None and _normal_digest(expect_digest) != actual:
        raise PlanRefused(
            f"{name}: the plan's digest is {actual}, not the expected {_normal_digest(expect_digest)}: "
            "this is not the plan that was approved"
        )
    changes = [
        Change(
            action=c["action"],
            kind=c["kind"],
            key=c["key"],
            id=c["id"],
            version=c["version"],
            diff=[FieldDiff(d["path"], d["before"], d["after"]) for d in c["diff"]],
            body=dict(c["body"]),
            warnings=list(c["warnings"]),
            depends_on=list(c["dependsOn"]),
        )
        for c in doc["changes"]
    ]
    plan = Plan(
        organization=doc["organization"],
        backend=doc["backend"],
        changes=changes,
        unchanged=doc["summary"]["unchanged"],
        unmanaged=[],
        warnings=list(doc["warnings"]),
        uncounted=list(doc["uncounted"]),
        max_remove_percent=float(doc["safety"]["maxRemovePercent"]),
        read_by_code={k: list(v) for k, v in doc["readByCode"].items() if k in kinds.BY_NAME},
        only=list(doc.get("only") or []),
    )
    return SavedPlan(doc, plan)


def _normal_digest(value: str) -> str:
    value = value.strip().lower()
    return value if value.startswith(DIGEST_PREFIX) else DIGEST_PREFIX + value


# -- checking against live -----------------------------------------------------------------


def check_against_live(saved: SavedPlan, backend: Backend) -> Plan:
    """Re-read what the plan touches and recompute everything apply relies on; return the
    plan with recomputed order and refusals, or raise :class:`PlanRefused`."""
    plan = saved.plan
    if plan.organization != backend.org_id:
        raise PlanRefused(
            f"the saved plan is for organization {plan.organization}, but the backend is organization "
            f"{backend.org_id}; nothing was changed"
        )
    read = {name: set(codes) for name, codes in plan.read_by_code.items()}
    # Codes a change touches must be read even if the original read missed them (a create).
    for change in plan.changes:
        codes = read.get(change.kind)
        if codes is not None:
            codes.add(change.key)
    wanted: dict[str, Collection[str] | None] = {k.name: read.get(k.name) for k in kinds.KINDS}
    objects = read_live(backend, wanted)
    live = LiveState(objects, complete={name: codes is None for name, codes in wanted.items()})
    problems: list[str] = []
    by_key: dict[tuple[str, str], dict[str, Any]] = {}
    for kind_name, entities in objects.items():
        kind = kinds.get(kind_name)
        for entity in entities:
            by_key.setdefault((kind_name, live.key_of(kind, entity)), entity)
    problems.extend(_outside_selection(plan))
    seen: set[tuple[str, str]] = set()
    for change in plan.changes:
        label = f"{change.action} {change.kind} {change.key}"
        if (change.kind, change.key) in seen:
            problems.append(f"{label}: the object is touched twice")
            continue
        seen.add((change.kind, change.key))
        problems.extend(f"{label}: {p}" for p in _check_change(change, by_key.get((change.kind, change.key)), live))
    if problems:
        raise PlanRefused(_listed("the organization changed since the plan was saved, or the plan file was edited",
                                  problems))
    saved_order = [list(c.depends_on) for c in plan.changes]
    saved_keys = [(c.kind, c.key) for c in plan.changes]
    ordering = order_changes(list(plan.changes), live)
    blockers = list(ordering.blockers)
    if blockers:
        raise PlanRefused(_listed("the saved plan cannot succeed against the organization now", blockers))
    if [(c.kind, c.key) for c in ordering.changes] != saved_keys or [c.depends_on for c in ordering.changes] \
            != saved_order:
        raise PlanRefused(
            "the saved plan's order (dependsOn) is not the order its changes require against the organization "
            "now; nothing was changed. Plan again."
        )
    plan.changes = ordering.changes
    plan.blockers = []
    plan.refusals = safety_refusals(plan.changes, live, plan.max_remove_percent)
    return plan


def _outside_selection(plan: Plan) -> list[str]:
    """A partial plan never removes anything outside its selection (whatever its digest)."""
    if not plan.only:
        return []
    try:
        selection = parse_selection(plan.only)
    except SelectionError as exc:
        return [f"its selection (only) is not valid: {exc}"]
    assert selection is not None
    return [f"{c.action} {c.kind} {c.key}: a removal outside the plan's selection (--only {', '.join(plan.only)})"
            for c in plan.changes if c.action in REMOVALS and not selection.covers(c.kind, c.key)]


def _check_change(change: Change, current: Mapping[str, Any] | None, live: LiveState) -> list[str]:
    kind = kinds.get(change.kind)
    if change.action not in ACTIONS:
        return ["unknown action"]
    if change.action == "create":
        if current is not None:
            return [f"now exists (id {current.get('id')}, version {current.get('version')}); "
                    "the plan expected it absent"]
        if kind.singleton:
            return ["a singleton cannot be created"]
        recomputed = diff_body(kind, change.body, {}, live)
        problems = [] if live.key_of(kind, change.body) == change.key else [
            "the body's identity is not the change's key"]
        return problems + _diff_problems(change, recomputed)
    if current is None:
        return [f"no longer exists; the plan expected id {change.id} at version {change.version}"]
    if str(current.get("id")) != str(change.id):
        return [f"is now a different object (id {current.get('id')}, the plan recorded id {change.id}): it was "
                "deleted and created again"]
    if current.get("version") != change.version:
        return [f"is at version {current.get('version')}; the plan recorded version {change.version}"]
    if change.action == "delete":
        if change.body or change.diff:
            return ["a delete carries no body or diff"]
        if not kind.deletable:
            return [f"{kind.name} cannot be deleted"]
        return []
    problems = []
    if change.body.get("version") != change.version:
        problems.append("the body's version is not the recorded version")
    if kind.keyed and live.key_of(kind, change.body) != change.key:
        problems.append("the body's identity is not the change's key")
    recomputed = diff_body(kind, change.body, current, live)
    action = action_of(recomputed)
    if change.action != action:
        problems.append(f"its body makes it {action}, not {change.action}")
    return problems + _diff_problems(change, recomputed)


def _diff_problems(change: Change, recomputed: Sequence[FieldDiff]) -> list[str]:
    def canon(diff: Sequence[FieldDiff]) -> set[str]:
        return {json.dumps([d.path, d.before, d.after], sort_keys=True) for d in diff}

    saved, now = canon(change.diff), canon(recomputed)
    if saved == now and len(change.diff) == len(recomputed):
        return []
    paths = sorted({json.loads(entry)[0] for entry in saved ^ now}) or ["(repeated entries)"]
    return [f"its diff against live now differs from the saved diff (at {', '.join(paths[:5])})"]


def _listed(head: str, problems: list[str]) -> str:
    shown = "\n  ".join(problems[:20]) + (f"\n  ... and {len(problems) - 20} more" if len(problems) > 20 else "")
    return f"{head}; nothing was changed. Plan again.\n  {shown}"


def main(argv: list[str] | None = None) -> int:
    """Write (or with ``--check``, compare) ``schemas/plan.schema.json``."""
    return write_or_check(SCHEMA_PATH, render_schema(), regenerate=REGENERATE, argv=argv)


if __name__ == "__main__":
    sys.exit(main())
