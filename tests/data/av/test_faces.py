import numpy as np
import pytest
import torch

cv2 = pytest.importorskip("cv2")
skimage_data = pytest.importorskip("skimage.data")

from mumo.data.av.faces import (  # noqa: E402
    FaceTrack,
    HaarFaceDetector,
    crop_faces,
    lower_half,
    smooth_boxes,
    track_faces,
)
from mumo.errors import MumoError  # noqa: E402


@pytest.fixture(scope="module")
def astronaut():
    return skimage_data.astronaut()  # (512, 512, 3) uint8; the face spans about x 177-272, y 66-161


@pytest.fixture(scope="module")
def detector():
    return HaarFaceDetector()


def _skin_fraction(img: np.ndarray) -> float:
    """Share of pixels passing the Kovac et al. RGB skin rule."""
    r, g, b = (img[..., i].astype(int) for i in range(3))
    skin = (r > 95) & (g > 40) & (b > 20) & (r > g) & (r > b) & (r - np.minimum(g, b) > 15)
    return float(skin.mean())


def test_haar_finds_the_astronauts_face(astronaut, detector):
    boxes = detector.detect(astronaut)
    assert len(boxes) == 1
    x0, y0, x1, y1, score = boxes[0]
    assert 190 < (x0 + x1) / 2 < 260 and 80 < (y0 + y1) / 2 < 150  # centre on the face (nose at ~225, 115)
    assert 160 < x0 < x1 < 290 and 45 < y0 < y1 < 185 and 60 < x1 - x0 < 130
    assert score > 0


def test_largest_face_comes_first(astronaut, detector):
    canvas = np.zeros((512, 768, 3), np.uint8)
    canvas[:, :512] = astronaut
    canvas[:256, 512:] = cv2.resize(astronaut, (256, 256), interpolation=cv2.INTER_AREA)
    boxes = detector.detect(canvas)
    assert len(boxes) == 2
    areas = [(b[2] - b[0]) * (b[3] - b[1]) for b in boxes]
    assert areas[0] > areas[1] and boxes[0][0] < 512 <= boxes[1][0]


def test_no_face_gives_empty_list(detector):
    assert detector.detect(np.full((120, 160, 3), 128, np.uint8)) == []


def test_crop_is_mostly_skin_and_lower_half_shape(astronaut, detector):
    frames = torch.from_numpy(np.stack([astronaut, astronaut]))  # (2, 512, 512, 3)
    box = torch.tensor(detector.detect(astronaut)[0][:4]).expand(2, 4)
    crops = crop_faces(frames, box)
    assert crops.shape == (2, 96, 96, 3) and crops.dtype == torch.uint8
    assert _skin_fraction(crops[0].numpy()) > 0.7  # measured 0.86
    assert _skin_fraction(astronaut[300:396, 400:496]) < 0.1  # the helmet is not (the pinkish backdrop is 0.45)
    assert lower_half(crops).shape == (2, 48, 96, 3)


def test_crop_pads_the_chin_and_clips_to_the_frame():
    frames = torch.zeros(1, 40, 40, 3, dtype=torch.uint8)
    frames[0, 30:, :, 0] = 255  # a red band from row 30 down
    crops = crop_faces(frames, torch.tensor([[0.0, 0.0, 40.0, 30.0]]), size=20, pad_bottom=10)
    assert crops[0, -1, :, 0].min() > 200 and crops[0, 0, :, 0].max() == 0  # band included at the bottom
    edge = crop_faces(frames, torch.tensor([[-5.0, 20.0, 50.0, 39.0]]), size=16)  # clipped, not an error
    assert edge.shape == (1, 16, 16, 3)
    with pytest.raises(MumoError, match="no face box"):
        crop_faces(frames, torch.tensor([[float("nan")] * 4]))
    with pytest.raises(MumoError, match="outside"):
        crop_faces(frames, torch.tensor([[50.0, 50.0, 60.0, 60.0]]))


class _ScriptedDetector:
    """Returns a fixed box per frame index (read from the frame's first pixel), or nothing."""

    def __init__(self, boxes: dict[int, tuple[float, float, float, float]]):
        self.boxes = boxes

    def detect(self, frame):
        i = int(frame[0, 0, 0])
        if i not in self.boxes:
            return []
        x0, y0, x1, y1 = self.boxes[i]
        return [(x0, y0, x1, y1, 1.0), (0.0, 0.0, 2.0, 2.0, 1.0)]  # largest first, then a small one


def _indexed_frames(t: int, side: int = 80) -> torch.Tensor:
    frames = torch.zeros(t, side, side, 3, dtype=torch.uint8)
    frames[:, 0, 0, 0] = torch.arange(t, dtype=torch.uint8)
    return frames


