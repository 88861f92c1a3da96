"""Reading and validating manifest files on a second core, when that pays.

Why a second core: at 100k accounts, reading the files (gating, parsing) and validating the
objects are most of ``validate`` and of a plan, and each file's share depends on nothing but
the file. So a worker process, forked before the first file is read (while the main process is
small), reads the last files of the load itself: it gates and parses each, writes the parsed
values (``marshal``, several times faster to load than YAML is to parse) into memory shared
with the main process and says where, then collects and validates their objects and answers
the messages by index. Meanwhile the main process reads and parses the first files, takes the
worker's values for the others, collects their objects in order, checks the rules that need
every object and validates its own files' objects.

Whole files leave the two shares uneven, so the main process can also hand the worker the
values of some of the first files, as it parses them (through a second shared region), for
the worker to validate once its own files are done.

Which files the worker reads and which it is handed (:func:`split`) comes from the files'
sizes and what each step costs per megabyte, so that both processes end about together: with
four files of 25k accounts the worker reads the last two and is handed the first, and a
100k-account load takes ~1.35 s instead of ~1.7 s with the worker validating every file it had
read again. A single large file of 10k accounts stays in the main process.

What the result depends on is fixed, not the timing: the objects are collected in file order
by the same code in both processes, so the worker's messages name the main process's objects
by index, and the messages are put back in the order one process validating kind after kind,
object after object, would have produced them (:meth:`Validator.finish`). Whatever the worker
did not do (a file off the fast path, a file it could not read, a worker that died or could
not start) the main process reads and validates itself, so the outcome is always exactly the
sequential one; ``tests/test_parallel_validation.py`` holds the two to that over random
manifests and random splits.

Forking happens only where it is safe and worth it: on Linux (``fork`` elsewhere is either
missing or unsafe with system frameworks), in a process with no other thread (a thread
holding a lock at the fork would leave the child waiting on it for ever), and once the files
hold :data:`MIN_BYTES`, so small manifests and the test suite's many small loads never fork.
"""

from __future__ import annotations

import contextlib
import functools
import marshal
import mmap
import os
import pickle
import signal
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, TypeAdapter, ValidationError

from reconciler import kinds
from reconciler.manifest.messages import describe, display_path, field_errors
from reconciler.manifest.types import DesiredObject, NodePath

if TYPE_CHECKING:
    from reconciler.manifest.load import LoadState

VALIDATION_CHUNK = 2_000  # objects per bulk validation call: bounds the memory of model output
#: How much manifest text makes a worker worth starting (about 3,000 accounts).
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


def _validate_ranges(state: LoadState, ranges: Sequence[Range]) -> list[tuple[str, int, list[Report]]]:
    """(kind name, start, messages) for each range, validated in this process."""
    return [(name, start, validate_objects(kinds.get(name), state.items[name][start:end]))
            for name, start, end in ranges]


def _write_value(region: mmap.mmap, at: int, value: Any) -> int:
    """``value``'s marshal form written into shared ``region`` at ``at``: its length, or 0 when
    it cannot be (a value marshal cannot write, or no room left: the file is then read or
    validated by the main process instead)."""
    try:
        payload = marshal.dumps(value)
    except ValueError:
        return 0
    if at + len(payload) > len(region):
        return 0
    region[at : at + len(payload)] = payload
    return len(payload)


def _read_value(region: mmap.mmap, at: int, length: int) -> Any:
    """The value :func:`_write_value` wrote there (marshal reads the shared pages in place)."""
    with memoryview(region) as view:
        return marshal.loads(view[at : at + length])


def can_fork(environ: Mapping[str, str]) -> bool:
    """Whether a worker process may be forked here (see the module docstring)."""
    if environ.get(PROCESSES_ENV, "").strip() == "0":
        return False
    return sys.platform == "linux" and hasattr(os, "fork") and threading.active_count() == 1


