"""Visemes and a procedural talking face: IPA phonemes -> mouth shapes -> rendered frames.

Three steps, each a pure function:

1. :func:`visemes_of` maps one IPA phoneme (as espeak-ng reports it, e.g. ``"aɪ"``, ``"ɜː"``) to viseme
   classes (:data:`VISEMES`), each with a target :class:`MouthShape`.
2. :func:`mouth_track` turns timed phonemes into one mouth shape per video frame. Every phoneme holds its
   target over the middle of its interval (bilabials and labiodentals longer, so that lips really close)
   and the mouth moves between targets with smoothstep ease-in/out, so neighbouring phonemes blend
   (coarticulation). ``h`` and the glottal stop have no target of their own: the mouth glides through them.
3. :func:`render_face` draws one frame of a :class:`FaceIdentity` (skin, face shape, hair, eyes, background,
   lighting, head motion, blinks) with PIL, the mouth following a :class:`MouthShape`: lips, dark interior,
   upper teeth and tongue. It also returns the face box, so synthetic data needs no face detector.

Frames are drawn at twice the output size and downsampled, so edges are anti-aliased and the head moves
by sub-pixel amounts.
"""

from __future__ import annotations

import functools
import itertools
import math
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from PIL import Image, ImageDraw

FRAME_SIZE = 160  # default output frame side (pixels)
FPS = 25
_SUPERSAMPLE = 2
_INTERIOR = (38, 8, 14)  # dark mouth interior
_TEETH = (236, 232, 220)
_TONGUE = (196, 72, 82)
_EYE_WHITE = (240, 238, 232)


class MouthShape(NamedTuple):
    """Mouth parameters, each in [0, 1].

    ``opening`` is the vertical gap between the lips, ``width`` the horizontal stretch (0 narrow, 1 spread),
    ``rounding`` the lip protrusion (round, narrow opening), ``teeth`` and ``tongue`` how much of the upper
    teeth and the tongue show inside an open mouth.
    """

    opening: float
    width: float
    rounding: float
    teeth: float
    tongue: float


# Viseme class -> target mouth shape.
VISEMES: dict[str, MouthShape] = {
    "rest": MouthShape(0.03, 0.45, 0.05, 0.0, 0.0),
    "bilabial": MouthShape(0.0, 0.42, 0.1, 0.0, 0.0),  # p b m: lips pressed together
    "labiodental": MouthShape(0.12, 0.5, 0.0, 1.0, 0.0),  # f v: upper teeth on the lower lip
    "dental_alveolar": MouthShape(0.25, 0.55, 0.05, 1.0, 0.5),  # t d s z n l θ ð
    "postalveolar": MouthShape(0.3, 0.3, 0.65, 1.0, 0.0),  # ʃ ʒ tʃ dʒ: protruded lips, teeth together
    "velar": MouthShape(0.35, 0.5, 0.1, 0.5, 0.3),  # k g ŋ
    "open": MouthShape(1.0, 0.6, 0.1, 0.5, 0.4),  # a ɑ æ ʌ
    "mid": MouthShape(0.55, 0.6, 0.0, 0.7, 0.3),  # e ɛ ə ɜ
    "close": MouthShape(0.22, 0.9, 0.0, 1.0, 0.1),  # i ɪ j: spread lips
    "rounded": MouthShape(0.4, 0.15, 1.0, 0.0, 0.0),  # o ɔ u ʊ w
    "r": MouthShape(0.3, 0.35, 0.55, 0.3, 0.0),  # ɹ r
}

# Fraction of a phoneme's interval spent at its target; the rest is transition to the neighbours.
_HOLD = {"bilabial": 0.8, "labiodental": 0.6, "rest": 0.6}
_DEFAULT_HOLD = 0.4
_LAST_PHONEME_MS = 150  # the last phoneme lasts this long (espeak-ng gives start times only)

