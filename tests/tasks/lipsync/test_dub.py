"""Dubbing with a tiny trained generator on real files: a still image or a short / long video of a real face
(scikit-image's astronaut) + speech -> an MP4 as long as the speech (repeated, ping-pong looped or cut, checked
by a frame-index marker); the feathered paste-back, frames without a face, and streaming in chunks."""

from __future__ import annotations

import importlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from mumo.data.av.audio import MelFrontEnd, save_wav
from mumo.data.av.paste import blend_mask, crop_box, paste_face, ping_pong_indices
from mumo.data.av.video import read_video, write_video
from mumo.errors import MumoError
from tests.data.av.test_video import count_decoded
from tests.tasks.lipsync.test_lipsync_evaluate import generator_run, layout, scorer_run  # noqa: F401 (fixtures)
from tests.tasks.lipsync.test_lipsync_train import expert_run  # noqa: F401 (a fixture)

skdata = pytest.importorskip("skimage.data")
pytest.importorskip("cv2")

SR = 16000
MARK = 32  # the frame-index marker: a flat MARK x MARK block in the top-left corner, away from the face


def face_image() -> np.ndarray:
    """(256, 256, 3) uint8: the astronaut at half size (Haar finds her face at about x 88-136, y 33-80)."""
    return np.ascontiguousarray(skdata.astronaut()[::2, ::2])


def marked(i: int, step: int = 8) -> np.ndarray:
    """The face with frame index ``i`` written as the marker's grey level 10 + step * i."""
    img = face_image().copy()
    img[:MARK, :MARK] = 10 + step * i
    return img


def read_marks(frames: torch.Tensor, step: int = 8) -> list[int]:
    level = frames[:, 8 : MARK - 8, 8 : MARK - 8].float().mean(dim=(1, 2, 3))  # (T,) the block's inside
    return ((level - 10) / step).round().long().tolist()


