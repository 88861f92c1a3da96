"""The ``m3ter`` backend: the real Config API over httpx.

- Target and credentials from the official SDKs' variables (see :mod:`m3ter_auth`).
- One ``httpx.Client`` (keep-alive pool sized for ``parallelism``) shared by every thread;
  every request to the organization API takes a slot from one :class:`RateLimiter`.
- Retries on 429 (honouring ``Retry-After``), 5xx and connection errors, with backoff,
  bounded in attempts and time (:mod:`retry`).
- Writes are never repeated blindly. When the answer to a write may have been lost (a
  connection error after sending, or a 5xx), the object is looked up before sending again:
  a create looks its code up, an update re-reads the object and compares versions, a delete
  checks that the object still exists.
- A 4XX on an update is followed by a re-read: a moved ``version`` is a
  :class:`ConflictError` ("changed since it was read; plan again"), anything else a
  :class:`ValidationFailed` carrying m3ter's own message.
- ``-v`` traces ``METHOD URL -> STATUS (ms)`` on stderr. No secret, token or request body
  ever reaches a trace or an exception message.
"""

from __future__ import annotations

import builtins
import sys
import threading
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any
from urllib.parse import quote, urlsplit

import httpx

from reconciler import __version__
from reconciler.backends import BackendOptions
from reconciler.backends.base import (
    CODE_LOOKUP_UNLIMITED,
    Backend,
    BackendError,
    ConflictError,
    Entity,
    NotFoundError,
    ReadProgress,
    ValidationFailed,
)
from reconciler.backends.m3ter_auth import (
    DEFAULT_BASE_URL,
    DEFAULT_TOKEN_TTL,
    ENV_API_TOKEN,
    REJECTED_CREDENTIALS,
    Credentials,
    TokenCache,
    checked_base_url,
    config_from_environment,
    is_loopback_host,
)
from reconciler.backends.ratelimit import RateLimiter
from reconciler.backends.retry import (
    RetryBudget,
    RetryPolicy,
    is_retryable_status,
    parse_retry_after,
    request_may_have_arrived,
)
from reconciler.compare import same
from reconciler.kinds import READ_ONLY_FIELDS, Kind

#: At most this many codes per filtered list request: the ``codes`` arrays of ListAccounts and
#: the picklist lists declare no maxItems (openapi-full.json), but a page holds at most 100
#: objects (``pageSize`` maximum), so a batch of 100 codes is answered by one page, and a
#: larger one would need cursor pages again, one after another.
CODES_PER_REQUEST = 100
#: ... and at most about this many characters of percent-encoded ``codes=`` query per request,
#: so the request line stays well under the 8 KiB that common front ends accept (nginx's
#: default header buffer, CloudFront's URL limit). 100 codes of up to ~50 URL-safe characters
#: fit; codes longer or needing escapes make smaller batches.
CODES_QUERY_CHARS = 6000
#: pageSize for the read-only listings (statement definitions, account plans): their maximum.
READ_PAGE_SIZE = 100
#: Longest slice of an API error message passed on to people.
MESSAGE_LIMIT = 500

Params = list[tuple[str, str | int | float | bool | None]]
Entities = list[Entity]  # aliases: inside the class, ``list`` names the method
_NOT_APPLIED: Any = object()  # sentinel: the lost write did not take effect, send it again


class _Refused(BackendError):
    """A 4XX other than 401/403/404/429: the request was understood and rejected."""

    def __init__(self, message: str, *, status: int, api_message: str, after_lost: bool) -> None:
        super().__init__(message, status=status)
        self.api_message = api_message
        self.after_lost = after_lost  # an earlier attempt of the same write may have taken effect


class _Missing(NotFoundError):
    def __init__(self, message: str, *, after_lost: bool) -> None:
        super().__init__(message, status=404)
        self.after_lost = after_lost


