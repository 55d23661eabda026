"""``mumo data ...`` never leaves half a data set: every argument is checked before anything is written, and a
generation that fails or is interrupted leaves ``--out`` as it was (absent, empty, or the previous set), with no
temporary folder beside it, so that a rerun works."""

from __future__ import annotations

import errno
import json
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

from mumo.data import _output
from mumo.data.av import clips as clips_mod
from mumo.data.av import talking_faces as tf_mod
from mumo.data.vqa import sort_of_clevr as soc
from mumo.errors import MumoError
from tests.reliability._cli import assert_one_line_error, mumo


def _files(root: Path) -> dict[str, bytes | None]:
    """Every path under ``root``, with the bytes of each file (None for a folder)."""
    return {str(p.relative_to(root)): (p.read_bytes() if p.is_file() else None) for p in sorted(root.rglob("*"))}


@pytest.fixture(params=["absent", "empty"])
def out(request, tmp_path) -> Path:
    """``--out`` as a user gives it: a folder that does not exist yet, or an empty one."""
    path = tmp_path / "work" / "out"
    path.parent.mkdir()
    if request.param == "empty":
        path.mkdir()
    return path


def _assert_as_before(out: Path, before: dict) -> None:
    """``out``'s parent holds exactly what it held (no partial folder beside ``out``), ``out`` included."""
    assert _files(out.parent) == before