_PHONEMES: dict[str, str] = {
    "": "rest",
    "_": "rest",
    **dict.fromkeys(["p", "b", "m"], "bilabial"),
    **dict.fromkeys(["f", "v"], "labiodental"),
    **dict.fromkeys(["t", "d", "s", "z", "n", "l", "θ", "ð", "ɾ", "ɬ", "ɫ"], "dental_alveolar"),
    **dict.fromkeys(["ʃ", "ʒ", "tʃ", "dʒ", "ç"], "postalveolar"),
    **dict.fromkeys(["k", "g", "ɡ", "ŋ", "x"], "velar"),
    **dict.fromkeys(["a", "ɑ", "æ", "ʌ", "ɒ", "ɶ"], "open"),
    **dict.fromkeys(["e", "ɛ", "ə", "ɜ", "ɚ", "ɝ", "ɘ", "ɞ", "ɐ"], "mid"),
    **dict.fromkeys(["i", "ɪ", "j", "ᵻ", "ɨ"], "close"),
    **dict.fromkeys(["o", "ɔ", "u", "ʊ", "w", "ʉ", "ɵ", "y", "ʏ", "ø", "œ", "ɯ"], "rounded"),
    **dict.fromkeys(["ɹ", "r", "ɻ", "ʁ", "ʀ"], "r"),
}
_GLIDE_THROUGH = {"h", "ɦ", "ʔ"}  # no lip target: the mouth keeps moving between its neighbours
_MARKS = {"ː", "ˑ", "ˈ", "ˌ", "'", ",", "%", "=", "-"}  # length, stress and espeak-ng markers


def visemes_of(ipa: str) -> list[str]:
    """Viseme classes of one IPA phoneme, in time order.

    Diphthongs give two (``"aɪ"`` -> ``["open", "close"]``); ``h`` and ``ʔ`` give none (the mouth glides
    through them); a pause (``""``) gives ``["rest"]``; an unknown sound gives ``["mid"]``.
    """
    base = "".join(c for c in unicodedata.normalize("NFD", ipa) if c not in _MARKS and not unicodedata.combining(c))
    if base in _PHONEMES:
        return [_PHONEMES[base]]
    if base in _GLIDE_THROUGH:
        return []
    classes: list[str] = []
    for c in base:
        cls = _PHONEMES.get(c)
        if cls is not None and (not classes or classes[-1] != cls):
            classes.append(cls)
    return classes or ["mid"]


def mouth_track(events: Sequence[tuple[str, float]], n_frames: int, fps: float = FPS) -> np.ndarray:
    """Mouth shape per video frame from timed phonemes.

    Frame ``i`` shows the mouth at the centre of its interval, ``(i + 0.5) / fps`` seconds. Before the first
    phoneme and after the last the mouth is at rest.

    Args:
        events: ``(ipa, start_ms)`` pairs in time order, e.g. :attr:`mumo.data.av.espeak.Speech.phonemes`; each
            phoneme lasts until the next one starts.
        n_frames: number of frames.
        fps: frames per second.

    Returns:
        (n_frames, 5) float32, columns in :class:`MouthShape` field order.
    """
    if n_frames < 0:
        raise ValueError(f"n_frames must be >= 0, not {n_frames}")
    end_ms = 1000.0 * n_frames / fps
    times, targets = [0.0], [VISEMES["rest"]]
    starts = [float(ms) for _, ms in events]
    if any(b < a for a, b in itertools.pairwise(starts)):
        raise ValueError("phoneme events must be in time order")
    for k, ((ipa, _), start) in enumerate(zip(events, starts, strict=True)):
        stop = starts[k + 1] if k + 1 < len(starts) else start + _LAST_PHONEME_MS
        parts = visemes_of(ipa)
        if stop <= start or not parts:
            continue
        step = (stop - start) / len(parts)
        for j, cls in enumerate(parts):
            lo, hi = start + j * step, start + (j + 1) * step
            margin = (1.0 - _HOLD.get(cls, _DEFAULT_HOLD)) / 2 * (hi - lo)
            times += [lo + margin, hi - margin]
            targets += [VISEMES[cls], VISEMES[cls]]
    speech_end = starts[-1] + _LAST_PHONEME_MS if starts else 0.0
    times += [max(times[-1], speech_end) + 100.0, max(times[-1], speech_end, end_ms) + 200.0]  # back to rest
    targets += [VISEMES["rest"], VISEMES["rest"]]

    keys_t = np.asarray(times)  # (K,)
    keys_v = np.asarray(targets, dtype=np.float64)  # (K, 5)
    t = 1000.0 * (np.arange(n_frames) + 0.5) / fps  # (F,) frame centres in ms
    right = np.clip(np.searchsorted(keys_t, t, side="right"), 1, len(keys_t) - 1)  # (F,)
    t0, t1 = keys_t[right - 1], keys_t[right]
    u = np.clip((t - t0) / np.maximum(t1 - t0, 1e-9), 0.0, 1.0)
    ease = (u * u * (3.0 - 2.0 * u))[:, None]  # smoothstep: zero velocity at every target
    return (keys_v[right - 1] + (keys_v[right] - keys_v[right - 1]) * ease).astype(np.float32)  # (F, 5)


