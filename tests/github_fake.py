"""A stand-in for the few GitHub REST endpoints the action uses, served on 127.0.0.1.

Speaks: list an issue's comments (``per_page`` and a ``Link: <...>; rel="next"`` header, as
GitHub paginates), create a comment, edit a comment (only its author may), and list the
pull requests of a commit. Requests need ``Authorization: Bearer <token>``; the token
decides who the caller is, as on GitHub.
"""

from __future__ import annotations

import contextlib
import itertools
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from reconciler.emulator.server import bind_socket, url_of

BOT = "github-actions[bot]"


@dataclass
class FakeGitHub:
    repository: str = "acme/billing-config"
    tokens: dict[str, str] = field(default_factory=lambda: {"ghs_test_token_0123456789": BOT})
    comments: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    pulls: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    requests: list[tuple[str, str]] = field(default_factory=list)
    base_url: str = ""
    _ids: Iterator[int] = field(default_factory=lambda: itertools.count(1000))

    def who(self, request: Request) -> str | None:
        auth = request.headers.get("authorization", "")
        return self.tokens.get(auth.removeprefix("Bearer ")) if auth.startswith("Bearer ") else None

    def add_comment(self, number: int, body: str, author: str = BOT) -> dict[str, Any]:
        cid = next(self._ids)
        item = {
            "id": cid,
            "body": body,
            "user": {"login": author, "type": "Bot" if author.endswith("[bot]") else "User"},
            "html_url": f"https://github.example/{self.repository}/pull/{number}#issuecomment-{cid}",
        }
        self.comments.setdefault(number, []).append(item)
        return item

    def merge(self, number: int, merge_sha: str, head_sha: str) -> None:
        self.pulls[merge_sha] = [{
            "number": number, "merged_at": "2026-01-01T00:00:00Z", "merge_commit_sha": merge_sha,
            "head": {"sha": head_sha}, "base": {"ref": "main"},
        }]

    def app(self) -> Starlette:
        prefix = f"/repos/{self.repository}"

        def guard(request: Request) -> tuple[str | None, JSONResponse | None]:
            query = f"?{request.url.query}" if request.url.query else ""
            self.requests.append((request.method, request.url.path + query))
            user = self.who(request)
            if user is None:
                return None, JSONResponse({"message": "Bad credentials"}, status_code=401)
            return user, None

        async def list_or_create(request: Request) -> JSONResponse:
            user, denied = guard(request)
            if denied:
                return denied
            number = int(request.path_params["number"])
            if request.method == "POST":
                body = (await request.json())["body"]
                return JSONResponse(self.add_comment(number, body, str(user)), status_code=201)
            per_page = min(int(request.query_params.get("per_page", 30)), 100)
            page = int(request.query_params.get("page", 1))
            items = self.comments.get(number, [])
            chunk = items[(page - 1) * per_page : page * per_page]
            headers = {}
            if page * per_page < len(items):
                url = f"{self.base_url}{prefix}/issues/{number}/comments?per_page={per_page}&page={page + 1}"
                headers["Link"] = f'<{url}>; rel="next"'
            return JSONResponse(chunk, headers=headers)

        async def update(request: Request) -> JSONResponse:
            user, denied = guard(request)
            if denied:
                return denied
            cid = int(request.path_params["cid"])
            for items in self.comments.values():
                for item in items:
                    if item["id"] == cid:
                        if item["user"]["login"] != user:
                            return JSONResponse({"message": "Forbidden"}, status_code=403)
                        item["body"] = (await request.json())["body"]
                        return JSONResponse(item)
            return JSONResponse({"message": "Not Found"}, status_code=404)

        async def pulls_of(request: Request) -> JSONResponse:
            _, denied = guard(request)
            if denied:
                return denied
            return JSONResponse(self.pulls.get(request.path_params["sha"], []))

        return Starlette(routes=[
            Route(prefix + "/issues/{number:int}/comments", list_or_create, methods=["GET", "POST"]),
            Route(prefix + "/issues/comments/{cid:int}", update, methods=["PATCH"]),
            Route(prefix + "/commits/{sha}/pulls", pulls_of, methods=["GET"]),
        ])


@contextlib.contextmanager
def running_github(fake: FakeGitHub | None = None) -> Iterator[FakeGitHub]:
    """Serve ``fake`` on 127.0.0.1 and a free port in a background thread."""
    import uvicorn

    fake = fake or FakeGitHub()
    sock = bind_socket("127.0.0.1", 0)
    fake.base_url = url_of(sock)
    server = uvicorn.Server(uvicorn.Config(fake.app(), log_level="warning", lifespan="off", http="h11", ws="none"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 15
        while not server.started:
            if time.monotonic() > deadline or not thread.is_alive():
                raise RuntimeError("the fake GitHub did not start")
            time.sleep(0.005)
        yield fake
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
