"""``mumo train sync``, ``mumo sync`` and ``mumo data preprocess`` through the CLI, bad inputs included."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from PIL import Image

from mumo.data.av.video import write_video
from tests.cli._invoke import assert_clear_error, run_cli
from tests.tasks.sync.test_sync import SR, _speech_like, make_layout

TINY = ["model.face_channels=[8,8,16,16,32,32]", "model.audio_channels=[8,16,16,32]", "model.embedding=32",
        "data.pairs_per_epoch=256", "data.eval_pairs=64", "train.epochs=1", "train.batch_size=32"]  # fmt: skip


@pytest.fixture(scope="module")
def sync_run(tmp_path_factory) -> Path:
    root = make_layout(tmp_path_factory.mktemp("faces"))
    out = tmp_path_factory.mktemp("runs") / "sync"
    result = run_cli("train", "sync", "--data", root, "--out", out, "--json", *TINY)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout[result.stdout.index("{") :])
    assert {"best_val_eval_loss", "test_eval_loss", "train_seconds"} <= set(summary)
    return out


@pytest.fixture(scope="module")
def face() -> np.ndarray:
    from skimage import data as skdata

    return skdata.astronaut()[::2, ::2]  # (256, 256, 3): a real face


@pytest.fixture(scope="module")
def video(tmp_path_factory, face) -> Path:
    wav, _ = _speech_like(30, np.random.default_rng(1))
    path = tmp_path_factory.mktemp("vid") / "talk.mp4"
    write_video(path, np.stack([face] * 30), fps=25, audio=wav, audio_rate=SR)
    return path


def test_sync_json_keys(sync_run, video):
    result = run_cli("sync", sync_run, "--video", video, "--json", "--mc-samples", "3")
    assert result.exit_code == 0, result.output
    res = json.loads(result.stdout)
    assert {"offset_frames", "lse_d", "lse_c", "sync_probability", "sync_probability_std"} <= set(res)
    assert -15 <= res["offset_frames"] <= 15 and res["lse_c"] >= 0 and res["lse_d"] > 0
    assert res["video"] == str(video) and res["windows"] == 30 - 4 and res["skipped_frames"] == 0
    assert res["mc_samples"] == 3 and 0 <= res["sync_probability_mc"] <= 1 and res["sync_probability_std"] > 0
    assert len(res["mean_distance_per_offset"]) == 31 and res["lse_d"] == min(res["mean_distance_per_offset"])
    text = run_cli("sync", sync_run, "--video", video, "--mc-samples", "2")
    assert text.exit_code == 0, text.output
    assert f"offset {res['offset_frames']:+d} frames ({res['offset_frames'] * 40:+d} ms" in text.output
    assert f"LSE-D {res['lse_d']:.4f}  LSE-C {res['lse_c']:.4f}  (26 windows)" in text.output
    assert "(MC dropout, T=2)" in text.output


def _sync(run: Path, video: Path, *extra) -> dict:
    result = run_cli("sync", run, "--video", video, *extra, "--json", "--mc-samples", "2")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


# How far the figures of one clip may move when its sound comes at another rate and channel count (44.1 kHz
# stereo) and is converted back to 16 kHz mono: at most 0.0012 measured on the tiny expert (the sync probability,
# LSE-D, LSE-C and the mean distance at each offset). A 44.1 kHz track read as if it were 16 kHz moves the sync
# probability by 0.0067 or more (and the windows' number with it), the first channel taken for the channels' mean
# by 0.0047 or more.
FIGURE_TOLERANCE = 0.0025


def _assert_same_figures(res: dict, ref: dict, tolerance: float = FIGURE_TOLERANCE) -> None:
    for key in ("windows", "offset_frames", "skipped_frames"):
        assert res[key] == ref[key], (key, res[key], ref[key])
    for key in ("lse_d", "lse_c", "sync_probability"):
        assert res[key] == pytest.approx(ref[key], abs=tolerance), key
    gap = np.abs(np.subtract(res["mean_distance_per_offset"], ref["mean_distance_per_offset"])).max()
    assert gap <= tolerance, gap


def _mel_windows(n_frames: int, n_samples: int) -> int:
    """The 5-frame windows of a 25-fps clip of ``n_frames`` frames with ``n_samples`` samples of 16 kHz audio."""
    from mumo.data.av.audio import num_windows

    return num_windows(n_frames, 1 + n_samples // 200)  # the mel front-end: hop 200, centred frames


def _talking(face: np.ndarray, opening: np.ndarray) -> np.ndarray:
    """(T, H, W, 3) frames of the face whose mouth darkens in the frames where the audio is loud."""
    frames = np.stack([face] * len(opening))
    frames[opening > 0, 66:74, 100:124] = 30  # the astronaut's mouth, at half size
    return frames


def _write_stereo_video(path: Path, frames: np.ndarray, fps: float, audio: np.ndarray, rate: int) -> Path:
    """Lossless H.264 frames at ``fps`` and a stereo AAC track: audio (samples, 2) at ``rate``."""
    import av

    with av.open(str(path), "w", format="mp4") as container:
        vstream = container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001))
        vstream.width, vstream.height, vstream.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        vstream.options = {"crf": "0"}  # lossless
        astream = container.add_stream("aac", rate=rate)
        astream.layout = "stereo"
        for i, image in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts = i
            container.mux(vstream.encode(frame))
        container.mux(vstream.encode(None))
        planar = np.ascontiguousarray(audio.T.astype(np.float32))  # (2, samples)
        frame = av.AudioFrame.from_ndarray(planar, format="fltp", layout="stereo")
        frame.sample_rate, frame.pts = rate, 0
        container.mux(astream.encode(frame))
        container.mux(astream.encode(None))
    return path


def _at_44k(wav: np.ndarray) -> np.ndarray:
    """The 16 kHz waveform linearly interpolated to 44.1 kHz."""
    return np.interp(np.arange(int(len(wav) * 44100 / SR)) * SR / 44100, np.arange(len(wav)), wav)


def test_separate_audio_of_another_rate_stereo_or_8_bit_is_converted(sync_run, video, tmp_path):
    """A 44.1 kHz stereo 24-bit file scores as the 16 kHz mono 16-bit file of its channels' mean; an 8-bit file
    exactly as the float file of the same levels. The audio is shorter than the 30-frame video, so the mel
    spectrogram's length sets the windows: an unconverted rate would change their number as well as the figures."""
    wav, _ = _speech_like(24, np.random.default_rng(2))
    mono16 = tmp_path / "mono16.wav"
    sf.write(mono16, 0.6 * wav, SR, subtype="PCM_16")  # the mean of the two channels below
    stereo44 = tmp_path / "stereo.wav"
    sf.write(stereo44, np.stack([_at_44k(wav), 0.2 * _at_44k(wav)], 1), 44100, subtype="PCM_24")
    ref = _sync(sync_run, video, "--audio", mono16)
    assert ref["windows"] == _mel_windows(30, len(wav)) < 30 - 4  # fewer than the frames allow
    _assert_same_figures(_sync(sync_run, video, "--audio", stereo44), ref)

    levels = np.clip(np.round(wav * 128), -128, 127).astype(np.int16)  # 8-bit levels, written exactly
    eight, same_levels = tmp_path / "eight.wav", tmp_path / "float.wav"
    sf.write(eight, levels * 256, SR, subtype="PCM_U8")  # unsigned bytes 128 + level
    sf.write(same_levels, levels / 128, SR, subtype="FLOAT")
    _assert_same_figures(_sync(sync_run, video, "--audio", eight), _sync(sync_run, video, "--audio", same_levels),
                         tolerance=1e-5)  # fmt: skip


