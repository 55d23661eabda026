"""The CLI: happy paths and every bad input of the core issue (one-line error, exit 2, nothing written)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from mumo.cli.__main__ import build_app
from mumo.data.images import MAX_PIXELS

runner = CliRunner()


def mumo(*args: str):
    return runner.invoke(build_app(), [str(a) for a in args])


def _assert_clean_error(result, fragment: str) -> None:
    assert result.exit_code == 2, (result.exit_code, result.output)
    assert "Traceback" not in result.output
    assert fragment in result.output, result.output


def test_evaluate_json(tiny_run, monkeypatch):
    """``--images N``: the questions about the split's first N images, every question type among them."""
    import mumo.tasks.vqa.evaluate as ev

    loaded, load_data = [], ev.load_data  # the data the command evaluates, kept to count its questions

    def keep(cfg):
        loaded.append(load_data(cfg))
        return loaded[-1]

    monkeypatch.setattr(ev, "load_data", keep)
    result = mumo("evaluate", tiny_run, "--split", "val", "--images", "30", "--json")
    assert result.exit_code == 0, result.output
    res = json.loads(result.output)
    assert 0.0 <= res["accuracy"] <= 1.0
    assert set(res["accuracy_by_type"]) == {"yes/no", "color", "shape"}
    val = loaded[0].val
    assert val.num_images > 30 and res["split"] == "val"
    assert res["num_questions"] == int((val.image_index < 30).sum())  # the first 30 images' questions


def test_predict_json_and_text(tiny_run, shape_png):
    result = mumo(
        "predict",
        tiny_run,
        "--image",
        shape_png,
        "--question",
        "what color is the shape?",
        "--top-k",
        "4",
        "--json",
    )
    assert result.exit_code == 0, result.output
    pred = json.loads(result.output)
    assert len(pred["top_k"]) == 4
    probs = [a["probability"] for a in pred["top_k"]]
    assert probs == sorted(probs, reverse=True) and sum(probs) <= 1.0 + 1e-6
    assert pred["answer"] == pred["top_k"][0]["answer"]
    text = mumo("predict", tiny_run, "--image", shape_png, "--question", "what color is the shape?", "--top-k", "4")
    assert text.exit_code == 0, text.output
    # the same answers, most likely first, one "probability  answer" line each
    assert text.output.splitlines()[:4] == [f"{a['probability']:7.2%}  {a['answer']}" for a in pred["top_k"]]


def test_python_api_load_and_predict(tiny_run, shape_png):
    import mumo as mm

    predictor = mm.load(tiny_run)
    for image in (shape_png, Image.open(shape_png), np.asarray(Image.open(shape_png))):
        pred = predictor.predict(image, "what shape is in the image?", top_k=2)
        assert len(pred.top_k) == 2 and 0 < pred.probability <= 1
    assert predictor.predict(shape_png, "is there a zebra quokka?").answer in predictor.answers


def _in_mode(rgb: np.ndarray, mode: str) -> tuple[Image.Image, np.ndarray]:
    """The (H, W, 3) uint8 image in a Pillow ``mode``, and the RGB image it stands for: transparent pixels on
    white, 16-bit levels stretched to 0-255, a palette's own colours."""
    grey = np.asarray(Image.fromarray(rgb).convert("L"))
    background = rgb.min(-1) > 200  # the light backdrop around the shape: made transparent below
    if mode in ("RGBA", "LA"):
        colour = rgb if mode == "RGBA" else grey
        alpha = np.where(background, 0, 255).astype(np.uint8)
        hidden = np.where(background[..., None] if mode == "RGBA" else background, 0, colour)  # black under alpha 0
        img = Image.fromarray(np.dstack([hidden, alpha]).astype(np.uint8), mode)
        shown = np.where(background[..., None], 255, rgb if mode == "RGBA" else np.dstack([grey] * 3))
        return img, shown.astype(np.uint8)
    if mode == "I;16":
        stretched = np.round((grey - grey.min()) / (grey.max() - grey.min()) * 255).astype(np.uint8)
        return Image.fromarray(grey.astype("<u2") * 256), np.dstack([stretched] * 3)
    img = Image.fromarray(rgb).convert(mode)
    return img, np.asarray(img.convert("RGB"))  # L: grey; P: the palette's colours; CMYK: the same RGB


@pytest.mark.parametrize("mode", ["L", "LA", "P", "RGBA", "CMYK", "I;16"])
def test_predict_converts_image_modes(tiny_run, shape_png, tmp_path, mode):
    """A file in any mode is answered as the RGB image it stands for."""
    import mumo as mm

    img, expected = _in_mode(np.asarray(Image.open(shape_png).convert("RGB")), mode)
    assert img.mode == mode and (mode != "I;16" or np.asarray(img).max() > 255)
    path = tmp_path / ("x.tiff" if mode == "CMYK" else "x.png")
    img.save(path)
    predictor = mm.load(tiny_run)
    n = len(predictor.answers)
    result = mumo("predict", tiny_run, "--image", path, "--question", "what shape is it?", "--top-k", n, "--json")
    assert result.exit_code == 0, result.output
    got = {a["answer"]: a["probability"] for a in json.loads(result.output)["top_k"]}
    want = {a.answer: a.probability for a in predictor.predict(expected, "what shape is it?", top_k=n).top_k}
    assert got == pytest.approx(want, abs=1e-6)


