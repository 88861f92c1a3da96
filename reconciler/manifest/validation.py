"""Validating objects against their kinds' models, on a second core when that pays.

Why a second core: at 100k accounts, pydantic validation is about a fifth of ``validate`` and
of a plan, and it depends on nothing but each object itself. So a worker process, forked once
a megabyte of manifests has been read (while the main process is still small), reads each
file from then on again, parses and validates it, and sends back only the messages, usually
none, while the main process parses the next file and then checks the rules that need every
object.

Why the worker reads the files itself rather than being handed the parsed objects: sending
them would cost about what validating them costs, and forking a process that already holds
them makes both processes copy every memory page the other still shares (measured: twice the
page faults of the whole load, more than the time saved). The worker is sent a file only once
the main process's fast-path gate has passed it, reads it again, checks that it got the same
bytes (length and sha256), parses them without gating them again (the gate is a third of
reading a file; the bytes are the ones it passed) and builds the same objects in the same
order by the same code, so its messages name the main process's objects by index.

What the result depends on is fixed, not the timing: the messages are put back in the order
one process validating kind after kind, object after object, would have produced them
(:meth:`Validator.finish`). Whatever the worker could not do (a file it read differently, a
file on the slow YAML path, a worker that died or could not start) is validated in the main
process, so the outcome is always exactly the sequential one;
``tests/test_parallel_validation.py`` holds the two to that over random manifests.

Forking happens only where it is safe and worth it: on Linux (``fork`` elsewhere is either
missing or unsafe with system frameworks), in a process with no other thread (a thread
holding a lock at the fork would leave the child waiting on it for ever), and once
:data:`MIN_BYTES` of manifests are read, so small manifests and the test suite's many small
loads never fork.
"""

from __future__ import annotations

import contextlib
import functools
import os
import pickle
import re
import signal
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, TypeAdapter, ValidationError

from reconciler import kinds
from reconciler.manifest.files import ManifestFileError, read_manifest_bytes
from reconciler.manifest.messages import describe, display_path, field_errors
from reconciler.manifest.types import DesiredObject, NodePath

if TYPE_CHECKING:
    from reconciler.manifest.load import LoadState

VALIDATION_CHUNK = 2_000  # objects per bulk validation call: bounds the memory of model output
#: How much manifest text makes a worker worth starting (about 3,000 accounts: validating them
#: takes longer than forking and reading the files again). Files read before that are validated
#: in the main process; from the file that crosses it on, the worker takes them.
MIN_BYTES = 1 << 20
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


def _sha256(data: bytes) -> bytes:
    """Imported here: only loads with a worker pay for OpenSSL's import (~4 ms)."""
    import hashlib

    return hashlib.sha256(data).digest()


def _warm_up(first: bytes) -> None:
    """In a new worker, while the main process gates the file that started it: build the
    validators of the kinds that file names at its start (building one for accounts takes as
    long as validating 5,000 of them; it is needed next anyway)."""
    head = first[:1 << 16]
    for kind in kinds.KINDS:
        if re.search(rb"^" + re.escape(kind.manifest_key.encode()) + rb"[ \t]*:", head, re.MULTILINE):
            _adapter(kind.model)


def _validate_ranges(state: LoadState, ranges: Sequence[Range]) -> list[list[Report]]:
    return [validate_objects(kinds.get(name), state.items[name][start:end]) for name, start, end in ranges]


def can_fork(environ: Mapping[str, str]) -> bool:
    """Whether a worker process may be forked here (see the module docstring)."""
    if environ.get(PROCESSES_ENV, "").strip() == "0":
        return False
    return sys.platform == "linux" and hasattr(os, "fork") and threading.active_count() == 1


# What the worker answers for one file: kind name -> (objects read, messages), or None.
FileReports = dict[str, tuple[int, list[Report]]] | None
# Reads a file's text into its objects by kind, exactly as the main process does (None: the
# file is not one the fast path reads): given by the loader, which owns reading.
ReadObjects = Callable[[str, str], Mapping[str, Sequence[DesiredObject]] | None]


def _validate_file(read_objects: ReadObjects, file: str, size: int, digest: bytes, limit: int) -> FileReports:
    """In the worker: the messages for one file, if it holds the bytes the main process read
    (and gated: ``read_objects`` parses them without the fast path's gate)."""
    try:
        raw = read_manifest_bytes(file, limit)
    except ManifestFileError:
        return None
    if len(raw) != size or _sha256(raw) != digest:
        return None  # changed between the two reads: the main process validates what it read
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return None
    del raw
    objects = read_objects(file, text)
    if objects is None:
        return None
    return {name: (len(objs), validate_objects(kinds.get(name), objs)) for name, objs in objects.items() if objs}


@dataclass(slots=True)
class _Sent:
    token: int
    ranges: list[Range] = field(default_factory=list)
    fast: bool = False  # the main process read the file on the fast path too


