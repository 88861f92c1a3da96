"""When and how long to wait before sending a request again.

A small explicit loop in the caller uses :class:`RetryBudget` rather than a decorator: the
m3ter backend must do work *between* attempts (look a code up before re-sending a create
whose answer was lost, re-authenticate once on a 403), which reads more plainly as a loop.
"""

from __future__ import annotations

import email.utils
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx

#: Statuses worth sending again: rate limited, or the server (or a proxy in front of it) failed.
RETRYABLE_STATUSES = frozenset({408, 429})


def is_retryable_status(status: int) -> bool:
    return status in RETRYABLE_STATUSES or status >= 500


def request_may_have_arrived(exc: httpx.TransportError) -> bool:
    """False only when the request certainly never reached the server (no connection made)."""
    return not isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout)


def parse_retry_after(value: str | None, *, now: Callable[[], float] = time.time) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when is None:
            return None
        seconds = when.timestamp() - now()
    if seconds != seconds:  # NaN
        return None
    return max(0.0, seconds)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff with jitter, bounded in attempts and in total time."""

    max_attempts: int = 8
    max_elapsed: float = 60.0  # seconds from the first attempt
    base_delay: float = 0.25
    max_delay: float = 8.0
    jitter: float = 0.5  # delay drawn from [(1 - jitter) * d, d]

    def backoff(self, retry_number: int, rng: Callable[[], float] = random.random) -> float:
        """Delay before retry ``retry_number`` (1 for the first retry)."""
        ceiling = min(self.max_delay, self.base_delay * (2 ** (retry_number - 1)))
        return ceiling * (1.0 - self.jitter * rng())


class RetryBudget:
    """Tracks one logical call's attempts; says how long to wait, or that it is time to stop."""

    def __init__(
        self,
        policy: RetryPolicy,
        *,
        clock: Callable[[], float] = time.monotonic,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.policy = policy
        self._clock = clock
        self._rng = rng
        self.started = clock()
        self.attempts = 0

    def start_attempt(self) -> None:
        self.attempts += 1

    @property
    def elapsed(self) -> float:
        return self._clock() - self.started

    def next_delay(self, retry_after: float | None = None) -> float | None:
        """Seconds to wait before the next attempt, or None when the budget is spent."""
        if self.attempts >= self.policy.max_attempts:
            return None
        delay = self.policy.backoff(self.attempts, self._rng)
        if retry_after is not None:
            # The server said when; add a little spread so parallel callers do not return at once.
            delay = retry_after + min(0.25, self.policy.base_delay) * self._rng()
        if self.elapsed + delay > self.policy.max_elapsed:
            return None
        return delay
