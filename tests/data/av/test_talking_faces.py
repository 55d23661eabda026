import ctypes.util
import json
import wave
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mumo.data.av.clips import load_clips, shared_speakers
from mumo.data.av.talking_faces import SPLITS, TEMPLATES, generate_talking_faces, sentence
from mumo.errors import MumoError

pytestmark = pytest.mark.skipif(
    ctypes.util.find_library("espeak-ng") is None,
    reason="espeak-ng is not installed (apt-get install espeak-ng)",
)
CLIPS = 6


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("tf") / "set"
    generate_talking_faces(root, clips=CLIPS, seed=0, progress=False)
    return root


def test_layout_audio_and_boxes(dataset):
    meta = json.loads((dataset / "meta.json").read_text())
    assert meta["format"] == "mumo-talking-faces" and meta["complete"] and meta["seed"] == 0
    assert meta["counts"]["clips"] == CLIPS and meta["counts"]["speakers"] == 3
    names = [line for split in SPLITS for line in (dataset / "filelists" / f"{split}.txt").read_text().splitlines()]
    assert len(names) == len(set(names)) == CLIPS
    texts = set()
    for name in names:
        clip = dataset / name
        info = json.loads((clip / "meta.json").read_text())
        n = info["n_frames"]
        assert sorted(p.name for p in clip.glob("*.png")) == [f"{i:05d}.png" for i in range(n)]
        with Image.open(clip / "00000.png") as im:
            assert im.size == (160, 160) and im.mode == "RGB"
        with wave.open(str(clip / "audio.wav")) as f:
            assert (f.getframerate(), f.getnchannels(), f.getsampwidth()) == (16_000, 1, 2)
            assert f.getnframes() / 16_000 == pytest.approx(n / 25)  # audio covers the frames exactly
            pcm = np.frombuffer(f.readframes(f.getnframes()), dtype="<i2")
        assert np.abs(pcm).max() > 3000  # speech, not silence
        assert 1.5 <= info["speech_samples"] / 16_000 <= 4.0
        starts = [ms for _, ms in info["phonemes"]]
        assert starts == sorted(starts) and starts[-1] <= 1000 * n / 25
        assert info["voice"].partition("+")[2] and info["text"] and info["words"]
        boxes = json.loads((clip / "boxes.json").read_text())["boxes"]
        assert len(boxes) == n
        assert all(0 <= x0 < x1 <= 160 and 0 <= y0 < y1 <= 160 for x0, y0, x1, y1 in boxes)
        texts.add(info["text"])
    assert len(texts) == CLIPS  # varied sentences


def test_splits_are_disjoint_by_speaker(dataset):
    meta = json.loads((dataset / "meta.json").read_text())
    speakers = {}
    for split in SPLITS:
        lines = (dataset / "filelists" / f"{split}.txt").read_text().splitlines()
        assert lines, split
        speakers[split] = {line.split("/")[0] for line in lines}
        assert sorted(speakers[split]) == meta["speakers"][split]
    assert not speakers["train"] & speakers["val"]
    assert not speakers["train"] & speakers["test"]
    assert not speakers["val"] & speakers["test"]
    assert "split_by" not in meta  # a multi-speaker set's meta.json is what it was before single-speaker sets
    assert shared_speakers(dataset) == {}
    # a speaker keeps its voice across clips
    for spk in speakers["train"]:
        voices = {json.loads(p.read_text())["voice"] for p in (dataset / spk).glob("*/meta.json")}
        assert len(voices) == 1


def test_same_seed_same_bytes_other_seed_other_data(dataset, tmp_path):
    other = tmp_path / "other"
    generate_talking_faces(other, clips=CLIPS, seed=1, progress=False)
    a, b = _files(dataset), _files(other)
    assert a["meta.json"] != b["meta.json"]
    assert {k for k in a if k.endswith("audio.wav")} & {k for k in b if k.endswith("audio.wav")}
    assert all(a[k] != b[k] for k in a if k.endswith("audio.wav") and k in b)

    # regenerating with seed 0 over the previous set replaces it, byte for byte
    generate_talking_faces(other, clips=CLIPS, seed=0, progress=False)
    assert _files(other) == a


