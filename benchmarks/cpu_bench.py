"""CPU path: ``validate`` and ``plan`` on the local backend for 1k, 10k and 100k accounts.

For each size: manifests with every picklist populated (``_common.generate_manifests``), a
local organization seeded to match them except 1% of the accounts (0.8% stored with another
value -> update, 0.2% absent -> create), then, each in a fresh process timed from spawn to exit
with its own peak RSS:

- ``parse``:    the floor: a process that starts, imports and parses the same files with the
                fastest YAML parser found to return exactly PyYAML ``safe_load``'s data on them
                (yaml-rs, dates as ``datetime.date``; checked here against ``CSafeLoader``);
- ``validate``: ``python -m reconciler validate DIR``;
- ``plan``:     ``python -m reconciler plan DIR --backend local:DB --format json`` (stdout kept
                to check that the plan holds exactly the seeded creates and updates);
- ``plan fresh`` and ``plan same``: the same plan against an empty organization (every object
                created) and against one that matches the manifests (no change).

A last child times the phases of the plan in process (load, read live, references, diff,
render) to show where the time goes.

Goals (issue 13): P1 plan (fresh and no-change) within 3x the floor at the largest size;
P2 at 10k accounts validate and no-change plan within 3x the floor; peak RSS under 1.5 GB.

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
    compile_package,
    generate_manifests,
    manifest_files,
    print_table,
    run_measured,
    seed_store,
    write_results,
)

GOAL_RATIO = 3.0
P2_ACCOUNTS = 10_000
GOAL_RSS_MIB = 1536.0

# The floor: the fastest parser that installs here and returns PyYAML safe_load's data on the
# benchmark manifests (dates included). Evaluated in issue 13: yaml-rs 0.1.6 (Rust) ~0.3 s for
# 10k accounts against ~4 s for CSafeLoader; faster ones (rs-turboyaml, fastyaml-rs, py-yaml12,
# pyrs-yaml) leave dates as strings, ryaml/pyyaml-rs/xoryaml/oryaml likewise.
FLOOR_PARSER = "yaml-rs"
_PARSE_CHILD = """
import json, sys, time
import yaml_rs
started = time.perf_counter()
for name in {files!r}:
    with open(name, encoding="utf-8") as handle:
        yaml_rs.loads(handle.read())
