"""The HTTP face of the emulator: the m3ter Config API subset over the store (Starlette).

What it answers (every path below ``/organizations/{orgId}/`` comes from the kinds registry):

* ``POST /oauth/token`` - client credentials with ``Authorization: Basic key:secret`` and a
  JSON (``{"grant_type": "client_credentials"}``) or form (``grant_type=client_credentials``)
  body. Wrong or missing credentials -> 403, a missing or other grant type -> 400, malformed
  body -> 400. Cheap, and outside rate limit, latency and injected failures.
* Every other route needs ``Authorization: Bearer <token>``; a missing, invalid or expired
  token and an organization the emulator does not serve all answer 403 (m3ter has no 401).
* ``organizationconfig`` and ``customfields``: GET, PUT. Picklists (``picklists/currency``,
  ``creditreasons``, ``debitreasons``, ``transactiontypes``) and ``accounts``: GET (list), POST,
  ``/{id}`` GET, PUT, DELETE (DELETE answers the removed entity). ``accounts/search`` (routed
  before ``accounts/{id}``) and ``accounts/{id}/children``.
* ``statementdefinitions`` (list, ``/{id}``) and ``accountplans`` (list with ``account``,
  ``plan``, ``contract``, ``product``, ``includeall``, ``date``, ``ids``; ``/{id}``): GET only;
  they are seeded through the store. ``DELETE accounts/{id}`` answers 400 while any account
  plan references the account.
* Lists: ``pageSize`` 1..100 (1..200 for children; default 10; outside -> 400), ``nextToken``,
  ``ids`` and ``codes`` both repeated (``codes=a&codes=b``) and comma-joined (``codes=a,b``; a
  value is matched whole as well as split, so codes containing commas still match), and
  ``archived`` on picklists, and each kind's ``list_filters`` (``productId`` on meters,
  ``planId`` on pricings...: only objects whose field holds one of the values). Envelope
  ``{"data": [...], "nextToken": "..."}``, no ``nextToken`` on the last page; newest objects
  first.
* ``archived`` (the document words it per endpoint, see ``_archived``): ``false`` -> only
  objects that are not archived; ``true`` -> only archived currencies, but archived and active
  reasons and transaction types; absent -> only objects that are not archived (no default is
  documented; the strictest reading). ``EmulatorConfig.archived_true`` / ``archived_absent``
  switch to the other readings, so tests prove a client that lists without the filter *and*
  with ``archived=true`` and merges by id sees everything whichever way a server reads it.
* Errors are ``{"message": "..."}`` with 400 (bad input, version mismatch, duplicate code,
  a change that would break configuration), 403, 404, 429, 500, 502 or 504 only. Unknown
  routes and methods -> 404.
* ``accounts/search``: ``searchQuery`` terms joined by ``$``, each ``field:value`` (equals),
  ``field~prefix`` (starts with, case-insensitive) or ``>``, ``>=``, ``<``, ``<=`` (string order,
  fine for ISO dates), on ``name``, ``code``, ``currency``, ``purchaseOrderNumber``,
  ``parentAccountId``, ``id``, ``createdBy``, ``dtCreated``, ``lastModifiedBy``, ``codes`` and
  ``ids`` (comma lists); ``operator`` AND (default) or OR; ``sortBy``/``sortOrder``
  (default: newest first); paging with ``fromDocument`` (an offset; the response's
  ``nextToken`` is the next offset).

Switches live in :class:`EmulatorConfig`: latency (async sleep per organization request),
m3ter's per-organization rate limit (429 with ``Retry-After`` for the rest of the calendar
second), injected failures (500/502/504 and dropped connections, some after the write took
effect; seeded RNG), token lifetime.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import math
import operator
import re
import sqlite3
import urllib.parse
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from reconciler import kinds
from reconciler.emulator.config import EmulatorConfig
from reconciler.emulator.core import AuthError, Emulator, Exchange
from reconciler.store import ACCOUNT_PLAN, STATEMENT_DEFINITION, StoreError

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

LIST_MAX = 100
CHILDREN_MAX = 200
WRITE_METHODS = frozenset({"POST", "PUT", "DELETE"})
FAILURE_MESSAGES = {
    "500": (500, "Internal server error (injected by the emulator)"),
    "502": (502, "Bad gateway (injected by the emulator)"),
    "504": (504, "Gateway timeout (injected by the emulator)"),
}
SEARCH_FIELDS = frozenset(
    {
        "name",
        "code",
        "currency",
        "purchaseOrderNumber",
        "parentAccountId",
        "codes",
        "id",
        "createdBy",
        "dtCreated",
        "lastModifiedBy",
        "ids",
    }
)
_TERM = re.compile(r"^([A-Za-z]+)(>=|<=|:|~|>|<)(.*)$", re.S)


class BadRequest(Exception):
    pass


def error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"message": message}, status_code=status, headers=headers)


# --------------------------------------------------------------------------- query helpers


def _page_size(request: Request, default: int, maximum: int) -> int:
    raw = request.query_params.get("pageSize")
    if raw is None or raw == "":
        return min(default, maximum)
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest(f"pageSize must be an integer between 1 and {maximum}") from None
    if not 1 <= value <= maximum:
        raise BadRequest(f"pageSize must be between 1 and {maximum}, not {value}")
    return value


def _multi(request: Request, name: str) -> list[str] | None:
    """An array parameter given repeated, comma-joined or as ``name[]``; None when absent."""
    raw = request.query_params.getlist(name) + request.query_params.getlist(f"{name}[]")
    values: list[str] = []
    for item in raw:
        candidates = [item, *item.split(",")] if "," in item else [item]
        values.extend(c for c in candidates if c and c not in values)
    return values or None


def _boolean(request: Request, name: str, *, default: bool) -> bool:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    lowered = raw.lower()
    if lowered not in ("true", "false"):
        raise BadRequest(f"{name} must be true or false")
    return lowered == "true"


# openapi-full.json, GET /picklists/currency, parameter ``archived``: "TRUE - return archived
# Currencies. FALSE - archived Currencies are not returned." (read: only archived). The other
# picklists say "TRUE includes archived ..." (read: archived and active alike).
_ARCHIVED_ONLY_WHEN_TRUE = frozenset({"currency"})


def _archived(request: Request, kind: str, config: EmulatorConfig) -> bool | None:
    """The store's filter for a picklist list: True only archived, False only active, None all."""
    raw = request.query_params.get("archived")
    if raw is None or raw == "":
        return False if config.archived_absent == "exclude" else None
    if not _boolean(request, "archived", default=False):
        return False  # every endpoint: FALSE excludes archived objects
    reading = config.archived_true
    if reading == "document":
        reading = "only" if kind in _ARCHIVED_ONLY_WHEN_TRUE else "include"
    return True if reading == "only" else None


