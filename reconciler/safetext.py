"""Text from outside (live data, manifest values, API error messages, file names) made safe
to show to people, and credentials kept out of everything reconciler prints.

Why one module: a hostile or careless value (an account name holding ``ESC [ 2 J``, a
right-to-left override U+202E, a C1 CSI U+009B) can recolour, hide or reverse what a
reviewer approves. Each renderer escaping "the dangerous characters" its own way would miss
some, so every human-facing path calls :func:`safe` (or :func:`visible` for text that is
already in JSON notation) and nothing else decides what is dangerous.

The escape convention is the one JSON strings use, so text output, markdown, diagnostics
and ``show()``'d values read alike and a reader needs to learn one rule:

* a literal backslash is shown as ``\\\\`` (always), so ``\\u202e`` on screen can only mean
  the code point U+202E, never the six characters someone typed;
* tab, newline and carriage return are ``\\t``, ``\\n``, ``\\r`` (newline is kept as a real line
  break only where a caller asks for ``multiline``);
* every other escaped code point is ``\\u`` and four lower-case hex digits, or ``\\U`` and
  eight beyond the Basic Multilingual Plane (JSON would use a surrogate pair there; people
  read one code point better).

What is escaped: the Unicode general categories Cc (C0, DEL, C1 controls), Cf (format:
bidi embeddings, overrides and isolates, zero-width joiners and spaces, soft hyphen, BOM),
Zl and Zp (line and paragraph separators), Cn (unassigned in this Python's Unicode
database: a terminal may draw tomorrow's code points as anything), Co (private use: drawn
by whatever font is installed, so not reviewable) and Cs (lone surrogates, which reach us
from non-UTF-8 file names and cannot even be encoded for output). Spaces other than U+0020
(no-break space, ideographic space) and combining marks stay as they are: they are visible
as space or as a mark, and escaping them would make legitimate names in many languages
unreadable.

Credentials: :func:`is_credential_name` is the one definition of "a variable holding a
credential" (manifest ``${...}`` refuses those), and :func:`masking_output` wraps the CLI
entry point so that a credential's value never leaves the process on stdout or stderr,
whatever path carried it there.
"""

from __future__ import annotations

import functools
import io
import json
import os
import re
import sys
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from typing import ParamSpec, TextIO, TypeVar

ESCAPED_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Cn", "Co", "Cs"})
_NAMED = {"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"}


def _escape(ch: str) -> str:
    named = _NAMED.get(ch)
    if named is not None:
        return named
    point = ord(ch)
    return f"\\u{point:04x}" if point <= 0xFFFF else f"\\U{point:08x}"


def _needs_escape(ch: str) -> bool:
    # str.isprintable() is False exactly for the escaped categories plus Zs other than
    # U+0020, so the (slower) category lookup runs only for the rare non-printable ones.
    return not ch.isprintable() and unicodedata.category(ch) in ESCAPED_CATEGORIES


def safe(text: str, *, multiline: bool = False) -> str:
    """``text`` as people should see it: invisible and control code points as escapes,
    backslashes doubled. ``multiline`` keeps newlines as line breaks (for messages written
    over several lines on purpose), and indents every continuation line that is not
    indented already, so a value holding a newline cannot forge a line of its own (an
    ``error:`` that seems to start a new message); otherwise the value stays on one line."""
    if text.isprintable() and "\\" not in text:
        return text  # the common case costs one C-level scan
    out: list[str] = []
    for ch in text:
        if ch == "\n":
            out.append(ch if multiline else "\\n")
        elif ch == "\\" or _needs_escape(ch):
            out.append(_escape(ch))
        else:
            out.append(ch)
    shown = "".join(out)
    return _CONTINUATION.sub("\n  ", shown) if multiline else shown


_CONTINUATION = re.compile(r"\n(?=[^\s])")


def visible(encoded: str, *, multiline: bool = False) -> str:
    """Escape invisible code points in text whose backslashes are escapes already and must
    not be doubled again: ``show()``'s JSON (which stays valid JSON for every BMP code point,
    ``\\u202e`` being a JSON escape), or a message from a library that quotes values with
    ``repr`` (click). ``multiline`` as for :func:`safe`."""
    if encoded.isprintable():
        return encoded
    shown = "".join(
        ch if ch == "\n" and multiline else _escape(ch) if _needs_escape(ch) else ch for ch in encoded
    )
    return _CONTINUATION.sub("\n  ", shown) if multiline else shown


def quote(text: str) -> str:
    """``'text'`` (``"text"`` when it holds a single quote) for use inside a message, left
    unescaped because the message itself is shown through :func:`safe`; ``repr`` would
    escape first, and escaping twice would show a literal backslash that is not there."""
    mark = '"' if "'" in text and '"' not in text else "'"
    return f"{mark}{text}{mark}"


_MARKDOWN_SPECIAL = str.maketrans({c: "\\" + c for c in "\\`*_[]|~"})


def markdown_inert(shown: str) -> str:
    """Text that is already safe made inert in markdown and HTML: punctuation that starts
    emphasis, code, links, tables or strike-through is backslash-escaped, and ``<``, ``>``,
    ``&`` become entities. User text never starts a line in our markdown, so block markers
    (#, -, +, >) need no escape."""
    import html  # only markdown needs it; kept off the CLI's import path

    return html.escape(shown.translate(_MARKDOWN_SPECIAL), quote=False)


# -- credentials ------------------------------------------------------------------------------

