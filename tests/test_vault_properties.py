"""Hypothesis properties for the vault's readers of outside data: extraction reports
(check-report), receipts it issues, its settings (vault.json), its index rows, and the
times and places given on its command line. Whatever the input: the answer is the data,
checked, or a PietonError naming the problem; never another exception, never a forgery
accepted."""

import json
import sqlite3
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from drivers.signer import FileSigner
from recorder.errors import PietonError, VaultError, VerificationError
from recorder.evidence.receipt import make_receipt, verify_receipt
from tools.vault.find import parse_near
from tools.vault.index import SCHEMA, Index
from tools.vault.layout import parse_time
from tools.vault.report import REPORT_CONTEXT, check_report, sign_report
from tools.vault.vault import read_settings

PROFILE = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SHM = Path("/dev/shm")
WORK = Path(tempfile.mkdtemp(prefix="pieton-vault-props-", dir=SHM if SHM.is_dir() else None))
SIGNER = FileSigner.create(WORK / "vault.key")
MP4 = WORK / "x.mp4"
MP4.write_bytes(b"an mp4 as delivered")

json_leaf = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False),
                      st.text(max_size=20))
json_value = st.recursive(json_leaf, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                             st.dictionaries(st.text(max_size=8), inner, max_size=4)),
                          max_leaves=20)


def _report() -> dict:
    import hashlib
    return {"format": REPORT_CONTEXT, "extraction_id": "X-1", "created": "2026-11-18T12:00:00Z",
            "vault_key": SIGNER.public_key_hex, "purpose": "judicial", "requester": "R", "deliver_to": "D",
            "recordings": [{"id": "CAM-1_20261118T110640Z_000000", "camera": "CAM-1", "segments": []}],
            "mp4": {"name": "x.mp4", "sha256": hashlib.sha256(MP4.read_bytes()).hexdigest()}}


SIGNED = sign_report(SIGNER, _report())  # signed once: each example changes a copy


@PROFILE
@given(st.binary(max_size=400) | json_value.map(lambda v: json.dumps(v).encode()))
def test_check_report_on_any_bytes_is_a_clear_answer(data):
    path = WORK / "any.report.json"
    path.write_bytes(data)
    try:
        check_report(path, MP4, SIGNER.public_key_hex)
    except PietonError:
        return
    raise AssertionError("an unsigned file passed check-report")


@PROFILE
@given(st.sampled_from(["purpose", "requester", "deliver_to", "recordings", "mp4", "extraction_id", "extra"]),
       json_value)
def test_a_signed_report_with_any_field_changed_is_refused(field, value):
    report = dict(SIGNED)
    if report.get(field) == value:
        return
    report[field] = value
    path = WORK / "changed.report.json"
    path.write_text(json.dumps(report))
    try:
        check_report(path, MP4, SIGNER.public_key_hex)
    except VerificationError:
        return
    raise AssertionError(f"an altered report passed ({field} = {value!r})")


@PROFILE
@given(st.data())
def test_a_receipt_the_vault_issues_refuses_any_changed_byte(data):
    receipt = make_receipt(SIGNER, "CAM-1", "ab" * 32,
                           [{"id": "CAM-1_20261118T110640Z_000000", "last_hash": "cd" * 32, "segments": 2}],
                           "2026-11-18T12:00:00Z")
    raw = bytearray(json.dumps(receipt, sort_keys=True).encode())
    position = data.draw(st.integers(0, len(raw) - 1))
    new = data.draw(st.integers(0, 255).filter(lambda b: b != raw[position]))
    raw[position] = new
    try:
        got = verify_receipt(bytes(raw), SIGNER.public_key, camera_id="CAM-1", device_key="ab" * 32)
    except VerificationError:
        return
    # A change JSON does not see (white space, an escape spelling the same text) is the same receipt.
    assert got["recordings"] == receipt["recordings"] and got["camera"] == "CAM-1"


settings_fields = st.fixed_dictionaries({}, optional={
    "format": st.sampled_from(["pieton/vault/1", "pieton/vault/2"]) | json_value,
    "recipients": st.lists(st.sampled_from(["age1" + "q" * 58, "age1nope", ""]), max_size=3) | json_value,
    "register": st.sampled_from(["/police/register.jsonl"]) | json_value,
    "retention_days": st.integers(-5, 5000) | json_value,
    "log_retention_days": st.integers(-5, 50000) | json_value,
    "vault_key": st.sampled_from(["ab" * 32, "AB" * 32, "zz"]) | json_value,
    "communes": st.lists(st.text(max_size=10), max_size=2) | json_value,
})


@PROFILE
@given(settings_fields | json_value)
def test_vault_settings_are_checked_or_refused(value):
    path = WORK / "vault.json"
    path.write_text(json.dumps(value))
    try:
        got = read_settings(path)
    except VaultError as exc:
        assert str(path) in str(exc)
        return
    assert got["format"] == "pieton/vault/1" and isinstance(got["register"], str)
    assert all(isinstance(r, str) and r.startswith("age1") for r in got["recipients"])
    assert 1 <= got["log_retention_days"] <= 36500 and len(got["vault_key"]) == 64  # retention_days: ignored


row_value = st.one_of(st.none(), st.integers(-10, 10**12), st.floats(), st.text(max_size=8), st.binary(max_size=8))


def _raw_index(name: str) -> tuple[Path, sqlite3.Connection]:
    """A fresh index file opened with plain SQLite and no NOT NULL: anything can go in."""
    path = WORK / name
    for suffix in ("", "-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    raw = sqlite3.connect(path)
    raw.executescript(SCHEMA.replace("NOT NULL", ""))
    return path, raw


@PROFILE
@given(st.tuples(*[row_value] * 13))
def test_index_rows_are_typed_or_refused(values):
    path, raw = _raw_index("index.sqlite")
    try:
        raw.execute("INSERT INTO recordings VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)", values)
    except sqlite3.Error:
        raw.close()
        return
    raw.commit()
    raw.close()
    index = Index(path)
    try:
        rows = index.recordings(state=None)
    except VaultError:
        return
    finally:
        index.close()
    for row in rows:
        assert row.state in ("stored", "purged") and isinstance(row.segments, int)
        start, end = row.span  # usable for `find` and retention without another check
        assert isinstance(start, float | int) and isinstance(row.retention_base, float | int)


@PROFILE
@given(st.text(max_size=40) | st.datetimes().map(lambda d: d.isoformat()))
def test_times_are_parsed_or_refused(text):
    try:
        epoch = parse_time(text)
    except VaultError:
        return
    assert 0 <= epoch < 253402214400


@PROFILE
@given(st.text(max_size=30) | st.tuples(st.floats(), st.floats()).map(lambda t: f"{t[0]},{t[1]}"))
def test_places_are_parsed_or_refused(text):
    try:
        lat, lon = parse_near(text)
    except VaultError:
        return
    assert -90 <= lat <= 90 and -180 <= lon <= 180


@PROFILE
@given(row_value)
def test_pinned_keys_in_the_index_are_hex_or_refused(key):
    path, raw = _raw_index("keys.sqlite")
    raw.execute("INSERT INTO cameras VALUES ('CAM-1', ?, 'x')", (key,))
    raw.commit()
    raw.close()
    index = Index(path)
    try:
        got = index.camera_key("CAM-1")
    except VaultError:
        return
    finally:
        index.close()
    assert bytes.fromhex(got) and len(got) == 64
