"""Face detection, tracking and cropping for lip-sync data.

A detector maps one (H, W, 3) uint8 RGB frame to boxes ``(x0, y0, x1, y1, score)`` in pixels, largest face first.
``track_faces`` turns per-frame detections into one box per frame with an explicit gap policy, and
``crop_faces`` / ``lower_half`` cut the 96x96 face crops and the 48x96 mouth halves that Wav2Lip-style models use.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import torch

from mumo.errors import MumoError

Box = tuple[float, float, float, float, float]  # x0, y0, x1, y1, score (pixels; x1, y1 exclusive)


class FaceDetector(Protocol):
    def detect(self, frame: np.ndarray) -> list[Box]:
        """Boxes of the faces in an (H, W, 3) uint8 RGB frame, largest first; [] when there is none."""
        ...


def _import_cv2():
    try:
        import cv2
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise MumoError("face detection and cropping need OpenCV: pip install 'opencv-python-headless<5'") from exc
    return cv2


class HaarFaceDetector:
    """OpenCV's frontal-face Haar cascade (shipped with opencv-python 4.x, not 5.x).

    The score of a box is the number of neighbouring raw detections that support it (higher is surer).
    """

    def __init__(
        self,
        cascade_path: str | Path | None = None,
        *,
        scale_factor: float = 1.1,
        min_neighbors: int = 5,
        min_size: int = 30,
    ) -> None:
        cv2 = _import_cv2()
        if cascade_path is None:
            haar_dir = getattr(getattr(cv2, "data", None), "haarcascades", None)
            if haar_dir is None:
                raise MumoError(
                    f"OpenCV {cv2.__version__} ships no Haar cascades (5.x dropped them): "
                    "install 'opencv-python-headless<5' or pass cascade_path"
                )
            cascade_path = Path(haar_dir) / "haarcascade_frontalface_default.xml"
        cascade_path = Path(cascade_path)
        if not cascade_path.is_file():
            raise MumoError(
                f"Haar cascade file not found: {cascade_path} "
                "(OpenCV 5.x ships none: install 'opencv-python-headless<5' or pass cascade_path)"
            )
        self.cascade = cv2.CascadeClassifier(str(cascade_path))
        if self.cascade.empty():
            raise MumoError(f"cannot load the Haar cascade file: {cascade_path}")
        self.scale_factor = scale_factor
        self.min_neighbors = min_neighbors
        self.min_size = min_size

    def detect(self, frame: np.ndarray) -> list[Box]:
        cv2 = _import_cv2()
        frame = _frame_array(frame)
        gray = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)  # (H, W)
        rects, counts = self.cascade.detectMultiScale2(
            gray, scaleFactor=self.scale_factor, minNeighbors=self.min_neighbors, minSize=(self.min_size,) * 2
        )
        boxes = [
            (float(x), float(y), float(x + w), float(y + h), float(n))
            for (x, y, w, h), n in zip(np.reshape(rects, (-1, 4)), np.reshape(counts, (-1,)), strict=True)
        ]
        return sorted(boxes, key=lambda b: (b[2] - b[0]) * (b[3] - b[1]), reverse=True)


def _frame_array(frame: np.ndarray | torch.Tensor) -> np.ndarray:
    arr = frame.detach().cpu().numpy() if isinstance(frame, torch.Tensor) else np.asarray(frame)
    if arr.ndim != 3 or arr.shape[-1] != 3 or arr.dtype != np.uint8:
        raise MumoError(f"a frame must be (H, W, 3) uint8 RGB, not {tuple(arr.shape)} {arr.dtype}")
    return np.ascontiguousarray(arr)


def _frames_tensor(frames: np.ndarray | torch.Tensor) -> torch.Tensor:
    t = frames if isinstance(frames, torch.Tensor) else torch.from_numpy(np.asarray(frames))
    if t.ndim != 4 or t.shape[-1] != 3 or t.dtype != torch.uint8:
        raise MumoError(f"frames must be (T, H, W, 3) uint8 RGB, not {tuple(t.shape)} {t.dtype}")
    return t


@dataclass
class FaceTrack:
    """One face box per frame, with the gap policy applied.

    Attributes:
        boxes: (T, 4) float32 ``x0, y0, x1, y1``: smoothed, gaps filled; NaN on dropped frames.
        detected: (T,) bool, True where the detector found a face.
        interpolated: (K,) int64 indices of missed frames filled from neighbouring detections.
        dropped: (D,) int64 indices of missed frames in gaps too long to fill: skip them.
    """

    boxes: torch.Tensor
    detected: torch.Tensor
    interpolated: torch.Tensor
    dropped: torch.Tensor

    @property
    def missing(self) -> torch.Tensor:
        """(M,) indices of the frames where the detector found no face (interpolated or dropped)."""
        return torch.nonzero(~self.detected).flatten()

    def usable(self) -> torch.Tensor:
        """(T,) bool, True where the frame has a box (detected or interpolated)."""
        return ~torch.isnan(self.boxes).any(dim=1)

    def segments(self) -> list[tuple[int, int]]:
        """Half-open ``(start, end)`` runs of consecutive usable frames, in order."""
        return _runs(self.usable())


def _runs(mask: torch.Tensor) -> list[tuple[int, int]]:
    """Half-open (start, end) runs where the (T,) bool mask is True."""
    padded = torch.cat([torch.zeros(1, dtype=torch.int8), mask.to(torch.int8), torch.zeros(1, dtype=torch.int8)])
    edges = torch.diff(padded)  # +1 at a run start, -1 one past its end
    starts = torch.nonzero(edges == 1).flatten().tolist()
    ends = torch.nonzero(edges == -1).flatten().tolist()
    return list(zip(starts, ends, strict=True))


def fill_gaps(raw: torch.Tensor, max_gap: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Apply the gap policy to (T, 4) boxes that are NaN where no face was found.

    Gaps of at most ``max_gap`` frames between two detections are linearly interpolated; such short gaps at
    the start or end hold the nearest detection. Longer gaps stay NaN and are reported as dropped.

    Returns:
        (T, 4) filled boxes, (K,) interpolated indices, (D,) dropped indices.
    """
    boxes = raw.clone()
    n = boxes.shape[0]
    interpolated: list[int] = []
    dropped: list[int] = []
    for start, end in _runs(torch.isnan(raw).any(dim=1)):
        before, after = start - 1, end  # neighbouring detections, when in range
        if end - start > max_gap or (before < 0 and after >= n):
            dropped.extend(range(start, end))
            continue
        if before < 0:
            boxes[start:end] = raw[after]
        elif after >= n:
            boxes[start:end] = raw[before]
        else:
            w = torch.arange(1, end - start + 1, dtype=raw.dtype)[:, None] / (after - before)  # (gap, 1)
            boxes[start:end] = (1 - w) * raw[before] + w * raw[after]  # (gap, 4)
        interpolated.extend(range(start, end))
    return boxes, torch.tensor(interpolated, dtype=torch.long), torch.tensor(dropped, dtype=torch.long)