# What each step costs per megabyte of manifest, in seconds on the machine the split was tuned
# on (2 cores; 10k and 100k accounts): only their ratios matter.
_OWN_READ = 0.041  # main process: gate, parse, collect the objects of a file it reads itself
_OWN_VALIDATE = 0.018  # main process: validate them
_TAKEN = 0.0075  # main process: load the worker's values of a file (marshal) and collect its objects
_HANDED = 0.002  # main process: write out the values of a file it read, for the worker to validate
_WORKER_READ = 0.033  # worker: read, gate, parse and write out a file's values
_WORKER_VALIDATE = 0.027  # worker: collect that file's objects and validate them
_WORKER_HANDED = 0.036  # worker: load the values the main process wrote out, collect, validate
_RULES = 0.0066  # main process, after the last file: rules and advice over every object
# And what each costs per file, whatever its size (reading it, the calls, the messages
# between the processes), in seconds: these decide for many small files.
_OWN_FILE = 60e-6  # main process: a file it reads and validates itself
_TAKEN_FILE = 25e-6  # main process: a file the worker read
_HANDED_FILE = 10e-6  # main process: a file it hands over
_WORKER_FILE = 115e-6  # worker: a file it reads and validates
_WORKER_HANDED_FILE = 80e-6  # worker: a file it is handed
_START = 0.01  # seconds: forking and the pipes
_BUILD = 0.03  # seconds: building the validators, in each process that validates
_GROUPS = 24  # the files are weighed in at most this many runs of neighbouring files
#: At most this many files are handed to the worker to validate: their few bytes of request
#: each then always fit in the pipe, so the main process never waits to write one.
MAX_HANDED = 1024


@dataclass(frozen=True, slots=True)
class Split:
    """How the files are shared: the worker reads the files from ``first`` on itself, and
    validates the first ``handed`` files from the values the main process read (without
    parsing them again). ``first == len(files)`` and ``handed == 0``: no worker."""

    first: int
    handed: int = 0