class M3terBackend(Backend):
    """The m3ter Config API for one organization. Safe to call from several threads at once."""

    # Any number of codes of a kind that is not pruned is fetched by ``codes`` filter rather
    # than by listing the whole kind. Batches of 100 codes are one page each and run in
    # parallel under the rate limit, where a cursor walk is one page after another: when the
    # organization holds the managed objects, the batches send no more requests than the walk
    # (ceil(codes/100) <= ceil(total/100)) and finish several times sooner (at 100 ms a page,
    # 10k objects: ~2 s at 50 requests/s against 10 s). When it does not (a fresh organization)
    # they cost one request per 100 objects the apply will create, one request each: at most
    # 1% more. README "How the m3ter backend behaves".
    code_lookup_limit = CODE_LOOKUP_UNLIMITED

    def __init__(
        self,
        org_id: str,
        credentials: Credentials,
        *,
        base_url: str = DEFAULT_BASE_URL,
        options: BackendOptions | None = None,
        transport: httpx.BaseTransport | None = None,
        retry_policy: RetryPolicy | None = None,
        timeout: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not org_id:
            raise BackendError("the m3ter organization id is empty (set M3TER_ORG_ID)")
        self.options = options or BackendOptions()
        self.base_url = checked_base_url(base_url)
        self.org_id = org_id
        self.name = f"m3ter:{self.base_url}"
        self._org_url = f"{self.base_url}/organizations/{quote(org_id, safe='')}"
        self._credentials = credentials
        self._retry = retry_policy or RetryPolicy()
        self._clock = clock
        self._sleep = sleep
        self._limiter = RateLimiter(self.options.rate_limit, clock=clock, sleep=sleep)
        self._tokens = TokenCache(credentials, self._fetch_token, clock=clock)
        self._stats = dict.fromkeys(("requests", "retries", "status_429", "errors", "token_requests"), 0)
        self._stats_lock = threading.Lock()
        self._trace_lock = threading.Lock()
        self._workers = max(1, self.options.parallelism)
        pool = self._workers + 4  # apply threads, plus a little room for lookups
        host = urlsplit(self.base_url).hostname or ""
        self._client = httpx.Client(
            transport=transport,
            limits=httpx.Limits(max_connections=pool, max_keepalive_connections=pool, keepalive_expiry=30),
            timeout=httpx.Timeout(timeout, connect=min(10.0, timeout)),
            headers={"Accept": "application/json", "User-Agent": f"reconciler/{__version__}"},
            follow_redirects=False,
            trust_env=not is_loopback_host(host),  # no proxy between us and a loopback emulator
        )
        self._closed = False

    @classmethod
    def from_environment(
        cls,
        base_url: str | None = None,
        options: BackendOptions | None = None,
        *,
        environ: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> M3terBackend:
        """Build from ``M3TER_*`` variables; ``base_url`` (``--backend m3ter:URL``) wins over
        ``M3TER_BASE_URL``."""
        org_id, credentials, env_base = config_from_environment(environ)
        return cls(org_id, credentials, base_url=base_url or env_base or DEFAULT_BASE_URL, options=options, **kwargs)

    # ------------------------------------------------------------------ reads

    def list(self, kind: Kind, codes: Collection[str] | None = None) -> Entities:
        if kind.singleton:
            return [self.get_singleton(kind)]
        jobs = [partial(self._run_listing, kind, listing, None) for listing in self._listings(kind, codes)]
        return _merge_by_id(self._run_parallel(jobs), codes)

    def fetch_live(
        self, wanted: Mapping[str, Collection[str] | None], progress: ReadProgress | None = None
    ) -> dict[str, Entities]:
        """Every kind and every ``codes`` batch fetched concurrently on up to ``parallelism``
        threads under the rate limit; only the pages of one cursor walk follow each other.

        ``progress`` hears units done (codes looked up, objects listed, singletons read) and
        the units expected, None while a cursor walk of unknown length is part of the read.
        """
        from reconciler import kinds

        listings: list[tuple[str, Kind, _Listing]] = []
        for name, codes in wanted.items():
            kind = kinds.get(name)
            if kind.singleton:
                listings.append((name, kind, _Listing([], units=1, singleton=True)))
            else:
                listings.extend((name, kind, listing) for listing in self._listings(kind, codes))
        if not listings:
            return {name: [] for name in wanted}
        walking = any(listing.units is None for _, _, listing in listings)
        counter = _ReadCounter(progress, None if walking else sum(ls.units or 0 for _, _, ls in listings))
        jobs = [(name, partial(self._run_listing, kind, listing, counter)) for name, kind, listing in listings]
        results: dict[str, list[Entities]] = {name: [] for name in wanted}
        for (name, _), pages in zip(jobs, self._run_parallel([job for _, job in jobs]), strict=True):
            results[name].append(pages)
        return {
            name: _merge_by_id(pages, wanted[name] if not kinds.get(name).singleton else None)
            for name, pages in results.items()
        }

    def statement_definitions(self) -> Entities:
        """``GET /statementdefinitions``, every page (pageSize at most 100: openapi-full.json,
        ListStatementDefinitions)."""
        return self._pages(f"{self._org_url}/statementdefinitions", [], READ_PAGE_SIZE, "statement definitions")

    def _run_parallel(self, jobs: Sequence[Callable[[], Entities]]) -> builtins.list[Entities]:
        """Run listing jobs on up to ``parallelism`` threads; results in job order."""
        if len(jobs) <= 1:
            return [job() for job in jobs]
        pool = ThreadPoolExecutor(max_workers=min(self._workers, len(jobs)), thread_name_prefix="m3ter-fetch")
        try:
            futures = [pool.submit(job) for job in jobs]
            results = [f.result() for f in futures]
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)
            raise
        pool.shutdown(wait=True)
        return results

    def get(self, kind: Kind, entity_id: str) -> Entity | None:
        if kind.singleton:
            return self.get_singleton(kind)
        try:
            return self._entity(self._call("GET", self._item_url(kind, entity_id), what=f"get {kind.name}"))
        except NotFoundError:
            return None

    def get_singleton(self, kind: Kind) -> Entity:
        try:
            return self._entity(self._call("GET", self._kind_url(kind), what=f"get {kind.name}"))
        except NotFoundError:
            raise BackendError(
                f"m3ter has no {kind.name} for organization {self.org_id} (404): check the organization id "
                "and the base URL",
                status=404,
            ) from None

    # ------------------------------------------------------------------ writes

    def create(self, kind: Kind, body: Mapping[str, Any]) -> Entity:
        payload = {k: v for k, v in body.items() if k not in READ_ONLY_FIELDS}
        code = payload.get("code")
        label = f"{kind.name} {code}" if code is not None else kind.name

        def lookup() -> Any:
            if code is None:
                raise BackendError(
                    f"the answer to creating a {kind.name} was lost and it has no code to look it up by: "
                    "check the organization before running again"
                )
            found = self.find_by_code(kind, str(code))
            return found if found is not None else _NOT_APPLIED

        try:
            return self._entity(
                self._call("POST", self._kind_url(kind), body=payload, on_lost=lookup, what=f"create {label}")
            )
        except _Refused as exc:
            if exc.after_lost and code is not None:
                # e.g. "duplicate code" because the lost attempt did create it after all.
                found = self.find_by_code(kind, str(code))
                if found is not None:
                    return found
            raise ValidationFailed(f"m3ter refused {label}: {exc.api_message}", status=exc.status) from None
        except NotFoundError:
            raise BackendError(
                f"m3ter answered 404 to creating {label}: check the base URL and organization id", status=404
            ) from None

    def update(self, kind: Kind, entity_id: str, body: Mapping[str, Any]) -> Entity:
        if kind.singleton:
            return self.put_singleton(kind, body)
        code = body.get("code")
        label = f"{kind.name} {code if code is not None else entity_id}"
        return self._replace(label, self._item_url(kind, entity_id), body, lambda: self.get(kind, entity_id))

    def put_singleton(self, kind: Kind, body: Mapping[str, Any]) -> Entity:
        return self._replace(kind.name, self._kind_url(kind), body, lambda: self.get_singleton(kind))

    def delete(self, kind: Kind, entity_id: str) -> Entity:
        label = f"{kind.name} {entity_id}"
        gone: Entity = {"id": entity_id}

        def still_there() -> Any:
            return _NOT_APPLIED if self.get(kind, entity_id) is not None else gone

        try:
            return self._entity(
                self._call("DELETE", self._item_url(kind, entity_id), on_lost=still_there, what=f"delete {label}")
            )
        except _Missing as exc:
            if exc.after_lost:
                return gone
            raise NotFoundError(
                f"{label} does not exist any more (deleted since it was read?); plan again", status=404
            ) from None
        except _Refused as exc:
            raise ValidationFailed(f"m3ter refused to delete {label}: {exc.api_message}", status=exc.status) from None

    # ------------------------------------------------------------------ housekeeping

    def stats(self) -> dict[str, int]:
        with self._stats_lock:
            return dict(self._stats)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._client.close()

    # ------------------------------------------------------------------ listing helpers

    def _listings(self, kind: Kind, codes: Collection[str] | None) -> builtins.list[_Listing]:
        """Every listing that together covers ``codes`` (or the whole kind).

        Picklists are listed twice, without a filter and with ``archived=true``, because the
        API documents the flag two ways and never states its default (API-NOTES).
        """
        if codes is not None and not codes:
            return []  # nothing wanted: nothing to read (a kind the manifests do not name)
        base: Params = list(kind.list_params)
        variants: list[Params] = [base]
        if kind.archivable:
            variants.append([*base, ("archived", "true")])
        if codes is None or not kind.codes_filter or not kind.by_code:
            return [_Listing(v, units=None) for v in variants]
        if any("," in str(c) for c in codes):
            # Array query parameters go comma-joined, as the official SDKs send them
            # (m3ter 0.9.0: ``Querystring(array_format="comma")`` in _client.py), so a code
            # holding a comma (account codes may) cannot be asked for by filter: list the
            # whole kind instead; _merge_by_id keeps only the wanted codes.
            return [_Listing(v, units=None) for v in variants]
        return [
            # a batch counts once for progress, on its first variant
            _Listing([("codes", ",".join(batch)), *variant], units=len(batch) if i == 0 else 0)
            for batch in code_batches(codes, min(CODES_PER_REQUEST, kind.page_size))
            for i, variant in enumerate(variants)
        ]

    def _run_listing(self, kind: Kind, listing: _Listing, counter: _ReadCounter | None) -> Entities:
        """One listing, every page; reports to ``counter`` per page of a walk, or once for a
        batch of codes (or a singleton)."""
        if listing.singleton:
            found = [self.get_singleton(kind)]
        else:
            on_page = counter.add if counter is not None and listing.units is None else None
            found = self._pages(self._kind_url(kind), listing.params, kind.page_size, kind.name, on_page)
        if counter is not None and listing.units:
            counter.add(listing.units)
        return found

    def _pages(
        self, url: str, params: Params, page_size: int, label: str, on_page: Callable[[int], None] | None = None
    ) -> Entities:
        """Every page of one listing, in turn (``nextToken`` until there is none); ``on_page``
        hears how many objects each page brought."""
        out: Entities = []
        seen_tokens: set[str] = set()
        next_token: str | None = None
        while True:
            query = [*params, ("pageSize", str(page_size))]
            if next_token:
                query.append(("nextToken", next_token))
            try:
                page = self._call("GET", url, params=query, what=f"list {label}")
            except NotFoundError:
                raise BackendError(
                    f"m3ter answered 404 to listing {label}: check the base URL and organization id",
                    status=404,
                ) from None
            except _Refused as exc:
                raise BackendError(f"m3ter refused to list {label}: {exc.api_message}", status=exc.status) from None
            data = page.get("data") if isinstance(page, dict) else None
            if not isinstance(data, list):
                raise BackendError(f"m3ter answered listing {label} without a 'data' list")
            out.extend(e for e in data if isinstance(e, dict))
            if on_page is not None:
                on_page(len(data))
            next_token = page.get("nextToken") or None
            if next_token is None:
                return out
            if next_token in seen_tokens:
                raise BackendError(f"m3ter repeated a page token while listing {label}; stopping")
            seen_tokens.add(next_token)

    def _kind_url(self, kind: Kind) -> str:
        return f"{self._org_url}/{kind.api_path}"

    def _item_url(self, kind: Kind, entity_id: str) -> str:
        return f"{self._org_url}/{kind.api_path}/{quote(str(entity_id), safe='')}"

    # ------------------------------------------------------------------ replace (PUT) with version checks

    def _replace(self, label: str, url: str, body: Mapping[str, Any], reread: Callable[[], Entity | None]) -> Entity:
        payload = {k: v for k, v in body.items() if k not in READ_ONLY_FIELDS or k == "version"}
        sent_version = payload.get("version")
        changed = ConflictError(f"{label} changed since it was read; plan again")
        deleted = ConflictError(f"{label} was deleted since it was read; plan again", status=404)

        def verdict(live: Entity | None, after_lost: bool) -> str:
            if live is None:
                return "deleted"
            live_version = live.get("version")
            if sent_version is None or live_version == sent_version:
                return "applied" if after_lost and sent_version is None and _matches(payload, live) else "same"
            if (
                after_lost
                and isinstance(sent_version, int)
                and live_version == sent_version + 1
                and _matches(payload, live)
            ):
                return "applied"
            return "moved"

        def check_lost() -> Any:
            live = reread()
            seen = verdict(live, True)
            if seen == "applied":
                return live
            if seen == "same":
                return _NOT_APPLIED
            raise deleted if seen == "deleted" else changed

        try:
            return self._entity(self._call("PUT", url, body=payload, on_lost=check_lost, what=f"update {label}"))
        except _Missing:
            raise deleted from None
        except _Refused as exc:
            try:
                live = reread()
            except BackendError:
                raise ValidationFailed(
                    f"m3ter refused {label}: {exc.api_message} (and re-reading it to check for a "
                    "concurrent change failed)",
                    status=exc.status,
                ) from None
            seen = verdict(live, exc.after_lost)
            if seen == "applied" and live is not None:
                return live
            if seen == "deleted":
                raise deleted from None
            if seen == "moved":
                raise changed from None
            raise ValidationFailed(f"m3ter refused {label}: {exc.api_message}", status=exc.status) from None

    # ------------------------------------------------------------------ the request loop

    def _call(
        self,
        method: str,
        url: str,
        *,
        params: Params | None = None,
        body: Mapping[str, Any] | None = None,
        on_lost: Callable[[], Any] | None = None,
        what: str,
    ) -> Any:
        """Send one logical request to the organization API and return its JSON.

        Retries what is worth retrying. For writes (``on_lost`` given), a possibly lost answer
        makes ``on_lost`` run before the next attempt: it returns the result when the write
        took effect after all, ``_NOT_APPLIED`` to send it again, or raises.
        """
        is_write = on_lost is not None
        budget = RetryBudget(self._retry, clock=self._clock)
        reauthenticated = False
        maybe_applied = False  # some earlier attempt may have reached the server and taken effect
        lost = False  # the latest attempt's answer was lost
        while True:
            if lost and on_lost is not None:
                outcome = on_lost()
                if outcome is not _NOT_APPLIED:
                    return outcome
            lost = False
            token = self._tokens.token()
            self._limiter.acquire()
            budget.start_attempt()
            retry_after: float | None = None
            status: int | None = None
            try:
                response = self._send(
                    method, url, params=params, body=body, headers={"Authorization": f"Bearer {token}"}
                )
            except httpx.TransportError as exc:
                self._count("errors")
                failure = f"connection error ({type(exc).__name__})"
                lost = is_write and request_may_have_arrived(exc)
            else:
                status = response.status_code
                if 200 <= status < 300:
                    return self._json(response, what)
                if status in (401, 403):
                    if not reauthenticated and self._tokens.can_renew:
                        reauthenticated = True
                        self._tokens.renew_after_refusal(token)
                        continue
                    self._count("errors")
                    raise self._forbidden(status)
                if status == 404:
                    raise _Missing(f"{what}: not found (404)", after_lost=maybe_applied)
                message = _api_message(response)
                retry_after = parse_retry_after(response.headers.get("Retry-After"))
                if status == 429:
                    self._count("status_429")
                else:
                    self._count("errors")
                if not is_retryable_status(status):
                    raise _Refused(
                        f"m3ter refused to {what} ({status}): {message}",
                        status=status,
                        api_message=message,
                        after_lost=maybe_applied,
                    )
                failure = f"{status} {message}"
                lost = is_write and status != 429
            maybe_applied = maybe_applied or lost
            delay = budget.next_delay(retry_after)
            if delay is None:
                if lost and on_lost is not None:
                    outcome = on_lost()  # one last look: did it take effect after all?
                    if outcome is not _NOT_APPLIED:
                        return outcome
                raise BackendError(
                    f"could not {what}: m3ter still failing after {budget.attempts} attempts over "
                    f"{budget.elapsed:.1f} s (last: {failure})",
                    status=status,
                    retryable=True,
                )
            if retry_after is not None:
                self._limiter.pause_until(self._clock() + retry_after)
            self._count("retries")
            self._sleep(delay)

    def _forbidden(self, status: int) -> BackendError:
        if self._credentials.can_renew:
            return BackendError(
                f"forbidden: the credentials cannot access organization {self.org_id} "
                "(unknown organization or missing permission)",
                status=status,
            )
        return BackendError(
            f"forbidden: m3ter refused the token in {ENV_API_TOKEN} for organization {self.org_id} "
            "(expired token, unknown organization or missing permission)",
            status=status,
        )

    def _fetch_token(self) -> tuple[str, float]:
        """Client-credentials exchange; called by the token cache, one thread at a time.

        The token endpoint is not part of the per-organization rate limit.
        """
        url = f"{self.base_url}/oauth/token"
        budget = RetryBudget(self._retry, clock=self._clock)
        while True:
            budget.start_attempt()
            retry_after: float | None = None
            try:
                response = self._send(
                    "POST",
                    url,
                    body={"grant_type": "client_credentials"},
                    headers={"Authorization": self._credentials.basic_authorization()},
                    token_endpoint=True,
                )
            except httpx.TransportError as exc:
                failure = f"connection error ({type(exc).__name__})"
            else:
                status = response.status_code
                if status == 200:
                    return _parse_token(response)
                if status in (400, 401, 403):
                    raise BackendError(REJECTED_CREDENTIALS, status=status)
                if not is_retryable_status(status):
                    raise BackendError(
                        f"m3ter's token endpoint {url} answered {status}: check M3TER_BASE_URL", status=status
                    )
                if status == 429:
                    retry_after = parse_retry_after(response.headers.get("Retry-After"))
                failure = f"{status} {_api_message(response)}"
            delay = budget.next_delay(retry_after)
            if delay is None:
                raise BackendError(
                    f"could not get an m3ter access token after {budget.attempts} attempts (last: {failure})",
                    retryable=True,
                )
            self._count("retries")
            self._sleep(delay)

    def _send(
        self,
        method: str,
        url: str,
        *,
        params: Params | None = None,
        body: Mapping[str, Any] | None = None,
        headers: Mapping[str, str],
        token_endpoint: bool = False,
    ) -> httpx.Response:
        """One HTTP exchange, counted and (with ``verbose``) traced without any header."""
        request = self._client.build_request(method, url, params=params, json=body, headers=dict(headers))
        self._count("token_requests" if token_endpoint else "requests")
        started = time.perf_counter()
        try:
            response = self._client.send(request)
            response.read()
        except httpx.TransportError as exc:
            self._trace(request, type(exc).__name__, started)
            raise
        self._trace(request, str(response.status_code), started)
        return response

    def _trace(self, request: httpx.Request, outcome: str, started: float) -> None:
        if not self.options.verbose:
            return
        ms = (time.perf_counter() - started) * 1000
        line = f"{request.method} {request.url} -> {outcome} ({ms:.0f} ms)\n"
        with self._trace_lock:
            sys.stderr.write(line)
            sys.stderr.flush()

    def _count(self, name: str) -> None:
        with self._stats_lock:
            self._stats[name] += 1

    @staticmethod
    def _json(response: httpx.Response, what: str) -> Any:
        try:
            return response.json()
        except ValueError:
            raise BackendError(
                f"m3ter answered {what} with something that is not JSON (status {response.status_code})"
            ) from None

    @staticmethod
    def _entity(value: Any) -> Entity:
        if not isinstance(value, dict):
            raise BackendError("m3ter answered with something that is not an object")
        return value


# ---------------------------------------------------------------------- helpers


class _Listing:
    """One listing request and its follow-up pages: its query, and how many progress units
    it is worth (a batch's codes; None for a cursor walk, counted page by page)."""

    __slots__ = ("params", "singleton", "units")

    def __init__(self, params: Params, *, units: int | None, singleton: bool = False) -> None:
        self.params = params
        self.units = units
        self.singleton = singleton


class _ReadCounter:
    """Sums the units worker threads report and tells ``progress``, one call at a time."""

    def __init__(self, progress: ReadProgress | None, total: int | None) -> None:
        self._progress = progress
        self._total = total
        self._done = 0
        self._lock = threading.Lock()

    def add(self, units: int) -> None:
        if self._progress is None:
            return
        with self._lock:
            self._done += units
            self._progress(self._done, self._total)


def code_batches(codes: Collection[str], per_request: int = CODES_PER_REQUEST) -> list[list[str]]:
    """Unique codes in stable order, at most ``per_request`` a batch, cut so each request's
    query stays short."""
    unique = list(dict.fromkeys(str(c) for c in codes))
    batches: list[list[str]] = []
    batch: list[str] = []
    size = 0
    for code in unique:
        cost = len("codes=") + len(quote(code, safe="")) + 3  # joined, each costs its escapes + %2C
        if batch and (len(batch) >= per_request or size + cost > CODES_QUERY_CHARS):
            batches.append(batch)
            batch, size = [], 0
        batch.append(code)
        size += cost
    if batch:
        batches.append(batch)
    return batches


def _merge_by_id(pages: list[list[Entity]], codes: Collection[str] | None) -> list[Entity]:
    """One entry per id, first seen first; only the asked-for codes when a filter was given."""
    wanted = None if codes is None else {str(c) for c in codes}
    merged: dict[str, Entity] = {}
    for page in pages:
        for entity in page:
            if wanted is not None and str(entity.get("code")) not in wanted:
                continue
            key = str(entity.get("id") or f"code:{entity.get('code')}")
            merged.setdefault(key, entity)
    return list(merged.values())


def _matches(sent: Any, live: Any) -> bool:
    """Whether the live object holds the values a write sent (numbers by value, None as empty)."""
    if isinstance(sent, Mapping):
        if live is None:
            live = {}
        if not isinstance(live, Mapping):
            return False
        return all(_matches(v, live.get(k)) for k, v in sent.items() if k not in READ_ONLY_FIELDS)
    if isinstance(sent, list):
        return isinstance(live, list) and len(sent) == len(live) and all(map(_matches, sent, live))
    return same(sent, live)  # scalars by the planner's rules: numbers by value, None as empty


def _api_message(response: httpx.Response) -> str:
    """m3ter's ``{"message": ...}``, or a short stand-in; never a header, never our request."""
    text = ""
    try:
        payload = response.json()
    except ValueError:
        payload = None
    if isinstance(payload, dict) and isinstance(payload.get("message"), str):
        text = payload["message"]
    elif response.headers.get("content-type", "").startswith("text/plain") and len(response.content) < 2000:
        text = response.text
    text = " ".join("".join(ch if ch.isprintable() else " " for ch in text).split())
    if not text:
        text = response.reason_phrase or f"HTTP {response.status_code}"
    return text if len(text) <= MESSAGE_LIMIT else text[: MESSAGE_LIMIT - 1] + "…"


def _parse_token(response: httpx.Response) -> tuple[str, float]:
    try:
        payload = response.json()
    except ValueError:
        payload = None
    token = payload.get("access_token") if isinstance(payload, dict) else None
    if not isinstance(token, str) or not token:
        raise BackendError("m3ter's token endpoint answered without an access token")
    expires_in = payload.get("expires_in") if isinstance(payload, dict) else None
    ttl = float(expires_in) if isinstance(expires_in, int | float) and expires_in > 0 else DEFAULT_TOKEN_TTL
    return token, ttl
