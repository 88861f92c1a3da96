"""Unit tests of the apply scheduler: dependency order, partial failure, skipped dependents."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Collection, Mapping
from typing import Any

from reconciler.apply import apply_changes
from reconciler.backends.base import Backend, Entity, NotFoundError, ValidationFailed
from reconciler.kinds import Kind
from reconciler.plan import Change


class MemoryBackend(Backend):
    """The smallest Backend that records calls; a code in ``fail_codes`` is refused."""

    name = "memory"
    org_id = "org"

    def __init__(self, fail_codes: Collection[str] = ()) -> None:
        self.fail_codes = set(fail_codes)
        self.objects: dict[str, dict[str, Entity]] = {}
        self.calls: list[tuple[str, str]] = []
        self.ids = itertools.count(1)
        self.lock = threading.Lock()

    def list(self, kind: Kind, codes: Collection[str] | None = None) -> list[Entity]:
        return [e for e in self.objects.get(kind.name, {}).values() if codes is None or e["code"] in codes]

    def get(self, kind: Kind, entity_id: str) -> Entity | None:
        return self.objects.get(kind.name, {}).get(entity_id)

    def get_singleton(self, kind: Kind) -> Entity:
        return {"id": kind.name, "version": 1}

    def put_singleton(self, kind: Kind, body: Mapping[str, Any]) -> Entity:
        self.calls.append(("put", kind.name))
        return dict(body)

    def create(self, kind: Kind, body: Mapping[str, Any]) -> Entity:
        with self.lock:
            self.calls.append(("create", str(body["code"])))
            if body["code"] in self.fail_codes:
                raise ValidationFailed(f"refused {body['code']}")
            entity = {**body, "id": f"id{next(self.ids)}", "version": 1}
            self.objects.setdefault(kind.name, {})[entity["id"]] = entity
            return entity

    def update(self, kind: Kind, entity_id: str, body: Mapping[str, Any]) -> Entity:
        self.calls.append(("update", entity_id))
        return dict(body)

    def delete(self, kind: Kind, entity_id: str) -> Entity:
        self.calls.append(("delete", entity_id))
        if entity_id not in self.objects.get(kind.name, {}):
            raise NotFoundError(f"{kind.name} {entity_id} does not exist any more", status=404)
        return self.objects[kind.name].pop(entity_id)


def create(kind: str, code: str, deps: list[int] | None = None, **body: Any) -> Change:
    return Change("create", kind, code, None, None, [], {"code": code, **body}, depends_on=deps or [])


def test_children_get_the_new_parent_id_and_run_after_it() -> None:
    backend = MemoryBackend()
    changes = [
        create("account", "parent"),
        create("account", "child", [0], parentAccountId={"$ref": {"kind": "account", "code": "parent"}}),
    ]
    result = apply_changes(changes, backend, parallelism=4)
    assert result.ok
    parent = next(e for e in backend.objects["account"].values() if e["code"] == "parent")
    child = next(e for e in backend.objects["account"].values() if e["code"] == "child")
    assert child["parentAccountId"] == parent["id"]


def test_failure_skips_dependents_but_not_independent_changes() -> None:
    backend = MemoryBackend(fail_codes={"EUR"})
    changes = [
        create("currency", "EUR"),
        create("currency", "GBP"),
        create("account", "a", [0], currency="EUR"),
        create("account", "b", [2], parentAccountId={"$ref": {"kind": "account", "code": "a"}}),
        create("account", "c", [1], currency="GBP"),
        Change("delete", "account", "old", "id-old", 3, [], {}),
    ]
    result = apply_changes(changes, backend, parallelism=2)
    assert [o.status for o in result.outcomes] == ["failed", "applied", "skipped", "skipped", "applied", "applied"]
    assert "currency EUR" in result.outcomes[2].message
    assert "refused EUR" in result.outcomes[0].message
    assert result.summary_line() == "Apply: 3 applied, 1 failed, 2 skipped."
    # no barrier between creates and removals: a removal waits only for what it depends on
    assert ("delete", "id-old") in backend.calls


def test_progress_reports_every_change() -> None:
    seen: list[tuple[int, int, int]] = []
    changes = [create("creditReason", f"r{i}") for i in range(20)]
    apply_changes(changes, MemoryBackend(fail_codes={"r3"}), parallelism=3, progress=lambda *a: seen.append(a))
    assert seen[-1] == (20, 20, 1)


def test_deleting_what_is_already_gone_counts_as_applied_with_a_note() -> None:
    backend = MemoryBackend()
    backend.objects["account"] = {"id7": {"id": "id7", "code": "still-here", "version": 1}}
    changes = [
        Change("delete", "account", "gone-since-plan", "id9", 1, [], {}),
        Change("delete", "account", "still-here", "id7", 1, [], {}),
    ]
    result = apply_changes(changes, backend, parallelism=2)
    assert result.ok, result.outcomes
    assert [(o.status, o.message) for o in result.outcomes] == [
        ("applied", "it was already gone"),
        ("applied", ""),
    ]
    assert backend.objects["account"] == {}
    assert result.summary_line() == "Apply: 2 applied, 0 failed, 0 skipped."
