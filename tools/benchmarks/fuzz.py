"""`pieton bench fuzz`: a fuzz campaign over every parser of outside data.

Each parser in ``tools/benchmarks/_fuzz_targets.TARGETS`` is fed mutants of valid seeds for
its share of the time budget (30 minutes in all by default; ``--budget S`` gives S seconds
to each parser, ``--quick`` 2 s). A mutant that makes the parser raise anything but its
documented errors (``PietonError`` and the few a target names), or run past ``HANG_S``,
is a failure; the shortest input of each distinct failure is kept. Printed per parser:
inputs tried, inputs per second, failures, and the line coverage of the parser's code
(measured with coverage.py over the module, or over the functions a target names, on the
seeds and one batch of mutants in four: tracing every input would halve the rate).

The mutators are hand-written and structure-aware (JSON values, NMEA fields with their
checksum recomputed, serial frames with their CRC recomputed, age files whose header MAC
is recomputed), with byte-level havoc on top: simple and fast, no coverage feedback.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import logging
import random
import signal
import sys
import tempfile
import time
import traceback
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import coverage

from tools.benchmarks._fuzz_targets import TARGETS

TOTAL_BUDGET_S = 30 * 60
QUICK_BUDGET_S = 2.0
HANG_S = 10.0            # one input running this long counts as a hang
BATCH_S = 0.05           # seconds of inputs between clock reads and alarm re-arms
COVERAGE_EVERY = 4       # coverage is traced on one batch in this many (and on every seed)


class Hang(Exception):
    """Raised by the alarm inside a parser that ran past HANG_S on one input."""


@dataclass
class Failure:
    kind: str            # exception type and where it was raised
    message: str
    data: bytes
    count: int = 1


@dataclass
class Result:
    name: str
    scope: str
    tried: int = 0
    seconds: float = 0.0
    covered: int = 0
    statements: int = 0
    missing: list = field(default_factory=list)     # lines never run (file:line for a package)
    failures: dict[str, Failure] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.tried / self.seconds if self.seconds else 0.0

    @property
    def coverage(self) -> float:
        return 100.0 * self.covered / self.statements if self.statements else 0.0

    def as_dict(self) -> dict:
        return {"inputs": self.tried, "inputs_per_s": round(self.rate), "seconds": round(self.seconds, 1),
                "failures": len(self.failures), "coverage_pct": round(self.coverage, 1), "scope": self.scope,
                "missed_lines": self.missing,
                "failure_kinds": {k: {"count": f.count, "message": f.message[:200], "input": repr(f.data[:300])}
                                  for k, f in self.failures.items()}}


def _where(exc: BaseException) -> str:
    frames = traceback.extract_tb(exc.__traceback__)
    last = frames[-1] if frames else None
    return f"{type(exc).__name__} at {Path(last.filename).name}:{last.lineno}" if last else type(exc).__name__


def _lines_of(module, names: tuple[str, ...]) -> set[int] | None:
    """The line numbers of the named functions or classes of ``module`` (None: all of it)."""
    if not names:
        return None
    lines: set[int] = set()
    for name in names:
        obj = module
        for part in name.split("."):
            obj = getattr(obj, part)
        source, first = inspect.getsourcelines(obj)
        lines.update(range(first, first + len(source)))
    return lines


def _import_time_lines(filename: str) -> set[int]:
    """Lines run when the module was imported (module and class bodies, def and class lines,
    decorators): imported before coverage starts, they would count as missed."""
    lines: set[int] = set()
    todo = [ast.parse(Path(filename).read_text()).body]
    while todo:
        for node in todo.pop():
            lines.add(node.lineno)
            lines.update(d.lineno for d in getattr(node, "decorator_list", ()))
            if isinstance(node, ast.ClassDef):
                todo.append(node.body)
            elif isinstance(node, ast.If | ast.Try | ast.With):
                todo.extend(getattr(node, name) for name in ("body", "orelse", "finalbody") if hasattr(node, name))
                todo.extend(h.body for h in getattr(node, "handlers", ()))
    return lines


def _on_alarm(signum, frame):
    raise Hang(f"one input ran more than {HANG_S:.0f} s")


def fuzz_target(target, budget_s: float, workdir: Path, seed: int = 0) -> Result:
    """Run one target's campaign for ``budget_s`` seconds of fuzzing (setup not counted)."""
    module = importlib.import_module(target.module)
    filename = str(Path(module.__file__).resolve())
    if hasattr(module, "__path__"):          # a package: every module of it counts
        files = sorted(str(f.resolve()) for f in Path(filename).parent.glob("*.py"))
        scope = f"{Path(filename).parent.name}/ ({len(files)} modules)"
    else:
        files = [filename]
        scope = Path(filename).name + (": " + ", ".join(target.functions) if target.functions else "")
    wanted = _lines_of(module, target.functions)
    result = Result(target.name, scope)
    rng = random.Random(seed)
    harness = target.setup(workdir, rng)
    entry, seeds, mutate, errors = harness.entry, harness.seeds, harness.mutate, harness.errors
    cov = coverage.Coverage(data_file=None, include=files, config_file=False)
    cov.set_option("run:disable_warnings", ["no-data-collected"])   # a traced batch may run no line
    previous = signal.signal(signal.SIGALRM, _on_alarm)
    logging.disable(logging.CRITICAL)      # parsers log what they refuse: millions of lines

    def attempt(data: bytes) -> None:
        try:
            entry(data)
        except errors:
            pass
        except (Exception, Hang) as exc:   # noqa: BLE001 - a failure is what we look for
            key = _where(exc)
            known = result.failures.get(key)
            if known is None:
                result.failures[key] = Failure(key, str(exc), data)
            else:
                known.count += 1
                if len(data) < len(known.data):
                    known.data = data
        finally:
            result.tried += 1

    cov.start()
    start = time.monotonic()
    caught = warnings.catch_warnings()
    caught.__enter__()
    warnings.simplefilter("ignore")       # numeric warnings of shapely/numpy on absurd inputs
    try:
        for data in seeds:
            signal.setitimer(signal.ITIMER_REAL, HANG_S)
            attempt(data)
        deadline = start + budget_s
        batch, per_input, batches, traced = 1, 0.01, 0, True
        while (now := time.monotonic()) < deadline:
            # coverage tracing more than halves the rate: it runs on one batch in
            # COVERAGE_EVERY (a random sample of the mutants: the lines they reach are the same)
            if (batches % COVERAGE_EVERY == 0) != traced:
                traced = not traced
                (cov.start if traced else cov.stop)()
            batches += 1
            # the alarm is armed per batch (a syscall per input would cost more than some
            # parsers); batches last ~50 ms, so one input stuck for HANG_S still trips it
            signal.setitimer(signal.ITIMER_REAL, HANG_S + 4 * batch * per_input)
            for _ in range(batch):
                attempt(mutate(rng.choice(seeds), rng))
            per_input = max(1e-7, (time.monotonic() - now) / batch)
            batch = max(1, min(4096, int(BATCH_S / per_input)))
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        result.seconds = time.monotonic() - start
        if traced:
            cov.stop()
        signal.signal(signal.SIGALRM, previous)
        logging.disable(logging.NOTSET)
        caught.__exit__(None, None, None)
        if harness.close is not None:
            harness.close()
    for path in files:
        _, statements, _, missing, _ = cov.analysis2(path)
        missing = set(missing) - _import_time_lines(path)
        if wanted is not None:
            statements = [s for s in statements if s in wanted]
            missing = [s for s in missing if s in wanted]
        result.statements += len(statements)
        result.covered += len(statements) - len(missing)
        prefix = f"{Path(path).name}:" if len(files) > 1 else ""
        result.missing += [f"{prefix}{line}" if prefix else line for line in sorted(missing)]
    return result


