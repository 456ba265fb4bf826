"""Street-like 1280x720 frames with faces composited in, from images shipped in packages.

Faces: scikit-image's ``lfw_subset.npy`` (100 Labeled Faces in the Wild crops, 25x25 grey,
then 100 non-face crops of the same size) and the face of its ``astronaut.png``. Each face
is pasted on a head and shoulders (hair, skin tone, clothing) so the frame looks like a
person in a street. Face-free frames hold the same streets and textures with the non-face
crops pasted as posters, signs or bags would show (tinted like skin, half of them oval):
no person, since a head seen from any side is blurred too, rightly.

Sizes: the face's width is 110 px / d with d spread evenly from 1 m to 5.5 m (a face seen
from 1 m to 5.5 m on 1280 pixels across a wide lens): 20 to 110 px, most of them small.
Variants, one frame in three each: colour; motion blur (a 1/30 s exposure, the longest the
camera takes, at dusk or indoors: the agent's own gait shakes the whole frame, and each
person walking across moves during the exposure, see ``motion_blur``); infrared grey (night
mode: luma only, skin bright, low contrast, sensor noise).
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources

import cv2
import numpy as np

WIDTH, HEIGHT = 1280, 720
TOP = 90            # the caption band, masked anyway: no face placed there
VARIANTS = ("colour", "motion-blur", "infrared")
SKIN = [(0.55, 0.70, 0.95), (0.45, 0.60, 0.85), (0.30, 0.42, 0.62), (0.62, 0.76, 1.00), (0.22, 0.30, 0.45)]
HAIR = [(20, 20, 25), (30, 45, 70), (60, 90, 130), (140, 150, 160), (15, 25, 40)]
CLOTHES = [(40, 40, 40), (120, 60, 30), (30, 30, 120), (90, 110, 60), (160, 160, 160), (50, 20, 90)]
# The astronaut's face inside skimage's 512x512 picture (x, y, w, h), and a crop around it.
ASTRONAUT_FACE = (176, 56, 90, 116)
ASTRONAUT_CROP = (140, 10, 160, 200)


def _skimage_data(name: str):
    return resources.files("skimage").joinpath("data", name)


def lfw() -> tuple[list[np.ndarray], list[np.ndarray]]:
    """(100 faces, 100 non-faces), each 25x25 uint8 grey."""
    with _skimage_data("lfw_subset.npy").open("rb") as f:
        data = np.load(f)
    crops = [(np.clip(a, 0, 1) * 255).astype(np.uint8) for a in data]
    return crops[:100], crops[100:]


def _png(name: str, flags=cv2.IMREAD_COLOR) -> np.ndarray:
    img = cv2.imdecode(np.frombuffer(_skimage_data(name).read_bytes(), np.uint8), flags)
    if img is None:
        raise FileNotFoundError(f"skimage/data/{name}")
    return img


def astronaut() -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """The crop around the astronaut's face (BGR) and the face's box inside it."""
    x, y, w, h = ASTRONAUT_CROP
    fx, fy, fw, fh = ASTRONAUT_FACE
    return _png("astronaut.png")[y:y + h, x:x + w].copy(), (fx - x, fy - y, fw, fh)


def street(rng: np.random.Generator) -> np.ndarray:
    """A synthetic street: sky, façades with windows and doors, pavement, road, parked cars."""
    img = np.empty((HEIGHT, WIDTH, 3), np.uint8)
    sky = rng.integers(120, 220)
    img[:] = (sky, sky - rng.integers(0, 30), sky - rng.integers(20, 60))
    horizon = int(rng.integers(380, 470))
    x = 0
    while x < WIDTH:
        w = int(rng.integers(120, 320))
        top = int(rng.integers(0, 200))
        colour = tuple(int(c) for c in rng.integers(60, 210, 3))
        cv2.rectangle(img, (x, top), (x + w, horizon), colour, -1)
        for wy in range(top + 20, horizon - 60, int(rng.integers(55, 80))):
            for wx in range(x + 12, x + w - 30, int(rng.integers(40, 60))):
                shade = tuple(int(c) for c in rng.integers(20, 90, 3))
                cv2.rectangle(img, (wx, wy), (wx + 22, wy + 34), shade, -1)
        if rng.random() < 0.5:
            cv2.rectangle(img, (x + w // 3, horizon - 90), (x + w // 3 + 40, horizon), (30, 30, 50), -1)
        x += w
    img[horizon:horizon + 40] = (150, 150, 150)         # pavement
    img[horizon + 40:] = (70, 70, 75)                   # road
    for _ in range(int(rng.integers(1, 4))):
        cx = int(rng.integers(0, WIDTH - 200))
        cy = int(rng.integers(horizon + 50, HEIGHT - 80))
        colour = tuple(int(c) for c in rng.integers(20, 230, 3))
        cv2.rectangle(img, (cx, cy), (cx + 200, cy + 70), colour, -1)
        cv2.rectangle(img, (cx + 40, cy - 40), (cx + 150, cy), colour, -1)
        for wx in (cx + 40, cx + 160):
            cv2.circle(img, (wx, cy + 70), 18, (15, 15, 15), -1)
    noise = rng.normal(0, 4, img.shape)
    return np.clip(img + noise, 0, 255).astype(np.uint8)


def textures() -> list[np.ndarray]:
    """skimage's pictures with no face in them, stretched to a frame: walls, ground, things."""
    out = []
    for name in ("brick.png", "gravel.png", "grass.png", "coffee.png", "rocket.jpg", "motorcycle_left.png"):
        img = _png(name)
        out.append(cv2.resize(img, (WIDTH, HEIGHT), interpolation=cv2.INTER_LINEAR))
    return out


