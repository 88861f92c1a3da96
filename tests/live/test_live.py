"""``pytest -m live``: the whole workflow against a real m3ter organization (a sandbox).

Deselected by default (``-m "not live"`` in pyproject.toml). With the marker selected and no
credentials, ``tests/live/conftest.py`` stops the session with a message; it never skips.
It only ever writes objects whose codes start with a prefix unique to the run.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.live.conftest import LIVE_ENV
from tests.live.flow import new_prefix, run_flow

pytestmark = pytest.mark.live


def test_plan_apply_drift_export_cleanup(tmp_path: Path) -> None:
    run_flow(LIVE_ENV, tmp_path, new_prefix())
