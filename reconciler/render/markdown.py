"""Markdown for a pull-request comment; everything users typed is escaped so a ``|`` or
``<`` in an account name cannot break a table or inject HTML, and control or invisible
characters (an ESC sequence in a custom field name, a bidi override in a code) show as
escapes rather than acting on the reader's screen.

Size (issue 14 item 5): GitHub refuses comment bodies over 65,536 characters, and a wall of
rows is unreadable anyway. A plan of more than :data:`LONG_PLAN` changes shows a count per
kind and each kind's changes collapsed in ``<details>``. A plan that still would not fit in
:data:`COMMENT_LIMIT` characters (headroom left for the comment's own header) shows the
counts, as many whole rows as fit — a row is one line and is never cut — and says plainly
that the plan was too long, where the full plan is, and how many changes are not shown.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from reconciler import kinds
from reconciler.render.values import MARKERS, partial_notice, show, summary_line
from reconciler.safetext import markdown_inert, safe

COMMENT_LIMIT = 60_000
LONG_PLAN = 25  # changes; beyond this each kind's changes are collapsed
# Room always kept for what closes the comment: the open <details> tags and the notices.
_TAIL = 1_200
_UNMANAGED_SHOWN = 200
_HEADER = ["| | action | kind | key | changes |", "|---|---|---|---|---|"]


def escape(text: str) -> str:
    """Untrusted text for markdown: made visible (``safe``: controls and newlines as
    escapes, so a table row stays one line) and then inert as markdown and HTML."""
    return markdown_inert(safe(text))


def value(v: Any) -> str:
    """A value for markdown: ``show()`` is already safe, so only markdown escaping is added
    (``escape`` would double the backslashes of its JSON escapes)."""
    return markdown_inert(show(v))


class _TooLong(Exception):
    """The whole plan does not fit a comment; rendered again within the budget."""


class _Out:
    """Lines of the comment, within an optional budget of characters. ``add`` refuses a
    line that would leave less than ``keep`` characters for what must still follow."""

    def __init__(self, budget: int | None, *, give_up_over: int | None = None) -> None:
        self.lines: list[str] = []
        self.size = 0
        self.budget = budget
        self.give_up_over = give_up_over

    def fits(self, text: str, keep: int = 0) -> bool:
        return self.budget is None or self.size + len(text) + 1 + keep <= self.budget

    def add(self, line: str, keep: int = _TAIL) -> bool:
        if not self.fits(line, keep):
            return False
        self.put(line)
        return True

    def put(self, line: str) -> None:
        """A line that was budgeted for (closing tags, notices)."""
        self.lines.append(line)
        self.size += len(line) + 1
        if self.give_up_over is not None and self.size > self.give_up_over:
            raise _TooLong  # the unbudgeted try is over the limit: stop holding rows

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


def render_markdown(doc: dict[str, Any], *, title: str = "reconciler plan", limit: int = COMMENT_LIMIT) -> str:
    collapse = len(doc["changes"]) > LONG_PLAN
    try:
        return _render(doc, title, collapse=collapse, budget=None, give_up_over=limit)
    except _TooLong:
        return _render(doc, title, collapse=True, budget=limit)


def _row(change: dict[str, Any]) -> str:
    """One change as one table row (one line: every piece is escaped, so no newline)."""
    kind = kinds.BY_NAME.get(str(change["kind"]))
    if kind is not None and kind.singleton:
        kind_cell, key_cell = escape(kind.title), "—"
    else:
        kind_cell, key_cell = escape(str(change["kind"])), escape(str(change["key"]))
    entries = [_entry(d) for d in change["diff"]]
    entries += [f":warning: {escape(w)}" for w in change["warnings"]]
    return (f"| {escape(MARKERS[change['action']])} | {change['action']} | {kind_cell} | {key_cell} "
            f"| {'<br>'.join(entries) or '—'} |")


def _entry(d: dict[str, Any]) -> str:
    path = escape(d["path"])
    if d["before"] is None:
        return f"+ {path}: {value(d['after'])}"
    if d["after"] is None:
        return f"- {path}: {value(d['before'])}"
    return f"\\~ {path}: {value(d['before'])} → {value(d['after'])}"


def _counts(changes: Iterable[dict[str, Any]]) -> str:
    counts: dict[str, int] = {}
    for c in changes:
        counts[c["action"]] = counts.get(c["action"], 0) + 1
    return ", ".join(f"{counts[a]:,} to {a}" for a in MARKERS if a in counts)


def _groups(changes: Sequence[dict[str, Any]]) -> dict[str, list[int]]:
    """Indexes of the changes by kind, kinds in the order they first appear (apply order),
    changes in plan order: indexes, so a 100k-change plan is not held as dicts here."""
    groups: dict[str, list[int]] = {}
    for i, change in enumerate(changes):
        groups.setdefault(str(change["kind"]), []).append(i)
    return groups


def _kind_title(name: str) -> str:
    kind = kinds.BY_NAME.get(name)
    return escape(kind.title if kind is not None else name)


def _plural(n: int, word: str, words: str = "") -> str:
    return f"{n:,} {word if n == 1 else (words or word + 's')}"


def _render(doc: dict[str, Any], title: str, *, collapse: bool, budget: int | None,
            give_up_over: int | None = None) -> str:
    out = _Out(budget, give_up_over=give_up_over)
    changes: Sequence[dict[str, Any]] = doc["changes"]
    unmanaged = doc["unmanaged"]
    warnings = doc.get("warnings", [])
    # Rows stop early enough for the warnings and the unmanaged list to follow (up to a
    # fifth of the comment): a reviewer needs them more than the 500th row.
    rest = sum(len(escape(w)) + 16 for w in warnings) + sum(
        len(escape(u["kind"])) + len(escape(u["key"])) + 4 for u in unmanaged[:_UNMANAGED_SHOWN])
    keep_rows = _TAIL + (min(rest + 200, COMMENT_LIMIT // 5) if budget is not None else 0)
    for line in (f"### {escape(title)}", "",
                 f"Organization {escape(str(doc['organization']))} on {escape(str(doc['backend']))}", ""):
        out.put(line)
    if doc.get("only"):
        out.put(f"> :warning: **{markdown_inert(partial_notice(doc['only']))}**")
        out.put("")
    totals = summary_line(doc['summary'], uncounted=doc.get('uncounted'), read_by_code=doc.get('readByCode'))
    out.put(f"**{escape(totals)}**")
    out.put("")
    if doc.get("digest"):
        out.put(f"Plan digest: `{escape(str(doc['digest']))}`")
        out.put("")
    notice_at = len(out.lines)  # where the too-long notice goes, once its numbers are known
    problems = [f"> :no_entry: **Cannot succeed:** {escape(b)}" for b in doc.get("blockers", [])]
    problems += [f"> :no_entry: **Refused:** {escape(r)}" for r in doc.get("refusals", [])]
    problems_shown = 0
    for line in problems:
        if not out.add(line):
            break
        problems_shown += 1
    if problems:
        out.put("")

    shown = 0
    if not changes:
        out.put("No changes. The organization matches the manifests.")
    elif not collapse:
        out.put(_HEADER[0])
        out.put(_HEADER[1])
        for change in changes:
            if not out.add(_row(change), keep_rows):
                break
            shown += 1
    else:
        groups = _groups(changes)
        out.put("| kind | changes |")
        out.put("|---|---|")
        counts = {name: _counts(changes[i] for i in group) for name, group in groups.items()}
        for name in groups:
            out.put(f"| {_kind_title(name)} | {counts[name]} |")
        out.put("")
        for name, group in groups.items():
            opening = [f"<details><summary><b>{_kind_title(name)}</b>: {len(group):,} "
                       f"change{'s' if len(group) != 1 else ''} ({counts[name]})</summary>", "", *_HEADER]
            first = _row(changes[group[0]])
            if not out.fits("\n".join([*opening, first]), keep_rows):
                continue  # not even one row of this kind fits: counted as not shown
            for line in opening:
                out.put(line)
            for i in group:
                if not out.add(_row(changes[i]), keep_rows):
                    break
                shown += 1
            out.put("")
            out.put("</details>")
            out.put("")

    unmanaged_shown = 0
    if unmanaged and out.fits("", _TAIL + 200):
        out.put("")
        out.put(f"<details><summary>{len(unmanaged):,} unmanaged live objects</summary>")
        out.put("")
        listed = 0
        for item in unmanaged[:_UNMANAGED_SHOWN]:
            if not out.add(f"- {escape(item['kind'])} {escape(item['key'])}"):
                break
            listed += 1
        unmanaged_shown = len(unmanaged)  # the rest is counted on the next line
        if listed < len(unmanaged):
            out.put(f"- ... and {len(unmanaged) - listed:,} more (see the JSON plan)")
        out.put("")
        out.put("</details>")
    warnings_shown = 0
    if warnings:
        if out.lines[-1]:
            out.put("")
        for warning in warnings:
            if not out.add(f"- :warning: {escape(warning)}"):
                break
            warnings_shown += 1
    left_out = [(len(changes) - shown, "change", ""),
                (len(problems) - problems_shown, "blocker or refusal", "blockers or refusals"),
                (len(warnings) - warnings_shown, "warning", ""),
                (len(unmanaged) - unmanaged_shown, "unmanaged object", "")]
    missing = [_plural(n, word, words) for n, word, words in left_out if n]
    if missing:
        notice = (f"> :warning: **Plan too long for a comment**: {_plural(len(changes), 'change')}; not shown here: "
                  f"{', '.join(missing)}. See the saved plan artifact (`plan --out`), or run `reconciler plan` "
                  "locally for the full plan.")
        out.lines[notice_at:notice_at] = [notice, ""]
        out.put("")
        out.put(notice)
    return out.text()