# --------------------------------------------------------------------------------------------------
# Faces
# --------------------------------------------------------------------------------------------------

_SKIN_TONES = (  # light to dark
    (255, 224, 196),
    (241, 194, 167),
    (224, 172, 138),
    (198, 140, 105),
    (171, 116, 82),
    (141, 94, 66),
    (112, 76, 56),
)
_HAIR_COLOURS = ((28, 24, 22), (66, 44, 30), (110, 76, 46), (196, 160, 96), (150, 62, 30), (150, 150, 150))
_IRIS_COLOURS = ((70, 45, 25), (40, 90, 140), (70, 110, 60), (110, 90, 60))


def _jitter(rng: np.random.Generator, rgb: Sequence[int], amount: int) -> tuple[int, int, int]:
    return tuple(int(v) for v in np.clip(np.asarray(rgb) + rng.integers(-amount, amount + 1, 3), 0, 255))  # type: ignore[return-value]


@dataclass(frozen=True)
class FaceIdentity:
    """What stays the same across the frames of one synthetic person. Lengths are fractions of the frame side."""

    skin: tuple[int, int, int]
    lips: tuple[int, int, int]
    hair: tuple[int, int, int]
    hair_style: int  # 0 bald, 1 short, 2 long
    iris: tuple[int, int, int]
    shirt: tuple[int, int, int]
    background: tuple[tuple[int, int, int], tuple[int, int, int]]  # gradient from, to
    gradient: str  # "vertical", "horizontal" or "diagonal"
    face_width: float  # half-width of the face ellipse
    face_aspect: float  # half-height / half-width
    center: tuple[float, float]  # face centre (x, y)
    eye_spacing: float  # eye distance from the centre line, in face half-widths
    eye_size: float  # eye half-width, in face half-widths
    mouth_width: float  # mouth half-width at rest, in face half-widths
    lip_thickness: float  # in face half-widths
    brightness: float  # overall light level (1 = as drawn)
    light: float  # left-right light slope: -0.3 (lit from the left) to 0.3 (from the right)
    sway: float  # head sway amplitude (fraction of the frame)
    sway_hz: float
    phase: float  # of the head motion, radians
    blink_period_s: float
    blink_phase: float  # in [0, 1)

    @classmethod
    def sample(cls, rng: np.random.Generator) -> FaceIdentity:
        """A random identity; the same generator state gives the same identity."""
        skin = _jitter(rng, _SKIN_TONES[int(rng.integers(len(_SKIN_TONES)))], 10)
        lips = tuple(
            int(np.clip(c * f + a, 0, 255)) for c, f, a in zip(skin, (0.85, 0.55, 0.58), (25, 5, 10), strict=True)
        )
        width = float(rng.uniform(0.28, 0.33))
        aspect = float(rng.uniform(1.18, 1.36))
        half_height = width * aspect
        cy_max = max(0.5, 1.0 - half_height - 0.02)
        return cls(
            skin=skin,
            lips=lips,  # type: ignore[arg-type]
            hair=_jitter(rng, _HAIR_COLOURS[int(rng.integers(len(_HAIR_COLOURS)))], 8),
            hair_style=int(rng.integers(3)),
            iris=_jitter(rng, _IRIS_COLOURS[int(rng.integers(len(_IRIS_COLOURS)))], 10),
            shirt=tuple(int(v) for v in rng.integers(30, 226, 3)),  # type: ignore[arg-type]
            background=(
                tuple(int(v) for v in rng.integers(40, 236, 3)),  # type: ignore[arg-type]
                tuple(int(v) for v in rng.integers(40, 236, 3)),
            ),
            gradient=("vertical", "horizontal", "diagonal")[int(rng.integers(3))],
            face_width=width,
            face_aspect=aspect,
            center=(float(rng.uniform(0.47, 0.53)), float(rng.uniform(0.5, cy_max))),
            eye_spacing=float(rng.uniform(0.36, 0.46)),
            eye_size=float(rng.uniform(0.14, 0.19)),
            mouth_width=float(rng.uniform(0.3, 0.4)),
            lip_thickness=float(rng.uniform(0.05, 0.08)),
            brightness=float(rng.uniform(0.85, 1.1)),
            light=float(rng.uniform(-0.3, 0.3)),
            sway=float(rng.uniform(0.003, 0.015)),
            sway_hz=float(rng.uniform(0.15, 0.5)),
            phase=float(rng.uniform(0, 2 * math.pi)),
            blink_period_s=float(rng.uniform(2.5, 5.5)),
            blink_phase=float(rng.uniform(0, 1)),
        )


