"""The pricing catalog at scale: 1,000 plans with 10 pricings each, local backend.

Manifests (``generate_catalog``): 10 products, each with a meter (data and derived fields),
10 aggregations and a plan template; 1,000 plans spread over the templates, each with 10
tiered pricings nested under it (10,000 pricings), in 20 files. Each command runs in a fresh
process timed from spawn to exit with its own peak RSS (``_common.run_measured``):

- ``parse``:      the floor, as in ``cpu_bench``: a process that starts, imports and parses the
                  same files with yaml-rs (checked to return PyYAML safe_load's data on them);
- ``validate``:   ``python -m reconciler validate DIR``;
- ``plan fresh``: ``plan --format json`` against an empty organization (every object created);
- ``apply``:      the fresh plan applied (setup of the next step; timed and RSS reported too);
- ``plan same``:  ``plan --format json`` against the organization the apply made (no change).

Goals (issue 15 applies issue 13's to the catalog): plan fresh and no-change within 3x the
floor, peak RSS under 1 GiB in every mode.

Usage: ``python benchmarks/catalog_bench.py [--plans 1000] [--pricings 10] [--no-write]``
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import ROOT, compile_package, manifest_files, print_table, run_measured, write_results
from cpu_bench import _PARSE_CHILD, floor_parser

_CSAFE_CHILD = """
import json, time
import yaml
started = time.perf_counter()
for name in {files!r}:
    with open(name, encoding="utf-8") as handle:
        yaml.load(handle.read(), Loader=yaml.CSafeLoader)
