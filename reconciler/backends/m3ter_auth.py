"""m3ter credentials: where they come from, where they may be sent, and the bearer token cache.

Nothing here ever puts a key, secret or token into a message: errors name the environment
variables to check instead.
"""

from __future__ import annotations

import base64
import ipaddress
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from reconciler.backends.base import BackendError

DEFAULT_BASE_URL = "https://api.m3ter.com"
ENV_ORG_ID = "M3TER_ORG_ID"
ENV_API_KEY = "M3TER_API_KEY"
ENV_API_SECRET = "M3TER_API_SECRET"
ENV_API_TOKEN = "M3TER_API_TOKEN"
ENV_BASE_URL = "M3TER_BASE_URL"

#: The token endpoint's documented lifetime when a response does not say (5 hours).
DEFAULT_TOKEN_TTL = 18000.0
#: Renew this long before expiry at most (the official SDK uses 5 minutes) ...
RENEW_AHEAD_MAX = 300.0
#: ... else this share of the token's lifetime plus one second (``expires_in`` and the JWT
#: ``exp`` claim are whole seconds, so a token may die up to a second before we expect) ...
RENEW_AHEAD_SHARE = 0.1
#: ... but never more than this share of the lifetime, so that even a 2 s token is used for
#: 0.8 s (it is sure to live 1 s: 2 s minus up to one second of truncation).
RENEW_AHEAD_MAX_SHARE = 0.6


def renew_ahead(ttl: float) -> float:
    """How long before a token's expiry to ask for the next one."""
    return min(RENEW_AHEAD_MAX, RENEW_AHEAD_SHARE * ttl + 1.0, RENEW_AHEAD_MAX_SHARE * ttl)


REJECTED_CREDENTIALS = f"m3ter rejected the API key/secret (check {ENV_API_KEY} / {ENV_API_SECRET})"


@dataclass(frozen=True, slots=True)
class Credentials:
    """What the backend authenticates with. ``repr`` never shows the secret values."""

    api_key: str | None = field(default=None, repr=False)
    api_secret: str | None = field(default=None, repr=False)
    api_token: str | None = field(default=None, repr=False)

    @property
    def can_renew(self) -> bool:
        """Key and secret can always ask for a fresh token; a ready token cannot."""
        return bool(self.api_key and self.api_secret)

    def basic_authorization(self) -> str:
        raw = f"{self.api_key}:{self.api_secret}".encode()
        return "Basic " + base64.b64encode(raw).decode("ascii")


def _env(environ: Mapping[str, str], name: str) -> str | None:
    value = environ.get(name, "").strip()
    return value or None


def config_from_environment(
    environ: Mapping[str, str] | None = None,
) -> tuple[str, Credentials, str | None]:
    """(org id, credentials, base URL or None) from the variables the official m3ter SDKs read."""
    env = os.environ if environ is None else environ
    org_id = _env(env, ENV_ORG_ID)
    key, secret, token = _env(env, ENV_API_KEY), _env(env, ENV_API_SECRET), _env(env, ENV_API_TOKEN)
    if not org_id:
        raise BackendError(
            f"{ENV_ORG_ID} is not set: export the id of the m3ter organization to manage "
            f"(with {ENV_API_KEY} + {ENV_API_SECRET}, or {ENV_API_TOKEN}) to use the m3ter backend"
        )
    if bool(key) != bool(secret) and not token:
        have, missing = (ENV_API_KEY, ENV_API_SECRET) if key else (ENV_API_SECRET, ENV_API_KEY)
        raise BackendError(
            f"{have} is set but {missing} is not: set both (a service user's access key id and "
            f"API secret), or set {ENV_API_TOKEN} to a bearer token"
        )
    if not (key and secret) and not token:
        raise BackendError(
            f"no m3ter credentials: set {ENV_API_KEY} and {ENV_API_SECRET} (a service user's "
            f"access key id and API secret), or {ENV_API_TOKEN} (a bearer token)"
        )
    creds = Credentials(api_key=key if secret else None, api_secret=secret if key else None, api_token=token)
    return org_id, creds, _env(env, ENV_BASE_URL)


def is_loopback_host(host: str) -> bool:
    host = host.strip("[]").rstrip(".").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def checked_base_url(base_url: str) -> str:
    """The base URL without a trailing slash, refusing any place credentials must not go."""
    url = base_url.strip().rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise BackendError(
            f"invalid m3ter base URL {url!r}: expected https://HOST[:PORT] (or http:// to a loopback host)"
        )
    if parts.username or parts.password:
        raise BackendError("the m3ter base URL must not contain credentials: use the M3TER_* variables")
    if parts.query or parts.fragment:
        raise BackendError(f"invalid m3ter base URL {url!r}: it must not carry a query or fragment")
    if parts.scheme == "http" and not is_loopback_host(parts.hostname):
        raise BackendError(
            f"refusing to send m3ter credentials over plain http to {parts.hostname}: use https, "
            "or plain http only to a loopback host (127.0.0.1, ::1, localhost)"
        )
    return url


class TokenCache:
    """The current bearer token, renewed ahead of expiry, one renewal at a time.

    ``fetch`` asks the token endpoint and returns ``(access_token, expires_in_seconds)``.
    """

    def __init__(
        self,
        credentials: Credentials,
        fetch: Callable[[], tuple[str, float]],
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._creds = credentials
        self._fetch = fetch
        self._clock = clock
        self._lock = threading.Lock()
        self._token: str | None = credentials.api_token
        self._renew_at: float | None = None  # None: no known expiry (a ready token)

    @property
    def can_renew(self) -> bool:
        return self._creds.can_renew

    def token(self) -> str:
        """A token believed valid now, asking for a new one when due."""
        token = self._token
        if token is not None and not self._due():
            return token
        with self._lock:
            if self._token is None or self._due():
                self._renew()
            assert self._token is not None
            return self._token

    def renew_after_refusal(self, refused: str) -> str:
        """The server refused ``refused``: get a fresh token unless another thread already did."""
        with self._lock:
            if self._token == refused or self._token is None:
                self._renew()
            assert self._token is not None
            return self._token

    def _due(self) -> bool:
        return self._renew_at is not None and self._clock() >= self._renew_at

    def _renew(self) -> None:
        if not self._creds.can_renew:
            # Only a ready token and nothing to renew it with: keep using it (the caller reports
            # the refusal). Reaching here without any token cannot happen (checked at startup).
            if self._token is None:
                raise BackendError(f"no m3ter credentials: set {ENV_API_KEY} and {ENV_API_SECRET}")
            return
        access_token, ttl = self._fetch()
        ttl = max(ttl, 0.0)
        self._token = access_token
        self._renew_at = self._clock() + ttl - renew_ahead(ttl)
