"""Unit tests of the m3ter backend against an in-process fake of the Config API.

The fake is an ``httpx.MockTransport`` handler: nothing leaves the process. Time is a fake
clock whose ``sleep`` only moves the clock, so backoff, Retry-After and rate-limit pacing are
checked exactly and instantly; two small real-time checks use generous bounds.
"""

from __future__ import annotations

import base64
import itertools
import json
import re
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest

from reconciler import kinds
from reconciler.backends import BackendOptions
from reconciler.backends.base import BackendError, ConflictError, NotFoundError, ValidationFailed
from reconciler.backends.m3ter import M3terBackend, code_batches
from reconciler.backends.m3ter_auth import Credentials, checked_base_url, is_loopback_host, renew_ahead
from reconciler.backends.ratelimit import RateLimiter
from reconciler.backends.retry import RetryBudget, RetryPolicy, parse_retry_after

ORG = "org-0001"
KEY = "AKIAKEYVALUE12345"
SECRET = "very-secret-value-98765"
BASIC = base64.b64encode(f"{KEY}:{SECRET}".encode()).decode()
BASE = "https://api.example.test"

ACCOUNT = kinds.get("account")
CURRENCY = kinds.get("currency")
CREDIT = kinds.get("creditReason")
ORG_CONFIG = kinds.get("organizationConfig")
CUSTOM_FIELDS = kinds.get("customFields")

Hook = Callable[[httpx.Request], httpx.Response | None]