async def _json_body(request: Request) -> Any:
    body = await request.body()
    if not body.strip():
        raise BadRequest("a JSON request body is required")
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise BadRequest("the request body is not valid JSON") from None


def _page(items: list[dict[str, Any]], token: str | None) -> JSONResponse:
    out: dict[str, Any] = {"data": items}
    if token:
        out["nextToken"] = token
    return JSONResponse(out)


# --------------------------------------------------------------------------- search


def _search(accounts: list[dict[str, Any]], request: Request) -> tuple[list[dict[str, Any]], str | None]:
    query = request.query_params.get("searchQuery") or ""
    operator = (request.query_params.get("operator") or "AND").upper()
    if operator not in ("AND", "OR"):
        raise BadRequest("operator must be AND or OR")
    tests: list[Callable[[dict[str, Any]], bool]] = []
    for term in (t for t in query.split("$") if t):
        m = _TERM.match(term)
        if not m:
            raise BadRequest(f"cannot read search term {term!r}: use field:value, field~prefix or field>value")
        fld, op, value = m.groups()
        if fld not in SEARCH_FIELDS:
            raise BadRequest(f"cannot search on {fld!r}; allowed: {', '.join(sorted(SEARCH_FIELDS))}")
        tests.append(_search_test(fld, op, value))
    if tests:
        combine = all if operator == "AND" else any
        accounts = [a for a in accounts if combine(t(a) for t in tests)]
    sort_by = request.query_params.get("sortBy") or ""
    order = (request.query_params.get("sortOrder") or "DESC").upper()
    if order not in ("ASC", "DESC"):
        raise BadRequest("sortOrder must be ASC or DESC")
    if sort_by:
        accounts = sorted(accounts, key=lambda a: str(a.get(sort_by, "")), reverse=order == "DESC")
    elif order == "ASC":
        accounts = list(reversed(accounts))
    raw_from = request.query_params.get("fromDocument") or "0"
    try:
        start = int(raw_from)
    except ValueError:
        raise BadRequest("fromDocument must be a non-negative integer") from None
    if start < 0:
        raise BadRequest("fromDocument must be a non-negative integer")
    size = _page_size(request, 10, LIST_MAX)
    page = accounts[start : start + size]
    more = start + size < len(accounts)
    return page, str(start + size) if more else None


