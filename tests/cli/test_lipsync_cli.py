"""``mumo lipsync`` end to end with a tiny trained generator: --audio and --text (espeak-ng), --json with a scorer,
and every bad input as one line with exit status 2 and no output file left behind."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mumo.data.av.audio import save_wav
from mumo.data.av.video import read_video
from tests.cli._invoke import assert_clear_error, run_cli
from tests.tasks.lipsync.test_dub import files, speech  # noqa: F401 (a fixture)
from tests.tasks.lipsync.test_lipsync_evaluate import generator_run, layout, scorer_run  # noqa: F401 (fixtures)
from tests.tasks.lipsync.test_lipsync_train import expert_run  # noqa: F401 (a fixture)

needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")


def _json(result) -> dict:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout[result.stdout.index("{") :])


def test_json_with_a_scorer(generator_run, scorer_run, files, tmp_path):  # noqa: F811
    out = tmp_path / "out.mp4"
    res = _json(run_cli("lipsync", generator_run, "--face", files["short_mp4"], "--audio", files["one_wav"],
                        "--out", out, "--scorer", scorer_run, "--device", "cpu", "--json"))  # fmt: skip
    assert res["output"] == str(out) and res["frames"] == 25 and res["seconds"] == 1.0 and res["fps"] == 25
    assert res["face_frames"] + res["passed_through"] == 25 and res["length"] == "ping-pong"
    assert {"lse_d", "lse_c", "offset_frames", "per_second"} <= set(res["scorer"])
    assert read_video(out).num_frames == 25 and [p.name for p in tmp_path.iterdir()] == ["out.mp4"]


def test_plain_output_names_the_result(generator_run, files, tmp_path):  # noqa: F811
    out = tmp_path / "out.mp4"
    result = run_cli("lipsync", generator_run, "--face", files["face_png"], "--audio", files["short_wav"],
                     "--out", out, "--device", "cpu")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert f"{out}: 10 frames (0.40 s at 25 fps)" in result.stdout and "10 frames dubbed" in result.stdout


@needs_espeak
def test_text_is_spoken_by_espeak(generator_run, files, tmp_path):  # noqa: F811
    from mumo.data.av.espeak import synthesize

    out = tmp_path / "said.mp4"
    res = _json(run_cli("lipsync", generator_run, "--face", files["face_png"], "--text", "Hello there.",
                        "--voice", "en-us", "--out", out, "--device", "cpu", "--json"))  # fmt: skip
    seconds = synthesize("Hello there.", voice="en-us").duration_s
    assert abs(res["frames"] - seconds * 25) <= 1
    video = read_video(out)
    assert abs(video.num_frames - res["frames"]) <= 1 and video.audio is not None


def test_ctrl_c_leaves_no_output(generator_run, files, tmp_path, monkeypatch):  # noqa: F811
    from mumo.tasks.lipsync import dub

    def interrupted(self, frames):
        raise KeyboardInterrupt

    monkeypatch.setattr(dub.Mp4Stream, "write", interrupted)
    out = tmp_path / "out.mp4"
    result = run_cli("lipsync", generator_run, "--face", files["face_png"], "--audio", files["one_wav"], "--out", out)
    assert result.exit_code == 130 and "was not written" in result.output
    assert list(tmp_path.iterdir()) == []


@pytest.fixture(scope="module")
def bad(tmp_path_factory, files, expert_run) -> dict[str, Path]:  # noqa: F811
    d = tmp_path_factory.mktemp("bad")
    Image.fromarray(np.full((128, 128, 3), 128, np.uint8)).save(d / "blank.png")
    save_wav(d / "tiny.wav", speech(0.1))
    save_wav(d / "silent.wav", np.zeros(16000, np.float32))
    save_wav(d / "hiss.wav", (1e-4 * np.random.default_rng(0).standard_normal(16000)).astype(np.float32))
    (d / "vqa").mkdir()
    (d / "vqa" / "artifacts.json").write_text(json.dumps({"kind": "vqa"}))
    (d / "folder.mp4").mkdir()
    return {p.name: p for p in d.iterdir()} | {"expert": expert_run}


CASES = {
    "no face": (["--face", "blank.png", "--audio", "one_wav"], ["no face found in any frame"]),
    "short audio": (["--face", "face_png", "--audio", "tiny.wav"], ["shorter than one 0.2-s window"]),
    "silent audio": (["--face", "face_png", "--audio", "silent.wav"], ["silent", "all zeros"]),
    "nearly silent": (["--face", "face_png", "--audio", "hiss.wav"], ["silent or nearly", "dBFS"]),
    "both": (["--face", "face_png", "--audio", "one_wav", "--text", "hi"], ["exactly one of --audio"]),
    "neither": (["--face", "face_png"], ["exactly one of --audio"]),
    "out is a folder": (["--face", "face_png", "--audio", "one_wav", "--out", "folder.mp4"], ["is a folder"]),
    "out folder missing": (["--face", "face_png", "--audio", "one_wav", "--out", "nowhere/x.mp4"], ["does not exist"]),
    "vqa run": (["RUN=vqa", "--face", "face_png", "--audio", "one_wav"], ["holds a 'vqa' checkpoint", "lip-sync gen"]),
    "sync run": (["RUN=expert", "--face", "face_png", "--audio", "one_wav"], ["holds a 'sync' checkpoint"]),
    "generator as scorer": (["--face", "face_png", "--audio", "one_wav", "--scorer", "GEN"],
                            ["holds a 'lipsync' checkpoint", "lip-sync expert"]),
    "training expert as scorer": (["--face", "face_png", "--audio", "one_wav", "--scorer", "expert"],
                                  ["the expert this generator trained against"]),
}  # fmt: skip


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_is_one_line_and_leaves_no_output(case, generator_run, files, bad, tmp_path):  # noqa: F811
    args, needles = CASES[case]
    named = files | bad
    run, argv = generator_run, []
    for a in args:
        if a.startswith("RUN="):
            run = named[a[4:]]
        elif a == "GEN":
            argv.append(generator_run)
        elif a == "nowhere/x.mp4":
            argv.append(tmp_path / a)
        else:
            argv.append(named.get(a, a))
    if "--out" not in args:
        argv += ["--out", tmp_path / "out.mp4"]
    before = sorted(p.name for p in bad["blank.png"].parent.iterdir())
    assert_clear_error(run_cli("lipsync", run, *argv, "--device", "cpu"), *needles)
    assert list(tmp_path.iterdir()) == []
    assert sorted(p.name for p in bad["blank.png"].parent.iterdir()) == before


@needs_espeak
def test_an_unknown_voice_lists_the_voices(generator_run, files, tmp_path):  # noqa: F811
    result = run_cli("lipsync", generator_run, "--face", files["face_png"], "--text", "hello", "--voice", "xx-nope",
                     "--out", tmp_path / "out.mp4")  # fmt: skip
    assert_clear_error(result, "unknown espeak-ng voice 'xx-nope'", "en-us")
    assert list(tmp_path.iterdir()) == []