def _shade(rgb: Sequence[int], factor: float) -> tuple[int, int, int]:
    return tuple(int(min(255, max(0, round(c * factor)))) for c in rgb)  # type: ignore[return-value]


def _background(identity: FaceIdentity, side: int) -> Image.Image:
    """A fresh copy of the identity's gradient background (the gradient itself is cached: it never changes)."""
    return _gradient(identity.background, identity.gradient, side).copy()


@functools.lru_cache(maxsize=16)
def _gradient(colours: tuple[tuple[int, int, int], tuple[int, int, int]], kind: str, side: int) -> Image.Image:
    ramp = np.linspace(0.0, 1.0, side, dtype=np.float32)
    if kind == "vertical":
        mix = np.broadcast_to(ramp[:, None], (side, side))
    elif kind == "horizontal":
        mix = np.broadcast_to(ramp[None, :], (side, side))
    else:
        mix = (ramp[:, None] + ramp[None, :]) / 2
    a, b = (np.asarray(c, dtype=np.float32) for c in colours)
    rgb = a + (b - a) * mix[..., None]  # (S, S, 3)
    return Image.fromarray(rgb.round().astype(np.uint8))


def _lip_contour(
    cx: float, cy: float, half_w: float, up: float, down: float, sharp: float
) -> list[tuple[float, float]]:
    """A closed superellipse-like contour: ``up``/``down`` are the (positive) extents above/below ``cy``.

    ``sharp`` in (0, 1]: 1 is an ellipse, smaller values give the pointed corners of spread lips.
    """
    pts = []
    for k in range(36):
        a = 2 * math.pi * k / 36
        c, s = math.cos(a), math.sin(a)
        x = cx + half_w * math.copysign(abs(c) ** sharp, c)
        y = cy + (down if s > 0 else up) * math.copysign(abs(s) ** (2 - sharp), s)
        pts.append((x, y))
    return pts


def _blink(identity: FaceIdentity, t: float) -> float:
    """Eyelid closure in [0, 1] at time ``t`` (s): a 0.15 s blink every ``blink_period_s``."""
    phase = (t / identity.blink_period_s + identity.blink_phase) % 1.0
    u = phase * identity.blink_period_s / 0.15
    return max(0.0, 1.0 - abs(2.0 * u - 1.0)) if u < 1.0 else 0.0


