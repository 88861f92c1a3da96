"""Validating objects against their kinds' models, on a second core when that pays.

Why a second core: at 100k accounts, pydantic validation is about a fifth of ``validate`` and
of a plan, and it depends on nothing but each object itself. So while the main process goes
on reading the next file (and then checks the rules that need every object), a forked
process validates the objects read so far and sends back only the messages, usually none.
The data is never copied: the child sees it through fork's copy-on-write pages.

What the result depends on is fixed, not the timing: every batch's messages are put back in
the order one process validating kind after kind, object after object, would have produced
them (:meth:`Validator.finish`). A batch whose process fails in any way (cannot fork, dies,
returns something unreadable) is validated again in the main process, so the outcome is
always exactly the sequential one; ``tests/test_parallel_validation.py`` holds the two to
that over random manifests.

Forking happens only where it is safe and worth it: on Linux (``fork`` elsewhere is either
missing or unsafe with system frameworks), in a process with no other thread (a thread
holding a lock at the fork would leave the child waiting on it for ever), and for batches of
at least :data:`MIN_BATCH` objects, so small manifests and the test suite's many small loads
never fork.
"""

from __future__ import annotations

import contextlib
import functools
import os
import pickle
import signal
import sys
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, TypeAdapter, ValidationError

from reconciler import kinds
from reconciler.manifest.messages import describe, display_path, field_errors
from reconciler.manifest.types import DesiredObject, NodePath

if TYPE_CHECKING:
    from reconciler.manifest.load import LoadState

VALIDATION_CHUNK = 2_000  # objects per bulk validation call: bounds the memory of model output
#: Objects read since the last batch that make a batch worth a process of its own (a fork of a
#: process holding 100k accounts costs a few milliseconds; validating 5,000 accounts ~40 ms).
MIN_BATCH = 5_000
#: Environment switch: ``RECONCILER_VALIDATION_PROCESSES=0`` validates in the main process only.
PROCESSES_ENV = "RECONCILER_VALIDATION_PROCESSES"

# One message about one object: (index of the object in its range, message, field path, prefer)
Report = tuple[int, str, NodePath, str]
Range = tuple[str, int, int]  # (kind name, start, end) in ``LoadState.items[kind]``


@functools.cache
def _adapter(model: type[BaseModel]) -> TypeAdapter[list[Any]]:
    """One bulk validator per model, built on first use (building one costs milliseconds)."""
    return TypeAdapter(list[model])  # type: ignore[valid-type]


def problems(model: type[BaseModel], name: str, obj: DesiredObject, errors: list[Any],
             skip: int = 0) -> list[tuple[str, NodePath, str]]:
    """The messages for one object's validation errors: (message, field path, prefer)."""
    out: list[tuple[str, NodePath, str]] = []
    for problem in field_errors(errors, obj.fields, model, skip=skip):
        where = display_path(problem.path)
        message = f"{name}: {where}: {problem.message}" if where else f"{name}: {problem.message}"
        out.append((message, tuple(problem.path), "key" if problem.on_key else "value"))
    return out


def validate_objects(kind: kinds.Kind, objs: Sequence[DesiredObject]) -> list[Report]:
    """Every message about ``objs`` (one kind), in object order: one bulk call per chunk."""
    adapter = _adapter(kind.model)
    reports: list[Report] = []
    for start in range(0, len(objs), VALIDATION_CHUNK):
        chunk = objs[start : start + VALIDATION_CHUNK]
        try:
            adapter.validate_python([o.fields for o in chunk])
        except ValidationError as exc:
            by_index: dict[int, list[Any]] = {}
            for error in exc.errors(include_url=False):
                by_index.setdefault(int(error["loc"][0]), []).append(error)
            for index, errors in by_index.items():
                obj = chunk[index]
                for message, path, prefer in problems(kind.model, describe(obj), obj, errors, skip=1):
                    reports.append((start + index, message, path, prefer))
    return reports


def _validate_ranges(state: LoadState, ranges: Sequence[Range]) -> list[list[Report]]:
    return [validate_objects(kinds.get(name), state.items[name][start:end]) for name, start, end in ranges]


def can_fork(environ: Mapping[str, str]) -> bool:
    """Whether batches may go to forked processes here (see the module docstring)."""
    if environ.get(PROCESSES_ENV, "").strip() == "0":
        return False
    return sys.platform == "linux" and hasattr(os, "fork") and threading.active_count() == 1


