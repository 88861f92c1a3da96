"""Use cases the CLI calls: each joins manifests, a backend, the planner and apply.

Kept apart from ``cli.py`` so the commands stay thin and the workflows are testable
without click. Bad input never reaches a backend: manifests are loaded and checked before
any connection is opened, so nothing is written when they are invalid.
"""

from __future__ import annotations

import threading
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reconciler import kinds
from reconciler.backends import BackendOptions, open_backend
from reconciler.backends.base import Backend, ReadProgress
from reconciler.diagnostics import Diagnostic, ReconcilerError
from reconciler.live import read_live
from reconciler.lookups import resolve_names
from reconciler.manifest import load_manifests, reference_diagnostics
from reconciler.manifest.types import LoadResult, Manifests
from reconciler.plan import LiveState, Plan, Selection, build_plan, parse_selection

# Saved plans (jsonschema, ~75 ms to import), apply and rendering are imported where used:
# ``validate`` and ``plan`` without ``--out`` never need them.
if TYPE_CHECKING:
    from reconciler.apply import ApplyResult, Progress
    from reconciler.planfile import SavedPlan


def validate_paths(paths: Sequence[str], backend_spec: str | None = None, *, verbose: bool = False) -> LoadResult:
    """Load and check manifests; with a backend, unresolved references become errors when
    the organization does not hold them either (offline they are warnings)."""
    result = load_manifests(paths)
    if result.manifests is None or not result.ok:
        return result
    live_codes: dict[str, set[str]] | None = None
    if backend_spec:
        with open_backend(backend_spec, BackendOptions(verbose=verbose)) as backend:
            live = read_live(backend, _wanted(result.manifests, backend))
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
    since pruning needs to see every live object. The m3ter backend's limit is unlimited
    (``CODE_LOOKUP_UNLIMITED``: its batched reads beat the cursor walk, see its
    ``code_lookup_limit``); the local one's is 0, so it always reads whole kinds.

    Reading by code reads exactly what the manifests manage: a kind they neither list nor
    refer to (and do not prune) is not read at all (an empty collection), like the accounts
    they do not list; the plan says its unmanaged objects were not counted. Otherwise every
    kind the registry knows would cost each plan at least one request, however few kinds the
    manifests manage. A kind the API cannot filter by code is read whole when the manifests
    list or refer to any of it."""
    limit = backend.code_lookup_limit
    wanted: dict[str, Collection[str] | None] = {}
    candidates: list[kinds.Kind] = []  # kinds small enough in the manifests to look up by code
    unnamed: list[kinds.Kind] = []  # kinds the API cannot filter by code, none of them listed
    # A pruned kind is read whole to find what no manifest lists; so is every kind that
    # refers to a pruned kind, since its live referrers decide whether a removal can go ahead.
    pruned = {k.name for k in kinds.KINDS if getattr(manifests.settings.prune, k.manifest_key, False)}
    for kind in kinds.KINDS:
        wanted[kind.name] = None
        if kind.singleton or limit <= 0 or kind.name in pruned:
            continue
        if any(ref.target in pruned for ref in kind.references):
            continue
        listed = len(manifests.of_kind(kind.name))
        if kind.by_code and kind.codes_filter:
            if listed <= limit:
                candidates.append(kind)
        elif not listed:
            unnamed.append(kind)
    if not candidates and not unnamed:
        return wanted  # every kind is listed whole: no need to collect references
    targets = {kind.name for kind in candidates} | {kind.name for kind in unnamed}
    referring = {k.name for k in kinds.KINDS if any(ref.target in targets for ref in k.references)}
    referenced: dict[str, set[str]] = {}
    for kind in kinds.KINDS:
        if kind.name not in referring:
            continue
        # A reference that is one plain field (an account's ``parent``) is read directly, as
        # ``referenced_codes`` would (a string); the generic walk was most of this function.
        plain = [(ref.target, ref.plain_field) for ref in kind.references
                 if ref.target in targets and ref.plain_field is not None]
        walked = any(ref.target in targets and ref.plain_field is None for ref in kind.references)
        for obj in manifests.of_kind(kind.name).values():
            fields = obj.fields
            for target, name in plain:
                code = fields.get(name)
                if isinstance(code, str) and code:
                    referenced.setdefault(target, set()).add(code)
            if walked:
                for ref, code in kinds.referenced_codes(kind, fields):
                    if ref.target in targets and ref.plain_field is None:
                        referenced.setdefault(ref.target, set()).add(code)
    for kind in candidates:
        codes = set(manifests.of_kind(kind.name)) | referenced.get(kind.name, set())
        wanted[kind.name] = codes if len(codes) <= limit else None  # empty: nothing to read
    for kind in unnamed:
        wanted[kind.name] = None if referenced.get(kind.name) else set()
    return wanted


@dataclass(slots=True)
class PlanOutcome:
    diagnostics: list[Diagnostic]
    plan: Plan | None = None
    load_warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.plan is not None


def parse_only(values: Sequence[str]) -> Selection | None:
    """``--only KIND[/CODE]`` values -> a selection (None for a whole plan); a ValueError
    naming the known kinds for a kind that does not exist."""
    return parse_selection(values)


def make_plan(paths: Sequence[str], backend: Backend, *, only: Selection | None = None) -> PlanOutcome:
    """Manifests + live organization -> plan, or the diagnostics that stop it."""
    return plan_loaded(load_manifests(paths), backend, only=only)


def plan_loaded(result: LoadResult, backend: Backend, *, only: Selection | None = None,
                progress: ReadProgress | None = None) -> PlanOutcome:
    """Plan from manifests already loaded: the CLI loads them before opening a backend, so
    bad input never creates or touches an organization. With ``only``, a partial plan.
    ``progress`` hears how the read of the organization advances (the CLI's progress line);
    the planner never sees it."""
    if result.manifests is None or not result.ok:
        return PlanOutcome(result.diagnostics)
    manifests = result.manifests
    wanted = _wanted(manifests, backend)
    objects = read_live(backend, wanted, progress)
    live = LiveState(objects, complete={name: codes is None for name, codes in wanted.items()})
    diagnostics = [
        *result.diagnostics,
        *reference_diagnostics(manifests, _live_codes(objects)),
        # names (statementDefinition: NAME) -> ids, read only when some manifest uses a name
        *resolve_names(manifests, backend),
    ]
    if any(d.is_error for d in diagnostics):
        return PlanOutcome(diagnostics)
    plan = build_plan(manifests, live, organization=backend.org_id, backend=backend.name, only=only)
    plan.read_by_code = {name: sorted(codes) for name, codes in wanted.items() if codes is not None}
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
    if plan.blockers:
        raise ApplyRefused("the plan cannot succeed: " + "; ".join(plan.blockers))
    for kind in kinds.KINDS:
        deletes = plan.deletes_of(kind.name) if kind.delete_needs_flag else []
        if deletes and not allow_delete:
            shown = ", ".join(c.key for c in deletes[:5]) + (" ..." if len(deletes) > 5 else "")
            why = kind.delete_warning or "this cannot be undone"
            raise ApplyRefused(
                f"the plan deletes {len(deletes)} {kind.name}(s) ({shown}); {why}: "
                "re-run with --allow-delete if this is intended"
            )


def run_apply(
    plan: Plan,
    backend: Backend,
    *,
    parallelism: int,
    progress: Progress | None = None,
    stop: threading.Event | None = None,
) -> ApplyResult:
    from reconciler.apply import apply_changes

    return apply_changes(plan.changes, backend, parallelism=parallelism, progress=progress, stop=stop)


# -- saved plans -------------------------------------------------------------------------------


def save_plan(plan: Plan, path: str, *, load_warnings: list[str] | None = None) -> str:
    """Write the plan unredacted (it is what apply will send) with every touched object's
    live id and version; return its digest."""
    from reconciler.render.document import plan_document

    return save_document(plan_document(plan, extra_warnings=load_warnings), path)


def save_document(plan_doc: dict[str, Any], path: str) -> str:
    """Write an unredacted plan document as a saved plan, atomically so a half-written plan
    never exists; return its digest (the document's own: ``saved`` is not in it)."""
    from reconciler.render.json_format import iter_json_lines

    if plan_doc.get("redacted"):
        raise ValueError("a redacted plan cannot be saved: apply sends what it holds")
    doc = {**plan_doc, "saved": True}
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".tmp")
    # Streamed (a big plan is never one string), in large writes; the changes of a plan's own
    # document are the bytes its digest hashed, not encoded again.
    with tmp.open("wb", buffering=1 << 20) as handle:
        handle.writelines(iter_json_lines(doc))
    tmp.replace(target)
    return str(doc["digest"])


def read_saved_plan(path: str, *, expect_digest: str | None = None) -> SavedPlan:
    """Read a saved plan and check its schema and digest (before any backend is opened)."""
    from reconciler import planfile

    return planfile.read_saved_plan(path, expect_digest=expect_digest)


def check_saved_plan(saved: SavedPlan, backend: Backend) -> Plan:
    """A reviewed plan is applied exactly or not at all: recompute it against live now."""
    from reconciler import planfile

    return planfile.check_against_live(saved, backend)
