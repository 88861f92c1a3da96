"""A large kind is read in chunks, SQLite building the next while Python parses the last
(``store._list_whole``). The chunks must add up to exactly the one-query read, newest first,
with filters, and see one state of the organization while another connection writes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import reconciler.store as store_module
from reconciler.store import Store

ORG = "org-1"


def account(code: str) -> dict[str, Any]:
    return {"code": code, "name": f"Account {code}", "emailAddress": f"{code.lower()}@example.com"}


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(tmp_path / "store.sqlite", fail_rules=[])
    s.create_many(ORG, "account", [account(f"A{n:03d}") for n in range(37)])
    for n in range(0, 37, 5):
        (found,) = s.list_all(ORG, "account", codes=[f"A{n:03d}"])
        s.update(ORG, "account", found["id"], {**account(f"A{n:03d}"), "version": found["version"],
                                                 "name": f"Renamed {n}"})  # moves it to the front
    yield s
    s.close()


def _read(store: Store, monkeypatch: pytest.MonkeyPatch, minimum: int, **filters: Any) -> list[dict[str, Any]]:
    monkeypatch.setattr(store_module, "CHUNKED_READ_MIN", minimum)
    return store.list_all(ORG, "account", **filters)


@pytest.mark.parametrize("archived", [None, False, True])
def test_chunks_add_up_to_the_one_query_read(store: Store, monkeypatch: pytest.MonkeyPatch,
                                               archived: bool | None) -> None:
    whole = _read(store, monkeypatch, 10**9, archived=archived)
    chunked = _read(store, monkeypatch, 1, archived=archived)  # 8 chunks of 5 (the last of 2)
    assert chunked == whole
    if archived is not True:
        assert len(whole) == 37


def test_a_write_between_chunks_is_not_seen(store: Store, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Another connection creates and deletes accounts while the chunks are read: the read
    is the organization as it was when it started, not a mix of before and after."""
    before = _read(store, monkeypatch, 10**9)
    other = Store(tmp_path / "store.sqlite", fail_rules=[])
    loads = json.loads
    calls = 0

    def loads_then_write(text: str) -> Any:
        nonlocal calls
        calls += 1
        if calls == 1:  # after the first chunk is read
            other.create(ORG, "account", account("NEW"))
            other.delete(ORG, "account", before[-1]["id"])
        return loads(text)

    monkeypatch.setattr(store_module.json, "loads", loads_then_write)
    try:
        chunked = _read(store, monkeypatch, 1)
    finally:
        monkeypatch.setattr(store_module.json, "loads", loads)
    assert calls >= 8  # each chunk once (and whatever the write itself parses)
    assert chunked == before
    after = _read(store, monkeypatch, 1)
    assert after[0]["code"] == "NEW" and before[-1]["id"] not in {a["id"] for a in after}
    other.close()


def test_a_failing_chunk_raises_and_leaves_no_transaction(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """An error in the thread that builds a chunk reaches the caller; the connection is left
    outside any transaction, usable for the next read."""
    monkeypatch.setattr(store_module, "_READ_CHUNKS", 4)

    original = store_module._list_whole

    def failing_list_whole(conn: Any, where: str, params: list[Any]) -> Any:
        class Conn:
            in_transaction = conn.in_transaction

            def execute(self, sql: str, args: Any = ()) -> Any:
                if "OFFSET" in sql and args[-1] > 0:
                    raise store_module.sqlite3.OperationalError("disk I/O error")
                return conn.execute(sql, args)

        return original(Conn(), where, params)  # type: ignore[arg-type]

    monkeypatch.setattr(store_module, "_list_whole", failing_list_whole)
    with pytest.raises(store_module.sqlite3.OperationalError, match="disk I/O"):
        _read(store, monkeypatch, 1)
    conn = store._conn()
    assert not conn.in_transaction
    monkeypatch.setattr(store_module, "_list_whole", original)
    assert len(_read(store, monkeypatch, 1)) == 37
