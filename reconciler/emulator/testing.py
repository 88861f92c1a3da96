"""Run the emulator from tests and benchmarks.

``running_emulator(config)`` serves in a background thread of the current process on
127.0.0.1 and a free port (``config.host``/``config.port`` are ignored)::

    with running_emulator(EmulatorConfig(rate_limit=None)) as emu:
        httpx.get(f"{emu.base_url}/organizations/{emu.org_id}/accounts", headers=emu.auth_headers())
        emu.store.create(emu.org_id, "account", {...})        # direct access to the organization
        emu.emulator.clock_offset += 20_000                     # expire tokens without sleeping
        subprocess.run([...], env={**os.environ, **emu.env()})  # M3TER_* variables for a client

``CONFIG_OVERRIDES`` and ``ON_START`` let a test suite run every emulator it starts in another
mode (``--extra-fields``) or under a check (validation against the official document).

``spawned_emulator(config)`` runs it as a separate process (``python -m
reconciler.emulator.server``) with the same ``RunningEmulator`` handle (no ``emulator``/
``store`` access beyond opening ``config.db`` yourself); it is terminated on exit.
"""

from __future__ import annotations

import contextlib
import os
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import httpx

from reconciler.emulator.config import EmulatorConfig
from reconciler.emulator.core import Emulator
from reconciler.store import Store

_STARTUP_TIMEOUT = 15.0

#: Test-suite wide settings for every emulator these helpers start (a suite sets them from a
#: fixture to run unchanged tests in another mode, e.g. ``{"extra_fields": True}``).
CONFIG_OVERRIDES: dict[str, Any] = {}
#: Context-manager factories entered around every in-process emulator while it serves (e.g.
#: one that validates all its traffic against the official document and fails on exit).
ON_START: list[Callable[[RunningEmulator], contextlib.AbstractContextManager[Any]]] = []


@dataclass
class RunningEmulator:
    base_url: str
    config: EmulatorConfig  # resolved: org_ids, api_key and api_secret are set
    emulator: Emulator | None = None  # None when spawned as a process
    process: subprocess.Popen[bytes] | None = None
    _http: httpx.Client | None = field(default=None, repr=False)

    def close(self) -> None:
        if self._http is not None:
            self._http.close()
            self._http = None

    @property
    def org_id(self) -> str:
        return self.config.org_id

    @property
    def api_key(self) -> str:
        assert self.config.api_key is not None
        return self.config.api_key

    @property
    def api_secret(self) -> str:
        assert self.config.api_secret is not None
        return self.config.api_secret

    @property
    def store(self) -> Store:
        if self.emulator is None:
            raise RuntimeError("the emulator runs in another process; open Store(config.db) instead")
        return self.emulator.store

    def env(self) -> dict[str, str]:
        """The variables a client (the official SDK, reconciler's m3ter backend) reads."""
        return {
            "M3TER_BASE_URL": self.base_url,
            "M3TER_ORG_ID": self.org_id,
            "M3TER_API_KEY": self.api_key,
            "M3TER_API_SECRET": self.api_secret,
        }

    def http(self) -> httpx.Client:
        """A shared plain httpx client for this emulator (closed when the emulator stops);
        cheaper than one-shot ``httpx.get`` calls, which build a TLS context every time."""
        if self._http is None:
            self._http = httpx.Client(base_url=self.base_url, timeout=10)
        return self._http

    def token(self) -> str:
        response = self.http().post(
            "/oauth/token", json={"grant_type": "client_credentials"}, auth=(self.api_key, self.api_secret)
        )
        response.raise_for_status()
        return str(response.json()["access_token"])

    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token()}"}

    def org_url(self, path: str = "", org_id: str | None = None) -> str:
        return f"{self.base_url}/organizations/{org_id or self.org_id}/{path.lstrip('/')}".rstrip("/")

    def stats(self) -> dict[str, int]:
        return self.emulator.stats() if self.emulator else {}


