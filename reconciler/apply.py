"""Changes -> backend calls: ordering, bounded concurrency, partial failure.

A change starts as soon as every change it depends on (``depends_on``, derived from the
data by ``reconciler.order``) has succeeded, up to ``parallelism`` at a time; there is no
other barrier, so the order is exactly what the plan states. When one fails, independent
changes still proceed, everything that depends on it (transitively) is skipped, and the
result says what was applied, what failed and what was skipped. Nothing here is
backend-specific: re-running a plan after any failure converges because the next plan
starts from what is live.

A ``stop`` event (set by the CLI on SIGINT/SIGTERM; this module knows nothing of signals)
ends the run early: no change starts once it is set, changes already running finish, and
every change never started is reported ``not_started`` — distinct from ``skipped``, which
means a change it depends on failed. The next plan then shows exactly those changes.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any, Literal

from reconciler import kinds
from reconciler.backends.base import Backend, BackendError, NotFoundError
from reconciler.plan import Change

Status = Literal["applied", "failed", "skipped", "not_started"]
STATUSES: tuple[Status, ...] = ("applied", "failed", "skipped", "not_started")
Progress = Callable[[int, int, int], None]  # done, total, failed
RESULT_FORMAT_VERSION = 1
# How long the scheduler blocks at a time waiting for running changes: short, so the main
# thread keeps returning to Python code (where signal handlers run) even if a wait is not
# interruptible on some platform.
_WAIT_SLICE = 0.25


class StopRequest(threading.Event):
    """An Event that also says why the run was asked to stop (shown to people, e.g.
    "SIGINT"). A plain ``threading.Event`` works as ``stop`` too; the reason is then generic."""

    def __init__(self) -> None:
        super().__init__()
        self.reason: str | None = None

    def request(self, reason: str) -> None:
        if self.reason is None:  # the first reason is the one that stopped the run
            self.reason = reason
        self.set()


@dataclass(slots=True)
class Outcome:
    index: int
    change: Change
    status: Status
    message: str = ""


@dataclass(slots=True)
class ApplyResult:
    outcomes: list[Outcome] = field(default_factory=list)
    # Why the run stopped before its end (e.g. "SIGINT"); None when it was not asked to stop.
    interrupted: str | None = None

    def count(self, status: Status) -> int:
        return sum(1 for o in self.outcomes if o.status == status)

    @property
    def counts(self) -> dict[Status, int]:
        return {s: self.count(s) for s in STATUSES}

    @property
    def ok(self) -> bool:
        return self.interrupted is None and all(o.status == "applied" for o in self.outcomes)

    @property
    def result(self) -> Literal["applied", "failed", "interrupted"]:
        if self.interrupted is not None:
            return "interrupted"
        return "applied" if self.ok else "failed"

    def summary_line(self) -> str:
        c = self.counts
        if self.interrupted is not None:
            return (
                f"Apply interrupted by {self.interrupted}: {c['applied']} applied, {c['failed']} failed, "
                f"{c['skipped']} skipped, {c['not_started']} not started."
            )
        return f"Apply: {c['applied']} applied, {c['failed']} failed, {c['skipped']} skipped."

    def document(self) -> dict[str, Any]:
        """The stable JSON result of an apply (``apply --format json``; README "Apply result").
        Lists are in plan order; values are exact (JSON escapes them), never redacted: an
        entry names a change by kind and key, as the plan does."""

        def entries(status: Status) -> list[dict[str, Any]]:
            return [
                {
                    "index": o.index,
                    "action": o.change.action,
                    "kind": o.change.kind,
                    "key": o.change.key,
                    "message": o.message,
                }
                for o in self.outcomes
                if o.status == status
            ]

        c = self.counts
        return {
            "formatVersion": RESULT_FORMAT_VERSION,
            "result": self.result,
            "signal": self.interrupted,
            "summary": {
                "applied": c["applied"],
                "failed": c["failed"],
                "skipped": c["skipped"],
                "notStarted": c["not_started"],
            },
            "applied": entries("applied"),
            "failed": entries("failed"),
            "skipped": entries("skipped"),
            "notStarted": entries("not_started"),
        }


class _RefResolver:
    """Turns ``{"$ref": {"kind", "code"}}`` placeholders into ids created during this run
    (or, for a saved plan applied later, ids looked up live)."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.ids: dict[tuple[str, str], str] = {}
        self.lock = threading.Lock()

    def remember(self, kind: str, code: str, entity: Mapping[str, Any]) -> None:
        if "id" in entity:
            with self.lock:
                self.ids[(kind, code)] = str(entity["id"])

    def resolve(self, value: Any) -> Any:
        if isinstance(value, dict):
            ref = value.get("$ref")
            if isinstance(ref, dict) and set(value) == {"$ref"}:
                return self._lookup(str(ref["kind"]), str(ref["code"]))
            return {k: self.resolve(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        return value

    def _lookup(self, kind: str, code: str) -> str:
        with self.lock:
            known = self.ids.get((kind, code))
        if known is not None:
            return known
        found = self.backend.find_by_code(kinds.get(kind), code)
        if found is None:
            raise BackendError(f"{kind} {code} does not exist, so nothing can refer to it")
        self.remember(kind, code, found)
        return str(found["id"])


def _execute(backend: Backend, change: Change, refs: _RefResolver) -> str:
    """Carry out one change; the text returned is a note for the user ("" when none)."""
    kind = kinds.get(change.kind)
    body = refs.resolve(change.body)
    if change.action == "create":
        created = backend.create(kind, body)
        refs.remember(change.kind, change.key, created)
    elif change.action == "delete":
        if change.id is None:
            raise BackendError(f"{change.kind} {change.key} has no id to delete")
        try:
            backend.delete(kind, change.id)
        except NotFoundError:
            # Someone removed it between plan and apply: the state the plan asked for holds,
            # so this is not a failure (and failing would skip nothing useful).
            return "it was already gone"
    elif kind.singleton:
        backend.put_singleton(kind, body)
    else:
        if change.id is None:
            raise BackendError(f"{change.kind} {change.key} has no id to update")
        backend.update(kind, change.id, body)
    return ""


def apply_changes(
    changes: list[Change],
    backend: Backend,
    *,
    parallelism: int = 1,
    progress: Progress | None = None,
    stop: threading.Event | None = None,
) -> ApplyResult:
    """Run ``changes`` (in plan order, ``depends_on`` pointing at earlier indexes).

    ``stop``: checked before each change starts; once set, the running changes finish and
    the rest are ``not_started`` (``result.interrupted`` gives the reason)."""
    refs = _RefResolver(backend)
    status: dict[int, Status] = {}
    messages: dict[int, str] = {}
    total = len(changes)
    dependents: dict[int, list[int]] = {}
    for i, change in enumerate(changes):
        for d in change.depends_on:
            dependents.setdefault(d, []).append(i)
    workers = max(1, parallelism)

    failed = 0  # kept as a count: summing over every status per report is quadratic in changes

    def stopping() -> bool:
        return stop is not None and stop.is_set()

    def never_ran(i: int) -> None:
        """A change left without an outcome: not started when the run was stopped (its turn
        never came), else skipped (it waits on a change that did not apply)."""
        if stopping():
            status[i] = "not_started"
            messages[i] = "not started: the apply was interrupted before its turn"
        else:
            status[i] = "skipped"
            messages[i] = "skipped: a change it depends on was not applied"

    def report() -> None:
        if progress is not None:
            progress(len(status), total, failed)

    def skip_dependents(root: int) -> None:
        stack = [root]
        while stack:
            for j in dependents.get(stack.pop(), []):
                if j not in status:
                    cause = changes[root]
                    status[j] = "skipped"
                    messages[j] = (
                        f"skipped: it depends on {cause.action} {cause.kind} {cause.key}, which did not succeed"
                    )
                    stack.append(j)
        report()

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="apply") as pool:
        waiting = {i: len(c.depends_on) for i, c in enumerate(changes)}
        ready = deque(i for i in range(total) if waiting[i] == 0)
        running: dict[Future[str], int] = {}
        while ready or running:
            while ready and len(running) < workers and not stopping():
                i = ready.popleft()
                if i not in status:
                    running[pool.submit(_execute, backend, changes[i], refs)] = i
            if not running:
                break
            done, _ = wait(running, timeout=_WAIT_SLICE, return_when=FIRST_COMPLETED)
            for future in done:
                i = running.pop(future)
                exc = future.exception()
                if exc is None:
                    status[i] = "applied"
                    note = future.result()
                    if note:
                        messages[i] = note
                    for j in dependents.get(i, []):
                        waiting[j] -= 1
                        if waiting[j] == 0:
                            ready.append(j)
                    report()
                else:
                    status[i] = "failed"
                    failed += 1
                    messages[i] = _describe(exc)
                    skip_dependents(i)
    for i in range(total):
        if i not in status:  # never started, or waits on a change that is not in this list
            never_ran(i)
    interrupted = None
    if stopping():
        assert stop is not None
        interrupted = (stop.reason if isinstance(stop, StopRequest) else None) or "a stop request"
    return ApplyResult(
        [Outcome(i, c, status[i], messages.get(i, "")) for i, c in enumerate(changes)], interrupted=interrupted
    )


def _describe(exc: BaseException) -> str:
    if isinstance(exc, BackendError):
        return str(exc)
    return f"unexpected {type(exc).__name__}: {exc}"
