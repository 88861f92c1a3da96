"""Reading and validating in a forked worker gives exactly what one process gives (issue 13).

``reconciler.manifest.validation`` forks a worker that reads the last files of a load (gate,
parse, values through shared memory) and validates their objects, while the main process
reads the first ones. Its contract: the diagnostics, their order and their positions, and the
objects, are the same as loading everything in one process, whatever the manifests (valid or
not, one file or many, nested objects, the slow YAML path, unreadable files) and wherever the
split falls. The property runs in a worker process of its own: forking is only safe in a
process with no other thread, and the test session may hold server threads of other tests.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, note
from hypothesis import strategies as st

from reconciler.manifest import load_manifests, validation
from tests.strategies import ManifestSet, live_orgs, manifest_sets

ROOT = Path(__file__).resolve().parent.parent

# Loads each directory it is given twice, with the worker reading the files from ``first`` on
# (all of them by default) and validating the first ``handed`` files this process reads, and
# in this process only; answers the diagnostics and objects of
# both, how many forks ran and how many objects the main process validated. ``die_after``
# makes the worker exit without a word once it has read that many files.
_WORKER = r"""
import json, os, sys
from reconciler.manifest import load, load_manifests, validation

validation.MIN_BYTES = 1
forks = 0
_fork = os.fork
_fast_data = load._fast_data
_split = validation.split
settings = {}

def counting_fork():
    global forks
    pid = _fork()
    if pid:
        forks += 1
    return pid

def dying_fast_data(file, limit):  # runs in the worker only
    settings["read"] = settings.get("read", 0) + 1
    if settings.get("die_after") is not None and settings["read"] > settings["die_after"]:
        os._exit(9)
    return _fast_data(file, limit)

os.fork = counting_fork
load._fast_data = dying_fast_data
validation.split = lambda sizes: validation.Split(min(settings.get("first", 0), len(sizes)),
                                                  min(settings.get("handed", 0), len(sizes)))
local = 0
_validate_here = validation._validate_ranges

def counting_validate_here(state, ranges):
    global local
    local += sum(end - start for _, start, end in ranges)
    return _validate_here(state, ranges)

validation._validate_ranges = counting_validate_here
for line in sys.stdin:
    request = json.loads(line)
    settings.clear()
    settings.update(first=request.get("first", 0), handed=request.get("handed", 0),
                    die_after=request.get("die_after"))
    answer = {}
    for processes in ("1", "0"):
        before, local_before = forks, local
        result = load_manifests(request["paths"], environ={validation.PROCESSES_ENV: processes})
        answer[processes] = {
            "diagnostics": [d.format() for d in result.diagnostics],
            "objects": {kind: sorted(objs) for kind, objs in result.manifests.objects.items()},
            "fields": {kind: [o.fields for o in objs.values()] for kind, objs in result.manifests.objects.items()},
            "files": len(result.manifests.files),
            "forks": forks - before,
            "local": local - local_before,  # objects validated in the main process
        }
    print(json.dumps(answer, default=repr), flush=True)
