"""CPU path: ``validate`` and ``plan`` on the local backend for 1k, 10k and 100k accounts.

For each size: manifests with every picklist populated (``_common.generate_manifests``), a
local organization seeded to match them except 1% of the accounts (0.8% stored with another
value -> update, 0.2% absent -> create), then, each in a fresh process timed from spawn to exit
with its own peak RSS:

- ``parse``:    ``yaml.load(f, Loader=yaml.CSafeLoader)`` over the same files (the floor);
- ``validate``: ``python -m reconciler validate DIR``;
- ``plan``:     ``python -m reconciler plan DIR --backend local:DB --format json`` (stdout kept
                to check that the plan holds exactly the seeded creates and updates).

A last child times the phases of the plan in process (load, read live, references, diff,
render) to show where the time goes.

Goal (issue "Scale"): plan within 2x the bare parse at 100k accounts, peak RSS under 1.5 GB.

Usage: ``python benchmarks/cpu_bench.py [--sizes 1000,10000,100000] [--repeat N] [--no-phases]``
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    ROOT,
    Measured,
    generate_manifests,
    manifest_files,
    print_table,
    run_measured,
    seed_store,
    write_results,
)

GOAL_RATIO = 2.0
GOAL_RSS_MIB = 1536.0

_PARSE_CHILD = """
import json, sys, time
import yaml
started = time.perf_counter()
for name in {files!r}:
    with open(name, encoding="utf-8") as handle:
        yaml.load(handle, Loader=yaml.CSafeLoader)
print(json.dumps({{"seconds": time.perf_counter() - started}}))
"""

_PHASES_CHILD = """
import json, sys, time
sys.path.insert(0, {root!r})
t0 = time.perf_counter()
from reconciler import services
from reconciler.backends import open_backend
from reconciler.manifest import load_manifests
from reconciler.render import plan_document, render_json
t1 = time.perf_counter()
loaded = load_manifests([{directory!r}])
t2 = time.perf_counter()
with open_backend({backend!r}) as backend:
    manifests = loaded.manifests
    wanted = services._wanted(manifests, backend)
    objects = backend.fetch_live(wanted)
    t3 = time.perf_counter()
    live = services.LiveState(objects, complete={{n: c is None for n, c in wanted.items()}})
    diags = services.reference_diagnostics(manifests, services._live_codes(objects))
    t4 = time.perf_counter()
    plan = services.build_plan(manifests, live, organization=backend.org_id, backend=backend.name)
    t5 = time.perf_counter()
text = render_json(plan_document(plan, redact_pii=False))
t6 = time.perf_counter()
print(json.dumps({{"imports": t1 - t0, "load": t2 - t1, "read_live": t3 - t2, "references": t4 - t3,
                  "diff": t5 - t4, "render": t6 - t5}}))