print(json.dumps({{"seconds": time.perf_counter() - started}}))
"""


def floor_parser() -> str:
    """Name and version of the floor's parser, after checking it returns CSafeLoader's data."""
    import importlib.metadata

    return f"{FLOOR_PARSER} {importlib.metadata.version(FLOOR_PARSER)}"


def check_floor_parser(files: list[str]) -> None:
    """The floor must be a correct parser: the same data as PyYAML's safe loader on these files."""
    import yaml
    import yaml_rs

    for name in files:
        with open(name, encoding="utf-8") as handle:
            text = handle.read()
        if yaml_rs.loads(text) != yaml.load(text, Loader=yaml.CSafeLoader):
            raise SystemExit(f"{FLOOR_PARSER} does not return PyYAML safe_load's data on {name}")

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
        if accounts <= P2_ACCOUNTS:
            check_floor_parser(files)
        db = Path(tmp) / "org.sqlite"
        seeded = seed_store(db, "local", directory)
        same_db = Path(tmp) / "same.sqlite"
        seed_store(same_db, "local", directory, change_share=0.0)
        fresh_db = Path(tmp) / "fresh.sqlite"
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
        extra: dict[str, list[Measured]] = {"fresh": [], "same": []}
        for label, target in (("fresh", fresh_db), ("same", same_db)):
            for _ in range(repeat):
                out = Path(tmp) / f"plan-{label}.json"
                with open(out, "w") as handle:
                    m = run_measured([py, "-m", "reconciler", "plan", str(directory), "--backend", f"local:{target}",
                                      "--format", "json", "--no-redact-pii"], stdout=handle, cwd=ROOT)
                _child_json(m, f"plan ({label})")
                got = json.loads(out.read_text())["summary"]
                if label == "same" and any(got[k] for k in ("create", "update", "archive", "delete")):
                    raise SystemExit(f"the no-change plan is not empty: {got}")
                if label == "fresh" and got["create"] < accounts:
                    raise SystemExit(f"the fresh plan does not create every account: {got}")
                extra[label].append(m)
        phase_figures: dict[str, float] = {}
        if phases:
            out = Path(tmp) / "phases.json"
            with open(out, "w") as handle:
                m = run_measured([py, "-c", _PHASES_CHILD.format(root=str(ROOT), directory=str(directory),
                                                                 backend=f"local:{db}")], stdout=handle)
            phase_figures = {k: round(v, 3) for k, v in _child_json(m, "plan phases", out.read_text()).items()}

    parse, validate, plan = _best(parse_runs), _best(validate_runs), _best(plan_runs)
    fresh, same = _best(extra["fresh"]), _best(extra["same"])
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
        "fresh_seconds": round(fresh.seconds, 2),
        "fresh_peak_mib": round(max(r.peak_mib for r in extra["fresh"])),
        "fresh_ratio": round(fresh.seconds / parse.seconds, 2),
        "same_seconds": round(same.seconds, 2),
        "same_peak_mib": round(max(r.peak_mib for r in extra["same"])),
        "same_ratio": round(same.seconds / parse.seconds, 2),
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
    ("fresh_seconds", "fresh s", ".2f"),
    ("fresh_peak_mib", "MiB", ">"),
    ("fresh_ratio", "x parse", ".2f"),
    ("same_seconds", "same s", ".2f"),
    ("same_peak_mib", "MiB", ">"),
    ("same_ratio", "x parse", ".2f"),
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
    compile_package()  # measured like an installed package: bytecode read, not compiled per run
    rows = [measure(int(n), max(1, args.repeat), not args.no_phases) for n in args.sizes.split(",")]
    parser_name = floor_parser()
    print(f"\nCPU path, local backend; each figure a fresh process, wall seconds from spawn to exit, peak RSS "
          f"in MiB; 'parse' = start, import and parse with {parser_name} (the floor); 'x parse' = time / parse; "
          "plan = 1% of accounts changed, fresh = empty organization, same = no change\n")
    table = print_table(rows, COLUMNS)
    if not args.no_phases:
        print("\nplan phases in process (seconds)\n")
        print_table([{"accounts": r["accounts"], **r["plan_phases"]} for r in rows], PHASE_COLUMNS)
    last = rows[-1]
    p1 = max(last["fresh_ratio"], last["same_ratio"]) <= GOAL_RATIO
    rss_ok = max(last["plan_peak_mib"], last["fresh_peak_mib"], last["same_peak_mib"]) < GOAL_RSS_MIB
    print(f"\nfloor parser: {parser_name} (returns PyYAML safe_load's data on these manifests)")
    print(f"goal P1: plan within {GOAL_RATIO:g}x the floor at {last['accounts']} accounts, fresh and no-change: "
          f"{'met' if p1 else 'NOT met'} (fresh {last['fresh_ratio']}x, no-change {last['same_ratio']}x)")
    p2_rows = [r for r in rows if r["accounts"] == P2_ACCOUNTS]
    p2 = True
    if p2_rows:
        r = p2_rows[0]
        p2 = max(r["validate_ratio"], r["same_ratio"]) <= GOAL_RATIO
        print(f"goal P2: at {P2_ACCOUNTS} accounts validate and no-change plan within {GOAL_RATIO:g}x the floor: "
              f"{'met' if p2 else 'NOT met'} (validate {r['validate_ratio']}x, no-change plan {r['same_ratio']}x)")
    print(f"peak RSS under {GOAL_RSS_MIB:.0f} MiB: {'met' if rss_ok else 'NOT met'}")
    ratio_ok = p1 and p2
    if not args.no_write:
        path = write_results("cpu", {
            "benchmark": "cpu",
            "floor_parser": parser_name,
            "goal": f"P1: fresh and no-change plan <= {GOAL_RATIO} x floor at the largest size; P2: validate and "
                    f"no-change plan <= {GOAL_RATIO} x floor at {P2_ACCOUNTS}; peak RSS < {GOAL_RSS_MIB} MiB",
            "goal_met": ratio_ok and rss_ok,
            "table": table,
            "results": rows,
        })
        print(f"wrote {path.relative_to(ROOT)}")
    return 0 if ratio_ok and rss_ok else 1


if __name__ == "__main__":
    sys.exit(main())
