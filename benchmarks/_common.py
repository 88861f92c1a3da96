"""Shared helpers of the scale benchmarks (``cpu_bench``, ``http_apply_bench``, ``http_plan_bench``).

- :func:`generate_manifests` writes the manifests of an organization with N accounts: the
  account files of ``validate_bench.generate`` (one generator for every benchmark) plus every
  picklist populated (currencies, credit and debit reasons, transaction types) and custom fields.
- :func:`seed_store` fills a SQLite organization (the ``local`` backend's file, or the file an
  emulator serves) so that it matches those manifests except for a chosen share of accounts:
  directly through ``Store.create_many`` (one transaction per kind), never through apply.
- :func:`run_measured` runs a command in a fresh process and returns its wall time and peak RSS
  (``os.wait4``: the child's own ``ru_maxrss``, not the benchmark's).
- :func:`bench_emulator` serves such an organization through the emulator in its own process,
  at the latency and rate limit the HTTP benchmarks are stated for.
- :func:`print_table` / :func:`write_results` print the figures and keep them as JSON in
  ``benchmarks/results/``.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
if str(ROOT / "benchmarks") not in sys.path:
    sys.path.insert(0, str(ROOT / "benchmarks"))

from validate_bench import generate as _generate_accounts  # noqa: E402  (the validate benchmark's generator)

if TYPE_CHECKING:
    from reconciler.emulator.testing import RunningEmulator

PICKLISTS_PER_KIND = 25
#: The HTTP benchmarks' emulator: 100 ms per call and m3ter's documented 50 requests/second.
LATENCY_MS = 100.0
RATE_LIMIT = 50.0
API_KEY = "bench-key"
API_SECRET = "bench-secret-not-a-real-one"  # the emulator's throwaway credential


def _picklists_yaml() -> str:
    lines = []
    for key, prefix, label in (
        ("creditReasons", "CR", "Credit reason"),
        ("debitReasons", "DR", "Debit reason"),
        ("transactionTypes", "TT", "Transaction type"),
    ):
        lines.append(f"{key}:")
        for i in range(PICKLISTS_PER_KIND):
            lines.append(f"  - {{code: {prefix}_{i:03d}, name: {label} {i}}}")
    return "\n".join(lines) + "\n"


def generate_manifests(directory: Path, accounts: int, seed: int = 7) -> list[Path]:
    """Manifests of an organization with ``accounts`` accounts (every tenth a parent of the next
    nine), 3 currencies with conversions, custom fields and 25 entries in every other picklist."""
    files = _generate_accounts(directory, accounts, seed=seed)
    extra = directory / "picklists.yaml"
    extra.write_text(_picklists_yaml(), encoding="utf-8")
    return [*files, extra]


def manifest_files(directory: Path) -> list[str]:
    return sorted(str(p) for p in directory.rglob("*.yaml"))


# --------------------------------------------------------------------------- seeding


def _plain(value: Any) -> Any:
    """YAML values as the API's JSON (dates become ISO strings)."""
    if isinstance(value, _dt.date):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def read_manifests(directory: Path) -> dict[str, Any]:
    """Top-level keys merged over every file (lists concatenated), parsed with the C loader."""
    merged: dict[str, Any] = {}
    for name in manifest_files(directory):
        with open(name, encoding="utf-8") as handle:
            doc = yaml.load(handle, Loader=yaml.CSafeLoader) or {}
        for key, value in doc.items():
            if isinstance(value, list):
                merged.setdefault(key, []).extend(value)
            else:
                merged[key] = value
    return _plain(merged)


@dataclass
class Seeded:
    """What the seeded organization lacks or holds differently from the manifests."""

    accounts: int
    updated: list[str] = field(default_factory=list)  # account codes stored with another value
    missing: list[str] = field(default_factory=list)  # account codes not stored (plan: create)
    ids: dict[str, str] = field(default_factory=dict)  # account code -> id
    seconds: float = 0.0

    @property
    def changed(self) -> int:
        return len(self.updated) + len(self.missing)


