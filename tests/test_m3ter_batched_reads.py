"""Reading by ``codes`` batches returns exactly what a whole-kind cursor walk would, through
the emulator over real sockets on 127.0.0.1: codes that need escaping in a URL, codes that
do not exist live, archived picklist entries, a code holding a comma (walked instead), and
batches cut by the URL-length budget."""

from __future__ import annotations

from collections.abc import Collection, Iterator
from typing import Any

import pytest

from reconciler import kinds
from reconciler.backends import BackendOptions
from reconciler.backends.m3ter import CODES_PER_REQUEST, M3terBackend, code_batches
from reconciler.emulator import EmulatorConfig
from reconciler.emulator.testing import RunningEmulator, running_emulator
from tests.openapi_full import full_document_mode  # noqa: F401  (autouse: plain and --extra-fields, validated)

ACCOUNT = kinds.get("account")
CREDIT = kinds.get("creditReason")

#: Codes a URL must escape: space, &, +, %, #, /, ?, =, quotes, non-ASCII (2-, 3- and 4-byte UTF-8).
AWKWARD = [
    "ACME Inc", "A&B", "a+b", "100%", "#1", "x/y", "what?", "k=v", "it's", 'say "hi"', "Müller GmbH",
    "株式会社", "emoji 🚀", "tab-like\\t", "semi;colon", "plus+and space", "%2C", "a%20b",
]


@pytest.fixture
def emu() -> Iterator[RunningEmulator]:
    with running_emulator(EmulatorConfig(rate_limit=None)) as running:
        yield running


def backend_for(emu: RunningEmulator) -> M3terBackend:
    return M3terBackend.from_environment(environ=emu.env(), options=BackendOptions(rate_limit=0, parallelism=4))


def walked(backend: M3terBackend, kind: kinds.Kind, codes: Collection[str]) -> dict[str, dict[str, Any]]:
    """The whole kind by cursor walk, kept to ``codes``: what a batched read must equal."""
    wanted = set(codes)
    every = backend.list(kind)
    return {e["id"]: e for e in every if e["code"] in wanted}


def by_id(entities: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    out = {e["id"]: e for e in entities}
    assert len(out) == len(entities), "an object was returned twice"
    return out


def seed_accounts(emu: RunningEmulator, codes: list[str]) -> None:
    for i, code in enumerate(codes):
        emu.store.create(emu.org_id, "account", {"code": code, "name": f"Account {i}", "emailAddress": "a@b.example"})


def test_batched_read_equals_the_walk_with_awkward_and_missing_codes(emu: RunningEmulator) -> None:
    plain = [f"ACC-{i:04d}" for i in range(240)]
    seed_accounts(emu, plain + AWKWARD)
    missing = ["NOPE-1", "nope 2", "ø/missing", "A&", "&B"]
    wanted = plain[::2] + AWKWARD + missing  # 120 + 18 + 5 codes: two batches of 100 and one more
    with backend_for(emu) as backend:
        expected = walked(backend, ACCOUNT, wanted)
        before = backend.stats()["requests"]
        live = backend.fetch_live({"account": wanted})
        requests = backend.stats()["requests"] - before
    assert by_id(live["account"]) == expected
    assert sorted(e["code"] for e in live["account"]) == sorted(plain[::2] + AWKWARD)
    assert requests == len(code_batches(wanted)) == 2  # by filter, not by walking 258 accounts


def test_every_code_alone_is_found_by_filter(emu: RunningEmulator) -> None:
    """One batch per code: a server that split or decoded one of them wrongly shows here."""
    seed_accounts(emu, AWKWARD)
    with backend_for(emu) as backend:
        for code in AWKWARD:
            found = backend.list(ACCOUNT, [code])
            assert [e["code"] for e in found] == [code]


def test_a_code_holding_a_comma_makes_the_kind_walked_with_the_same_result(emu: RunningEmulator) -> None:
    codes = ["ACME, Inc", "ACME", "Inc", *AWKWARD[:5], *(f"C{i}" for i in range(150))]
    seed_accounts(emu, codes)
    wanted = ["ACME, Inc", "C1", "C149", "C150", "A&B"]  # C150 does not exist
    with backend_for(emu) as backend:
        expected = walked(backend, ACCOUNT, wanted)
        before = backend.stats()["requests"]
        found = backend.list(ACCOUNT, wanted)
        requests = backend.stats()["requests"] - before
    assert by_id(found) == expected
    assert sorted(e["code"] for e in found) == sorted(["ACME, Inc", "C1", "C149", "A&B"])
    assert requests == 2  # the walk: 158 accounts in pages of 100, no codes filter


def test_picklists_by_codes_equal_the_walk_archived_included(emu: RunningEmulator) -> None:
    codes = [f"R_{i}" for i in range(130)] + ["Grund_ä"]
    for i, code in enumerate(codes):
        emu.store.create(emu.org_id, "creditReason", {"code": code, "name": f"Reason {i}", "archived": i % 3 == 0})
    wanted = [*codes, "R_999"]
    with backend_for(emu) as backend:
        expected = walked(backend, CREDIT, wanted)
        live = backend.fetch_live({"creditReason": wanted})
    assert by_id(live["creditReason"]) == expected
    assert sum(1 for e in expected.values() if e.get("archived")) == 44


def test_long_escaped_codes_make_more_batches_with_the_same_result(emu: RunningEmulator) -> None:
    codes = [f"{'ü' * 70}-{i:03d}" for i in range(40)] + [f"S{i}" for i in range(100)]
    seed_accounts(emu, codes)
    batches = code_batches(codes)
    assert len(batches) > len(codes) / CODES_PER_REQUEST + 1  # the URL budget cut them, not the count
    with backend_for(emu) as backend:
        expected = walked(backend, ACCOUNT, codes)
        live = backend.fetch_live({"account": codes})
    assert by_id(live["account"]) == expected and len(expected) == len(codes)


def test_progress_counts_codes_for_batches_and_objects_for_walks(emu: RunningEmulator) -> None:
    seed_accounts(emu, [f"P{i}" for i in range(250)])
    calls: list[tuple[int, int | None]] = []
    with backend_for(emu) as backend:
        backend.fetch_live({"account": [f"P{i}" for i in range(210)] + ["GONE"], "organizationConfig": None},
                           lambda done, total: calls.append((done, total)))
        assert calls[-1] == (212, 212)  # 211 codes looked up (found or not) and one singleton
        assert all(total == 212 for _, total in calls)
        calls.clear()
        backend.fetch_live({"account": None}, lambda done, total: calls.append((done, total)))
    assert calls == [(100, None), (200, None), (250, None)]  # a walk: objects page by page, no total