def render_face(
    params: MouthShape | Sequence[float] | np.ndarray,
    identity: FaceIdentity,
    frame_index: int,
    rng: np.random.Generator | None = None,
    *,
    size: int = FRAME_SIZE,
    fps: float = FPS,
) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """Draw one frame of ``identity`` with the mouth in shape ``params``.

    Head sway/nod and blinks are smooth functions of ``frame_index / fps``, so consecutive frames agree;
    ``rng``, when given, adds per-frame jitter (sub-pixel head position, ±1 % light flicker).

    Args:
        params: a :class:`MouthShape` or a row of :func:`mouth_track`.
        size: side of the square output frame.

    Returns:
        The (size, size, 3) uint8 frame and the face box ``(x0, y0, x1, y1)`` in pixels (``x1``, ``y1``
        exclusive, clipped to the frame): the face ellipse from ear line to ear line, forehead to chin.
    """
    mouth = MouthShape(*(float(np.clip(v, 0.0, 1.0)) for v in params))
    t = frame_index / fps
    jitter = rng.normal(0.0, 0.1, 2) / size if rng is not None else np.zeros(2)
    flicker = 1.0 + (float(rng.uniform(-0.01, 0.01)) if rng is not None else 0.0)

    side = size * _SUPERSAMPLE
    u = side  # fractions of the frame -> supersampled pixels
    w = 2 * math.pi * identity.sway_hz * t + identity.phase
    cx = (identity.center[0] + identity.sway * math.sin(w) + jitter[0]) * u
    cy = (identity.center[1] + 0.6 * identity.sway * math.sin(1.7 * w + 1.0) + jitter[1]) * u
    rx = identity.face_width * u
    ry = rx * identity.face_aspect
    skin = identity.skin

    image = _background(identity, side)
    draw = ImageDraw.Draw(image)
    # behind the face: long hair, shoulders, neck, ears
    if identity.hair_style == 2:
        draw.rounded_rectangle(
            (cx - 1.22 * rx, cy - 1.12 * ry, cx + 1.22 * rx, cy + 0.85 * ry), radius=0.9 * rx, fill=identity.hair
        )
    draw.ellipse((cx - 2.2 * rx, cy + 0.95 * ry, cx + 2.2 * rx, cy + 2.6 * ry), fill=identity.shirt)
    draw.rectangle((cx - 0.45 * rx, cy + 0.3 * ry, cx + 0.45 * rx, cy + 1.2 * ry), fill=_shade(skin, 0.82))
    for sgn in (-1, 1):
        ex = cx + sgn * 0.97 * rx
        draw.ellipse((ex - 0.13 * rx, cy - 0.2 * ry, ex + 0.13 * rx, cy + 0.12 * ry), fill=_shade(skin, 0.9))
    # face, hair on top of the head
    draw.ellipse((cx - rx, cy - ry, cx + rx, cy + ry), fill=skin)
    if identity.hair_style in (1, 2):
        draw.chord((cx - 1.04 * rx, cy - 1.1 * ry, cx + 1.04 * rx, cy - 0.2 * ry), 180, 360, fill=identity.hair)

    # eyes, eyebrows
    closure = _blink(identity, t)
    eye_y = cy - 0.14 * ry
    ew = identity.eye_size * rx
    eh = 0.55 * ew
    for sgn in (-1, 1):
        ex = cx + sgn * identity.eye_spacing * rx
        draw.ellipse((ex - ew, eye_y - eh, ex + ew, eye_y + eh), fill=_EYE_WHITE)
        ir = 0.85 * eh
        draw.ellipse((ex - ir, eye_y - ir, ex + ir, eye_y + ir), fill=identity.iris)
        draw.ellipse((ex - 0.45 * ir, eye_y - 0.45 * ir, ex + 0.45 * ir, eye_y + 0.45 * ir), fill=(16, 14, 14))
        if closure > 0:  # upper eyelid coming down
            lid = eye_y - eh + 2 * eh * closure
            draw.rectangle((ex - ew - 1, eye_y - eh - 1, ex + ew + 1, lid), fill=_shade(skin, 0.93))
        brow_y = eye_y - 2.1 * eh
        draw.line(
            (ex - sgn * 1.1 * ew, brow_y + 0.3 * eh, ex + sgn * 1.15 * ew, brow_y - 0.15 * eh),
            fill=_shade(identity.hair, 0.8),
            width=max(1, round(0.25 * eh)),
        )
    # nose
    nose_y = cy + 0.2 * ry
    draw.line((cx, cy - 0.05 * ry, cx + 0.05 * rx, nose_y), fill=_shade(skin, 0.8), width=_SUPERSAMPLE)
    for sgn in (-1, 1):
        nx = cx + sgn * 0.09 * rx
        draw.ellipse((nx - 0.05 * rx, nose_y - 0.02 * ry, nx + 0.05 * rx, nose_y + 0.025 * ry), fill=_shade(skin, 0.7))

    _draw_mouth(image, draw, mouth, identity, cx, cy + 0.5 * ry, rx)

    small = image.resize((size, size), Image.Resampling.BOX)
    x = np.arange(size, dtype=np.float32)
    light = identity.brightness * flicker * (1.0 + identity.light * (x - cx / _SUPERSAMPLE) / size)  # (W,)
    frame = np.asarray(small, dtype=np.float32) * light[None, :, None]  # (H, W, 3)
    frame = np.clip(frame, 0, 255).round().astype(np.uint8)
    s = _SUPERSAMPLE
    box = (
        max(0, math.floor((cx - rx) / s)),
        max(0, math.floor((cy - ry) / s)),
        min(size, math.ceil((cx + rx) / s)),
        min(size, math.ceil((cy + ry) / s)),
    )
    return frame, box


