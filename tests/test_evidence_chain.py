import json

import pytest

from drivers.signer import FileSigner
from recorder.errors import EvidenceError
from recorder.evidence.chain import ChainWriter, line_hash, read_chain
from recorder.evidence.format import JOURNAL_CONTEXT, MANIFEST_CONTEXT, canonical


@pytest.fixture
def signer(tmp_path):
    return FileSigner.create(tmp_path / "keys" / "device.key")


def write_chain(path, signer, n=4, context=MANIFEST_CONTEXT):
    with ChainWriter(path, context, signer) as w:
        for i in range(n):
            w.append({"event": "e", "i": i, "file": path.name})
    return path


def test_canonical_is_sorted_compact_utf8():
    assert canonical({"b": 1, "a": "é"}) == '{"a":"é","b":1}'.encode()


def test_written_chain_verifies(tmp_path, signer):
    path = write_chain(tmp_path / "m.jsonl", signer)
    report = read_chain(path, MANIFEST_CONTEXT, signer.public_key)
    assert report.ok, report.problems
    assert [line["seq"] for line in report.lines] == [0, 1, 2, 3]
    assert report.lines[1]["prev"] == line_hash(report.raw[0])


def test_reopen_continues_the_chain(tmp_path, signer):
    path = write_chain(tmp_path / "m.jsonl", signer, 2)
    with ChainWriter(path, MANIFEST_CONTEXT, signer) as w:
        assert w.next_seq == 2
        w.append({"event": "later"})
    assert read_chain(path, MANIFEST_CONTEXT, signer.public_key).ok


def test_reserved_fields_refused(tmp_path, signer):
    with ChainWriter(tmp_path / "m.jsonl", MANIFEST_CONTEXT, signer) as w:
        with pytest.raises(EvidenceError, match="reserved"):
            w.append({"seq": 5})


def test_other_context_or_key_fails(tmp_path, signer):
    path = write_chain(tmp_path / "m.jsonl", signer)
    report = read_chain(path, JOURNAL_CONTEXT, signer.public_key)
    assert len(report.problems) == 4 and "bad signature" in report.problems[0]
    other = FileSigner.create(tmp_path / "other.key")
    assert not read_chain(path, MANIFEST_CONTEXT, other.public_key).ok


@pytest.mark.parametrize("respell", [str.upper, lambda sig: sig[:2] + " " + sig[2:]])
def test_a_signature_spelt_otherwise_is_not_the_one_signed(tmp_path, signer, respell):
    # Found by the hostile-manifest property test: fromhex reads capitals and spaces, so a
    # line whose signature was respelt still verified (and its hash, the receipt's, changed).
    path = write_chain(tmp_path / "m.jsonl", signer, 1)
    line = json.loads(path.read_bytes())
    line["sig"] = respell(line["sig"])
    path.write_bytes(canonical(line) + b"\n")
    report = read_chain(path, MANIFEST_CONTEXT, signer.public_key)
    assert not report.ok and "bad signature" in report.problems[0]


def _lines(path):
    return path.read_bytes().splitlines(keepends=True)


def test_edited_removed_and_moved_lines_named(tmp_path, signer):
    path = write_chain(tmp_path / "m.jsonl", signer)
    lines = _lines(path)
    edited = json.loads(lines[1])
    edited["i"] = 99
    path.write_bytes(lines[0] + canonical(edited) + b"\n" + b"".join(lines[2:]))
    problems = read_chain(path, MANIFEST_CONTEXT, signer.public_key).problems
    assert any(p.startswith("line 2: bad signature") for p in problems)
    assert any(p.startswith("line 3: does not link") for p in problems)

    path.write_bytes(lines[0] + b"".join(lines[2:]))
    problems = read_chain(path, MANIFEST_CONTEXT, signer.public_key).problems
    assert any(p.startswith("line 2: sequence number 2, expected 1") for p in problems)

    other = write_chain(tmp_path / "o.jsonl", signer)
    path.write_bytes(b"".join(lines[:2]) + _lines(other)[2] + lines[3])
    problems = read_chain(path, MANIFEST_CONTEXT, signer.public_key).problems
    assert any(p.startswith("line 3: does not link") for p in problems)


def test_torn_last_line_is_documented_not_rewritten(tmp_path, signer):
    path = write_chain(tmp_path / "m.jsonl", signer, 3)
    data = path.read_bytes()
    torn = data + b'{"event":"sea'
    path.write_bytes(torn)
    report = read_chain(path, MANIFEST_CONTEXT, signer.public_key)
    assert report.problems == ["line 4: torn last line (13 bytes), not yet recovered"]

    with ChainWriter(path, MANIFEST_CONTEXT, signer) as w:
        assert w.torn and w.torn[0]["offset"] == len(data)
        line = w.append({"event": "recovered"})
    assert line["seq"] == 3 and line["torn"][0]["length"] == 13
    after = path.read_bytes()
    assert after.startswith(torn)  # good bytes and the fragment untouched
    report = read_chain(path, MANIFEST_CONTEXT, signer.public_key)
    assert report.ok, report.problems
    assert report.torn == line["torn"]


def test_line_cut_just_before_its_newline_is_kept(tmp_path, signer):
    path = write_chain(tmp_path / "m.jsonl", signer, 2)
    path.write_bytes(path.read_bytes()[:-1])
    assert read_chain(path, MANIFEST_CONTEXT, signer.public_key).ok
    with ChainWriter(path, MANIFEST_CONTEXT, signer) as w:
        assert w.next_seq == 2 and not w.torn
        w.append({"event": "x"})
    assert read_chain(path, MANIFEST_CONTEXT, signer.public_key).ok
