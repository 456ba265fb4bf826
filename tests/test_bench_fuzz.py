"""`pieton bench fuzz` keeps working: a short campaign over a few parsers finds no failure,
counts its inputs and measures coverage (not a timed assertion: the figures are the bench's)."""

import json
import random

import pytest

from drivers.errors import PietonError
from drivers.signer import FileSigner
from recorder.evidence.chain import read_chain
from recorder.evidence.format import MANIFEST_CONTEXT
from recorder.evidence.verify import verify_recording
from tools.benchmarks import fuzz
from tools.benchmarks._fuzz_evidence import manifest_harness, report_harness
from tools.benchmarks._fuzz_harness import Harness, Target
from tools.benchmarks._fuzz_targets import TARGETS
from tools.vault.report import check_report


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


def test_manifest_and_report_mutants_are_signed_again_and_reach_the_checks_behind_the_signature(tmp_path):
    """Structure-aware seeds and mutators: most manifest mutants keep a chain the device key
    signed (so the verifier's checks of lines, files and progress run on them), and report
    mutants get past the signature to the shape and MP4 checks."""
    rng = random.Random(5)
    (tmp_path / "m").mkdir()
    harness = manifest_harness(tmp_path / "m", rng)
    assert any(b'"event":"recovered"' in s and b'"event":"progress"' in s for s in harness.seeds)
    folder = next(p for p in (tmp_path / "m" / "spool").iterdir() if p.is_dir() and p.name.encode() in harness.seeds[0])
    key = FileSigner(tmp_path / "m" / "device.key").public_key
    signed = 0      # mutants (not the seed) whose whole chain the device key signed: 6 in 200 before
    for _ in range(200):
        seed = rng.choice(harness.seeds)
        mutant = harness.mutate(seed, rng)
        if mutant != seed:
            (folder / "manifest.jsonl").write_bytes(mutant)
            signed += not read_chain(folder / "manifest.jsonl", MANIFEST_CONTEXT, key).problems
            verify_recording(folder, device_key=key)     # never raises on what the folder holds
    harness.close()
    assert signed >= 60, signed
    (tmp_path / "r").mkdir()
    harness = report_harness(tmp_path / "r", rng)
    mp4, key = tmp_path / "r" / "extract.mp4", FileSigner(tmp_path / "r" / "vault.key").public_key_hex
    for seed in harness.seeds:     # valid seeds pass, shape and hash included
        (tmp_path / "r" / "seed.json").write_bytes(seed)
        assert check_report(tmp_path / "r" / "seed.json", mp4, key)["sig"] == json.loads(seed)["sig"]
    past_signature = 0
    for _ in range(200):
        mutant = harness.mutate(rng.choice(harness.seeds), rng)
        (tmp_path / "r" / "m.json").write_bytes(mutant)
        try:
            check_report(tmp_path / "r" / "m.json", mp4, key)
            past_signature += 1
        except PietonError as exc:
            past_signature += "signature does not verify" not in str(exc) and "not a pieton" not in str(exc)
    assert past_signature >= 60, past_signature

