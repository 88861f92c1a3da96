"""What a plan reads by code (``services._wanted``): exactly what the manifests manage (the
codes they list and refer to; kinds they do not name at all are not read), each plain
reference read directly; it must name exactly the codes the registry's generic reference walk
names."""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Collection
from pathlib import Path
from typing import Any

from hypothesis import given, note
from hypothesis import strategies as st

from reconciler import kinds, services
from reconciler.manifest import load_manifests
from reconciler.manifest.types import Manifests
from tests.strategies import ManifestSet, live_orgs, manifest_sets


class _Lookups:
    """As much of a backend as ``_wanted`` asks about: one that reads any count by code."""

    code_lookup_limit = sys.maxsize


def _reference_wanted(manifests: Manifests) -> dict[str, Collection[str] | None]:
    """``_wanted`` spelled out, every reference through ``kinds.referenced_codes``: a kind the
    API filters by code is read by the codes listed and referred to (none: not read); any other
    kind is read whole when listed or referred to, else not read; pruned kinds, kinds referring
    to them and singletons are read whole."""
    pruned = {k.name for k in kinds.KINDS if getattr(manifests.settings.prune, k.manifest_key, False)}
    free = [
        k for k in kinds.KINDS
        if not (k.singleton or k.name in pruned) and not any(ref.target in pruned for ref in k.references)
    ]
    referenced: dict[str, set[str]] = {}
    for obj in manifests:
        for ref, code in kinds.referenced_codes(kinds.get(obj.kind), obj.fields):
            referenced.setdefault(ref.target, set()).add(code)
    wanted: dict[str, Collection[str] | None] = {k.name: None for k in kinds.KINDS}
    for kind in free:
        listed = set(manifests.of_kind(kind.name))
        if kind.by_code and kind.codes_filter:
            wanted[kind.name] = listed | referenced.get(kind.name, set())
        elif not listed:
            wanted[kind.name] = None if referenced.get(kind.name) else set()
    return wanted


def _check(files: dict[str, list[dict[str, Any]]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        loaded = load_manifests([str(ManifestSet(files).write(Path(tmp) / "m"))])
    assert loaded.manifests is not None
    got = services._wanted(loaded.manifests, _Lookups())  # type: ignore[arg-type]
    assert got == _reference_wanted(loaded.manifests)


def _extra(parent: str, currency: str) -> list[dict[str, Any]]:
    """An account referring to codes the manifests may not list (or to none: ``""``)."""
    return [{"accounts": [{"code": "extra-1", "name": "E", "emailAddress": "e@example.com",
                           "parent": parent, "currency": currency}]}]


@given(data=st.data())
def test_codes_read_are_those_the_generic_walk_names(data: st.DataObject) -> None:
    live = data.draw(live_orgs(catalog=data.draw(st.booleans())))
    chosen = data.draw(manifest_sets(live, catalog=live.catalog != ()))
    files: dict[str, list[dict[str, Any]]] = dict(chosen.files)
    files["extra.yaml"] = _extra(data.draw(st.sampled_from(["", "not-listed"])),
                                 data.draw(st.sampled_from(["", "ZZZ", "USD"])))
    note(repr(files))
    _check(files)


def test_an_empty_reference_names_no_code() -> None:
    """``parent: ""`` and ``currency: ""`` refer to nothing (validation reports them): read
    by code, they must not become a code to look up."""
    _check({"extra.yaml": _extra("", "")})


def test_kinds_the_manifests_do_not_name_are_not_read() -> None:
    """Accounts only: the picklists and catalog kinds they neither list nor refer to are not
    read (an empty collection), the currency they refer to is read by that code, and the
    singletons are read whole."""
    with tempfile.TemporaryDirectory() as tmp:
        loaded = load_manifests([str(ManifestSet({"a.yaml": _extra("", "EUR")}).write(Path(tmp) / "m"))])
    assert loaded.manifests is not None
    wanted = services._wanted(loaded.manifests, _Lookups())  # type: ignore[arg-type]
    assert wanted["account"] == {"extra-1"} and wanted["currency"] == {"EUR"}
    assert wanted["organizationConfig"] is None and wanted["customFields"] is None
    for name in ("creditReason", "product", "meter", "plan", "pricing", "accountPlan"):
        assert wanted[name] == set(), name
