"""reconciler: configuration as code for the m3ter usage-billing platform.

Distributed as ``m3ter-reconciler`` (``reconciler`` on PyPI is an unrelated project); the
import name and the command are ``reconciler``. Not an official m3ter product.
"""

# The one place the version is written: pyproject.toml reads it ([tool.setuptools.dynamic])
# and ``reconciler --version`` prints it.
__version__ = "0.1.0"
