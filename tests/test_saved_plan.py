"""Saved plans that cannot lie (issue "Correct from any live state", item 3): the digest in
every output, the schema, identity by id and version, diffs recomputed from bodies, and
refusals and order recomputed rather than read from the file."""

from __future__ import annotations

import json
import os
import re
import textwrap
from pathlib import Path
from typing import Any

import pytest

from reconciler import kinds
from reconciler.backends.local import LocalBackend
from reconciler.planfile import main as schema_main
from reconciler.render.document import digest_of
from tests.conftest import run_cli

ACCOUNT = kinds.get("account")

BASE = """\
currencies:
  - {code: EUR, name: Euro, maxDecimalPlaces: 2}
accounts:
  - code: acme
    name: Acme Corp
    emailAddress: billing@acme.example
    purchaseOrderNumber: PO-1
  - code: beta
    name: Beta
    emailAddress: beta@example.com
"""


def write(tmp_path: Path, text: str, name: str = "m") -> str:
    path = tmp_path / name / "org.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return str(path.parent)


def snapshot(db: Path) -> list[tuple[str, str, int]]:
    with LocalBackend(db) as backend:
        return sorted(
            (k.name, str(e.get("code", k.name)), int(e["version"]))
            for k in kinds.KINDS
            for e in (backend.list(k) if k.keyed else [backend.get_singleton(k)])
        )


@pytest.fixture
def saved(tmp_path: Path) -> tuple[Path, Path, str]:
    """An organization with BASE applied and a saved plan that changes acme's PO number."""
    db = tmp_path / "org.sqlite"
    m = write(tmp_path, BASE)
    assert run_cli("apply", m, "--backend", f"local:{db}", "--auto-approve").code == 0
    m = write(tmp_path, BASE.replace("PO-1", "PO-2"))
    out = tmp_path / "plan.json"
    result = run_cli("plan", m, "--backend", f"local:{db}", "--out", str(out))
    assert result.code == 0, result.output
    return db, out, m


def rewrite(path: Path, edit: Any, *, redigest: bool = True) -> None:
    doc = json.loads(path.read_text())
    edit(doc)
    if redigest:
        doc["digest"] = digest_of(doc)
    path.write_text(json.dumps(doc))


def apply_saved(db: Path, out: Path, *extra: str) -> Any:
    return run_cli("apply", "--plan", str(out), "--backend", f"local:{db}", "--auto-approve", *extra)


def test_every_format_shows_the_same_digest_as_the_saved_file(saved: tuple[Path, Path, str]) -> None:
    db, out, m = saved
    digest = json.loads(out.read_text())["digest"]
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", digest)
    text = run_cli("plan", m, "--backend", f"local:{db}")
    assert f"Plan digest: {digest}" in text.stdout
    markdown = run_cli("plan", m, "--backend", f"local:{db}", "--format", "markdown")
    assert digest in markdown.stdout
    doc = json.loads(run_cli("plan", m, "--backend", f"local:{db}", "--format", "json").stdout)
    assert doc["digest"] == digest
    redacted = json.loads(run_cli("plan", m, "--backend", f"local:{db}", "--format", "json", "--redact-pii").stdout)
    assert redacted["digest"] == digest  # a CI log names the same plan as the private artifact
    assert f"--expect-digest {digest}" in run_cli("plan", m, "--backend", f"local:{db}", "--out",
                                                  str(out)).stderr


def test_pinned_digest_applies_exactly(saved: tuple[Path, Path, str]) -> None:
    db, out, m = saved
    digest = json.loads(out.read_text())["digest"]
    wrong = apply_saved(db, out, "--expect-digest", "sha256:" + "0" * 64)
    assert wrong.code == 1 and "not the plan that was approved" in wrong.stderr
    ok = apply_saved(db, out, "--expect-digest", digest.removeprefix("sha256:"))
    assert ok.code == 0, ok.output
    assert digest in ok.stdout
    assert run_cli("plan", m, "--backend", f"local:{db}", "--detailed-exitcode").code == 0


def test_expect_digest_needs_a_plan(tmp_path: Path) -> None:
    result = run_cli("apply", write(tmp_path, BASE), "--expect-digest", "abc", "--auto-approve")
    assert result.code == 1 and "--expect-digest needs --plan" in result.stderr


def test_deleted_and_recreated_object_is_refused(saved: tuple[Path, Path, str]) -> None:
    """Regression: identity was code + version, so a new object (new id, version 1) passed."""
    db, out, _ = saved
    with LocalBackend(db) as backend:
        [acme] = [a for a in backend.list(ACCOUNT) if a["code"] == "acme"]
        backend.delete(ACCOUNT, acme["id"])
        backend.create(ACCOUNT, {"code": "acme", "name": "Acme Corp", "emailAddress": "billing@acme.example",
                                 "purchaseOrderNumber": "PO-1"})
    before = snapshot(db)
    result = apply_saved(db, out)
    assert result.code == 1
    assert "deleted and created again" in result.stderr and "nothing was changed" in result.stderr
    assert snapshot(db) == before


def test_body_edited_after_review_is_refused(saved: tuple[Path, Path, str]) -> None:
    """Regression: an edited body was sent while the reviewed diff was shown."""
    db, out, _ = saved

    def edit(doc: dict[str, Any]) -> None:
        doc["changes"][0]["body"]["purchaseOrderNumber"] = "PO-EVIL"

    before = snapshot(db)
    rewrite(out, edit, redigest=False)
    plain = apply_saved(db, out)
    assert plain.code == 1 and "edited after it was written" in plain.stderr
    rewrite(out, edit)  # even with a matching digest, the diff from the body gives it away
    sneaky = apply_saved(db, out)
    assert sneaky.code == 1
    assert "differs from the saved diff" in sneaky.stderr and "purchaseOrderNumber" in sneaky.stderr
    assert snapshot(db) == before