class FakeClock:
    """Monotonic time that only ``sleep`` moves; records every sleep."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []
        self.lock = threading.Lock()

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        with self.lock:
            self.sleeps.append(seconds)
            self.now += seconds


class FakeM3ter:
    """Just enough of the Config API: auth, pagination, filters, versions, picklist archive.

    ``before`` hooks run before a request is handled (return a response to short-circuit, or
    raise a transport error); ``after`` hooks see the real response and may replace it or
    raise, which simulates an answer lost after the server stored the change.
    """

    def __init__(self, *, ttl: float = 18000, archived_filter: str = "only") -> None:
        self.ttl = ttl
        self.archived_filter = archived_filter  # "only" or "include" (API-NOTES: both documented)
        self.objects: dict[str, dict[str, dict[str, Any]]] = {}
        self.singletons: dict[str, dict[str, Any]] = {
            "organizationconfig": {"id": "oc", "version": 1, "currency": "USD", "timezone": "UTC"},
            "customfields": {"id": "cf", "version": 1, "account": {}},
        }
        self.valid_tokens: set[str] = set()
        self.token_serial = itertools.count(1)
        self.requests: list[httpx.Request] = []
        self.before: list[Hook] = []
        self.after: list[Callable[[httpx.Request, httpx.Response], httpx.Response | None]] = []
        self.lock = threading.Lock()

    # -- test helpers
    def add(self, api_path: str, **fields: Any) -> dict[str, Any]:
        entity = {"id": str(uuid.uuid4()), "version": 1, "dtCreated": "2024-01-01T00:00:00Z", **fields}
        self.objects.setdefault(api_path, {})[entity["id"]] = entity
        return entity

    def count(self, method: str, path_part: str = "") -> int:
        return sum(1 for r in self.requests if r.method == method and path_part in r.url.path)

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    # -- the server
    def handle(self, request: httpx.Request) -> httpx.Response:
        with self.lock:
            self.requests.append(request)
        for hook in list(self.before):
            answer = hook(request)
            if answer is not None:
                return answer
        response = self.route(request)
        for after_hook in list(self.after):
            replaced = after_hook(request, response)
            if replaced is not None:
                return replaced
        return response

    def route(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path == "/oauth/token":
            return self.token(request)
        auth = request.headers.get("Authorization", "")
        if not auth.startswith("Bearer ") or auth[7:] not in self.valid_tokens:
            return httpx.Response(403, json={"message": "Forbidden"})
        match = re.fullmatch(r"/organizations/([^/]+)/(.+)", path)
        if not match or match.group(1) != ORG:
            return httpx.Response(403, json={"message": "Forbidden"})
        rest = match.group(2)
        with self.lock:
            if rest in self.singletons:
                return self.singleton(request, rest)
            for api_path in (k.api_path for k in kinds.KINDS if not k.singleton):
                if rest == api_path:
                    return self.collection(request, api_path)
                if rest.startswith(api_path + "/"):
                    return self.item(request, api_path, rest[len(api_path) + 1 :])
        return httpx.Response(404, json={"message": "no such path"})

    def token(self, request: httpx.Request) -> httpx.Response:
        if request.headers.get("Authorization") != f"Basic {BASIC}":
            return httpx.Response(401, json={"message": "bad credentials"})
        if json.loads(request.content) != {"grant_type": "client_credentials"}:
            return httpx.Response(400, json={"message": "bad grant"})
        token = f"tok-{next(self.token_serial)}-{uuid.uuid4().hex}"
        self.valid_tokens.add(token)
        return httpx.Response(200, json={"access_token": token, "token_type": "Bearer", "expires_in": self.ttl})

    def singleton(self, request: httpx.Request, name: str) -> httpx.Response:
        current = self.singletons[name]
        if request.method == "GET":
            return httpx.Response(200, json=current)
        body = json.loads(request.content)
        if body.get("version") != current["version"]:
            return httpx.Response(400, json={"message": "version mismatch"})
        self.singletons[name] = {**body, "id": current["id"], "version": current["version"] + 1}
        return httpx.Response(200, json=self.singletons[name])

    def collection(self, request: httpx.Request, api_path: str) -> httpx.Response:
        store = self.objects.setdefault(api_path, {})
        if request.method == "POST":
            body = json.loads(request.content)
            if "version" in body or "id" in body:
                return httpx.Response(400, json={"message": "create must not carry id or version"})
            if any(e.get("code") == body.get("code") for e in store.values()):
                return httpx.Response(400, json={"message": f"duplicate code {body.get('code')}"})
            entity = {**body, "id": str(uuid.uuid4()), "version": 1}
            store[entity["id"]] = entity
            return httpx.Response(200, json=entity)
        query = parse_qsl(request.url.query.decode(), keep_blank_values=True)
        codes = {c for k, v in query if k == "codes" for c in v.split(",")}
        archived = dict(query).get("archived")
        page_size = int(dict(query).get("pageSize", "10"))
        assert 1 <= page_size <= 200  # 200: products and plan groups (openapi-full.json)
        start = int(dict(query).get("nextToken", "0"))
        items = list(store.values())
        if codes:
            items = [e for e in items if e.get("code") in codes]
        if archived == "true" and self.archived_filter == "only":
            items = [e for e in items if e.get("archived")]
        elif archived is None and api_path.startswith("picklists/"):
            items = [e for e in items if not e.get("archived")]
        page = items[start : start + page_size]
        out: dict[str, Any] = {"data": page}
        if start + page_size < len(items):
            out["nextToken"] = str(start + page_size)
        return httpx.Response(200, json=out)

    def item(self, request: httpx.Request, api_path: str, entity_id: str) -> httpx.Response:
        store = self.objects.setdefault(api_path, {})
        current = store.get(entity_id)
        if current is None:
            return httpx.Response(404, json={"message": "not found"})
        if request.method == "GET":
            return httpx.Response(200, json=current)
        if request.method == "DELETE":
            del store[entity_id]
            return httpx.Response(200, json=current)
        body = json.loads(request.content)
        if body.get("version") != current["version"]:
            return httpx.Response(400, json={"message": "version mismatch"})
        if len(str(body.get("name", ""))) > 200:
            return httpx.Response(400, json={"message": "name: size must be between 1 and 200"})
        store[entity_id] = {**body, "id": entity_id, "version": current["version"] + 1}
        return httpx.Response(200, json=store[entity_id])


def make(
    server: FakeM3ter,
    clock: FakeClock | None = None,
    *,
    credentials: Credentials | None = None,
    rate_limit: float = 0,
    policy: RetryPolicy | None = None,
    verbose: bool = False,
    base_url: str = BASE,
    org_id: str = ORG,
) -> M3terBackend:
    clock = clock or FakeClock()
    return M3terBackend(
        org_id,
        credentials or Credentials(api_key=KEY, api_secret=SECRET),
        base_url=base_url,
        options=BackendOptions(rate_limit=rate_limit, parallelism=4, verbose=verbose),
        transport=server.transport(),
        retry_policy=policy or RetryPolicy(base_delay=0.1, max_delay=2.0),
        clock=clock,
        sleep=clock.sleep,
    )


def make_real_time(server: FakeM3ter, *, rate_limit: float) -> M3terBackend:
    """A backend on the real clock with 8 workers, for the tests about threads and pacing."""
    return M3terBackend(
        ORG,
        Credentials(api_key=KEY, api_secret=SECRET),
        base_url=BASE,
        options=BackendOptions(rate_limit=rate_limit, parallelism=8),
        transport=server.transport(),
    )


def fail_times(times: int, make_failure: Callable[[], httpx.Response], method: str = "") -> Hook:
    remaining = [times]

    def hook(request: httpx.Request) -> httpx.Response | None:
        if request.url.path == "/oauth/token" or (method and request.method != method):
            return None
        if remaining[0] > 0:
            remaining[0] -= 1
            return make_failure()
        return None

    return hook


def raise_times(times: int, exc_type: type[httpx.TransportError], method: str = "") -> Hook:
    remaining = [times]

    def hook(request: httpx.Request) -> httpx.Response | None:
        if request.url.path == "/oauth/token" or (method and request.method != method):
            return None
        if remaining[0] > 0:
            remaining[0] -= 1
            raise exc_type("simulated", request=request)
        return None

    return hook


# ---------------------------------------------------------------------- configuration


def test_missing_org_id_names_the_variable() -> None:
    with pytest.raises(BackendError, match="M3TER_ORG_ID is not set"):
        M3terBackend.from_environment(environ={"M3TER_API_KEY": KEY, "M3TER_API_SECRET": SECRET})


def test_missing_credentials_name_the_variables() -> None:
    with pytest.raises(BackendError) as info:
        M3terBackend.from_environment(environ={"M3TER_ORG_ID": ORG})
    message = str(info.value)
    assert "M3TER_API_KEY" in message and "M3TER_API_SECRET" in message and "M3TER_API_TOKEN" in message


def test_key_without_secret_says_which_is_missing() -> None:
    with pytest.raises(BackendError, match="M3TER_API_KEY is set but M3TER_API_SECRET is not") as info:
        M3terBackend.from_environment(environ={"M3TER_ORG_ID": ORG, "M3TER_API_KEY": KEY})
    assert KEY not in str(info.value)


def test_from_environment_base_url_precedence() -> None:
    env = {"M3TER_ORG_ID": ORG, "M3TER_API_TOKEN": "t", "M3TER_BASE_URL": "https://env.example.test/"}
    backend = M3terBackend.from_environment(environ=env)
    assert backend.base_url == "https://env.example.test"
    assert backend.name == "m3ter:https://env.example.test"
    assert backend.org_id == ORG
    backend.close()
    backend = M3terBackend.from_environment(base_url="http://127.0.0.1:8123", environ=env)
    assert backend.base_url == "http://127.0.0.1:8123"
    backend.close()
    backend = M3terBackend.from_environment(environ={k: v for k, v in env.items() if k != "M3TER_BASE_URL"})
    assert backend.base_url == "https://api.m3ter.com"
    backend.close()


@pytest.mark.parametrize(
    "url", ["http://api.m3ter.com", "http://10.0.0.5:8080", "http://example.test", "http://127.0.0.1.evil.test"]
)
def test_plain_http_to_a_remote_host_is_refused(url: str) -> None:
    with pytest.raises(BackendError, match="refusing to send m3ter credentials over plain http"):
        make(FakeM3ter(), base_url=url)


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:8080", "http://127.9.9.9", "http://localhost:1", "http://[::1]:9000", BASE]
)
def test_plain_http_to_loopback_and_https_are_allowed(url: str) -> None:
    assert checked_base_url(url + "/") == url


def test_odd_base_urls_are_refused() -> None:
    for url in ("ftp://x.test", "https://user:pw@x.test", "api.m3ter.com", "https://x.test/?a=1"):
        with pytest.raises(BackendError):
            checked_base_url(url)
    assert is_loopback_host("LOCALHOST") and not is_loopback_host("localhost.example.com")


# ---------------------------------------------------------------------- authentication


def test_token_is_requested_once_and_reused() -> None:
    server = FakeM3ter()
    backend = make(server)
    backend.get_singleton(ORG_CONFIG)
    backend.list(ACCOUNT)
    backend.get_singleton(CUSTOM_FIELDS)
    token_calls = [r for r in server.requests if r.url.path == "/oauth/token"]
    assert len(token_calls) == 1
    assert token_calls[0].headers["Authorization"] == f"Basic {BASIC}"
    assert json.loads(token_calls[0].content) == {"grant_type": "client_credentials"}
    assert backend.stats()["token_requests"] == 1
    assert backend.stats()["requests"] == 3


def test_token_is_renewed_shortly_before_expiry_even_with_a_short_ttl() -> None:
    server = FakeM3ter(ttl=2)
    clock = FakeClock()
    backend = make(server, clock)
    backend.get_singleton(ORG_CONFIG)
    clock.now += 0.75  # a 2 s token is renewed after 0.8 s (whole-second expiry slack)
    backend.get_singleton(ORG_CONFIG)
    assert backend.stats()["token_requests"] == 1
    clock.now += 0.1
    backend.get_singleton(ORG_CONFIG)
    assert backend.stats()["token_requests"] == 2


def test_renewal_margins() -> None:
    assert renew_ahead(18000) == 300
    assert renew_ahead(600) == 61
    assert renew_ahead(2) == pytest.approx(1.2)
    assert renew_ahead(1) == pytest.approx(0.6)


def test_long_ttl_renews_five_minutes_ahead() -> None:
    server = FakeM3ter(ttl=18000)
    clock = FakeClock()
    backend = make(server, clock)
    backend.get_singleton(ORG_CONFIG)
    clock.now += 18000 - 301
    backend.get_singleton(ORG_CONFIG)
    assert backend.stats()["token_requests"] == 1
    clock.now += 2
    backend.get_singleton(ORG_CONFIG)
    assert backend.stats()["token_requests"] == 2


def test_a_refused_token_is_renewed_once_and_the_call_succeeds() -> None:
    server = FakeM3ter()
    backend = make(server)
    backend.get_singleton(ORG_CONFIG)
    server.valid_tokens.clear()  # the server expired it early (m3ter answers 403, not 401)
    assert backend.get_singleton(ORG_CONFIG)["currency"] == "USD"
    assert backend.stats()["token_requests"] == 2


def test_a_401_also_triggers_one_renewal() -> None:
    server = FakeM3ter()
    server.before.append(fail_times(1, lambda: httpx.Response(401, json={"message": "Unauthorized"})))
    backend = make(server)
    backend.get_singleton(ORG_CONFIG)
    assert backend.stats()["token_requests"] == 2


def test_403_with_a_fresh_token_is_final_and_names_the_organization() -> None:
    server = FakeM3ter()
    backend = make(server, org_id="someone-elses-org")
    with pytest.raises(BackendError) as info:
        backend.list(ACCOUNT)
    assert str(info.value) == (
        "forbidden: the credentials cannot access organization someone-elses-org "
        "(unknown organization or missing permission)"
    )
    assert info.value.status == 403
    assert backend.stats()["token_requests"] == 2  # the first token, and exactly one renewal


def test_rejected_key_and_secret() -> None:
    server = FakeM3ter()
    backend = make(server, credentials=Credentials(api_key=KEY, api_secret="wrong-secret-000"))
    with pytest.raises(BackendError) as info:
        backend.list(ACCOUNT)
    assert str(info.value) == "m3ter rejected the API key/secret (check M3TER_API_KEY / M3TER_API_SECRET)"
    assert "wrong-secret-000" not in str(info.value) and KEY not in str(info.value)


def test_a_ready_token_is_used_as_is_and_a_refusal_names_the_variable() -> None:
    server = FakeM3ter()
    server.valid_tokens.add("ready-token-abc")
    backend = make(server, credentials=Credentials(api_token="ready-token-abc"))
    backend.list(ACCOUNT)
    assert backend.stats()["token_requests"] == 0
    assert server.requests[0].headers["Authorization"] == "Bearer ready-token-abc"
    server.valid_tokens.clear()
    with pytest.raises(BackendError, match="M3TER_API_TOKEN") as info:
        backend.list(ACCOUNT)
    assert "ready-token-abc" not in str(info.value)


def test_a_ready_token_with_key_and_secret_falls_back_to_renewal() -> None:
    server = FakeM3ter()
    backend = make(server, credentials=Credentials(api_key=KEY, api_secret=SECRET, api_token="stale-token"))
    backend.list(ACCOUNT)
    assert backend.stats()["token_requests"] == 1


def test_token_renewal_happens_once_when_many_threads_need_it() -> None:
    server = FakeM3ter()
    backend = make_real_time(server, rate_limit=0)
    backend.get_singleton(ORG_CONFIG)
    server.valid_tokens.clear()
    barrier = threading.Barrier(8)

    def work() -> None:
        barrier.wait()
        backend.get_singleton(ORG_CONFIG)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert backend.stats()["token_requests"] == 2


def test_token_endpoint_failures_are_retried() -> None:
    server = FakeM3ter()
    calls = [0]

    def flaky_token(request: httpx.Request) -> httpx.Response | None:
        if request.url.path == "/oauth/token" and calls[0] < 2:
            calls[0] += 1
            return httpx.Response(503, json={"message": "busy"})
        return None

    server.before.append(flaky_token)
    backend = make(server)
    backend.list(ACCOUNT)
    assert backend.stats()["token_requests"] == 3


# ---------------------------------------------------------------------- reads


def test_pagination_follows_next_token_with_the_kind_page_size() -> None:
    server = FakeM3ter()
    for i in range(250):
        server.add("accounts", code=f"A{i:03}", name=f"Account {i}")
    backend = make(server)
    listed = backend.list(ACCOUNT)
    assert sorted(e["code"] for e in listed) == [f"A{i:03}" for i in range(250)]
    lists = [r for r in server.requests if r.method == "GET"]
    assert len(lists) == 3
    assert all(dict(parse_qsl(r.url.query.decode()))["pageSize"] == "100" for r in lists)
    assert [dict(parse_qsl(r.url.query.decode())).get("nextToken") for r in lists] == [None, "100", "200"]


@pytest.mark.parametrize("semantics", ["only", "include"])
def test_picklists_are_listed_with_and_without_archived_and_merged(semantics: str) -> None:
    server = FakeM3ter(archived_filter=semantics)
    usd = server.add("picklists/currency", code="USD", name="US Dollar")
    old = server.add("picklists/currency", code="DEM", name="Mark", archived=True)
    backend = make(server)
    listed = backend.list(CURRENCY)
    assert sorted(e["id"] for e in listed) == sorted([usd["id"], old["id"]])  # no duplicates
    queries = [dict(parse_qsl(r.url.query.decode())) for r in server.requests if r.method == "GET"]
    assert sorted(q.get("archived", "-") for q in queries) == ["-", "true"]


def test_accounts_are_listed_once_without_an_archived_filter() -> None:
    server = FakeM3ter()
    backend = make(server)
    backend.list(ACCOUNT)
    gets = [r for r in server.requests if r.method == "GET"]
    assert len(gets) == 1 and "archived" not in gets[0].url.query.decode()


def test_codes_are_fetched_by_filter_in_batches() -> None:
    server = FakeM3ter()
    for i in range(300):
        server.add("accounts", code=f"A{i:03}", name="x")
    backend = make(server)
    wanted = [f"A{i:03}" for i in range(0, 300, 2)] + [f"MISSING{i}" for i in range(71)]
    found = backend.list(ACCOUNT, wanted)
    assert sorted(e["code"] for e in found) == sorted(wanted[:150])
    gets = [r for r in server.requests if r.method == "GET"]
    assert len(gets) == 3  # 221 codes: 100 + 100 + 21, each one page (pageSize's maximum is 100)
    for request in gets:
        sent = [v for k, v in parse_qsl(request.url.query.decode()) if k == "codes"]
        # one comma-joined parameter, as the official SDKs send arrays (array_format="comma")
        assert len(sent) == 1 and 1 <= len(sent[0].split(",")) <= 100
        assert len(str(request.url)) < 8000


def test_a_code_holding_a_comma_is_found_by_listing_the_kind() -> None:
    """Comma-joined arrays cannot carry a code with a comma; the kind is listed instead."""
    server = FakeM3ter()
    server.add("accounts", code="ACME, Inc", name="x")
    server.add("accounts", code="ACME", name="y")
    server.add("accounts", code=" Inc", name="z")
    backend = make(server)
    found = backend.list(ACCOUNT, ["ACME, Inc", "OTHER"])
    assert [e["code"] for e in found] == ["ACME, Inc"]
    gets = [r for r in server.requests if r.method == "GET"]
    assert len(gets) == 1 and "codes" not in dict(parse_qsl(gets[0].url.query.decode()))


def test_long_codes_make_smaller_batches() -> None:
    codes = [f"{'x' * 70}{i}" for i in range(160)]
    batches = code_batches(codes)
    assert [c for b in batches for c in b] == codes
    assert all(sum(len(c) + 9 for c in b) <= 6000 for b in batches)
    assert len(batches) == 3  # 79 codes of ~80 characters fit 6,000 characters of query
    # non-ASCII costs 6 characters a letter once percent-encoded: 12 such codes a batch
    assert [len(b) for b in code_batches(["ü" * 79 + str(i) for i in range(30)])] == [12, 12, 6]
    assert [len(b) for b in code_batches([f"A{i}" for i in range(250)])] == [100, 100, 50]
    assert [len(b) for b in code_batches([f"A{i}" for i in range(250)], 40)] == [40] * 6 + [10]
    assert code_batches(["a", "a", "b"]) == [["a", "b"]]
    assert code_batches([]) == []


def test_codes_on_a_picklist_also_ask_for_archived() -> None:
    server = FakeM3ter()
    server.add("picklists/creditreasons", code="OLD", name="old", archived=True)
    server.add("picklists/creditreasons", code="NEW", name="new")
    server.add("picklists/creditreasons", code="OTHER", name="other")
    backend = make(server)
    assert sorted(e["code"] for e in backend.list(CREDIT, ["OLD", "NEW"])) == ["NEW", "OLD"]
    assert backend.find_by_code(CREDIT, "OLD") is not None
    assert backend.find_by_code(CREDIT, "NOPE") is None


def test_an_empty_codes_filter_sends_nothing() -> None:
    server = FakeM3ter()
    backend = make(server)
    assert backend.list(ACCOUNT, []) == []
    assert backend.list(kinds.get("product"), []) == []  # a kind the API cannot filter by code
    assert backend.fetch_live({"product": set(), "pricing": set()}) == {"product": [], "pricing": []}
    assert server.requests == []


def test_get_by_id_and_missing_is_none() -> None:
    server = FakeM3ter()
    acc = server.add("accounts", code="A1", name="One")
    backend = make(server)
    assert backend.get(ACCOUNT, acc["id"]) == acc
    assert backend.get(ACCOUNT, "no-such-id") is None


def test_fetch_live_reads_kinds_concurrently() -> None:
    server = FakeM3ter()
    server.add("accounts", code="A1", name="One")
    server.add("picklists/currency", code="USD", name="US Dollar")
    in_flight = [0, 0]  # current, maximum
    lock = threading.Lock()

    def slow(request: httpx.Request) -> None:
        if request.url.path == "/oauth/token":
            return None
        with lock:
            in_flight[0] += 1
            in_flight[1] = max(in_flight[1], in_flight[0])
        time.sleep(0.05)
        with lock:
            in_flight[0] -= 1
        return None

    server.before.append(slow)
    backend = make_real_time(server, rate_limit=1000)
    live = backend.fetch_live({k.name: None for k in kinds.KINDS} | {"account": ["A1", "A2"]})
    assert set(live) == set(kinds.KIND_NAMES)
    assert [e["code"] for e in live["account"]] == ["A1"]
    assert [e["code"] for e in live["currency"]] == ["USD"]
    assert live["organizationConfig"][0]["currency"] == "USD"
    assert live["debitReason"] == []
    assert in_flight[1] >= 3


def test_fetch_live_propagates_a_failure() -> None:
    server = FakeM3ter()
    server.before.append(fail_times(100, lambda: httpx.Response(400, json={"message": "bad filter"})))
    backend = make(server)
    with pytest.raises(BackendError, match="m3ter refused to list"):
        backend.fetch_live({"account": None, "currency": None})


# ---------------------------------------------------------------------- retries


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_server_errors_are_retried_with_growing_backoff(status: int) -> None:
    server = FakeM3ter()
    server.before.append(fail_times(3, lambda: httpx.Response(status, json={"message": "oops"})))
    clock = FakeClock()
    backend = make(server, clock, policy=RetryPolicy(base_delay=0.1, max_delay=10, jitter=0.0))
    assert backend.list(ACCOUNT) == []
    assert clock.sleeps == [0.1, 0.2, 0.4]
    assert backend.stats()["retries"] == 3 and backend.stats()["errors"] == 3


def test_429_honours_retry_after_and_holds_the_rate_limiter() -> None:
    server = FakeM3ter()
    server.before.append(
        fail_times(1, lambda: httpx.Response(429, headers={"Retry-After": "2"}, json={"message": "slow down"}))
    )
    clock = FakeClock()
    backend = make(server, clock, rate_limit=50)
    start = clock.now
    assert backend.list(ACCOUNT) == []
    assert clock.now - start >= 2.0
    stats = backend.stats()
    assert stats["status_429"] == 1 and stats["retries"] == 1 and stats["errors"] == 0


@pytest.mark.parametrize(
    "exc_type", [httpx.ConnectError, httpx.ReadError, httpx.RemoteProtocolError, httpx.ReadTimeout]
)
def test_connection_errors_are_retried(exc_type: type[httpx.TransportError]) -> None:
    server = FakeM3ter()
    acc = server.add("accounts", code="A1", name="One")
    server.before.append(raise_times(2, exc_type))
    backend = make(server)
    assert backend.get(ACCOUNT, acc["id"]) == acc
    assert backend.stats()["retries"] == 2


def test_retries_are_bounded_in_count_with_a_clear_error() -> None:
    server = FakeM3ter()
    server.before.append(fail_times(1000, lambda: httpx.Response(502, json={"message": "bad gateway"})))
    backend = make(server, policy=RetryPolicy(max_attempts=5, base_delay=0.01))
    with pytest.raises(BackendError) as info:
        backend.list(ACCOUNT)
    assert "could not list account: m3ter still failing after 5 attempts" in str(info.value)
    assert "502 bad gateway" in str(info.value)
    assert info.value.retryable
    assert server.count("GET") == 5


def test_retries_are_bounded_in_time() -> None:
    server = FakeM3ter()
    server.before.append(
        fail_times(1000, lambda: httpx.Response(429, headers={"Retry-After": "7"}, json={"message": "slow"}))
    )
    clock = FakeClock()
    backend = make(server, clock, policy=RetryPolicy(max_attempts=100, max_elapsed=30))
    with pytest.raises(BackendError, match="still failing after 5 attempts"):
        backend.list(ACCOUNT)
    assert clock.now - 1000.0 <= 30


def test_retry_after_parsing() -> None:
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after("0.5") == 0.5
    assert parse_retry_after(None) is None and parse_retry_after("soon") is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=lambda: 1445412470.0) == 10.0
    budget = RetryBudget(RetryPolicy(max_attempts=2, base_delay=1, jitter=0), clock=lambda: 0.0)
    budget.start_attempt()
    assert budget.next_delay() == 1.0
    budget.start_attempt()
    assert budget.next_delay() is None


# ---------------------------------------------------------------------- writes


def lose_answer_after_storing(
    method: str, how: str
) -> Callable[[httpx.Request, httpx.Response], httpx.Response | None]:
    """The server does the work, then the answer never arrives (once)."""
    done = [False]

    def hook(request: httpx.Request, response: httpx.Response) -> httpx.Response | None:
        if request.method != method or done[0]:
            return None
        done[0] = True
        if how == "connection":
            raise httpx.RemoteProtocolError("server disconnected without sending a response", request=request)
        return httpx.Response(int(how), json={"message": "gateway timeout"})

    return hook


def test_create_strips_read_only_fields() -> None:
    server = FakeM3ter()
    backend = make(server)
    created = backend.create(
        ACCOUNT, {"code": "A1", "name": "One", "id": "x", "version": 3, "dtCreated": "t", "createdBy": "me"}
    )
    assert created["version"] == 1 and created["code"] == "A1"
    sent = json.loads(next(r for r in server.requests if r.method == "POST" and "accounts" in r.url.path).content)
    assert sent == {"code": "A1", "name": "One"}


@pytest.mark.parametrize("how", ["connection", "500", "502", "504"])
def test_a_create_whose_answer_was_lost_is_not_duplicated(how: str) -> None:
    server = FakeM3ter()
    server.after.append(lose_answer_after_storing("POST", how))
    backend = make(server)
    created = backend.create(ACCOUNT, {"code": "ACME", "name": "Acme Ltd", "emailAddress": "a@acme.test"})
    stored = list(server.objects["accounts"].values())
    assert len(stored) == 1
    assert created["id"] == stored[0]["id"]
    assert server.count("POST", "/accounts") == 1


def test_a_create_lost_before_storing_is_sent_again_after_a_lookup() -> None:
    server = FakeM3ter()
    server.before.append(raise_times(1, httpx.ReadError, method="POST"))
    backend = make(server)
    created = backend.create(CURRENCY, {"code": "EUR", "name": "Euro"})
    assert len(server.objects["picklists/currency"]) == 1
    assert created["code"] == "EUR"
    assert server.count("POST", "/picklists/currency") == 2
    assert server.count("GET", "/picklists/currency") == 2  # the lookup: plain and archived


def test_a_create_that_never_connected_is_sent_again_without_a_lookup() -> None:
    server = FakeM3ter()
    server.before.append(raise_times(1, httpx.ConnectError, method="POST"))
    backend = make(server)
    backend.create(ACCOUNT, {"code": "A1", "name": "One"})
    assert server.count("GET") == 0 and server.count("POST", "/accounts") == 2


def test_a_refused_create_passes_the_api_message_on() -> None:
    server = FakeM3ter()
    server.add("accounts", code="A1", name="One")
    backend = make(server)
    with pytest.raises(ValidationFailed) as info:
        backend.create(ACCOUNT, {"code": "A1", "name": "Again", "emailAddress": "private@person.test"})
    assert str(info.value) == "m3ter refused account A1: duplicate code A1"
    assert "private@person.test" not in str(info.value)


def test_update_sends_the_version_and_returns_the_new_one() -> None:
    server = FakeM3ter()
    acc = server.add("accounts", code="A1", name="One")
    backend = make(server)
    updated = backend.update(ACCOUNT, acc["id"], {**acc, "name": "Uno", "dtLastModified": "x"})
    assert updated["version"] == 2 and updated["name"] == "Uno"
    sent = json.loads(next(r for r in server.requests if r.method == "PUT").content)
    assert sent["version"] == 1 and "id" not in sent and "dtCreated" not in sent and "dtLastModified" not in sent


def test_an_update_on_a_moved_version_is_a_conflict() -> None:
    server = FakeM3ter()
    acc = server.add("accounts", code="A1", name="One")
    read = dict(acc)
    server.objects["accounts"][acc["id"]]["version"] = 2  # someone edited it in the Console
    backend = make(server)
    with pytest.raises(ConflictError) as info:
        backend.update(ACCOUNT, acc["id"], {**read, "name": "Uno"})
    assert str(info.value) == "account A1 changed since it was read; plan again"
    assert server.count("PUT") == 1  # never retried blindly


def test_a_refused_update_with_an_unmoved_version_passes_the_message_on() -> None:
    server = FakeM3ter()
    acc = server.add("accounts", code="A1", name="One")
    backend = make(server)
    with pytest.raises(ValidationFailed) as info:
        backend.update(ACCOUNT, acc["id"], {**acc, "name": "n" * 300})
    assert str(info.value) == "m3ter refused account A1: name: size must be between 1 and 200"
    assert not isinstance(info.value, ConflictError)


def test_an_update_of_a_deleted_object_is_a_conflict() -> None:
    server = FakeM3ter()
    acc = server.add("accounts", code="A1", name="One")
    del server.objects["accounts"][acc["id"]]
    backend = make(server)
    with pytest.raises(ConflictError, match="account A1 was deleted since it was read; plan again"):
        backend.update(ACCOUNT, acc["id"], {**acc, "name": "Uno"})


@pytest.mark.parametrize("how", ["connection", "502"])
def test_an_update_whose_answer_was_lost_is_not_repeated(how: str) -> None:
    server = FakeM3ter()
    acc = server.add("accounts", code="A1", name="One", customFields={"tier": 1})
    server.after.append(lose_answer_after_storing("PUT", how))
    backend = make(server)
    updated = backend.update(ACCOUNT, acc["id"], {**acc, "name": "Uno", "customFields": {"tier": 2.0}})
    assert updated["version"] == 2 and updated["name"] == "Uno"
    assert server.count("PUT") == 1


def test_an_update_lost_before_arriving_is_sent_again() -> None:
    server = FakeM3ter()
    acc = server.add("accounts", code="A1", name="One")
    server.before.append(raise_times(1, httpx.ReadTimeout, method="PUT"))
    backend = make(server)
    assert backend.update(ACCOUNT, acc["id"], {**acc, "name": "Uno"})["version"] == 2
    assert server.count("PUT") == 2


def test_a_lost_update_racing_another_writer_is_a_conflict() -> None:
    server = FakeM3ter()
    acc = dict(server.add("accounts", code="A1", name="One"))

    def someone_else_wins(request: httpx.Request) -> httpx.Response | None:
        if request.method == "PUT":
            server.objects["accounts"][acc["id"]].update(version=2, name="Theirs")
            return httpx.Response(504, json={"message": "timeout"})
        return None

    server.before.append(someone_else_wins)
    backend = make(server)
    with pytest.raises(ConflictError, match="changed since it was read"):
        backend.update(ACCOUNT, acc["id"], {**acc, "name": "Ours"})
    assert server.count("PUT") == 1


def test_put_singleton_and_its_conflict() -> None:
    server = FakeM3ter()
    backend = make(server)
    live = backend.get_singleton(ORG_CONFIG)
    updated = backend.put_singleton(ORG_CONFIG, {**live, "timezone": "Europe/London"})
    assert updated["version"] == 2
    with pytest.raises(ConflictError, match=r"^organizationConfig changed since it was read; plan again$"):
        backend.put_singleton(ORG_CONFIG, {**live, "timezone": "Europe/Paris"})


def test_put_singleton_whose_answer_was_lost() -> None:
    server = FakeM3ter()
    server.after.append(lose_answer_after_storing("PUT", "500"))
    backend = make(server)
    live = backend.get_singleton(CUSTOM_FIELDS)
    updated = backend.put_singleton(CUSTOM_FIELDS, {**live, "account": {"tier": "gold"}})
    assert updated["version"] == 2 and server.count("PUT") == 1


def test_delete_and_a_lost_delete_answer() -> None:
    server = FakeM3ter()
    first = server.add("accounts", code="A1", name="One")
    second = server.add("accounts", code="A2", name="Two")
    backend = make(server)
    assert backend.delete(ACCOUNT, first["id"])["code"] == "A1"
    server.after.append(lose_answer_after_storing("DELETE", "connection"))
    assert backend.delete(ACCOUNT, second["id"]) == {"id": second["id"]}
    assert server.objects["accounts"] == {}
    assert server.count("DELETE") == 2
    with pytest.raises(NotFoundError, match="does not exist any more"):
        backend.delete(ACCOUNT, first["id"])


def test_a_refused_delete_passes_the_message_on() -> None:
    server = FakeM3ter()
    acc = server.add("accounts", code="A1", name="One")
    server.before.append(
        fail_times(1, lambda: httpx.Response(400, json={"message": "account has child accounts"}), "DELETE")
    )
    backend = make(server)
    with pytest.raises(ValidationFailed, match=f"m3ter refused to delete account {acc['id']}: account has child"):
        backend.delete(ACCOUNT, acc["id"])


def test_writes_that_keep_failing_give_up_after_checking_once_more() -> None:
    server = FakeM3ter()
    server.before.append(fail_times(1000, lambda: httpx.Response(500, json={"message": "down"}), "POST"))
    backend = make(server, policy=RetryPolicy(max_attempts=3, base_delay=0.01))
    with pytest.raises(BackendError, match="could not create account A1: m3ter still failing after 3 attempts"):
        backend.create(ACCOUNT, {"code": "A1", "name": "One"})
    assert server.count("POST", "/accounts") == 3
    assert server.count("GET", "/accounts") == 3  # a lookup before each retry, and a last one


# ---------------------------------------------------------------------- rate limit


def test_rate_limiter_spaces_slots_evenly_with_a_margin() -> None:
    clock = FakeClock()
    limiter = RateLimiter(50, clock=clock, sleep=clock.sleep)
    starts = []
    for _ in range(500):
        limiter.acquire()
        starts.append(clock.now)
    gaps = {round(b - a, 9) for a, b in itertools.pairwise(starts)}
    assert gaps == {round(1 / 47.5, 9)}
    per_second = Counter(int(t) for t in starts)  # m3ter counts per calendar second
    assert max(per_second.values()) <= 48
    assert 500 / 50 <= starts[-1] - starts[0] <= 500 / 45


def test_rate_limiter_does_not_bank_idle_time_and_pauses() -> None:
    clock = FakeClock()
    limiter = RateLimiter(10, clock=clock, sleep=clock.sleep)
    limiter.acquire()
    clock.now += 5  # idle: no burst allowed afterwards
    limiter.acquire()
    assert limiter.acquire() == pytest.approx(1 / 9.5)
    limiter.pause_until(clock.now + 3)
    assert limiter.acquire() == pytest.approx(3)
    assert RateLimiter(0).acquire() == 0.0


def test_backend_requests_are_paced_across_threads_in_real_time() -> None:
    server = FakeM3ter()
    sent_at: list[float] = []

    def stamp(request: httpx.Request) -> None:
        if request.url.path != "/oauth/token":
            sent_at.append(time.monotonic())
        return None

    server.before.append(stamp)
    backend = make_real_time(server, rate_limit=40)
    codes = iter(range(1000))
    lock = threading.Lock()

    def work() -> None:
        for _ in range(4):
            with lock:
                n = next(codes)
            backend.create(CREDIT, {"code": f"R{n}", "name": "r"})

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(sent_at) == 32
    sent_at.sort()
    assert sent_at[-1] - sent_at[0] >= 31 / 40 * 0.95  # never faster than the limit
    assert sent_at[-1] - sent_at[0] < 3.0
    assert all(b - a > 0.015 for a, b in itertools.pairwise(sent_at))
    assert len(server.objects["picklists/creditreasons"]) == 32


# ---------------------------------------------------------------------- secrets never shown


def test_verbose_trace_shows_requests_but_no_secrets(capsys: pytest.CaptureFixture[str]) -> None:
    server = FakeM3ter()
    server.before.append(raise_times(1, httpx.ReadError))
    backend = make(server, verbose=True)
    backend.list(ACCOUNT, ["A1"])
    backend.create(ACCOUNT, {"code": "A1", "name": "Private Person", "emailAddress": "p@person.test"})
    server.valid_tokens.clear()
    backend.list(CURRENCY)
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    pattern = re.compile(r"^(GET|POST|PUT|DELETE) https://\S+ -> (\d{3}|[A-Za-z]+) \(\d+ ms\)$")
    assert lines and all(pattern.match(line) for line in lines), lines
    assert any(line.startswith("POST https://api.example.test/oauth/token -> 200") for line in lines)
    assert any("-> ReadError" in line for line in lines)
    assert any(line.startswith(f"GET {BASE}/organizations/{ORG}/accounts?codes=A1&pageSize=100") for line in lines)
    tokens = {r.headers.get("Authorization", "").split(" ", 1)[-1] for r in server.requests}
    for secret in (KEY, SECRET, BASIC, *tokens, "Bearer", "Basic", "Private Person", "p@person.test"):
        assert secret not in err
    assert capsys.readouterr().out == ""


def test_quiet_by_default(capsys: pytest.CaptureFixture[str]) -> None:
    backend = make(FakeM3ter())
    backend.list(ACCOUNT)
    assert capsys.readouterr().err == ""


def test_credentials_repr_hides_values() -> None:
    text = repr(Credentials(api_key=KEY, api_secret=SECRET, api_token="tok"))
    assert KEY not in text and SECRET not in text and "tok" not in text


def test_api_error_messages_are_trimmed_to_printable_text() -> None:
    server = FakeM3ter()
    server.before.append(
        fail_times(1, lambda: httpx.Response(400, json={"message": "bad\nvalue\x1b[31m " + "y" * 900}), "POST")
    )
    backend = make(server)
    with pytest.raises(ValidationFailed) as info:
        backend.create(ACCOUNT, {"code": "A1", "name": "One"})
    message = str(info.value)
    assert "\n" not in message and "\x1b" not in message and len(message) < 600


def test_stats_and_close() -> None:
    server = FakeM3ter()
    backend = make(server)
    backend.list(ACCOUNT)
    assert set(backend.stats()) == {"requests", "retries", "status_429", "errors", "token_requests"}
    backend.close()
    backend.close()
    with pytest.raises(RuntimeError):
        backend.list(ACCOUNT)
