"""Benchmark of ``reconciler validate`` against the bare YAML parse of the same files.

The goal (issue "Foundation"): validating 100k accounts takes at most about twice as long as
``yaml.load(f, Loader=yaml.CSafeLoader)`` of the same files, so manifest checks never become
the slow step of a CI pipeline. Each measurement runs in a fresh child process so that its peak
memory (``ru_maxrss``) is honest and caches do not carry over between sizes.

Usage: ``python benchmarks/validate_bench.py [--sizes 1000,10000,100000] [--repeat N]``
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "validate.json"
ACCOUNTS_PER_FILE = 25_000

_HEADER = """\
organization:
  currency: USD
  timezone: Europe/London
  yearEpoch: 2024-01-01
  monthEpoch: 2024-01-01
  weekEpoch: 2024-01-01
  dayEpoch: 2024-01-01
  daysBeforeBillDue: 30
  currencyConversions:
    - {from: EUR, to: USD, multiplier: 1.08}
    - {from: GBP, to: USD, multiplier: 1.27}
currencies:
  - {code: USD, name: US Dollar, maxDecimalPlaces: 2}
  - {code: EUR, name: Euro, maxDecimalPlaces: 2}
  - {code: GBP, name: Pound Sterling, maxDecimalPlaces: 2}
customFields:
  account:
    tier: standard
    seats: 0
    region: unknown
"""

_CITIES = ["London", "Leeds", "Berlin", "Paris", "Austin", "Denver", "Dublin", "Lyon", "Porto"]
_STREETS = ["High Street", "Station Road", "Main Street", "Mill Lane", "Church Road", "Park Avenue"]
_WORDS = ["Acme", "Globex", "Initech", "Umbrella", "Hooli", "Vandelay", "Stark", "Wayne", "Tyrell"]
_SUFFIX = ["Ltd", "GmbH", "Inc", "SAS", "LLC", "plc"]


def _account(i: int, rng: random.Random) -> str:
    """One realistic account: every tenth is a parent of the next nine."""
    word = rng.choice(_WORDS)
    code = f"{word.lower()}-{i:06d}"
    lines = [
        f"  - code: {code}",
        f"    name: {word} {rng.choice(_SUFFIX)} {i}",
        f"    emailAddress: billing.{i}@{word.lower()}-{i % 997}.example.com",
        "    address:",
        f"      addressLine1: {rng.randint(1, 400)} {rng.choice(_STREETS)}",
        f"      locality: {rng.choice(_CITIES)}",
        f"      postCode: PC{rng.randint(1000, 9999)}",
        "      country: GB",
        f"    currency: {rng.choice(['USD', 'EUR', 'GBP'])}",
        f"    daysBeforeBillDue: {rng.choice([14, 30, 45])}",
        "    customFields:",
        f"      tier: {rng.choice(['standard', 'gold', 'platinum'])}",
        f"      seats: {rng.randint(1, 500)}",
    ]
    if i % 10:
        parent = i - i % 10
        lines.insert(3, f"    parent: {rng.choice(_WORDS).lower()}-{parent:06d}")
    return "\n".join(lines)


def generate(directory: Path, accounts: int, seed: int = 7) -> list[Path]:
    """Write ``accounts`` accounts (plus an organization) as several files under ``directory``."""
    rng = random.Random(seed)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "organization.yaml").write_text(_HEADER, encoding="utf-8")
    files = [directory / "organization.yaml"]
    # Parent codes must match: regenerate words deterministically per parent index.
    words = [rng.choice(_WORDS) for _ in range(accounts)]
    for start in range(0, accounts, ACCOUNTS_PER_FILE):
        path = directory / f"accounts-{start // ACCOUNTS_PER_FILE:03d}.yaml"
        chunk = []
        for i in range(start, min(accounts, start + ACCOUNTS_PER_FILE)):
            text = _account(i, rng)
            text = text.replace(text.split("\n", 1)[0], f"  - code: {words[i].lower()}-{i:06d}", 1)
            if i % 10:
                parent = i - i % 10
                text = "\n".join(
                    f"    parent: {words[parent].lower()}-{parent:06d}" if ln.startswith("    parent:") else ln
                    for ln in text.split("\n")
                )
            chunk.append(text)
        path.write_text("accounts:\n" + "\n".join(chunk) + "\n", encoding="utf-8")
        files.append(path)
    return files


# --- measurement -----------------------------------------------------------------------------------

_VALIDATE_CHILD = """
import json, resource, sys, time
sys.path.insert(0, {root!r})
from reconciler.manifest import load_manifests, reference_diagnostics
import reconciler.manifest.load  # module imports are paid once per process, not per file
started = time.perf_counter()
result = load_manifests([{directory!r}], environ={{}})
diagnostics = list(result.diagnostics)
if result.manifests is not None:
    diagnostics += reference_diagnostics(result.manifests, None)
