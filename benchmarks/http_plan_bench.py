"""HTTP plan: requests and time for a 10k-account organization, and for 50 managed accounts in it.

The emulator runs as a separate process with ``--latency-ms 100 --rate-limit 50``; its
organization is seeded directly (``Store.create_many``) to match manifests of 10,000 accounts
(every picklist populated) except 1% of the accounts. Then, in process with the ``m3ter``
backend (``services.make_plan``, what ``reconciler plan`` runs), each timed from loading the
manifests to the finished plan, requests from the backend's ``stats()``:

- ``all managed``: the manifests of all 10,000 accounts: every kind is listed whole. The
  request floor is the cursor floor: one list call per page of each listing (``pageSize`` 100;
  picklists are listed twice, without a filter and with ``archived=true``, see API-NOTES) plus
  one GET per singleton. Kinds are fetched concurrently, pages of one listing in turn, so the
  time floor is the longest listing's pages x latency (or requests / 50 per second if higher).
- ``50 managed``: manifests holding 50 of those accounts (5 parents and their children) plus
  the picklists: kinds with few codes are looked up with ``codes`` filters, 50 codes per
  request, instead of listing 10,000 accounts. When the backend as shipped does not do code
  lookups (``code_lookup_limit`` 0), the run is repeated with the limit this benchmark
  recommends, set on the backend instance, and both rows are shown.

Against it, the per-object refresh Terraform's provider does (one GET per managed object):
its floor is N / 50 s at the rate limit; it is also simulated on a sample of GETs through the
same emulator (10 in flight, Terraform's default parallelism, paced at 50/s) and extrapolated.

Usage: ``python benchmarks/http_plan_bench.py [--accounts 10000] [--managed 50] [--tf-sample 250]``
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    LATENCY_MS,
    RATE_LIMIT,
    ROOT,
    bench_emulator,
    generate_manifests,
    print_table,
    read_manifests,
    seed_store,
    write_results,
)

ORG_ID = "00000000-0000-4000-8000-00000000be0d"
#: What this benchmark recommends for ``M3terBackend.code_lookup_limit`` (20 filtered requests).
RECOMMENDED_CODE_LOOKUP_LIMIT = 1000
TERRAFORM_PARALLELISM = 10


def _small_manifests(full: Path, target: Path, managed: int) -> list[str]:
    """``managed`` accounts of the full set (whole families: parent + nine children) plus the
    organization, currencies, custom fields and picklists."""
    target.mkdir(parents=True)
    for name in ("organization.yaml", "picklists.yaml"):
        (target / name).write_text((full / name).read_text(encoding="utf-8"), encoding="utf-8")
    accounts = read_manifests(full)["accounts"]
    families = max(1, managed // 10)
    step = max(10, (len(accounts) // families) // 10 * 10)
    chosen: list[dict[str, Any]] = []
    for f in range(families):
        chosen.extend(accounts[f * step: f * step + 10])
    chosen = chosen[:managed]
    (target / "accounts.yaml").write_text(yaml.safe_dump({"accounts": chosen}, sort_keys=False), encoding="utf-8")
    return [a["code"] for a in chosen]


def _floors(backend: Any, wanted: dict[str, Any], counts: dict[str, int]) -> tuple[int, float]:
    """Fewest requests for what the plan reads, and the time floor given that pages of one
    listing follow each other while listings run concurrently."""
    from reconciler import kinds
    from reconciler.backends.m3ter import code_batches

    requests = 0
    longest = 0  # most sequential requests in one listing
    for name, codes in wanted.items():
        kind = kinds.get(name)
        if kind.singleton:
            requests += 1
            longest = max(longest, 1)
            continue
        variants = 2 if kind.archivable else 1
        if codes is None:
            pages = max(1, math.ceil(counts[name] / kind.page_size))
            requests += pages + (variants - 1)  # archived=true: one page (nothing archived here)
            longest = max(longest, pages)
        else:
            batches = len(code_batches(codes))
            requests += batches * variants
            longest = max(longest, 1)
    seconds = max(longest * LATENCY_MS / 1000, requests / RATE_LIMIT)
    return requests, seconds


def _plan_row(label: str, directory: Path, base_url: str, counts: dict[str, int], objects: int,
              limit: int | None) -> dict[str, Any]:
    from reconciler import services
    from reconciler.manifest import load_manifests

    with services.open_configured_backend(f"m3ter:{base_url}") as backend:
        shipped = backend.code_lookup_limit
        if limit is not None:
            backend.code_lookup_limit = limit  # the recommended setting, on this instance only
        read_seconds = 0.0
        fetch_live = backend.fetch_live

        def timed_fetch(wanted: Any) -> Any:  # time spent reading the organization, on this instance
            nonlocal read_seconds
            t = time.perf_counter()
            try:
                return fetch_live(wanted)
            finally:
                read_seconds += time.perf_counter() - t

        backend.fetch_live = timed_fetch  # type: ignore[method-assign]
        before = backend.stats()
        started = time.perf_counter()
        outcome = services.make_plan([str(directory)], backend)
        seconds = time.perf_counter() - started
        after = backend.stats()
        if not outcome.ok or outcome.plan is None:
            raise SystemExit(f"{label}: plan failed: {[d.format() for d in outcome.diagnostics][:5]}")
        loaded = load_manifests([str(directory)]).manifests
        assert loaded is not None, "the manifests loaded for the plan just above"
        wanted = services._wanted(loaded, backend)
        floor_requests, floor_seconds = _floors(backend, wanted, counts)
        lookups = sorted(n for n, c in wanted.items() if c is not None)
    delta = {k: after.get(k, 0) - before.get(k, 0) for k in after}
    summary = outcome.plan.summary()
    return {
        "scenario": label,
        "client": "reconciler" + (f" (code_lookup_limit {limit}, shipped {shipped})" if limit is not None
                                  else f" (code_lookup_limit {shipped})"),
        "managed_objects": objects,
        "seconds": round(seconds, 2),
        "read_seconds": round(read_seconds, 2),
        "requests": delta.get("requests", 0),
        "status_429": delta.get("status_429", 0),
        "floor_requests": floor_requests,
        "floor_seconds": round(floor_seconds, 2),
        "looked_up_by_code": lookups,
        "plan_summary": summary,
    }


def _terraform_rows(base_url: str, sample_ids: list[tuple[str, str]], objects_full: int, objects_small: int,
                    sample: int) -> list[dict[str, Any]]:
    """One GET per object, ``TERRAFORM_PARALLELISM`` in flight, paced at the rate limit."""
    from reconciler import kinds, services

    with services.open_configured_backend(f"m3ter:{base_url}", parallelism=TERRAFORM_PARALLELISM) as backend:
        backend.get_singleton(kinds.get("customFields"))  # token fetched outside the timing
        before = backend.stats()
        ids = (sample_ids * (sample // max(1, len(sample_ids)) + 1))[:sample]
        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=TERRAFORM_PARALLELISM) as pool:
            found = list(pool.map(lambda item: backend.get(kinds.get(item[0]), item[1]), ids))
        seconds = time.perf_counter() - started
        after = backend.stats()
    if any(f is None for f in found):
        raise SystemExit("the Terraform-style sample met a missing object")
    per_get = seconds / len(ids)
    rows = []
    for label, n in (("all managed", objects_full), ("50 managed", objects_small)):
        rows.append({
            "scenario": label,
            "client": f"per-object GET, Terraform-style ({len(ids)} sampled, {TERRAFORM_PARALLELISM} in flight)",
            "managed_objects": n,
            "seconds": round(per_get * n, 2),
            "read_seconds": round(per_get * n, 2),
            "requests": n,
            "status_429": round((after.get("status_429", 0) - before.get("status_429", 0)) * n / len(ids)),
            "floor_requests": n,
            "floor_seconds": round(n / RATE_LIMIT, 2),
            "extrapolated_from": {"gets": len(ids), "seconds": round(seconds, 2)},
        })
    return rows


COLUMNS = [
    ("scenario", "scenario", "<"),
    ("client", "client", "<"),
    ("managed_objects", "objects", ">"),
    ("requests", "requests", ">"),
    ("floor_requests", "floor req", ">"),
    ("status_429", "429s", ">"),
    ("seconds", "plan s", ".2f"),
    ("read_seconds", "read s", ".2f"),
    ("floor_seconds", "read floor s", ".2f"),
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--accounts", type=int, default=10_000, help="accounts in the organization")
    parser.add_argument("--managed", type=int, default=50, help="accounts in the small manifests")
    parser.add_argument("--tf-sample", type=int, default=250, help="GETs timed for the Terraform-style figure")
    parser.add_argument("--no-write", action="store_true", help="do not write benchmarks/results/http_plan.json")
    args = parser.parse_args(argv)

    from reconciler.store import Store

    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="reconciler-plan-bench-") as tmp:
        full = Path(tmp) / "all"
        generate_manifests(full, args.accounts)
        small = Path(tmp) / "small"
        small_codes = _small_manifests(full, small, args.managed)
        db = Path(tmp) / "emulator.sqlite"
        seeded = seed_store(db, ORG_ID, full, missing_share_of_changed=0)  # all accounts live
        with Store(db) as store:
            counts = {k: store.count(ORG_ID, k) for k in ("currency", "creditReason", "debitReason",
                                                            "transactionType", "account")}
            sample_ids = [("account", seeded.ids[c]) for c in list(seeded.ids)[: args.tf_sample]]
        objects_full = sum(counts.values()) + 2
        picklists = sum(v for k, v in counts.items() if k != "account")
        objects_small = len(small_codes) + picklists + 2
        print(f"organization seeded in {seeded.seconds:.1f} s: {counts}", file=sys.stderr, flush=True)
        with bench_emulator(db, ORG_ID) as emu:
            rows.append(_plan_row("all managed", full, emu.base_url, counts, objects_full, None))
            time.sleep(1.1)
            rows.append(_plan_row("50 managed", small, emu.base_url, counts, objects_small, None))
            if rows[-1]["looked_up_by_code"] == []:
                time.sleep(1.1)
                rows.append(_plan_row("50 managed", small, emu.base_url, counts, objects_small,
                                      RECOMMENDED_CODE_LOOKUP_LIMIT))
            time.sleep(1.1)
            rows.extend(_terraform_rows(emu.base_url, sample_ids, objects_full, objects_small, args.tf_sample))

    print(f"\nHTTP plan through the emulator (--latency-ms {LATENCY_MS:g} --rate-limit {RATE_LIMIT:g}), "
          f"organization of {args.accounts} accounts; 'plan s' from loading the manifests to the "
          "finished plan, 'read s' the part spent reading the organization\n")
    table = print_table(rows, COLUMNS)
    ours = [r for r in rows if r["client"].startswith("reconciler")]
    full_ok = ours[0]["requests"] <= ours[0]["floor_requests"]
    small_rows = [r for r in ours if r["scenario"] == "50 managed"]
    small_ok = small_rows[0]["requests"] <= small_rows[0]["floor_requests"] and bool(small_rows[0]["looked_up_by_code"])
    best_small = min(small_rows, key=lambda r: r["requests"])
    print(f"\ngoal: plan of {args.accounts} managed accounts at the cursor floor: {'met' if full_ok else 'NOT met'} "
          f"({ours[0]['requests']} requests, floor {ours[0]['floor_requests']})")
    print(f"goal: {args.managed} managed accounts looked up by codes batches with the backend as shipped: "
          f"{'met' if small_ok else 'NOT met'} ({small_rows[0]['requests']} requests; with code lookups "
          f"{best_small['requests']}, floor {best_small['floor_requests']})")
    print(f"Terraform-style rows: {args.tf_sample} GETs timed and scaled to the object count; "
          f"floor = objects / {RATE_LIMIT:g} per second.")
    if not args.no_write:
        path = write_results("http_plan", {
            "benchmark": "http_plan",
            "emulator": {"latency_ms": LATENCY_MS, "rate_limit": RATE_LIMIT},
            "goal": "requests <= floor_requests for every reconciler plan; small manifests looked up by codes",
            "goal_met": full_ok and small_ok,
            "table": table,
            "results": rows,
        })
        print(f"wrote {path.relative_to(ROOT)}")
    return 0 if full_ok and small_ok else 1


if __name__ == "__main__":
    sys.exit(main())