def test_video_at_30_fps_with_44k_stereo_sound_is_converted(sync_run, face, tmp_path):
    """The same talking clip as 25 fps + 16 kHz mono and as 30 fps + 44.1 kHz stereo gives the same figures.
    The sound runs on past the last frame, so the frames set the windows: frames left at 30 fps would give 44
    windows, not 36."""
    wav, opening = _speech_like(48, np.random.default_rng(5))
    frames25 = _talking(face, opening[:40])  # 1.6 s of video, 1.92 s of sound
    ref_video = write_video(tmp_path / "ref.mp4", frames25, fps=25, audio=0.6 * wav, audio_rate=SR, crf=0)
    frames30 = frames25[np.arange(48) * 25 // 30]  # the frame on screen at each 1/30 s
    stereo = np.stack([_at_44k(wav), 0.2 * _at_44k(wav)], 1)  # channels whose mean is the reference's sound
    converted = _write_stereo_video(tmp_path / "30fps44k.mp4", frames30, 30, stereo, 44100)
    ref = _sync(sync_run, ref_video)
    assert ref["windows"] == 40 - 4 and ref["skipped_frames"] == 0
    res = _sync(sync_run, converted)
    _assert_same_figures(res, ref)
    assert res["skipped_frames"] == 0


def test_variable_frame_rate_video_is_resampled(sync_run, face, tmp_path):
    """Frames at uneven times are resampled to 25 fps by their timestamps (the frame nearest each 40 ms, ties to
    the earlier): the figures, windows and faceless frames are those of the 25 fps video of the frames picked.
    The file's frames come every 100 ms, then every 20 ms while the face is gone (a wall), then every 40 ms:
    resampling by the mean rate alone would pick other frames and count 10 more without a face."""
    import av

    pts_ms = [*range(0, 600, 100), *range(600, 1200, 20), *range(1200, 1640, 40)]  # 6 + 30 + 11 frames
    wav, opening = _speech_like(45, np.random.default_rng(3))  # 1.8 s: the sound outlasts the frames
    shown = _talking(face, opening[[t // 40 for t in pts_ms]])  # (47, H, W, 3)
    wall = [600 <= t < 1200 for t in pts_ms]
    shown[wall] = 120
    path = tmp_path / "vfr.mp4"
    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = face.shape[1], face.shape[0], "yuv420p"
        stream.time_base = stream.codec_context.time_base = Fraction(1, 1000)
        stream.options = {"crf": "0"}  # lossless, as the reference below: the same pixels meet the face detector
        for pts, image in zip(pts_ms, shown, strict=True):
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts, frame.time_base = pts, Fraction(1, 1000)
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    audio = tmp_path / "a.wav"
    sf.write(audio, wav, SR)
    grid = np.arange(41) * 40  # 0 .. 1600 ms: the clip lasts to the last frame plus the median interval, 20 ms
    nearest = [int(np.argmin(np.abs(np.array(pts_ms) - t))) for t in grid]  # argmin: ties to the earlier frame
    cfr = write_video(tmp_path / "cfr.mp4", shown[nearest], fps=25, crf=0)
    res, ref = _sync(sync_run, path, "--audio", audio), _sync(sync_run, cfr, "--audio", audio)
    assert res["windows"] == 41 - 4 and res["skipped_frames"] >= 15  # the wall: 600-1180 ms
    _assert_same_figures(res, ref, tolerance=1e-5)  # the same pixels and sound: the same figures


def test_bad_inputs_are_clear_errors(sync_run, face, tmp_path):
    silent_video = tmp_path / "noaudio.mp4"
    write_video(silent_video, np.stack([face] * 10), fps=25)
    assert_clear_error(run_cli("sync", sync_run, "--video", silent_video), "noaudio.mp4", "--audio")

    silent = tmp_path / "silent.wav"
    sf.write(silent, np.zeros(SR), SR)
    assert_clear_error(run_cli("sync", sync_run, "--video", silent_video, "--audio", silent), "silent.wav")

    short = tmp_path / "short.mp4"
    write_video(short, np.stack([face] * 3), fps=25, audio=_speech_like(3, np.random.default_rng(0))[0])
    assert_clear_error(run_cli("sync", sync_run, "--video", short), "short")

    empty = tmp_path / "empty.mp4"
    empty.touch()
    assert_clear_error(run_cli("sync", sync_run, "--video", empty), "empty.mp4")

    not_video = tmp_path / "photo.mp4"

    Image.fromarray(face).save(not_video, format="PNG")
    assert_clear_error(run_cli("sync", sync_run, "--video", not_video), "photo.mp4")

    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 20)
    assert_clear_error(run_cli("sync", sync_run, "--video", corrupt), "corrupt.mp4")

    no_face = tmp_path / "wall.mp4"
    wav = _speech_like(20, np.random.default_rng(4))[0]
    write_video(no_face, np.full((20, 128, 128, 3), 120, np.uint8), fps=25, audio=wav, audio_rate=SR)
    assert_clear_error(run_cli("sync", sync_run, "--video", no_face), "no face", "wall.mp4")

    assert_clear_error(run_cli("sync", tmp_path, "--video", silent_video), "not a mumo run")
    assert_clear_error(run_cli("sync", sync_run, "--video", silent_video, "--device", "tpu"), "unknown device 'tpu'")


def test_training_with_a_filelist_naming_missing_clips(tmp_path):
    root = tmp_path / "data"
    (root / "filelists").mkdir(parents=True)
    for split in ("train", "val", "test"):
        (root / "filelists" / f"{split}.txt").write_text("ghost/001\n")
    assert_clear_error(run_cli("train", "sync", "--data", root, "--out", tmp_path / "r", *TINY), "ghost/001")
    # the earlier name of the task still trains (and still checks its input)
    assert_clear_error(run_cli("train", "syncnet", "--out", tmp_path / "r2", *TINY), "data.root")


def test_preprocess_cli_reports_skips(tmp_path, face):
    src = tmp_path / "raw" / "spk0"
    src.mkdir(parents=True)
    write_video(src / "a.mp4", np.stack([face] * 10), fps=25, audio=_speech_like(10, np.random.default_rng(0))[0])
    write_video(src / "b.mp4", np.stack([face] * 10), fps=25)
    result = run_cli("data", "preprocess", "--videos", tmp_path / "raw", "--out", tmp_path / "out")
    assert result.exit_code == 0, result.output
    assert "wrote 1 clips" in result.output and "skipped" in result.output and "b.mp4" in result.output
    # the layout the sync expert trains on: 25 fps face crops and 16 kHz mono audio of the same length
    clip = tmp_path / "out" / "spk0" / "a"
    frames = sorted(clip.glob("*.png"))
    assert len(frames) == 10 and Image.open(frames[0]).size == (96, 96)
    audio, rate = sf.read(clip / "audio.wav")
    assert rate == SR and audio.ndim == 1 and abs(len(audio) - 10 * SR // 25) <= 0.02 * SR
    lists = tmp_path / "out" / "filelists"
    assert [e for s in ("train", "val", "test") for e in (lists / f"{s}.txt").read_text().split()] == ["spk0/a"]