def seed_store(
    db: Path,
    org_id: str,
    directory: Path,
    *,
    change_share: float = 0.01,
    missing_share_of_changed: float = 0.2,
    only_accounts: Iterable[int] | None = None,
    seed: int = 11,
) -> Seeded:
    """Make organization ``org_id`` in the SQLite file ``db`` match the manifests under
    ``directory``, except ``change_share`` of the accounts: most of those are stored with a
    different name, seat count or locality (plan: update), ``missing_share_of_changed`` of them
    (leaf accounts only) are left out (plan: create). ``only_accounts`` (indexes) stores just
    those accounts instead of all, for the HTTP apply benchmark."""
    from reconciler.store import Store

    started = time.perf_counter()
    doc = read_manifests(directory)
    rng = random.Random(seed)
    accounts: list[dict[str, Any]] = doc.get("accounts", [])
    n = len(accounts)
    result = Seeded(accounts=n)
    changed = set(rng.sample(range(n), round(n * change_share))) if change_share else set()
    leaves = sorted(i for i in changed if i % 10)
    missing = set(leaves[: round(len(changed) * missing_share_of_changed)])
    keep = set(only_accounts) if only_accounts is not None else None
    store = Store(db)
    try:
        store.ensure_org(org_id)
        usd = next(c for c in store.list_all(org_id, "currency") if c["code"] == "USD")
        wanted_currencies = doc.get("currencies", [])
        for c in wanted_currencies:
            if c["code"] == "USD":
                store.update(org_id, "currency", usd["id"], {**_strip(usd), **c, "version": usd["version"]})
        store.create_many(org_id, "currency", [c for c in wanted_currencies if c["code"] != "USD"])
        for name, key in (("creditReason", "creditReasons"), ("debitReason", "debitReasons"),
                          ("transactionType", "transactionTypes")):
            if doc.get(key):
                store.create_many(org_id, name, doc[key])
        if "organization" in doc:
            current = store.get_singleton(org_id, "organizationConfig")
            store.put_singleton(org_id, "organizationConfig",
                                {**_strip(current), **doc["organization"], "version": current["version"]})
        if "customFields" in doc:
            current = store.get_singleton(org_id, "customFields")
            store.put_singleton(org_id, "customFields", {**doc["customFields"], "version": current["version"]})
        # Parents first (one transaction), then children naming them by id.
        for parents in (True, False):
            bodies, codes = [], []
            for i, a in enumerate(accounts):
                if (i % 10 == 0) != parents or i in missing or (keep is not None and i not in keep):
                    continue
                body = {k: v for k, v in a.items() if k != "parent"}
                if "parent" in a:
                    parent_id = result.ids.get(a["parent"])
                    if parent_id is None:
                        continue  # its parent is not stored (only_accounts): skip it too
                    body["parentAccountId"] = parent_id
                if i in changed:
                    body = _alter(body, i)
                    result.updated.append(a["code"])
                bodies.append(body)
                codes.append(a["code"])
            for created in store.create_many(org_id, "account", bodies):
                result.ids[created["code"]] = created["id"]
        result.missing = [a["code"] for a in accounts if a["code"] not in result.ids]
    finally:
        store.close()
    result.seconds = time.perf_counter() - started
    return result


def _strip(entity: dict[str, Any]) -> dict[str, Any]:
    from reconciler.kinds import READ_ONLY_FIELDS

    return {k: v for k, v in entity.items() if k not in READ_ONLY_FIELDS}


def _alter(body: dict[str, Any], i: int) -> dict[str, Any]:
    """A live value that differs from the manifest's in one of three ways."""
    body = dict(body)
    which = i % 3
    if which == 0:
        body["name"] = f"{body['name']} (renamed)"
    elif which == 1:
        body["customFields"] = {**body.get("customFields", {}), "seats": 9999}
    else:
        body["address"] = {**body.get("address", {}), "locality": "Elsewhere"}
    return body


def compile_package() -> None:
    """Write the bytecode of ``reconciler`` (``__pycache__``), as ``pip install`` does for an
    installed package, before timing fresh processes. Without it, an editable checkout run
    with ``PYTHONDONTWRITEBYTECODE=1`` (set on this machine) compiles every module from
    source in every measured process (~60 ms of a 10k validate), while the floor's parser and
    the standard library load compiled bytecode. Reading bytecode needs no write, so the
    variable stays as it is."""
    import compileall

    compileall.compile_dir(str(ROOT / "reconciler"), quiet=1)