def _testing_config(config: EmulatorConfig | None) -> EmulatorConfig:
    return replace(config or EmulatorConfig(), **CONFIG_OVERRIDES, host="127.0.0.1", port=0).resolved()


@contextlib.contextmanager
def running_emulator(config: EmulatorConfig | None = None) -> Iterator[RunningEmulator]:
    """Serve in a background thread on 127.0.0.1:<free port>; stop cleanly on exit."""
    from reconciler.emulator.server import bind_socket, make_server, url_of

    cfg = _testing_config(config)
    emulator = Emulator(cfg)
    sock = bind_socket("127.0.0.1", 0)
    server = make_server(emulator)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            server.run(sockets=[sock])
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    thread = threading.Thread(target=run, name="m3ter-emulator", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + _STARTUP_TIMEOUT
        while not server.started:
            if errors or not thread.is_alive():
                raise RuntimeError(f"the emulator did not start: {errors[0] if errors else 'thread ended'}")
            if time.monotonic() > deadline:
                raise RuntimeError("the emulator did not start in time")
            time.sleep(0.005)
        running = RunningEmulator(base_url=url_of(sock), config=cfg, emulator=emulator)
        try:
            with contextlib.ExitStack() as hooks:
                for hook in list(ON_START):
                    hooks.enter_context(hook(running))
                yield running
        finally:
            running.close()
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
        emulator.close()


def _args(cfg: EmulatorConfig) -> list[str]:
    args = [
        "--host", "127.0.0.1",
        "--port", "0",
        "--latency-ms", str(cfg.latency_ms),
        "--rate-limit", str(cfg.rate_limit or 0),
        "--fail-rate", str(cfg.fail_rate),
        "--fail-kinds", ",".join(cfg.fail_kinds),
        "--fail-after-share", str(cfg.fail_after_share),
        "--token-ttl", str(cfg.token_ttl),
    ]  # fmt: skip
    args += ["--archived-true", cfg.archived_true, "--archived-absent", cfg.archived_absent]
    if cfg.extra_fields:
        args.append("--extra-fields")
    if cfg.db:
        args += ["--db", cfg.db]
    if cfg.fail_seed is not None:
        args += ["--fail-seed", str(cfg.fail_seed)]
    for org in cfg.org_ids:
        args += ["--org-id", org]
    return args


@contextlib.contextmanager
def spawned_emulator(
    config: EmulatorConfig | None = None, *, env: dict[str, str] | None = None
) -> Iterator[RunningEmulator]:
    """Run the emulator as a child process on 127.0.0.1:<free port>; terminate it on exit.
    Credentials reach the child through its environment, never its command line."""
    cfg = _testing_config(config)
    assert cfg.api_key is not None and cfg.api_secret is not None
    child_env: dict[str, Any] = {**os.environ, **(env or {})}
    child_env["M3TER_API_KEY"] = cfg.api_key
    child_env["M3TER_API_SECRET"] = cfg.api_secret
    proc = subprocess.Popen(
        [sys.executable, "-m", "reconciler.emulator.server", *_args(cfg)],
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        env=child_env,
    )
    assert proc.stderr is not None
    lines: queue.Queue[str | None] = queue.Queue()
    captured: list[str] = []

    def pump() -> None:
        assert proc.stderr is not None
        for raw in proc.stderr:
            text = raw.decode("utf-8", "replace").rstrip("\n")
            captured.append(text)
            lines.put(text)
        lines.put(None)

    threading.Thread(target=pump, name="m3ter-emulator-stderr", daemon=True).start()
    try:
        deadline = time.monotonic() + _STARTUP_TIMEOUT
        base_url = None
        while base_url is None:
            try:
                line = lines.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                raise RuntimeError("the emulator process did not start in time") from None
            if line is None:
                raise RuntimeError("the emulator process exited: " + "\n".join(captured[-20:]))
            marker = "m3ter emulator listening on "
            if line.startswith(marker):
                base_url = line[len(marker) :].strip()
        running = RunningEmulator(base_url=base_url, config=cfg, process=proc)
        try:
            yield running
        finally:
            running.close()
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
