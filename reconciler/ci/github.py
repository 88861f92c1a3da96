"""The few GitHub REST calls the action makes, the runner's event and its output files.

Why our own small client over httpx rather than ``gh`` or a library: the action needs four
endpoints (list an issue's comments, create one, edit one, the pull requests of a commit),
must never print the token, and must be testable against a local server: the base URL comes
from ``GITHUB_API_URL`` exactly as on real runners (and GitHub Enterprise), so tests point it
at 127.0.0.1.

The token is sent only over https, or plain http to a loopback host, like m3ter credentials.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from reconciler.backends.m3ter_auth import is_loopback_host
from reconciler.ci.comment import Marker, parse_marker
from reconciler.diagnostics import ReconcilerError

API_VERSION = "2022-11-28"
PER_PAGE = 100
MAX_PAGES = 50  # 5,000 comments: far beyond any real pull request, and a bound on a loop
DEFAULT_COMMENT_AUTHOR = "github-actions[bot]"
_NEXT_LINK = re.compile(r'<([^>]+)>\s*;\s*rel="next"')


class GitHubError(ReconcilerError):
    """A GitHub API call failed; the message names the call and status, never the token."""


def _check_base_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme == "https" or (parts.scheme == "http" and is_loopback_host(parts.hostname or "")):
        return url.rstrip("/")
    raise GitHubError(f"GITHUB_API_URL must be https:// (or http:// to a loopback host), not {url!r}")


@dataclass(frozen=True, slots=True)
class Comment:
    id: int
    body: str
    author: str
    url: str


class GitHub:
    """A repository on the GitHub REST API, authenticated by a token that stays inside."""

    def __init__(self, repository: str, token: str, *, api_url: str = "https://api.github.com",
                 timeout: float = 30.0) -> None:
        if not re.fullmatch(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+", repository):
            raise GitHubError(f"GITHUB_REPOSITORY must be OWNER/NAME, not {repository!r}")
        self.repository = repository
        base = _check_base_url(api_url)
        self._client = httpx.Client(
            base_url=base,
            timeout=timeout,
            headers={
                "Authorization": f"Bearer {token}",
                "Accept": "application/vnd.github+json",
                "X-GitHub-Api-Version": API_VERSION,
                "User-Agent": "reconciler-action",
            },
            trust_env=not is_loopback_host(urlsplit(base).hostname or ""),
        )

    def __enter__(self) -> GitHub:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._client.close()

    def _request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        what = f"{method} {urlsplit(url).path or url}"
        try:
            response = self._client.request(method, url, **kwargs)
        except httpx.HTTPError as exc:
            raise GitHubError(f"GitHub API {what} failed: {type(exc).__name__}") from None
        if response.status_code >= 400:
            try:
                message = str(response.json().get("message", ""))
            except ValueError:
                message = ""
            hint = ""
            if response.status_code in (401, 403, 404):
                hint = (" (does the token have the permission? pull-requests: write to comment, "
                        "pull-requests: read to find the merged pull request)")
            raise GitHubError(f"GitHub API {what} answered {response.status_code} {message[:200]}{hint}".rstrip())
        return response

    def _pages(self, path: str) -> Iterator[Any]:
        """Every item of a paginated list, following the ``Link: <...>; rel="next"`` header."""
        url: str | None = f"{path}?per_page={PER_PAGE}"
        for _ in range(MAX_PAGES):
            if url is None:
                return
            response = self._request("GET", url)
            items = response.json()
            if not isinstance(items, list):
                raise GitHubError(f"GitHub API GET {path} did not answer a list")
            yield from items
            match = _NEXT_LINK.search(response.headers.get("link", ""))
            url = match.group(1) if match else None
            if url is not None and not url.startswith(str(self._client.base_url).rstrip("/") + "/"):
                raise GitHubError("GitHub API pagination pointed to another host; refused")

    def comments(self, number: int) -> Iterator[Comment]:
        for item in self._pages(f"/repos/{self.repository}/issues/{int(number)}/comments"):
            yield Comment(
                id=int(item["id"]),
                body=str(item.get("body") or ""),
                author=str((item.get("user") or {}).get("login", "")),
                url=str(item.get("html_url", "")),
            )

    def create_comment(self, number: int, body: str) -> Comment:
        item = self._request("POST", f"/repos/{self.repository}/issues/{int(number)}/comments",
                             json={"body": body}).json()
        return Comment(int(item["id"]), str(item.get("body", "")), str((item.get("user") or {}).get("login", "")),
                       str(item.get("html_url", "")))

    def update_comment(self, comment_id: int, body: str) -> Comment:
        item = self._request("PATCH", f"/repos/{self.repository}/issues/comments/{int(comment_id)}",
                             json={"body": body}).json()
        return Comment(int(item["id"]), str(item.get("body", "")), str((item.get("user") or {}).get("login", "")),
                       str(item.get("html_url", "")))

    def pulls_of_commit(self, sha: str) -> list[dict[str, Any]]:
        """The pull requests a commit belongs to (for a merge commit: the merged one)."""
        items = self._request("GET", f"/repos/{self.repository}/commits/{sha}/pulls").json()
        return [item for item in items if isinstance(item, dict)] if isinstance(items, list) else []


def find_plan_comment(github: GitHub, number: int, org: str, paths: str,
                      author: str | None = DEFAULT_COMMENT_AUTHOR) -> tuple[Comment, Marker] | None:
    """The plan comment for this organization and path set, written by ``author`` (the
    action's identity; None accepts any author). Only the author's comments count, so a
    comment someone else posted with a copied marker is never updated or trusted."""
    for comment in github.comments(number):
        marker = parse_marker(comment.body)
        if marker is None or marker.identity() != (org, paths):
            continue
        if author and comment.author != author:
            continue
        return comment, marker
    return None


def upsert_plan_comment(github: GitHub, number: int, body: str, org: str, paths: str,
                        author: str | None = DEFAULT_COMMENT_AUTHOR) -> tuple[str, Comment]:
    """Edit the existing plan comment in place, or create it: ``("updated"|"created", comment)``."""
    found = find_plan_comment(github, number, org, paths, author)
    if found is not None:
        return "updated", github.update_comment(found[0].id, body)
    return "created", github.create_comment(number, body)


def merged_pull_request(github: GitHub, sha: str) -> dict[str, Any] | None:
    """The pull request whose merge produced ``sha`` (a merge, squash or rebase commit on
    the default branch), or None for a direct push."""
    pulls = [p for p in github.pulls_of_commit(sha) if p.get("merged_at")]
    for pull in pulls:
        if pull.get("merge_commit_sha") == sha:
            return pull
    return pulls[0] if pulls else None


# -- the runner ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Event:
    """What the runner says about the event that started the job."""

    name: str
    repository: str
    sha: str
    pull_number: int | None
    head_sha: str | None
    run_url: str | None
    run_id: str | None

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Event:
        payload: dict[str, Any] = {}
        path = env.get("GITHUB_EVENT_PATH")
        if path and Path(path).is_file():
            try:
                payload = json.loads(Path(path).read_text(encoding="utf-8"))
            except (OSError, ValueError):
                payload = {}
        pull = payload.get("pull_request") if isinstance(payload.get("pull_request"), dict) else None
        server, repo, run = env.get("GITHUB_SERVER_URL"), env.get("GITHUB_REPOSITORY", ""), env.get("GITHUB_RUN_ID")
        return cls(
            name=env.get("GITHUB_EVENT_NAME", ""),
            repository=repo,
            sha=env.get("GITHUB_SHA", ""),
            pull_number=int(pull["number"]) if pull and str(pull.get("number", "")).isdigit() else None,
            head_sha=str((pull.get("head") or {}).get("sha") or "") or None if pull else None,
            run_url=f"{server}/{repo}/actions/runs/{run}" if server and repo and run else None,
            run_id=run,
        )


def write_outputs(values: Mapping[str, str], path: str | None) -> None:
    """Append ``name=value`` pairs to ``$GITHUB_OUTPUT`` (the heredoc form with a random
    delimiter, so a value can never add an output of its own)."""
    if not path:
        return
    with open(path, "a", encoding="utf-8") as out:
        for name, value in values.items():
            delimiter = f"ghadelimiter_{uuid.uuid4().hex}"
            out.write(f"{name}<<{delimiter}\n{value}\n{delimiter}\n")


def append_summary(markdown: str, path: str | None) -> None:
    """Add markdown to the job summary page (``$GITHUB_STEP_SUMMARY``)."""
    if path:
        with open(path, "a", encoding="utf-8") as out:
            out.write(markdown if markdown.endswith("\n") else markdown + "\n")


def env_or(env: Mapping[str, str], name: str, default: str = "") -> str:
    value = env.get(name)
    return value if value is not None and value != "" else default


def api_from_env(env: Mapping[str, str], repository: str) -> GitHub:
    token = env.get("GITHUB_TOKEN") or ""
    if not token:
        raise GitHubError("no GitHub token: set the action's github-token input (default: the job's GITHUB_TOKEN)")
    return GitHub(repository, token, api_url=env_or(env, "GITHUB_API_URL", "https://api.github.com"))

