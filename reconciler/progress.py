"""A one-line progress display for long reads and applies: counts, rate and time left.

Written here rather than taken from ``rich.progress`` or ``tqdm``: what is needed is one
line of text rewritten in place on stderr, only on a terminal, fed from worker threads, in
about a hundred lines. A dependency would add weight to every install and to the import of
each command for that, and its own ideas of when a stream is interactive and how to draw.

Output discipline (DESIGN §4): progress goes to stderr, and only when stderr is a terminal,
so logs and pipes never hold carriage returns or half lines. Nothing is drawn for work that
ends within ``delay`` seconds, so quick commands stay quiet.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable
from typing import TextIO

#: Seconds before the first line is drawn: work that finishes sooner shows nothing.
DEFAULT_DELAY = 0.3
#: Shortest time between two redraws (the last one is always drawn).
DEFAULT_INTERVAL = 0.1


def format_count(n: int) -> str:
    """Thousands separated, so 10000 and 100000 are told apart at a glance."""
    return f"{n:,}"


def format_rate(per_second: float) -> str:
    """Units per second, precise enough to read but never noisy: ``2,150/s``, ``47.5/s``, ``0.25/s``."""
    if per_second >= 100:
        return f"{per_second:,.0f}/s"
    if per_second >= 10:
        return f"{per_second:.1f}/s"
    return f"{per_second:.2f}/s"


def format_duration(seconds: float) -> str:
    """``4s``, ``1m05s``, ``2h03m``: rounded up, since a time left of 0 s while work remains misleads."""
    whole = max(0, int(-(-seconds // 1)))  # ceiling
    if whole < 60:
        return f"{whole}s"
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def format_line(label: str, done: int, total: int | None, elapsed: float, *, failed: int = 0,
                finished: bool = False) -> str:
    """The text of one progress line.

    With a known total: ``Applying 430/1,000 (43%), 2 failed, 47.5/s, 12s left``; without
    one (a cursor walk of unknown length): ``Reading 4,300, 1,000/s``. A finished line says
    how long it took instead of the time left.
    """
    parts = [f"{label} {format_count(done)}" + (f"/{format_count(total)}" if total is not None else "")]
    if total:
        parts[0] += f" ({min(100, done * 100 // total)}%)"
    if failed:
        parts.append(f"{format_count(failed)} failed")
    rate = done / elapsed if elapsed > 0 else 0.0
    if rate > 0:
        parts.append(format_rate(rate))
    if finished:
        parts.append(f"in {format_duration(elapsed)}")
    elif total is not None and rate > 0 and done < total:
        parts.append(f"{format_duration((total - done) / rate)} left")
    return ", ".join(parts)


def stream_is_terminal(stream: TextIO) -> bool:
    """Whether a progress line belongs on ``stream``: a terminal that can return the carriage."""
    try:
        return stream.isatty() and os.environ.get("TERM") != "dumb"
    except (AttributeError, ValueError):  # a closed or unusual stream
        return False


class ProgressLine:
    """One line rewritten in place on stderr while work advances; silent when stderr is not a
    terminal. Callable as ``line(done, total, failed)``, which serves both apply's progress
    callback and a backend's read progress (``total`` None while unknown). Thread-safe."""

    def __init__(
        self,
        label: str,
        *,
        stream: TextIO | None = None,
        enabled: bool | None = None,
        delay: float = DEFAULT_DELAY,
        interval: float = DEFAULT_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.label = label
        self._stream = stream
        self.enabled = stream_is_terminal(self.stream) if enabled is None else enabled
        self._delay = delay
        self._interval = interval
        self._clock = clock
        self._started = clock()
        self._lock = threading.Lock()
        self._last_draw: float | None = None  # clock time of the last draw; None: nothing drawn
        self._width = 0  # characters of the line on screen, to blank what a shorter one leaves
        self._state: tuple[int, int | None, int] = (0, None, 0)
        self._closed = False

    @property
    def stream(self) -> TextIO:
        # Looked up at each write: the CLI may wrap sys.stderr (masking) after this is built.
        return self._stream if self._stream is not None else sys.stderr

    def __call__(self, done: int, total: int | None = None, failed: int = 0) -> None:
        if not self.enabled:
            return
        with self._lock:
            if self._closed:
                return
            self._state = (done, total, failed)
            now = self._clock()
            complete = total is not None and done >= total
            if now - self._started < self._delay and not (complete and self._last_draw is not None):
                return
            if not complete and self._last_draw is not None and now - self._last_draw < self._interval:
                return
            self._draw(now, finished=False)

    def close(self) -> None:
        """Draw the final counts and end the line, if a line was started; call when the work
        ends, finished or not (an interrupted apply leaves its last counts on screen)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            if not self.enabled or self._last_draw is None:
                return
            self._draw(self._clock(), finished=True)
            self.stream.write("\n")
            self.stream.flush()

    def __enter__(self) -> ProgressLine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _draw(self, now: float, *, finished: bool) -> None:
        done, total, failed = self._state
        text = format_line(self.label, done, total, now - self._started, failed=failed, finished=finished)
        pad = max(0, self._width - len(text))
        self.stream.write("\r" + text + " " * pad)
        self.stream.flush()
        self._width = len(text)
        self._last_draw = now
