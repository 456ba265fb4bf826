"""Training extractions: licence plates the chief marks are followed and blurred, and no
clip leaves the vault before the chief signs off its contact sheet (logged twice)."""

import hashlib
import json
import re

import av
import cv2
import numpy as np
import pytest
from conftest import designate
from test_vault_training import chief, detail  # noqa: F401 - a fixture
from vault_support import CAMERA, make_spool

from recorder.errors import VaultError
from recorder.evidence.age import generate_identity
from tests.clip_support import write_clip
from tools.cli import main
from tools.vault.anonymise import anonymise_segments
from tools.vault.extract import Request, extract
from tools.vault.ingest import ingest
from tools.vault.plates import PlateMark, load_plate_file, parse_plate
from tools.vault.training_approval import PENDING

W, H = 640, 360
PLATE = (80, 24)


def plate_at(i: int) -> tuple[int, int, int, int]:
    return (100 + 3 * i, 250, *PLATE)


def plate_clip(path, frames: int = 60) -> None:
    """A car's plate (black characters on white) moving 3 px a frame across a plain street."""
    rng = np.random.default_rng(3)
    street = cv2.GaussianBlur(rng.integers(60, 160, (H, W, 3), dtype=np.uint8), (15, 15), 0)
    plate = np.full((PLATE[1], PLATE[0], 3), 235, np.uint8)
    cv2.putText(plate, "AB-123-CD", (3, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (10, 10, 10), 2)

    def picture(i: int) -> np.ndarray:
        img = street.copy()
        x, y, w, h = plate_at(i)
        img[y:y + h, x:x + w] = plate
        return img
    write_clip(path, frames, picture)


def test_plate_boxes_are_read_from_the_command_line_or_a_file_and_bad_ones_named(tmp_path):
    assert parse_plate("3.5,640,400,120,40").t == 3.5
    assert parse_plate(" 0 , 1,2,30,40").box == (1, 2, 30, 40)
    for bad in ("3.5,640,400,120", "x,1,2,3,4", "-1,1,2,3,4", "1,1,2,3,4,5", ""):
        with pytest.raises(VaultError, match="--plate .*T,X,Y,W,H"):
            parse_plate(bad)
    good = tmp_path / "plates.json"
    good.write_text(json.dumps([{"t": 1, "box": [1, 2, 30, 10]}, {"t": 0.5, "box": [5, 6, 70, 20]}]))
    assert [m.box for m in load_plate_file(good)] == [(1, 2, 30, 10), (5, 6, 70, 20)]
    for content, where in (('{"t": 1}', "expected a JSON list"), ('[{"t": 1, "box": [1, 2, 3]}]', "item 1"),
                           ('[{"t": true, "box": [1, 2, 3, 4]}]', "item 1"), ("[1, 2", "plates")):
        (tmp_path / "bad.json").write_text(content)
        with pytest.raises(VaultError, match=where):
            load_plate_file(tmp_path / "bad.json")
    with pytest.raises(VaultError, match="outside the 640x360 frame"):
        PlateMark(0, (600, 10, 80, 20), "--plate 0,600,10,80,20").check(W, H, 2.0)
    with pytest.raises(VaultError, match="after the clip's end"):
        PlateMark(9, (10, 10, 80, 20), "--plate 9,10,10,80,20").check(W, H, 2.0)


def test_a_plate_marked_once_is_followed_and_blurred_from_there(tmp_path):
    plain, out = tmp_path / "plain.mp4", tmp_path / "training.mp4"
    plate_clip(plain)
    done = anonymise_segments(plain, out, plates=[PlateMark(0.5, plate_at(15), "--plate")])
    assert "1 box(es) drawn by the chief" in done.summary["plates"]
    with av.open(str(out)) as c:
        after = [f.to_ndarray(format="bgr24") for f in c.decode(video=0)]
    with av.open(str(plain)) as c:
        before = [f.to_ndarray(format="bgr24") for f in c.decode(video=0)]
    for i in range(15, 60, 5):   # from the mark on, wherever it has moved (3 px a frame)
        x, y, w, h = plate_at(i)
        region = (slice(y, y + h), slice(x, x + w))
        assert detail(after[i][region]) < detail(before[i][region]) / 10, i
    x, y, w, h = plate_at(5)     # before the mark: untouched (the chief marks where it first shows)
    assert detail(after[5][y:y + h, x:x + w]) > detail(before[5][y:y + h, x:x + w]) / 2


def test_a_bad_plate_option_is_a_clear_error(tmp_path, capsys, vault):  # noqa: F811
    vault.close()
    for extra, said in ((["--plate", "1,2,3"], "--plate '1,2,3': expected T,X,Y,W,H"),
                        (["--plates-file", str(tmp_path / "none.json")], "none.json")):
        code = main(["vault", "extract", str(tmp_path / "vault"), "R", "--purpose", "formation", "--requester",
                     "R", "--deliver-to", "D", "--identity", "x", "--out", str(tmp_path / "a.mp4"), *extra])
        assert code == 2 and said in capsys.readouterr().err
    code = main(["vault", "extract", str(tmp_path / "vault"), "R", "--purpose", "judiciaire", "--requester", "R",
                 "--deliver-to", "D", "--identity", "x", "--out", str(tmp_path / "a.mp4"), "--plate", "1,2,3,40,40"])
    assert code == 2 and "only for a training extraction" in capsys.readouterr().err


def _training(tmp_path, chief, vault):  # noqa: F811
    spool_dir, signer = make_spool(tmp_path, [chief[1]], recordings=1, segments=2)
    vault.enrol(CAMERA, signer.public_key_hex)
    rids = ingest(vault, spool_dir, progress=False).stored
    out = tmp_path / "out" / "t.mp4"
    out.parent.mkdir()
    result = extract(vault, Request(rids, "training", "Formation ENPM", "Formateur", out), [chief[0]])
    return out, result


def _logged(tmp_path, event):
    journal = [json.loads(line) for line in (tmp_path / "vault" / "journal.jsonl").read_text().splitlines()]
    register = [json.loads(line) for line in (tmp_path / "police" / "register.jsonl").read_text().splitlines()]
    return ([e for e in journal if e.get("event") == event],
            [e for e in register if e.get("event") == event or e.get("record", {}).get("event") == event])


def test_a_training_clip_leaves_only_once_the_chief_signs_off_its_contact_sheet(tmp_path, chief, vault, capsys):  # noqa: F811
    out, result = _training(tmp_path, chief, vault)
    vault.close()
    rid = result.report["extraction_id"]
    # Nothing where --out said, nor beside it: the clip waits in the vault.
    assert list(out.parent.iterdir()) == []
    assert result.out.is_relative_to(tmp_path / "vault" / PENDING) and result.out.exists()
    sheet = result.pending.read_text()
    pictures = re.findall(r'<img src="data:image/jpeg;base64,[^"]+" alt="([\d.]+) s">', sheet)
    assert [float(t) for t in pictures] == pytest.approx([0.0, 2.0], abs=0.15)  # every 2 s of a 4 s clip (first frame on)
    assert f"training-approve {tmp_path / 'vault'} --extraction {rid}" in sheet
    assert main(["vault", "training-pending", str(tmp_path / "vault")]) == 0
    assert rid in capsys.readouterr().out
    # Someone else's key signs nothing off, and that moves nothing.
    stranger = tmp_path / "stranger.key"
    stranger.write_text(generate_identity()[0] + "\n")
    key = tmp_path / "chief.key"
    key.write_text(chief[0] + "\n")
    designate(tmp_path / "vault", key, chief[1])
    assert main(["vault", "training-approve", str(tmp_path / "vault"), "--extraction", rid,
                 "--identity", str(stranger)]) == 2
    assert "not that of a designated person" in capsys.readouterr().err and not out.exists()
    assert main(["vault", "training-approve", str(tmp_path / "vault"), "--extraction", "X-training-nope",
                 "--identity", str(key)]) == 2
    assert f"waiting: {rid}" in capsys.readouterr().err
    assert _logged(tmp_path, "training-approved") == ([], [])
    # The chief signs off: logged twice with the approver, then delivered with its report.
    digest = result.report["mp4"]["sha256"]
    assert main(["vault", "training-approve", str(tmp_path / "vault"), "--extraction", rid,
                 "--identity", str(key)]) == 0
    assert hashlib.sha256(out.read_bytes()).hexdigest() == digest
    assert json.loads(out.with_name("t.report.json").read_text())["extraction_id"] == rid
    assert out.with_name("t.report.html").exists() and not (tmp_path / "vault" / PENDING / rid).exists()
    journal, register = _logged(tmp_path, "training-approved")
    assert len(journal) == 1 and len(register) == 1
    assert journal[0]["extraction_id"] == rid and journal[0]["approved_by"] == chief[1]
    assert journal[0]["operator"] == "PM-0001"   # the designated person's matricule
    assert main(["vault", "check-report", str(out.with_name("t.report.json")), str(out),
                 "--vault-key", (tmp_path / "vault" / "keys" / "vault.pub").read_text().strip()]) == 0
    # Once only.
    assert main(["vault", "training-approve", str(tmp_path / "vault"), "--extraction", rid,
                 "--identity", str(key)]) == 2
    assert main(["vault", "verify", str(tmp_path / "vault")]) == 0   # journal and register agree


def test_a_clip_changed_while_pending_is_not_delivered_and_a_rejected_one_is_erased(tmp_path, chief, vault):  # noqa: F811
    out, result = _training(tmp_path, chief, vault)
    vault.close()
    rid = result.report["extraction_id"]
    key = tmp_path / "chief.key"
    key.write_text(chief[0] + "\n")
    designate(tmp_path / "vault", key, chief[1])
    with open(result.out, "ab") as f:
        f.write(b"\0")
    assert main(["vault", "training-approve", str(tmp_path / "vault"), "--extraction", rid,
                 "--identity", str(key)]) == 2
    assert not out.exists() and _logged(tmp_path, "training-approved") == ([], [])
    assert main(["vault", "training-reject", str(tmp_path / "vault"), "--extraction", rid, "--identity", str(key),
                 "--reason", "a plate shows at 12 s"]) == 0
    journal, register = _logged(tmp_path, "training-rejected")
    assert len(journal) == 1 and len(register) == 1 and journal[0]["reason"] == "a plate shows at 12 s"
    assert not (tmp_path / "vault" / PENDING / rid).exists() and not out.exists()
