"""Untrusted text is shown safely: control, bidi and other invisible code points from live
data, manifests, file names and API errors reach people as visible escapes (text, markdown,
drift, diagnostics, errors), while JSON keeps the exact values."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from reconciler import kinds
from reconciler.backends.local import LocalBackend
from reconciler.safetext import quote, safe, visible
from tests.conftest import run_cli
from tests.test_e2e_local import write

ESC = "\x1b"
CSI = "\x9b"  # C1 control sequence introducer: a terminal reads it like ESC [
RLO = "\u202e"  # right-to-left override
ISOLATES = "\u2066\u2067\u2068\u2069"  # LRI, RLI, FSI, PDI
HOSTILE = (ESC, CSI, RLO, *ISOLATES, "\x7f", "\u200b", "\u2028")


def assert_no_raw_controls(text: str) -> None:
    """Nothing in ``text`` can act on a terminal or reorder a line."""
    for ch in HOSTILE:
        assert ch not in text, f"raw U+{ord(ch):04X} reached people: {text!r}"


# -- the function --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("Acme Corp", "Acme Corp"),
        ("café \u00e0 東京", "café \u00e0 東京"),  # letters of every script stay readable
        ("red\x1b[31m", "red\\u001b[31m"),
        ("\x9b2J", "\\u009b2J"),
        ("abc\u202edef", "abc\\u202edef"),
        ("\u2066x\u2069", "\\u2066x\\u2069"),
        ("del\x7f", "del\\u007f"),
        ("zero\u200bwidth\ufeff", "zero\\u200bwidth\\ufeff"),
        ("line\u2028para\u2029", "line\\u2028para\\u2029"),
        ("tab\tnew\nline\rcr", "tab\\tnew\\nline\\rcr"),
        ("C:\\path", "C:\\\\path"),  # a literal backslash is always doubled: unambiguous
        ("\\u202e", "\\\\u202e"),  # ... so six typed characters never read as U+202E
        ("\U000f0001", "\\U000f0001"),  # private use beyond the BMP
        ("\udcff", "\\udcff"),  # a lone surrogate (from a non-UTF-8 file name)
        ("\u0378", "\\u0378"),  # unassigned
        ("no\u00a0break", "no\u00a0break"),  # visible as a space: left alone
    ],
)
def test_safe_escapes_what_can_hide_or_act(raw: str, shown: str) -> None:
    assert safe(raw) == shown


def test_safe_multiline_keeps_only_line_breaks_and_indents_continuations() -> None:
    assert safe("first\n  second\x1b[2J\t", multiline=True) == "first\n  second\\u001b[2J\\t"
    # a value with a newline cannot pass for a message of its own
    assert safe("cannot apply 'x\nerror: all good'", multiline=True) == "cannot apply 'x\n  error: all good'"


def test_visible_keeps_json_escapes_and_stays_json() -> None:
    encoded = json.dumps("a\\b\u202ec\x1b", ensure_ascii=False)
    assert visible(encoded) == '"a\\\\b\\u202ec\\u001b"'
    assert json.loads(visible(encoded)) == "a\\b\u202ec\x1b"


def test_quote_leaves_escaping_to_display() -> None:
    assert quote("it's") == '"it\'s"'
    assert safe(quote("a\u202eb")) == "'a\\u202eb'"


# -- live data in plans and drift reports ----------------------------------------------------------


def seed(backend: str, *, accounts: Sequence[dict[str, object]] = (),
         custom_fields: dict[str, object] | None = None) -> None:
    """Create live objects the way someone using the Console would: not through reconciler."""
    with LocalBackend(backend.split(":", 1)[1]) as org:
        for account in accounts:
            org.create(kinds.get("account"), account)
        if custom_fields is not None:
            kind = kinds.get("customFields")
            live = org.get_singleton(kind)
            org.put_singleton(kind, {"version": live["version"], **custom_fields})


def test_esc_sequences_from_a_live_custom_field_name_in_markdown(tmp_path: Path, local_backend: str) -> None:
    name = f"evil{ESC}[2J{ESC}[31mred"
    seed(local_backend, custom_fields={"account": {name: "x"}})
    write(tmp_path, "m/cf.yaml", "customFields:\n  account: {}\n")  # managed whole: the live name is removed
    result = run_cli("plan", str(tmp_path / "m"), "--backend", local_backend, "--format", "markdown")
    assert result.code == 0, result.output
    assert_no_raw_controls(result.output)
    # markdown escapes the escape's backslash, so the comment renders as evil\u001b[2J...
    assert "evil\\\\u001b\\[2J\\\\u001b\\[31mred" in result.stdout
    as_json = run_cli("plan", str(tmp_path / "m"), "--backend", local_backend, "--format", "json")
    [change] = json.loads(as_json.stdout)["changes"]
    assert change["diff"][0]["path"] == f"account.{name}"  # JSON keeps the exact value


HOSTILE_CODE = f"ab{RLO}cd{ISOLATES}{CSI}ef"
HOSTILE_CODE_SHOWN = "ab\\u202ecd\\u2066\\u2067\\u2068\\u2069\\u009bef"
HOSTILE_NAME = f"Acme{RLO}proC{CSI}"


def test_c1_and_bidi_in_live_codes_and_names_in_text_plans(tmp_path: Path, local_backend: str) -> None:
    seed(local_backend, accounts=[
        {"code": HOSTILE_CODE, "name": "Unmanaged", "emailAddress": "u@x.example"},
        {"code": "acme", "name": HOSTILE_NAME, "emailAddress": "a@x.example"},
    ])
    write(tmp_path, "m/a.yaml", "accounts:\n  - {code: acme, name: Acme Corp, emailAddress: a@x.example}\n")
    result = run_cli("plan", str(tmp_path / "m"), "--backend", local_backend, "--no-redact-pii")
    assert result.code == 0, result.output
    assert_no_raw_controls(result.output)
    assert f"    account {HOSTILE_CODE_SHOWN}" in result.stdout  # the unmanaged list
    assert '~ name: "Acme\\u202eproC\\u009b" -> "Acme Corp"' in result.stdout

    pruned = "settings:\n  prune: {accounts: delete}\n"
    write(tmp_path, "m/s.yaml", pruned)
    result = run_cli("plan", str(tmp_path / "m"), "--backend", local_backend, "--no-redact-pii")
    assert result.code == 0, result.output
    assert_no_raw_controls(result.output)
    assert f"- delete account {HOSTILE_CODE_SHOWN}" in result.stdout


@pytest.mark.parametrize("fmt", ["text", "markdown"])
def test_c1_and_bidi_in_live_codes_and_names_in_drift_reports(tmp_path: Path, local_backend: str, fmt: str) -> None:
    seed(local_backend, accounts=[
        {"code": HOSTILE_CODE, "name": "Unmanaged", "emailAddress": "u@x.example"},
        {"code": "acme", "name": HOSTILE_NAME, "emailAddress": "a@x.example"},
    ])
    write(tmp_path, "m/a.yaml", "accounts:\n  - {code: acme, name: Acme Corp, emailAddress: a@x.example}\n"
                                "settings:\n  prune: {accounts: delete}\n")
    result = run_cli("drift", str(tmp_path / "m"), "--backend", local_backend, "--format", fmt, "--no-redact-pii")
    assert result.code == 2, result.output
    assert_no_raw_controls(result.output)
    if fmt == "text":
        assert f"account {HOSTILE_CODE_SHOWN}: unmanaged live object" in result.stdout
        assert 'name: manifest "Acme Corp", live "Acme\\u202eproC\\u009b"' in result.stdout
    else:
        assert HOSTILE_CODE_SHOWN.replace("\\", "\\\\") in result.stdout
        assert "Acme\\\\u202eproC\\\\u009b" in result.stdout
    exact = run_cli("drift", str(tmp_path / "m"), "--backend", local_backend, "--format", "json", "--no-redact-pii")
    keys = {item["key"] for item in json.loads(exact.stdout)["drift"]}
    assert HOSTILE_CODE in keys


def test_manifest_name_with_bidi_override_is_escaped_in_the_text_plan(tmp_path: Path, local_backend: str) -> None:
    yaml_text = 'accounts:\n  - {code: "x\\u202ey", name: "gpj.\\u202eexe", emailAddress: a@x.example}\n'
    write(tmp_path, "m/a.yaml", yaml_text)
    result = run_cli("plan", str(tmp_path / "m"), "--backend", local_backend, "--no-redact-pii")
    assert result.code == 0, result.output
    assert_no_raw_controls(result.output)
    assert "+ create account x\\u202ey" in result.stdout
    assert '+ name: "gpj.\\u202eexe"' in result.stdout


# -- file names and error messages -----------------------------------------------------------------


def test_hostile_file_name_in_a_validation_error(tmp_path: Path) -> None:
    name = f"bad{ESC}[2K{RLO}lmay.yaml"
    write(tmp_path, f"m/{name}", "accounts:\n  - {code: acme, name: 12}\n")
    result = run_cli("validate", str(tmp_path / "m"))
    assert result.code == 1
    assert_no_raw_controls(result.output)
    assert "bad\\u001b[2K\\u202elmay.yaml:2:" in result.stderr
    assert "must be a string" in result.stderr


def test_hostile_export_directory_in_an_error_line(tmp_path: Path, local_backend: str) -> None:
    target = tmp_path / f"out{ESC}]0;pwned{ESC}\\{RLO}"
    target.mkdir()
    (target / "keep.txt").write_text("someone's file", encoding="utf-8")
    result = run_cli("export", "--out", str(target), "--backend", local_backend)
    assert result.code == 1
    assert_no_raw_controls(result.output)
    assert "out\\u001b]0;pwned\\u001b\\\\\\u202e is not empty" in result.stderr


def test_hostile_option_and_path_in_a_usage_error(tmp_path: Path) -> None:
    missing = run_cli("validate", str(tmp_path / f"gone{ESC}[8m{RLO}.yaml"))
    extra = run_cli("export", "--out", str(tmp_path / "out"), f"extra{ESC}[2J{CSI}")
    for result in (missing, extra):
        assert result.code == 1
        assert_no_raw_controls(result.output)
        assert "Traceback" not in result.output
    assert "gone\\x1b[8m\\u202e.yaml" in missing.stderr  # click's own quoting, not doubled
    assert "extra\\u001b[2J\\u009b" in extra.stderr  # click shows this one raw


class _Refusing(BaseHTTPRequestHandler):
    """An m3ter API that refuses everything with a message full of terminal controls."""

    message = f"bad{ESC}[2J{ESC}[31m request {RLO}nimda{CSI}1m"

    def _refuse(self) -> None:
        body = json.dumps({"message": self.message}).encode()
        self.send_response(400)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_DELETE = _refuse

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def refusing_api() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Refusing)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_api_error_message_with_controls(tmp_path: Path, refusing_api: str) -> None:
    write(tmp_path, "m/a.yaml", "accounts:\n  - {code: acme, name: Acme, emailAddress: a@x.example}\n")
    env = {"M3TER_ORG_ID": "org-1", "M3TER_API_TOKEN": "test-token-value-1234"}
    result = run_cli("plan", str(tmp_path / "m"), "--backend", f"m3ter:{refusing_api}", env=env)
    assert result.code == 1
    assert_no_raw_controls(result.output)
    assert "Traceback" not in result.output
    error = next(line for line in result.stderr.splitlines() if line.startswith("error: "))
    assert "bad" in error and "nimda" in error and "request" in error
