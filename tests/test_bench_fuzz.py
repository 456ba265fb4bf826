"""`pieton bench fuzz` keeps working: a short campaign over a few parsers finds no failure,
counts its inputs and measures coverage (not a timed assertion: the figures are the bench's)."""

import pytest

from drivers.errors import PietonError
from tools.benchmarks import fuzz
from tools.benchmarks._fuzz_targets import TARGETS, Harness, Target


def test_every_target_names_a_module_and_functions_that_exist():
    for target in TARGETS:
        module = fuzz.importlib.import_module(target.module)
        lines = fuzz._lines_of(module, target.functions)
        assert lines is None or lines


@pytest.mark.parametrize("names", [["age-armor", "nmea"], ["age-header", "serial-device"]])
def test_short_campaign_runs(names):
    lines = []
    results = fuzz.campaign(names, budget_s=0.5, out=lambda *a, **k: lines.append(" ".join(map(str, a))))
    assert sorted(r.name for r in results) == sorted(names)
    for result in results:
        assert result.tried > 10 and 0 < result.covered <= result.statements
        if result.name.startswith("age"):      # ours: clean (the others' findings go to the bench)
            assert not result.failures, result.failures
        assert result.as_dict()["inputs"] == result.tried
    assert lines[0].startswith("parser") and sorted(line.split()[0] for line in lines[1:1 + len(names)]) == sorted(names)


def toy_parser(data: bytes) -> None:
    if b"\x00" in data:
        raise ZeroDivisionError("boom")
    if len(data) > 50:
        raise PietonError("refused")


def test_a_crash_is_reported_once_with_its_shortest_input(tmp_path):
    """The engine itself: an undocumented exception is a failure, kept once per kind with the
    shortest input that raised it; a documented error is not."""
    def setup(work, rng):
        return Harness(toy_parser, [b"abc\x00" * 20, b"hello" * 20],
                       lambda seed, rng: seed[:rng.randrange(len(seed) + 1)])

    result = fuzz.fuzz_target(Target("toy", __name__, ("toy_parser",), setup), 0.3, tmp_path)
    where = f"ZeroDivisionError at test_bench_fuzz.py:{toy_parser.__code__.co_firstlineno + 2}"
    assert list(result.failures) == [where]
    assert result.failures[where].data == b"abc\x00"
    assert result.coverage == 100.0


def test_every_target_sets_up_and_takes_its_valid_seeds(tmp_path):
    """No fuzzing (budget 0): each row's setup runs against today's code and its seeds,
    valid files, go through the parser without a failure."""
    for target in TARGETS:
        work = tmp_path / target.name
        work.mkdir()
        result = fuzz.fuzz_target(target, 0, work)
        assert result.tried >= 1 and not result.failures, (target.name, result.failures)