def campaign(names: list[str] | None = None, *, budget_s: float | None = None, seed: int = 0,
             out=print, save_dir: Path | None = None) -> list[Result]:
    """Fuzz the named targets (all by default); ``budget_s`` per target, else the 30 minutes
    shared by weight. With ``save_dir``, each failure's shortest input is written there."""

    chosen = [t for t in TARGETS if names is None or t.name in names]
    unknown = set(names or ()) - {t.name for t in TARGETS}
    if unknown:
        raise ValueError(f"unknown fuzz target(s) {sorted(unknown)}; known: {[t.name for t in TARGETS]}")
    weights = sum(t.weight for t in chosen)
    results = []
    out(f"{'parser':<16} {'inputs':>10} {'inputs/s':>9} {'failures':>8} {'coverage':>8}  scope")
    for n, target in enumerate(chosen):
        budget = budget_s if budget_s is not None else TOTAL_BUDGET_S * target.weight / weights
        with tempfile.TemporaryDirectory(prefix=f"fuzz-{target.name}-") as tmp:
            result = fuzz_target(target, budget, Path(tmp), seed + n)
        results.append(result)
        out(f"{result.name:<16} {result.tried:>10} {result.rate:>9.0f} {len(result.failures):>8} "
            f"{result.coverage:>7.1f}%  {result.scope}", flush=True)
    for result in results:
        for n, failure in enumerate(result.failures.values(), start=1):
            out(f"FAILURE {result.name}: {failure.kind} (x{failure.count}): {failure.message[:160]}")
            out(f"    input: {failure.data[:240]!r}{' ...' if len(failure.data) > 240 else ''}")
            if save_dir is not None:
                path = Path(save_dir) / f"{result.name}-{n}.bin"
                path.write_bytes(failure.data)
                out(f"    saved: {path}")
    return results


def run(args) -> dict:
    budget = getattr(args, "budget", None)
    if budget is None and getattr(args, "quick", False):
        budget = QUICK_BUDGET_S
    names = getattr(args, "target", None) or None
    unknown = sorted(set(names or ()) - {t.name for t in TARGETS})
    if unknown:
        print(f"pieton bench fuzz: unknown parser(s) {', '.join(unknown)}; known: "
              f"{', '.join(t.name for t in TARGETS)}", file=sys.stderr)
        raise SystemExit(2)
    save_dir = Path(tempfile.mkdtemp(prefix="pieton-fuzz-failures-"))
    results = campaign(names, budget_s=budget, save_dir=save_dir)
    print(f"failing inputs (shortest of each kind) in {save_dir}")
    return {r.name: r.as_dict() for r in results}
