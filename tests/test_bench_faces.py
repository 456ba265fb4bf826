"""The face detector of training extractions: its passes (the frame as it is, and upscaled
for small faces), its robustness to what OpenCV's DNN answers, and the benchmark that
chose them weighing every configuration as ``detect`` would."""

import cv2
import numpy as np
from test_vault_training import face_frame, overlap

from tools.benchmarks._face_scenes import Scenes, astronaut
from tools.benchmarks.faces import covered, score_configs
from tools.vault.anonymise import blur_rects
from tools.vault.faces import PASSES, FaceDetector, Pass, _decode


def small_face(width: int, size=(1280, 720), at=(600, 300)) -> tuple[np.ndarray, tuple]:
    """The astronaut's face, ``width`` px wide, on a textured 720p frame."""
    rng = np.random.default_rng(width)
    img = cv2.GaussianBlur(rng.integers(40, 200, (size[1], size[0], 3), dtype=np.uint8), (9, 9), 0)
    crop, (fx, fy, fw, fh) = astronaut()
    k = width / fw
    crop = cv2.resize(crop, None, fx=k, fy=k, interpolation=cv2.INTER_AREA)
    ox, oy = at[0] - int(fx * k), at[1] - int(fy * k)
    img[oy:oy + crop.shape[0], ox:ox + crop.shape[1]] = crop
    return img, (at[0], at[1], width, int(fh * k))


def test_one_detector_fed_frames_of_two_sizes_answers_both_right():
    """OpenCV's DNN keeps the buffers of the first size it ran: a second size got scores of
    1 everywhere (hundreds of boxes, some infinite). Each size has its network now."""
    detector = FaceDetector(width=1280)
    small, small_truth = face_frame(300, 150, 48)
    big, big_truth = small_face(48)
    blank = cv2.GaussianBlur(np.random.default_rng(1).integers(40, 200, (720, 1280, 3), dtype=np.uint8), (9, 9), 0)
    for img, truth in ((small, small_truth), (big, big_truth), (small, small_truth), (blank, None)):
        faces = detector.detect(img)
        if truth is None:
            assert faces == []
        else:
            assert len(faces) == 1 and overlap(faces[0].box, truth) > 0.6, faces[:5]


def test_a_wild_size_from_the_network_gives_a_bounded_box_not_a_crash():
    heatmap = np.zeros((1, 1, 8, 8), np.float32)
    heatmap[0, 0, 3, 4] = 0.9
    scale = np.zeros((1, 2, 8, 8), np.float32)
    scale[0, :, 3, 4] = 1000.0   # exp() overflows to infinity
    offset = np.zeros((1, 2, 8, 8), np.float32)
    offset[0, 1, 3, 4] = np.nan
    faces = _decode(heatmap, scale, offset, 0.5, 1.0, 1.0, 32, 32)
    assert all(0 <= f.x < 32 and 0 <= f.y < 32 and 1 <= f.w <= 32 and 1 <= f.h <= 32 for f in faces)


def test_the_anonymiser_finds_faces_16_to_20_px_wide_that_the_frame_as_it_is_hides():
    """A face at 5 m is 20 px wide on 1280: the upscaled pass finds it (and one smaller)."""
    anonymiser, as_is = FaceDetector(passes=PASSES), FaceDetector(passes=(Pass(0.75, 0.2),))
    missed_as_is = 0
    for width in (16, 18, 20):
        img, truth = small_face(width)
        rects = blur_rects(img.shape, [f.box for f in anonymiser.detect(img)])
        assert covered(rects, truth), width
        missed_as_is += not covered(blur_rects(img.shape, [f.box for f in as_is.detect(img)]), truth)
    assert missed_as_is >= 2   # main's detector (the frame reduced to 960 px) misses them
    assert len(PASSES) == 2 and PASSES[1].scale > 1 and PASSES[1].widest * 1280 < 80


def test_the_benchmark_weighs_each_configuration_as_detect_would():
    scenes = Scenes(seed=11)
    stills = [scenes.still(5, v) for v in ("colour", "motion-blur", "infrared")]
    empty = [scenes.still(5, "colour", faces=False)]
    configs = (("one pass", (Pass(1.0, 0.2),)), ("anonymiser", PASSES))
    scored = score_configs(configs, stills, empty)
    for name, passes in configs:
        detector = FaceDetector(passes=passes)
        found = [covered(blur_rects(s.image.shape, [f.box for f in detector.detect(s.image)]), box)
                 for s in stills for box in s.faces]
        assert scored[name]["faces"] == 15 and scored[name]["recall"] == round(float(np.mean(found)), 3), name
        assert scored[name]["face_free_blurred_share"] == float(bool(detector.detect(empty[0].image)))
        assert scored[name]["frames_per_s"] > 0