def test_refuses_foreign_or_mixed_directories(dataset, tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(MumoError, match="not a talking-faces data set"):
        generate_talking_faces(tmp_path, clips=3, progress=False)
    assert (tmp_path / "notes.txt").read_text() == "mine"
    with pytest.raises(MumoError, match="not a directory"):
        generate_talking_faces(tmp_path / "notes.txt", clips=3, progress=False)

    mixed = tmp_path / "mixed"
    mixed.mkdir()
    (mixed / "meta.json").write_text((dataset / "meta.json").read_text())
    (mixed / "keep.txt").write_text("mine")
    with pytest.raises(MumoError, match=r"plus other files \(keep.txt\)"):
        generate_talking_faces(mixed, clips=3, progress=False)
    assert (mixed / "keep.txt").exists()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"clips": 0}, "clips must be >= 1"), ({"clips": 3, "speakers": 4}, "cannot exceed clips"),
     ({"clips": 5, "speakers": 2}, r"speakers must be 1 \(a single-speaker set split by clip.*or >= 3 .*not 2"),
     ({"clips": 5, "speakers": 0}, "speakers must be 1 .* not 0"), ({"clips": 5, "speakers": -1}, "not -1"),
     ({"clips": 2, "speakers": 1}, r"single-speaker set \(speakers 1\) is split by clip and needs clips >= 3.*not 2")],
)  # fmt: skip
def test_bad_counts(tmp_path, kwargs, message):
    with pytest.raises(MumoError, match=message):
        generate_talking_faces(tmp_path / "x", progress=False, **kwargs)
    assert not (tmp_path / "x").exists()


def test_sentences_vary_and_fill_every_slot():
    rng = np.random.default_rng(0)
    sentences = [sentence(rng) for _ in range(200)]
    assert len(set(sentences)) > 150
    assert not any("{" in s for s in sentences)
    assert len(TEMPLATES) >= 10


# --------------------------------------------------------------------------------------------------
# a single-speaker set (speakers=1): one person's clips, split by clip
# --------------------------------------------------------------------------------------------------
SINGLE = {"clips": 6, "speakers": 1, "seed": 3, "size": 48}


@pytest.fixture(scope="module")
def single(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("tf1") / "set"
    generate_talking_faces(root, progress=False, **SINGLE)
    return root


def _filelists(root: Path) -> dict[str, list[str]]:
    return {split: (root / "filelists" / f"{split}.txt").read_text().splitlines() for split in SPLITS}


def test_single_speaker_set_is_split_by_clip(single):
    meta = json.loads((single / "meta.json").read_text())
    lists = _filelists(single)
    assert all(lists[split] for split in SPLITS)  # every split has a clip
    names = [name for split in SPLITS for name in lists[split]]
    assert len(names) == len(set(names)) == 6  # disjoint by clip, and together every clip
    assert sorted(names) == [f"spk000/{i:05d}" for i in range(6)]
    assert sorted(p.parent.name + "/" + p.name for p in single.glob("*/*") if p.is_dir()) == sorted(names)
    assert [len(lists[split]) for split in SPLITS] == [4, 1, 1]  # 70/15/15, one per split at least
    assert meta["split_by"] == "clip" and meta["complete"] and meta["seed"] == 3 and meta["frame_size"] == 48
    assert meta["speakers"] == {split: ["spk000"] for split in SPLITS}
    assert meta["counts"] == {
        "clips": 6, "speakers": 1, "train_clips": 4, "val_clips": 1, "test_clips": 1,
        "train_speakers": 1, "val_speakers": 1, "test_speakers": 1,
    }  # fmt: skip
    voices = {json.loads((single / name / "meta.json").read_text())["voice"] for name in names}
    identities = {json.dumps(json.loads((single / name / "meta.json").read_text())["identity"]) for name in names}
    assert len(voices) == len(identities) == 1  # one person
    assert shared_speakers(single) == {"val": ["spk000"], "test": ["spk000"]}


def test_single_speaker_set_loads_for_clip_level_use(single):
    for split in SPLITS:
        clips = load_clips(single, split, progress=False, keep_faces=True)
        assert [c.name for c in clips] == _filelists(single)[split]
        assert all(c.num_windows > 0 and c.faces is not None for c in clips)


def test_single_speaker_same_seed_same_bytes_and_split_by_seed_index_and_count_only(single, tmp_path):
    again = tmp_path / "again"
    generate_talking_faces(again, progress=False, **SINGLE)
    assert _files(again) == _files(single)
    # the split is a function of (seed, clip index, clip count): not of the frame size
    smaller = tmp_path / "smaller"
    generate_talking_faces(smaller, progress=False, **{**SINGLE, "size": 32})
    assert _filelists(smaller) == _filelists(single)
    # another seed: other clips
    other = tmp_path / "other"
    generate_talking_faces(other, progress=False, **{**SINGLE, "seed": 4, "size": 32})
    texts = [json.loads((root / "spk000" / "00000" / "meta.json").read_text())["text"] for root in (single, other)]
    assert texts[0] != texts[1]
