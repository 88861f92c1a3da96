"""The progress line: its formatting, when it draws, and that a real command shows it on a
terminal (stderr on a pty) and never in a log (stderr a pipe)."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from reconciler.emulator import EmulatorConfig
from reconciler.emulator.testing import RunningEmulator, running_emulator
from reconciler.progress import ProgressLine, format_duration, format_line, format_rate, stream_is_terminal
from tests.conftest import REPO


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


# ---------------------------------------------------------------------- formatting


@pytest.mark.parametrize(
    ("rate", "text"),
    [(0.25, "0.25/s"), (4.0, "4.00/s"), (47.5, "47.5/s"), (99.94, "99.9/s"), (2150.4, "2,150/s"), (100.0, "100/s")],
)
def test_rate(rate: float, text: str) -> None:
    assert format_rate(rate) == text


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0s"), (0.2, "1s"), (4, "4s"), (59.5, "1m00s"), (65, "1m05s"), (3599, "59m59s"), (7380, "2h03m"),
     (-3, "0s")],
)
def test_duration_rounds_up(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


def test_line_with_a_total_shows_share_rate_and_time_left() -> None:
    assert format_line("Applying", 430, 1000, 9.05) == "Applying 430/1,000 (43%), 47.5/s, 12s left"
    assert format_line("Applying", 430, 1000, 9.05, failed=2) == "Applying 430/1,000 (43%), 2 failed, 47.5/s, 12s left"


def test_line_without_a_total_shows_count_and_rate_only() -> None:
    assert format_line("Reading", 4300, None, 4.3) == "Reading 4,300, 1,000/s"


def test_line_before_any_progress_and_when_finished() -> None:
    assert format_line("Reading", 0, 10_000, 0.0) == "Reading 0/10,000 (0%)"
    assert format_line("Reading", 10_000, 10_000, 2.1, finished=True) == "Reading 10,000/10,000 (100%), 4,762/s, in 3s"


# ---------------------------------------------------------------------- drawing


def test_nothing_is_drawn_before_the_delay_and_redraws_are_spaced() -> None:
    out, clock = io.StringIO(), Clock()
    line = ProgressLine("Reading", stream=out, enabled=True, delay=0.3, interval=0.1, clock=clock)
    clock.now += 0.1
    line(10, 100)
    assert out.getvalue() == ""  # quick work shows nothing
    clock.now += 0.3
    line(40, 100)
    assert out.getvalue() == "\rReading 40/100 (40%), 100/s, 1s left"
    clock.now += 0.05
    line(45, 100)  # too soon after the last draw
    assert out.getvalue().count("\r") == 1
    clock.now += 0.06
    line(50, 100)
    assert out.getvalue().count("\r") == 2
    line(100, 100)  # the end is always drawn
    line.close()
    assert out.getvalue().endswith("\rReading 100/100 (100%), 196/s, in 1s\n")


def test_a_shorter_line_blanks_what_the_longer_one_left() -> None:
    out, clock = io.StringIO(), Clock()
    line = ProgressLine("Applying", stream=out, enabled=True, delay=0, interval=0, clock=clock)
    clock.now += 1
    line(5, 10, 3)
    clock.now += 100
    line(6, 10, 0)
    first, second = out.getvalue().split("\r")[1:]
    assert len(second) >= len(first) and second.rstrip() == "Applying 6/10 (60%), 0.06/s, 1m08s left"


def test_quick_work_leaves_nothing_even_on_close() -> None:
    out, clock = io.StringIO(), Clock()
    with ProgressLine("Reading", stream=out, enabled=True, clock=clock) as line:
        line(5, None)
    assert out.getvalue() == ""


def test_disabled_when_the_stream_is_not_a_terminal() -> None:
    out, clock = io.StringIO(), Clock()
    line = ProgressLine("Reading", stream=out, clock=clock, delay=0)
    assert not line.enabled
    clock.now += 5
    line(10, 20)
    line.close()
    assert out.getvalue() == ""


def test_a_dumb_terminal_gets_no_line(monkeypatch: pytest.MonkeyPatch) -> None:
    main, other = os.openpty()
    with open(other, "w", encoding="utf-8") as tty:
        monkeypatch.setenv("TERM", "xterm")
        assert stream_is_terminal(tty)
        monkeypatch.setenv("TERM", "dumb")
        assert not stream_is_terminal(tty)
    os.close(main)


def test_calls_from_many_threads_draw_whole_lines() -> None:
    out, clock = io.StringIO(), Clock()
    line = ProgressLine("Applying", stream=out, enabled=True, delay=0, interval=0, clock=clock)
    clock.now += 1
    threads = [threading.Thread(target=lambda i=i: [line(i * 100 + j, 10_000) for j in range(100)]) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    line.close()
    drawn = out.getvalue().rstrip("\n").split("\r")[1:]
    assert len(drawn) == 801 and all(d.rstrip().startswith("Applying ") for d in drawn)


# ---------------------------------------------------------------------- a real command on a pty


@pytest.fixture
def slow_emu() -> Iterator[RunningEmulator]:
    # Every request takes at least 400 ms, longer than the line's delay: no timing luck involved.
    with running_emulator(EmulatorConfig(rate_limit=None, latency_ms=400)) as running:
        yield running


def _manifests(directory: Path, count: int) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    lines = ["accounts:"] + [f"  - {{code: PROG-{i:03d}, name: Customer {i}, emailAddress: c{i}@customers.example}}"
                          for i in range(count)]
    (directory / "accounts.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return directory


def _run(emu: RunningEmulator, args: list[str], *, tty: bool) -> tuple[int, str, str]:
    """``python -m reconciler ARGS`` in a child process with stderr on a pty (a terminal) or
    a pipe (a log); returns exit code, stdout and everything written to stderr."""
    env = {**os.environ, **emu.env(), "PYTHONPATH": str(REPO), "TERM": "xterm"}
    env.pop("RECONCILER_BACKEND", None)
    cmd = [sys.executable, "-m", "reconciler", *args, "--backend", f"m3ter:{emu.base_url}"]
    if not tty:
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
                              check=False)
        return done.returncode, done.stdout, done.stderr
    main, other = os.openpty()
    chunks: list[bytes] = []

    def drain() -> None:
        while True:
            try:
                data = os.read(main, 4096)
            except OSError:  # EIO: the child closed its end
                return
            if not data:
                return
            chunks.append(data)

    reader = threading.Thread(target=drain)
    reader.start()
    try:
        proc = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=other, stdin=subprocess.DEVNULL,
                              timeout=120, check=False)
    finally:
        os.close(other)
        reader.join(timeout=10)
        os.close(main)
    return proc.returncode, proc.stdout.decode(), b"".join(chunks).decode(errors="replace")


def test_plan_and_apply_show_progress_on_a_terminal(slow_emu: RunningEmulator, tmp_path: Path) -> None:
    manifests = str(_manifests(tmp_path / "m", 12))
    code, out, err = _run(slow_emu, ["apply", manifests, "--auto-approve"], tty=True)
    assert code == 0, err
    assert "\rReading the organization " in err
    assert "\rApplying " in err and "Applying 12/12 (100%)" in err
    code, out, err = _run(slow_emu, ["plan", manifests], tty=True)
    assert code == 0 and "No changes." in out
    assert "\rReading the organization " in err and "\r" not in out


def test_no_progress_in_a_log(slow_emu: RunningEmulator, tmp_path: Path) -> None:
    manifests = str(_manifests(tmp_path / "m", 12))
    code, _out, err = _run(slow_emu, ["apply", manifests, "--auto-approve"], tty=False)
    assert code == 0, err
    assert "\r" not in err and "Reading the organization" not in err and "Applying " not in err
    assert "Apply: 12 applied, 0 failed, 0 skipped." in err
