"""``${NAME}`` / ``${NAME:-default}`` expansion inside string values.

One set of manifests can then serve a staging and a production organization. The rules,
chosen to match what people know from the shell and docker-compose:

* ``${NAME}`` is replaced by the variable's value; an unset variable is an error that names
  the file and line (a silently empty value could rename an account in production).
* ``${NAME:-default}`` uses ``default`` when ``NAME`` is unset *or empty* (shell semantics).
* ``$${`` writes a literal ``${`` (the escape); a ``$`` not followed by ``{`` is left alone.
* Anything else starting with ``${`` (``${1X}``, an unclosed ``${NAME``) is an error rather
  than being copied through, because it is almost certainly a typo.
* Only string *values* expand, never mapping keys, and the result is always a string:
  ``daysBeforeBillDue: ${DAYS}`` is a type error (write the number, or keep it per file).
* Credential variables (``M3TER_API_SECRET``, ``M3TER_API_KEY``, ``M3TER_API_TOKEN``, any
  name ending in ``_SECRET``, ``_TOKEN``, ``_PASSWORD`` or ``_API_KEY``, in any case; see
  ``safetext.is_credential_name``) are never expanded, not even to reach their default:
  a manifest value is printed in plans, CI logs and pull-request comments, so a secret put
  there leaks. The reference is an error at its place; the value is never read.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from reconciler.manifest.positions import Pos, Problem
from reconciler.safetext import is_credential_name

_REFERENCE = re.compile(r"\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}|\$\{")


class EnvExpander:
    """Callable used by the YAML builder for each string value containing ``$``."""

    def __init__(self, environ: Mapping[str, str], problems: list[Problem]) -> None:
        self._environ = environ
        self._problems = problems

    def __call__(self, text: str, pos: Pos) -> str:
        if "${" not in text:
            return text
        return _REFERENCE.sub(lambda m: self._replace(m, pos), text)

    def _replace(self, match: re.Match[str], pos: Pos) -> str:
        whole = match.group(0)
        if whole == "$${":
            return "${"
        name, default = match.group(1), match.group(2)
        if name is not None and is_credential_name(name):
            self._problems.append(
                Problem(
                    f"${{{name}}}: {name} is a credential variable and is never expanded in manifests "
                    "(their values are shown in plans and CI logs); the backend reads credentials from "
                    "the environment itself",
                    *pos,
                )
            )
            return whole
        if name is None:
            self._problems.append(
                Problem(
                    "malformed variable reference: write ${NAME} or ${NAME:-default} "
                    "(NAME: letters, digits, '_'; not starting with a digit), or $${ for a literal ${",
                    *pos,
                )
            )
            return whole
        value = self._environ.get(name)
        if default is not None and not value:
            return default
        if value is None:
            self._problems.append(
                Problem(
                    f"environment variable {name} is not set (use ${{{name}:-default}} to give a default)",
                    *pos,
                )
            )
            return whole
        return value
