"""SIGINT and SIGTERM for the CLI (DESIGN §4: interrupts are reported).

During apply (``stop_on_signals``) the first signal only asks the scheduler to stop: no new
change starts, the ones in flight finish (bounded by their request timeout), and the CLI
then reports what was applied, failed and not started and exits ``128 + signal`` (130 for
SIGINT, 143 for SIGTERM). Stopping this way leaves the organization in a state the next plan
describes exactly, which an abrupt exit cannot promise for the requests in flight.

A second signal means the person does not want to wait: the process ends at once with
``os._exit`` after one line on stderr. ``os._exit`` rather than an exception because an
exception would still wait for the worker threads (the thread pool and the interpreter both
join them on the way out), which is exactly the wait being refused. What the in-flight
requests did is then unknown to this process; ``plan`` shows it.

Outside apply (``terminate_raises``) SIGTERM unwinds like Ctrl-C does, as :class:`Terminated`,
so the entry point prints one line and exits 143 instead of dying silently or with a traceback.

Handlers are installed only from the main thread (Python allows no other) and the previous
ones are always restored, so calling the CLI in-process (tests) leaves no trace.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from types import FrameType
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # importing the scheduler costs ~200 ms; main() loads this module on every command
    from reconciler.apply import StopRequest

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def exit_code(signum: int) -> int:
    """The shell convention for "ended by signal N": 130 for SIGINT, 143 for SIGTERM."""
    return 128 + signum


class Terminated(BaseException):
    """SIGTERM arrived outside apply. A BaseException, like KeyboardInterrupt, so no
    ``except Exception`` on the way up swallows it."""

    def __init__(self, signum: int = signal.SIGTERM) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def stop_exit_code(stop: StopRequest) -> int | None:
    """The exit code for an apply stopped by ``stop_on_signals``; None when no signal came."""
    if stop.reason is None:
        return None
    return exit_code(signal.Signals[stop.reason])


def _say(line: str) -> None:
    """Write one line to stderr from a signal handler. The handler may run while the main
    thread is inside a write to the same stream (the buffered writer then refuses a
    reentrant call), so fall back to the file descriptor."""
    try:
        sys.stderr.write(line + "\n")
        sys.stderr.flush()
    except (RuntimeError, ValueError, OSError):
        with contextlib.suppress(OSError):
            os.write(2, (line + "\n").encode("utf-8", "replace"))


def _in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


@contextlib.contextmanager
def _handlers(handler: Callable[[int, FrameType | None], None], signals: tuple[signal.Signals, ...]) -> Iterator[None]:
    if not _in_main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, handler) for sig in signals}
    try:
        yield
    finally:
        for sig, old in previous.items():
            if old is not None:  # None: set outside Python, cannot be put back
                signal.signal(sig, old)


@contextlib.contextmanager
def stop_on_signals() -> Iterator[StopRequest]:
    """For the duration of an apply: the first SIGINT/SIGTERM sets the yielded stop request
    (its reason is the signal's name) and says so on stderr; a second one exits the process
    at once (see the module docstring)."""
    from reconciler.apply import StopRequest

    stop = StopRequest()

    def handle(signum: int, frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if stop.reason is None:
            stop.request(name)
            again = "press Ctrl-C again" if signum == signal.SIGINT else "send it again"
            lead = "\n" if sys.stderr.isatty() else ""  # end a progress line first
            _say(f"{lead}{name}: starting no new change and waiting for those in flight; {again} to exit at once.")
            return
        _say(
            f"{name} again: exiting at once; changes in flight may or may not have been applied "
            "(run plan to see what is left)."
        )
        with contextlib.suppress(Exception):
            sys.stdout.flush()  # keep the plan already shown; may refuse a reentrant call
        os._exit(exit_code(signum))

    with _handlers(handle, STOP_SIGNALS):
        yield stop


@contextlib.contextmanager
def terminate_raises() -> Iterator[None]:
    """While the CLI runs: SIGTERM raises :class:`Terminated` in the main thread (Ctrl-C
    already raises KeyboardInterrupt), so both end in one line and an exit code, no traceback."""

    def handle(signum: int, frame: FrameType | None) -> None:
        raise Terminated(signum)

    with _handlers(handle, (signal.SIGTERM,)):
        yield