"""


class Worker:
    def __init__(self) -> None:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        self.process = subprocess.Popen([sys.executable, "-c", _WORKER], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, text=True, env=env, cwd=ROOT)

    def load(self, paths: list[str], *, first: int = 0, handed: int = 0,
             die_after: int | None = None) -> dict[str, Any]:
        assert self.process.stdin is not None and self.process.stdout is not None
        request = {"paths": paths, "first": first, "handed": handed, "die_after": die_after}
        self.process.stdin.write(json.dumps(request) + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        assert line, "the validation worker died"
        answer: dict[str, Any] = json.loads(line)
        return answer

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(timeout=30)


@pytest.fixture(scope="module")
def worker() -> Iterator[Worker]:
    running = Worker()
    yield running
    running.close()


# Values each model refuses, with the fields they go in (a kind's own field or an unknown one).
_BAD_VALUES: list[tuple[str, Any]] = [
    ("code", "bad\tcode"),
    ("code", 12),
    ("name", ""),
    ("name", ["a list"]),
    ("emailAddress", "not an address"),
    ("daysBeforeBillDue", "fourteen"),
    ("noSuchField", 1),
    ("currency", "no such currency code with spaces"),
    ("maxDecimalPlaces", -3),
    ("archived", "yes please"),
]


@st.composite
def broken_sets(draw: st.DrawFn) -> ManifestSet:
    """A random valid manifest set, spread over several files, with some objects broken."""
    live = draw(live_orgs(catalog=draw(st.booleans())))
    valid = draw(manifest_sets(live, catalog=live.catalog != ()))
    files: dict[str, list[dict[str, Any]]] = {}
    for name, docs in valid.files.items():
        for doc in docs:
            for key, value in doc.items():
                if isinstance(value, list) and len(value) > 1 and draw(st.booleans()):
                    cut = draw(st.integers(1, len(value) - 1))  # the list in two files
                    files.setdefault(f"z-{key}-{name}", []).append({key: value[cut:]})
                    value = value[:cut]
                if isinstance(value, list):
                    for item in value:
                        if isinstance(item, dict) and draw(st.integers(0, 4)) == 0:
                            field, bad = draw(st.sampled_from(_BAD_VALUES))
                            item[field] = bad
                files.setdefault(name, []).append({key: value})
    return ManifestSet(files)


@given(manifests=broken_sets(), first=st.integers(0, 12), handed=st.integers(0, 12))
def test_forked_loading_reports_exactly_what_one_process_reports(
    worker: Worker, manifests: ManifestSet, first: int, handed: int
) -> None:
    note(repr(manifests))
    with tempfile.TemporaryDirectory() as tmp:
        directory = manifests.write(Path(tmp) / "m")
        answer = worker.load([str(directory)], first=first, handed=handed)
    forked, alone = answer["1"], answer["0"]
    assert alone["forks"] == 0
    assert forked["forks"] == (1 if first < forked["files"] or min(handed, forked["files"]) else 0)
    assert forked["diagnostics"] == alone["diagnostics"]
    assert forked["objects"] == alone["objects"]
    assert forked["fields"] == alone["fields"]


def _three_account_files(directory: Path) -> None:
    for n in range(3):
        accounts = [
            {"code": f"acct-{n}-{i}", "name": f"Account {i}", "emailAddress": f"a{i}@example.com",
             "daysBeforeBillDue": "x" if i == 1 else 14}
            for i in range(3)
        ]
        ManifestSet({f"accounts-{n}.yaml": [{"accounts": accounts}]}).write(directory)


def test_the_worker_reads_and_validates_its_files_and_errors_keep_their_places(
    worker: Worker, tmp_path: Path
) -> None:
    """Three files of accounts, errors in each: with the worker reading the last two, the
    main process validates only the first file's objects, and says the same as one process,
    every error at its FILE:LINE:COL."""
    _three_account_files(tmp_path)
    answer = worker.load([str(tmp_path)], first=1)
    assert answer["1"]["forks"] == 1
    assert answer["1"]["local"] == 3 and answer["0"]["local"] == 9
    assert answer["1"]["diagnostics"] == answer["0"]["diagnostics"]
    errors = [d for d in answer["1"]["diagnostics"] if ": error: " in d]
    assert [d.split(": error: ")[0].rsplit(":", 1)[0] for d in errors] == [
        f"{tmp_path / f'accounts-{n}.yaml'}:9" for n in range(3)
    ]


def test_the_worker_validates_files_read_here_that_it_is_handed(worker: Worker, tmp_path: Path) -> None:
    """With the worker handed the first two files (this process reads them) and reading the
    third itself, nothing is validated here, and every message is where one process puts it."""
    _three_account_files(tmp_path)
    answer = worker.load([str(tmp_path)], first=2, handed=2)
    assert answer["1"]["forks"] == 1
    assert answer["1"]["local"] == 0 and answer["0"]["local"] == 9
    assert answer["1"]["diagnostics"] == answer["0"]["diagnostics"]
    assert answer["1"]["objects"] == answer["0"]["objects"]


def test_files_the_worker_cannot_read_fast_are_read_here(worker: Worker, tmp_path: Path) -> None:
    """A file off the fast path (a YAML 1.1 boolean), one that is not UTF-8 and one whose shape
    is wrong: the worker hands each back and the main process reads it, with every message and
    position of one process."""
    _three_account_files(tmp_path)
    (tmp_path / "b-bool.yaml").write_text("creditReasons:\n  - code: R1\n    name: R\n    archived: yes\n")
    (tmp_path / "c-latin1.yaml").write_bytes("creditReasons:\n  - code: R2\n    name: caf\xe9\n".encode("latin-1"))
    (tmp_path / "d-shape.yaml").write_text("creditReasons:\n  code: R3\n")
    answer = worker.load([str(tmp_path)])
    assert answer["1"]["forks"] == 1
    assert answer["1"]["local"] == 1  # R1, read here; the others hold no valid object
    assert answer["1"]["diagnostics"] == answer["0"]["diagnostics"]
    text = "\n".join(answer["1"]["diagnostics"])
    assert "not valid UTF-8" in text and "c-latin1.yaml:3:" in text
    assert "d-shape.yaml:1:1: error: creditReasons: must be a list" in text


def test_a_worker_that_dies_half_way_costs_time_not_messages(worker: Worker, tmp_path: Path) -> None:
    """The worker exits after reading one of its files: the main process reads the others
    itself and validates everything, and says exactly what one process says."""
    _three_account_files(tmp_path)
    answer = worker.load([str(tmp_path)], die_after=1)
    assert answer["1"]["forks"] == 1
    assert answer["1"]["local"] == 9
    assert answer["1"]["diagnostics"] == answer["0"]["diagnostics"]
    # handed files too: the worker dies before validating what it was handed
    answer = worker.load([str(tmp_path)], first=2, handed=2, die_after=0)
    assert answer["1"]["forks"] == 1
    assert answer["1"]["local"] == 9
    assert answer["1"]["diagnostics"] == answer["0"]["diagnostics"]
    assert answer["1"]["objects"] == answer["0"]["objects"]


def test_a_worker_that_fails_costs_time_not_messages(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A worker that cannot be forked or dies costs time, never a message: everything is
    validated in the main process. Forking is simulated as failing and as a dead process."""
    ManifestSet({"a.yaml": [{"accounts": [{"code": "ok", "name": ""}]}]}).write(tmp_path)
    expected = [d.format() for d in load_manifests([str(tmp_path)]).diagnostics]
    assert expected and "name" in expected[0]

    def no_fork() -> int:
        raise OSError("fork refused")

    monkeypatch.setattr(validation, "MIN_BYTES", 1)
    monkeypatch.setattr(validation, "can_fork", lambda environ: True)
    monkeypatch.setattr(validation.os, "fork", no_fork)
    assert [d.format() for d in load_manifests([str(tmp_path)]).diagnostics] == expected

    def dead_child() -> int:  # "forks" a process that fails before answering
        return subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"]).pid

    monkeypatch.setattr(validation.os, "fork", dead_child)
    assert [d.format() for d in load_manifests([str(tmp_path)]).diagnostics] == expected

def test_the_switch_turns_forking_off() -> None:
    assert not validation.can_fork({validation.PROCESSES_ENV: "0"})


def test_the_split_gives_the_worker_a_share_only_when_it_pays() -> None:
    """The worker reads the last files, about half of four equal large files, and is handed
    the first to validate; a 3.4 MB file alone, or little text, stays in the main process."""
    four = [8_500_000] * 4 + [540, 3_300]
    assert validation.split(four) == validation.Split(2, 1)
    assert validation.split([3_400_000, 540, 3_300]) == validation.Split(3, 0)
    assert validation.split([]) == validation.Split(0, 0)
    many = validation.split([300_000] * 100)
    assert 30 <= many.first <= 60 and many.handed <= many.first
    assert validation.split([1_000_000] * 1_000).first < 1_000  # weighed in a few dozen runs
    assert validation.split([10_000] * 5_000).handed <= validation.MAX_HANDED
    # a file costs the worker more than it saves the main process, whatever its size: of many
    # tiny files the worker takes fewer than half
    assert validation.split([550] * 3_000).first > 1_500
