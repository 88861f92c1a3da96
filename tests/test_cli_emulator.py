"""The CLI against the m3ter emulator over real sockets on 127.0.0.1: the `m3ter` backend
as a user meets it — examples, injected failures with short tokens, SIGKILL part-way, hand
edits made with the official SDK, and no secret in any output."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import m3ter
import pytest

from reconciler.emulator import EmulatorConfig
from reconciler.emulator.testing import RunningEmulator, running_emulator, spawned_emulator
from reconciler.store import Store
from tests.conftest import EXAMPLES, REPO, CliResult, run_cli
from tests.openapi_full import full_document_mode  # noqa: F401  (autouse: plain and --extra-fields, validated)


def accounts_manifest(directory: Path, count: int, *, prefix: str = "acct") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    lines = ["accounts:"]
    for i in range(count):
        lines.append(f"  - {{code: {prefix}-{i:04d}, name: Customer {i}, emailAddress: c{i}@customers.example}}")
    (directory / "accounts.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return directory


def cli(emu: RunningEmulator, *args: str) -> CliResult:
    return run_cli(*args, "--backend", f"m3ter:{emu.base_url}", env=emu.env())


def live_codes(db: Path, org_id: str) -> list[str]:
    store = Store(db)
    try:
        return [str(a["code"]) for a in store.list_all(org_id, "account")]
    finally:
        store.close()


@pytest.fixture
def emu() -> Iterator[RunningEmulator]:
    with running_emulator(EmulatorConfig(rate_limit=None)) as running:
        yield running


def test_examples_apply_via_emulator_then_plan_empty(emu: RunningEmulator) -> None:
    applied = cli(emu, "apply", str(EXAMPLES), "--auto-approve")
    assert applied.code == 0, applied.output
    again = cli(emu, "plan", str(EXAMPLES), "--detailed-exitcode")
    assert again.code == 0, again.output
    assert "No changes." in again.stdout


def test_flaky_api_with_short_tokens_converges_without_duplicates(tmp_path: Path) -> None:
    config = EmulatorConfig(rate_limit=None, fail_rate=0.15, fail_seed=7, token_ttl=2, db=str(tmp_path / "emu.sqlite"))
    manifests = accounts_manifest(tmp_path / "m", 300)
    with running_emulator(config) as emu:
        args = ("apply", str(manifests), "--auto-approve", "--rate-limit", "400", "--parallelism", "8")
        first = cli(emu, *args)
        if first.code != 0:  # a change that failed after every retry: the re-run completes it
            assert "Apply:" in first.stderr, first.output
            assert cli(emu, *args).code == 0
        codes = live_codes(tmp_path / "emu.sqlite", emu.org_id)
        assert len(codes) == 300 and len(set(codes)) == 300  # nothing lost, nothing twice
        assert emu.stats().get("tokens", 0) >= 2  # the 2-second tokens were renewed
    quiet = EmulatorConfig(rate_limit=None, db=str(tmp_path / "emu.sqlite"), org_ids=(emu.org_id,))
    with running_emulator(quiet) as calm:
        assert cli(calm, "plan", str(manifests), "--detailed-exitcode").code == 0


def test_apply_killed_part_way_converges(tmp_path: Path) -> None:
    db = tmp_path / "emu.sqlite"
    manifests = accounts_manifest(tmp_path / "m", 200)
    with spawned_emulator(EmulatorConfig(rate_limit=None, latency_ms=20, db=str(db))) as emu:
        env = {**os.environ, **emu.env(), "PYTHONPATH": str(REPO)}
        cmd = [
            sys.executable,
            "-m",
            "reconciler",
            "apply",
            str(manifests),
            "--backend",
            f"m3ter:{emu.base_url}",
            "--auto-approve",
            "--parallelism",
            "2",
        ]
        proc = subprocess.Popen(
            cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 60
        while len(live_codes(db, emu.org_id)) < 30 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        # A request already on the wire when the client died still completes in the emulator:
        # count only once the organization has stopped changing.
        part = len(live_codes(db, emu.org_id))
        while True:
            time.sleep(0.3)
            settled = len(live_codes(db, emu.org_id))
            if settled == part:
                break
            part = settled
        assert 0 < part < 200, f"the kill should land part-way, {part} were created"
        rerun = run_cli("apply", str(manifests), "--backend", f"m3ter:{emu.base_url}", "--auto-approve", env=emu.env())
        assert rerun.code == 0, rerun.output
        assert f"Plan: {200 - part} to create" in rerun.stdout
        codes = live_codes(db, emu.org_id)
        assert len(codes) == 200 and len(set(codes)) == 200
        assert (
            run_cli(
                "plan", str(manifests), "--backend", f"m3ter:{emu.base_url}", "--detailed-exitcode", env=emu.env()
            ).code
            == 0
        )


def test_hand_edit_through_the_sdk_shows_in_plan_and_drift(emu: RunningEmulator, tmp_path: Path) -> None:
    manifests = accounts_manifest(tmp_path / "m", 3)
    assert cli(emu, "apply", str(manifests), "--auto-approve").code == 0
    sdk = m3ter.M3ter(api_key=emu.api_key, api_secret=emu.api_secret, org_id=emu.org_id, base_url=emu.base_url)
    try:
        [account] = sdk.accounts.list(codes=["acct-0001"]).data
        # what reconciler wrote reads back exactly through the official SDK
        assert (account.code, account.name, account.email_address) == (
            "acct-0001",
            "Customer 1",
            "c1@customers.example",
        )
        sdk.accounts.update(
            account.id,
            code=account.code,
            name="Renamed by hand",
            email_address=account.email_address,
            version=account.version,
        )
    finally:
        sdk.close()
    plan = cli(emu, "plan", str(manifests), "--format", "json", "--no-redact-pii")
    [change] = json.loads(plan.stdout)["changes"]
    assert (change["action"], change["key"]) == ("update", "acct-0001")
    assert change["diff"] == [{"path": "name", "before": "Renamed by hand", "after": "Customer 1"}]
    drift = cli(emu, "drift", str(manifests))
    assert drift.code == 2 and "acct-0001" in drift.stdout


def test_no_secret_in_any_verbose_output(emu: RunningEmulator, tmp_path: Path) -> None:
    manifests = accounts_manifest(tmp_path / "m", 5)
    basic = base64.b64encode(f"{emu.api_key}:{emu.api_secret}".encode()).decode()
    outputs = [
        cli(emu, "validate", str(manifests), "-v"),
        cli(emu, "plan", str(manifests), "-v"),
        cli(emu, "plan", str(manifests), "-v", "--format", "json", "--out", str(tmp_path / "plan.json")),
        cli(emu, "apply", str(manifests), "-v", "--auto-approve"),
        cli(emu, "apply", "--plan", str(tmp_path / "plan.json"), "-v", "--auto-approve"),  # refused: stale
        cli(emu, "drift", str(manifests), "-v", "--format", "markdown"),
        cli(emu, "export", "--out", str(tmp_path / "export"), "-v"),
    ]
    # and with bad credentials, the error must not echo them either
    wrong = run_cli(
        "plan",
        str(manifests),
        "-v",
        "--backend",
        f"m3ter:{emu.base_url}",
        env={**emu.env(), "M3TER_API_SECRET": "wrong-secret-value"},
    )
    assert wrong.code == 1 and "wrong-secret-value" not in wrong.output
    traced = "".join(o.output for o in outputs)
    assert "-> 200" in traced  # the trace is there ...
    for secret in (emu.api_secret, basic, "Bearer ", "eyJ"):  # ... and no secret, token or JWT in it
        assert secret not in traced + wrong.output


def test_undocumented_live_fields_survive_apply_and_never_show_as_diffs() -> None:
    """With --extra-fields every live object carries fields outside the official document (as a
    newer m3ter would); an apply that updates objects (GET, merge, PUT) must send them back, or
    the server clears them, and plan and drift must not report them."""
    from reconciler.emulator.config import EXTRA_FIELDS

    with running_emulator(EmulatorConfig(rate_limit=None, extra_fields=True)) as emu:
        before = emu.store.get_singleton(emu.org_id, "organizationConfig")
        assert all(before[k] == v for k, v in EXTRA_FIELDS.items())
        applied = cli(emu, "apply", str(EXAMPLES), "--auto-approve")
        assert applied.code == 0, applied.output
        store = emu.store
        updated = [
            store.get_singleton(emu.org_id, "organizationConfig"),
            store.get_singleton(emu.org_id, "customFields"),
            *store.list_all(emu.org_id, "currency"),
            *store.list_all(emu.org_id, "account"),
        ]
        assert updated[0]["version"] > before["version"]  # really updated through a PUT
        for obj in updated:
            assert {k: obj.get(k) for k in EXTRA_FIELDS} == EXTRA_FIELDS, obj.get("code") or obj["id"]
        again = cli(emu, "plan", str(EXAMPLES), "--detailed-exitcode", "--format", "json")
        assert again.code == 0, again.output
        assert not any(name in again.stdout for name in EXTRA_FIELDS)
        assert cli(emu, "drift", str(EXAMPLES)).code == 0


def test_reading_by_code_skips_the_kinds_the_manifests_do_not_name(emu: RunningEmulator, tmp_path: Path) -> None:
    """Over the m3ter API, accounts not pruned are read by code, and a kind the manifests
    neither list nor refer to is not read at all: a hand-made product is then not counted
    (the plan says products were not counted), no request goes to /products, and the plan is
    otherwise the same. Once the manifests list a product, products are read (whole: the API
    has no codes filter for them) and the hand-made one is counted as unmanaged."""
    catalog = tmp_path / "catalog"
    catalog.mkdir()
    (catalog / "p.yaml").write_text("products:\n  - {code: api, name: API}\n  - {code: byhand, name: By hand}\n",
                                    encoding="utf-8")
    assert cli(emu, "apply", str(catalog), "--auto-approve").code == 0
    manifests = accounts_manifest(tmp_path / "m", 3)
    assert cli(emu, "apply", str(manifests), "--auto-approve").code == 0

    traced = cli(emu, "plan", str(manifests), "-v", "--format", "json")
    assert traced.code == 0, traced.output
    doc = json.loads(traced.stdout)
    assert doc["summary"]["create"] == doc["summary"]["update"] == 0
    assert "product" in doc["uncounted"] and "account" in doc["uncounted"]
    assert doc["unmanaged"] == [] and doc["readByCode"]["product"] == []
    assert "/products" not in traced.stderr and "/accounts" in traced.stderr
    text = cli(emu, "plan", str(manifests))
    assert "(not counted for account; " in text.stdout
    assert "kinds the manifests do not name were not read)." in text.stdout

    (manifests / "p.yaml").write_text("products:\n  - {code: api, name: API}\n", encoding="utf-8")
    named = cli(emu, "plan", str(manifests), "-v", "--format", "json")
    assert named.code == 0, named.output
    doc = json.loads(named.stdout)
    assert {"kind": "product", "key": "byhand"} in doc["unmanaged"] and "product" not in doc["uncounted"]
    assert "/products" in named.stderr