# --------------------------------------------------------------------------- measuring


@dataclass
class Measured:
    seconds: float
    peak_mib: float
    returncode: int
    stderr: str


# Linux records the parent's RSS high-water mark in a child's ``ru_maxrss`` at fork/exec time,
# so a big benchmark process would inflate every figure. A small launcher (``python -S``, a few
# MiB) spawns the measured command and reports that grandchild's own figures.
_LAUNCHER = """
import json, os, sys, time
out, argv = sys.argv[1], sys.argv[2:]
started = time.perf_counter()
pid = os.posix_spawnp(argv[0], argv, os.environ)
_, status, usage = os.wait4(pid, 0)
seconds = time.perf_counter() - started
with open(out, "w") as handle:
    json.dump({"seconds": seconds, "maxrss_kib": usage.ru_maxrss, "exit": os.waitstatus_to_exitcode(status)}, handle)
"""


def run_measured(cmd: Sequence[str], *, env: dict[str, str] | None = None, stdout: Any = subprocess.DEVNULL,
                 cwd: Path | None = None) -> Measured:
    """Run ``cmd`` in a fresh process: wall time from spawn to exit and its own peak RSS."""
    fd, report = tempfile.mkstemp(prefix="reconciler-bench-", suffix=".json")
    os.close(fd)
    try:
        proc = subprocess.run([sys.executable, "-S", "-c", _LAUNCHER, report, *cmd], stdout=stdout,
                              stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, env=env, cwd=cwd, check=False)
        if proc.returncode != 0:
            raise SystemExit(f"the benchmark launcher failed: {proc.stderr.decode(errors='replace')[-2000:]}")
        figures = json.loads(Path(report).read_text())
    finally:
        os.unlink(report)
    return Measured(figures["seconds"], figures["maxrss_kib"] / 1024, figures["exit"],
                    proc.stderr.decode("utf-8", "replace"))


@contextmanager
def bench_emulator(db: Path, org_id: str) -> Iterator[RunningEmulator]:
    """The emulator over ``db`` in its own process (so its CPU is not the benchmark's), with
    this process's environment set so that the ``m3ter`` backend authenticates against it."""
    from reconciler.emulator.config import EmulatorConfig
    from reconciler.emulator.testing import spawned_emulator

    config = EmulatorConfig(db=str(db), latency_ms=LATENCY_MS, rate_limit=RATE_LIMIT, org_ids=(org_id,),
                            api_key=API_KEY, api_secret=API_SECRET)
    os.environ.update({"M3TER_ORG_ID": org_id, "M3TER_API_KEY": API_KEY, "M3TER_API_SECRET": API_SECRET})
    os.environ.pop("M3TER_API_TOKEN", None)
    with spawned_emulator(config) as emu:
        print(f"emulator at {emu.base_url} (latency {LATENCY_MS:g} ms, rate limit {RATE_LIMIT:g}/s)",
              file=sys.stderr, flush=True)
        yield emu


# --------------------------------------------------------------------------- reporting


def print_table(rows: Sequence[dict[str, Any]], columns: Sequence[tuple[str, str, str]]) -> str:
    """``columns``: (key, header, format spec). Returns the table text (also printed)."""
    widths = []
    cells = []
    for row in rows:
        cells.append([format(row.get(key, ""), spec) if row.get(key) is not None else "-" for key, _, spec in columns])
    for j, (_, header, _) in enumerate(columns):
        widths.append(max([len(header)] + [len(c[j]) for c in cells]))
    left = [spec == "<" for _, _, spec in columns]  # text columns read better left-aligned

    def line(values: Sequence[str]) -> str:
        return " ".join(v.ljust(w) if lj else v.rjust(w) for v, w, lj in zip(values, widths, left, strict=True))

    lines = [line([h for _, h, _ in columns]).rstrip()]
    lines.append("-" * len(lines[0]))
    lines.extend(line(c).rstrip() for c in cells)
    text = "\n".join(lines)
    print(text, flush=True)
    return text


def machine() -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
    }


def write_results(name: str, document: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps({**document, "host": machine()}, indent=2) + "\n", encoding="utf-8")
    return path
