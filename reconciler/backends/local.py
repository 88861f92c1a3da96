"""The ``local`` backend: an embedded SQLite organization that behaves like a fresh m3ter one.

``LocalBackend(path)`` keeps one organization, whose id is the fixed string ``"local"``
(:data:`LOCAL_ORG_ID`), in the SQLite file ``path`` (parent directories are created). The file
is a :class:`reconciler.store.Store`, so the same file can also be served over HTTP:
``reconciler emulator --db PATH --org-id local``.

Errors from the store become the backend errors of :mod:`reconciler.backends.base`:
unknown id -> :class:`NotFoundError`; stale or missing ``version`` -> :class:`ConflictError`
("... changed since it was read; plan again"); refused body, duplicate code, parent cycle,
account with children, currency in use -> :class:`ValidationFailed` (status 400); injected
failures (``RECONCILER_STORE_FAIL``) and a database that stays locked -> :class:`BackendError`
(status 500). The backend is safe to call from several threads (one SQLite connection per
thread; writes are serialised by SQLite).
"""

from __future__ import annotations

import builtins
import sqlite3
import threading
from collections.abc import Callable, Collection, Mapping
from pathlib import Path
from typing import Any, TypeVar

from reconciler.backends.base import (
    Backend,
    BackendError,
    ConflictError,
    Entity,
    NotFoundError,
    ValidationFailed,
)
from reconciler.kinds import Kind
from reconciler.store import Store, StoreError

LOCAL_ORG_ID = "local"
LOCAL_ACTOR = "reconciler"

T = TypeVar("T")


class LocalBackend(Backend):
    def __init__(self, path: str | Path, *, org_id: str = LOCAL_ORG_ID, actor: str = LOCAL_ACTOR) -> None:
        self.path = Path(path)
        self.name = f"local:{path}"
        self.org_id = org_id
        self.actor = actor
        self._lock = threading.Lock()
        self._stats = {"reads": 0, "writes": 0, "errors": 0}
        try:
            self.store = Store(self.path)
            self.store.ensure_org(org_id)
        except (sqlite3.Error, OSError, ValueError, StoreError) as exc:  # a StoreError's text is its message
            raise BackendError(f"cannot open the local organization at {self.path}: {exc}") from None

    # ---- plumbing

    def _count(self, what: str) -> None:
        with self._lock:
            self._stats[what] += 1

    def _call(self, what: str, label: str, fn: Callable[[], T]) -> T:
        self._count(what)
        try:
            return fn()
        except StoreError as exc:
            self._count("errors")
            raise _translate(exc, label) from None
        except sqlite3.Error as exc:
            self._count("errors")
            raise BackendError(f"{label}: local database error: {exc}", status=500) from None

    # ---- Backend

    def list(self, kind: Kind, codes: Collection[str] | None = None) -> builtins.list[Entity]:
        return self._call(
            "reads",
            f"listing {kind.name}",
            lambda: self.store.list_all(self.org_id, kind.name, codes=codes),
        )

    def get(self, kind: Kind, entity_id: str) -> Entity | None:
        return self._call(
            "reads", f"{kind.name} {entity_id}", lambda: self.store.find(self.org_id, kind.name, entity_id)
        )

    def get_singleton(self, kind: Kind) -> Entity:
        return self._call("reads", kind.name, lambda: self.store.get_singleton(self.org_id, kind.name))

    def put_singleton(self, kind: Kind, body: Mapping[str, Any]) -> Entity:
        return self._call(
            "writes",
            kind.name,
            lambda: self.store.put_singleton(self.org_id, kind.name, body, actor=self.actor),
        )

    def create(self, kind: Kind, body: Mapping[str, Any]) -> Entity:
        return self._call(
            "writes",
            _label(kind, body.get("code")),
            lambda: self.store.create(self.org_id, kind.name, body, actor=self.actor),
        )

    def update(self, kind: Kind, entity_id: str, body: Mapping[str, Any]) -> Entity:
        return self._call(
            "writes",
            _label(kind, body.get("code"), entity_id),
            lambda: self.store.update(self.org_id, kind.name, entity_id, body, actor=self.actor),
        )

    def delete(self, kind: Kind, entity_id: str) -> Entity:
        return self._call(
            "writes",
            _label(kind, None, entity_id),
            lambda: self.store.delete(self.org_id, kind.name, entity_id, actor=self.actor),
        )

    def statement_definitions(self) -> builtins.list[Entity]:
        return self._call(
            "reads", "listing statement definitions", lambda: self.store.list_all(self.org_id, "statementDefinition")
        )

    def stats(self) -> dict[str, int]:
        with self._lock:
            return dict(self._stats)

    def close(self) -> None:
        self.store.close()


def _label(kind: Kind, code: Any, entity_id: str | None = None) -> str:
    if kind.singleton:
        return kind.name
    if code:
        return f"{kind.name} {code!r}"
    return f"{kind.name} {entity_id}"


def _translate(exc: StoreError, label: str) -> BackendError:
    if exc.kind == "not_found":
        return NotFoundError(f"{label}: not found", status=404)
    if exc.kind == "conflict":
        return ConflictError(f"{label} changed since it was read; plan again ({exc.message})", status=400)
    if exc.kind in ("invalid", "duplicate"):
        return ValidationFailed(f"{label}: {exc.message}", status=exc.status)
    return BackendError(f"{label}: {exc.message}", status=exc.status, retryable=exc.kind == "unavailable")