def split(sizes: Sequence[int]) -> Split:
    """How to share the files (by their sizes in bytes, in load order) between the main
    process and a worker, by the costs above, so that the later of the two ends soonest:

    * the worker reads a tail of the files itself: the main process starts on the first ones
      while the worker parses ahead, so its values are ready when the main process comes to
      them;
    * and, once that is done, it validates a head of the files the main process reads, from
      the values the main process hands over as it reads them (which evens out what whole
      files leave uneven, and lets one large file use the second core too).

    The worker runs only when that beats one process by a twentieth."""
    count = len(sizes)
    if not count:
        return Split(0)
    per = max(1, -(-count // _GROUPS))
    starts = list(range(0, count, per))  # each run's first file
    mb = [sum(sizes[at : at + per]) / 1e6 for at in starts]
    files = [min(per, count - at) for at in starts]
    total = sum(mb)
    runs = len(mb)
    alone = (_OWN_READ + _OWN_VALIDATE + _RULES) * total + _OWN_FILE * count + _BUILD

    def finish(first: int, handed: int) -> float:
        worker = _START
        ready: list[float] = []
        for size, n in zip(mb[first:], files[first:], strict=True):
            worker += _WORKER_READ * size + _WORKER_FILE * n
            ready.append(worker)
        if first < runs or handed:
            worker += _WORKER_VALIDATE * sum(mb[first:]) + _BUILD
        main = _START
        for index, (size, n) in enumerate(zip(mb, files, strict=True)):
            if index >= first:
                main = max(main, ready[index - first]) + _TAKEN * size + _TAKEN_FILE * n
            elif index < handed:  # handed over once parsed, before its objects are collected
                sent = main + (_OWN_READ - _TAKEN + _HANDED) * size
                worker = max(worker, sent) + _WORKER_HANDED * size + _WORKER_HANDED_FILE * n
                main += (_OWN_READ + _HANDED) * size + (_OWN_FILE + _HANDED_FILE) * n
            else:
                main += _OWN_READ * size + _OWN_FILE * n
        own = sum(mb[handed:first])
        main += _OWN_VALIDATE * own + (_BUILD if own else 0.0) + _RULES * total
        return max(main, worker)

    bounds = [*starts, count]  # run index -> first file
    best, first, handed = alone * 0.95, runs, 0  # a worker must win by a twentieth
    for tail in range(runs, -1, -1):  # the shortest tail first, among equals
        for head in range(tail + 1):
            if bounds[head] > MAX_HANDED:
                break
            if head or tail < runs:
                took = finish(tail, head)
                if took < best:
                    best, first, handed = took, tail, head
    return Split(bounds[first], bounds[handed])


# The fast path's reading of a file, as the main process would read it: ``(value,)``, or None
# when the main process must read the file itself (off the fast path, unreadable...).
ReadData = Callable[[str, int], tuple[Any] | None]
# A file's parsed value -> its objects by kind, exactly as the main process collects them.
ReadObjects = Callable[[str, Any], Mapping[str, Sequence[DesiredObject]]]
# What the worker answers for one file: kind name -> (objects read, messages).
FileReports = dict[str, tuple[int, list[Report]]]
_ANSWERS = -1  # the index of the worker's last message, its reports


@dataclass(slots=True)
class _Taken:
    index: int  # the file's place in the load
    ranges: list[Range] = field(default_factory=list)


@dataclass(slots=True)
class Validator:
    """Validation of everything loaded, and the worker's share of it. :meth:`start` with
    every file; per file :meth:`take` (the worker's values, if it read it) or, for a file this
    process reads on the fast path, :meth:`hand` (the worker may validate it), then
    :meth:`done` once its objects are collected; then :meth:`finish` for every message in
    sequential order (and :meth:`abandon` in any case)."""

    read_data: ReadData
    read_objects: ReadObjects
    fork: bool = True
    limit: int = 0  # the manifest size limit files are read with
    local: list[list[Range]] = field(default_factory=list)  # validated here, at finish
    taken: list[_Taken] = field(default_factory=list)  # files the worker read or validates
    counts: dict[str, int] = field(default_factory=dict)  # kind name -> items already assigned
    first: int = 0  # the first file the worker reads
    handed: int = 0  # the files before this one, read here, the worker validates
    pid: int = 0
    shared: mmap.mmap | None = None  # where the worker writes the values it read
    outgoing: mmap.mmap | None = None  # where this process writes the values it hands over
    out_offset: int = 0
    from_worker: Any = None  # a binary file: pickled (index, notice) messages
    to_worker: Any = None  # a binary file: pickled (index, offset, length) of handed values
    notices: dict[int, tuple[int, int] | None] = field(default_factory=dict)
    answers: dict[int, FileReports] | None = None
    _pending: _Taken | None = None

    def start(self, files: Sequence[str]) -> None:
        """Weigh the files and, when it pays, fork the worker that takes its share of them."""
        sizes = [_size(file) for file in files]
        self.first = len(files)
        if not self.fork or sum(sizes) < MIN_BYTES:
            return
        share = split(sizes)
        if share.first >= len(files) and not share.handed:
            return
        # marshal's form of parsed YAML is about as long as the text; twice it, and a file
        # that does not fit is simply read (or validated) by the main process.
        fds: list[int] = []
        try:
            shared = mmap.mmap(-1, 2 * sum(sizes[share.first :]) + (1 << 20))
            outgoing = mmap.mmap(-1, 2 * sum(sizes[: share.handed]) + (1 << 20))
            answers_r, answers_w = os.pipe()
            fds += (answers_r, answers_w)
            requests_r, requests_w = os.pipe()
            fds += (requests_r, requests_w)
            pid = os.fork()
        except (OSError, ValueError):
            for fd in fds:
                os.close(fd)
            return
        if pid == 0:  # the worker: never returns, never runs the parent's clean-up
            status = 1
            try:
                os.close(answers_r)
                os.close(requests_w)
                self._serve(files, share, shared, outgoing, answers_w, requests_r)
                status = 0
            finally:
                os._exit(status)
        os.close(answers_w)
        os.close(requests_r)
        self.pid, self.first, self.handed = pid, share.first, share.handed
        self.shared, self.outgoing = shared, outgoing
        self.from_worker = os.fdopen(answers_r, "rb")
        self.to_worker = os.fdopen(requests_w, "wb")

    def _serve(self, files: Sequence[str], share: Split, shared: mmap.mmap, outgoing: mmap.mmap,
               answers: int, requests: int) -> None:
        """The worker: every file from ``share.first`` on read and its values written out,
        each announced as soon as it is (the main process is waiting for them); then their
        objects validated; then those of the files the main process hands over, until it
        closes the requests; and the messages sent in one last message."""
        kept: list[tuple[int, str, Any]] = []
        offset = 0
        with os.fdopen(answers, "wb") as sink, os.fdopen(requests, "rb") as source:
            for index in range(share.first, len(files)):
                notice: tuple[int, int] | None = None
                read = self.read_data(files[index], self.limit)
                if read is not None and (length := _write_value(shared, offset, read[0])):
                    notice = (offset, length)
                    offset += length
                    kept.append((index, files[index], read[0]))
                pickle.dump((index, notice), sink, protocol=pickle.HIGHEST_PROTOCOL)
                sink.flush()
            reports: dict[int, FileReports] = {}
            for n, (index, file, value) in enumerate(kept):
                kept[n] = (index, file, None)  # each file's values freed once validated
                reports[index] = self._validate(file, value)
                del value
            while True:
                try:
                    index, at, length = pickle.load(source)
                except EOFError:
                    break
                value = _read_value(outgoing, at, length)
                reports[index] = self._validate(files[index], value)
                del value
            pickle.dump((_ANSWERS, reports), sink, protocol=pickle.HIGHEST_PROTOCOL)

    def _validate(self, file: str, value: Any) -> FileReports:
        objects = self.read_objects(file, value)
        return {name: (len(objs), validate_objects(kinds.get(name), objs)) for name, objs in objects.items() if objs}

    def hand(self, index: int, value: Any) -> None:
        """File ``index``, read here on the fast path, parsed to ``value``: when the split
        gives it to the worker, write the value out for it to validate (its objects are then
        validated there, not at :meth:`finish`)."""
        if not self.pid or index >= self.handed or self.to_worker is None or self.outgoing is None:
            return
        at = self.out_offset
        length = _write_value(self.outgoing, at, value)
        if not length:
            return
        try:
            pickle.dump((index, at, length), self.to_worker, protocol=pickle.HIGHEST_PROTOCOL)
            self.to_worker.flush()
        except OSError:  # the worker is gone: validated here, like everything else
            self._close_requests()
            return
        self.out_offset = at + length
        self._pending = _Taken(index)
        self.taken.append(self._pending)

    def take(self, index: int) -> tuple[Any] | None:
        """The worker's values of file ``index`` (waiting for them), or None when the main
        process reads that file itself."""
        self._pending = None
        if not self.pid or index < self.first:
            return None
        while index not in self.notices:
            if not self._receive():
                return None
        notice = self.notices.pop(index)
        if notice is None or self.shared is None:
            return None
        offset, length = notice
        try:
            value = _read_value(self.shared, offset, length)
        except (EOFError, ValueError, TypeError):
            return None
        self._pending = _Taken(index)
        self.taken.append(self._pending)
        return (value,)

    def _receive(self) -> bool:
        """One more message from the worker; False when there are no more (it is gone)."""
        try:
            index, message = pickle.load(self.from_worker)
        except Exception:  # the worker died or said something unreadable: read here instead
            self.abandon()
            return False
        if index == _ANSWERS:
            self.answers = message if isinstance(message, dict) else {}
            return False
        self.notices[index] = message
        return True

    def done(self, state: LoadState) -> None:
        """The file last asked about (:meth:`take`) has its objects collected."""
        ranges: list[Range] = []
        for kind in kinds.KINDS:
            start, end = self.counts.get(kind.name, 0), len(state.items[kind.name])
            if end > start:
                ranges.append((kind.name, start, end))
                self.counts[kind.name] = end
        if self._pending is not None:
            self._pending.ranges = ranges
            self._pending = None
        elif ranges:
            self.local.append(ranges)

    def finish(self, state: LoadState) -> list[tuple[DesiredObject, str, NodePath, str]]:
        """Every message (object, message, field path, prefer), in the order of validating
        kind after kind and object after object. The main process validates its own files
        first, while the worker may still be validating the others."""
        self._close_requests()  # the worker finishes what it was handed, then answers
        local = [r for ranges in self.local for r in ranges]
        found = _validate_ranges(state, local)
        answers = self._answers()
        missing: list[Range] = []
        for taken in self.taken:
            answer = answers.get(taken.index)
            if answer is None or set(answer) != {name for name, _, _ in taken.ranges} or any(
                answer[name][0] != end - start for name, start, end in taken.ranges
            ):
                missing.extend(taken.ranges)  # the worker did not validate it: done here
                continue
            found.extend((name, start, answer[name][1]) for name, start, _ in taken.ranges)
        found.extend(_validate_ranges(state, missing))
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
        """The worker's reports (empty if there is no worker or it failed in any way)."""
        while self.pid and self.answers is None and self._receive():
            pass
        answers = self.answers or {}
        if self.pid and self._stop() != 0:
            return {}
        return answers

    def _close_requests(self) -> None:
        if self.to_worker is not None:
            with contextlib.suppress(OSError):
                self.to_worker.close()
            self.to_worker = None

    def _stop(self) -> int:
        """Close the pipes and the shared memory and reap the worker; its exit status."""
        self._close_requests()
        if self.outgoing is not None:
            with contextlib.suppress(BufferError):
                self.outgoing.close()
            self.outgoing = None
        if self.from_worker is not None:
            with contextlib.suppress(OSError):
                self.from_worker.close()
            self.from_worker = None
        if self.shared is not None:
            with contextlib.suppress(BufferError):  # a view still held: freed with the process
                self.shared.close()
            self.shared = None
        status = _reap(self.pid) if self.pid else 1
        self.pid = 0
        return status

    def abandon(self) -> None:
        """Stop a worker still running (an interrupt, an error in the main process)."""
        if self.pid:
            with contextlib.suppress(OSError):  # already gone
                os.kill(self.pid, signal.SIGKILL)
            self._stop()


def _size(file: str) -> int:
    try:
        return os.stat(file).st_size
    except OSError:
        return 0


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