elapsed = time.perf_counter() - started
objects = sum(1 for _ in result.manifests) if result.manifests else 0
errors = [d.format() for d in diagnostics if d.is_error]
print(json.dumps({{"seconds": elapsed, "maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                  "objects": objects, "errors": len(errors), "first_errors": errors[:3],
                  "warnings": sum(1 for d in diagnostics if not d.is_error)}}))
"""

_PARSE_CHILD = """
import json, resource, sys, time
import yaml
files = {files!r}
started = time.perf_counter()
for name in files:
    with open(name, encoding="utf-8") as handle:
        yaml.load(handle, Loader=yaml.CSafeLoader)
elapsed = time.perf_counter() - started
print(json.dumps({{"seconds": elapsed, "maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}}))
"""


def _child(code: str) -> dict[str, Any]:
    """Run ``code`` in a fresh interpreter; it prints one JSON line with its own figures."""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"benchmark child failed:\n{proc.stderr}")
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def measure(accounts: int, repeat: int) -> dict[str, Any]:
    """Best-of-``repeat`` validate and bare-parse times for ``accounts`` accounts."""
    with tempfile.TemporaryDirectory(prefix="reconciler-bench-") as tmp:
        directory = Path(tmp)
        files = [str(f) for f in generate(directory, accounts)]
        size = sum(Path(f).stat().st_size for f in files)
        validate = [_child(_VALIDATE_CHILD.format(root=str(ROOT), directory=str(directory))) for _ in range(repeat)]
        parse = [_child(_PARSE_CHILD.format(files=files)) for _ in range(repeat)]
    best_validate = min(validate, key=lambda r: r["seconds"])
    best_parse = min(parse, key=lambda r: r["seconds"])
    if best_validate["errors"]:
        raise SystemExit(f"generated manifests are invalid: {best_validate['first_errors']}")
    return {
        "accounts": accounts,
        "files": len(files),
        "bytes": size,
        "objects": best_validate["objects"],
        "warnings": best_validate["warnings"],
        "validate_seconds": round(best_validate["seconds"], 3),
        "validate_peak_mib": round(max(r["maxrss_kib"] for r in validate) / 1024, 1),
        "parse_seconds": round(best_parse["seconds"], 3),
        "parse_peak_mib": round(max(r["maxrss_kib"] for r in parse) / 1024, 1),
        "ratio": round(best_validate["seconds"] / best_parse["seconds"], 2),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1000,10000,100000", help="comma-separated account counts")
    parser.add_argument("--repeat", type=int, default=1, help="runs per measurement (best is kept)")
    parser.add_argument("--no-write", action="store_true", help=f"do not write {RESULTS.relative_to(ROOT)}")
    args = parser.parse_args(argv)
    rows = [measure(int(n), args.repeat) for n in args.sizes.split(",")]
    header = (
        f"{'accounts':>9} {'MB':>6} {'validate s':>11} {'peak MiB':>9} {'yaml.load s':>12} {'peak MiB':>9}"
        f" {'ratio':>6}"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        print(
            f"{r['accounts']:>9} {r['bytes'] / 1e6:>6.1f} {r['validate_seconds']:>11.2f} {r['validate_peak_mib']:>9.0f}"
            f" {r['parse_seconds']:>12.2f} {r['parse_peak_mib']:>9.0f} {r['ratio']:>6.2f}"
        )
    goal = rows[-1]["ratio"] <= 2.0
    print(f"\ngoal: validate within 2x of a bare CSafeLoader parse at {rows[-1]['accounts']} accounts: "
          f"{'met' if goal else 'NOT met'} (ratio {rows[-1]['ratio']})")
    if not args.no_write:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        document = {
            "benchmark": "validate",
            "python": platform.python_version(),
            "machine": platform.machine(),
            "cpus": os.cpu_count(),
            "goal": "validate_seconds <= 2 * parse_seconds at the largest size",
            "goal_met": goal,
            "results": rows,
        }
        RESULTS.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    return 0 if goal else 1


if __name__ == "__main__":
    sys.exit(main())