def _draw_mouth(
    image: Image.Image,
    draw: ImageDraw.ImageDraw,
    mouth: MouthShape,
    identity: FaceIdentity,
    mx: float,
    my: float,
    rx: float,
) -> None:
    """Lips, and inside an open mouth the dark interior, upper teeth and tongue; (mx, my) is the lip line."""
    half_w = identity.mouth_width * rx * (0.8 + 0.45 * mouth.width) * (1.0 - 0.3 * mouth.rounding)
    gap = 0.24 * rx * mouth.opening  # half the interior height
    lip = identity.lip_thickness * rx * (1.0 + 0.4 * mouth.rounding)  # rounded lips protrude, look thicker
    sharp = 0.55 + 0.45 * mouth.rounding  # spread lips have pointed corners, rounded ones are an ellipse
    centre = my + 0.35 * gap  # the jaw drops: the opening grows mostly downwards

    draw.polygon(
        _lip_contour(mx, centre, half_w + 0.3 * lip, gap + 0.9 * lip, gap + 1.15 * lip, sharp), fill=identity.lips
    )
    if gap < 0.25:  # closed: a thin seam between the lips
        draw.line((mx - half_w, centre, mx + half_w, centre), fill=_shade(identity.lips, 0.6), width=1)
        return
    inner_w = half_w * (0.92 - 0.1 * mouth.rounding)
    inner = _lip_contour(mx, centre, inner_w, gap, gap, sharp)
    x0, y0 = math.floor(mx - inner_w) - 1, math.floor(centre - gap) - 1
    x1, y1 = math.ceil(mx + inner_w) + 2, math.ceil(centre + gap) + 2
    mask = Image.new("L", (x1 - x0, y1 - y0), 0)
    ImageDraw.Draw(mask).polygon([(x - x0, y - y0) for x, y in inner], fill=255)
    image.paste(_INTERIOR, (x0, y0, x1, y1), mask)

    def paste_inside(colour: tuple[int, int, int], shape: str, bbox: tuple[float, float, float, float]) -> None:
        part = Image.new("L", mask.size, 0)
        box = (bbox[0] - x0, bbox[1] - y0, bbox[2] - x0, bbox[3] - y0)
        getattr(ImageDraw.Draw(part), shape)(box, fill=255)
        image.paste(colour, (x0, y0, x1, y1), Image.fromarray(np.minimum(np.asarray(part), np.asarray(mask))))

    if mouth.tongue > 0.05:
        th = gap * 0.9 * mouth.tongue
        paste_inside(_TONGUE, "ellipse", (mx - 0.7 * inner_w, centre + gap - th, mx + 0.7 * inner_w, centre + gap + th))
    if mouth.teeth > 0.05:
        band = min(gap, 0.09 * rx) * mouth.teeth
        paste_inside(_TEETH, "rectangle", (mx - inner_w, centre - gap - 1, mx + inner_w, centre - gap + band))