"""


def _child_json(m: Measured, what: str, stdout: str | None = None) -> dict[str, Any]:
    if m.returncode not in (0, 2):
        raise SystemExit(f"{what} failed (exit {m.returncode}):\n{m.stderr[-3000:]}")
    return json.loads(stdout) if stdout is not None else {}


def _best(runs: list[Measured]) -> Measured:
    return min(runs, key=lambda m: m.seconds)


def measure(accounts: int, repeat: int, phases: bool) -> dict[str, Any]:
    py = sys.executable
    with tempfile.TemporaryDirectory(prefix="reconciler-cpu-bench-") as tmp:
        directory = Path(tmp) / "manifests"
        generate_manifests(directory, accounts)
        files = manifest_files(directory)
        size = sum(Path(f).stat().st_size for f in files)
        db = Path(tmp) / "org.sqlite"
        seeded = seed_store(db, "local", directory)
        print(f"  {accounts} accounts: {size / 1e6:.1f} MB of manifests, organization seeded in "
              f"{seeded.seconds:.1f} s ({len(seeded.updated)} to update, {len(seeded.missing)} to create)",
              file=sys.stderr, flush=True)

        parse_runs, parse_inner = [], []
        for _ in range(repeat):
            out = Path(tmp) / "parse.json"
            with open(out, "w") as handle:
                m = run_measured([py, "-c", _PARSE_CHILD.format(files=files)], stdout=handle)
            parse_inner.append(_child_json(m, "bare parse", out.read_text())["seconds"])
            parse_runs.append(m)
        validate_runs = []
        for _ in range(repeat):
            m = run_measured([py, "-m", "reconciler", "validate", str(directory)], cwd=ROOT)
            _child_json(m, "validate")
            validate_runs.append(m)
        plan_runs = []
        summary: dict[str, int] = {}
        for _ in range(repeat):
            out = Path(tmp) / "plan.json"
            with open(out, "w") as handle:
                m = run_measured([py, "-m", "reconciler", "plan", str(directory), "--backend", f"local:{db}",
                                  "--format", "json", "--no-redact-pii"], stdout=handle, cwd=ROOT)
            _child_json(m, "plan")
            summary = json.loads(out.read_text())["summary"]
            plan_runs.append(m)
        if summary.get("update") != len(seeded.updated) or summary.get("create") != len(seeded.missing):
            raise SystemExit(f"the plan does not hold the seeded changes: {summary}, expected "
                             f"{len(seeded.updated)} updates and {len(seeded.missing)} creates")
        phase_figures: dict[str, float] = {}
        if phases:
            out = Path(tmp) / "phases.json"
            with open(out, "w") as handle:
                m = run_measured([py, "-c", _PHASES_CHILD.format(root=str(ROOT), directory=str(directory),
                                                                 backend=f"local:{db}")], stdout=handle)
            phase_figures = {k: round(v, 3) for k, v in _child_json(m, "plan phases", out.read_text()).items()}

    parse, validate, plan = _best(parse_runs), _best(validate_runs), _best(plan_runs)
    return {
        "accounts": accounts,
        "objects": summary["unchanged"] + summary["create"] + summary["update"],
        "files": len(files),
        "megabytes": round(size / 1e6, 1),
        "changed": seeded.changed,
        "plan_summary": summary,
        "parse_seconds": round(parse.seconds, 2),
        "parse_inner_seconds": round(min(parse_inner), 2),
        "parse_peak_mib": round(max(r.peak_mib for r in parse_runs)),
        "validate_seconds": round(validate.seconds, 2),
        "validate_peak_mib": round(max(r.peak_mib for r in validate_runs)),
        "validate_ratio": round(validate.seconds / parse.seconds, 2),
        "plan_seconds": round(plan.seconds, 2),
        "plan_peak_mib": round(max(r.peak_mib for r in plan_runs)),
        "plan_ratio": round(plan.seconds / parse.seconds, 2),
        "plan_phases": phase_figures,
    }


COLUMNS = [
    ("accounts", "accounts", ">"),
    ("megabytes", "MB", ".1f"),
    ("changed", "changed", ">"),
    ("parse_seconds", "parse s", ".2f"),
    ("parse_peak_mib", "MiB", ">"),
    ("validate_seconds", "validate s", ".2f"),
    ("validate_peak_mib", "MiB", ">"),
    ("validate_ratio", "x parse", ".2f"),
    ("plan_seconds", "plan s", ".2f"),
    ("plan_peak_mib", "MiB", ">"),
    ("plan_ratio", "x parse", ".2f"),
]

PHASE_COLUMNS = [
    ("accounts", "accounts", ">"),
    ("imports", "imports s", ".2f"),
    ("load", "load+validate s", ".2f"),
    ("read_live", "read live s", ".2f"),
    ("references", "references s", ".2f"),
    ("diff", "diff+order s", ".2f"),
    ("render", "render json s", ".2f"),
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1000,10000,100000", help="comma-separated account counts")
    parser.add_argument("--repeat", type=int, default=1, help="runs per measurement (fastest kept, peak RSS max)")
    parser.add_argument("--no-phases", action="store_true", help="skip the in-process phase breakdown")
    parser.add_argument("--no-write", action="store_true", help="do not write benchmarks/results/cpu.json")
    args = parser.parse_args(argv)
    rows = [measure(int(n), max(1, args.repeat), not args.no_phases) for n in args.sizes.split(",")]
    print("\nCPU path, local backend, 1% of accounts changed; each figure a fresh process, wall seconds "
          "from spawn to exit, peak RSS in MiB; 'x parse' = time / bare CSafeLoader parse time\n")
    table = print_table(rows, COLUMNS)
    if not args.no_phases:
        print("\nplan phases in process (seconds)\n")
        print_table([{"accounts": r["accounts"], **r["plan_phases"]} for r in rows], PHASE_COLUMNS)
    last = rows[-1]
    ratio_ok = last["plan_ratio"] <= GOAL_RATIO
    rss_ok = last["plan_peak_mib"] < GOAL_RSS_MIB
    print(f"\ngoal: plan within {GOAL_RATIO:g}x the bare parse at {last['accounts']} accounts: "
          f"{'met' if ratio_ok else 'NOT met'} ({last['plan_ratio']}x); peak RSS under {GOAL_RSS_MIB:.0f} MiB: "
          f"{'met' if rss_ok else 'NOT met'} ({last['plan_peak_mib']} MiB)")
    if not args.no_write:
        path = write_results("cpu", {
            "benchmark": "cpu",
            "goal": f"plan_seconds <= {GOAL_RATIO} * parse_seconds and plan_peak_mib < {GOAL_RSS_MIB} "
                    "at the largest size",
            "goal_met": ratio_ok and rss_ok,
            "table": table,
            "results": rows,
        })
        print(f"wrote {path.relative_to(ROOT)}")
    return 0 if ratio_ok and rss_ok else 1


if __name__ == "__main__":
    sys.exit(main())
