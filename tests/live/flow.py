"""The end-to-end flow of the live suite, kept apart from the test so that the default
suite can run the very same steps against the emulator (``tests/test_live_flow.py``).

Every object it creates has a code starting with one prefix, unique per run, and every
write it makes (through the CLI or, for drift and cleanup, through the backend) is to such
an object: the manifests it plans hold nothing else and prune nothing, so the rest of the
organization is only read. The prefix uses ``_`` rather than ``-`` because picklist codes
allow only letters, digits, ``_`` and ``$`` (AbstractPickListRequest.code).
"""

from __future__ import annotations

import json
import secrets
import textwrap
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from reconciler import kinds
from reconciler.backends import BackendOptions
from reconciler.backends.m3ter import M3terBackend
from tests.conftest import CliResult, run_cli

ACCOUNT = kinds.get("account")
CREDIT_REASON = kinds.get("creditReason")
TOUCHED_KINDS = (ACCOUNT, CREDIT_REASON)  # children before parents is handled in cleanup


def new_prefix() -> str:
    return f"rcl_live_{secrets.token_hex(4)}_"


def _manifest(prefix: str, suffix: str) -> str:
    return textwrap.dedent(f"""
        creditReasons:
          - {{code: {prefix}reason, name: "reconciler live test {suffix}"}}
        accounts:
          - code: {prefix}parent
            name: reconciler live test parent {suffix}
            emailAddress: reconciler-live@example.com
          - code: {prefix}child
            name: reconciler live test child
            emailAddress: reconciler-live@example.com
            parent: {prefix}parent
            daysBeforeBillDue: 14
        """).lstrip("\n")


def _cli(env: Mapping[str, str], *args: str) -> CliResult:
    return run_cli(*args, "--backend", "m3ter", env={**env, "RECONCILER_BACKEND": "m3ter"})


def _ok(result: CliResult, *codes: int) -> CliResult:
    assert result.code in (codes or (0,)), result.output
    assert "Traceback" not in result.output
    return result


def _plan_changes(env: Mapping[str, str], manifests: Path, prefix: str) -> list[dict[str, Any]]:
    doc = json.loads(_ok(_cli(env, "plan", str(manifests), "--format", "json")).stdout)
    for change in doc["changes"]:
        assert change["kind"] in {k.name for k in TOUCHED_KINDS}, change
        assert str(change["key"]).startswith(prefix), f"the plan would touch {change['key']!r}"
        assert change["action"] in ("create", "update"), change
    return list(doc["changes"])


def backend_for(env: Mapping[str, str]) -> M3terBackend:
    return M3terBackend.from_environment(environ=env, options=BackendOptions(rate_limit=10, parallelism=2))


def run_flow(env: Mapping[str, str], workdir: Path, prefix: str) -> None:
    """validate -> plan -> apply -> plan is empty -> a harmless update -> drift after a
    change made behind reconciler's back -> export; cleanup always runs."""
    manifests = workdir / "manifests"
    manifests.mkdir(parents=True)
    target = manifests / "live.yaml"
    try:
        target.write_text(_manifest(prefix, "v1"), encoding="utf-8")
        _ok(run_cli("validate", str(target)))
        created = _plan_changes(env, target, prefix)
        assert sorted(c["action"] for c in created) == ["create"] * 3, created
        _ok(_cli(env, "apply", str(target), "--auto-approve"))
        _ok(_cli(env, "plan", str(target), "--detailed-exitcode"))

        target.write_text(_manifest(prefix, "v2"), encoding="utf-8")  # a harmless rename
        updates = _plan_changes(env, target, prefix)
        assert sorted(c["key"] for c in updates) == [f"{prefix}parent", f"{prefix}reason"], updates
        _ok(_cli(env, "apply", str(target), "--auto-approve"))
        _ok(_cli(env, "drift", str(target)))

        with backend_for(env) as backend:  # someone edits the child in the Console
            [child] = backend.list(ACCOUNT, [f"{prefix}child"])
            body = {k: v for k, v in child.items() if k not in kinds.READ_ONLY_FIELDS}
            backend.update(ACCOUNT, child["id"], {**body, "daysBeforeBillDue": 21, "version": child["version"]})
        drift = _ok(_cli(env, "drift", str(target)), 2)
        assert f"{prefix}child" in drift.stdout, drift.output

        out = workdir / "export"
        _ok(_cli(env, "export", "--out", str(out), "--kinds", "creditReasons,accounts"))
        exported: dict[str, dict[str, Any]] = {}
        for file in out.rglob("*.yaml"):
            for key, items in (yaml.safe_load(file.read_text(encoding="utf-8")) or {}).items():
                for item in items or []:
                    if str(item.get("code", "")).startswith(prefix):
                        exported[f"{key}:{item['code']}"] = item
        assert exported[f"accounts:{prefix}child"]["parent"] == f"{prefix}parent"
        assert exported[f"accounts:{prefix}child"]["daysBeforeBillDue"] == 21
        assert exported[f"creditReasons:{prefix}reason"]["name"] == "reconciler live test v2"
    finally:
        cleanup(env, prefix)


def cleanup(env: Mapping[str, str], prefix: str) -> list[str]:
    """Delete every object of the touched kinds whose code starts with ``prefix`` (children
    before parents), and nothing else. Returns what was deleted."""
    assert prefix.startswith("rcl_live_") and len(prefix) > len("rcl_live_"), prefix
    deleted: list[str] = []
    with backend_for(env) as backend:
        for kind in TOUCHED_KINDS:
            mine = [e for e in backend.list(kind) if str(e.get("code", "")).startswith(prefix)]
            ids = {e["id"] for e in mine}
            # children first: an account whose parent is also ours goes before that parent
            mine.sort(key=lambda e: 0 if e.get("parentAccountId") in ids else 1)
            for entity in mine:
                assert str(entity["code"]).startswith(prefix)
                backend.delete(kind, entity["id"])
                deleted.append(f"{kind.name}:{entity['code']}")
    return deleted
