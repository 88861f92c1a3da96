"""HTTP apply: 1,000 account creates, then 1,000 account updates, through the emulator.

The emulator runs as a separate process (client and server do not share a GIL) with
``--latency-ms 100 --rate-limit 50``, m3ter's documented per-organization limit. Its organization
is seeded with everything the manifests hold except the accounts (currencies, reasons, transaction
types, organization config, custom fields), so that:

1. ``creates``: the plan of 1,000 accounts (every tenth the parent of the next nine) is exactly
   1,000 creates; it is applied with ``services.run_apply`` (the code ``reconciler apply`` runs);
2. ``updates``: the same accounts with a new name each are exactly 1,000 updates; applied too;
3. a last plan must show no change (the applies converged).

Only the apply is timed (the plan before it is not). Figures come from the m3ter backend's own
counters (``stats()``): HTTP requests sent to the organization API, 429s met, retries. The floor
is 1,000 requests / 50 per second = 20 s per phase.

Beside it, the same work scripted with the official m3ter SDK (0.9.0) one call at a time,
``client.accounts.create(...)`` then ``client.accounts.update(...)``, on ``--sdk-calls`` accounts
(default 200) and extrapolated linearly to 1,000 (said so in the table). Its requests are
counted with an httpx event hook, token requests apart.

Goal (issue "Scale"): each apply within 1.15x the 20 s floor, with no failed change.

Usage: ``python benchmarks/http_apply_bench.py [--accounts 1000] [--parallelism 10] [--sdk-calls 200]``
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    API_KEY,
    API_SECRET,
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

GOAL_RATIO = 1.15
ORG_ID = "00000000-0000-4000-8000-00000000be0c"


def _rename(directory: Path) -> None:
    """Second version of the manifests: every account gets a new name (one update each)."""
    for path in directory.glob("accounts-*.yaml"):
        text = path.read_text(encoding="utf-8")
        path.write_text(re.sub(r"^(    name: .*)$", r"\1 v2", text, flags=re.M), encoding="utf-8")


def _reconciler_phase(label: str, directory: Path, base_url: str, parallelism: int, expect: dict[str, int],
                      floor: float) -> dict[str, Any]:
    from reconciler import services

    with services.open_configured_backend(f"m3ter:{base_url}", rate_limit=RATE_LIMIT,
                                          parallelism=parallelism) as backend:
        outcome = services.make_plan([str(directory)], backend)
        if not outcome.ok or outcome.plan is None:
            raise SystemExit(f"{label}: plan failed: {[d.format() for d in outcome.diagnostics][:5]}")
        summary = outcome.plan.summary()
        got = {k: summary[k] for k in expect}
        if got != expect:
            raise SystemExit(f"{label}: the plan holds {summary}, expected {expect}")
        before = backend.stats()
        started = time.perf_counter()
        result = services.run_apply(outcome.plan, backend, parallelism=parallelism)
        seconds = time.perf_counter() - started
        after = backend.stats()
    delta = {k: after.get(k, 0) - before.get(k, 0) for k in after}
    failed = [o.message for o in result.outcomes if o.status != "applied"]
    return {
        "phase": label,
        "client": f"reconciler (parallelism {parallelism})",
        "changes": len(result.outcomes),
        "seconds": round(seconds, 2),
        "requests": delta.get("requests", 0),
        "status_429": delta.get("status_429", 0),
        "retries": delta.get("retries", 0),
        "token_requests": delta.get("token_requests", 0),
        "failed": len(failed),
        "first_failures": failed[:3],
        "floor_seconds": floor,
        "ratio": round(seconds / floor, 3),
        "extrapolated": False,
    }


def _sdk_phases(base_url: str, accounts: list[dict[str, Any]], calls: int, total: int) -> list[dict[str, Any]]:
    """Create ``calls`` accounts with the official SDK one call at a time, then update them."""
    import httpx
    import m3ter

    counts: Counter[str] = Counter()

    def on_response(response: httpx.Response) -> None:
        token = response.request.url.path.endswith("/oauth/token")
        counts["token_requests" if token else "requests"] += 1
        if response.status_code == 429:
            counts["status_429"] += 1

    http = httpx.Client(event_hooks={"response": [on_response]}, timeout=30)
    client = m3ter.M3ter(api_key=API_KEY, api_secret=API_SECRET, org_id=ORG_ID, base_url=base_url, http_client=http)
    sample = accounts[:calls]
    ids: dict[str, str] = {}
    rows = []
    try:
        for phase in ("creates", "updates"):
            counts.clear()
            started = time.perf_counter()
            for a in sample:
                code = f"sdk-{a['code']}"
                kwargs: dict[str, Any] = {
                    "code": code,
                    "name": a["name"] if phase == "creates" else f"{a['name']} v2",
                    "email_address": a["emailAddress"],
                    "address": a.get("address"),
                    "currency": a.get("currency"),
                    "days_before_bill_due": a.get("daysBeforeBillDue"),
                    "custom_fields": a.get("customFields"),
                }
                parent = a.get("parent")
                if parent is not None and f"sdk-{parent}" in ids:
                    kwargs["parent_account_id"] = ids[f"sdk-{parent}"]
                kwargs = {k: v for k, v in kwargs.items() if v is not None}
                if phase == "creates":
                    created = client.accounts.create(**kwargs)
                    ids[code] = created.id
                else:
                    # One call per change, like a script that kept the version from its create
                    # (version 1): no read before the write, the SDK's best case.
                    client.accounts.update(ids[code], version=1, **kwargs)
            seconds = time.perf_counter() - started
            scale = total / len(sample)
            rows.append({
                "phase": phase,
                "client": f"official SDK, sequential ({len(sample)} calls, x{scale:g})",
                "changes": total,
                "seconds": round(seconds * scale, 2),
                "measured_seconds": round(seconds, 2),
                "measured_calls": len(sample),
                "requests": round(counts["requests"] * scale),
                "status_429": round(counts["status_429"] * scale),
                "retries": None,
                "token_requests": round(counts["token_requests"] * scale),
                "failed": 0,
                "floor_seconds": total / RATE_LIMIT,
                "ratio": round(seconds * scale / (total / RATE_LIMIT), 3),
                "extrapolated": scale != 1,
            })
    finally:
        client.close()
        http.close()
    return rows


COLUMNS = [
    ("phase", "phase", "<"),
    ("client", "client", "<"),
    ("changes", "changes", ">"),
    ("seconds", "seconds", ".2f"),
    ("requests", "requests", ">"),
    ("token_requests", "tokens", ">"),
    ("status_429", "429s", ">"),
    ("retries", "retries", ">"),
    ("failed", "failed", ">"),
    ("floor_seconds", "floor s", ".0f"),
    ("ratio", "x floor", ".3f"),
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--accounts", type=int, default=1000, help="accounts created, then updated")
    parser.add_argument("--parallelism", type=int, default=10, help="reconciler apply --parallelism")
    parser.add_argument("--sdk-calls", type=int, default=200, help="SDK calls per phase (0: skip the SDK)")
    parser.add_argument("--no-write", action="store_true", help="do not write benchmarks/results/http_apply.json")
    args = parser.parse_args(argv)


    floor = args.accounts / RATE_LIMIT
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="reconciler-apply-bench-") as tmp:
        directory = Path(tmp) / "manifests"
        generate_manifests(directory, args.accounts)
        db = Path(tmp) / "emulator.sqlite"
        seed_store(db, ORG_ID, directory, change_share=0, only_accounts=[])
        with bench_emulator(db, ORG_ID) as emu:
            rows.append(_reconciler_phase("creates", directory, emu.base_url, args.parallelism,
                                          {"create": args.accounts, "update": 0}, floor))
            time.sleep(1.1)  # a fresh rate-limit second for the next phase
            _rename(directory)
            rows.append(_reconciler_phase("updates", directory, emu.base_url, args.parallelism,
                                          {"create": 0, "update": args.accounts}, floor))
            time.sleep(1.1)
            from reconciler import services

            with services.open_configured_backend(f"m3ter:{emu.base_url}") as backend:
                final = services.make_plan([str(directory)], backend)
            assert final.plan is not None
            if final.plan.has_changes:
                raise SystemExit(f"the applies did not converge: {final.plan.summary()}")
            if args.sdk_calls > 0:
                time.sleep(1.1)
                accounts = read_manifests(directory)["accounts"]
                rows.extend(_sdk_phases(emu.base_url, accounts, min(args.sdk_calls, args.accounts), args.accounts))

    print(f"\nHTTP apply through the emulator (--latency-ms {LATENCY_MS:g} --rate-limit {RATE_LIMIT:g}); "
          f"floor = {args.accounts} requests / {RATE_LIMIT:g} per second\n")
    table = print_table(rows, COLUMNS)
    ours = [r for r in rows if r["client"].startswith("reconciler")]
    goal = all(r["ratio"] <= GOAL_RATIO and r["failed"] == 0 for r in ours)
    worst = max(r["ratio"] for r in ours)
    print(f"\ngoal: every apply within {GOAL_RATIO}x the {floor:g} s floor with no failed change: "
          f"{'met' if goal else 'NOT met'} (worst {worst}x)")
    if any(r.get("extrapolated") for r in rows):
        print(f"SDK rows: {args.sdk_calls} calls per phase measured, scaled linearly to {args.accounts}.")
    if not args.no_write:
        path = write_results("http_apply", {
            "benchmark": "http_apply",
            "emulator": {"latency_ms": LATENCY_MS, "rate_limit": RATE_LIMIT},
            "goal": f"seconds <= {GOAL_RATIO} * floor_seconds and failed == 0 for reconciler's applies",
            "goal_met": goal,
            "table": table,
            "results": rows,
        })
        print(f"wrote {path.relative_to(ROOT)}")
    return 0 if goal else 1


if __name__ == "__main__":
    sys.exit(main())
