"""Run every benchmark, one after the other, and print where the results went.

    python -m bench.run_all [--quick] [--only job_vs_loop orchestration scale]

`make bench` runs this at full size (about 15-30 minutes on 2 cores). --quick uses small
sizes (32 requests, 200 null items, 20,000 rows) for a smoke run on a shared machine.
"""

from __future__ import annotations

import argparse
import importlib
import os
import time

from bench.common import RESULTS, load_note

BENCHMARKS = ("job_vs_loop", "orchestration", "scale")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, a few minutes")
    parser.add_argument("--only", nargs="*", choices=BENCHMARKS, default=list(BENCHMARKS))
    args = parser.parse_args(argv)
    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    print(load_note())
    if os.getloadavg()[0] >= 1.0:
        print("note: the machine is busy; compare the ratios, not absolute times")
    timings = {}
    for name in args.only:
        started = time.perf_counter()
        module = importlib.import_module(f"bench.{name}")
        module.main(["--quick"] if args.quick else [])
        timings[name] = time.perf_counter() - started
    print("\n== done ==")
    for name, seconds in timings.items():
        print(f"  {name}: {seconds:.0f}s -> {RESULTS / (name + '.json')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