def background(rng: np.random.Generator, tex: list[np.ndarray]) -> np.ndarray:
    if rng.random() < 0.7:
        return street(rng)
    return tex[int(rng.integers(len(tex)))].copy()


def face_width(rng: np.random.Generator) -> int:
    return int(round(110 / rng.uniform(1.0, 5.5)))


def _ellipse_alpha(h: int, w: int, feather: float) -> np.ndarray:
    mask = np.zeros((h, w), np.float32)
    cv2.ellipse(mask, (w // 2, h // 2), (max(1, w // 2 - 1), max(1, h // 2 - 1)), 0, 0, 360, 1.0, -1)
    k = max(3, int(min(h, w) * feather) | 1)
    return cv2.GaussianBlur(mask, (k, k), 0)


def paste_person(img: np.ndarray, crop: np.ndarray, x: int, y: int, s: int, rng: np.random.Generator,
                 inner: tuple[int, int, int, int] | None = None) -> tuple[int, int, int, int]:
    """A person whose face (``crop``, grey or BGR) is ``s`` px wide with its top-left at
    (x, y): shoulders and a head of hair around it. Returns the face's box."""
    skin = np.array(SKIN[int(rng.integers(len(SKIN)))], np.float32)
    hair = HAIR[int(rng.integers(len(HAIR)))]
    clothes = CLOTHES[int(rng.integers(len(CLOTHES)))]
    h_img, w_img = img.shape[:2]
    # Shoulders, neck, then the head (hair behind the face).
    cv2.ellipse(img, (x + s // 2, y + int(s * 2.1)), (int(s * 1.1), int(s * 0.7)), 0, 180, 360, clothes, -1)
    cv2.rectangle(img, (x + s // 2 - s // 5, y + s), (x + s // 2 + s // 5, y + int(s * 1.5)),
                  tuple(int(c) for c in 180 * skin), -1)
    cv2.ellipse(img, (x + s // 2, y + int(s * 0.3)), (int(s * 0.62), int(s * 0.6)), 0, 0, 360, hair, -1)
    cv2.ellipse(img, (x + s // 2, y + int(s * 0.55)), (int(s * 0.54), int(s * 0.6)), 0, 0, 360,
                tuple(int(c) for c in 150 * skin + 25), -1)   # cheeks, jaw and ears around the crop
    if inner is None:   # an LFW crop: the face fills it
        face = cv2.resize(crop, (s, s), interpolation=cv2.INTER_AREA if s < crop.shape[1] else cv2.INTER_CUBIC)
        face = face.astype(np.float32)[..., None] * skin[None, None, :] + 25
        box = (x, y, s, s)
    else:               # the astronaut's crop: scaled so its face is s px wide
        factor = s / inner[2]
        face = cv2.resize(crop, (max(1, int(crop.shape[1] * factor)), max(1, int(crop.shape[0] * factor))),
                          interpolation=cv2.INTER_AREA).astype(np.float32)
        x -= int(inner[0] * factor)
        y -= int(inner[1] * factor)
        box = (x + int(inner[0] * factor), y + int(inner[1] * factor), s, int(inner[3] * factor))
    fh, fw = face.shape[:2]
    x0, y0, x1, y1 = max(0, x), max(0, y), min(w_img, x + fw), min(h_img, y + fh)
    if x1 <= x0 or y1 <= y0:
        return box
    alpha = _ellipse_alpha(fh, fw, 0.12 if inner is None else 0.25)[y0 - y:y1 - y, x0 - x:x1 - x, None]
    region = img[y0:y1, x0:x1].astype(np.float32)
    img[y0:y1, x0:x1] = np.clip(region * (1 - alpha) + face[y0 - y:y1 - y, x0 - x:x1 - x] * alpha,
                                0, 255).astype(np.uint8)
    return box


def paste_patch(img: np.ndarray, crop: np.ndarray, x: int, y: int, s: int, rng: np.random.Generator) -> None:
    """A non-face crop, tinted, as a poster, a sign or a bag would show in a street."""
    tint = np.array(SKIN[int(rng.integers(len(SKIN)))], np.float32)
    patch = cv2.resize(crop, (s, s), interpolation=cv2.INTER_CUBIC).astype(np.float32)[..., None] * tint + 25
    alpha = _ellipse_alpha(s, s, 0.12)[..., None] if rng.random() < 0.5 else 1.0
    region = img[y:y + s, x:x + s].astype(np.float32)
    img[y:y + s, x:x + s] = np.clip(region * (1 - alpha) + patch * alpha, 0, 255).astype(np.uint8)


# Motion blur over one exposure of 1/30 s (the longest: at dusk, indoors, at night).
# The camera: an agent walking sways the torso about +-4 degrees at about 1 step a second,
# up to 25 degrees/s, 0.8 degree in 1/30 s: up to 10 px at the benchmark's 733 px per
# radian (a face 15 cm wide is 110 px at 1 m), in any direction, the same over the frame.
CAMERA_BLUR_PX = 10.0
# A person walking at 1.4 m/s moves 4.7 cm in 1/30 s: 0.31 of their face's width (15 cm),
# times the sine of the angle between their way and the line of sight, whatever their
# distance; mostly sideways in the picture. A person walking in the clips moves up to a
# quarter of their face's width per frame, the same figure.
WALK_BLUR_FACES = 1.4 * (1 / 30) / 0.15


def line_kernel(dx: float, dy: float) -> np.ndarray:
    """The blur of a straight move of (dx, dy) px during the exposure."""
    length = float(np.hypot(dx, dy))
    size = int(np.ceil(length)) // 2 * 2 + 3
    kernel = np.zeros((size, size), np.float32)
    c = size // 2
    if length < 1:
        kernel[c, c] = 1.0
        return kernel
    # Drawn at 8x and reduced: a line of sub-pixel length and angle.
    big = np.zeros((size * 8, size * 8), np.float32)
    centre = size * 4
    cv2.line(big, (int(round(centre - dx * 4)), int(round(centre - dy * 4))),
             (int(round(centre + dx * 4)), int(round(centre + dy * 4))), 1.0, 8, cv2.LINE_AA)
    kernel = cv2.resize(big, (size, size), interpolation=cv2.INTER_AREA)
    return kernel / max(float(kernel.sum()), 1e-6)


def _direction(angle: float, length: float) -> tuple[float, float]:
    return length * float(np.cos(angle)), length * float(np.sin(angle))


def motion_blur(img: np.ndarray, rng: np.random.Generator,
                people: list[tuple[tuple[int, int, int, int], tuple[float, float] | None]] = ()) -> np.ndarray:
    """The frame shaken by the camera, and each person in ``people`` (their face's box and
    their move in px over the exposure, or None: a walk drawn at random, as in a still)
    blurred by the camera's move plus their own."""
    cam = _direction(rng.uniform(0, 2 * np.pi), rng.uniform(0, CAMERA_BLUR_PX))
    out = cv2.filter2D(img, -1, line_kernel(*cam))
    h_img, w_img = img.shape[:2]
    for (x, y, w, h), move in people:
        if move is None:   # sideways, give or take 15 degrees, at a random angle to the line of sight
            angle = rng.uniform(-np.pi / 12, np.pi / 12) + (np.pi if rng.random() < 0.5 else 0.0)
            move = _direction(angle, WALK_BLUR_FACES * w * abs(np.sin(rng.uniform(0, np.pi))))
        kernel = line_kernel(cam[0] + move[0], cam[1] + move[1])
        pad = kernel.shape[0]
        # The person: head and shoulders around the face; blurred with a margin, blended in softly.
        x0, y0 = max(0, x - w - pad), max(0, y - w - pad)
        x1, y1 = min(w_img, x + 2 * w + pad), min(h_img, y + 3 * w + pad)
        if x1 <= x0 or y1 <= y0:
            continue
        region = cv2.filter2D(img[y0:y1, x0:x1], -1, kernel).astype(np.float32)
        mask = np.zeros(region.shape[:2], np.float32)
        cv2.ellipse(mask, (x + w // 2 - x0, y + h - y0), (int(w * 1.3), int(h * 1.6)), 0, 0, 360, 1.0, -1)
        k = max(3, int(w * 0.4) | 1)
        alpha = cv2.GaussianBlur(mask, (k, k), 0)[..., None]
        out[y0:y1, x0:x1] = np.clip(out[y0:y1, x0:x1] * (1 - alpha) + region * alpha, 0, 255).astype(np.uint8)
    return out


def infrared(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Night mode: the IR-cut filter out, the illuminator on: grey, skin and fabric bright,
    flat contrast, sensor noise, a softer lens."""
    grey = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY).astype(np.float32)
    grey = 40 + 0.6 * grey + rng.normal(0, 6, grey.shape)
    grey = cv2.GaussianBlur(np.clip(grey, 0, 255).astype(np.uint8), (3, 3), 0)
    return cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR)


def apply_variant(img: np.ndarray, variant: str, rng: np.random.Generator, people=()) -> np.ndarray:
    """``people``: (face box, move in px over the exposure or None), for the motion blur."""
    if variant == "motion-blur":
        return motion_blur(img, rng, people)
    if variant == "infrared":
        return infrared(img, rng)
    return img


@dataclass
class Scene:
    image: np.ndarray
    faces: list[tuple[int, int, int, int]]   # ground truth (x, y, w, h); empty: face-free
    variant: str


def _place(rng, sizes, taken) -> list[tuple[int, int]]:
    """Top-left corners for faces of these widths, people not overlapping."""
    spots = []
    for s in sizes:
        for _ in range(200):
            x = int(rng.integers(int(s * 1.2), WIDTH - int(s * 2.2)))
            y = int(rng.integers(TOP + int(s * 0.5), HEIGHT - int(s * 2.4)))
            box = (x - int(s * 1.2), y - int(s * 0.4), x + int(s * 2.2), y + int(s * 2.8))
            if all(box[2] < o[0] or o[2] < box[0] or box[3] < o[1] or o[3] < box[1] for o in taken):
                taken.append(box)
                spots.append((x, y))
                break
    return spots


class Scenes:
    """Frames for the benchmark and the tests, all from one seed."""

    def __init__(self, seed: int = 2026):
        self.rng = np.random.default_rng(seed)
        self.faces, self.non_faces = lfw()
        self.astronaut, self.astronaut_box = astronaut()
        self.textures = textures()

    def still(self, count: int, variant: str, *, faces: bool = True) -> Scene:
        """A frame with ``count`` people: faces, or (``faces=False``) non-face crops."""
        rng = self.rng
        img = background(rng, self.textures)
        sizes = [face_width(rng) for _ in range(count)]
        boxes = []
        for s, (x, y) in zip(sizes, _place(rng, sizes, []), strict=False):
            if faces and rng.random() < 0.1:
                boxes.append(paste_person(img, self.astronaut, x, y, s, rng, self.astronaut_box))
            elif faces:
                crop = self.faces[int(rng.integers(len(self.faces)))]
                boxes.append(paste_person(img, cv2.flip(crop, 1) if rng.random() < 0.5 else crop, x, y, s, rng))
            else:
                paste_patch(img, self.non_faces[int(rng.integers(len(self.non_faces)))], x, y, s, rng)
        return Scene(apply_variant(img, variant, rng, [(b, None) for b in boxes]), boxes, variant)

    def walk(self, frames: int, count: int, variant: str, *, faces: bool = True) -> list[Scene]:
        """``frames`` frames of ``count`` people crossing a street. A person walking at
        1.4 m/s across a wide lens moves about a quarter of their face's width per frame
        at 30 frames/s; the speed here is up to that, in any direction. ``faces=False``:
        non-face crops (a poster, a bag) move instead, and no frame holds a face."""
        rng = self.rng
        base = background(rng, self.textures)
        sizes = [face_width(rng) for _ in range(count)]
        people = []
        for s, (x, y) in zip(sizes, _place(rng, sizes, []), strict=False):
            angle = rng.uniform(0, 2 * np.pi)
            speed = rng.uniform(0, 0.25) * s
            crops = self.faces if faces else self.non_faces
            crop = crops[int(rng.integers(len(crops)))]
            seed = int(rng.integers(1 << 30))
            people.append((s, x, y, speed * np.cos(angle), speed * np.sin(angle) * 0.3, crop, seed))
        scenes = []
        for i in range(frames):
            img = base.copy()
            boxes, moves = [], []
            for s, x, y, vx, vy, crop, seed in people:
                px = int(np.clip(x + vx * i, s * 1.2, WIDTH - s * 2.2))
                py = int(np.clip(y + vy * i, TOP + s * 0.5, HEIGHT - s * 2.4))
                if faces:
                    boxes.append(paste_person(img, crop, px, py, s, np.random.default_rng(seed)))
                else:
                    paste_patch(img, crop, px, py, s, np.random.default_rng(seed))
                    boxes.append((px, py, s, s))
                moves.append((vx, vy))   # exposure = frame time (1/30 s): blurred by a frame's move
            scenes.append(Scene(apply_variant(img, variant, np.random.default_rng(i), list(zip(boxes, moves, strict=True))),
                                boxes if faces else [], variant))
        return scenes
