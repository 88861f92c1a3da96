"""Switches of the m3ter API emulator (no web-framework imports here)."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field, replace

DEMO_ORG_ID = "00000000-0000-4000-8000-00000000de70"
DEFAULT_PORT = 8080
DEFAULT_TOKEN_TTL = 18000  # seconds: m3ter's 5 hours
M3TER_RATE_LIMIT = 50.0  # requests per calendar second per organization
FAILURE_KINDS = ("500", "502", "504", "drop")
#: How ``archived=true`` reads on picklist lists. "document": as openapi-full.json words each
#: endpoint (currency: "TRUE - return archived Currencies" = only archived; credit/debit
#: reasons and transaction types: "TRUE includes archived ..." = all); "only" / "include":
#: that reading on every picklist (a server that reads the flag the other way).
ARCHIVED_TRUE_READINGS = ("document", "only", "include")
#: What a picklist list without ``archived`` returns (the document states no default):
#: "exclude" archived objects (the strictest reading) or "include" them.
ARCHIVED_ABSENT_READINGS = ("exclude", "include")
#: What ``extra_fields`` adds to every object: fields outside openapi-full.json, shaped like
#: what a newer m3ter might return (a scalar, a nested object, an array of objects). The
#: document allows them: no schema sets ``additionalProperties: false``.
EXTRA_FIELDS: dict[str, object] = {
    "customerSince": "2019-04-01",
    "billingProfile": {"channel": "EMAIL", "preferences": {"language": "en", "copies": 2}},
    "auditTrail": [{"event": "migrated", "at": "2023-02-01T00:00:00Z"}, {"event": "reviewed", "tags": ["q1"]}],
}


@dataclass(frozen=True)
class EmulatorConfig:
    """How the emulator behaves; :meth:`resolved` fills org ids and credentials.

    ``rate_limit``: at most this many requests per organization per calendar second (m3ter's
    rule); past it, 429 with ``Retry-After`` for the rest of that second. ``None`` or ``0`` turns
    it off. The token endpoint is never limited.

    ``fail_rate``: probability that an organization API request fails on purpose, with a kind
    drawn from ``fail_kinds`` (``"500"``, ``"502"``, ``"504"``, ``"drop"`` = the connection is
    closed without a response). For writes, ``fail_after_share`` of those failures happen after
    the write took effect. ``fail_seed`` seeds the random generator (reproducible tests).

    ``db``: the SQLite file (``None``: a temporary file removed at shutdown).

    ``extra_fields``: every object gets :data:`EXTRA_FIELDS` (unless a create sets them) and
    keeps them as a known field: sent back on PUT they stay, left out they are cleared (PUT
    replaces), so tests prove clients keep live fields they do not manage.

    ``archived_true`` / ``archived_absent``: how picklist lists read ``archived=true`` and a
    missing ``archived`` (see :data:`ARCHIVED_TRUE_READINGS`); clients must be right under
    every combination.
    """

    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    db: str | None = None
    latency_ms: float = 0.0
    rate_limit: float | None = M3TER_RATE_LIMIT
    fail_rate: float = 0.0
    fail_seed: int | None = None
    fail_kinds: tuple[str, ...] = FAILURE_KINDS
    fail_after_share: float = 0.5
    token_ttl: int = DEFAULT_TOKEN_TTL
    org_ids: tuple[str, ...] = ()
    api_key: str | None = None
    api_secret: str | None = None
    default_page_size: int = 10
    access_log: bool = False
    extra_fields: bool = False
    archived_true: str = "document"
    archived_absent: str = "exclude"
    # set by resolved(): True when the credentials were generated (demo values)
    demo_credentials: bool = field(default=False, compare=False)

    def resolved(self) -> EmulatorConfig:
        """Fill org ids and credentials from the environment (M3TER_ORG_ID, M3TER_API_KEY,
        M3TER_API_SECRET), else a demo organization and freshly generated demo credentials.
        Raises ValueError for settings that make no sense."""
        problems = []
        if not 0.0 <= self.fail_rate <= 1.0:
            problems.append("fail rate must be between 0 and 1")
        if not 0.0 <= self.fail_after_share <= 1.0:
            problems.append("fail-after share must be between 0 and 1")
        unknown = [k for k in self.fail_kinds if k not in FAILURE_KINDS]
        if unknown or not self.fail_kinds:
            problems.append(f"failure kinds must be among {', '.join(FAILURE_KINDS)}")
        if self.latency_ms < 0:
            problems.append("latency must not be negative")
        if self.rate_limit is not None and self.rate_limit < 0:
            problems.append("rate limit must not be negative")
        if self.token_ttl <= 0:
            problems.append("token lifetime must be positive")
        if self.archived_true not in ARCHIVED_TRUE_READINGS:
            problems.append(f"archived=true reading must be one of {', '.join(ARCHIVED_TRUE_READINGS)}")
        if self.archived_absent not in ARCHIVED_ABSENT_READINGS:
            problems.append(f"absent archived reading must be one of {', '.join(ARCHIVED_ABSENT_READINGS)}")
        if not 0 <= self.port <= 65535:
            problems.append("port must be between 0 and 65535")
        org_ids = tuple(o for o in self.org_ids if o) or (os.environ.get("M3TER_ORG_ID") or DEMO_ORG_ID,)
        key = self.api_key or None
        secret = self.api_secret or None
        demo = False
        if key is None and secret is None:
            key = os.environ.get("M3TER_API_KEY") or None
            secret = os.environ.get("M3TER_API_SECRET") or None
        if key is None and secret is None:
            key = f"demo-{secrets.token_hex(8)}"
            secret = f"demo-{secrets.token_urlsafe(24)}"
            demo = True
        elif key is None or secret is None:
            problems.append("give both an API key and an API secret (or neither, for demo credentials)")
        if problems:
            raise ValueError("; ".join(problems))
        return replace(self, org_ids=org_ids, api_key=key, api_secret=secret, demo_credentials=demo)

    @property
    def org_id(self) -> str:
        return self.org_ids[0] if self.org_ids else DEMO_ORG_ID