print(json.dumps({{"seconds": time.perf_counter() - started}}))
"""
_PARSE_CHILD_PLAIN = _PARSE_CHILD.replace("yaml_rs.loads(handle.read())",
                                          "yaml_rs.loads(handle.read(), parse_datetime=False)")
GOAL_RATIO = 3.0
GOAL_RSS_MIB = 1024.0
PRODUCTS = 10
AGGREGATIONS_PER_PRODUCT = 10
FILES = 20


def generate_catalog(directory: Path, plans: int, pricings: int) -> list[Path]:
    """Write the catalog manifests; returns the files written."""
    directory.mkdir(parents=True, exist_ok=True)
    out: list[Path] = []
    lines = ["organization:", "  daysBeforeBillDue: 30", "products:"]
    for p in range(PRODUCTS):
        lines += [f"  - {{code: prod-{p:02d}, name: Product {p}}}"]
    lines.append("meters:")
    for p in range(PRODUCTS):
        lines += [
            f"  - code: meter-{p:02d}",
            f"    name: Meter {p}",
            f"    product: prod-{p:02d}",
            "    dataFields:",
            "      - {category: MEASURE, code: requests, name: Requests, unit: calls}",
            "      - {category: MEASURE, code: bytes, name: Bytes, unit: bytes}",
            "      - {category: WHO, code: user, name: User}",
            "    derivedFields:",
            "      - {category: MEASURE, code: kib, name: KiB, unit: KiB, calculation: bytes / 1024}",
        ]
    lines.append("aggregations:")
    for p in range(PRODUCTS):
        for a in range(AGGREGATIONS_PER_PRODUCT):
            lines += [
                f"  - code: agg_{p:02d}_{a:02d}",
                f"    name: Aggregation {p}.{a}",
                f"    meter: meter-{p:02d}",
                f"    targetField: {'requests' if a % 2 == 0 else 'bytes'}",
                "    aggregation: SUM",
                "    rounding: NONE",
                "    quantityPerUnit: 1",
                "    unit: calls",
            ]
    lines.append("planTemplates:")
    for p in range(PRODUCTS):
        lines += [
            f"  - code: tmpl-{p:02d}",
            f"    name: Template {p}",
            f"    product: prod-{p:02d}",
            "    currency: USD",
            "    billFrequency: MONTHLY",
            "    billFrequencyInterval: 1",
            "    standingCharge: 0",
        ]
    head = directory / "catalog.yaml"
    head.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out.append(head)
    per_file = max(1, plans // FILES)
    for f in range(0, plans, per_file):
        body = ["plans:"]
        for i in range(f, min(plans, f + per_file)):
            p = i % PRODUCTS
            body += [f"  - code: plan-{i:05d}", f"    name: Plan {i}", f"    planTemplate: tmpl-{p:02d}",
                     f"    standingCharge: {10 + i % 90}", "    pricings:"]
            for k in range(pricings):
                a = k % AGGREGATIONS_PER_PRODUCT
                body += [
                    f"      - aggregation: agg_{p:02d}_{a:02d}",
                    f"        startDate: '{2024 + k // AGGREGATIONS_PER_PRODUCT}-01-01T00:00:00Z'",
                    "        cumulative: true",
                    "        pricingBands:",
                    "          - {lowerLimit: 0, fixedPrice: 0, unitPrice: 0.01}",
                    f"          - {{lowerLimit: 1000, fixedPrice: 0, unitPrice: {0.005 + k / 10000}}}",
                ]
        path = directory / f"plans-{f // per_file:03d}.yaml"
        path.write_text("\n".join(body) + "\n", encoding="utf-8")
        out.append(path)
    return out


def _yaml_rs_plain_matches(files: list[str]) -> bool:
    import yaml_rs

    for name in files:
        with open(name, encoding="utf-8") as handle:
            text = handle.read()
        if yaml_rs.loads(text, parse_datetime=False) != yaml.load(text, Loader=yaml.CSafeLoader):
            return False
    return True


def _row(mode: str, seconds: float, rss: float, floor: float) -> dict[str, Any]:
    return {"mode": mode, "seconds": seconds, "ratio": seconds / floor, "rss": rss}


def measure(plans: int, pricings: int) -> dict[str, Any]:
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="reconciler-catalog-") as tmp:
        directory = Path(tmp) / "manifests"
        generate_catalog(directory, plans, pricings)
        files = manifest_files(directory)
        # yaml-rs reads a quoted '2024-01-01T00:00:00Z' as a datetime (PyYAML: a string); with
        # parse_datetime=False it returns PyYAML's data on these files (no unquoted dates), so the
        # floor is that; if it ever does not, the floor falls back to PyYAML's C loader.
        child, parser_name = _CSAFE_CHILD, f"PyYAML CSafeLoader {yaml.__version__}"
        if _yaml_rs_plain_matches(files):
            child, parser_name = _PARSE_CHILD_PLAIN, f"{floor_parser()}, parse_datetime=False"
        out = Path(tmp) / "parse.json"
        with open(out, "w") as handle:
            floor = run_measured([sys.executable, "-c", child.format(files=files)], stdout=handle)
        rows.append({"mode": f"parse ({parser_name})", "seconds": floor.seconds, "ratio": 1.0,
                     "rss": floor.peak_mib})
        db = Path(tmp) / "org.sqlite"
        backend = f"local:{db}"
        reconciler = [sys.executable, "-m", "reconciler"]
        for mode, args in (
            ("validate", ["validate", str(directory)]),
            ("plan fresh", ["plan", str(directory), "--backend", backend, "--format", "json"]),
            ("apply", ["apply", str(directory), "--backend", backend, "--auto-approve"]),
            ("plan same", ["plan", str(directory), "--backend", backend, "--format", "json",
                           "--detailed-exitcode"]),
        ):
            m = run_measured([*reconciler, *args], cwd=ROOT)
            expected = (0,) if mode != "plan fresh" else (0, 2)
            if m.returncode not in expected:
                raise SystemExit(f"{mode} failed (exit {m.returncode}):\n{m.stderr[-3000:]}")
            rows.append(_row(mode, m.seconds, m.peak_mib, floor.seconds))
    return {"plans": plans, "pricings_per_plan": pricings, "rows": rows}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--plans", type=int, default=1000)
    parser.add_argument("--pricings", type=int, default=10)
    parser.add_argument("--no-write", action="store_true", help="do not write benchmarks/results/catalog.json")
    args = parser.parse_args(argv)
    compile_package()
    result = measure(args.plans, args.pricings)
    print(f"catalog: {args.plans} plans x {args.pricings} pricings (local backend)")
    print_table(result["rows"], [("mode", "mode", "<"), ("seconds", "seconds", ".2f"), ("ratio", "x floor", ".2f"),
                                 ("rss", "peak RSS MiB", ".0f")])
    held = {
        "plan fresh/same <= 3x floor": all(
            r["ratio"] <= GOAL_RATIO for r in result["rows"] if r["mode"].startswith("plan")),
        "peak RSS <= 1 GiB": all(r["rss"] <= GOAL_RSS_MIB for r in result["rows"]),
    }
    for goal, ok in held.items():
        print(f"{'held' if ok else 'NOT held'}: {goal}")
    result["goals"] = held
    if not args.no_write:
        write_results("catalog", result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
