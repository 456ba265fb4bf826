"""drivers/nmea splits the position sentences itself instead of calling pynmea2: that
fast path must accept, reject and split exactly as pynmea2.parse(check=True) does, on
real sentences and on generated and mutated ones, and a reader using it must see the
same fixes and counts as one that asks pynmea2 for every sentence."""

from __future__ import annotations

import pynmea2
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.nmea import NmeaReader, sentence, sentence_fields
from drivers.nmea.sentences import parsed_fields, plain_form
from tools.benchmarks.gps import _all_sentences, shared_logs

# one of each type we merge (as receivers send them), and some we leave to pynmea2
BODIES = (
    "GPRMC,123519.00,A,4807.038,N,01131.000,E,022.4,084.4,230394,003.1,W,A",
    "GNRMC,000001.00,V,,,,,,,060180,,,N",
    "GPGGA,123520.00,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,",
    "GPGGA,123521,8960.000000,N,00000.000000,E,0,0,,-17.0,M,17.0,M,,",
    "GNGSA,A,3,04,05,,09,12,,,24,,,,,2.5,1.3,2.1,1",
    "GPGLL,4916.45,N,12311.12,W,123522.00,A,A",
    "GNGNS,123523.00,4657.0600,N,00417.9400,E,AAN,10,0.9,310.0,47.0,,,V",
    "GPVTG,054.7,T,034.4,M,005.5,N,010.2,K,A",
    "GPZDA,123524.00,27,11,2026,00,00",
    "GPGBS,123525.00,1.2,0.9,2.1,,,,",
    "GPGSV,3,1,11,03,03,111,00,04,15,270,00,06,01,010,00,13,06,292,00",
    "PSRFEPE,123526.00,A,0.8,6.4,,,",
)
TALKERS = st.sampled_from(["GP", "GN", "GL", "BD", "G1", "gp", "Gp", "pG", "PX", "P_", "_G", "G$", "G"])
FIELD_CHARS = "0123456789.,-+NSEWAVTMKD *$ \t!e_"
CHECKSUM = st.sampled_from(["good", "lower", "wrong", "junk"])


@st.composite
def sentences(draw) -> str:
    """A sentence of a known shape, then damaged: other talker, fields replaced by junk,
    a wrong or odd checksum, characters deleted, inserted or replaced."""
    fields = draw(st.sampled_from(BODIES)).split(",")
    if not fields[0].startswith("P") and draw(st.booleans()):
        fields[0] = draw(TALKERS) + fields[0][2:]
    for i in range(1, len(fields)):
        if draw(st.integers(0, 9)) == 0:
            fields[i] = draw(st.text(FIELD_CHARS, max_size=10))
    if draw(st.integers(0, 3)) == 0:       # blanks at a field's edge (pynmea2 keeps them)
        i = draw(st.integers(1, len(fields) - 1))
        fields[i] = draw(st.sampled_from([" ", ""])) + fields[i] + draw(st.sampled_from([" ", ""]))
    if draw(st.integers(0, 5)) == 0:
        fields = fields[:draw(st.integers(1, len(fields)))]
    body = ",".join(fields)
    value = 0
    for ch in body:
        value ^= ord(ch)
    kind = draw(CHECKSUM)
    checksum = {"good": f"{value:02X}", "lower": f"{value:02x}", "wrong": f"{value ^ 0x21:02X}",
                "junk": draw(st.text("0123456789ABCDEFGabf *-+_", min_size=0, max_size=3))}[kind]
    text = f"${body}*{checksum}"
    for _ in range(draw(st.integers(0, 2))):
        at = draw(st.integers(0, len(text)))
        op = draw(st.sampled_from(["delete", "insert", "replace"]))
        ch = draw(st.sampled_from("$*,.0A9 \tgpP_-"))
        if op == "delete":
            text = text[:at] + text[at + 1:]
        elif op == "insert":
            text = text[:at] + ch + text[at:]
        else:
            text = text[:at] + ch + text[at + 1:]
    return text


def _pynmea2(text: str) -> list[str] | str:
    """pynmea2's verdict, written independently of drivers/nmea."""
    try:
        return list(pynmea2.parse(text, check=True).data)
    except pynmea2.ChecksumError:
        return "checksum"
    except (pynmea2.ParseError, ValueError):
        return "malformed"


class PynmeaReader(NmeaReader):
    """The same reader with pynmea2 parsing every sentence: what the fast path must match."""

    def _fields(self, text: str, star: int, base: int) -> list[str] | str:
        return parsed_fields(text)


class CheckedReader(NmeaReader):
    """The reader as it is, each sentence's fields checked against pynmea2's on the way."""

    def _fields(self, text: str, star: int, base: int) -> list[str] | str:
        fields = super()._fields(text, star, base)
        assert fields == _pynmea2(text), text
        return fields


def _run(reader_class, data: bytes) -> tuple:
    reader = reader_class(comments=True, clock=lambda: 0.0)
    seen: list[str] = []
    reader.on_sentence = seen.append
    fixes = reader.feed(data) + reader.flush()
    return [f.as_dict() for f in fixes], reader.stats.as_dict(), seen


def test_real_receiver_sentences_split_as_pynmea2_does():
    lines = _all_sentences(shared_logs())
    fast = [line for line in lines if plain_form(line, len(line) - 3)]
    assert len(fast) > len(lines) / 3, "the position sentences of the real logs take the fast path"
    for line in lines:
        assert sentence_fields(line) == _pynmea2(line), line


def test_plain_sentences_take_the_fast_path_and_odd_ones_do_not():
    assert plain_form(sentence("GPGGA,1,2"), len(sentence("GPGGA,1,2")) - 3)
    for odd in ("$gpGGA,1,2*00", "$PXGGA,1,2*00", "$GPGGA,1*2*00", "$GPGGA,1,2*0G", "$GPGSV,1*00",
                "GPGGA,1,2*00", "$GPGGA1,2*00"):
        assert not plain_form(odd, len(odd) - 3), odd
    # what pynmea2 makes of a lower-case 'p' talker: a proprietary sentence, left to it
    assert sentence_fields(sentence("pxGGA,1,2")) == _pynmea2(sentence("pxGGA,1,2"))


@settings(max_examples=600, deadline=None, database=None)
@given(text=sentences())
def test_fast_path_agrees_with_pynmea2_on_generated_and_mutated_sentences(text):
    assert sentence_fields(text) == _pynmea2(text)


@settings(max_examples=150, deadline=None, database=None)
@given(texts=st.lists(sentences(), min_size=1, max_size=12),
       line_end=st.sampled_from([b"\r\n", b"\n", b"\r"]))
def test_reader_with_fast_path_equals_reader_with_pynmea2(texts, line_end):
    # the bytes path checks checksums from a running XOR: it must agree too
    data = line_end.join(t.encode("ascii") for t in texts) + line_end
    assert _run(CheckedReader, data) == _run(PynmeaReader, data)
    one, ref = CheckedReader(clock=lambda: 0.0), PynmeaReader(clock=lambda: 0.0)
    for text in texts:
        assert [f.as_dict() for f in one.feed_sentence(text)] == [f.as_dict() for f in ref.feed_sentence(text)]
    assert one.stats.as_dict() == ref.stats.as_dict()


def test_a_sentence_with_fewer_fields_than_its_type_reads_as_empty_fields():
    # found by the property above: a VTG cut after its fourth field used to raise IndexError
    reader = NmeaReader()
    assert reader.feed(f"{sentence('GPVTG,0,T,034.4,M')}\r\n".encode()) == []
    assert reader.stats.used == 1 and not reader.stats.rejected