def speech(seconds: float, seed: int = 0) -> np.ndarray:
    """Speech-like noise: bursts of 120-ms syllables with pauses, at -10 dBFS."""
    rng = np.random.default_rng(seed)
    n = round(seconds * SR)
    envelope = (np.arange(n) // 1920) % 2 == 0  # 120 ms on, 120 ms off
    return (0.3 * rng.standard_normal(n) * envelope).clip(-1, 1).astype(np.float32)


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("dub")
    Image.fromarray(face_image()).save(d / "face.png")
    write_video(d / "short.mp4", np.stack([marked(i) for i in range(6)]), fps=25, crf=0)
    write_video(d / "long.mp4", np.stack([marked(i) for i in range(30)]), fps=25, crf=0)
    for name, seconds in {"one": 1.0, "short": 0.4, "long": 0.8}.items():
        save_wav(d / f"{name}.wav", speech(seconds))
    return {p.stem + p.suffix.replace(".", "_"): p for p in d.iterdir()}


def _dub(run: Path, face: Path, out: Path, **options):
    from mumo.tasks import get_task

    return get_task("lipsync").dub_video(run, face, out, device="cpu", progress=False, **options)


# -- end to end ----------------------------------------------------------------------------------------------------


def test_a_still_image_lasts_as_long_as_the_audio_with_its_track(generator_run, files, tmp_path):  # noqa: F811
    out = tmp_path / "still.mp4"
    res = _dub(generator_run, files["face_png"], out, audio=files["one_wav"])
    assert res["length"] == "still" and res["source"] == "image" and res["frames"] == 25
    assert res["face_frames"] == 25 and res["passed_through"] == 0
    video = read_video(out)
    assert abs(video.num_frames - 25) <= 1 and video.fps == pytest.approx(25)
    assert video.audio is not None and abs(video.audio.shape[0] / video.audio_rate - 1.0) < 0.05
    assert [p.name for p in tmp_path.iterdir()] == ["still.mp4"]  # no temporary file left


def test_a_short_video_is_looped_ping_pong(generator_run, files, tmp_path):  # noqa: F811
    out = tmp_path / "loop.mp4"
    res = _dub(generator_run, files["short_mp4"], out, audio=files["long_wav"])  # 6 frames, 0.8 s = 20 frames
    assert res["length"] == "ping-pong" and res["frames"] == 20 and res["source_frames"] == 6
    frames = read_video(out).frames
    assert read_marks(frames) == [0, 1, 2, 3, 4, 5, 4, 3, 2, 1, 0, 1, 2, 3, 4, 5, 4, 3, 2, 1]


def test_a_long_video_is_cut_at_the_audios_end(generator_run, files, tmp_path):  # noqa: F811
    out = tmp_path / "cut.mp4"
    res = _dub(generator_run, files["long_mp4"], out, audio=files["short_wav"])  # 30 frames, 0.4 s = 10 frames
    assert res["length"] == "cut" and res["frames"] == 10
    video = read_video(out)
    assert read_marks(video.frames) == list(range(10))
    assert abs(video.audio.shape[0] / video.audio_rate - 0.4) < 0.05


def test_the_scorer_reports_lse_and_sync_per_second(generator_run, scorer_run, files, tmp_path):  # noqa: F811
    res = _dub(generator_run, files["face_png"], tmp_path / "s.mp4", audio=files["one_wav"], scorer=scorer_run)
    s = res["scorer"]
    assert s["run"] == str(scorer_run) and np.isfinite([s["lse_d"], s["lse_c"]]).all()
    assert isinstance(s["offset_frames"], int) and s["windows"] == 21  # 25 frames -> windows starting at 0..20
    assert len(s["per_second"]) == 1 and all(0 <= v <= 1 for v in s["per_second"])


# -- the input, streamed into a frame buffer on disk -----------------------------------------------------------------


def test_a_long_video_is_decoded_only_as_far_as_the_speech(generator_run, files, tmp_path, monkeypatch):  # noqa: F811
    long = write_video(tmp_path / "src.mp4", np.stack([marked(i % 25) for i in range(150)]), fps=25, crf=0)  # 6 s
    (tmp_path / "out").mkdir()
    out = tmp_path / "out" / "cut.mp4"
    decoded = count_decoded(monkeypatch)
    res = _dub(generator_run, long, out, audio=files["short_wav"])  # 0.4 s of speech: 10 frames
    assert res["length"] == "cut" and res["frames"] == 10 and res["source_frames"] == 10
    assert 11 <= decoded[0] <= 12  # the 10 shown, one to know the video goes on, one of look-ahead; not 150
    assert read_marks(read_video(out).frames) == list(range(10))


@pytest.mark.parametrize("ending", ["success", "no face", "ctrl-c"])
def test_the_frame_buffer_is_beside_the_output_and_goes(generator_run, files, tmp_path, monkeypatch, ending):  # noqa: F811
    dub_module = importlib.import_module("mumo.tasks.lipsync.dub")
    face = files["short_mp4"]  # 6 frames, looped
    if ending == "no face":
        face = write_video(tmp_path / "blank.mp4", np.full((6, 64, 64, 3), 128, np.uint8))
    if ending == "ctrl-c":

        def interrupted(self, frames):
            raise KeyboardInterrupt

        monkeypatch.setattr(dub_module.Mp4Stream, "write", interrupted)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    seen: list[Path] = []
    detect = dub_module.detect_faces

    def spy(frames, name):  # the frames tracking reads come from the buffer file, not from memory
        (folder,) = [p for p in out_dir.iterdir() if p.name.startswith(".o.mp4.") and p.name.endswith(".frames")]
        seen.append(folder)
        assert frames.shape[0] == 6 and (folder / "frames.u8").stat().st_size == frames.numel()
        return detect(frames, name)

    monkeypatch.setattr(dub_module, "detect_faces", spy)
    if ending == "success":
        assert _dub(generator_run, face, out_dir / "o.mp4", audio=files["long_wav"])["length"] == "ping-pong"
    else:
        with pytest.raises(KeyboardInterrupt if ending == "ctrl-c" else MumoError):
            _dub(generator_run, face, out_dir / "o.mp4", audio=files["long_wav"])
    assert len(seen) == 1 and not seen[0].exists()
    assert [p.name for p in out_dir.iterdir()] == (["o.mp4"] if ending == "success" else [])


def test_a_video_at_least_as_long_as_the_speech_is_streamed_without_a_frame_buffer(
    generator_run,  # noqa: F811
    files,
    tmp_path,
    monkeypatch,
):
    from mumo.data.av.faces import HaarFaceDetector, track_faces
    from mumo.data.av.video import iter_video_frames
    from mumo.tasks.lipsync.train import load_lipsync_model

    dub_module = importlib.import_module("mumo.tasks.lipsync.dub")
    frames = np.stack([marked(i % 25) for i in range(30)])
    frames[4:7], frames[10:18] = 128, 90  # a short gap in the faces (filled) and a long one (passed through)
    video = write_video(tmp_path / "v.mp4", frames, fps=25, crf=0)
    save_wav(tmp_path / "a.wav", speech(1.2))
    generator = load_lipsync_model(generator_run)

    def no_buffer(*args, **kwargs):
        raise AssertionError("a frame buffer was made")

    for audio, length in [(files["long_wav"], "cut"), (tmp_path / "a.wav", "as is")]:  # 20 or 30 of 30 frames
        with monkeypatch.context() as m:
            m.setattr(dub_module, "read_face_frames", no_buffer)
            m.setattr(dub_module.tempfile, "TemporaryDirectory", no_buffer)
            res = _dub(generator_run, video, tmp_path / "out.mp4", audio=audio, chunk_frames=7)
        n = res["frames"]
        assert res["length"] == length and res["source_frames"] == n and res["passed_through"] == 8
        # as the frames held in memory and tracked at once give them
        src = torch.from_numpy(np.stack(list(iter_video_frames(video))[:n]))  # (n, H, W, 3)
        wav = dub_module.load_speech(audio)
        chunks = dub_module.dub_frames(generator, src, track_faces(src, HaarFaceDetector()).boxes, torch.arange(n),
                                       MelFrontEnd()(wav), chunk_frames=7)  # fmt: skip
        with dub_module.Mp4Stream(tmp_path / "expected.mp4", wav) as stream:
            for chunk in chunks:
                stream.write(chunk.frames)
        assert (tmp_path / "out.mp4").read_bytes() == (tmp_path / "expected.mp4").read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.wav", "expected.mp4", "out.mp4", "v.mp4"]


def test_the_boxes_of_the_detections_so_far_are_final_lookahead_frames_back():
    from mumo.data.av.faces import track_faces
    from mumo.tasks.lipsync.dub import LOOKAHEAD, track_boxes

    rng = np.random.default_rng(0)
    for _ in range(20):
        n = int(rng.integers(20, 80))
        raw = torch.from_numpy(rng.uniform(0, 200, (n, 4)).astype(np.float32))
        for _ in range(int(rng.integers(0, 6))):  # gaps of 1 to 9 frames: filled or dropped
            s = int(rng.integers(0, n))
            raw[s : s + int(rng.integers(1, 10))] = float("nan")
        found = [[] if torch.isnan(b).any() else [(*b.tolist(), 1.0)] for b in raw]

        class Replay:  # the detections above, frame by frame
            def detect(self, frame, found=found):
                return found.pop(0)

        full = track_boxes(raw)
        assert torch.equal(full.nan_to_num(-1), track_faces(torch.zeros(n, 2, 2, 3, dtype=torch.uint8),
                                                            Replay()).boxes.nan_to_num(-1))  # fmt: skip
        for k in range(LOOKAHEAD, n):
            assert torch.equal(
                track_boxes(raw[:k])[: k - LOOKAHEAD].nan_to_num(-1), full[: k - LOOKAHEAD].nan_to_num(-1)
            )


# -- the paste-back ------------------------------------------------------------------------------------------------


def test_the_mask_covers_the_lower_face_with_smooth_edges():
    m = blend_mask(60, 50)
    assert m.shape == (60, 50) and m.min() == 0 and m.max() == pytest.approx(1.0)
    assert not m[:30].any()  # the upper half is never touched
    assert 0 < m[59, 25] < 0.1 and 0 < m[45, 0] < 0.1  # the bottom and side edges: small, not a step
    ramp = m[30:, 25]
    assert ((ramp > 0) & (ramp < 1)).sum() >= 6  # a ramp of several pixels
    assert np.abs(np.diff(m, axis=0)).max() < 0.3 and np.abs(np.diff(m, axis=1)).max() < 0.3


def test_paste_changes_only_pixels_inside_the_mask():
    rng = np.random.default_rng(0)
    frame = torch.from_numpy(rng.integers(0, 256, (120, 100, 3), dtype=np.uint8))
    face = torch.from_numpy(rng.integers(0, 256, (96, 96, 3), dtype=np.uint8))
    box = crop_box(torch.tensor([20.0, 15.0, 80.0, 85.0]), 120, 100)
    assert box == (20, 15, 80, 95)  # 10 px of chin padding, as crop_faces cuts
    out = paste_face(frame, face, box)
    inside = torch.zeros(120, 100, dtype=torch.bool)
    inside[15:95, 20:80] = torch.from_numpy(blend_mask(80, 60) > 0)
    assert torch.equal(out[~inside], frame[~inside])  # byte-identical outside the mask
    strong = torch.zeros_like(inside)
    strong[15:95, 20:80] = torch.from_numpy(blend_mask(80, 60) > 0.5)
    assert (out[strong] != frame[strong]).any(dim=-1).float().mean() > 0.9


def test_ping_pong_never_repeats_the_turning_frame():
    assert ping_pong_indices(4, 10).tolist() == [0, 1, 2, 3, 2, 1, 0, 1, 2, 3]
    assert ping_pong_indices(1, 3).tolist() == [0, 0, 0] and ping_pong_indices(5, 3).tolist() == [0, 1, 2]


# -- frames, chunks ------------------------------------------------------------------------------------------------


class Counting(nn.Module):
    """A generator that counts the frames it is asked for."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner, self.frames = inner, 0

    def forward(self, faces, mels):
        self.frames += faces.shape[0] * faces.shape[1]
        return self.inner(faces, mels)


@pytest.fixture(scope="module")
def source():
    """23 frames, 8-15 without a face box; 2 s of speech's mel."""
    from mumo.data.av.faces import HaarFaceDetector

    frames = torch.from_numpy(np.stack([marked(i) for i in range(23)]))
    box = HaarFaceDetector().detect(face_image())[0][:4]
    boxes = torch.tensor([box] * 23, dtype=torch.float32)
    boxes[8:16] = float("nan")
    mel = MelFrontEnd()(torch.from_numpy(speech(2.0)))
    return frames, boxes, mel


def _run(generator, source, index, chunk):
    from mumo.tasks.lipsync.dub import dub_frames

    frames, boxes, mel = source
    return list(dub_frames(generator, frames, boxes, index, mel, chunk_frames=chunk))


def test_frames_without_a_face_pass_through_and_the_rest_change_only_in_the_mask(generator_run, source):  # noqa: F811
    from mumo.tasks.lipsync.train import load_lipsync_model

    frames, boxes, _ = source
    index = ping_pong_indices(23, 30)
    (chunk,) = _run(load_lipsync_model(generator_run), source, index, 100)
    assert chunk.has_face.tolist() == [not 8 <= int(i) < 16 for i in index]
    box = crop_box(boxes[0], 256, 256)
    inside = torch.zeros(256, 256, dtype=torch.bool)
    inside[box[1] : box[3], box[0] : box[2]] = torch.from_numpy(blend_mask(box[3] - box[1], box[2] - box[0]) > 0)
    for k, i in enumerate(index.tolist()):
        if 8 <= i < 16:
            assert torch.equal(chunk.frames[k], frames[i])  # passed through, byte for byte
        else:
            assert torch.equal(chunk.frames[k][~inside], frames[i][~inside])
            assert not torch.equal(chunk.frames[k][inside], frames[i][inside])


def test_chunks_give_the_frames_of_one_pass_and_are_made_only_when_asked(generator_run, source):  # noqa: F811
    from mumo.tasks.lipsync.dub import dub_frames
    from mumo.tasks.lipsync.train import load_lipsync_model

    generator = Counting(load_lipsync_model(generator_run))
    index = ping_pong_indices(23, 45)
    whole = torch.cat([c.frames for c in _run(generator, source, index, 1000)])
    chunks = _run(generator, source, index, 7)
    assert [c.frames.shape[0] for c in chunks] == [7] * 6 + [3] and [c.start for c in chunks] == list(range(0, 45, 7))
    assert torch.equal(torch.cat([c.frames for c in chunks]), whole)

    generator.frames = 0
    frames, boxes, mel = source
    stream = dub_frames(generator, frames, boxes, index, mel, chunk_frames=7)
    assert generator.frames == 0  # nothing is made before it is asked for
    next(stream)
    assert 0 < generator.frames <= 7 + 4  # one chunk (its last window right-aligned: at most 4 frames more)
