"""Lip to speech end to end on tiny real files: ``mumo train lip2speech`` (and its resume), ``mumo evaluate`` with
the floor, the vocoder's ceiling, the alignment by a lip-sync expert and the uncertainty, ``mumo lip2speech`` on
a real face video (the astronaut), and one-line errors with no partial output for bad input."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from skimage import data as skdata

from mumo.data.av.video import write_video
from mumo.models.lip2wav import mel_steps_of
from mumo.tasks.lip2speech.evaluate import align_recording
from mumo.tasks.lip2speech.synthesize import speak
from mumo.tasks.lip2speech.train import load_lip2speech_model
from tests.cli._invoke import assert_clear_error, run_cli
from tests.tasks.sync.test_sync import make_layout

pytest.importorskip("cv2")

TINY = ["model.frames=10", "model.face_size=24", "model.encoder_channels=[4,4,4]", "model.encoder_lstm=8",
        "model.prenet=[8,8]", "model.attention_dim=8", "model.attention_filters=4", "model.decoder_lstm=[16,16]",
        "model.postnet_channels=8", "model.postnet_layers=3", "data.windows_per_epoch=16", "data.eval_windows=4",
        "train.batch_size=8", "train.eval_batch_size=8", "train.epochs=1"]  # fmt: skip
TINY_EXPERT = ["model.face_channels=[8,8,16,16,32,32]", "model.audio_channels=[8,16,16,32]", "model.embedding=32",
               "data.pairs_per_epoch=64", "data.eval_pairs=32", "train.epochs=1", "train.batch_size=32"]  # fmt: skip


@pytest.fixture(scope="module")
def layout(tmp_path_factory) -> Path:
    return make_layout(tmp_path_factory.mktemp("faces"))


@pytest.fixture(scope="module")
def run(layout, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "l2s"
    result = run_cli("train", "lip2speech", "--data", layout, "--out", out, "--json", *TINY)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout[result.stdout.index("{") :])
    assert summary["decoder"] == "tacotron" and summary["best_epoch"] == 1 and summary["best_val_mel_l1"] > 0
    assert 0 < summary["best_val_diagonality"] <= 1
    return out


@pytest.fixture(scope="module")
def expert_run(layout, tmp_path_factory) -> Path:
    from mumo.tasks.sync.config import load_sync_config
    from mumo.tasks.sync.task import train_sync

    out = tmp_path_factory.mktemp("runs") / "expert"
    train_sync(load_sync_config("sync-cpu", [f"data.root={layout}", *TINY_EXPERT]), out, progress=False)
    return out


def astronaut(n: int) -> np.ndarray:
    """(n, 256, 256, 3) uint8: scikit-image's astronaut at half size, whose face OpenCV's Haar cascade finds."""
    return np.stack([np.ascontiguousarray(skdata.astronaut()[::2, ::2])] * n)


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("videos")
    write_video(d / "face.mp4", astronaut(23), fps=25)  # 0.92 s: windows of 10 frames at 0, 8 and 13 (right-aligned)
    write_video(d / "short.mp4", astronaut(6), fps=25)
    write_video(d / "noface.mp4", np.full((20, 64, 64, 3), 90, np.uint8), fps=25)
    return {p.stem: p for p in d.iterdir()}


# -- training -------------------------------------------------------------------------------------------------------


def test_training_writes_a_run_that_loads_and_resumes(run, layout):
    model = load_lip2speech_model(run)
    assert model.cfg.frames == 10 and not model.training
    result = run_cli("train", "lip2speech", "--out", run, "--resume", "--json", "train.epochs=2")
    assert result.exit_code == 0, result.output
    state = json.loads((run / "state.json").read_text())
    assert [h["epoch"] for h in state["history"]] == [0, 1]
    assert {"mel_l1", "loss_forced", "diagonality", "neg_mel_l1"} <= set(state["history"][1])


def test_a_data_set_with_one_clip_is_refused(layout, tmp_path):
    one = tmp_path / "one"
    (one / "filelists").mkdir(parents=True)
    train = (layout / "filelists" / "train.txt").read_text().split()[0]
    val = (layout / "filelists" / "val.txt").read_text().split()[0]
    for entry in (train, val):
        (one / entry).parent.mkdir(parents=True, exist_ok=True)
        (one / entry).symlink_to(layout / entry)
    (one / "filelists" / "train.txt").write_text(f"{train}\n")
    (one / "filelists" / "val.txt").write_text(f"{val}\n")
    (one / "filelists" / "test.txt").write_text(f"{val}\n")
    result = run_cli("train", "lip2speech", "--data", one, "--out", tmp_path / "r", *TINY)
    assert_clear_error(result, "one usable clip")
    assert not (tmp_path / "r" / "checkpoints").exists()


def test_clips_shorter_than_a_window_are_refused(layout, tmp_path):
    result = run_cli("train", "lip2speech", "--data", layout, "--out", tmp_path / "r", *TINY, "model.frames=60")
    assert_clear_error(result, "no clip of at least 60 frames")


# -- synthesis ------------------------------------------------------------------------------------------------------


def test_any_length_is_covered_by_whole_windows(run):
    model = load_lip2speech_model(run)
    for n in (10, 13, 27):
        faces = torch.randint(0, 255, (n, 3, 24, 24), dtype=torch.uint8)
        speech = speak(model, faces, samples=2)
        assert speech.mel.shape == (80, mel_steps_of(n)) and speech.spread.shape == (mel_steps_of(n),)
        assert speech.starts[0] == 0 and speech.starts[-1] == n - 10  # the last window right-aligned
        assert all(a.shape == (16, 10) for a in speech.alignments)
        assert speech.waveform(n).shape == (n * 640,)
    again = speak(model, faces, samples=2)
    assert torch.equal(again.mel, speech.mel)  # seeded: the same speech


def test_align_recording_undoes_a_known_offset():
    rec = np.arange(10 * 640, dtype=np.float32)
    shifted, skip = align_recording(rec, 3)  # the recording lags by 3 frames: its sound of frame 0 is at 3 * 640
    assert skip == 0 and shifted[0] == 3 * 640
    same, skip = align_recording(rec, -2)  # it leads: the prediction's first 2 frames have no recording
    assert skip == 2 * 640 and same[0] == 0


# -- evaluation -----------------------------------------------------------------------------------------------------


def test_evaluate_scores_the_model_beside_the_floor_and_the_vocoder(run, expert_run):
    result = run_cli("evaluate", run, "--json", "--clips", 2, "--mc-samples", 2, "--align", expert_run)
    assert result.exit_code == 0, result.output
    f = json.loads(result.stdout[result.stdout.index("{") :])
    assert f["clips"] == 2 and f["split"] == "test"
    for row in ("model", "floor", "vocoder"):
        assert {"stoi", "estoi", "pesq_nb"} <= set(f[row])
    assert f["vocoder"]["stoi"] > f["model"]["stoi"]  # an untrained model is far below its vocoder's ceiling
    assert 0 < f["diagonality"] <= 1
    assert len(f["align"]["offsets"]) == 2 and all(abs(o) <= 15 for o in f["align"]["offsets"])
    assert f["uncertainty"]["mc_samples"] == 2 and -1 <= f["uncertainty"]["spearman"] <= 1
    plots = Path(f["plots"])
    assert (plots / "alignments.png").stat().st_size > 0 and (plots / "spectrograms.png").stat().st_size > 0
    assert len(list(plots.glob("*-generated.wav"))) == 2


def test_evaluate_refuses_the_options_of_other_tasks(run, expert_run):
    assert_clear_error(run_cli("evaluate", run, "--scorer", expert_run), "--scorer is for lip-sync generator runs")
    assert_clear_error(run_cli("evaluate", run, "--images", 3), "--clips")


# -- mumo lip2speech ------------------------------------------------------------------------------------------------


def test_a_face_video_becomes_speech_and_is_muxed(run, videos, tmp_path):
    out, mux = tmp_path / "speech.wav", tmp_path / "spoken.mp4"
    result = run_cli("lip2speech", run, "--video", videos["face"], "--out", out, "--mux", mux, "--json",
                     "--mc-samples", 2)  # fmt: skip
    assert result.exit_code == 0, result.output
    res = json.loads(result.stdout[result.stdout.index("{") :])
    wav, rate = sf.read(out)
    assert rate == 16000 and wav.shape == (23 * 640,) and res["frames"] == 23 and res["windows"] == 3
    assert res["frames_without_face"] == 0 and res["uncertainty"]["mc_samples"] == 2
    import av

    with av.open(str(mux)) as c:
        assert c.streams.video[0].frames == 23 and len(c.streams.audio) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["speech.wav", "spoken.mp4"]  # no partial files


def test_a_variable_frame_rate_video_is_resampled(run, tmp_path):
    import av

    pts_ms = [*range(0, 400, 80), *range(400, 1000, 20)]  # 5 frames at 12.5 fps, then 30 at 50 fps: 1 s
    path = tmp_path / "vfr.mp4"
    frames = astronaut(len(pts_ms))
    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 256, 256, "yuv420p"
        stream.time_base = stream.codec_context.time_base = Fraction(1, 1000)
        for pts, image in zip(pts_ms, frames, strict=True):
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts, frame.time_base = pts, Fraction(1, 1000)
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    result = run_cli("lip2speech", run, "--video", path, "--out", tmp_path / "s.wav", "--json")
    assert result.exit_code == 0, result.output
    res = json.loads(result.stdout[result.stdout.index("{") :])
    assert res["frames"] == 25  # 1 s at 25 fps, whatever the file's timing


@pytest.mark.parametrize(
    ("case", "needle"),
    [("noface", "no face found"), ("short", "needs at least one window"), ("folder", "does not exist"),
     ("suffix", "name a .wav file"), ("vqa", "not a lip-to-speech model"), ("sync", "not a lip-to-speech model")],
)  # fmt: skip
def test_bad_input_is_one_line_and_leaves_nothing(case, needle, run, expert_run, tiny_run, videos, tmp_path):
    video, out, model = videos["face"], tmp_path / "s.wav", run
    if case in ("noface", "short"):
        video = videos[case]
    elif case == "folder":
        out = tmp_path / "missing" / "s.wav"
    elif case == "suffix":
        out = tmp_path / "s.mp3"
    elif case in ("vqa", "sync"):
        model = tiny_run if case == "vqa" else expert_run
    result = run_cli("lip2speech", model, "--video", video, "--out", out, "--mux", tmp_path / "m.mp4")
    assert_clear_error(result, needle)
    assert list(tmp_path.iterdir()) == []


def test_mumo_load_says_what_to_use_for_a_lip_to_speech_run(run):
    import mumo
    from mumo.errors import CheckpointError

    with pytest.raises(CheckpointError, match="mumo lip2speech RUN"):
        mumo.load(run)
