"""The training anonymiser's pipeline: the face network runs in a thread of its own, one
search ahead, while the frames around it are followed, blurred and encoded; every frame
still comes out, in order, with the same boxes; the time spent is told by stage; a failing
detector stops the whole thing cleanly; a face a search misses is followed on."""

import threading
from concurrent.futures import ThreadPoolExecutor

import av
import cv2
import numpy as np
import pytest

from recorder.errors import VaultError
from tests.clip_support import write_clip
from tools.benchmarks._face_scenes import astronaut
from tools.benchmarks.faces import covered
from tools.vault.anonymise import SEARCH_EVERY, anonymise_segments, blur_rects
from tools.vault.faces import PASSES, FaceDetector
from tools.vault.track import BlurPlan


def _plan_output(pool, detect, n=47, every=10):
    plan = BlurPlan(detect, every, pool=pool)
    out = []
    for i in range(n):
        out += list(plan.push(i))
    out += list(plan.finish())
    return plan, out


def _moving(i):
    """A face that comes and goes and moves: the held and interpolated boxes all show."""
    return [] if i in (20, 40) else [(10 + i, 10, 20, 20), (300 - 2 * i, 50, 30, 30)]


def test_a_plan_with_a_pool_gives_every_frame_once_in_order_with_the_same_boxes():
    _, alone = _plan_output(None, _moving)
    with ThreadPoolExecutor(1) as pool:
        plan, pooled = _plan_output(pool, _moving)
    assert [i for i, _ in pooled] == list(range(47))
    assert pooled == alone
    assert plan.searches == 6 and plan.searching_s >= 0 and plan.waiting_s >= 0


def test_the_next_search_runs_while_the_frames_before_it_are_handed_back():
    """Frames 1..10 are blurred and encoded while the network looks at frame 20: it may
    not need them to be handed back first (before, ``push(20)`` ran the search itself and
    only then gave back frames 1..10, so the search waited in vain here)."""
    handed_back = threading.Event()
    overlapped = []
    threads = []

    def detect(i):
        threads.append(threading.current_thread())
        if i == 20:
            overlapped.append(handed_back.wait(timeout=10))
        return [(5, 5, 20, 20)]
    with ThreadPoolExecutor(1) as pool:
        plan = BlurPlan(detect, 10, pool=pool)
        out = []
        for i in range(31):
            for frame, _boxes in plan.push(i):
                out.append(frame)
                if frame == 10:
                    handed_back.set()
        out += [f for f, _ in plan.finish()]
    assert out == list(range(31))
    assert overlapped == [True]
    assert threading.main_thread() not in threads


def test_the_search_order_is_kept_in_the_pool():
    """One search at a time and in frame order, so a detector that keeps a schedule of its
    own across searches (a pass every other search) sees them as without the pool."""
    seen = []
    with ThreadPoolExecutor(1) as pool:
        _plan_output(pool, lambda i: seen.append(i) or [], n=35)
    assert seen == [0, 10, 20, 30, 34]


class _Recording(FaceDetector):
    """The anonymiser's own detector, telling which thread it ran in."""

    def __init__(self, fail_at=None):
        super().__init__(passes=PASSES)
        self.threads = set()
        self.calls = 0
        self.fail_at = fail_at

    def detect(self, bgr):
        self.threads.add(threading.current_thread().name)
        self.calls += 1
        if self.calls == self.fail_at:
            raise VaultError("face detector: out of memory (injected)")
        return super().detect(bgr)


def _gradient(i: int) -> np.ndarray:
    """A 320x240 frame of a moving gradient, no face: the pipeline's plumbing only."""
    img = np.zeros((240, 320, 3), np.uint8)
    img[:, :, 1] = (np.arange(320) + 3 * i) % 256
    return img


def test_anonymisation_searches_in_its_own_thread_keeps_every_frame_and_tells_where_the_time_went(tmp_path):
    src, dst = tmp_path / "plain.mp4", tmp_path / "training.mp4"
    write_clip(src, 45, _gradient)
    detector = _Recording()
    done = anonymise_segments(src, dst, detector=detector)
    assert threading.current_thread().name not in detector.threads and len(detector.threads) == 1
    assert done.summary["frames"] == 45 and done.summary["searches"] == -(-45 // SEARCH_EVERY) + 1  # and the last frame
    with av.open(str(dst)) as c:
        assert sum(1 for _ in c.decode(video=0)) == 45
    assert set(done.spent) >= {"decode", "detect", "wait for detect", "track", "blur", "encode"}
    assert all(v >= 0 for v in done.spent.values()) and done.spent["detect"] > 0


def test_a_detector_failing_mid_clip_stops_the_anonymisation_with_its_error_and_no_thread_left(tmp_path):
    src, dst = tmp_path / "plain.mp4", tmp_path / "training.mp4"
    write_clip(src, 45, _gradient)
    before = {t.name for t in threading.enumerate()}
    with pytest.raises(VaultError, match="out of memory"):
        anonymise_segments(src, dst, detector=_Recording(fail_at=3))
    assert {t.name for t in threading.enumerate()} - before == set()


def _walker(i, speed=10):
    """A textured frame with the astronaut's face (60 px wide) walking right ``speed`` px
    a frame, and the face's box."""
    rng = np.random.default_rng(1)
    img = cv2.GaussianBlur(rng.integers(40, 200, (360, 640, 3), dtype=np.uint8), (9, 9), 0)
    crop, (fx, fy, fw, fh) = astronaut()
    k = 60 / fw
    crop = cv2.resize(crop, None, fx=k, fy=k, interpolation=cv2.INTER_AREA)
    x, y = 60 + speed * i, 120
    ox, oy = x - int(fx * k), y - int(fy * k)
    h, w = crop.shape[:2]
    img[oy:oy + h, ox:ox + w] = crop
    return img, (x, y, 60, int(fh * k))


def test_a_walker_the_network_stops_seeing_is_followed_on_not_only_held_where_last_seen():
    """Seen at the searches of frames 0 and 10, missed from frame 20 on: over frames 11 to
    30 the face is blurred where it walks (before, a box stayed where the search of frame 10
    saw it, and the face walked out of it within a few frames)."""
    frames = [_walker(i) for i in range(31)]
    plan = BlurPlan(lambda i: [frames[i][1]] if i <= 10 else [], 10, image=lambda i: frames[i][0])
    out = [item for i in range(31) for item in plan.push(i)] + list(plan.finish())
    assert [i for i, _ in out] == list(range(31))
    for i, boxes in out:
        rects = blur_rects(frames[i][0].shape, boxes)
        assert covered(rects, frames[i][1]), i