def smooth_boxes(boxes: torch.Tensor, window: int = 5) -> torch.Tensor:
    """Centred moving mean of (T, 4) boxes over ``window`` frames, inside each run of non-NaN boxes.

    The window shrinks at the ends of a run, and never reaches across a dropped gap. Wav2Lip averages a
    forward window of 5 frames; a centred one gives the same smoothing without shifting the box in time.
    """
    if window < 1:
        raise MumoError(f"smoothing window must be >= 1 frame, not {window}")
    out = boxes.clone()
    if window == 1:
        return out
    half_lo, half_hi = (window - 1) // 2, window // 2
    for start, end in _runs(~torch.isnan(boxes).any(dim=1)):
        seg = boxes[start:end].double()  # (L, 4)
        csum = torch.cat([torch.zeros(1, 4, dtype=seg.dtype), seg.cumsum(0)])  # (L + 1, 4)
        idx = torch.arange(end - start)
        lo, hi = (idx - half_lo).clamp(min=0), (idx + half_hi + 1).clamp(max=end - start)
        out[start:end] = ((csum[hi] - csum[lo]) / (hi - lo)[:, None]).to(boxes.dtype)  # (L, 4)
    return out


def track_faces(
    frames: np.ndarray | torch.Tensor,
    detector: FaceDetector,
    *,
    smooth: int = 5,
    max_gap: int = 5,
    stride: int = 1,
) -> FaceTrack:
    """Detect one face per frame (the first, i.e. largest, detection), fill short gaps and smooth the boxes.

    Policy: a gap of at most ``max_gap`` missed frames is filled (linear interpolation between the detections
    around it, or holding the nearest detection at the start or end of the clip); longer gaps are dropped:
    their boxes are NaN, ``crop_faces`` refuses them and ``FaceTrack.segments()`` splits around them.

    Args:
        frames: (T, H, W, 3) uint8 RGB.
        detector: any ``FaceDetector``.
        smooth: moving-mean window in frames (1 disables smoothing).
        max_gap: longest run of missed frames that is filled rather than dropped.
        stride: run the detector on every ``stride``-th frame (and the last) only; the frames between are
            interpolated like short gaps (a speed-up for long videos: the boxes are smoothed anyway).
            ``max_gap`` counts missed *detected* frames, so it is scaled by the stride.
    """
    frames = _frames_tensor(frames)
    if max_gap < 0:
        raise MumoError(f"max_gap must be >= 0, not {max_gap}")
    if stride < 1:
        raise MumoError(f"stride must be >= 1, not {stride}")
    n = frames.shape[0]
    raw = torch.full((n, 4), float("nan"), dtype=torch.float32)  # (T, 4)
    probed = torch.zeros(n, dtype=torch.bool)
    probed[::stride] = True
    probed[-1] = True
    for i in probed.nonzero().flatten().tolist():
        found = detector.detect(frames[i].numpy())
        if found:
            raw[i] = torch.tensor(found[0][:4], dtype=torch.float32)
    detected = ~torch.isnan(raw).any(dim=1)  # (T,)
    filled, interpolated, dropped = fill_gaps(raw, max_gap * stride + stride - 1)
    if stride > 1:  # frames between probes are interpolated, not missing
        detected = detected | (~probed & ~torch.isnan(filled).any(dim=1))
    return FaceTrack(boxes=smooth_boxes(filled, smooth), detected=detected, interpolated=interpolated, dropped=dropped)


