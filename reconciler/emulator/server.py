"""Run the emulator: ``serve(config)`` (blocking) for ``reconciler emulator``, and
``python -m reconciler.emulator.server [options]`` for a stand-alone process (tests spawn it
this way; ``--port 0`` picks a free port, announced on stderr).

On start it prints exactly one line to stderr, ``m3ter emulator listening on
http://HOST:PORT``, preceded, when no credentials were given (neither ``--api-key``/
``--api-secret`` nor ``M3TER_API_KEY``/``M3TER_API_SECRET``), by ``export M3TER_...=`` lines
with freshly generated demo credentials and the organization id.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import socket
import sys
import threading
from collections.abc import Iterator, Sequence
from typing import Any

from reconciler.emulator.config import (
    ARCHIVED_ABSENT_READINGS,
    ARCHIVED_TRUE_READINGS,
    DEFAULT_PORT,
    DEFAULT_TOKEN_TTL,
    M3TER_RATE_LIMIT,
    EmulatorConfig,
)
from reconciler.emulator.core import Emulator


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket (port 0: a free one)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto must say TCP: asyncio sets TCP_NODELAY on accepted sockets only then, and without
    # it every keep-alive response waits ~40 ms for a delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def make_server(emulator: Emulator) -> Any:
    """A uvicorn.Server for ``emulator`` (h11, no lifespan, access log per config).

    SIGINT/SIGTERM stop it gracefully and ``run()`` then simply returns (uvicorn would re-raise
    the signal afterwards, turning Ctrl-C into a KeyboardInterrupt and SIGTERM into an abrupt
    exit that skips cleanup)."""
    import uvicorn

    class Server(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            if threading.current_thread() is not threading.main_thread():
                yield
                return
            originals = {sig: signal.signal(sig, self.handle_exit) for sig in (signal.SIGINT, signal.SIGTERM)}
            try:
                yield
            finally:
                for sig, handler in originals.items():
                    signal.signal(sig, handler)

    from reconciler.emulator.app import create_app

    config = uvicorn.Config(
        create_app(emulator),
        host=emulator.config.host,
        port=emulator.config.port,
        http="h11",
        ws="none",
        lifespan="off",
        log_level="warning",
        access_log=emulator.config.access_log,
        timeout_keep_alive=5,
        timeout_graceful_shutdown=3,
        server_header=False,
        date_header=True,
    )
    return Server(config)


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"


def serve(config: EmulatorConfig) -> None:
    """Serve until interrupted (SIGINT/SIGTERM). Raises ValueError for bad settings and
    OSError when the address cannot be bound."""
    resolved = config.resolved()
    if resolved.demo_credentials:
        print("# demo credentials for this emulator run (not secrets; they change every start):", file=sys.stderr)
        print(f"export M3TER_API_KEY={resolved.api_key}", file=sys.stderr)
        print(f"export M3TER_API_SECRET={resolved.api_secret}", file=sys.stderr)
        print(f"export M3TER_ORG_ID={resolved.org_id}", file=sys.stderr)
    emulator = Emulator(resolved)
    previous: dict[int, Any] = {}
    try:
        sock = bind_socket(resolved.host, resolved.port)
        server = make_server(emulator)

        def stop(signum: int, frame: object) -> None:
            server.should_exit = True

        if threading.current_thread() is threading.main_thread():
            # a signal arriving before uvicorn installs its own handlers still stops cleanly
            previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            if resolved.demo_credentials:
                print(f"export M3TER_BASE_URL={url_of(sock)}", file=sys.stderr)
            print(f"m3ter emulator listening on {url_of(sock)}", file=sys.stderr, flush=True)
            server.run(sockets=[sock])
        finally:
            sock.close()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        emulator.close()


def parse_args(argv: Sequence[str] | None = None) -> EmulatorConfig:
    p = argparse.ArgumentParser(prog="python -m reconciler.emulator.server", description=__doc__.split("\n")[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=DEFAULT_PORT)
    p.add_argument("--db", default=None, help="SQLite file (default: a temporary one)")
    p.add_argument("--latency-ms", type=float, default=0.0)
    p.add_argument("--rate-limit", type=float, default=M3TER_RATE_LIMIT, help="per org per second; 0 = off")
    p.add_argument("--fail-rate", type=float, default=0.0)
    p.add_argument("--fail-seed", type=int, default=None)
    p.add_argument("--fail-kinds", default=None, help="comma list of 500,502,504,drop")
    p.add_argument("--fail-after-share", type=float, default=0.5)
    p.add_argument("--token-ttl", type=int, default=DEFAULT_TOKEN_TTL)
    p.add_argument("--org-id", action="append", default=[])
    p.add_argument("--api-key", default=None)
    p.add_argument("--api-secret", default=None)
    p.add_argument("--access-log", action="store_true")
    p.add_argument("--extra-fields", action="store_true", help="add undocumented fields to every object")
    p.add_argument("--archived-true", default="document", choices=ARCHIVED_TRUE_READINGS)
    p.add_argument("--archived-absent", default="exclude", choices=ARCHIVED_ABSENT_READINGS)
    a = p.parse_args(argv)
    extra: dict[str, Any] = {}
    if a.fail_kinds:
        extra["fail_kinds"] = tuple(k.strip() for k in a.fail_kinds.split(",") if k.strip())
    return EmulatorConfig(
        host=a.host,
        port=a.port,
        db=a.db,
        latency_ms=a.latency_ms,
        rate_limit=a.rate_limit or None,
        fail_rate=a.fail_rate,
        fail_seed=a.fail_seed,
        fail_after_share=a.fail_after_share,
        token_ttl=a.token_ttl,
        org_ids=tuple(a.org_id),
        api_key=a.api_key,
        api_secret=a.api_secret,
        access_log=a.access_log,
        extra_fields=a.extra_fields,
        archived_true=a.archived_true,
        archived_absent=a.archived_absent,
        **extra,
    )


def main(argv: Sequence[str] | None = None) -> int:
    try:
        serve(parse_args(argv))
    except (ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
