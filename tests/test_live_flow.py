"""The live suite's flow (tests/live/flow.py) run against the emulator on 127.0.0.1, so the
default suite proves the steps work and only ever touch objects under the run's prefix."""

from __future__ import annotations

from pathlib import Path

from reconciler.emulator.config import EmulatorConfig
from reconciler.emulator.testing import running_emulator
from tests.live.conftest import missing_credentials
from tests.live.flow import cleanup, new_prefix, run_flow


def test_live_flow_against_the_emulator(tmp_path: Path) -> None:
    with running_emulator(EmulatorConfig()) as emu:
        org = emu.org_id
        bystander = emu.store.create(org, "account", {"code": "someone-else", "name": "Other",
                                                      "emailAddress": "o@example.com"})
        reason = emu.store.create(org, "creditReason", {"code": "rcl_live_other_x", "name": "Other run"})
        prefix = new_prefix()
        run_flow(emu.env(), tmp_path, prefix)
        left = {e["code"] for kind in ("account", "creditReason") for e in emu.store.list_all(org, kind)}
        assert left == {"someone-else", "rcl_live_other_x"}
        assert emu.store.find(org, "account", bystander["id"])["version"] == bystander["version"]
        assert emu.store.find(org, "creditReason", reason["id"])["version"] == reason["version"]
        assert cleanup(emu.env(), prefix) == []


def test_missing_credentials_sentences() -> None:
    assert missing_credentials({}) == "M3TER_ORG_ID is not set"
    assert "M3TER_API_TOKEN" in (missing_credentials({"M3TER_ORG_ID": "o", "M3TER_API_KEY": "k"}) or "")
    assert missing_credentials({"M3TER_ORG_ID": "o", "M3TER_API_TOKEN": "t"}) is None
    assert missing_credentials({"M3TER_ORG_ID": "o", "M3TER_API_KEY": "k", "M3TER_API_SECRET": "s"}) is None
