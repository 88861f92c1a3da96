"""reconciler.backends.local: the Backend interface over the SQLite store."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from reconciler import kinds
from reconciler.backends import open_backend
from reconciler.backends.base import BackendError, ConflictError, NotFoundError, ValidationFailed
from reconciler.backends.local import LOCAL_ORG_ID, LocalBackend
from reconciler.store import FAIL_ENV

ACCOUNT = kinds.get("account")
CURRENCY = kinds.get("currency")
CREDIT = kinds.get("creditReason")
ORG_CONFIG = kinds.get("organizationConfig")
CUSTOM_FIELDS = kinds.get("customFields")


@pytest.fixture
def backend(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.delenv(FAIL_ENV, raising=False)
    b = LocalBackend(tmp_path / "nested" / "dir" / "local.sqlite")
    yield b
    b.close()


def account(code: str, **extra: Any) -> dict[str, Any]:
    return {"code": code, "name": f"Account {code}", "emailAddress": "a@example.com", **extra}


def test_identity_and_parent_dirs(tmp_path: Path, backend: LocalBackend) -> None:
    assert (tmp_path / "nested" / "dir" / "local.sqlite").exists()
    assert backend.name == f"local:{tmp_path / 'nested' / 'dir' / 'local.sqlite'}"
    assert backend.org_id == LOCAL_ORG_ID == "local"


def test_open_backend_local(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(FAIL_ENV, raising=False)
    path = tmp_path / "x.sqlite"
    with open_backend(f"local:{path}") as b:
        assert isinstance(b, LocalBackend)
        assert b.name == f"local:{path}"
        assert [c["code"] for c in b.list(CURRENCY)] == ["USD"]


def test_fresh_organization(backend: LocalBackend) -> None:
    assert [c["code"] for c in backend.list(CURRENCY)] == ["USD"]
    config = backend.get_singleton(ORG_CONFIG)
    assert config["currency"] == "USD" and config["version"] == 1
    assert backend.get_singleton(CUSTOM_FIELDS)["version"] == 1
    assert backend.list(ACCOUNT) == []


def test_crud_round_trip(backend: LocalBackend) -> None:
    created = backend.create(ACCOUNT, account("ACME"))
    assert created["version"] == 1
    assert backend.get(ACCOUNT, created["id"]) == created
    updated = backend.update(ACCOUNT, created["id"], {**account("ACME", name="Acme Ltd"), "version": 1})
    assert updated["version"] == 2 and updated["name"] == "Acme Ltd"
    assert backend.find_by_code(ACCOUNT, "ACME") == updated
    assert backend.delete(ACCOUNT, created["id"]) == updated
    assert backend.get(ACCOUNT, created["id"]) is None
    assert backend.find_by_code(ACCOUNT, "ACME") is None


def test_list_includes_archived_and_filters_codes(backend: LocalBackend) -> None:
    backend.create(CREDIT, {"code": "A", "name": "A"})
    backend.create(CREDIT, {"code": "B", "name": "B", "archived": True})
    assert sorted(e["code"] for e in backend.list(CREDIT)) == ["A", "B"]
    assert [e["code"] for e in backend.list(CREDIT, ["B", "Z"])] == ["B"]
    assert backend.list(CREDIT, []) == []


def test_stale_version_is_conflict(backend: LocalBackend) -> None:
    created = backend.create(ACCOUNT, account("A"))
    backend.update(ACCOUNT, created["id"], {**account("A"), "version": 1})
    with pytest.raises(ConflictError) as info:
        backend.update(ACCOUNT, created["id"], {**account("A"), "version": 1})
    assert "changed since it was read; plan again" in str(info.value)
    assert "'A'" in str(info.value)
    config = backend.get_singleton(ORG_CONFIG)
    backend.put_singleton(ORG_CONFIG, _config_body(config))
    with pytest.raises(ConflictError, match="changed since it was read; plan again"):
        backend.put_singleton(ORG_CONFIG, _config_body(config))


def _config_body(config: dict[str, Any]) -> dict[str, Any]:
    body = {k: v for k, v in config.items() if k not in ("id", "dtCreated", "dtLastModified")}
    body.setdefault("daysBeforeBillDue", 30)  # required by PUT; a fresh organization has none
    return body


def test_put_singleton_replaces(backend: LocalBackend) -> None:
    fields = backend.get_singleton(CUSTOM_FIELDS)
    out = backend.put_singleton(CUSTOM_FIELDS, {"account": {"tier": "gold"}, "version": fields["version"]})
    assert out["account"] == {"tier": "gold"} and out["version"] == 2
    assert backend.get_singleton(CUSTOM_FIELDS) == out


def test_validation_errors(backend: LocalBackend) -> None:
    backend.create(ACCOUNT, account("A"))
    with pytest.raises(ValidationFailed) as info:
        backend.create(ACCOUNT, account("A"))
    assert info.value.status == 400 and "code already exists" in str(info.value)
    with pytest.raises(ValidationFailed, match="unknown field"):
        backend.create(ACCOUNT, {**account("B"), "parent": "A"})


def test_not_found(backend: LocalBackend) -> None:
    with pytest.raises(NotFoundError) as info:
        backend.delete(ACCOUNT, "00000000-0000-0000-0000-000000000000")
    assert info.value.status == 404
    with pytest.raises(NotFoundError):
        backend.update(ACCOUNT, "nope", {**account("A"), "version": 1})


def test_parent_with_children_not_deletable(backend: LocalBackend) -> None:
    parent = backend.create(ACCOUNT, account("P"))
    backend.create(ACCOUNT, account("C", parentAccountId=parent["id"]))
    with pytest.raises(ValidationFailed, match="child account"):
        backend.delete(ACCOUNT, parent["id"])


def test_injected_failure_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(FAIL_ENV, "create:account:B")
    with LocalBackend(tmp_path / "f.sqlite") as b:
        b.create(ACCOUNT, account("A"))
        with pytest.raises(BackendError) as info:
            b.create(ACCOUNT, account("B"))
        assert info.value.status == 500
        assert "injected" in str(info.value)
        assert not isinstance(info.value, ValidationFailed | ConflictError | NotFoundError)
    # a re-run without the fault converges
    monkeypatch.delenv(FAIL_ENV)
    with LocalBackend(tmp_path / "f.sqlite") as b:
        b.create(ACCOUNT, account("B"))
        assert sorted(e["code"] for e in b.list(ACCOUNT)) == ["A", "B"]


def test_bad_fail_spec_is_a_backend_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(FAIL_ENV, "explode:account")
    with pytest.raises(BackendError, match="unknown operation"):
        LocalBackend(tmp_path / "g.sqlite")


def test_unusable_path_is_a_backend_error(tmp_path: Path) -> None:
    (tmp_path / "adir").mkdir()
    with pytest.raises(BackendError, match="cannot open the local organization"):
        LocalBackend(tmp_path / "adir")
    garbage = tmp_path / "garbage.sqlite"
    garbage.write_bytes(b"this is not a database" * 100)
    with pytest.raises(BackendError, match="cannot open the local organization"):
        LocalBackend(garbage)


def test_persists_across_instances(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(FAIL_ENV, raising=False)
    path = tmp_path / "p.sqlite"
    with LocalBackend(path) as b:
        created = b.create(ACCOUNT, account("KEEP"))
    with LocalBackend(path) as b:
        assert b.get(ACCOUNT, created["id"]) == created
        assert len(b.list(CURRENCY)) == 1  # not seeded twice


def test_fetch_live(backend: LocalBackend) -> None:
    backend.create(ACCOUNT, account("A"))
    backend.create(ACCOUNT, account("B"))
    live = backend.fetch_live({"organizationConfig": None, "account": ["B"], "currency": None})
    assert live["organizationConfig"][0]["currency"] == "USD"
    assert [a["code"] for a in live["account"]] == ["B"]
    assert [c["code"] for c in live["currency"]] == ["USD"]


def test_thread_safe(backend: LocalBackend) -> None:
    def work(i: int) -> None:
        created = backend.create(ACCOUNT, account(f"T{i}"))
        backend.update(ACCOUNT, created["id"], {**account(f"T{i}", name="renamed"), "version": 1})
        assert backend.get(ACCOUNT, created["id"]) is not None
        backend.list(CURRENCY)

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(work, range(80)))
    accounts = backend.list(ACCOUNT)
    assert len(accounts) == 80
    assert all(a["version"] == 2 and a["name"] == "renamed" for a in accounts)
    stats = backend.stats()
    assert stats["writes"] == 160 and stats["errors"] == 0


def test_two_backends_on_one_file_race(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(FAIL_ENV, raising=False)
    path = tmp_path / "shared.sqlite"
    b1, b2 = LocalBackend(path), LocalBackend(path)
    created = b1.create(CREDIT, {"code": "R", "name": "R"})
    barrier = threading.Barrier(2)
    results: list[str] = []

    def update(b: LocalBackend) -> None:
        barrier.wait()
        try:
            b.update(CREDIT, created["id"], {"code": "R", "name": "x", "version": 1})
            results.append("ok")
        except ConflictError:
            results.append("conflict")

    threads = [threading.Thread(target=update, args=(b,)) for b in (b1, b2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == ["conflict", "ok"]
    b1.close()
    b2.close()


def test_large_list(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(FAIL_ENV, raising=False)
    with LocalBackend(tmp_path / "big.sqlite") as b:
        b.store.create_many(b.org_id, "account", [account(f"A{i:05d}") for i in range(3000)])
        everything = b.list(ACCOUNT)
        assert len(everything) == 3000
        assert len({a["id"] for a in everything}) == 3000


def test_plan_of_the_examples_on_a_fresh_organization_shows_only_real_differences(tmp_path: Path) -> None:
    """The fresh organization holds only documented defaults (openapi-full.json and the seed
    page), so the example manifests' values that equal them are no change, and fields with no
    documented default (daysBeforeBillDue, billPrefix) show as set from nothing."""
    import json

    from tests.conftest import EXAMPLES, run_cli

    result = run_cli("plan", str(EXAMPLES), "--backend", f"local:{tmp_path / 'fresh.sqlite'}", "--format", "json")
    assert result.code == 0, result.stderr
    (config,) = [c for c in json.loads(result.stdout)["changes"] if c["kind"] == "organizationConfig"]
    diff = {d["path"]: d for d in config["diff"]}
    for documented_default in (
        "currency",
        "standingChargeBillInAdvance",
        "commitmentFeeBillInAdvance",
        "minimumSpendBillInAdvance",
        "externalInvoiceDate",
        "consolidateBills",
        "autoGenerateStatementMode",
        "creditApplicationOrder",
        "allowNegativeBalances",
        "allowOverlappingPlans",
    ):
        assert documented_default not in diff
    assert diff["daysBeforeBillDue"]["before"] is None and diff["daysBeforeBillDue"]["after"] == 30
    assert diff["billPrefix"]["before"] is None
