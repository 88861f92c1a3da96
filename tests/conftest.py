"""Shared test helpers: run the CLI in-process like a user would, isolated from the
developer's environment (no CI variable, no real credentials, a private local org)."""

from __future__ import annotations

import contextlib
import io
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

from reconciler.cli import main

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples" / "org"
SHARED = REPO.parent / "shared"


@dataclass
class CliResult:
    code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def run_cli(*args: str, env: Mapping[str, str] | None = None) -> CliResult:
    """Run ``reconciler ARGS`` in this process; stdout and stderr kept apart, as a shell would."""
    out, err = io.StringIO(), io.StringIO()
    saved = dict(os.environ)
    os.environ.update(env or {})
    code = 0
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                main(list(args))
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return CliResult(code, out.getvalue(), err.getvalue())


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    for name in (
        "CI",
        "NO_COLOR",
        "RECONCILER_STORE_FAIL",
        "M3TER_API_KEY",
        "M3TER_API_SECRET",
        "M3TER_API_TOKEN",
        "M3TER_ORG_ID",
        "M3TER_BASE_URL",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("RECONCILER_BACKEND", f"local:{tmp_path / 'default-org.sqlite'}")
    yield


@pytest.fixture
def local_backend(tmp_path: Path) -> str:
    """A ``--backend`` value naming a fresh local organization for this test."""
    return f"local:{tmp_path / 'org.sqlite'}"