CREDENTIAL_VARIABLES = frozenset({"M3TER_API_SECRET", "M3TER_API_KEY", "M3TER_API_TOKEN"})
CREDENTIAL_SUFFIXES = ("_SECRET", "_TOKEN", "_PASSWORD", "_API_KEY")
CREDENTIAL_WORDS = frozenset({"SECRET", "TOKEN", "PASSWORD"})
# Shorter values are not masked: they occur in ordinary output by chance (``true``, a
# version number, a code), and masking them would corrupt plans and JSON while protecting
# nothing worth the name.
MIN_MASKED_LENGTH = 8


def is_credential_name(name: str) -> bool:
    """Whether environment variable ``name`` holds a credential (compared case-insensitively:
    ``db_password`` is as secret as ``DB_PASSWORD``)."""
    upper = name.upper()
    return upper in CREDENTIAL_VARIABLES or upper in CREDENTIAL_WORDS or upper.endswith(CREDENTIAL_SUFFIXES)


def _spellings(value: str) -> set[str]:
    """The ways a value can appear in our output: raw, JSON-escaped (both ASCII modes),
    ``repr``'d, through :func:`safe`, as a ``show()``'d JSON literal, and in markdown."""
    as_json = json.dumps(value, ensure_ascii=False)[1:-1]
    forms = {
        value,
        as_json,
        json.dumps(value, ensure_ascii=True)[1:-1],
        repr(value)[1:-1],
        safe(value),
        visible(as_json),
    }
    forms |= {markdown_inert(f) for f in list(forms)}
    return {f for f in forms if len(f) >= MIN_MASKED_LENGTH}


def secret_spellings(environ: Mapping[str, str]) -> list[tuple[str, str]]:
    """``(spelling, replacement)`` for every credential value in ``environ``, longest first so
    that a secret containing another is masked whole."""
    pairs: dict[str, str] = {}
    for name, value in environ.items():
        if value and len(value) >= MIN_MASKED_LENGTH and is_credential_name(name):
            label = f"(secret {name})" if _PLAIN_NAME.fullmatch(name) else "(secret)"
            for spelling in _spellings(value):
                pairs.setdefault(spelling, label)
    return sorted(pairs.items(), key=lambda p: (-len(p[0]), p[0]))


_PLAIN_NAME = re.compile(r"[A-Za-z0-9_]+")  # a name that cannot break JSON or markdown
_CUT_MARKS = ("…", "...")  # how show() and messages shorten long values


def mask(text: str, secrets: Sequence[tuple[str, str]]) -> str:
    """``text`` with every spelling of a secret replaced (the replacement holds no quote or
    backslash, so a masked JSON document is still valid JSON). A value shortened for display
    (``show()`` cuts at 120 characters) can show a secret's beginning followed by a cut
    mark: that prefix is masked too, when it is at least ``MIN_MASKED_LENGTH`` long."""
    for spelling, replacement in secrets:
        if spelling in text:
            text = text.replace(spelling, replacement)
        head = spelling[:MIN_MASKED_LENGTH]
        start = text.find(head)
        while start != -1:
            for cut in _CUT_MARKS:
                end = text.find(cut, start)
                if end != -1 and spelling.startswith(text[start:end]):
                    text = f"{text[:start]}{replacement}{cut}{text[end + len(cut):]}"
                    break
            start = text.find(head, start + 1)
    return text


class MaskingWriter(io.TextIOBase):
    """A text stream that masks secrets in each write before passing it on.

    Every line reconciler prints is one ``write`` (``click.echo`` writes message and newline
    together; the JSON plan is one echo), so a secret is never split across two writes.
    It has no ``buffer``: click would otherwise write bytes past the masking."""

    def __init__(self, target: TextIO, secrets: Sequence[tuple[str, str]]) -> None:
        super().__init__()
        self._target = target
        self._secrets = secrets

    def write(self, s: str) -> int:
        if not isinstance(s, str):  # click probes with b"" to find binary streams
            raise TypeError(f"write() argument must be str, not {type(s).__name__}")
        text = mask(s, self._secrets)
        try:
            self._target.write(text)
        except UnicodeEncodeError:  # a terminal that cannot show some characters
            encoding = getattr(self._target, "encoding", None) or "ascii"
            self._target.write(text.encode(encoding, "backslashreplace").decode(encoding))
        return len(s)

    def flush(self) -> None:
        self._target.flush()

    def isatty(self) -> bool:
        return self._target.isatty()

    def fileno(self) -> int:
        return self._target.fileno()

    def writable(self) -> bool:
        return True

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self._target, "encoding", None) or "utf-8"

    @property
    def errors(self) -> str | None:  # type: ignore[override]
        return getattr(self._target, "errors", None)


P = ParamSpec("P")
R = TypeVar("R")


def masking_output(func: Callable[P, R]) -> Callable[P, R]:
    """Run ``func`` with stdout and stderr masking the credentials in the environment.

    The second line of defence behind the refusal to expand credential variables: whatever
    route a secret takes (a live value equal to it, an API error echoing it, a verbose
    trace), it is masked on the way out. With no credential set, nothing is wrapped. When an
    unexpected exception escapes, the streams stay wrapped so that the interpreter's
    traceback is masked too (the process is ending; a test's redirect restores its own)."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        secrets = secret_spellings(os.environ)
        if not secrets:
            return func(*args, **kwargs)
        saved = sys.stdout, sys.stderr
        sys.stdout = MaskingWriter(saved[0], secrets)
        sys.stderr = MaskingWriter(saved[1], secrets)
        try:
            result = func(*args, **kwargs)
        except Exception:
            raise
        except BaseException:  # SystemExit (every normal exit), KeyboardInterrupt
            sys.stdout, sys.stderr = saved
            raise
        sys.stdout, sys.stderr = saved
        return result

    return wrapper
