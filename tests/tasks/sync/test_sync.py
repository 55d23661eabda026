"""The lip-sync task end to end on tiny real files: layout -> clips -> training on the shared loop ->
checkpoint -> offsets, LSE-D/LSE-C, MC-dropout sync probability; raw videos -> preprocess -> layout."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from mumo.data.av.audio import save_wav
from mumo.data.av.clips import (
    LipSyncClip,
    load_clips,
    preprocess_videos,
    read_clip,
    read_filelist,
    sample_pairs,
    split_by_speaker,
)
from mumo.errors import MumoError

SR = 16000


def _speech_like(n_frames: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Audio with random syllable bursts and the per-frame 'mouth opening' that follows it."""
    opening = (rng.random(n_frames) < 0.4).astype(np.float32)  # (T,) open or closed per frame
    t = np.arange(int(n_frames / 25 * SR)) / SR
    envelope = np.repeat(opening, SR // 25)[: len(t)]
    wav = 0.5 * envelope * np.sin(2 * np.pi * 300 * t) * (1 + 0.3 * np.sin(2 * np.pi * 5 * t))
    return wav.astype(np.float32) + rng.normal(0, 1e-3, len(t)).astype(np.float32), opening


def make_layout(root: Path, *, speakers: int = 4, clips: int = 2, frames: int = 40, boxes: bool = True) -> Path:
    """A tiny talking-face set: grey faces whose mouth (lower half) darkens when the audio is loud."""
    rng = np.random.default_rng(0)
    entries = []
    for s in range(speakers):
        for c in range(clips):
            clip_dir = root / f"spk{s}" / f"{c:03d}"
            clip_dir.mkdir(parents=True)
            wav, opening = _speech_like(frames, rng)
            save_wav(clip_dir / "audio.wav", wav)
            for f in range(frames):
                img = np.full((120, 120, 3), 40 + 20 * s, np.uint8)  # background
                img[10:110, 10:110] = (200, 170, 150)  # the face box
                mouth = 60 if opening[f] else 190
                img[75:95, 35:85] = mouth
                Image.fromarray(img).save(clip_dir / f"{f:05d}.png")
            if boxes:
                (clip_dir / "boxes.json").write_text(json.dumps([[10, 10, 110, 110]] * frames))
            entries.append(f"spk{s}/{c:03d}")
    (root / "filelists").mkdir()
    splits = split_by_speaker(entries, val_fraction=0.25, test_fraction=0.25, seed=0)
    for split, es in splits.items():
        (root / "filelists" / f"{split}.txt").write_text("".join(f"{e}\n" for e in es))
    return root


@pytest.fixture(scope="module")
def layout(tmp_path_factory) -> Path:
    return make_layout(tmp_path_factory.mktemp("faces"))


def test_layout_reads_as_mouths_and_mel(layout):
    entries = read_filelist(layout, "train")
    clip = read_clip(layout, entries[0])
    assert clip.mouths.shape == (40, 48, 96, 3) and clip.mouths.dtype == torch.uint8
    assert clip.mel.shape[0] == 80 and abs(clip.mel.shape[1] - 40 * 80 / 25) <= 2
    assert clip.num_windows == 36
    faces, mel = clip.window(3)
    assert faces.shape == (15, 48, 96) and mel.shape == (1, 80, 16)


def test_speakers_are_disjoint_across_splits(layout):
    speakers = {s: {e.split("/")[0] for e in read_filelist(layout, s)} for s in ("train", "val", "test")}
    assert speakers["train"] and speakers["val"] and speakers["test"]
    assert not (speakers["train"] & speakers["val"]) and not (speakers["train"] & speakers["test"])


def test_pairs_are_balanced_and_seeded(layout):
    clips = load_clips(layout, "train", progress=False)
    a = sample_pairs(clips, 10, torch.Generator().manual_seed(1))
    b = sample_pairs(clips, 10, torch.Generator().manual_seed(1))
    assert a.labels.sum() == 5 and torch.equal(a.faces, b.faces) and torch.equal(a.mels, b.mels)


def test_bad_layouts_give_clear_errors(tmp_path, layout):
    with pytest.raises(MumoError, match="filelists"):
        read_filelist(tmp_path, "train")
    (tmp_path / "filelists").mkdir()
    (tmp_path / "filelists" / "train.txt").write_text("spk9/000\nspk9/001\n")
    with pytest.raises(MumoError, match="spk9/000"):
        read_filelist(tmp_path, "train")
    with pytest.raises(MumoError, match="split"):
        read_filelist(layout, "dev")


def test_sync_training_warns_when_val_or_test_speakers_are_also_in_train(layout, tmp_path):
    from mumo.data.av.clips import SharedSpeakersWarning, shared_speakers
    from mumo.tasks.sync.task import _warn_if_speakers_shared

    assert shared_speakers(layout) == {}  # split by speaker: no warning
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _warn_if_speakers_shared(layout)

    (tmp_path / "filelists").mkdir()  # a single-speaker set, split by clip (names only are read)
    for split, names in {"train": "spk000/00000\nspk000/00001\n", "val": "spk000/00002\n", "test": ""}.items():
        (tmp_path / "filelists" / f"{split}.txt").write_text(names)
    assert shared_speakers(tmp_path) == {"val": ["spk000"]}
    with pytest.warns(SharedSpeakersWarning, match=r"not split by speaker: .* also in val 1 \(spk000\).*--speakers 3"):
        _warn_if_speakers_shared(tmp_path)


def test_training_learns_sync_and_scores_offsets(layout, tmp_path):
    from mumo.tasks.sync.config import load_sync_config
    from mumo.tasks.sync.task import load_sync_expert, score_clip, shift_clip, train_sync

    cfg = load_sync_config(
        "sync-cpu",
        [f"data.root={layout}", "data.pairs_per_epoch=1024", "data.eval_pairs=200", "train.epochs=3",
         "train.batch_size=32", "model.face_channels=[8,8,16,16,32,32]", "model.audio_channels=[8,16,16,32]",
         "model.embedding=32", "train.decay_epochs=[]"],
    )  # fmt: skip
    summary = train_sync(cfg, tmp_path / "run", progress=False)
    assert summary["best_val_eval_loss"] < 0.6  # chance is ln 2 = 0.69
    assert any((tmp_path / "run").rglob("model.safetensors"))
    model = load_sync_expert(tmp_path / "run")
    clip = load_clips(layout, "test", progress=False)[0]
    synced = score_clip(model, clip, max_offset=6, mc_samples=4)
    assert synced["offset_frames"] == 0
    assert 0.0 <= synced["sync_probability"] <= 1.0 and synced["sync_probability_std"] > 0
    shifted = score_clip(model, shift_clip(clip, 3), max_offset=6)
    assert shifted["offset_frames"] in (2, 3, 4)
    # compared as given (offset 0), the shifted clip's lips and audio are further apart than the synced clip's.
    # (Its LSE-D, the distance at its own best offset, need not be: the offset search realigns it.)
    zero = 6  # column of offset 0 in mean_distance_per_offset, offsets -6..6
    assert shifted["mean_distance_per_offset"][zero] > synced["mean_distance_per_offset"][zero]


def test_shift_clip_moves_the_mel():
    mel = torch.arange(80 * 40, dtype=torch.float32).view(80, 40)
    clip = LipSyncClip("c", torch.zeros(12, 48, 96, 3, dtype=torch.uint8), mel)
    from mumo.tasks.sync.task import shift_clip

    later = shift_clip(clip, 5)  # 5 frames = 16 mel steps
    assert torch.equal(later.mel[:, 16:], mel[:, :-16]) and (later.mel[:, :16] == -4).all()
    earlier = shift_clip(clip, -5)
    assert torch.equal(earlier.mel[:, :-16], mel[:, 16:])


def test_preprocess_turns_raw_videos_into_the_layout(tmp_path):
    """Raw mp4s of a real face photo (scikit-image's astronaut) -> face crops + audio + filelists."""
    from skimage import data as skdata

    from mumo.data.av.video import write_video

    face = skdata.astronaut()[::2, ::2]  # (256, 256, 3)
    rng = np.random.default_rng(0)
    src = tmp_path / "raw"
    for s in range(3):
        (src / f"spk{s}").mkdir(parents=True)
        wav, _ = _speech_like(15, rng)
        write_video(src / f"spk{s}" / "00001.mp4", np.stack([face] * 15), fps=25, audio=wav, audio_rate=SR)
    write_video(src / "spk0" / "00002.mp4", np.stack([face] * 15), fps=25)  # no audio: skipped, reported
    res = preprocess_videos(src, tmp_path / "out", progress=False)
    assert res["written"] == 3 and len(res["skipped"]) == 1 and "no audio" in next(iter(res["skipped"].values()))
    clip = read_clip(tmp_path / "out", "spk0/00001")
    assert clip.mouths.shape == (15, 48, 96, 3) and clip.num_windows >= 5
    with pytest.raises(MumoError, match="not empty"):
        preprocess_videos(src, tmp_path / "out", progress=False)
