"""The fast path for reading a manifest file: yaml-rs (a Rust YAML parser) when it is sure to
give exactly the values of the event builder in ``yaml_events``, else nothing.

Why: building values from libyaml's event stream in Python costs about ten times what a Rust
parser takes for the same file (at 100k accounts, ~15 s against ~1 s), and for a large,
clean manifest nothing but the values is needed. Positions are needed only when a message
names a place, and ``locate`` finds them then by re-reading the file with libyaml.

Why it is safe: yaml-rs reads YAML 1.2 and the event builder reads YAML 1.1 as PyYAML's
SafeLoader does (minus timestamps). The two differ only where a file says something this
module refuses to send to yaml-rs. :func:`fast_eligible` returns False (use the event
builder, with its exact ``FILE:LINE:COL`` messages) for any text with

* a plain scalar that either reading might take for a number, boolean or null and that is not
  a plain decimal (``12``, ``-3``, ``1.08``): YAML 1.1 octals (``0777``), sexagesimals
  (``1:30``), ``yes``/``no``/``on``/``off``, exponents without a dot (``1e5``), ``+1``,
  ``.5``, ``.inf``, underscores, integers of more than 18 digits...; and any key that reads as
  a number, boolean or null (``1: x`` and ``1.0: y`` are one key to Python);
* a tag (``!``), an anchor (``&``) or alias (``*``) at the start of a node, a merge key
  (``<<``), a complex key (``? ``), a block scalar (``|``, ``>``), a directive (``%``), more
  than one document, a ``${`` (expansion reports positions), a tab, a backslash (escapes), and
  characters that YAML 1.1 and 1.2 read differently or refuse (C0/C1 controls, NEL, U+2028/9,
  BOM, surrogates, U+FFFE/F).

Anything yaml-rs itself refuses (syntax errors, duplicate keys) goes to the event builder too.
``tests/test_yaml_golden.py`` holds both readings side by side over every scalar form and the
refused inputs, and a property test checks that any text this gate lets through reads alike.
"""

from __future__ import annotations

import re
from typing import Any

# Where a plain scalar ends: the end of the line, a comment, a flow indicator, or ``: ``.
_END = r"[ \t]*(?:$|[,\]}#]|:(?:[ \t]|$))"
# Plain decimals that both readings take for the same int or float.
_SIMPLE = r"-?(?:0|[1-9][0-9]{0,17})(?:\.[0-9]+)?"
# A superset of what either reading may take for a number.
_NUMBER = r"""(?:(?=[-+]?\.?[0-9_])[-+]?[0-9_]*\.?[0-9_]*(?:[eE][-+]?[0-9_]+)?
  | [-+]?0[xXoObB][0-9a-fA-F_]*
  | [-+]?[0-9][0-9_]*(?::[0-9_]+)+(?:\.[0-9_]*)?
  | [-+]?\.(?:inf|Inf|INF|nan|NaN|NAN))"""
_BOOL11 = r"(?:yes|Yes|YES|no|No|NO|on|On|ON|off|Off|OFF)"  # booleans in YAML 1.1 only
_CORE = r"(?:true|True|TRUE|false|False|FALSE|null|Null|NULL|~)"
# A node start that the two readings may take differently: a number that is not a plain
# decimal, a YAML 1.1 boolean, a tag, anchor or alias, a block scalar, a complex key.
_BAD = rf"""(?:(?!{_SIMPLE}{_END}){_NUMBER}{_END}
  | {_BOOL11}{_END}
  | [!&*]
  | [|>][-+0-9]*[ \t]*(?:\#.*)?$
  | \?(?:[ \t]|$))"""
# A key that is not a string in one of the readings (``1`` and ``1.0``, or ``true`` and ``1``,
# are one key to Python), or an empty key.
_BAD_KEY = rf"(?:(?:{_NUMBER}|{_CORE}|{_BOOL11})[ \t]*)?:(?:[ \t]|$)"