@dataclass(slots=True)
class Validator:
    """Validation of everything loaded. Per file: :meth:`read` once its bytes are read,
    :meth:`send` if it passed the fast path's gate, :meth:`done` once its objects are
    collected; then :meth:`finish` for every message in sequential order (and :meth:`abandon`
    in any case)."""

    read_objects: ReadObjects
    fork: bool = True
    limit: int = 0  # the manifest size limit the worker reads with
    local: list[list[Range]] = field(default_factory=list)  # validated here, at finish
    sent: list[_Sent] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)  # kind name -> items already assigned
    bytes_read: int = 0  # by the main process so far: the worker starts once it is worth it
    pid: int = 0
    to_worker: Any = None  # a binary file: pickled (token, file, size, sha256) requests
    from_worker: int = -1
    _pending: _Sent | None = None
    _candidate: tuple[str, int, bytes] | None = None  # (file, size, sha256) of the file last read

    def read(self, file: str, raw: bytes) -> None:
        """A file's bytes are read: start the worker once enough is read (while this process
        is still small) and fingerprint the bytes for :meth:`send`."""
        self._pending = None
        self._candidate = None
        self.bytes_read += len(raw)
        if not self.pid and self.fork and self.bytes_read >= MIN_BYTES:
            self._start(raw)
        if self.pid:
            self._candidate = (file, len(raw), _sha256(raw))

    def send(self) -> None:
        """The file last given to :meth:`read` passed the fast path's gate: the worker reads,
        parses and validates it too (identical bytes proven by their sha256)."""
        if not self.pid or self._candidate is None:
            return
        sent = _Sent(len(self.sent))
        try:
            pickle.dump((sent.token, *self._candidate), self.to_worker)
            self.to_worker.flush()
        except OSError:  # the worker is gone: everything is validated here
            self._stop()
            return
        self.sent.append(sent)
        self._pending = sent

    def done(self, state: LoadState, *, fast: bool) -> None:
        """The file last given to :meth:`read` (if any) has its objects collected."""
        ranges: list[Range] = []
        for kind in kinds.KINDS:
            start, end = self.counts.get(kind.name, 0), len(state.items[kind.name])
            if end > start:
                ranges.append((kind.name, start, end))
                self.counts[kind.name] = end
        if self._pending is not None:
            self._pending.ranges, self._pending.fast = ranges, fast
            self._pending = None
        elif ranges:
            self.local.append(ranges)

    def _start(self, first: bytes) -> None:
        try:
            requests_r, requests_w = os.pipe()
            answers_r, answers_w = os.pipe()
        except OSError:
            self.fork = False
            return
        try:
            pid = os.fork()
        except OSError:
            for fd in (requests_r, requests_w, answers_r, answers_w):
                os.close(fd)
            self.fork = False
            return
        if pid == 0:  # the worker: never returns, never runs the parent's clean-up
            status = 1
            try:
                os.close(requests_w)
                os.close(answers_r)
                _warm_up(first)
                self._serve(requests_r, answers_w)
                status = 0
            finally:
                os._exit(status)
        os.close(requests_r)
        os.close(answers_w)
        self.pid, self.from_worker = pid, answers_r
        self.to_worker = os.fdopen(requests_w, "wb")

    def _serve(self, requests: int, answers: int) -> None:
        """The worker's loop: every request read to the end, then all answers at once (so
        neither side ever waits on a full pipe while the other waits on it)."""
        out: dict[int, FileReports] = {}
        with os.fdopen(requests, "rb") as source:
            unpickler = pickle.Unpickler(source)
            while True:
                try:
                    token, file, size, digest = unpickler.load()
                except EOFError:
                    break
                out[token] = _validate_file(self.read_objects, file, size, digest, self.limit)
        with os.fdopen(answers, "wb") as sink:
            pickle.dump(out, sink, protocol=pickle.HIGHEST_PROTOCOL)

    def finish(self, state: LoadState) -> list[tuple[DesiredObject, str, NodePath, str]]:
        """Every message (object, message, field path, prefer), in the order of validating
        kind after kind and object after object."""
        answers = self._answers()
        found: list[tuple[str, int, list[Report]]] = []  # (kind name, start, messages)
        local = [r for ranges in self.local for r in ranges]
        for sent in self.sent:
            answer = answers.get(sent.token) if sent.fast else None
            if answer is None or set(answer) != {name for name, _, _ in sent.ranges} or any(
                answer[name][0] != end - start for name, start, end in sent.ranges
            ):
                local.extend(sent.ranges)  # read differently, or not at all: validated here
                continue
            found.extend((name, start, answer[name][1]) for name, start, _ in sent.ranges)
        found.extend((name, start, reports) for (name, start, _), reports in
                     zip(local, _validate_ranges(state, local), strict=True))
        by_kind: dict[str, list[tuple[int, list[Report]]]] = {}
        for name, start, reports in found:
            if reports:
                by_kind.setdefault(name, []).append((start, reports))
        out: list[tuple[DesiredObject, str, NodePath, str]] = []
        for kind in kinds.KINDS:
            items = state.items[kind.name]
            for start, reports in sorted(by_kind.get(kind.name, ()), key=lambda pair: pair[0]):
                out.extend((items[start + index], message, path, prefer) for index, message, path, prefer in reports)
        return out

    def _answers(self) -> dict[int, FileReports]:
        """The worker's answers (empty if there is no worker or it failed in any way)."""
        if not self.pid:
            return {}
        chunks: list[bytes] = []
        try:
            self.to_worker.close()  # no more requests: the worker answers and exits
            while chunk := os.read(self.from_worker, 1 << 20):
                chunks.append(chunk)
        except OSError:
            chunks = []
        status = self._stop()
        if status != 0:
            return {}
        try:
            answers = pickle.loads(b"".join(chunks))
        except Exception:  # any unreadable answer: everything is validated here instead
            return {}
        return answers if isinstance(answers, dict) else {}

    def _stop(self) -> int:
        """Close the pipes and reap the worker; its exit status."""
        if self.to_worker is not None:
            with contextlib.suppress(OSError):
                self.to_worker.close()
            self.to_worker = None
        if self.from_worker >= 0:
            os.close(self.from_worker)
            self.from_worker = -1
        status = _reap(self.pid) if self.pid else 1
        self.pid = 0
        return status

    def abandon(self) -> None:
        """Stop a worker still running (an interrupt, an error in the main process)."""
        if self.pid:
            with contextlib.suppress(OSError):  # already gone
                os.kill(self.pid, signal.SIGKILL)
            self._stop()


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

