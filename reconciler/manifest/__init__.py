"""The manifest layer: YAML files -> validated desired objects, with every problem located.

``load_manifests`` reads and checks files offline; ``reference_diagnostics`` then checks the
codes the manifests refer to but do not declare (USD, a parent managed elsewhere), as
warnings offline or errors against a live organization's codes.

The implementation is imported lazily: importing it builds every kind's model, which commands
that never load manifests (``--help``, ``emulator``) need not pay for.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from reconciler.diagnostics import Diagnostic
    from reconciler.manifest.types import LoadResult, Manifests

__all__ = ["load_manifests", "reference_diagnostics"]


def load_manifests(paths: Sequence[str], environ: Mapping[str, str] | None = None) -> LoadResult:
    """Load files and directories (recursively, ``*.yaml``/``*.yml``, sorted) into Manifests;
    every problem becomes a located Diagnostic, never an exception. ``environ`` (default
    ``os.environ``) feeds ``${NAME}`` / ``${NAME:-default}`` expansion."""
    from reconciler.manifest.load import load_manifests as _load

    return _load(paths, environ)


def reference_diagnostics(manifests: Manifests, live_codes: Mapping[str, set[str]] | None) -> list[Diagnostic]:
    """Unresolved references: warnings offline (``live_codes`` None), errors when the live
    organization's codes (kind name -> codes) do not hold them either."""
    from reconciler.manifest.rules import reference_diagnostics as _refs

    return _refs(manifests, live_codes)
