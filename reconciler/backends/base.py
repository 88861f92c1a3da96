"""The one interface the planner and apply talk to; they never know which backend it is.

Objects cross this boundary in the m3ter API's own JSON shapes (the entity responses of
``openapi-subset.json``), so the local store, the emulator and the real API are
interchangeable.
"""

from __future__ import annotations

import builtins
import sys
from abc import ABC, abstractmethod
from collections.abc import Callable, Collection, Mapping
from typing import Any

from reconciler.diagnostics import ReconcilerError
from reconciler.kinds import Kind

Entity = dict[str, Any]
#: ``code_lookup_limit`` of a backend that reads by code however many codes there are.
CODE_LOOKUP_UNLIMITED = sys.maxsize
#: Told how far a read has got: units done (codes looked up plus objects listed) and the units
#: expected, or None while some listing's length is unknown (a cursor walk). Called from
#: worker threads, one call at a time.
ReadProgress = Callable[[int, int | None], None]


class BackendError(ReconcilerError):
    """A backend call failed in a way a person can act on; message is safe to print."""

    def __init__(self, message: str, *, status: int | None = None, retryable: bool = False) -> None:
        super().__init__(message)
        self.status = status
        self.retryable = retryable


class NotFoundError(BackendError):
    pass


class ConflictError(BackendError):
    """The object changed since it was read (stale version): never retried blindly."""


class ValidationFailed(BackendError):
    """The organization refused the change (bad value, duplicate code, has children...)."""


class Backend(ABC):
    """List, get/put singletons, create, update (with the version the plan saw), archive, delete."""

    #: how plans and reports name this backend, e.g. ``local:.reconciler/local.sqlite``
    name: str
    org_id: str
    #: When the manifests name at most this many objects of a kind that is not pruned, the
    #: planner asks for them by code instead of listing the whole kind (0: always list).
    #: Worth it over HTTP, where a list of a 10k-object kind is 100 requests.
    code_lookup_limit: int = 0

    @abstractmethod
    def list(self, kind: Kind, codes: Collection[str] | None = None) -> list[Entity]:
        """Every live object of ``kind`` (archived ones included), or only those whose code
        is in ``codes`` when given (a backend may fetch by filter instead of listing all)."""

    @abstractmethod
    def get(self, kind: Kind, entity_id: str) -> Entity | None:
        """One object by id, None when it does not exist."""

    @abstractmethod
    def get_singleton(self, kind: Kind) -> Entity: ...

    @abstractmethod
    def put_singleton(self, kind: Kind, body: Mapping[str, Any]) -> Entity:
        """Replace the singleton; ``body`` carries the ``version`` last read."""

    @abstractmethod
    def create(self, kind: Kind, body: Mapping[str, Any]) -> Entity: ...

    @abstractmethod
    def update(self, kind: Kind, entity_id: str, body: Mapping[str, Any]) -> Entity:
        """Replace the object (PUT semantics); ``body`` carries the ``version`` last read."""

    @abstractmethod
    def delete(self, kind: Kind, entity_id: str) -> Entity: ...

    def statement_definitions(self) -> builtins.list[Entity]:
        """Every statement definition of the organization (``GET /statementdefinitions``), so
        manifests can name one instead of its organization-specific id. A backend that holds
        none (a test double) has none."""
        return []

    def fetch_live(
        self, wanted: Mapping[str, Collection[str] | None], progress: ReadProgress | None = None
    ) -> dict[str, builtins.list[Entity]]:
        """Read what a plan needs: for each kind name, all objects (None) or only some codes.

        ``progress`` (a terminal's progress line, say) hears the objects read so far after
        each kind, with no total: a local read is quick and its size unknown beforehand.
        Backends that can do it concurrently (HTTP) override this.
        """
        from reconciler import kinds

        out: dict[str, builtins.list[Entity]] = {}
        done = 0
        for name, codes in wanted.items():
            kind = kinds.get(name)
            if kind.singleton:
                out[name] = [self.get_singleton(kind)]
            else:
                out[name] = self.list(kind, codes)
            done += len(out[name])
            if progress is not None:
                progress(done, None)
        return out

    def find_by_code(self, kind: Kind, code: str) -> Entity | None:
        found = [e for e in self.list(kind, [code]) if e.get("code") == code]
        return found[0] if found else None

    def stats(self) -> dict[str, int]:
        """Counters for benchmarks and verbose output (requests sent, retries, 429s...)."""
        return {}

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections and files."""

    def __enter__(self) -> Backend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
