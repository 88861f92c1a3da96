"""The emulator's state, independent of the web framework: store, tokens, rate limit, faults.

Tokens are JWT-shaped (``header.payload.signature``, HS256 with a secret drawn at start, so a
restart invalidates old tokens) with the claims ``orgId``, ``sub`` (the API key), ``iat``,
``exp`` and ``jti``. ``clock_offset`` shifts the emulator's clock so tests can expire tokens
or move to the next rate-limit second without sleeping.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import math
import random
import secrets
import shutil
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reconciler.emulator.config import EXTRA_FIELDS, EmulatorConfig
from reconciler.store import Store


@dataclass(frozen=True, slots=True)
class Exchange:
    """One request the emulator answered, as it went over the wire (for observers in tests,
    e.g. validation against the official OpenAPI document)."""

    method: str
    path: str
    query: str
    request_headers: dict[str, str]
    request_body: bytes
    status: int
    response_headers: dict[str, str]
    response_body: bytes


class AuthError(Exception):
    """Missing, malformed, expired or foreign token; answered with 403 (m3ter has no 401)."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Emulator:
    """Everything the HTTP layer needs; thread-safe."""

    def __init__(self, config: EmulatorConfig, store: Store | None = None) -> None:
        if config.api_key is None or config.api_secret is None or not config.org_ids:
            config = config.resolved()
        self.config = config
        self._tmpdir: str | None = None
        if store is None:
            if config.db:
                path = Path(config.db)
            else:
                self._tmpdir = tempfile.mkdtemp(prefix="m3ter-emulator-")
                path = Path(self._tmpdir) / "emulator.sqlite"
            store = Store(path)
            self._owns_store = True
        else:
            self._owns_store = False
        if config.extra_fields:
            store.extra_fields = dict(EXTRA_FIELDS)  # before the organizations are seeded
        self.store = store
        for org in config.org_ids:
            store.ensure_org(org)
        self._secret = secrets.token_bytes(32)
        self._lock = threading.Lock()
        self._rng = random.Random(config.fail_seed)
        self._windows: dict[str, tuple[int, int]] = {}
        self.clock_offset = 0.0
        self.counters: Counter[str] = Counter()
        #: called with every answered :class:`Exchange` (from the server's event loop: keep it cheap)
        self.observers: list[Callable[[Exchange], None]] = []

    # ---- time

    def now(self) -> float:
        return time.time() + self.clock_offset

    # ---- credentials and tokens

    def credentials_ok(self, key: str, secret: str) -> bool:
        assert self.config.api_key is not None and self.config.api_secret is not None
        return hmac.compare_digest(key.encode(), self.config.api_key.encode()) & hmac.compare_digest(
            secret.encode(), self.config.api_secret.encode()
        )

    def issue_token(self) -> str:
        now = self.now()
        claims = {
            "sub": self.config.api_key,
            "orgId": self.config.org_id,
            "iat": int(now),
            # rounded up: a token never lives shorter than the expires_in the client was told
            "exp": math.ceil(now + self.config.token_ttl),
            "jti": secrets.token_hex(8),
        }
        head = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())
        body = _b64(json.dumps(claims, separators=(",", ":")).encode())
        sig = _b64(hmac.new(self._secret, f"{head}.{body}".encode(), hashlib.sha256).digest())
        self.count("tokens")
        return f"{head}.{body}.{sig}"

    def check_token(self, token: str) -> dict[str, Any]:
        """The token's claims; AuthError when it is not one of ours or has expired."""
        parts = token.split(".")
        if len(parts) != 3:
            raise AuthError("invalid bearer token")
        head, body, sig = parts
        expected = _b64(hmac.new(self._secret, f"{head}.{body}".encode(), hashlib.sha256).digest())
        if not hmac.compare_digest(sig.encode(), expected.encode()):
            raise AuthError("invalid bearer token")
        try:
            claims: dict[str, Any] = json.loads(_unb64(body))
            exp = float(claims["exp"])
        except (ValueError, KeyError, TypeError):
            raise AuthError("invalid bearer token") from None
        if exp <= self.now():
            raise AuthError("the bearer token has expired")
        return claims

    def check_org(self, org: str) -> None:
        if org not in self.config.org_ids:
            raise AuthError(f"access to organization {org} is forbidden")

    # ---- rate limit

    def admit(self, org: str) -> float | None:
        """None when the request may proceed, else seconds until the next calendar second."""
        limit = self.config.rate_limit
        if not limit:
            return None
        now = self.now()
        second = int(now)
        with self._lock:
            window, count = self._windows.get(org, (second, 0))
            if window != second:
                window, count = second, 0
            count += 1
            self._windows[org] = (window, count)
        if count > limit:
            self.count("rate_limited")
            return max(0.001, second + 1 - now)
        return None

    # ---- injected failures

    def draw_failure(self, is_write: bool) -> tuple[str, bool] | None:
        """(kind, after_write) for a request that must fail, else None."""
        cfg = self.config
        if cfg.fail_rate <= 0:
            return None
        with self._lock:
            if self._rng.random() >= cfg.fail_rate:
                return None
            kind = self._rng.choice(cfg.fail_kinds)
            after = is_write and self._rng.random() < cfg.fail_after_share
        self.count("injected")
        self.count(f"injected_{kind}{'_after_write' if after else ''}")
        return kind, after

    # ---- bookkeeping

    def count(self, name: str, n: int = 1) -> None:
        with self._lock:
            self.counters[name] += n

    def stats(self) -> dict[str, int]:
        with self._lock:
            return dict(self.counters)

    def close(self) -> None:
        if self._owns_store:
            self.store.close()
        if self._tmpdir:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
            self._tmpdir = None
