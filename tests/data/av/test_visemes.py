import ctypes.util
import dataclasses

import numpy as np
import pytest

from mumo.data.av.visemes import VISEMES, FaceIdentity, MouthShape, mouth_track, render_face, visemes_of

FPS = 25
# frame i shows time (i + 0.5) * 40 ms: frames 5-9 fall in the "m" hold, frame 12 in the "a" hold
EVENTS = [("", 0), ("m", 200), ("a", 400), ("p", 600), ("ɑː", 800), ("", 1000)]


def _identities(n: int = 6) -> list[FaceIdentity]:
    return [FaceIdentity.sample(np.random.default_rng(k)) for k in range(n)]


def _dark_mouth_area(frame: np.ndarray, box: tuple[int, int, int, int]) -> int:
    """Pixels of the dark mouth interior: much darker than the skin in the lower-middle of the face box."""
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    region = frame[y0 + int(0.65 * h) : y0 + int(0.92 * h), x0 + w // 4 : x1 - w // 4].astype(np.float32)
    luma = region @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    return int((luma < 0.4 * np.median(luma)).sum())


@pytest.mark.parametrize(
    ("ipa", "classes"),
    [
        ("p", ["bilabial"]),
        ("b", ["bilabial"]),
        ("m", ["bilabial"]),
        ("f", ["labiodental"]),
        ("θ", ["dental_alveolar"]),
        ("t̪", ["dental_alveolar"]),
        ("tʃ", ["postalveolar"]),
        ("ŋ", ["velar"]),
        ("ɑː", ["open"]),
        ("ɜː", ["mid"]),
        ("iː", ["close"]),
        ("uː", ["rounded"]),
        ("ɹ", ["r"]),
        ("aɪ", ["open", "close"]),
        ("əʊ", ["mid", "rounded"]),
        ("oʊ", ["rounded"]),
        ("h", []),
        ("", ["rest"]),
        ("ǂ", ["mid"]),
    ],
)
def test_phonemes_map_to_visemes(ipa, classes):
    assert visemes_of(ipa) == classes


def test_viseme_targets_are_in_range_and_bilabials_close():
    for shape in VISEMES.values():
        assert all(0.0 <= v <= 1.0 for v in shape)
    assert VISEMES["bilabial"].opening == 0.0
    assert VISEMES["open"].opening > VISEMES["mid"].opening > VISEMES["close"].opening
    assert VISEMES["rounded"].rounding > 0.9 and VISEMES["rounded"].width < VISEMES["close"].width


def test_mouth_track_holds_targets_and_eases_between_them():
    track = mouth_track(EVENTS, 30, fps=FPS)
    assert track.shape == (30, 5) and track.dtype == np.float32
    assert track.min() >= 0.0 and track.max() <= 1.0
    opening = track[:, MouthShape._fields.index("opening")]
    assert np.allclose(track[0], VISEMES["rest"])  # before speech
    assert np.allclose(track[-1], VISEMES["rest"])  # after speech
    assert np.all(opening[5:10] < 0.01)  # "m": lips closed for its whole hold
    assert opening[12] == pytest.approx(1.0)  # "a"
    assert 0.05 < opening[10] < 0.95  # between "m" and "a": on the way, not a jump
    assert np.all(np.diff(opening[9:12]) > 0)  # opening monotonically
    assert opening[15] < 0.05  # "p" closes again
    # no events: rest throughout; events out of order are refused
    assert np.allclose(mouth_track([], 4), VISEMES["rest"])
    with pytest.raises(ValueError, match="time order"):
        mouth_track([("a", 100), ("m", 50)], 4)


def test_rendered_mouth_follows_the_viseme():
    for identity in _identities():
        open_frame, box = render_face(VISEMES["open"], identity, 0)
        closed_frame, closed_box = render_face(VISEMES["bilabial"], identity, 0)
        assert box == closed_box
        open_area, closed_area = _dark_mouth_area(open_frame, box), _dark_mouth_area(closed_frame, box)
        assert open_area > 120, identity
        assert closed_area <= 3, identity
        mid_area = _dark_mouth_area(render_face(VISEMES["mid"], identity, 0)[0], box)
        assert closed_area < mid_area < open_area


def test_rendered_frames_follow_the_phoneme_track():
    identity = _identities(1)[0]
    track = mouth_track(EVENTS, 30, fps=FPS)
    rng = np.random.default_rng(0)
    frames = [render_face(track[i], identity, i, rng) for i in range(30)]
    area = np.array([_dark_mouth_area(f, b) for f, b in frames])
    assert area[5:10].max() <= 3  # "m"
    assert area[12] > 120 and area[20] > 120  # "a", "ɑː"
    assert area[12] > 20 * max(1, area[7])


@pytest.mark.skipif(ctypes.util.find_library("espeak-ng") is None, reason="espeak-ng is not installed")
def test_rendered_frames_follow_espeak_phonemes():
    from mumo.data.av.espeak import synthesize

    speech = synthesize("Papa made a map.")
    n = int(np.ceil(speech.duration_s * FPS))
    track = mouth_track(speech.phonemes, n, fps=FPS)
    identity = _identities(2)[1]
    starts = [p.start_ms for p in speech.phonemes] + [1e9]
    centre_ms = (np.arange(n) + 0.5) * 1000 / FPS
    open_areas, closed_areas = [], []
    for i, t in enumerate(centre_ms):
        k = int(np.searchsorted(starts, t, side="right")) - 1
        if k < 0 or k >= len(speech.phonemes):
            continue
        ipa, start, stop = speech.phonemes[k].ipa, starts[k], starts[k + 1]
        central = start + 0.2 * (stop - start) <= t <= stop - 0.2 * (stop - start)
        if not central:
            continue
        frame, box = render_face(track[i], identity, i)
        if visemes_of(ipa) == ["open"]:
            open_areas.append(_dark_mouth_area(frame, box))
        elif visemes_of(ipa) == ["bilabial"]:
            closed_areas.append(_dark_mouth_area(frame, box))
            assert track[i, 0] < 0.05  # a frame inside a bilabial: (near) closed
    assert open_areas and closed_areas
    assert min(open_areas) > 5 * max(1, max(closed_areas))


def test_face_fills_the_frame_and_moves_a_little():
    for identity in _identities():
        frames = [render_face(VISEMES["rest"], identity, i) for i in range(0, 100, 5)]
        for frame, (x0, y0, x1, y1) in frames:
            assert frame.shape == (160, 160, 3) and frame.dtype == np.uint8
            assert 0 <= x0 < x1 <= 160 and 0 <= y0 < y1 <= 160
            assert x1 - x0 >= 80 and y1 - y0 >= 100  # the face is most of the frame
        boxes = np.array([b for _, b in frames])
        assert 0 < np.ptp(boxes, axis=0).max() <= 8  # small head motion


def test_rendering_is_deterministic_and_identities_differ():
    identity = _identities(1)[0]
    a, box_a = render_face(VISEMES["mid"], identity, 3, np.random.default_rng(1))
    b, box_b = render_face(VISEMES["mid"], identity, 3, np.random.default_rng(1))
    assert np.array_equal(a, b) and box_a == box_b
    assert FaceIdentity.sample(np.random.default_rng(5)) == FaceIdentity.sample(np.random.default_rng(5))
    other = dataclasses.replace(identity, skin=(112, 76, 56))
    assert not np.array_equal(a, render_face(VISEMES["mid"], other, 3, np.random.default_rng(1))[0])
    # a track row (np.ndarray) works as well as a MouthShape
    c, _ = render_face(np.asarray(VISEMES["mid"], dtype=np.float32), identity, 3, np.random.default_rng(1))
    assert np.array_equal(a, c)
