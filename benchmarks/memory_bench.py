"""Peak memory of every mode at scale (issue 13, goal P1m): each command in a fresh process,
its own peak RSS from ``wait4`` (see ``_common.run_measured``), flagged when over the line.

Modes, at N accounts (default 100k) of the shared generator's manifests:

- ``validate``;
- ``plan`` of a fresh organization in each format (text, json, markdown) and ``plan --out``;
- ``plan --format json`` of an organization that matches except 1% (the usual case);
- ``apply`` of a fresh organization (every object a create) and of the 1%-changed one
  (updates and a few creates);
- ``drift`` of the 1%-changed organization;
- ``export`` of the whole organization.

Exit 1 when any mode's peak RSS is over ``--limit-mib`` (default 1024: two such jobs fit a
7 GB CI runner with room for the rest).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from _common import generate_manifests, machine, print_table, run_measured, seed_store, write_results

ORG = "local"


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "reconciler", *args]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--accounts", type=int, default=100_000)
    parser.add_argument("--limit-mib", type=float, default=1024.0)
    parser.add_argument("--modes", default="", help="comma-separated subset of modes to run")
    parser.add_argument("--no-write", action="store_true", help="leave benchmarks/results/ alone")
    args = parser.parse_args(argv)
    wanted = {m.strip() for m in args.modes.split(",") if m.strip()}

    work = Path(tempfile.mkdtemp(prefix="reconciler-memory-"))
    rows: list[dict[str, Any]] = []
    try:
        manifests = work / "manifests"
        generate_manifests(manifests, args.accounts)
        seeded_db = work / "seeded.sqlite"
        seed_store(seeded_db, ORG, manifests, change_share=0.01)
        fresh = work / "fresh.sqlite"
        changed_copy = work / "changed.sqlite"

        def backend(db: Path) -> str:
            return f"local:{db}"

        modes: list[tuple[str, list[str], Any]] = [
            ("validate", _cli("validate", str(manifests)), None),
            ("plan text (fresh)", _cli("plan", str(manifests), "--backend", backend(fresh)), None),
            ("plan json (fresh)", _cli("plan", str(manifests), "--backend", backend(fresh), "--format", "json"), None),
            ("plan markdown (fresh)", _cli("plan", str(manifests), "--backend", backend(fresh), "--format",
                                           "markdown"), None),
            ("plan --out (fresh)", _cli("plan", str(manifests), "--backend", backend(fresh), "--out",
                                        str(work / "plan.json")), None),
            ("plan json (1% changed)", _cli("plan", str(manifests), "--backend", backend(seeded_db), "--format",
                                            "json"), None),
            ("drift (1% changed)", _cli("drift", str(manifests), "--backend", backend(seeded_db)), None),
            ("export", _cli("export", "--out", str(work / "export"), "--backend", backend(seeded_db)), None),
            ("apply updates (1% changed)", _cli("apply", str(manifests), "--backend", backend(changed_copy),
                                                "--auto-approve"), "copy"),
            ("apply creates (fresh)", _cli("apply", str(manifests), "--backend", backend(fresh), "--auto-approve"),
             "fresh"),
        ]
        for name, cmd, prepare in modes:
            if wanted and not any(w in name for w in wanted):
                continue
            if prepare == "copy":
                shutil.copyfile(seeded_db, changed_copy)
            if prepare == "fresh" and fresh.exists():
                fresh.unlink()
            measured = run_measured(cmd)
            ok = measured.returncode in (0, 2)
            rows.append({
                "mode": name,
                "seconds": round(measured.seconds, 2),
                "peak_mib": round(measured.peak_mib),
                "exit": measured.returncode,
                "over": "OVER" if measured.peak_mib > args.limit_mib else "",
            })
            print(f"{name}: {measured.seconds:.1f} s, {measured.peak_mib:.0f} MiB, exit {measured.returncode}",
                  file=sys.stderr)
            if not ok:
                print(measured.stderr[-2000:], file=sys.stderr)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    print_table(rows, [("mode", "mode", "<"), ("seconds", "s", ">"), ("peak_mib", "peak MiB", ">"),
                               ("exit", "exit", ">"), ("over", f"> {args.limit_mib:g} MiB", "<")])
    print(f"(peak RSS per mode at {args.accounts} accounts, limit {args.limit_mib:g} MiB)")
    over = [r["mode"] for r in rows if r["over"]]
    failed = [r["mode"] for r in rows if r["exit"] not in (0, 2)]
    print("P1m holds" if not over and not failed else f"P1m missed: over {over}, failed {failed}")
    if not args.no_write:
        write_results("memory", {"machine": machine(), "accounts": args.accounts, "limit_mib": args.limit_mib,
                                 "rows": rows})
    return 0 if not over and not failed else 1


if __name__ == "__main__":
    sys.exit(main())
