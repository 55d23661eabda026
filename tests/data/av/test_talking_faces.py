import ctypes.util
import json
import wave
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

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
    [({"clips": 0}, "clips must be >= 1"), ({"clips": 5, "speakers": 2}, "speakers must be >= 3"),
     ({"clips": 3, "speakers": 4}, "cannot exceed clips")],
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
