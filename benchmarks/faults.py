"""Fault catalogue: segpipe run as a careless user or an attacker would, on data made here.

    python benchmarks/faults.py [--quick] [--case NAME ...] [--list] [--keep DIR]

Every case runs the real thing — `segpipe prepare`, `segpipe run`, `segpipe predict` in
their own processes, and one real `segpipe serve` on a tiny registered model — and checks
what the user or client sees: the exit status, one clear message naming the file, field or
request, no traceback, nothing half-written left behind, bounded memory, HTTP statuses and
short JSON bodies. Groups: prepare (truncated GeoTIFF, a PNG claiming 50000x50000, a zip
bomb, a stray colour, an empty split, a killed run's temporary folder), pipeline (a missing
source; a failing step, SIGTERM, and SIGKILL then resume, the slow ones), predict (a
truncated scene, inf pixels) and server (truncated PNG, inf pixels, a huge header, too many
pixels across images, an unknown param, invalid JSON, an oversized body).

Prints one JSON document — one object per case (case, group, expected, got, ok), the
summary, the seconds and the load averages — and a summary line on stderr. ``--quick``
skips the slow pipeline cases. Exit status 1 when a case did not behave as expected; never
a judgement on time.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import traceback
from pathlib import Path

import _faults_data  # noqa: F401  registers the prepare and predict cases
import _faults_pipeline  # noqa: F401  registers the pipeline cases
import _faults_server  # noqa: F401  registers the server cases
from _faults_common import CASES, Case, Context


def _load() -> list[float]:
    return [round(load, 2) for load in os.getloadavg()]


def run_case(ctx: Context, item: Case) -> dict:
    started = time.perf_counter()
    try:
        got, ok = item.run(ctx)
    except Exception as exc:  # a case that crashes is reported, and the others still run
        where = traceback.extract_tb(exc.__traceback__)[-1]
        got = (f"the case crashed: {type(exc).__name__}: {ctx.short(str(exc), 200)} "
               f"({Path(where.filename).name}:{where.lineno})")
        ok = False
    return {"case": item.name, "group": item.group, "expected": item.expected, "got": got,
            "ok": bool(ok), "seconds": round(time.perf_counter() - started, 1)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="skip the slow pipeline cases")
    parser.add_argument("--case", action="append", default=[], metavar="NAME",
                        help="run only this case (repeatable)")
    parser.add_argument("--list", action="store_true", help="list the cases and exit")
    parser.add_argument("--keep", type=Path, metavar="DIR",
                        help="make the cases' files in DIR (new) and keep them, to look into")
    args = parser.parse_args(argv)
    names = {item.name for item in CASES}
    if unknown := sorted(set(args.case) - names):
        parser.error(f"unknown case(s) {', '.join(unknown)}; --list shows them")
    chosen = [item for item in CASES
              if (not args.case or item.name in args.case) and not (args.quick and item.slow)]
    if args.list:
        for item in CASES:
            print(f"{item.name:40} {item.group:9} {'slow' if item.slow else ''}")
        return 0

    started, load_at_start = time.perf_counter(), _load()
    results = []
    with tempfile.TemporaryDirectory(prefix="segpipe-faults-") as tmp:
        root = Path(tmp)
        if args.keep:
            args.keep.mkdir(parents=True)
            root = args.keep.resolve()
        ctx = Context(root)
        try:
            for item in chosen:
                results.append(run_case(ctx, item))
                print(f"{'ok ' if results[-1]['ok'] else 'NOT OK'} {item.name} "
                      f"({results[-1]['seconds']} s)", file=sys.stderr, flush=True)
        finally:
            ctx.close()
    failed = [r["case"] for r in results if not r["ok"]]
    seconds = round(time.perf_counter() - started, 1)
    summary = {"cases": len(results), "ok": len(results) - len(failed), "not_ok": failed,
               "quick": args.quick}
    print(json.dumps({"cases": results, "summary": summary, "seconds": seconds,
                      "cpus": os.cpu_count(), "load_average_at_start": load_at_start,
                      "load_average_at_end": _load()}, indent=1))
    print(f"faults: {summary['ok']}/{len(results)} cases behaved as expected"
          f"{'' if not failed else ' (not: ' + ', '.join(failed) + ')'} in {seconds} s; "
          f"load average {' '.join(map(str, _load()))}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