def test_track_policy_interpolates_short_gaps_and_drops_long_ones():
    missed = {3, 4, *range(10, 21)}
    boxes = {i: (float(i), 10.0, float(i) + 50, 60.0) for i in range(30) if i not in missed}
    track = track_faces(_indexed_frames(30), _ScriptedDetector(boxes), smooth=1, max_gap=5)
    assert isinstance(track, FaceTrack) and track.boxes.shape == (30, 4)
    assert track.interpolated.tolist() == [3, 4]
    assert track.dropped.tolist() == list(range(10, 21))
    assert track.missing.tolist() == [3, 4, *range(10, 21)]
    assert track.detected.sum() == 30 - 13
    assert track.segments() == [(0, 10), (21, 30)]
    assert track.boxes[3].tolist() == pytest.approx([3.0, 10.0, 53.0, 60.0])  # linear between frames 2 and 5
    assert track.boxes[4].tolist() == pytest.approx([4.0, 10.0, 54.0, 60.0])
    assert torch.isnan(track.boxes[10:21]).all() and not torch.isnan(track.boxes[21:]).any()
    with pytest.raises(MumoError, match="no face box"):
        crop_faces(_indexed_frames(30), track.boxes)
    start, end = track.segments()[1]
    assert crop_faces(_indexed_frames(30)[start:end], track.boxes[start:end], size=8).shape == (9, 8, 8, 3)


def test_track_edges_and_empty_clip():
    boxes = {i: (1.0, 1.0, 7.0, 7.0) for i in range(2, 12)}
    track = track_faces(_indexed_frames(20), _ScriptedDetector(boxes), max_gap=5)
    assert track.interpolated.tolist() == [0, 1]  # a short missing start holds the first detection
    assert track.dropped.tolist() == list(range(12, 20))  # 8 missing frames at the end: too long
    assert track.segments() == [(0, 12)]
    none = track_faces(_indexed_frames(4, side=8), _ScriptedDetector({}))
    assert none.dropped.tolist() == [0, 1, 2, 3] and none.segments() == []


def test_smoothing_reduces_jitter_and_keeps_segments_apart():
    g = torch.Generator().manual_seed(0)
    truth = torch.tensor([100.0, 50.0, 196.0, 146.0]).expand(60, 4)
    noisy = truth + 4.0 * torch.randn(60, 4, generator=g)
    detector = _ScriptedDetector({i: tuple(noisy[i].tolist()) for i in range(60)})
    smoothed = track_faces(_indexed_frames(60, side=8), detector, smooth=5).boxes
    jitter = lambda b: torch.diff(b, dim=0).abs().mean()  # noqa: E731
    assert jitter(smoothed) < 0.5 * jitter(noisy)
    assert (smoothed - truth).abs().mean() < 0.6 * (noisy - truth).abs().mean()

    split = torch.tensor([[0.0] * 4] * 3 + [[float("nan")] * 4] * 2 + [[90.0] * 4] * 3)
    out = smooth_boxes(split, 5)
    assert out[:3].eq(0).all() and out[5:].eq(90).all()  # no mixing across a dropped gap
    assert torch.isnan(out[3:5]).all()


def test_bad_arguments_raise():
    with pytest.raises(MumoError, match="uint8"):
        track_faces(torch.zeros(2, 8, 8, 3), _ScriptedDetector({}))
    with pytest.raises(MumoError, match="window"):
        smooth_boxes(torch.zeros(3, 4), 0)
    with pytest.raises(MumoError, match="cascade file not found"):
        HaarFaceDetector("/nonexistent/haarcascade_frontalface_default.xml")


def test_detection_stride_probes_every_kth_frame_and_interpolates_between():
    calls = []

    class Counting(_ScriptedDetector):
        def detect(self, frame):
            calls.append(int(frame[0, 0, 0]))
            return super().detect(frame)

    boxes = {i: (float(i), 10.0, float(i) + 50, 60.0) for i in range(21)}
    track = track_faces(_indexed_frames(21), Counting(boxes), smooth=1, stride=2)
    assert calls == list(range(0, 21, 2))  # every 2nd frame; 20 is also the last
    assert not torch.isnan(track.boxes).any() and track.missing.numel() == 0
    assert track.boxes[7].tolist() == pytest.approx([7.0, 10.0, 57.0, 60.0])  # interpolated between 6 and 8
    with pytest.raises(MumoError, match="stride"):
        track_faces(_indexed_frames(4), Counting(boxes), stride=0)
