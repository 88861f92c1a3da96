"""Validation in forked processes gives exactly what one process gives (issue 13).

``reconciler.manifest.validation`` validates batches of objects in forked processes while the
main process reads on. Its contract: the diagnostics, their order and their positions are the
same as validating everything in one process, whatever the manifests (valid or not, one file
or many, nested objects, the slow YAML path). The property runs in a worker process of its
own: forking is only safe in a process with no other thread, and the test session may hold
server threads of other tests.
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

# Loads each directory it is given twice, forking for every batch of one object and more, and
# validating in this process only; answers the diagnostics of both and how many forks ran.
_WORKER = r"""
import json, os, sys
from reconciler.manifest import load_manifests, validation

validation.MIN_BYTES = 1
forks = 0
_read_again = validation.read_manifest_bytes
_fork = os.fork

def counting_fork():
    global forks
    pid = _fork()
    if pid:
        forks += 1
    return pid

os.fork = counting_fork
local = 0
_validate_here = validation._validate_ranges

def counting_validate_here(state, ranges):
    global local
    local += sum(end - start for _, start, end in ranges)
    return _validate_here(state, ranges)

validation._validate_ranges = counting_validate_here
for line in sys.stdin:
    request = json.loads(line)
    if request.get("tamper"):  # the worker's second read finds other bytes of the same length
        validation.read_manifest_bytes = lambda path, limit: _read_again(path, limit).replace(b": x\n", b": 7\n")
    else:
        validation.read_manifest_bytes = _read_again
    answer = {}
    for processes in ("1", "0"):
        before, local_before = forks, local
        result = load_manifests(request["paths"], environ={validation.PROCESSES_ENV: processes})
        answer[processes] = {
            "diagnostics": [d.format() for d in result.diagnostics],
            "objects": {kind: sorted(objs) for kind, objs in result.manifests.objects.items()},
            "forks": forks - before,
            "local": local - local_before,  # objects validated in the main process
        }
    print(json.dumps(answer), flush=True)
"""


class Worker:
    def __init__(self) -> None:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        self.process = subprocess.Popen([sys.executable, "-c", _WORKER], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, text=True, env=env, cwd=ROOT)

    def load(self, paths: list[str], *, tamper: bool = False) -> dict[str, Any]:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(json.dumps({"paths": paths, "tamper": tamper}) + "\n")
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


@given(manifests=broken_sets())
def test_forked_validation_reports_exactly_what_one_process_reports(worker: Worker, manifests: ManifestSet) -> None:
    note(repr(manifests))
    with tempfile.TemporaryDirectory() as tmp:
        directory = manifests.write(Path(tmp) / "m")
        answer = worker.load([str(directory)])
    forked, alone = answer["1"], answer["0"]
    assert alone["forks"] == 0
    if any(isinstance(v, list) and v for docs in manifests.files.values() for doc in docs for v in doc.values()):
        assert forked["forks"] == 1
    assert forked["diagnostics"] == alone["diagnostics"]
    assert forked["objects"] == alone["objects"]


def test_one_worker_validates_every_file_and_errors_keep_their_places(worker: Worker, tmp_path: Path) -> None:
    """Three files of accounts, errors in each: the forked run starts one worker and says the
    same as one process, every error at its FILE:LINE:COL."""
    for n in range(3):
        accounts = [
            {"code": f"acct-{n}-{i}", "name": f"Account {i}", "emailAddress": f"a{i}@example.com",
             "daysBeforeBillDue": "x" if i == 1 else 14}
            for i in range(3)
        ]
        ManifestSet({f"accounts-{n}.yaml": [{"accounts": accounts}]}).write(tmp_path)
    answer = worker.load([str(tmp_path)])
    assert answer["1"]["forks"] == 1
    assert answer["1"]["local"] == 0 and answer["0"]["local"] == 9  # the worker validated them all
    assert answer["1"]["diagnostics"] == answer["0"]["diagnostics"]
    errors = [d for d in answer["1"]["diagnostics"] if ": error: " in d]
    assert [d.split(": error: ")[0].rsplit(":", 1)[0] for d in errors] == [
        f"{tmp_path / f'accounts-{n}.yaml'}:9" for n in range(3)
    ]


def test_a_file_that_changed_before_the_worker_read_it_is_validated_here(worker: Worker, tmp_path: Path) -> None:
    """The worker reads each file again; when it finds other bytes (edited meanwhile), its
    messages would be about another text, so the main process validates what it read."""
    accounts = [{"code": "a", "name": "A", "emailAddress": "a@example.com", "daysBeforeBillDue": "x"}]
    ManifestSet({"accounts.yaml": [{"accounts": accounts}]}).write(tmp_path)
    honest, tampered = worker.load([str(tmp_path)]), worker.load([str(tmp_path)], tamper=True)
    assert tampered["1"]["forks"] == 1
    assert (honest["1"]["local"], tampered["1"]["local"]) == (0, 1)
    assert tampered["1"]["diagnostics"] == honest["1"]["diagnostics"] == honest["0"]["diagnostics"]
    assert any("daysBeforeBillDue: must be an integer" in d for d in tampered["1"]["diagnostics"])


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
