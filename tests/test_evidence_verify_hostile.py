"""The verifier against hostile manifests and journals: always a verdict, never an
exception, and never "intact" for a line that was changed, added or removed."""

import json
import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_evidence_support import Device

from recorder.evidence.format import JOURNAL_FILE, MANIFEST_EVENTS, MANIFEST_FILE
from recorder.evidence.verify import verify_recording, verify_recordings
from recorder.evidence.verify_spool import verify_journal
from tools.cli import main as pieton

HOSTILE = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile")
    device = Device(root)
    spool = device.spool()
    recs = [device.record(spool, segments=2, seconds=0.5) for _ in range(2)]
    spool.close()
    reports = verify_recordings([r.path for r in recs], device_key=device.signer.public_key)
    assert all(r.ok for r in reports)
    return device, recs, reports


scalars = (st.none() | st.booleans() | st.integers() | st.integers(min_value=10**39, max_value=10**60)
           | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=12))
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3)
                      | st.dictionaries(st.text(max_size=6), inner, max_size=3), max_leaves=8)
chain_lines = st.fixed_dictionaries(
    {"seq": st.integers(-1, 12) | values, "prev": st.sampled_from(["0" * 64]) | values,
     "sig": st.sampled_from(["00" * 64]) | values},
    optional={"event": st.sampled_from(MANIFEST_EVENTS) | values, "file": values | st.sampled_from(
              ["seg-000001.ts.age", "../../etc/passwd", "/etc/passwd", "seg-000001.ts.age.part", "."]),
              "size": values, "sha256": values, "segment": values, "found": values, "torn": values,
              "durable_bytes": values, "meta_file": values, "recipients": values, "data": values,
              "recording_seq": values, "recording_id": values, "camera_id": values, "device_key": values})
pieces = st.one_of(
    st.binary(max_size=120),
    chain_lines.map(lambda d: json.dumps(d, allow_nan=True).encode()),
    values.map(lambda v: json.dumps(v, allow_nan=True).encode()),
    st.integers(50, 5000).map(lambda n: b"[" * n + b"]" * n),
    st.integers(41, 6000).map(lambda n: b'{"seq":' + b"9" * n + b',"prev":"","sig":""}'),
)


@st.composite
def mutations(draw, lines: list[bytes]):
    """The lines of a chain file, changed: one appended, inserted, replaced, cut or flipped."""
    lines = list(lines)
    op = draw(st.sampled_from(["append", "insert", "replace", "cut", "flip", "drop"]))
    i = draw(st.integers(0, len(lines) - 1))
    if op == "append":
        lines.append(draw(pieces) + draw(st.sampled_from([b"\n", b""])))
    elif op == "insert":
        lines.insert(i, draw(pieces) + b"\n")
    elif op == "replace":
        lines[i] = draw(pieces) + b"\n"
    elif op == "cut":
        lines[i] = lines[i][:draw(st.integers(0, len(lines[i]) - 2))] + b"\n"
    elif op == "flip":
        at = draw(st.integers(0, len(lines[i]) - 2))
        lines[i] = lines[i][:at] + bytes([lines[i][at] ^ draw(st.integers(1, 255))]) + lines[i][at + 1:]
    else:
        del lines[i]
    return b"".join(lines)


def _changed(data: bytes, original: bytes) -> bool:
    return [line for line in data.split(b"\n") if line] != [line for line in original.split(b"\n") if line]


@HOSTILE
@given(data=st.data())
def test_a_changed_manifest_gets_a_verdict_never_ok(made, data):
    device, recs, _ = made
    original = (recs[0].path / MANIFEST_FILE).read_bytes()
    mutated = data.draw(mutations(original.splitlines(keepends=True)))
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / recs[0].id
        shutil.copytree(recs[0].path, folder)
        (folder / MANIFEST_FILE).write_bytes(mutated)
        report = verify_recording(folder, device_key=device.signer.public_key)
        json.dumps(report.as_dict())
        report.summary()
    if _changed(mutated, original):
        assert not report.ok


@HOSTILE
@given(data=st.data())
def test_a_changed_journal_gets_a_verdict_never_ok(made, data):
    device, _, reports = made
    original = (device.spool_dir / JOURNAL_FILE).read_bytes()
    mutated = data.draw(mutations(original.splitlines(keepends=True)))
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / JOURNAL_FILE).write_bytes(mutated)
        problems, _ = verify_journal(tmp, device.signer.public_key, reports)
    if _changed(mutated, original):
        assert problems


@pytest.mark.parametrize("garbage", [
    b"garbage", b'{"seq": 9, "prev": "x", "sig": NaN}', b"[" * 100000, b'{"seq":' + b"9" * 5000 + b"}",
    b'{"event":"sealed","file":["x"],"seq":7,"prev":"","sig":""}', b'{"seq":1,"prev":"","sig":"","torn":7}',
    b'{"event":"recovered","found":"abc","seq":7,"prev":"","sig":""}', b"\xff\xfe",
])
def test_garbage_lines_are_tampering_named_by_file_and_line(made, tmp_path, capsys, garbage):
    device, recs, _ = made
    spool = tmp_path / "spool"
    shutil.copytree(device.spool_dir, spool)
    manifest = spool / recs[1].id / MANIFEST_FILE
    count = len(manifest.read_bytes().splitlines())
    with open(manifest, "ab") as f:
        f.write(garbage + b"\n")
    with open(spool / JOURNAL_FILE, "ab") as f:
        f.write(garbage + b"\n" + garbage)
    key = device.signer.public_key.hex()
    assert pieton(["verify", str(spool), "--device-key", key]) == 1
    out = capsys.readouterr().out
    assert f"{recs[1].id} manifest.jsonl: line {count + 1}:" in out
    assert "journal.jsonl: line " in out and "Traceback" not in out
    assert pieton(["verify", str(spool), "--device-key", key, "--json"]) == 1
    assert json.loads(capsys.readouterr().out)["ok"] is False


def test_a_manifest_naming_files_outside_its_folder_reads_nothing_outside(made, tmp_path):
    device, recs, _ = made
    folder = tmp_path / recs[0].id
    shutil.copytree(recs[0].path, folder)
    outside = tmp_path / "outside.bin"
    outside.write_bytes(b"secret")
    lines = (folder / MANIFEST_FILE).read_bytes().splitlines(keepends=True)
    line = json.loads(lines[1])
    line["file"] = str(outside)
    lines[1] = json.dumps(line).encode() + b"\n"
    (folder / MANIFEST_FILE).write_bytes(b"".join(lines))
    report = verify_recording(folder, device_key=device.signer.public_key)
    assert not report.ok and any("not a file of the folder" in p.reason for p in report.problems)


def test_an_endless_identity_or_devices_file_is_a_clear_error(made, capsys):
    rec = made[1][0].path
    for option in ("--identity", "--devices"):
        assert pieton(["verify", str(rec), option, "/dev/zero"]) == 2
        err = capsys.readouterr().err
        assert err.startswith("pieton verify: ") and "larger than" in err
