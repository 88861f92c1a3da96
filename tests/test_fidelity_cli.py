"""Issue 12 items 4, 5 and 6 through the CLI against the emulator over real sockets: what a
user's plan looks like when the server behaves as m3ter documents it."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from reconciler import kinds
from reconciler.emulator import EmulatorConfig
from reconciler.emulator.testing import running_emulator
from tests.conftest import run_cli


def write(directory: Path, text: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "org.yaml").write_text(textwrap.dedent(text), encoding="utf-8")
    return directory


def test_array_query_parameters_are_comma_joined(tmp_path: Path) -> None:
    """Item 4: the official SDKs send arrays comma-joined (``codes=a,b``), not repeated."""
    m = write(tmp_path / "m", """\
        accounts:
          - {code: alpha, name: Alpha, emailAddress: a@example.com}
          - {code: beta, name: Beta, emailAddress: b@example.com}
        """)
    with running_emulator(EmulatorConfig(rate_limit=None)) as emu:
        result = run_cli("plan", str(m), "--backend", "m3ter", "-v", env=emu.env())
    assert result.code == 0, result.output
    lookups = [line for line in result.stderr.splitlines() if "/accounts?" in line and "codes=" in line]
    assert lookups, result.stderr
    for line in lookups:
        query = line.split("?", 1)[1].split()[0]
        assert query.count("codes=") == 1, line
        assert "codes=alpha,beta" in query or "codes=alpha%2Cbeta" in query or "codes=beta,alpha" in query \
            or "codes=beta%2Calpha" in query, line


def test_plan_on_a_fresh_organization_shows_only_real_differences(tmp_path: Path) -> None:
    """Item 5: documented defaults only; a manifest restating them is no change."""
    m = write(tmp_path / "m", """\
        organization:
          currency: USD
          timezone: UTC
          yearEpoch: "2022-01-01"
          monthEpoch: "2022-01-01"
          weekEpoch: "2022-01-04"
          dayEpoch: "2022-01-01"
          autoGenerateStatementMode: NONE
          consolidateBills: false
          suppressedEmptyBills: false
        """)
    with running_emulator(EmulatorConfig(rate_limit=None)) as emu:
        result = run_cli("plan", str(m), "--backend", "m3ter", "--detailed-exitcode", env=emu.env())
    assert result.code == 0, result.output
    assert "No changes" in result.stdout


@pytest.mark.parametrize("archived_true", ["document", "only", "include"])
@pytest.mark.parametrize("archived_absent", ["exclude", "include"])
def test_archived_picklists_are_seen_whichever_way_the_server_reads_the_flag(
    tmp_path: Path, archived_true: str, archived_absent: str
) -> None:
    """Item 6: the document words the ``archived`` filter differently per endpoint; a plan is
    right under every reading (an archived entry is neither re-created nor missed)."""
    m = write(tmp_path / "m", """\
        currencies:
          - {code: USD, name: US Dollar}
          - {code: OLD, name: Old money, archived: true}
        creditReasons:
          - {code: gone, name: Gone, archived: true}
          - {code: here, name: Here}
        settings:
          prune: {debitReasons: archive}
        """)
    config = EmulatorConfig(rate_limit=None, archived_true=archived_true, archived_absent=archived_absent)
    with running_emulator(config) as emu:
        for kind, code, name in (("currency", "OLD", "Old money"), ("creditReason", "gone", "Gone"),
                                 ("creditReason", "here", "Here")):
            emu.store.create(emu.org_id, kinds.get(kind).name, {"code": code, "name": name,
                                                                "archived": code != "here"})
        emu.store.create(emu.org_id, "debitReason", {"code": "hidden", "name": "Hidden", "archived": True})
        result = run_cli("plan", str(m), "--backend", "m3ter", "--detailed-exitcode", env=emu.env())
    assert result.code == 0, result.output
    assert "No changes" in result.stdout
    # a kind listed whole (pruned: a kind the manifests do not name is otherwise not read)
    # still counts an archived unmanaged entry
    assert "debitReason hidden" in result.stdout