def _without_progress(result: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    """``result`` with the progress bar's lines (``preprocess:  62%|...``) taken out of stderr."""
    bar = re.compile(r"[\w -]+:\s+\d+%\|")
    lines = [line.rsplit("\r", 1)[-1] for line in result.stderr.split("\n")]  # what a terminal shows
    lines = [line for line in lines if line.strip() and not bar.match(line)]
    return subprocess.CompletedProcess(result.args, result.returncode, result.stdout, "".join(f"{x}\n" for x in lines))


def _failing_after(n: int, exc: BaseException, real):
    """A stand-in for a per-item writer that raises ``exc`` once ``n`` items are written."""
    calls = {"n": 0}

    def writer(*args, **kwargs):
        if calls["n"] >= n:
            raise exc
        calls["n"] += 1
        return real(*args, **kwargs)

    return writer


# --------------------------------------------------------------------------------------------------
# mumo data sort-of-clevr
# --------------------------------------------------------------------------------------------------

SOC_BAD = {
    "negative seed": (["--seed", -1], ["seed must be between 0 and 4294967295", "not -1"]),
    "seed of 2**32": (["--seed", 2**32], ["seed must be between 0 and 4294967295", f"not {2**32}"]),
    "no training images": (["--train", 0], ["train image count must be between 1 and 1,000,000", "not 0"]),
    "an empty set": (["--train", 0, "--test", 0], ["train image count", "not 0"]),
    "negative train": (["--train", -1], ["train image count must be between 1 and 1,000,000", "not -1"]),
    "no test images": (["--test", 0], ["test image count must be between 1 and 1,000,000", "not 0", "test accuracy"]),
    "negative test": (["--test", -5], ["test image count", "not -5"]),
    "too many images": (["--train", 1_000_001], ["train image count", "not 1000001", "GB on disk"]),
}


@pytest.mark.parametrize("args, fragments", SOC_BAD.values(), ids=SOC_BAD.keys())
def test_sort_of_clevr_refuses_bad_arguments_before_writing(out, args, fragments):
    before = _files(out.parent)
    result = mumo("data", "sort-of-clevr", "--out", out, "--train", 2, "--test", 1, *args)
    assert_one_line_error(result, *fragments)
    _assert_as_before(out, before)


@pytest.mark.parametrize("kind", ["a file", "a non-empty folder"])
def test_sort_of_clevr_refuses_an_occupied_out(tmp_path, kind):
    out = tmp_path / "out"
    if kind == "a file":
        out.write_text("mine")
    else:
        out.mkdir()
        (out / "notes.txt").write_text("mine")
    before = _files(tmp_path)
    result = mumo("data", "sort-of-clevr", "--out", out, "--train", 2, "--test", 1)
    assert_one_line_error(result, str(out), "not an empty directory")
    assert _files(tmp_path) == before


@pytest.mark.parametrize(
    "exc, code, message",
    [
        (KeyboardInterrupt(), 130, "interrupted;"),
        (OSError(errno.ENOSPC, "No space left on device"), 2, "No space left on device"),
        (MumoError("a bad thing"), 2, "a bad thing"),
    ],
    ids=["ctrl-c", "disk full", "error"],
)
def test_sort_of_clevr_interrupted_leaves_nothing_and_a_rerun_works(out, monkeypatch, exc, code, message):
    before = _files(out.parent)
    monkeypatch.setattr(soc, "_write_example", _failing_after(3, exc, soc._write_example))
    result = mumo("data", "sort-of-clevr", "--out", out, "--train", 4, "--test", 2)
    assert result.returncode == code, result.stderr
    if code == 2:
        assert_one_line_error(_without_progress(result), message)
    else:
        assert _without_progress(result).stderr == f"interrupted; {out} is left as it was (run the command again)\n"
    _assert_as_before(out, before)

    monkeypatch.undo()
    result = mumo("data", "sort-of-clevr", "--out", out, "--train", 4, "--test", 2)
    assert result.returncode == 0, result.stderr
    assert json.loads((out / "meta.json").read_text())["counts"] == {"train": 4, "test": 2}
    assert sorted(p.name for p in out.parent.iterdir()) == ["out"]


def test_sort_of_clevr_failure_removes_the_parents_it_created(tmp_path, monkeypatch):
    monkeypatch.setattr(soc, "_write_example", _failing_after(1, KeyboardInterrupt(), soc._write_example))
    assert mumo("data", "sort-of-clevr", "--out", tmp_path / "a" / "b" / "out", "--train", 2, "--test", 1).returncode
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------------------------------
# mumo data preprocess (face detection replaced by a stand-in: these tests are about the files)
# --------------------------------------------------------------------------------------------------


def _raw_videos(root: Path, speakers: int, clips: int = 1) -> Path:
    """``root/spk<s>/<c>.mp4``: placeholders, read only by the stand-in for face detection."""
    for s in range(speakers):
        (root / f"spk{s}").mkdir(parents=True)
        for c in range(clips):
            (root / f"spk{s}" / f"{c:05d}.mp4").write_bytes(b"not a video")
    return root


def _fake_face_crops(path: Path, **kwargs):
    if "unusable" in path.read_text(errors="replace"):
        raise MumoError(f"no face found in any frame of {path}")
    clip = clips_mod.LipSyncClip(path.stem, torch.zeros(0, 48, 96, 3, dtype=torch.uint8), torch.zeros(80, 0))
    frames = torch.full((6, 120, 120, 3), 128, dtype=torch.uint8)  # (T, H, W, 3) at 25 fps
    return clip, torch.full((6, 96, 96, 3), 128, dtype=torch.uint8), torch.zeros(16_000 * 6 // 25), frames


@pytest.fixture
def fake_faces(monkeypatch):
    monkeypatch.setattr(clips_mod, "_face_crops", _fake_face_crops)


PREPROCESS_BAD = {
    "fractions out of range": (
        ["--val-fraction", 2, "--test-fraction", -1],
        ["--val-fraction must lie in [0, 1)", "not 2.0"],
    ),
    "negative test fraction": (["--test-fraction", -1], ["--test-fraction must lie in [0, 1)", "not -1.0"]),
    "a fraction of 1": (["--val-fraction", 1], ["--val-fraction must lie in [0, 1)", "not 1.0"]),
    "nan": (["--test-fraction", "nan"], ["--test-fraction must lie in [0, 1)", "not nan"]),
    "fractions summing to 1": (
        ["--val-fraction", 0.6, "--test-fraction", 0.4],
        ["--val-fraction + --test-fraction must be below 1", "0.6 + 0.4"],
    ),
    "negative seed": (["--seed", -1], ["seed must be between 0 and 4294967295", "not -1"]),
    "no speaker left for training": (
        ["--val-fraction", 0.45, "--test-fraction", 0.5],
        ["the 3 speakers of the videos", "would leave training none", "val 1, test 2"],
    ),
}


@pytest.mark.parametrize("args, fragments", PREPROCESS_BAD.values(), ids=PREPROCESS_BAD.keys())
def test_preprocess_refuses_bad_arguments_before_reading_or_writing(tmp_path, out, monkeypatch, args, fragments):
    videos = _raw_videos(tmp_path / "raw", speakers=3)
    monkeypatch.setattr(clips_mod, "_face_crops", lambda *a, **k: pytest.fail("a video was read"))
    before = _files(out.parent)
    result = mumo("data", "preprocess", "--videos", videos, "--out", out, *args)
    assert_one_line_error(result, *fragments)
    _assert_as_before(out, before)


def test_preprocess_refuses_when_the_usable_videos_leave_training_no_speaker(tmp_path, out, fake_faces):
    # 5 speakers split 1 / 2 / 2; once spk4's video proves unusable, 4 speakers split 0 / 2 / 2
    videos = _raw_videos(tmp_path / "raw", speakers=5)
    (videos / "spk4" / "00000.mp4").write_text("unusable")
    before = _files(out.parent)
    result = mumo(
        "data", "preprocess", "--videos", videos, "--out", out, "--val-fraction", 0.45, "--test-fraction", 0.45
    )
    assert_one_line_error(
        _without_progress(result), "the 4 speakers of the 4 usable videos (1 skipped)", "would leave training none"
    )
    _assert_as_before(out, before)


def test_preprocess_refuses_a_file_as_out(tmp_path, fake_faces):
    videos = _raw_videos(tmp_path / "raw", speakers=3)
    (tmp_path / "out").write_text("mine")
    result = mumo("data", "preprocess", "--videos", videos, "--out", tmp_path / "out")
    assert_one_line_error(result, "exists and is not a directory")
    assert (tmp_path / "out").read_text() == "mine"


def test_preprocess_interrupted_leaves_nothing_and_a_rerun_works(tmp_path, out, monkeypatch, fake_faces):
    videos = _raw_videos(tmp_path / "raw", speakers=4, clips=2)
    before = _files(out.parent)
    monkeypatch.setattr(clips_mod, "_face_crops", _failing_after(5, KeyboardInterrupt(), _fake_face_crops))
    result = mumo("data", "preprocess", "--videos", videos, "--out", out)
    assert result.returncode == 130
    assert _without_progress(result).stderr == f"interrupted; {out} is left as it was (run the command again)\n"
    _assert_as_before(out, before)

    monkeypatch.setattr(clips_mod, "_face_crops", _fake_face_crops)
    result = mumo("data", "preprocess", "--videos", videos, "--out", out)
    assert result.returncode == 0, result.stderr
    assert "wrote 8 clips" in result.stdout
    entries = [e for split in ("train", "val", "test") for e in clips_mod.read_filelist(out, split)]
    assert sorted(entries) == [f"spk{s}/{c:05d}" for s in range(4) for c in range(2)]
    assert sorted(p.name for p in out.parent.iterdir()) == ["out"]


# --------------------------------------------------------------------------------------------------
# mumo data talking-faces (clips replaced by a stand-in: these tests are about the files, not espeak-ng)
# --------------------------------------------------------------------------------------------------


def _fake_clip(clip_dir: Path, person: dict, rng: np.random.Generator, *, size: int) -> str:
    clip_dir.mkdir(parents=True, exist_ok=True)
    (clip_dir / "meta.json").write_text(json.dumps({"draw": int(rng.integers(1 << 30))}))
    return "fake-espeak"


@pytest.fixture
def fake_clips(monkeypatch):
    monkeypatch.setattr(tf_mod, "_write_clip", _fake_clip)


def test_talking_faces_refuses_a_bad_seed_and_keeps_the_previous_set(tmp_path, fake_clips):
    out = tmp_path / "faces"
    assert mumo("data", "talking-faces", "--out", out, "--clips", 3, "--seed", 1).returncode == 0
    before = _files(tmp_path)
    assert_one_line_error(mumo("data", "talking-faces", "--out", out, "--clips", 3, "--seed", -1), "not -1")
    assert _files(tmp_path) == before


@pytest.mark.parametrize("previous", [False, True], ids=["new", "replacing a previous set"])
def test_talking_faces_interrupted_leaves_out_as_it_was(tmp_path, monkeypatch, fake_clips, previous):
    out = tmp_path / "faces"
    if previous:
        assert mumo("data", "talking-faces", "--out", out, "--clips", 3, "--seed", 1).returncode == 0
    before = _files(tmp_path)
    monkeypatch.setattr(tf_mod, "_write_clip", _failing_after(2, KeyboardInterrupt(), _fake_clip))
    result = mumo("data", "talking-faces", "--out", out, "--clips", 4, "--seed", 2)
    assert result.returncode == 130
    assert _without_progress(result).stderr == f"interrupted; {out} is left as it was (run the command again)\n"
    assert _files(tmp_path) == before

    monkeypatch.setattr(tf_mod, "_write_clip", _fake_clip)
    assert mumo("data", "talking-faces", "--out", out, "--clips", 4, "--seed", 2).returncode == 0
    meta = json.loads((out / "meta.json").read_text())
    assert meta["complete"] and meta["seed"] == 2 and meta["counts"]["clips"] == 4
    assert sorted(p.name for p in tmp_path.iterdir()) == ["faces"]


def test_talking_faces_speakers_1_makes_a_single_speaker_set_split_by_clip(tmp_path, fake_clips):
    out = tmp_path / "one"
    result = mumo("data", "talking-faces", "--out", out, "--clips", 6, "--speakers", 1, "--seed", 3)
    assert result.returncode == 0, result.stderr
    assert f"wrote 6 clips to {out}, split by clip: " in result.stdout
    lists = {s: (out / "filelists" / f"{s}.txt").read_text().splitlines() for s in ("train", "val", "test")}
    assert all(lists.values())  # every split has a clip
    names = [name for names in lists.values() for name in names]
    assert sorted(names) == [f"spk000/{i:05d}" for i in range(6)]  # one speaker; the splits share no clip
    meta = json.loads((out / "meta.json").read_text())
    assert meta["split_by"] == "clip" and meta["speakers"] == {s: ["spk000"] for s in lists}
    assert [meta["counts"][f"{s}_clips"] for s in lists] == [len(v) for v in lists.values()]

    multi = tmp_path / "multi"
    result = mumo("data", "talking-faces", "--out", multi, "--clips", 6, "--speakers", 3)
    assert result.returncode == 0 and "split by speaker: " in result.stdout
    assert "split_by" not in json.loads((multi / "meta.json").read_text())

    help_text = " ".join(mumo("data", "talking-faces", "--help").stdout.replace("│", " ").split())
    assert "1 makes a single-speaker set split by clip" in help_text and "for lip-to-speech" in help_text
    assert "3 or more make a multi-speaker set split by speaker" in help_text


@pytest.mark.parametrize(
    ("args", "fragments"),
    [((6, 2), ("speakers must be 1 (a single-speaker set split by clip", "or >= 3", "not 2")),
     ((2, 1), ("single-speaker set (speakers 1)", "needs clips >= 3", "not 2")),
     ((6, 0), ("speakers must be 1", "not 0"))],
    ids=["two speakers", "one speaker, two clips", "no speaker"],
)  # fmt: skip
def test_talking_faces_bad_speaker_counts_are_one_line_errors(tmp_path, fake_clips, args, fragments):
    clips, speakers = args
    before = _files(tmp_path)
    result = mumo("data", "talking-faces", "--out", tmp_path / "x", "--clips", clips, "--speakers", speakers)
    assert_one_line_error(result, *fragments)
    assert _files(tmp_path) == before  # nothing written


# --------------------------------------------------------------------------------------------------
# the staging folder itself
# --------------------------------------------------------------------------------------------------


def test_a_finished_set_that_cannot_be_renamed_is_kept_and_named(tmp_path):
    out = tmp_path / "out"
    kept_in = r"could not rename the finished data set .*out\.partial-.* it is kept in"
    with pytest.raises(MumoError, match=kept_in), _output.staged_output(out) as stage:
        (stage / "data.txt").write_text("finished")
        out.mkdir()
        (out / "late.txt").write_text("someone else's")  # out is no longer empty
    (kept,) = tmp_path.glob("out.partial-*")
    assert (kept / "data.txt").read_text() == "finished" and (out / "late.txt").exists()


def test_a_folder_that_cannot_hold_the_staging_folder_is_one_error(tmp_path):
    (tmp_path / "file").write_text("x")
    with (
        pytest.raises(MumoError, match="cannot create a folder beside"),
        _output.staged_output(tmp_path / "file" / "x"),
    ):
        pytest.fail("the block ran")


def test_a_link_to_an_empty_folder_is_filled_and_kept(tmp_path):
    (tmp_path / "target").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "target", target_is_directory=True)
    assert mumo("data", "sort-of-clevr", "--out", tmp_path / "link", "--train", 2, "--test", 1).returncode == 0
    assert (tmp_path / "link").is_symlink() and (tmp_path / "target" / "meta.json").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link", "target"]
