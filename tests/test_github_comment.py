"""The plan comment's marker and body as Python: identity per organization and path set,
only the first line parsed, malformed fields dropped, never over GitHub's size limit."""

from __future__ import annotations

from pathlib import Path

from reconciler.ci.comment import (
    MAX_COMMENT_CHARS,
    Marker,
    PlanComment,
    org_label,
    parse_marker,
    paths_key,
    render_comment,
)
from reconciler.ci.github import Event, write_outputs
from tests.test_github_action import read_outputs

DIGEST = "sha256:" + "ab" * 32


def comment(plan: str = "### reconciler plan\n", **kw: object) -> str:
    marker = Marker("org-1", paths_key(["manifests/"]), DIGEST, "f" * 40, "99")
    fields: dict[str, object] = {"marker": marker, "organization": "org-1", "paths": ["manifests/"],
                                 "exitcode": 2, "plan_markdown": plan}
    fields.update(kw)
    return render_comment(PlanComment(**fields))  # type: ignore[arg-type]


def test_marker_round_trip_and_identity() -> None:
    body = comment()
    marker = parse_marker(body)
    assert marker == Marker("org-1", paths_key(["manifests"]), DIGEST, "f" * 40, "99")
    assert body.splitlines()[0].startswith("<!-- reconciler-plan org=org-1 paths=")
    assert paths_key(["b/", "./a"]) == paths_key(["a", "b"]) != paths_key(["a"])
    assert paths_key(["a"], "sub") != paths_key(["a"])
    assert org_label("0b3c-uuid_1.x") == "0b3c-uuid_1.x"
    assert org_label("bad id -->") .startswith("h") and " " not in org_label("bad id -->")


def test_only_the_first_line_counts_and_bad_fields_are_dropped() -> None:
    assert parse_marker("hello\n" + Marker("o", "p", DIGEST).render()) is None
    assert parse_marker("<!-- reconciler-plan org=o -->") is None
    m = parse_marker("<!-- reconciler-plan org=o paths=p digest=sha256:xyz sha=NOTHEX run=1a -->\nbody")
    assert m == Marker("o", "p", None, None, None)
    # user text in the plan cannot forge a marker: it is escaped and never on the first line
    body = comment(plan="| x | <!-- reconciler-plan org=o paths=p digest=" + DIGEST + " --> |\n")
    assert parse_marker(body) is not None and parse_marker(body).org == "org-1"  # type: ignore[union-attr]


def test_status_lines_and_errors_are_escaped() -> None:
    assert "Changes pending" in comment()
    assert "No changes" in comment(exitcode=0)
    failed = comment(exitcode=1, plan_markdown="", errors=["m.yaml:1:1: error: <b>bad</b> | x"],
                     marker=Marker("org-1", "p", None, "f" * 40))
    assert "The plan failed" in failed and "Plan digest: none" in failed
    assert "&lt;b&gt;bad&lt;/b&gt; \\| x" in failed


def test_too_long_plan_is_replaced_by_a_pointer() -> None:
    long = "| row |\n" * 20_000
    body = comment(plan=long, artifact="reconciler-plan-org-1-abc")
    assert len(body) <= MAX_COMMENT_CHARS
    assert "too long for a comment" in body and "| row |" not in body
    assert parse_marker(body) is not None


def test_outputs_use_random_delimiters(tmp_path: Path) -> None:
    out = tmp_path / "out"
    write_outputs({"digest": DIGEST, "evil": "x\nexitcode=0"}, str(out))
    assert read_outputs(out) == {"digest": DIGEST, "evil": "x\nexitcode=0"}


def test_event_from_runner_variables(tmp_path: Path) -> None:
    event = tmp_path / "event.json"
    event.write_text('{"pull_request": {"number": 12, "head": {"sha": "abc1234"}}}', encoding="utf-8")
    e = Event.from_env({"GITHUB_EVENT_PATH": str(event), "GITHUB_EVENT_NAME": "pull_request",
                        "GITHUB_REPOSITORY": "o/r", "GITHUB_SHA": "m" * 40, "GITHUB_RUN_ID": "5",
                        "GITHUB_SERVER_URL": "https://github.com"})
    assert (e.pull_number, e.head_sha, e.run_url) == (12, "abc1234", "https://github.com/o/r/actions/runs/5")
    assert Event.from_env({}).pull_number is None


def test_token_only_over_https_or_loopback() -> None:
    import pytest

    from reconciler.ci.github import GitHub, GitHubError

    with pytest.raises(GitHubError, match="https"):
        GitHub("o/r", "secret-token-value", api_url="http://api.github.example")
    with pytest.raises(GitHubError, match="OWNER/NAME"):
        GitHub("o/r/../x", "secret-token-value")
    GitHub("o/r", "secret-token-value", api_url="http://127.0.0.1:9").close()
