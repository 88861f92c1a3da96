"""Interrupts are reported (DESIGN §4, issue 11 item 7).

Unit level: the scheduler's ``stop`` event — changes in flight finish, nothing new starts,
the rest are ``not_started`` (distinct from ``skipped``). Signal helpers and the entry point
in-process. End to end: a real ``reconciler apply`` subprocess against the emulator (with
latency, so the signal lands part-way) gets SIGINT or SIGTERM: it exits 130/143, lists what
was applied and not started, and the next plan is exactly the rest; a re-run converges.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from reconciler import interrupt
from reconciler.apply import StopRequest, apply_changes
from reconciler.backends.base import Entity
from reconciler.emulator import EmulatorConfig
from reconciler.emulator.testing import RunningEmulator, running_emulator
from reconciler.kinds import Kind
from reconciler.plan import Change
from tests.conftest import REPO, run_cli
from tests.test_apply_unit import MemoryBackend, create

# -- the scheduler's stop event ----------------------------------------------------------------


class GatedBackend(MemoryBackend):
    """Each create blocks until the test opens its gate, so a test knows exactly which
    changes are in flight when it sets ``stop``."""

    def __init__(self, fail_codes: set[str] | None = None) -> None:
        super().__init__(fail_codes or set())
        self.gates: dict[str, threading.Event] = {}
        self.started: list[str] = []
        self.cond = threading.Condition()

    def gate(self, code: str) -> threading.Event:
        with self.cond:
            return self.gates.setdefault(code, threading.Event())

    def create(self, kind: Kind, body: Mapping[str, Any]) -> Entity:
        code = str(body["code"])
        with self.cond:
            self.started.append(code)
            self.cond.notify_all()
        assert self.gate(code).wait(10), f"gate for {code} never opened"
        return super().create(kind, body)

    def wait_started(self, count: int) -> list[str]:
        with self.cond:
            assert self.cond.wait_for(lambda: len(self.started) >= count, timeout=10)
            return list(self.started)


def run_in_thread(fn: Any) -> tuple[threading.Thread, list[Any]]:
    box: list[Any] = []
    thread = threading.Thread(target=lambda: box.append(fn()), daemon=True)
    thread.start()
    return thread, box


def test_stop_lets_in_flight_changes_finish_and_starts_nothing_new() -> None:
    backend = GatedBackend()
    changes = [create("creditReason", f"r{i}") for i in range(10)]
    stop = StopRequest()
    thread, box = run_in_thread(lambda: apply_changes(changes, backend, parallelism=2, stop=stop))
    assert backend.wait_started(2) == ["r0", "r1"]
    stop.request("SIGINT")
    backend.gate("r0").set()
    backend.gate("r1").set()
    thread.join(10)
    result = box[0]
    assert backend.started == ["r0", "r1"]  # nothing started after the stop
    assert [o.status for o in result.outcomes] == ["applied"] * 2 + ["not_started"] * 8
    assert result.interrupted == "SIGINT" and not result.ok and result.result == "interrupted"
    assert result.counts == {"applied": 2, "failed": 0, "skipped": 0, "not_started": 8}
    assert result.summary_line() == "Apply interrupted by SIGINT: 2 applied, 0 failed, 0 skipped, 8 not started."


def test_an_in_flight_failure_still_skips_its_dependents_and_the_rest_are_not_started() -> None:
    backend = GatedBackend(fail_codes={"EUR"})
    changes = [
        create("currency", "EUR"),
        create("currency", "GBP"),
        create("account", "a", [0], currency="EUR"),  # waits on EUR, which fails: skipped
        create("account", "b", [1], currency="GBP"),  # waits on GBP, which applies: not started
        create("account", "c"),
        Change("delete", "account", "old", "id-old", 3, [], {}),  # removals never begin
    ]
    stop = StopRequest()
    thread, box = run_in_thread(lambda: apply_changes(changes, backend, parallelism=2, stop=stop))
    backend.wait_started(2)
    stop.request("SIGTERM")
    backend.gate("EUR").set()
    backend.gate("GBP").set()
    thread.join(10)
    result = box[0]
    assert [o.status for o in result.outcomes] == [
        "failed", "applied", "skipped", "not_started", "not_started", "not_started",
    ]  # fmt: skip
    assert ("delete", "id-old") not in backend.calls
    assert "currency EUR" in result.outcomes[2].message
    assert result.outcomes[3].message.startswith("not started")


def test_stop_set_before_the_run_starts_nothing() -> None:
    backend = MemoryBackend()
    stop = threading.Event()  # a plain Event works; the reason is then generic
    stop.set()
    result = apply_changes([create("creditReason", "r0"), create("creditReason", "r1")], backend, stop=stop)
    assert backend.calls == []
    assert [o.status for o in result.outcomes] == ["not_started", "not_started"]
    assert result.interrupted == "a stop request"


def test_without_a_stop_the_result_is_unchanged() -> None:
    result = apply_changes([create("creditReason", "r0")], MemoryBackend(), stop=StopRequest())
    assert result.ok and result.interrupted is None and result.result == "applied"
    assert result.summary_line() == "Apply: 1 applied, 0 failed, 0 skipped."


def test_result_document_lists_every_change_once_by_status() -> None:
    backend = MemoryBackend(fail_codes={"bad"})
    changes = [create("creditReason", "ok"), create("creditReason", "bad"), create("account", "x", [1])]
    doc = apply_changes(changes, backend).document()
    assert doc == {
        "formatVersion": 1,
        "result": "failed",
        "signal": None,
        "summary": {"applied": 1, "failed": 1, "skipped": 1, "notStarted": 0},
        "applied": [{"index": 0, "action": "create", "kind": "creditReason", "key": "ok", "message": ""}],
        "failed": [{"index": 1, "action": "create", "kind": "creditReason", "key": "bad", "message": "refused bad"}],
        "skipped": [
            {
                "index": 2,
                "action": "create",
                "kind": "account",
                "key": "x",
                "message": "skipped: it depends on create creditReason bad, which did not succeed",
            }
        ],
        "notStarted": [],
    }


# -- signal helpers and the entry point, in process --------------------------------------------


def _deliver(signum: int) -> None:
    """Send a signal to this process and give the main thread a moment to run its handler."""
    os.kill(os.getpid(), signum)
    time.sleep(0.05)


def test_first_signal_requests_a_stop_and_handlers_are_restored(capsys: pytest.CaptureFixture[str]) -> None:
    before = {s: signal.getsignal(s) for s in interrupt.STOP_SIGNALS}
    with interrupt.stop_on_signals() as stop:
        _deliver(signal.SIGTERM)
        assert stop.is_set() and stop.reason == "SIGTERM"
        assert interrupt.stop_exit_code(stop) == 143
    assert {s: signal.getsignal(s) for s in interrupt.STOP_SIGNALS} == before
    assert "SIGTERM: starting no new change" in capsys.readouterr().err


def test_sigterm_outside_apply_exits_143_with_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    from reconciler import services

    monkeypatch.setattr(services, "plan_loaded", lambda *a, **k: _deliver(signal.SIGTERM))
    before = signal.getsignal(signal.SIGTERM)
    result = run_cli("plan", str(REPO / "examples" / "org"))
    assert (result.code, result.stdout, result.stderr) == (143, "", "Terminated.\n")
    assert signal.getsignal(signal.SIGTERM) == before


def test_ctrl_c_outside_apply_exits_130_with_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    from reconciler import services

    def interrupted(*args: Any, **kwargs: Any) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(services, "plan_loaded", interrupted)
    result = run_cli("plan", str(REPO / "examples" / "org"))
    # click ends the current line first (a ^C on a terminal), then one line
    assert (result.code, result.stdout, result.stderr) == (130, "", "\nInterrupted.\n")


def test_format_json_prints_one_result_document_and_the_plan_on_stderr(tmp_path: Path, local_backend: str) -> None:
    manifests = accounts_manifest(tmp_path / "m", 3)
    first = run_cli("apply", str(manifests), "--backend", local_backend, "--auto-approve", "--format", "json")
    assert first.code == 0, first.output
    doc = json.loads(first.stdout)
    assert (doc["result"], doc["signal"], doc["summary"]) == (
        "applied",
        None,
        {"applied": 3, "failed": 0, "skipped": 0, "notStarted": 0},
    )
    assert [e["key"] for e in doc["applied"]] == ["acct-0000", "acct-0001", "acct-0002"]
    assert "Plan: 3 to create" in first.stderr
    again = run_cli("apply", str(manifests), "--backend", local_backend, "--auto-approve", "--format", "json")
    assert again.code == 0 and json.loads(again.stdout)["summary"]["applied"] == 0


# -- end to end: a real process, a real signal -------------------------------------------------


def accounts_manifest(directory: Path, count: int) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    lines = ["accounts:"]
    for i in range(count):
        lines.append(f"  - {{code: acct-{i:04d}, name: Customer {i}, emailAddress: c{i}@customers.example}}")
    (directory / "accounts.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return directory


@pytest.fixture
def slow_emu() -> Iterator[RunningEmulator]:
    # 30 ms per request at parallelism 2: 200 creates take seconds, so a signal lands part-way
    with running_emulator(EmulatorConfig(rate_limit=None, latency_ms=30)) as running:
        yield running


def live_codes(emu: RunningEmulator) -> set[str]:
    return {str(a["code"]) for a in emu.store.list_all(emu.org_id, "account")}


def start_apply(emu: RunningEmulator, manifests: Path, *extra: str) -> subprocess.Popen[str]:
    cmd = [
        sys.executable, "-m", "reconciler", "apply", str(manifests), "--backend", f"m3ter:{emu.base_url}",
        "--auto-approve", "--parallelism", "2", *extra,
    ]  # fmt: skip
    env = {**os.environ, **emu.env(), "PYTHONPATH": str(REPO)}
    return subprocess.Popen(
        cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True
    )


def signal_once_applying(proc: subprocess.Popen[str], emu: RunningEmulator, signum: int) -> None:
    """Wait until the first changes are live, then send ``signum``."""
    deadline = time.monotonic() + 20
    while len(live_codes(emu)) < 2:
        assert proc.poll() is None, "apply ended before it could be interrupted"
        assert time.monotonic() < deadline, "apply never started creating"
        time.sleep(0.02)
    proc.send_signal(signum)


def cli(emu: RunningEmulator, *args: str) -> Any:
    return run_cli(*args, "--backend", f"m3ter:{emu.base_url}", env=emu.env())


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_interrupted_apply_reports_exits_and_the_next_plan_is_exactly_the_rest(
    slow_emu: RunningEmulator, tmp_path: Path, signum: int, code: int
) -> None:
    manifests = accounts_manifest(tmp_path / "m", 200)
    proc = start_apply(slow_emu, manifests, "--format", "json")
    signal_once_applying(proc, slow_emu, signum)
    stdout, stderr = proc.communicate(timeout=20)
    name = signal.Signals(signum).name
    assert proc.returncode == code, stderr[-2000:]
    assert "Traceback" not in stderr
    doc = json.loads(stdout)  # stdout is exactly the result document
    assert (doc["formatVersion"], doc["result"], doc["signal"]) == (1, "interrupted", name)
    applied = {e["key"] for e in doc["applied"]}
    not_started = {e["key"] for e in doc["notStarted"]}
    assert doc["failed"] == [] and doc["skipped"] == []
    assert len(applied) + len(not_started) == 200 and applied and not_started
    # in-flight requests finished before the exit: what is live is exactly what was reported applied
    assert live_codes(slow_emu) == applied
    for key in applied:
        assert f"applied: create account {key}\n" in stderr
    for key in not_started:
        assert f"not started: create account {key}\n" in stderr
    assert f"{name}: starting no new change" in stderr
    assert (
        f"Apply interrupted by {name}: {len(applied)} applied, 0 failed, 0 skipped, {len(not_started)} not started."
        in stderr
    )
    plan = cli(slow_emu, "plan", str(manifests), "--format", "json")
    planned = json.loads(plan.stdout)["changes"]
    assert {(c["action"], c["key"]) for c in planned} == {("create", key) for key in not_started}
    assert len(planned) == len(not_started)
    rerun = cli(slow_emu, "apply", str(manifests), "--auto-approve", "--parallelism", "8", "--rate-limit", "1000")
    assert rerun.code == 0, rerun.output
    assert f"Apply: {len(not_started)} applied, 0 failed, 0 skipped." in rerun.stderr
    final = cli(slow_emu, "plan", str(manifests), "--detailed-exitcode")
    assert final.code == 0 and "No changes." in final.stdout, final.output


@pytest.fixture
def slower_emu() -> Iterator[RunningEmulator]:
    # 300 ms per request: the second Ctrl-C surely lands while the first waits for requests in flight
    with running_emulator(EmulatorConfig(rate_limit=None, latency_ms=300)) as running:
        yield running


def test_a_second_ctrl_c_exits_at_once(slower_emu: RunningEmulator, tmp_path: Path) -> None:
    manifests = accounts_manifest(tmp_path / "m", 200)
    proc = start_apply(slower_emu, manifests)
    assert proc.stderr is not None and proc.stdout is not None
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stderr or []), daemon=True)
    reader.start()
    signal_once_applying(proc, slower_emu, signal.SIGINT)
    # Two signals sent back to back can merge into one; send the second once the first is seen.
    deadline = time.monotonic() + 10
    while not any("SIGINT: starting no new change" in line for line in lines):
        assert time.monotonic() < deadline and proc.poll() is None, "".join(lines)
        time.sleep(0.01)
    started = time.monotonic()
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=10) == 130
    assert time.monotonic() - started < 2
    reader.join(10)
    stdout, stderr = proc.stdout.read(), "".join(lines)
    assert "SIGINT again: exiting at once" in stderr
    assert "Traceback" not in stderr and "Apply interrupted" not in stderr
    assert "Plan: 200 to create" in stdout  # the plan already shown is not lost
    assert 0 < len(live_codes(slower_emu)) < 200
