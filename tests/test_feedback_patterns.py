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
