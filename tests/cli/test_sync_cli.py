"""``mumo train syncnet``, ``mumo sync`` and ``mumo data preprocess`` through the CLI, bad inputs included."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from typer.testing import CliRunner

from mumo.cli.__main__ import build_app
from mumo.data.av.video import write_video
from tests.tasks.sync.test_sync import SR, _speech_like, make_layout

runner = CliRunner()
TINY = ["model.face_channels=[8,8,16,16,32,32]", "model.audio_channels=[8,16,16,32]", "model.embedding=32",
        "data.pairs_per_epoch=256", "data.eval_pairs=64", "train.epochs=1", "train.images_per_batch=32"]  # fmt: skip


def _run(*args: str):
    return runner.invoke(build_app(), [str(a) for a in args])


def _clear_error(result, *needles: str) -> None:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    for n in needles:
        assert n in result.output, result.output


@pytest.fixture(scope="module")
def sync_run(tmp_path_factory) -> Path:
    root = make_layout(tmp_path_factory.mktemp("faces"))
    out = tmp_path_factory.mktemp("runs") / "sync"
    result = _run("train", "syncnet", "--data", root, "--out", out, "--json", *TINY)
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
    result = _run("sync", sync_run, "--video", video, "--json", "--mc-samples", "3")
    assert result.exit_code == 0, result.output
    res = json.loads(result.stdout)
    assert {"offset_frames", "lse_d", "lse_c", "sync_probability", "sync_probability_std"} <= set(res)
    assert -15 <= res["offset_frames"] <= 15 and res["lse_c"] >= 0
    text = _run("sync", sync_run, "--video", video, "--mc-samples", "2")
    assert text.exit_code == 0 and "LSE-D" in text.output and "offset" in text.output


def test_separate_audio_of_another_rate_stereo_or_8_bit_is_converted(sync_run, video, tmp_path):
    wav, _ = _speech_like(30, np.random.default_rng(2))
    stereo44 = tmp_path / "stereo.wav"
    t44 = np.interp(np.arange(int(len(wav) * 44100 / SR)) * SR / 44100, np.arange(len(wav)), wav)
    sf.write(stereo44, np.stack([t44, t44], 1), 44100, subtype="PCM_24")
    eight = tmp_path / "eight.wav"
    sf.write(eight, wav, SR, subtype="PCM_U8")
    for audio in (stereo44, eight):
        result = _run("sync", sync_run, "--video", video, "--audio", audio, "--json", "--mc-samples", "2")
        assert result.exit_code == 0, result.output


def test_variable_frame_rate_video_is_resampled(sync_run, face, tmp_path):
    import av

    path = tmp_path / "vfr.mp4"
    pts_ms = [0, 40, 80, 100, 140, 240, 260, 300, 400, 440, 480, 520, 560, 640, 680, 720]
    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = face.shape[1], face.shape[0], "yuv420p"
        stream.time_base = stream.codec_context.time_base = Fraction(1, 1000)
        for pts in pts_ms:
            frame = av.VideoFrame.from_ndarray(face, format="rgb24")
            frame.pts, frame.time_base = pts, Fraction(1, 1000)
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    audio = tmp_path / "a.wav"
    sf.write(audio, _speech_like(19, np.random.default_rng(3))[0], SR)
    result = _run("sync", sync_run, "--video", path, "--audio", audio, "--json", "--mc-samples", "2")
    assert result.exit_code == 0, result.output


def test_bad_inputs_are_clear_errors(sync_run, face, tmp_path):
    silent_video = tmp_path / "noaudio.mp4"
    write_video(silent_video, np.stack([face] * 10), fps=25)
    _clear_error(_run("sync", sync_run, "--video", silent_video), "noaudio.mp4", "--audio")

    silent = tmp_path / "silent.wav"
    sf.write(silent, np.zeros(SR), SR)
    _clear_error(_run("sync", sync_run, "--video", silent_video, "--audio", silent), "silent.wav")

    short = tmp_path / "short.mp4"
    write_video(short, np.stack([face] * 3), fps=25, audio=_speech_like(3, np.random.default_rng(0))[0])
    _clear_error(_run("sync", sync_run, "--video", short), "short")

    empty = tmp_path / "empty.mp4"
    empty.touch()
    _clear_error(_run("sync", sync_run, "--video", empty), "empty.mp4")

    not_video = tmp_path / "photo.mp4"
    from PIL import Image

    Image.fromarray(face).save(not_video, format="PNG")
    _clear_error(_run("sync", sync_run, "--video", not_video), "photo.mp4")

    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 20)
    _clear_error(_run("sync", sync_run, "--video", corrupt), "corrupt.mp4")

    no_face = tmp_path / "wall.mp4"
    wav = _speech_like(20, np.random.default_rng(4))[0]
    write_video(no_face, np.full((20, 128, 128, 3), 120, np.uint8), fps=25, audio=wav, audio_rate=SR)
    _clear_error(_run("sync", sync_run, "--video", no_face), "no face", "wall.mp4")

    _clear_error(_run("sync", tmp_path, "--video", silent_video), "not a mumo run")
    _clear_error(_run("sync", sync_run, "--video", silent_video, "--device", "tpu"), "unknown device 'tpu'")


def test_training_with_a_filelist_naming_missing_clips(tmp_path):
    root = tmp_path / "data"
    (root / "filelists").mkdir(parents=True)
    for split in ("train", "val", "test"):
        (root / "filelists" / f"{split}.txt").write_text("ghost/001\n")
    _clear_error(_run("train", "syncnet", "--data", root, "--out", tmp_path / "r", *TINY), "ghost/001")
    _clear_error(_run("train", "syncnet", "--out", tmp_path / "r2", *TINY), "data.root")


def test_preprocess_cli_reports_skips(tmp_path, face):
    src = tmp_path / "raw" / "spk0"
    src.mkdir(parents=True)
    write_video(src / "a.mp4", np.stack([face] * 10), fps=25, audio=_speech_like(10, np.random.default_rng(0))[0])
    write_video(src / "b.mp4", np.stack([face] * 10), fps=25)
    result = _run("data", "preprocess", "--videos", tmp_path / "raw", "--out", tmp_path / "out")
    assert result.exit_code == 0, result.output
    assert "wrote 1 clips" in result.output and "skipped" in result.output and "b.mp4" in result.output
