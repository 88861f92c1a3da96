"""HTTP plan: a 10k-account organization read by codes (prune off) and walked whole (prune on).

The emulator runs as a separate process with ``--latency-ms 100 --rate-limit 50``; its
organization is seeded directly (``Store.create_many``) to match manifests of 10,000 accounts
(every picklist populated) except 1% of the accounts (stored with other values: updates).
Then, in process with the ``m3ter`` backend (what ``reconciler plan`` runs: loading the
manifests, then ``services.plan_loaded``), each timed from loading the manifests to the
finished plan (``plan s``), with the parts spent loading (``load s``) and reading the
organization (``read s``); requests from the backend's ``stats()``:

- ``10k managed, prune off`` (goal P3): the manifests of all 10,000 accounts, nothing pruned,
  so every kind is read by ``codes`` filter: batches of 100 codes (one page each: ``pageSize``
  is at most 100) sent in parallel under the rate limit. Floor: the read's requests (100 account
  batches, one batch per picklist listed with and without ``archived=true``, one GET per
  singleton) at 50 requests per second.
- ``10k managed, prune on``: the same manifests with ``settings.prune.accounts: delete``, so
  accounts are listed whole: a cursor walk, pages one after another. Floor: the walk's pages x
  the latency (100 pages x 100 ms), or its requests at 50 per second if that is longer. Both
  plans must hold the same changes.
- ``50 managed``: manifests holding 50 of those accounts (5 parents and their children) plus
  the picklists, read by codes.

Against it, the per-object refresh Terraform's provider does (one GET per managed object):
its floor is N / 50 s at the rate limit; it is also simulated on a sample of GETs through the
same emulator (10 in flight, Terraform's default parallelism, paced at 50/s) and extrapolated.

Goal P3: the prune-off plan of 10,000 managed accounts within 3 s; the prune-on plan at its
cursor floor in requests. Exit 1 when a goal is missed.

Usage: ``python benchmarks/http_plan_bench.py [--accounts 10000] [--managed 50] [--tf-sample 250]``
"""

from __future__ import annotations

import argparse
import math
import shutil
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
TERRAFORM_PARALLELISM = 10
#: Goal P3: a prune-off plan of 10,000 managed accounts at 100 ms latency within this many seconds.
P3_SECONDS = 3.0


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


def _pruned_copy(full: Path, target: Path) -> None:
    """The full manifests plus ``settings.prune.accounts: delete``: accounts are read whole."""
    shutil.copytree(full, target)
    (target / "settings.yaml").write_text("settings:\n  prune:\n    accounts: delete\n", encoding="utf-8")


def _floors(wanted: dict[str, Any], counts: dict[str, int]) -> tuple[int, float]:
    """Fewest requests for what the plan reads, and the time floor: batches of codes and
    kinds go in parallel (bounded by the rate limit), the pages of one walk follow each other
    (bounded by the latency), and every request takes at least the latency."""
    from reconciler import kinds
    from reconciler.backends.m3ter import CODES_PER_REQUEST, code_batches

    requests = 0
    longest = 1  # most sequential requests in one listing
    for name, codes in wanted.items():
        kind = kinds.get(name)
        if kind.singleton:
            requests += 1
            continue
        variants = 2 if kind.archivable else 1
        if codes is None:
            # kinds the benchmark does not seed (the catalog's) are read whole, one empty page
            pages = max(1, math.ceil(counts.get(name, 0) / kind.page_size))
            requests += pages + (variants - 1)  # archived=true: one page (nothing archived here)
            longest = max(longest, pages)
        else:
            requests += len(code_batches(codes, min(CODES_PER_REQUEST, kind.page_size))) * variants
    seconds = max(longest * LATENCY_MS / 1000, requests / RATE_LIMIT)
    return requests, seconds


