"""Training extractions: faces blurred by a detector whose weights ship in a package (and
load with the network off), boxes followed between searches, the caption masked, no sound,
thumbnails at their real times, progress shown."""

import dataclasses
import json
import re
import shutil
import subprocess
import sys
import textwrap

import av
import cv2
import numpy as np
import pytest
from vault_support import CAMERA, START, store_recordings

from recorder.evidence.age import generate_identity
from tests.clip_support import write_clip
from tools.benchmarks._face_scenes import Scenes, astronaut
from tools.benchmarks.faces import covered
from tools.cli import main
from tools.vault.anonymise import SEARCH_EVERY, anonymise_segments, blur_rects, overlay_band
from tools.vault.anonymised_words import anonymised_french
from tools.vault.extract import Request, extract
from tools.vault.faces import CONFIRM_FILE, CONFIRM_PACKAGE, MODEL_FILE, MODEL_PACKAGE, FaceDetector
from tools.vault.track import BlurPlan, follow, small_grey

W, H, FPS = 640, 360, 30


def face_frame(x: int, y: int, width: int = 60, grey: bool = False) -> tuple[np.ndarray, tuple]:
    """A textured frame with the astronaut's face, ``width`` px wide, at (x, y)."""
    rng = np.random.default_rng(x * 7 + y)
    img = cv2.GaussianBlur(rng.integers(40, 200, (H, W, 3), dtype=np.uint8), (9, 9), 0)
    crop, (fx, fy, fw, fh) = astronaut()
    k = width / fw
    crop = cv2.resize(crop, None, fx=k, fy=k, interpolation=cv2.INTER_AREA)
    ox, oy = x - int(fx * k), y - int(fy * k)
    h, w = crop.shape[:2]
    img[oy:oy + h, ox:ox + w] = crop
    if grey:
        img = cv2.cvtColor(cv2.cvtColor(img, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)
    return img, (x, y, width, int(fh * k))


def overlap(a, b) -> float:
    ix = max(0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    return ix * iy / (b[2] * b[3])


def test_detector_finds_a_face_in_colour_and_in_infrared_grey():
    detector = FaceDetector(width=W)
    for grey in (False, True):
        img, truth = face_frame(300, 150, 48, grey=grey)
        faces = detector.detect(img)
        assert any(overlap(f.box, truth) > 0.6 for f in faces), (grey, faces)
    blank = cv2.GaussianBlur(np.random.default_rng(1).integers(40, 200, (H, W, 3), dtype=np.uint8), (9, 9), 0)
    assert detector.detect(blank) == []


NETWORK_OFF = textwrap.dedent("""
    import json, sys
    opened, sockets = [], []
    def hook(event, args):
        if event == "open" and isinstance(args[0], str):
            opened.append(args[0])
        elif event.startswith("socket."):
            sockets.append(event)
    sys.addaudithook(hook)
    import numpy as np
    from tools.vault.faces import PASSES, FaceDetector
    img = np.load(sys.argv[1])
    start = len(opened)
    detector = FaceDetector(passes=PASSES)  # the anonymiser's, both networks loaded
    found = [f.box for f in detector.detect(img)]
    read = [p for p in opened[start:] if not p.endswith((".py", ".pyc", ".so")) and "/__pycache__" not in p
            and not p.startswith(("/proc", "/sys", "/dev"))]
    print(json.dumps({"read": read, "sockets": sockets, "found": found}))
""")


def test_weights_come_from_the_installed_package_and_load_with_the_network_off(tmp_path):
    img, truth = face_frame(200, 120, 56)
    np.save(tmp_path / "frame.npy", img)
    command = [sys.executable, "-c", NETWORK_OFF, str(tmp_path / "frame.npy")]
    # A network namespace of its own: no interface but a down loopback. Root (as in CI)
    # may create one; elsewhere the audit hook alone shows no socket was opened.
    if shutil.which("unshare") and subprocess.run(["unshare", "-n", "true"], capture_output=True).returncode == 0:
        command = ["unshare", "-n", *command]
        assert "inet " not in subprocess.run(["unshare", "-n", "ip", "-o", "addr"], capture_output=True,
                                             text=True).stdout.replace("inet 127", "")
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout.splitlines()[-1])
    assert answer["sockets"] == []
    read = [p.split("/") for p in answer["read"]]
    assert [r[-2:] for r in read[:1]] + [r[-3:] for r in read[1:]] == [
        [MODEL_PACKAGE, MODEL_FILE], [CONFIRM_PACKAGE, *CONFIRM_FILE.split("/")]]
    assert any(overlap(box, truth) > 0.6 for box in answer["found"])


def test_blur_plan_searches_every_nth_frame_and_returns_each_frame_once_in_order():
    seen = []

    def detect(i):
        seen.append(i)
        return [] if i == 20 else [(10, 10, 20, 20)]
    plan = BlurPlan(detect, 10)
    out = []
    for i in range(25):
        out += list(plan.push(i))
    out += list(plan.finish())
    assert [i for i, _ in out] == list(range(25))
    assert seen == [0, 10, 20, 24]  # and the last frame, so the tail has a search after it
    boxes = dict(out)
    assert boxes[20] == [(10, 10, 20, 20)]  # missed at 20: held where it was seen at 10
    assert (10, 10, 20, 20) in boxes[22]    # and over the gap after it


def test_a_face_is_followed_between_two_searches():
    """Faster than the detector's gap allows a match: followed from both ends."""
    frames = [face_frame(100 + 12 * i, 150, 60)[0] for i in range(11)]
    truths = [face_frame(100 + 12 * i, 150, 60)[1] for i in range(11)]
    detector = FaceDetector(width=W)
    plan = BlurPlan(lambda i: [f.box for f in detector.detect(frames[i])], 10, image=lambda i: frames[i])
    out = [item for i in range(11) for item in plan.push(i)]
    assert [i for i, _ in out] == list(range(11)) and plan.searches == 2
    for i, boxes in out:
        rects = blur_rects(frames[i].shape, boxes)
        x, y, w, h = truths[i]
        assert any(r[0] <= x + 3 and r[1] <= y + 3 and r[2] >= x + w - 3 and r[3] >= y + h - 3 for r in rects), i
    track = follow([small_grey(f) for f in frames], truths[0])
    assert all(abs(b[0] - t[0]) <= 6 for b, t in zip(track, truths[1:], strict=True))


def detail(img) -> float:
    """Edges of eyes, brows, nose and mouth."""
    return cv2.Laplacian(cv2.cvtColor(img, cv2.COLOR_BGR2GRAY), cv2.CV_64F).var()


def face_crossing(i: int) -> np.ndarray:
    """Frame i of a clip as the remux writes it: a face crossing the frame under a caption band."""
    img, _ = face_frame(150 + i, 160, 64)
    img[:20] = 255  # the caption's text
    return img


def test_anonymisation_blurs_the_face_masks_the_caption_drops_sound_and_shows_progress(tmp_path):
    plain, out = tmp_path / "plain.mp4", tmp_path / "training.mp4"
    write_clip(plain, 4 * FPS, face_crossing, tone_hz=440)
    said = []
    done = anonymise_segments(plain, out, progress=lambda t, total: said.append((round(t, 1), round(total, 1))),
                              progress_every=1.0)
    assert said == [(1.0, 4.0), (2.0, 4.0), (3.0, 4.0), (4.0, 4.0)]  # a line per second of media here
    summary = done.summary
    assert summary["frames"] == 120 and summary["searches"] == 120 // SEARCH_EVERY + 1
    assert "CenterFace" in summary["faces"] and summary["audio"].startswith("removed")
    told = " ".join(words for _, words in anonymised_french(summary))   # the pages' French
    assert "CenterFace" in told and not re.search(r"blurred|searched|margin|each side|removed|re-encoded|"
                                                  r"masked|marked|checked on|if confirmed|of the width|px wide", told)
    probe = json.loads(subprocess.run(["ffprobe", "-v", "error", "-show_streams", "-of", "json", str(out)],
                                      capture_output=True, text=True, check=True).stdout)
    assert [s["codec_type"] for s in probe["streams"]] == ["video"]
    with av.open(str(out)) as c:
        after = [f.to_ndarray(format="bgr24") for f in c.decode(video=0)]
    assert len(after) == 120
    for i in range(0, 120, 7):
        before, (x, y, w, h) = face_frame(150 + i, 160, 64)
        face = (slice(y, y + h), slice(x, x + w))

        assert detail(after[i][face]) < detail(before[face]) / 10, i
        assert after[i][: overlay_band(H) - 2].max() < 40  # caption band blacked out
    # Thumbnails: taken from the anonymised frames at their real times, all different.
    times = [t for t, _ in done.thumbnails]
    assert times == pytest.approx([0.25, 0.75, 1.25, 1.75, 2.25, 2.75, 3.25, 3.75], abs=0.04)
    uris = [uri for _, uri in done.thumbnails]
    assert len(set(uris)) == 8 and all(uri.startswith("data:image/jpeg") for uri in uris)


# -- the extraction as a whole: what leaves the vault for a trainer ---------------------------

@pytest.fixture
def chief():
    return generate_identity()


def _identifying(vault, rid, signer) -> list[str]:
    """What names, places or dates the recording, as make_spool writes it."""
    return [CAMERA, rid, "A-1234", signer.public_key_hex, "46.95", "2026-11-18", "2026-11-19",
            str(int(START))[:6], "<svg", "polyline", '"lat"', '"lon"', '"camera"', '"agent"', "device_key"]


def test_training_extraction_names_no_one_and_dates_nothing(tmp_path, chief, vault):
    rids, signer = store_recordings(vault, tmp_path, chief[1], recordings=2, segments=2)
    said = []
    request = Request(rids, "training", "Formation ENPM", "Formateur", tmp_path / "t.mp4",
                      progress=lambda t, total: said.append(t))
    result = extract(vault, request, [chief[0]])
    text = result.report_path.read_text()
    html = result.html_path.read_text()
    pictures = re.findall(r'src="(data:image/jpeg[^"]+)"', html)
    words = re.sub(r'src="data:image/jpeg[^"]+"', "", html)
    report = json.loads(text)
    for leak in _identifying(vault, rids[0], signer) + [rids[1]]:
        assert leak not in text, leak
        assert leak not in words, leak
    assert not re.search(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d|\d\d/\d\d/\d{4}", text + words)  # no absolute time at all
    assert report["mp4"]["audio"] == "removed" and report["sources"] == {"recordings": 2, "segments": 4,
                                                                          "truncated": False}
    assert [e["event"] for e in report["timeline"]].count("bookmark") == 2
    assert all(0 <= e["t_s"] <= report["mp4"]["duration_s"] for e in report["timeline"])
    assert said and said[-1] == pytest.approx(report["mp4"]["duration_s"], abs=0.2)
    # Thumbnails at their real times along the clip, all different.
    captions = re.findall(r"<figcaption>(\d+,\d) s</figcaption>", words)
    assert len(captions) == 8 and len(set(captions)) == 8 and captions != sorted(captions, reverse=True)
    # Both recordings hold the same 4 s of media: the pictures differ within it and repeat after.
    assert len(set(pictures[:4])) == 4 and pictures[4:] == pictures[:4]
    # The MP4 itself: video only, and no tag that dates or names anything.
    probe = json.loads(subprocess.run(["ffprobe", "-v", "error", "-show_format", "-show_streams", "-of", "json",
                                       str(result.out)], capture_output=True, text=True, check=True).stdout)
    assert [s["codec_type"] for s in probe["streams"]] == ["video"]
    tags = {k.lower(): str(v) for k, v in probe["format"].get("tags", {}).items()}
    for stream in probe["streams"]:
        tags.update({k.lower(): str(v) for k, v in stream.get("tags", {}).items()})
    assert not {"creation_time", "title", "comment", "description", "location", "artist", "date"} & set(tags)
    for leak in _identifying(vault, rids[0], signer):
        assert all(leak not in v for v in tags.values()), leak
    # The vault still knows which recordings it used: logged twice, as any extraction.
    journal = (tmp_path / "vault" / "journal.jsonl").read_text()
    register = (tmp_path / "police" / "register.jsonl").read_text()
    assert rids[0] in journal and rids[0] in register
    assert main(["vault", "check-report", str(result.report_path), str(result.out),
                 "--vault-key", vault.signer.public_key_hex]) == 0


def test_keep_audio_is_gone(tmp_path, chief, vault, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["vault", "extract", str(tmp_path / "vault"), "R", "--purpose", "training", "--requester", "R",
              "--deliver-to", "D", "--identity", "x", "--out", str(tmp_path / "a.mp4"), "--keep-audio"])
    assert exit_.value.code == 2 and "--keep-audio" in capsys.readouterr().err
    assert "keep_audio" not in {f.name for f in dataclasses.fields(Request)}


def test_the_benchmark_counts_a_face_found_only_when_its_box_is_blurred():
    assert covered([(0, 0, 100, 100)], (10, 10, 40, 40))
    assert not covered([(0, 0, 45, 100)], (10, 10, 40, 40))          # a third of it shows
    assert covered([(0, 0, 30, 100), (30, 0, 60, 100)], (10, 10, 40, 40))  # two regions side by side
    scenes = Scenes(seed=5)
    still = scenes.still(5, "infrared")
    assert len(still.faces) == 5 and all(20 <= w <= 110 for _, _, w, _ in still.faces)
    assert np.array_equal(still.image[..., 0], still.image[..., 2])  # infrared: grey
    assert scenes.still(5, "colour", faces=False).faces == []
