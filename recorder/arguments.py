"""What an operator types on a `pieton` command line, checked once for every command.

Every argument is text that ends up in a file name, a signed log, a report or a terminal:
an empty value silently means "the current folder", bytes that are not UTF-8 cannot be
written to a UTF-8 log or printed, and a control character (an escape sequence, a line
break inside a name) would let a typed value disguise itself in a printed register. Numbers
are read by ``bounded_int`` / ``bounded_float``, which refuse NaN, infinities and values
outside a range that makes sense for the option. Each refusal names the argument, the value
and the rule; argparse turns it into its usual usage line and exit 2.
"""

from __future__ import annotations

import argparse
import math
import re

# The Unicode marks that reorder or hide text (zero-width and direction marks, line and
# paragraph separators, bidirectional overrides and isolates, the byte-order mark): a typed
# value holding one prints disguised in the register. The desk refuses them too (tools/desk/forms.py).
INVISIBLE_MARKS = "\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff"
# C0 controls but the tab, DEL, the C1 controls terminals also obey (ESC [ and CSI sequences), and those marks.
_CONTROL = re.compile(f"[\x00-\x08\x0a-\x1f\x7f-\x9f{INVISIBLE_MARKS}]")
_SHOWN = 60  # characters of a refused value shown back
MAX_ARGUMENT = 4096  # the longest path Linux takes; no name, reference or motive needs more


def shown(value: str) -> str:
    """A typed value as it can be printed safely: escaped, and cut when long."""
    text = value if len(value) <= _SHOWN else value[:_SHOWN] + "..."
    return ascii(text) if any(ord(c) > 0x7e or ord(c) < 0x20 for c in text) else repr(text)


def refuse_argv(argv: list[str]) -> str | None:
    """Why this command line is refused before it is parsed, or None when every value is
    non-empty UTF-8 text without control characters. The message names the argument."""
    for position, token in enumerate(argv):
        option, _, value = token.partition("=") if token.startswith("--") and "=" in token else ("", "", token)
        if not option:
            before = argv[position - 1] if position else ""
            option = before if before.startswith("-") and before not in ("-", "--") else f"argument {position + 1}"
        problem = _problem(value)
        if problem:
            return f"{option} {shown(value)}: {problem}"
    return None


def _problem(value: str) -> str | None:
    if not value.strip():
        return "an empty value (give a real file, folder, name or number; '.' for the current folder)"
    if len(value) > MAX_ARGUMENT:
        return f"{len(value)} characters, more than the {MAX_ARGUMENT} an argument may have"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "holds bytes that are not UTF-8 text (pieton takes UTF-8 names and text only: rename the file)"
    if _CONTROL.search(value):
        return ("holds a control character (a line break, an escape sequence, a mark that reverses or hides "
                "text): type it on one line")
    return None


def bounded_int(low: int, high: int, unit: str = ""):
    """An argparse type: a whole number from ``low`` to ``high``."""
    def parse(text: str) -> int:
        try:
            number = int(text.strip(), 10)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{shown(text)} is not a whole number") from None
        if not low <= number <= high:
            raise argparse.ArgumentTypeError(f"{shown(text)} is out of range: from {low} to {high}{unit}")
        return number
    parse.__name__ = "whole number"
    return parse


def bounded_float(low: float, high: float, unit: str = ""):
    """An argparse type: a finite number from ``low`` to ``high`` (no NaN, no infinity)."""
    def parse(text: str) -> float:
        try:
            number = float(text.strip()) if len(text) <= 40 else math.nan
        except ValueError:
            raise argparse.ArgumentTypeError(f"{shown(text)} is not a number") from None
        if not math.isfinite(number) or not low <= number <= high:
            raise argparse.ArgumentTypeError(f"{shown(text)} is out of range: a number from {low:g} to "
                                             f"{high:g}{unit}")
        return number
    parse.__name__ = "number"
    return parse
