"""`pieton bench NAME [--json]`: benchmarks that print figures.

Each benchmark is a module in ``tools/benchmarks/`` with ``run(args) -> dict`` that prints
its figures as it goes and returns them; with ``--json`` the dict is printed as one JSON
object on the last line, so figures can be compared over time.
"""

from __future__ import annotations

import argparse
import importlib
import json
import pkgutil

import tools.benchmarks


def available() -> list[str]:
    return sorted(m.name for m in pkgutil.iter_modules(tools.benchmarks.__path__) if not m.name.startswith("_"))


def register(subparsers) -> None:
    bench = subparsers.add_parser("bench", help="run a benchmark and print its figures")
    bench.add_argument("name", help="a benchmark name, or 'all' (" + ", ".join(available()) + ")")
    bench.add_argument("--json", action="store_true", help="end with one JSON object of the figures")
    bench.add_argument("--quick", action="store_true", help="smaller sizes, for a smoke run")
    bench.add_argument("--budget", type=float, help="fuzz: seconds per parser (default: 30 minutes in all); "
                       "soak: wall seconds in all (default 3600: no shift starts that would end past it)")
    bench.add_argument("--target", action="append", metavar="PARSER", help="fuzz: only this parser (repeatable)")
    bench.add_argument("--shifts", type=int, help="soak: shifts to play (default 30)")
    bench.add_argument("--hours", type=float, help="soak: virtual hours per shift (default 10)")
    bench.add_argument("--seed", type=int, help="soak: the seed of its random choices (default 0)")
    bench.add_argument("--count", type=int, help="latency, realtime, powercut, pipeline: presses, cuts or runs "
                                                 "instead of the default")
    bench.add_argument("--prebuffer", type=float, metavar="SECONDS",
                       help="latency: the pre-event ring's seconds (default: the configuration's; 0 = off)")
    bench.set_defaults(func=cmd_bench)


# Benchmarks that another one runs as its part: `all` does not run them twice.
PARTS = {"seal_powercut": "seal"}


def cmd_bench(args: argparse.Namespace) -> int:
    names = [n for n in available() if n not in PARTS] if args.name == "all" else [args.name]
    unknown = [n for n in names if n not in available()]
    if unknown:
        print(f"unknown benchmark {unknown[0]!r}; available: {', '.join(available())}")
        return 2
    results = {}
    for name in names:
        print(f"== bench {name}", flush=True)
        module = importlib.import_module(f"tools.benchmarks.{name}")
        results[name] = module.run(args)
    if args.json:
        print(json.dumps(results if len(names) > 1 else results[names[0]], sort_keys=True))
    return 0