def _plan_row(label: str, directory: Path, base_url: str, counts: dict[str, int], objects: int) -> dict[str, Any]:
    from reconciler import services
    from reconciler.manifest import load_manifests

    with services.open_configured_backend(f"m3ter:{base_url}") as backend:
        read_seconds = 0.0
        fetch_live = backend.fetch_live

        def timed_fetch(wanted: Any, progress: Any = None) -> Any:  # time spent reading, on this instance
            nonlocal read_seconds
            t = time.perf_counter()
            try:
                return fetch_live(wanted, progress)
            finally:
                read_seconds += time.perf_counter() - t

        backend.fetch_live = timed_fetch  # type: ignore[method-assign]
        before = backend.stats()
        started = time.perf_counter()
        loaded = load_manifests([str(directory)])
        load_seconds = time.perf_counter() - started
        outcome = services.plan_loaded(loaded, backend)
        seconds = time.perf_counter() - started
        after = backend.stats()
        if not outcome.ok or outcome.plan is None:
            raise SystemExit(f"{label}: plan failed: {[d.format() for d in outcome.diagnostics][:5]}")
        assert loaded.manifests is not None, "the manifests loaded for the plan just above"
        wanted = services._wanted(loaded.manifests, backend)
        floor_requests, floor_seconds = _floors(wanted, counts)
        lookups = sorted(n for n, c in wanted.items() if c is not None)
        limit = backend.code_lookup_limit
    delta = {k: after.get(k, 0) - before.get(k, 0) for k in after}
    plan = outcome.plan
    return {
        "scenario": label,
        "client": "reconciler (codes by " + ("any count" if limit >= sys.maxsize else f"up to {limit}") + ")",
        "managed_objects": objects,
        "seconds": round(seconds, 2),
        "load_seconds": round(load_seconds, 2),
        "read_seconds": round(read_seconds, 2),
        "requests": delta.get("requests", 0),
        "status_429": delta.get("status_429", 0),
        "floor_requests": floor_requests,
        "floor_seconds": round(floor_seconds, 2),
        "x_floor": round(read_seconds / floor_seconds, 2),
        "looked_up_by_code": lookups,
        "plan_summary": plan.summary(),
        "_changes": sorted((c.action, c.kind, c.key, repr(c.diff)) for c in plan.changes),
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
    for label, n in (("10k managed", objects_full), ("50 managed", objects_small)):
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
            "x_floor": round(per_get * n / (n / RATE_LIMIT), 2),
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
    ("load_seconds", "load s", ".2f"),
    ("read_seconds", "read s", ".2f"),
    ("floor_seconds", "read floor s", ".2f"),
    ("x_floor", "read x floor", ".2f"),
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
        pruned = Path(tmp) / "pruned"
        _pruned_copy(full, pruned)
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
        many = f"{args.accounts // 1000}k managed" if args.accounts >= 1000 else f"{args.accounts} managed"
        with bench_emulator(db, ORG_ID) as emu:
            rows.append(_plan_row(f"{many}, prune off", full, emu.base_url, counts, objects_full))
            time.sleep(1.1)  # a fresh calendar second for the emulator's rate limit
            rows.append(_plan_row(f"{many}, prune on", pruned, emu.base_url, counts, objects_full))
            time.sleep(1.1)
            rows.append(_plan_row(f"{args.managed} managed", small, emu.base_url, counts, objects_small))
            time.sleep(1.1)
            rows.extend(_terraform_rows(emu.base_url, sample_ids, objects_full, objects_small, args.tf_sample))
    for row in rows[3:]:
        row["scenario"] = row["scenario"].replace("10k managed", many).replace("50 managed", f"{args.managed} managed")

    print(f"\nHTTP plan through the emulator (--latency-ms {LATENCY_MS:g} --rate-limit {RATE_LIMIT:g}), "
          f"organization of {args.accounts} accounts; 'plan s' from loading the manifests to the "
          "finished plan, 'load s' and 'read s' its parts loading the manifests and reading the organization\n")
    table = print_table(rows, COLUMNS)
    off, on, small_row = rows[0], rows[1], rows[2]
    same_plans = off.pop("_changes") == on.pop("_changes")
    small_row.pop("_changes")
    p3_ok = off["seconds"] <= P3_SECONDS and off["requests"] <= off["floor_requests"] and "account" in off[
        "looked_up_by_code"]
    walk_ok = on["requests"] <= on["floor_requests"] and "account" not in on["looked_up_by_code"]
    small_ok = small_row["requests"] <= small_row["floor_requests"] and "account" in small_row["looked_up_by_code"]
    print(f"\ngoal P3: plan of {args.accounts} managed accounts, prune off, within {P3_SECONDS:g} s: "
          f"{'met' if p3_ok else 'NOT met'} ({off['seconds']:.2f} s: load {off['load_seconds']:.2f} s, read "
          f"{off['read_seconds']:.2f} s = {off['x_floor']:.2f}x its floor of {off['requests']} requests at "
          f"{RATE_LIMIT:g}/s, {off['floor_seconds']:.2f} s; plan {off['seconds'] / off['floor_seconds']:.2f}x it)")
    print(f"prune on: the cursor walk is the floor: read {on['read_seconds']:.2f} s = {on['x_floor']:.2f}x "
          f"{on['floor_seconds']:.2f} s, {on['requests']} requests (floor {on['floor_requests']}): "
          f"{'met' if walk_ok else 'NOT met'}; prune off reads {on['read_seconds'] / off['read_seconds']:.1f}x faster")
    print(f"same changes read by codes and walked whole: {'yes' if same_plans else 'NO'}")
    print(f"goal: {args.managed} managed accounts looked up by codes at the request floor: "
          f"{'met' if small_ok else 'NOT met'} ({small_row['requests']} requests, floor {small_row['floor_requests']})")
    print(f"Terraform-style rows: {args.tf_sample} GETs timed and scaled to the object count; "
          f"floor = objects / {RATE_LIMIT:g} per second.")
    ok = p3_ok and walk_ok and small_ok and same_plans
    if not args.no_write:
        path = write_results("http_plan", {
            "benchmark": "http_plan",
            "emulator": {"latency_ms": LATENCY_MS, "rate_limit": RATE_LIMIT},
            "goal": f"P3: prune-off plan of {args.accounts} managed accounts <= {P3_SECONDS:g} s; prune-on plan "
                    "and small manifests at their request floors; same changes both ways",
            "goal_met": ok,
            "table": table,
            "results": rows,
        })
        print(f"wrote {path.relative_to(ROOT)}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
