"""The agent tells the haptic patterns apart by feel alone: every two differ in pulse
count, or in one pulse or gap by at least 2x and 150 ms."""

from itertools import combinations

from recorder.feedback import PATTERNS


def _apart(a: float, b: float) -> bool:
    low, high = sorted((a, b))
    return high - low >= 0.150 - 1e-9 and (low == 0 or high / low >= 2.0)


def distinct(first, second) -> bool:
    if len(first) != len(second):
        return True
    return any(_apart(p1, p2) or _apart(g1, g2) for (p1, g1), (p2, g2) in zip(first, second, strict=True))


def test_every_pair_of_haptic_patterns_can_be_told_apart():
    confused = [(a, b) for a, b in combinations(PATTERNS, 2) if not distinct(PATTERNS[a], PATTERNS[b])]
    assert confused == []


def test_the_rule_itself_catches_lookalikes():
    assert not distinct(((0.08, 0.0),), ((0.08, 0.0),))        # the old bookmark and reminder
    assert not distinct(((0.1, 0.1),), ((0.2, 0.1),))          # 2x but only 100 ms apart
    assert distinct(((0.08, 0.0),), ((0.25, 0.0),))            # reminder and start


def test_the_readme_prints_every_pattern_as_it_is():
    from pathlib import Path
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    table = readme[readme.index("| pattern | pulses | means |"):]
    rows = {}
    for line in (row.strip() for row in table.splitlines()[2:]):
        if not line.startswith("|"):
            break
        name, pulses, _means = (cell.strip() for cell in line.strip("|").split("|"))
        rows[name] = pulses
    assert sorted(rows) == sorted(PATTERNS)
    for name, pattern in PATTERNS.items():
        for on, _off in pattern:
            assert f"{on:g} s" in rows[name], (name, on)
        count = len(pattern)
        words = {1: "one", 2: "two", 3: "three", 4: "four", 5: "five"}
        assert count == 3 and name == "error" or words[count] in rows[name], (name, count)