@dataclass(slots=True)
class _Batch:
    ranges: list[Range]
    pid: int = 0  # 0: validated in this process (``reports`` set) or not started
    fd: int = -1
    reports: list[list[Report]] | None = None


@dataclass(slots=True)
class Validator:
    """Validation of everything loaded, in batches: :meth:`offer` after each file, then
    :meth:`finish` for the messages in their sequential order."""

    fork: bool = True
    batches: list[_Batch] = field(default_factory=list)
    done: dict[str, int] = field(default_factory=dict)  # kind name -> items already batched

    def offer(self, state: LoadState, *, last: bool = False) -> None:
        """Batch the objects read since the last call when there are enough of them (or when
        ``last``): in a forked process if possible, else here (at :meth:`finish`)."""
        ranges: list[Range] = []
        count = 0
        for kind in kinds.KINDS:
            start, end = self.done.get(kind.name, 0), len(state.items[kind.name])
            if end > start:
                ranges.append((kind.name, start, end))
                count += end - start
        if not ranges or (count < MIN_BATCH and not last):
            return
        for name, _, end in ranges:
            self.done[name] = end
        batch = _Batch(ranges)
        if count >= MIN_BATCH and self.fork:
            self._start(batch, state)
        self.batches.append(batch)

    def _start(self, batch: _Batch, state: LoadState) -> None:
        try:
            read_fd, write_fd = os.pipe()
        except OSError:
            return
        try:
            pid = os.fork()
        except OSError:
            os.close(read_fd)
            os.close(write_fd)
            return
        if pid == 0:  # the child: validate, send the messages, leave without any clean-up
            status = 1
            try:
                os.close(read_fd)
                data = pickle.dumps(_validate_ranges(state, batch.ranges), protocol=pickle.HIGHEST_PROTOCOL)
                with os.fdopen(write_fd, "wb") as out:
                    out.write(data)
                status = 0
            finally:
                os._exit(status)  # never the parent's atexit handlers or buffered output
        os.close(write_fd)
        batch.pid, batch.fd = pid, read_fd

    def finish(self, state: LoadState) -> list[tuple[DesiredObject, Report]]:
        """Every message, in the order of validating kind after kind and object after object;
        a batch whose process failed is validated here instead."""
        try:
            for batch in self.batches:
                if batch.pid:
                    batch.reports = _collect(batch)
                    batch.pid = 0
                if batch.reports is None:
                    batch.reports = _validate_ranges(state, batch.ranges)
        finally:
            self.abandon()
        by_kind: dict[str, list[tuple[int, list[Report]]]] = {}
        for batch in self.batches:
            assert batch.reports is not None
            for (name, start, _), reports in zip(batch.ranges, batch.reports, strict=True):
                if reports:
                    by_kind.setdefault(name, []).append((start, reports))
        out: list[tuple[DesiredObject, Report]] = []
        for kind in kinds.KINDS:
            items = state.items[kind.name]
            for start, reports in sorted(by_kind.get(kind.name, ()), key=lambda pair: pair[0]):
                out.extend((items[start + report[0]], report) for report in reports)
        return out

    def abandon(self) -> None:
        """Stop and reap every child still running (an interrupt, an error in the parent)."""
        for batch in self.batches:
            if batch.pid:
                with contextlib.suppress(OSError):  # already gone
                    os.kill(batch.pid, signal.SIGKILL)
                _reap(batch.pid)
                batch.pid = 0
            if batch.fd >= 0:
                os.close(batch.fd)
                batch.fd = -1


def _collect(batch: _Batch) -> list[list[Report]] | None:
    """The child's messages, or None when it failed in any way."""
    chunks: list[bytes] = []
    try:
        while True:
            chunk = os.read(batch.fd, 1 << 20)
            if not chunk:
                break
            chunks.append(chunk)
    except OSError:
        chunks = []
    finally:
        os.close(batch.fd)
        batch.fd = -1
    if _reap(batch.pid) != 0:
        return None
    try:
        reports = pickle.loads(b"".join(chunks))
    except Exception:  # any unreadable answer: validate here instead
        return None
    if not isinstance(reports, list) or len(reports) != len(batch.ranges):
        return None
    return reports


def _reap(pid: int) -> int:
    """Wait for a child; its exit status (non-zero for a signal or a failure)."""
    while True:
        try:
            _, status = os.waitpid(pid, 0)
        except ChildProcessError:
            return 1
        except InterruptedError:
            continue
        return os.waitstatus_to_exitcode(status)

