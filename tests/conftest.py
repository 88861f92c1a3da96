"""Shared test helpers: run the CLI in-process like a user would, isolated from the
developer's environment (no CI variable, no real credentials, a private local org)."""

from __future__ import annotations

import contextlib
import io
import os
import textwrap
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, settings

from reconciler.cli import main

# Hypothesis profiles (select with --hypothesis-profile=NAME; ``ci`` is the default).
# ``ci``: derandomized, so every run of the suite tries the same examples and a failure in CI
# reproduces on a laptop; few enough examples that the property suite stays well under the
# test budget on a 2-core machine. Deadlines are off because an example seeds an SQLite
# organization and applies a plan (tens of milliseconds, with outliers on a loaded machine),
# and a flaky deadline error would hide the real counterexample. ``too_slow`` is suppressed
# for the same reason; ``data_too_large`` and ``filter_too_much`` stay on, so a strategy that
# starts rejecting most of what it draws is reported rather than silently testing less.
# ``ci`` does not shrink: a failing example is printed as found (an organization and its
# manifests, readable as they are), because shrinking costs minutes per failing property on
# this machine; re-run with ``--hypothesis-profile=dev`` to get it shrunk.
# ``dev``: ``ci`` with shrinking, for reading a counterexample.
# ``deep``: the same properties with many more examples and random seeds, for a long run
# before a release or after changing the planner.
_NO_SHRINK = (Phase.explicit, Phase.reuse, Phase.generate, Phase.target)
settings.register_profile(
    "ci",
    derandomize=True,
    max_examples=75,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    phases=_NO_SHRINK,
    print_blob=True,
)
settings.register_profile("dev", settings.get_profile("ci"), phases=tuple(Phase))
settings.register_profile(
    "deep",
    max_examples=1500,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    print_blob=True,
)


def pytest_configure(config: pytest.Config) -> None:
    """``ci`` unless ``--hypothesis-profile`` chose another. Not a module-level load: test
    modules import ``tests.conftest`` (for ``run_cli``), which would run it again after
    Hypothesis applied the command line and silently put ``ci`` back."""
    if not config.getoption("hypothesis_profile", default=None):
        settings.load_profile("ci")


REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples" / "org"
SHARED = REPO.parent / "shared"


def write_manifest(directory: Path, name: str, text: str) -> Path:
    """A manifest file from an indented literal (dedented, leading newline dropped)."""
    path = directory / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


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
