"""Backend selection from ``--backend`` / ``RECONCILER_BACKEND``: ``local[:PATH]`` or ``m3ter[:BASE_URL]``."""

from __future__ import annotations

from dataclasses import dataclass

from reconciler.backends.base import Backend, BackendError

DEFAULT_BACKEND = "local"
DEFAULT_LOCAL_PATH = ".reconciler/local.sqlite"


@dataclass(frozen=True, slots=True)
class BackendOptions:
    rate_limit: float = 50.0
    parallelism: int = 8
    verbose: bool = False


def open_backend(spec: str | None, options: BackendOptions | None = None) -> Backend:
    """Build the backend a ``--backend`` value names; the message says what is accepted."""
    options = options or BackendOptions()
    spec = (spec or DEFAULT_BACKEND).strip()
    scheme, _, rest = spec.partition(":")
    if scheme == "local":
        from reconciler.backends.local import LocalBackend

        return LocalBackend(rest or DEFAULT_LOCAL_PATH)
    if scheme == "m3ter":
        from reconciler.backends.m3ter import M3terBackend

        return M3terBackend.from_environment(base_url=rest or None, options=options)
    raise BackendError(
        f"unknown backend {spec!r}: use 'local[:PATH]' (default {DEFAULT_LOCAL_PATH}) or 'm3ter[:BASE_URL]'"
    )
