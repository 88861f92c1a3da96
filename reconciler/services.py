"""Use cases the CLI calls: each joins manifests, a backend, the planner and apply.

Kept apart from ``cli.py`` so the commands stay thin and the workflows are testable
without click. Bad input never reaches a backend: manifests are loaded and checked before
any connection is opened, so nothing is written when they are invalid.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reconciler import kinds
from reconciler.apply import ApplyResult, Progress, apply_changes, moved_objects
from reconciler.backends import BackendOptions, open_backend
from reconciler.backends.base import Backend
from reconciler.compare import FieldDiff
from reconciler.diagnostics import Diagnostic, ReconcilerError
from reconciler.lookups import resolve_names
from reconciler.manifest import load_manifests, reference_diagnostics
from reconciler.manifest.types import LoadResult, Manifests
from reconciler.plan import ACTIONS, Change, LiveState, Plan, build_plan
from reconciler.render.document import FORMAT_VERSION, plan_document


def validate_paths(paths: Sequence[str], backend_spec: str | None = None, *, verbose: bool = False) -> LoadResult:
    """Load and check manifests; with a backend, unresolved references become errors when
    the organization does not hold them either (offline they are warnings)."""
    result = load_manifests(paths)
    if result.manifests is None or not result.ok:
        return result
    live_codes: dict[str, set[str]] | None = None
    if backend_spec:
        with open_backend(backend_spec, BackendOptions(verbose=verbose)) as backend:
            live = backend.fetch_live(_wanted(result.manifests, backend))
            live_codes = _live_codes(live)
            result.diagnostics.extend(resolve_names(result.manifests, backend))
    result.diagnostics.extend(reference_diagnostics(result.manifests, live_codes))
    return result


def _live_codes(live: dict[str, list[dict[str, Any]]]) -> dict[str, set[str]]:
    return {
        name: {str(e.get("code")) for e in entities}
        for name, entities in live.items()
        if kinds.get(name).keyed
    }


def _wanted(manifests: Manifests, backend: Backend) -> dict[str, Collection[str] | None]:
    """What to read for a plan: whole kinds, or only the codes the manifests name (and the
    codes they refer to) when that is cheaper for this backend and the kind is not pruned,
    since pruning needs to see every live object."""
    limit = backend.code_lookup_limit
    wanted: dict[str, Collection[str] | None] = {}
    candidates: list[kinds.Kind] = []  # kinds small enough in the manifests to look up by code
    for kind in kinds.KINDS:
        wanted[kind.name] = None
        if kind.singleton or limit <= 0:
            continue
        pruned = getattr(manifests.settings.prune, kind.manifest_key, False)
        if not pruned and len(manifests.of_kind(kind.name)) <= limit:
            candidates.append(kind)
    if not candidates:
        return wanted  # every kind is listed whole: no need to collect references
    targets = {kind.name for kind in candidates}
    referring = {k.name for k in kinds.KINDS if any(ref.target in targets for ref in k.references)}
    referenced: dict[str, set[str]] = {}
    for obj in manifests:
        if obj.kind not in referring:
            continue
        for ref, code in kinds.referenced_codes(kinds.get(obj.kind), obj.fields):
            if ref.target in targets:
                referenced.setdefault(ref.target, set()).add(code)
    for kind in candidates:
        codes = set(manifests.of_kind(kind.name)) | referenced.get(kind.name, set())
        wanted[kind.name] = codes if 0 < len(codes) <= limit else None
    return wanted


@dataclass(slots=True)
class PlanOutcome:
    diagnostics: list[Diagnostic]
    plan: Plan | None = None
    load_warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.plan is not None


def make_plan(paths: Sequence[str], backend: Backend) -> PlanOutcome:
    """Manifests + live organization -> plan, or the diagnostics that stop it."""
    return plan_loaded(load_manifests(paths), backend)


def plan_loaded(result: LoadResult, backend: Backend) -> PlanOutcome:
    """Plan from manifests already loaded: the CLI loads them before opening a backend, so
    bad input never creates or touches an organization."""
    if result.manifests is None or not result.ok:
        return PlanOutcome(result.diagnostics)
    manifests = result.manifests
    wanted = _wanted(manifests, backend)
    objects = backend.fetch_live(wanted)
    live = LiveState(objects, complete={name: codes is None for name, codes in wanted.items()})
    diagnostics = [
        *result.diagnostics,
        *reference_diagnostics(manifests, _live_codes(objects)),
        # names (statementDefinition: NAME) -> ids, read only when some manifest uses a name
        *resolve_names(manifests, backend),
    ]
    if any(d.is_error for d in diagnostics):
        return PlanOutcome(diagnostics)
    plan = build_plan(manifests, live, organization=backend.org_id, backend=backend.name)
    return PlanOutcome(diagnostics, plan, [d.format() for d in diagnostics if not d.is_error])


def open_configured_backend(spec: str | None, *, rate_limit: float = 50.0, parallelism: int = 8,
                            verbose: bool = False) -> Backend:
    return open_backend(spec, BackendOptions(rate_limit=rate_limit, parallelism=parallelism, verbose=verbose))


# -- apply -------------------------------------------------------------------------------------


class ApplyRefused(ReconcilerError):
    """Apply would not start: nothing was changed."""


def check_apply_allowed(plan: Plan, *, force: bool, allow_delete: bool) -> None:
    """Refuse the whole plan before any write when a safety rule says so."""
    if plan.refusals and not force:
        raise ApplyRefused("; ".join(plan.refusals))
    deletes = plan.account_deletes()
    if deletes and not allow_delete:
        shown = ", ".join(c.key for c in deletes[:5]) + (" ..." if len(deletes) > 5 else "")
        raise ApplyRefused(
            f"the plan deletes {len(deletes)} account(s) ({shown}); deleting an account dissociates its "
            "usage data for good: re-run with --allow-delete if this is intended"
        )


def run_apply(plan: Plan, backend: Backend, *, parallelism: int, progress: Progress | None = None) -> ApplyResult:
    return apply_changes(plan.changes, backend, parallelism=parallelism, progress=progress)


# -- saved plans -------------------------------------------------------------------------------


def save_plan(plan: Plan, path: str, *, load_warnings: list[str] | None = None) -> None:
    """Write the plan unredacted (it is what apply will send) with every touched object's
    live version, atomically so a half-written plan never exists."""
    doc = plan_document(plan, redact_pii=False, extra_warnings=load_warnings)
    doc["saved"] = True
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    tmp.replace(target)


def load_saved_plan(path: str) -> Plan:
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ReconcilerError(f"{path}: cannot read the saved plan ({exc})") from None
    if not isinstance(doc, dict) or doc.get("formatVersion") != FORMAT_VERSION or not isinstance(
        doc.get("changes"), list
    ):
        raise ReconcilerError(f"{path}: not a saved plan of formatVersion {FORMAT_VERSION} (write one with plan --out)")
    if doc.get("redacted"):
        raise ReconcilerError(f"{path}: this plan is redacted and cannot be applied; save it with plan --out")
    try:
        changes = [
            Change(
                action=c["action"],
                kind=kinds.get(c["kind"]).name,
                key=str(c["key"]),
                id=c.get("id"),
                version=c.get("version"),
                diff=[FieldDiff(d["path"], d.get("before"), d.get("after")) for d in c.get("diff", [])],
                body=dict(c.get("body") or {}),
                warnings=list(c.get("warnings") or []),
                depends_on=[int(i) for i in c.get("dependsOn") or []],
            )
            for c in doc["changes"]
        ]
    except (KeyError, TypeError, ValueError) as exc:
        raise ReconcilerError(f"{path}: the saved plan is damaged ({exc!r}); plan again") from None
    if any(c.action not in ACTIONS for c in changes):
        raise ReconcilerError(f"{path}: the saved plan holds an unknown action; plan again")
    return Plan(
        organization=str(doc.get("organization")),
        backend=str(doc.get("backend")),
        changes=changes,
        unchanged=int(doc.get("summary", {}).get("unchanged", 0)),
        unmanaged=[],
        warnings=list(doc.get("warnings") or []),
        refusals=list(doc.get("refusals") or []),
    )


def check_saved_plan(plan: Plan, backend: Backend) -> None:
    """A reviewed plan is applied exactly or not at all: refuse when it was made for another
    organization or when any object it touches moved since."""
    if plan.organization != backend.org_id:
        raise ApplyRefused(
            f"the saved plan is for organization {plan.organization}, but the backend is organization "
            f"{backend.org_id}; nothing was changed"
        )
    problems = moved_objects(plan.changes, backend)
    if problems:
        listed = "\n  ".join(problems[:20]) + (f"\n  ... and {len(problems) - 20} more" if len(problems) > 20 else "")
        raise ApplyRefused(
            f"the organization changed since the plan was saved; nothing was changed. Plan again.\n  {listed}"
        )
