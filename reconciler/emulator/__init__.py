"""A local stand-in for the m3ter Config API subset, backed by :mod:`reconciler.store`.

Optional extra (``m3ter-reconciler[emulator]``): starlette and uvicorn are imported only by
``reconciler.emulator.app``, ``.server`` (lazily) and ``.testing``, never by this package.

* ``reconciler.emulator.server.serve(config)`` - blocking server for ``reconciler emulator``.
* ``reconciler.emulator.testing.running_emulator(config)`` - background thread for tests.
* ``reconciler.emulator.testing.spawned_emulator(config)`` - a child process.
"""

from reconciler.emulator.config import DEMO_ORG_ID, EmulatorConfig

__all__ = ["DEMO_ORG_ID", "EmulatorConfig"]