def test_code_edited_in_the_body_is_refused(saved: tuple[Path, Path, str]) -> None:
    db, out, _ = saved
    rewrite(out, lambda doc: doc["changes"][0]["body"].update(code="other"))
    result = apply_saved(db, out)
    assert result.code == 1 and "the body's identity is not the change's key" in result.stderr


def test_removed_refusal_is_recomputed(tmp_path: Path) -> None:
    """Regression: removing the recorded refusal from the file removed the need for --force."""
    db = tmp_path / "org.sqlite"
    reasons = "".join(f"  - {{code: r{n}, name: R{n}}}\n" for n in range(10))
    assert run_cli("apply", write(tmp_path, "creditReasons:\n" + reasons), "--backend", f"local:{db}",
                   "--auto-approve").code == 0
    pruning = write(tmp_path, "creditReasons:\n  - {code: r0, name: R0}\nsettings:\n  prune: {creditReasons: delete}\n",
                    "p")
    out = tmp_path / "plan.json"
    planned = run_cli("plan", pruning, "--backend", f"local:{db}", "--out", str(out), "--force")
    assert planned.code == 0, planned.output
    reviewed = json.loads(out.read_text())
    assert reviewed["refusals"]
    rewrite(out, lambda doc: doc.update(refusals=[]))
    before = snapshot(db)
    result = apply_saved(db, out)
    assert result.code == 1 and "maxRemovePercent" in result.stderr
    assert snapshot(db) == before
    # raising the threshold in the file changes the digest: a pinned plan refuses
    rewrite(out, lambda doc: doc.update(safety={"maxRemovePercent": 100}))
    pinned = apply_saved(db, out, "--expect-digest", reviewed["digest"])
    assert pinned.code == 1 and "not the plan that was approved" in pinned.stderr
    assert snapshot(db) == before
    assert apply_saved(db, out, "--expect-digest", reviewed["digest"], "--force").code == 1


def test_forward_depends_on_is_refused(tmp_path: Path) -> None:
    """Regression: a dependsOn pointing forward was accepted."""
    db = tmp_path / "org.sqlite"
    m = write(tmp_path, BASE.replace("emailAddress: beta@example.com", "emailAddress: beta@example.com\n"
                                     "    parent: acme\n    currency: EUR"))
    out = tmp_path / "plan.json"
    assert run_cli("plan", m, "--backend", f"local:{db}", "--out", str(out)).code == 0
    doc = json.loads(out.read_text())
    assert any(c["dependsOn"] for c in doc["changes"])

    def forward(doc: dict[str, Any]) -> None:
        doc["changes"][0]["dependsOn"] = [len(doc["changes"]) - 1]

    rewrite(out, forward)
    before = snapshot(db)
    result = apply_saved(db, out)
    assert result.code == 1 and "order (dependsOn)" in result.stderr
    assert snapshot(db) == before


def test_create_whose_code_now_exists_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "org.sqlite"
    m = write(tmp_path, BASE)
    out = tmp_path / "plan.json"
    assert run_cli("plan", m, "--backend", f"local:{db}", "--out", str(out)).code == 0
    with LocalBackend(db) as backend:
        backend.create(ACCOUNT, {"code": "beta", "name": "Someone else", "emailAddress": "x@example.com"})
    before = snapshot(db)
    result = apply_saved(db, out)
    assert result.code == 1 and "account beta: now exists" in result.stderr
    assert snapshot(db) == before


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda doc: doc["changes"][0].update(action="explode"), "changes/0/action"),
        (lambda doc: doc["changes"][0].update(kind="widget"), "changes/0/kind"),
        (lambda doc: doc.pop("safety"), "'safety' is a required property"),
        (lambda doc: doc["changes"][0].update(dependsOn=[-1]), "changes/0/dependsOn/0"),
        (lambda doc: doc.update(surprise=1), "Additional properties"),
    ],
)
def test_schema_violations_are_refused(saved: tuple[Path, Path, str], edit: Any, message: str) -> None:
    db, out, _ = saved
    rewrite(out, edit)
    result = apply_saved(db, out)
    assert result.code == 1 and "not a valid saved plan" in result.stderr and message in result.stderr
    assert "Traceback" not in result.output


@pytest.mark.parametrize("content", ["", "{", "[]", '{"formatVersion": 2}', "\x00\xff"])
def test_unreadable_plan_files_are_refused(tmp_path: Path, content: str) -> None:
    out = tmp_path / "plan.json"
    out.write_text(content, encoding="latin-1")
    result = run_cli("apply", "--plan", str(out), "--auto-approve", "--backend", f"local:{tmp_path / 'o.sqlite'}")
    assert result.code == 1 and "Traceback" not in result.output
    assert not (tmp_path / "o.sqlite").exists()  # refused before any backend was opened


def test_missing_plan_file_is_refused(tmp_path: Path) -> None:
    result = run_cli("apply", "--plan", str(tmp_path / "nope.json"), "--auto-approve")
    assert result.code == 1 and "cannot read the saved plan" in result.stderr


def test_fifo_plan_file_is_refused_at_once(tmp_path: Path) -> None:
    fifo = tmp_path / "plan.json"
    os.mkfifo(fifo)
    result = run_cli("apply", "--plan", str(fifo), "--auto-approve")
    assert result.code == 1 and "FIFO" in result.stderr


def test_checked_in_plan_schema_is_current() -> None:
    assert schema_main(["--check"]) == 0, "run: python -m reconciler.planfile"
