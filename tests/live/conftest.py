"""Credentials for the live suite, read once when pytest loads this file.

``tests/conftest.py`` removes every ``M3TER_*`` variable around each test (so that no other
test can reach a real organization by accident); the live suite therefore reads them here,
at collection, before that fixture runs, and hands them to the CLI explicitly.

``pytest -m live`` without credentials must not pass quietly nor skip: the session stops
with a message saying what to set. A run that deselects the live tests (the default,
``-m "not live"`` in ``pyproject.toml``) never gets here with live tests selected.
"""

from __future__ import annotations

import os

import pytest

VARIABLES = ("M3TER_ORG_ID", "M3TER_API_KEY", "M3TER_API_SECRET", "M3TER_API_TOKEN", "M3TER_BASE_URL")
LIVE_ENV: dict[str, str] = {name: os.environ[name] for name in VARIABLES if os.environ.get(name, "").strip()}


def missing_credentials(env: dict[str, str]) -> str | None:
    """What is missing for a live run, as a sentence, or None when the run can go ahead."""
    if "M3TER_ORG_ID" not in env:
        return "M3TER_ORG_ID is not set"
    has_pair = "M3TER_API_KEY" in env and "M3TER_API_SECRET" in env
    if not has_pair and "M3TER_API_TOKEN" not in env:
        return "neither M3TER_API_KEY + M3TER_API_SECRET nor M3TER_API_TOKEN is set"
    return None


def pytest_collection_finish(session: pytest.Session) -> None:
    selected = [item for item in session.items if item.get_closest_marker("live") is not None]
    if not selected:
        return
    problem = missing_credentials(LIVE_ENV)
    if problem:
        pytest.exit(
            f"the live suite needs a sandbox m3ter organization: {problem}. Set M3TER_ORG_ID and "
            "M3TER_API_KEY + M3TER_API_SECRET (a service user's access key id and secret) or "
            "M3TER_API_TOKEN, optionally M3TER_BASE_URL, then run: python3 -m pytest -m live "
            "(see README, 'Live tests against a sandbox organization')",
            returncode=4,
        )