# Each pattern starts with a character or literal that the regular expression engine finds
# fast; together they see every place where a node can start (after ``: ``, at the start of a
# line after indentation and ``- ``, after a flow indicator). About 20 ms per 1 MB.
_RARE = re.compile(r"[\t\\\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029\ufeff\ud800-\udfff\ufffe\uffff]")
# The same for ASCII text (``str.isascii`` is nearly free): a small class searches faster.
_RARE_ASCII = re.compile(r"[\t\\\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
# Every other ASCII byte, for ``_has_rare_ascii``: deleting them leaves exactly the bytes that
# ``_RARE_ASCII`` finds (bytes.translate is about five times faster than the search).
_NOT_RARE_ASCII = bytes(b for b in range(256) if _RARE_ASCII.match(chr(b)) is None)


def _has_rare_ascii(text: str) -> bool:
    """``_RARE_ASCII.search(text) is not None`` for an ASCII ``text``, faster."""
    return bool(text.encode("ascii").translate(None, _NOT_RARE_ASCII))

_AFTER_COLON = re.compile(rf":\ +(?=[-+.0-9_!&*|>?yYnNoO]){_BAD}", re.M | re.X)
# Where a node can start on a line: after the indentation and any ``- ``. The indentation and
# the dashes are taken whole, never given back (``*+``, ``(?>...)``): none of the alternatives
# can start at a space, a tab or a ``-`` followed by one, so retrying there found nothing and
# cost half of this search. The second look-ahead holds the alternatives' possible first
# characters (the same as the first).
_NODE_FIRST = "[-+.0-9_!&*|>?:yYnNoOtTfF~%]"
_LINE_START = re.compile(
    rf"\n[\ \t]*+(?={_NODE_FIRST})(?>(?:-[\ \t]+)*)(?={_NODE_FIRST})"
    rf"(?:{_BAD}|{_BAD_KEY}|%|\.\.\.(?:[ \t]|$))",
    re.M | re.X,
)
# The pattern before ``_LINE_START`` was made faster: a test holds the two to the same verdicts.
_LINE_START_REFERENCE = (
    rf"\n[\ \t]*(?=[-+.0-9_!&*|>?:yYnNoOtTfF~%])(?:-[\ \t]+)*(?:{_BAD}|{_BAD_KEY}|%|\.\.\.(?:[ \t]|$))"
)
_AFTER_FLOW = re.compile(rf"[\[{{,][\ \t]*(?=[-+.0-9_!&*|>?:yYnNoOtTfF~])(?:{_BAD}|{_BAD_KEY}|:)", re.M | re.X)
_COLON_IN_WORD = re.compile(r":[^\s]")
# A one-line quoted scalar where a node starts (line start after indentation and ``- ``,
# after ``: ``, after a flow indicator): both readings take it as the same string, so a ':'
# inside it (a date-time such as '2024-01-01T00:00:00Z') says nothing about plain scalars in
# flow collections. Never matched inside a plain scalar: a plain scalar cannot hold ': ' and,
# in a flow collection, cannot hold ',', '[' or '{'; '- ' counts only at the start of a line.
# The usual such line, ``  startDate: "2025-01-01T00:00:00Z"``: a plain key and one quoted value.
_KEY_QUOTED_LINE = re.compile(r"""[ \t]*(?:-[ \t]+)*[A-Za-z0-9_]+:[ \t]+(?:"[^"\n]*"|'[^'\n]*')[ \t]*""")
_QUOTED_NODE = re.compile(
    r"""((?:^[ \t]*(?:-[ \t]+)*|:[ \t]+|[\[{,][ \t]*))(?:"[^"\n]*"|'(?:[^'\n]|'')*')""", re.M
)
# ``---`` may open the one document, after nothing but comments and blank lines.
_DOC_START = re.compile(r"^---(?:[ \t]|$)", re.M)
_LEADING_DOC_START = re.compile(r"\A(?:[ \t]*(?:\#[^\n]*)?\n)*---[ \t]*(?:\#[^\n]*)?$", re.M)

_loads: Any = None


def _parser() -> Any:
    """yaml-rs, imported on first use (``reconciler --help`` never pays for it)."""
    global _loads
    if _loads is None:
        try:
            import yaml_rs
        except ImportError:  # not installed: the event builder reads everything
            _loads = False
        else:
            _loads = yaml_rs.loads
    return _loads


def fast_eligible(text: str) -> bool:
    """True when yaml-rs reads ``text`` exactly as the event builder would (see module doc)."""
    if "${" in text or "<<" in text:
        return False
    if _has_rare_ascii(text) if text.isascii() else _RARE.search(text) is not None:
        return False
    first_line = "\n" + text[: text.find("\n") + 1 or len(text)]
    if _LINE_START.search(first_line) or _LINE_START.search(text) or _AFTER_COLON.search(text):
        return False
    if ("[" in text or "{" in text) and (_AFTER_FLOW.search(text) or _colon_in_plain(text)):
        return False  # flow collections: YAML 1.1 refuses a ':' inside a plain scalar there
    if "---" not in text:
        return True
    starts = _DOC_START.findall(text)
    return not starts or (len(starts) == 1 and _LEADING_DOC_START.match(text) is not None)


def _colon_in_plain(text: str) -> bool:
    """A ':' followed by a non-space outside one-line quoted scalars (which both readings take
    alike): where YAML 1.1 and 1.2 may part ways inside a flow collection. Only the lines
    holding such a ':' are looked at again (a catalog file has thousands of quoted dates; a
    substitution over the whole text cost more than the rest of the gate)."""
    checked_to = -1
    for match in _COLON_IN_WORD.finditer(text):
        at = match.start()
        if at < checked_to:
            continue  # a line already found clean
        start = text.rfind("\n", 0, at) + 1
        end = text.find("\n", at)
        if end < 0:
            end = len(text)
        line = text[start:end]
        if _KEY_QUOTED_LINE.fullmatch(line) is None and _COLON_IN_WORD.search(
                _QUOTED_NODE.sub(r"\1''", line)) is not None:
            return True
        checked_to = end
    return False


_NOTHING = object()


def fast_load(text: str) -> Any:
    """The one document's value, or ``NOT_FAST`` when the event builder must read ``text``
    (the gate refused it, yaml-rs is missing, or yaml-rs refused the text: the builder then
    reports the problem with its position). ``None`` for a file without a document value."""
    loads = _parser()
    if not loads or not fast_eligible(text):
        return NOT_FAST
    try:
        return loads(text, parse_datetime=False)
    except Exception:  # syntax error, duplicate key, anything: the builder explains it
        return NOT_FAST


NOT_FAST: Any = _NOTHING