def _bad_images(tmp: Path, good: Path) -> dict[str, tuple[Path, str]]:
    (tmp / "empty.png").write_bytes(b"")
    (tmp / "notes.png").write_text("not an image at all")
    data = good.read_bytes()
    noisy = tmp / "noisy.png"
    Image.effect_noise((64, 64), 60).convert("RGB").save(noisy)
    (tmp / "cut.png").write_bytes(noisy.read_bytes()[: len(noisy.read_bytes()) // 2])
    side = int(MAX_PIXELS**0.5) + 100
    Image.new("1", (side, side)).save(tmp / "bomb.png")
    assert data
    return {
        "missing": (tmp / "missing.png", "not found"),
        "empty": (tmp / "empty.png", "empty"),
        "not-image": (tmp / "notes.png", "not an image"),
        "truncated": (tmp / "cut.png", "truncated"),
        "bomb": (tmp / "bomb.png", "decompression bomb"),
    }


def test_bad_images_through_the_cli(tiny_run, shape_png, tmp_path):
    for _name, (path, fragment) in _bad_images(tmp_path, shape_png).items():
        _assert_clean_error(mumo("predict", tiny_run, "--image", path, "--question", "what shape?"), fragment)


@pytest.mark.parametrize(
    ("question", "fragment"),
    [("", "empty"), ("   ", "empty"), ("x" * 10_000, "limit")],
)
def test_bad_questions_through_the_cli(tiny_run, shape_png, question, fragment):
    _assert_clean_error(mumo("predict", tiny_run, "--image", shape_png, "--question", question), fragment)


def test_non_utf8_question_through_the_real_console_script(tiny_run, shape_png):
    exe = shutil.which("mumo") or pytest.skip("console script not installed")
    args = [
        exe.encode(),
        b"predict",
        str(tiny_run).encode(),
        b"--image",
        str(shape_png).encode(),
        b"--question",
        b"what \xff\xfe shape?",
    ]
    proc = subprocess.run(args, capture_output=True, env={**os.environ, "LC_ALL": "C.UTF-8"})
    assert proc.returncode == 2, proc.stderr
    err = proc.stderr.decode()
    assert "UTF-8" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_unknown_config_key_and_preset(tmp_path):
    out = tmp_path / "run"
    _assert_clean_error(mumo("train", "vqa", "--out", out, "model.hiddn=3"), "model.hiddn")
    _assert_clean_error(mumo("train", "vqa", "--out", out, "--preset", "mcan-gigantic"), "mcan-gigantic")
    _assert_clean_error(mumo("train", "vqa", "--out", out, "--data", "imagenet"), "imagenet")
    assert not out.exists(), "nothing may be written for a bad config"


def test_missing_run_and_another_models_run(tmp_path, shape_png):
    _assert_clean_error(mumo("evaluate", tmp_path / "nope"), "does not exist")
    other = tmp_path / "other"
    other.mkdir()
    (other / "artifacts.json").write_text(json.dumps({"kind": "syncnet"}))
    _assert_clean_error(mumo("evaluate", other), "not a VQA model")
    plain = tmp_path / "plain"
    plain.mkdir()
    _assert_clean_error(mumo("predict", plain, "--image", shape_png, "--question", "what?"), "not a mumo run")


def test_corrupted_checkpoint(tiny_run, tmp_path, shape_png):
    broken = tmp_path / "broken"
    shutil.copytree(tiny_run, broken)
    state = json.loads((broken / "state.json").read_text())
    weights = broken / "checkpoints" / state["best"] / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    _assert_clean_error(mumo("predict", broken, "--image", shape_png, "--question", "what shape?"), "corrupted")
    (broken / "state.json").write_text("{not json")
    _assert_clean_error(mumo("evaluate", broken), "corrupted")


def test_resume_with_a_different_config(tiny_run):
    before = sorted(p.name for p in (tiny_run / "checkpoints").iterdir())
    _assert_clean_error(mumo("train", "vqa", "--out", tiny_run, "--resume", "train.lr=0.5"), "train.lr")
    assert sorted(p.name for p in (tiny_run / "checkpoints").iterdir()) == before


def test_bad_split_and_top_k(tiny_run, shape_png):
    _assert_clean_error(mumo("evaluate", tiny_run, "--split", "train"), "--split")
    _assert_clean_error(mumo("predict", tiny_run, "--image", shape_png, "--question", "what?", "--top-k", "0"), "top_k")


def test_help_lists_commands():
    result = subprocess.run([sys.executable, "-m", "mumo.cli", "--help"], capture_output=True, text=True)
    assert result.returncode == 0
    for cmd in ("train", "evaluate", "predict"):
        assert cmd in result.stdout