_ORDERINGS: dict[str, Callable[[str, str], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
}


def _search_test(fld: str, op: str, value: str) -> Callable[[dict[str, Any]], bool]:
    if fld in ("codes", "ids"):
        wanted = set(value.split(","))
        key = "code" if fld == "codes" else "id"
        return lambda a: str(a.get(key, "")) in wanted
    if op == ":":
        return lambda a: str(a.get(fld, "")) == value
    if op == "~":
        low = value.lower()
        return lambda a: str(a.get(fld, "")).lower().startswith(low)
    fn = _ORDERINGS[op]
    return lambda a: fld in a and fn(str(a[fld]), value)


# --------------------------------------------------------------------------- the app


def create_app(emulator: Emulator) -> EmulatorApp:
    """The ASGI application serving ``emulator``."""
    return EmulatorApp(emulator)


class EmulatorApp:
    """ASGI app: auth, rate limit, latency and fault injection around a Starlette router."""

    def __init__(self, emulator: Emulator) -> None:
        self.emulator = emulator
        self.store = emulator.store
        self.router = Starlette(
            routes=self._routes(),
            exception_handlers={HTTPException: self._http_error},
        )

    # ---- routes

    def _routes(self) -> list[Route]:
        base = "/organizations/{org}"
        routes = [
            Route("/oauth/token", self.token, methods=["POST"]),
            Route(f"{base}/accounts/search", self._op("account", self.search_accounts), methods=["GET"]),
            Route(f"{base}/accounts/{{id}}/children", self._op("account", self.account_children), methods=["GET"]),
            # Read-only kinds reconciler looks up but does not manage (seeded through the store).
            Route(f"{base}/statementdefinitions", self._op(STATEMENT_DEFINITION, self.list_entities), methods=["GET"]),
            Route(
                f"{base}/statementdefinitions/{{id}}", self._op(STATEMENT_DEFINITION, self.get_entity), methods=["GET"]
            ),
            Route(f"{base}/accountplans", self._op(ACCOUNT_PLAN, self.list_account_plans), methods=["GET"]),
            Route(f"{base}/accountplans/{{id}}", self._op(ACCOUNT_PLAN, self.get_entity), methods=["GET"]),
        ]
        for kind in kinds.KINDS:
            path = f"{base}/{kind.api_path}"
            if kind.singleton:
                routes.append(Route(path, self._op(kind.name, self.get_singleton), methods=["GET"]))
                routes.append(Route(path, self._op(kind.name, self.put_singleton), methods=["PUT"]))
            else:
                routes.append(Route(path, self._op(kind.name, self.list_entities), methods=["GET"]))
                routes.append(Route(path, self._op(kind.name, self.create_entity), methods=["POST"]))
                item = f"{path}/{{id}}"
                routes.append(Route(item, self._op(kind.name, self.get_entity), methods=["GET"]))
                routes.append(Route(item, self._op(kind.name, self.update_entity), methods=["PUT"]))
                routes.append(Route(item, self._op(kind.name, self.delete_entity), methods=["DELETE"]))
        return routes

    def _op(
        self, kind: str, handler: Callable[[str, Request], Awaitable[Response]]
    ) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            try:
                return await handler(kind, request)
            except BadRequest as exc:
                return error(400, str(exc))
            except StoreError as exc:
                return error(exc.status, exc.message)
            except sqlite3.Error as exc:
                return error(500, f"storage error: {exc}")

        return endpoint

    async def _http_error(self, request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        if exc.status_code in (404, 405):
            return error(404, f"no operation {request.method} {request.url.path}")
        return error(400 if exc.status_code < 500 else 500, str(exc.detail))

    # ---- handlers

    @staticmethod
    def _actor(request: Request) -> str:
        return str(request.scope.get("state", {}).get("actor") or "emulator")

    async def get_singleton(self, kind: str, request: Request) -> Response:
        org = request.path_params["org"]
        return JSONResponse(await run_in_threadpool(self.store.get_singleton, org, kind))

    async def put_singleton(self, kind: str, request: Request) -> Response:
        org = request.path_params["org"]
        body = await _json_body(request)
        actor = self._actor(request)
        return JSONResponse(await run_in_threadpool(lambda: self.store.put_singleton(org, kind, body, actor=actor)))

    async def list_entities(self, kind: str, request: Request) -> Response:
        org = request.path_params["org"]
        registered = kinds.BY_NAME.get(kind)
        # each endpoint's own pageSize maximum (openapi-full.json: 200 for products and plan groups)
        size = _page_size(request, self.emulator.config.default_page_size,
                          registered.page_size if registered is not None else LIST_MAX)
        token = request.query_params.get("nextToken") or None
        ids = _multi(request, "ids")
        # an endpoint without a ``codes`` parameter ignores one, like any unknown parameter
        codes = _multi(request, "codes") if registered is None or registered.codes_filter else None
        archivable = registered is not None and registered.archivable
        archived = _archived(request, kind, self.emulator.config) if archivable else None
        # the endpoint's filters by a field of the object (``productId``, ``planId``...)
        filters = registered.list_filters if registered is not None else {}
        where = {field: values for param, field in filters.items() if (values := _multi(request, param))}
        items, next_token = await run_in_threadpool(
            lambda: self.store.list(
                org, kind, page_size=size, next_token=token, ids=ids, codes=codes, archived=archived, where=where
            )
        )
        return _page(items, next_token)

    async def create_entity(self, kind: str, request: Request) -> Response:
        org = request.path_params["org"]
        body = await _json_body(request)
        actor = self._actor(request)
        return JSONResponse(await run_in_threadpool(lambda: self.store.create(org, kind, body, actor=actor)))

    async def get_entity(self, kind: str, request: Request) -> Response:
        org, entity_id = request.path_params["org"], request.path_params["id"]
        return JSONResponse(await run_in_threadpool(self.store.get, org, kind, entity_id))

    async def update_entity(self, kind: str, request: Request) -> Response:
        org, entity_id = request.path_params["org"], request.path_params["id"]
        body = await _json_body(request)
        actor = self._actor(request)
        return JSONResponse(await run_in_threadpool(lambda: self.store.update(org, kind, entity_id, body, actor=actor)))

    async def delete_entity(self, kind: str, request: Request) -> Response:
        org, entity_id = request.path_params["org"], request.path_params["id"]
        actor = self._actor(request)
        return JSONResponse(await run_in_threadpool(lambda: self.store.delete(org, kind, entity_id, actor=actor)))

    async def list_account_plans(self, _: str, request: Request) -> Response:
        """``GET /accountplans`` with the filters of openapi-full.json (ListAccountPlans)."""
        org = request.path_params["org"]
        size = _page_size(request, self.emulator.config.default_page_size, LIST_MAX)
        token = request.query_params.get("nextToken") or None
        q = request.query_params
        include_all = _boolean(request, "includeall", default=False)
        items, next_token = await run_in_threadpool(
            lambda: self.store.list_account_plans(
                org,
                page_size=size,
                next_token=token,
                account=q.get("account") or None,
                plan=q.get("plan") or None,
                contract=q.get("contract") or None,
                product=q.get("product") or None,
                include_all=include_all,
                date=q.get("date") or None,
                ids=_multi(request, "ids"),
            )
        )
        return _page(items, next_token)

    async def account_children(self, _: str, request: Request) -> Response:
        org, entity_id = request.path_params["org"], request.path_params["id"]
        size = _page_size(request, self.emulator.config.default_page_size, CHILDREN_MAX)
        token = request.query_params.get("nextToken") or None
        items, next_token = await run_in_threadpool(
            lambda: self.store.children(org, entity_id, page_size=size, next_token=token)
        )
        return _page(items, next_token)

    async def search_accounts(self, _: str, request: Request) -> Response:
        org = request.path_params["org"]
        accounts = await run_in_threadpool(self.store.list_all, org, "account")
        items, next_token = _search(accounts, request)
        return _page(items, next_token)

    async def token(self, request: Request) -> Response:
        creds = _basic_credentials(request.headers.get("authorization", ""))
        if creds is None:
            return error(403, "client credentials required: Authorization: Basic base64(apiKey:apiSecret)")
        if not self.emulator.credentials_ok(*creds):
            return error(403, "invalid client credentials")
        body = await request.body()
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        data: Any
        if ctype == "application/json" or (not ctype and body.lstrip().startswith(b"{")):
            try:
                data = json.loads(body) if body.strip() else {}
            except (ValueError, UnicodeDecodeError):
                return error(400, "the request body is not valid JSON")
            if not isinstance(data, dict):
                return error(400, "the request body must be a JSON object")
        else:
            parsed = urllib.parse.parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
            data = {k: v[-1] for k, v in parsed.items()}
        grant = data.get("grant_type")
        if not grant:
            return error(400, "grant_type is required (client_credentials)")
        if grant != "client_credentials":
            return error(400, f"unsupported grant_type {grant!r}: use client_credentials")
        return JSONResponse(
            {
                "access_token": self.emulator.issue_token(),
                "token_type": "Bearer",
                "expires_in": self.emulator.config.token_ttl,
            }
        )

    # ---- ASGI entry: auth, rate limit, latency, faults

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.router(scope, receive, send)
            return
        emulator = self.emulator
        emulator.count("requests")
        send = self._counting(send)
        if emulator.observers:
            receive, send = _observed(emulator, scope, receive, send)
        path: str = scope["path"]
        if not path.startswith("/organizations/"):
            await self.router(scope, receive, send)
            return
        org = path.split("/")[2]
        headers = Headers(scope=scope)
        auth = headers.get("authorization", "")
        scheme, _, token = auth.partition(" ")
        try:
            if scheme.lower() != "bearer" or not token.strip():
                raise AuthError("a bearer token is required (POST /oauth/token to get one)")
            claims = emulator.check_token(token.strip())
            emulator.check_org(org)
        except AuthError as exc:
            await error(403, str(exc))(scope, receive, send)
            return
        retry_after = emulator.admit(org)
        if retry_after is not None:
            response = error(
                429,
                f"too many requests: more than {emulator.config.rate_limit:g} per second for organization {org}",
                headers={"Retry-After": str(max(1, math.ceil(retry_after)))},
            )
            await response(scope, receive, send)
            return
        if emulator.config.latency_ms > 0:
            await asyncio.sleep(emulator.config.latency_ms / 1000)
        scope.setdefault("state", {})["actor"] = str(claims.get("sub") or "emulator")
        failure = emulator.draw_failure(scope["method"] in WRITE_METHODS)
        if failure is None:
            await self.router(scope, receive, send)
            return
        kind, after = failure
        if after:

            async def swallow(message: Message) -> None:
                return None

            await self.router(scope, receive, swallow)
        await self._fail(kind, scope, receive, send)

    def _counting(self, send: Send) -> Send:
        emulator = self.emulator

        async def wrapped(message: Message) -> None:
            if message["type"] == "http.response.start":
                emulator.count(f"status_{message['status']}")
            await send(message)

        return wrapped

    async def _fail(self, kind: str, scope: Scope, receive: Receive, send: Send) -> None:
        if kind != "drop":
            status, message = FAILURE_MESSAGES[kind]
            await error(status, message)(scope, receive, send)
            return
        self.emulator.count("dropped")
        await _drop_connection(receive, send)


def _observed(emulator: Emulator, scope: Scope, receive: Receive, send: Send) -> tuple[Receive, Send]:
    """Wrap receive/send so that each answered exchange reaches ``emulator.observers``."""
    request_body: list[bytes] = []
    status: list[int] = []
    response_headers: dict[str, str] = {}
    response_body: list[bytes] = []

    async def recv() -> Message:
        message = await receive()
        if message["type"] == "http.request":
            request_body.append(message.get("body", b""))
        return message

    async def snd(message: Message) -> None:
        if message["type"] == "http.response.start":
            status.append(message["status"])
            response_headers.update((k.decode("latin-1"), v.decode("latin-1")) for k, v in message.get("headers", []))
        elif message["type"] == "http.response.body":
            response_body.append(message.get("body", b""))
            if not message.get("more_body", False) and status:
                exchange = Exchange(
                    method=scope["method"],
                    path=scope["path"],
                    query=scope.get("query_string", b"").decode("latin-1"),
                    request_headers={k.decode("latin-1"): v.decode("latin-1") for k, v in scope.get("headers", [])},
                    request_body=b"".join(request_body),
                    status=status[-1],
                    response_headers=dict(response_headers),
                    response_body=b"".join(response_body),
                )
                for observer in list(emulator.observers):
                    observer(exchange)
        await send(message)

    return recv, snd


async def _drop_connection(receive: Receive, send: Send) -> None:
    """Close the connection without answering (the client sees a connection error)."""
    cycle = getattr(receive, "__self__", None)
    transport = getattr(cycle, "transport", None)
    if transport is not None and hasattr(cycle, "disconnected"):
        # uvicorn: abort the socket and mark the cycle so uvicorn does not try to answer.
        cycle.disconnected = True  # type: ignore[union-attr]
        transport.abort()
        await asyncio.sleep(0)
        return
    # Any other server: start a response and break it off.
    await send({"type": "http.response.start", "status": 500, "headers": [(b"content-length", b"1000")]})
    raise ConnectionAbortedError("connection dropped on purpose by the emulator")


def _basic_credentials(header: str) -> tuple[str, str] | None:
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic" or not value.strip():
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    key, sep, secret = decoded.partition(":")
    if not sep:
        return None
    return key, secret
