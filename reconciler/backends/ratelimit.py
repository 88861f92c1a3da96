"""A client-side request pacer shared by every thread that talks to one m3ter organization.

m3ter counts requests per organization per *calendar second* and answers 429 for the rest of
the second once the limit is passed. A token bucket would allow a burst at a second's edge
(a full bucket spent at 0.99 s, refilled and spent again at 1.01 s); evenly spaced slots
cannot: a caller reserves the next free slot, slots are ``1 / rate`` seconds apart, so no
one-second window ever holds more than ``rate`` of them. A small safety margin keeps the
window under the limit when a thread wakes up a little late and its request lands next to
the following one.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

#: Share of the configured rate actually used, so scheduling jitter never tips a second over.
DEFAULT_SAFETY = 0.95


class RateLimiter:
    """Evenly spaced request slots, thread-safe. ``rate`` <= 0 (or None) means unlimited."""

    def __init__(
        self,
        rate: float | None,
        *,
        safety: float = DEFAULT_SAFETY,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.rate = rate if rate and rate > 0 else None
        self.interval = 1.0 / (self.rate * safety) if self.rate else 0.0
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._next_slot: float | None = None  # earliest time the next request may start

    def acquire(self) -> float:
        """Wait for this caller's slot; returns how long it waited (seconds)."""
        with self._lock:
            now = self._clock()
            if self._next_slot is None:
                if not self.interval:
                    return 0.0
                self._next_slot = now
            slot = max(now, self._next_slot)
            self._next_slot = slot + self.interval
        wait = slot - now
        if wait > 0:
            self._sleep(wait)
        return max(wait, 0.0)

    def pause_until(self, when: float) -> None:
        """Hold every caller until ``when`` (clock time), e.g. after a 429 with Retry-After."""
        with self._lock:
            if self._next_slot is None or self._next_slot < when:
                self._next_slot = when