def crop_faces(
    frames: np.ndarray | torch.Tensor, boxes: torch.Tensor, size: int = 96, pad_bottom: int = 10
) -> torch.Tensor:
    """Cut each frame's box (extended ``pad_bottom`` px down to keep the chin, clipped to the frame), resize.

    Args:
        frames: (T, H, W, 3) uint8 RGB.
        boxes: (T, 4) ``x0, y0, x1, y1`` in pixels, e.g. ``FaceTrack.boxes[start:end]`` for one segment.
        size: output side in pixels (resized with ``cv2.INTER_AREA``, aspect ratio not kept, as in Wav2Lip).
        pad_bottom: extra rows below the box.

    Returns:
        (T, size, size, 3) uint8 RGB crops.
    """
    cv2 = _import_cv2()
    frames = _frames_tensor(frames)
    boxes = torch.as_tensor(boxes, dtype=torch.float32)
    if boxes.shape != (frames.shape[0], 4):
        raise MumoError(f"boxes must be ({frames.shape[0]}, 4) to match the frames, not {tuple(boxes.shape)}")
    bad = torch.nonzero(~torch.isfinite(boxes).all(dim=1)).flatten().tolist()
    if bad:
        raise MumoError(f"no face box for frames {bad[:10]}{'...' if len(bad) > 10 else ''}: crop only usable segments")
    _, h, w, _ = frames.shape
    out = np.empty((frames.shape[0], size, size, 3), dtype=np.uint8)
    for i, (x0, y0, x1, y1) in enumerate(boxes.round().long().tolist()):
        x0, x1 = max(x0, 0), min(x1, w)
        y0, y1 = max(y0, 0), min(y1 + pad_bottom, h)
        if x1 <= x0 or y1 <= y0:
            raise MumoError(f"face box of frame {i} lies outside the {w}x{h} frame: {boxes[i].tolist()}")
        crop = frames[i, y0:y1, x0:x1].numpy()  # (h', w', 3)
        out[i] = cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA)  # (size, size, 3)
    return torch.from_numpy(out)


def lower_half(crops: torch.Tensor) -> torch.Tensor:
    """The mouth half of (T, S, S, 3) face crops: (T, S // 2, S, 3)."""
    if crops.ndim != 4:
        raise MumoError(f"crops must be (T, S, S, 3), not {tuple(crops.shape)}")
    return crops[:, crops.shape[1] // 2 :]
