"""``mumo explain``: one explained example (text, JSON, PNG) and scores over a split; bad input is one line, exit 2."""

from __future__ import annotations

import json
import shutil

import pytest
import yaml
from PIL import Image

from tests.cli.test_cli import _assert_clean_error, mumo

Q = "what shape is in the image?"


def _explain(run, image, *args):
    return mumo("explain", run, "--image", image, "--question", Q, "--samples", "3", *args)


def test_explain_gradcam_png_and_json(tiny_run, shape_png, tmp_path):
    out = tmp_path / "cam.png"
    result = _explain(tiny_run, shape_png, "--method", "gradcam", "--out", out, "--json")
    assert result.exit_code == 0, result.output
    res = json.loads(result.stdout)
    assert res.keys() >= {"answer", "probability", "map", "grid", "method", "overlay", "uncertainty"}
    assert res["method"] == "gradcam" and res["grid"] == [4, 4] and res["overlay"] == str(out)
    assert res["target"] == "logit"  # Grad-CAM of the answer's pre-softmax score by default
    assert len(res["map"]) == 16 and all(v >= 0 for v in res["map"])
    assert 0.0 < res["probability"] <= 1.0
    with Image.open(out) as img:
        assert img.format == "PNG"
        img.verify()


@pytest.mark.parametrize("method", ["attention", "ucam"])
def test_explain_text_output(tiny_run, shape_png, tmp_path, method):
    out = tmp_path / "x.png"
    result = _explain(tiny_run, shape_png, "--method", method, "--out", out)
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert lines[0].startswith(f"{Q} -> ") and "p=" in lines[0] and "total uncertainty" in lines[0]
    name = "ucam-predictive" if method == "ucam" else method
    assert lines[1] == f"{name} map on a 4x4 grid:"
    grid_rows = lines[2:6]
    assert len(grid_rows) == 4 and all(len(r.split()) == 4 for r in grid_rows)
    cells = [float(v) for r in grid_rows for v in r.split()]
    assert max(cells) == 1.0 and min(cells) >= 0.0  # normalised to the peak
    assert lines[6] == f"overlay written to {out}" and out.is_file()


def test_explain_without_out_writes_nothing(tiny_run, shape_png, tmp_path):
    result = _explain(tiny_run, shape_png, "--method", "attention", "--json")
    assert result.exit_code == 0, result.output
    res = json.loads(result.stdout)
    assert "overlay" not in res and res["method"] == "attention"
    assert list(tmp_path.iterdir()) == []


def test_explain_evaluate_json_and_table(tiny_run):
    result = mumo("explain", tiny_run, "--evaluate", "--images", "10", "--samples", "3", "--json")
    assert result.exit_code == 0, result.output
    res = json.loads(result.stdout)  # the progress bar goes to stderr: stdout is one JSON object
    assert res["num_images"] == 10 and res["grid"] == [4, 4] and res["split"] == "test"
    assert set(res["methods"]) == {"attention", "gradcam", "ucam"}
    for s in res["methods"].values():
        assert s["count"] == res["num_questions"]
        assert 0.0 <= s["pointing_game"] <= 1.0 and 0.0 <= s["energy_in_mask"] <= 1.0
        assert set(s["by_type"]) <= {"yes/no", "color", "shape"}

    text = mumo("explain", tiny_run, "--evaluate", "--split", "val", "--images", "5", "--samples", "3")
    assert text.exit_code == 0, text.output
    lines = text.stdout.strip().splitlines()
    assert lines[0].startswith("val: ") and "about 5 images, 4x4 grid, accuracy" in lines[0]
    assert lines[1].split() == ["method", "rank", "corr", "pointing", "energy", "undefined"]
    assert [line.split()[0] for line in lines[2:5]] == ["attention", "gradcam", "ucam"]
    assert lines[5].startswith("attention vs Grad-CAM rank correlation: ")
    assert lines[6] == "maps are gradients: gradcam of logit, ucam of predictive-entropy"
    assert {m: s["target"] for m, s in res["methods"].items()} == {
        "attention": None, "gradcam": "logit", "ucam": "predictive-entropy",
    }  # fmt: skip


def test_explain_target_option(tiny_run, shape_png):
    """--target log-prob: Grad-CAM of the answer's log-softmax, recorded in the JSON and the text."""
    logit = json.loads(_explain(tiny_run, shape_png, "--method", "gradcam", "--json").stdout)
    result = _explain(tiny_run, shape_png, "--method", "gradcam", "--target", "log-prob", "--json")
    assert result.exit_code == 0, result.output
    log_prob = json.loads(result.stdout)
    assert log_prob["target"] == "log-prob" and logit["target"] == "logit"
    assert log_prob["answer"] == logit["answer"] and log_prob["map"] != logit["map"]
    text = _explain(tiny_run, shape_png, "--method", "gradcam", "--target", "log-prob")
    assert text.exit_code == 0, text.output
    assert text.output.splitlines()[1] == "gradcam map of the answer's log-prob on a 4x4 grid:"
    res = mumo("explain", tiny_run, "--evaluate", "--images", "3", "--samples", "3", "--target", "log-prob", "--json")
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["methods"]["gradcam"]["target"] == "log-prob"
    _assert_clean_error(_explain(tiny_run, shape_png, "--target", "prob"), "logit, log-prob")


def test_explain_bad_method_and_options(tiny_run, shape_png, tmp_path):
    result = _explain(tiny_run, shape_png, "--method", "nope")
    _assert_clean_error(result, "nope")
    assert "attention, gradcam, ucam" in result.output
    _assert_clean_error(_explain(tiny_run, shape_png, "--samples", "0"), "--samples")
    _assert_clean_error(_explain(tiny_run, shape_png, "--ucam-variant", "nope"), "predictive")
    _assert_clean_error(mumo("explain", tiny_run, "--evaluate", "--images", "0"), "--images")
    _assert_clean_error(mumo("explain", tiny_run, "--evaluate", "--split", "train", "--images", "2"), "--split")


def test_explain_bad_out(tiny_run, shape_png, tmp_path):
    missing = tmp_path / "no" / "such" / "dir" / "x.png"
    _assert_clean_error(_explain(tiny_run, shape_png, "--out", missing), "does not exist")
    assert not (tmp_path / "no").exists()
    _assert_clean_error(_explain(tiny_run, shape_png, "--out", tmp_path), "is a directory")


def test_explain_ucam_loss_needs_the_aleatoric_head(tiny_run, shape_png, tmp_path):
    out = tmp_path / "u.png"
    result = _explain(tiny_run, shape_png, "--method", "ucam", "--ucam-variant", "loss", "--out", out)
    _assert_clean_error(result, "model.aleatoric=ucam")
    assert "predictive" in result.output and not out.exists()
    ok = _explain(tiny_run, shape_png, "--method", "ucam", "--ucam-variant", "predictive", "--json")
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.stdout)["method"] == "ucam-predictive"


def test_explain_bad_image_question_and_run(tiny_run, shape_png, tmp_path):
    notes = tmp_path / "notes.png"
    notes.write_text("not an image at all")
    _assert_clean_error(_explain(tiny_run, notes), "not an image")
    _assert_clean_error(_explain(tiny_run, tmp_path / "missing.png"), "not found")
    _assert_clean_error(mumo("explain", tiny_run, "--image", shape_png, "--question", ""), "empty")
    _assert_clean_error(mumo("explain", tiny_run, "--image", shape_png, "--question", "   "), "empty")
    plain = tmp_path / "plain"
    plain.mkdir()
    _assert_clean_error(_explain(plain, shape_png), "not a mumo run")
    _assert_clean_error(mumo("explain", plain, "--evaluate", "--images", "2"), "not a mumo run")
    _assert_clean_error(_explain(tmp_path / "nope", shape_png), "does not exist")


def test_explain_mode_conflicts(tiny_run, shape_png, tmp_path):
    both = mumo("explain", tiny_run, "--evaluate", "--image", shape_png, "--question", Q)
    _assert_clean_error(both, "--evaluate")
    assert "--image" in both.output
    _assert_clean_error(mumo("explain", tiny_run, "--evaluate", "--out", tmp_path / "x.png"), "--out")
    for args in ([], ["--image", str(shape_png)], ["--question", Q]):
        result = mumo("explain", tiny_run, *args)
        _assert_clean_error(result, "--image and --question")
        assert "--evaluate" in result.output
    assert list(tmp_path.iterdir()) == []


def test_explain_evaluate_without_masks(tiny_run, tmp_path):
    """A run on a data set whose generator does not know where the objects are (VQA v2) cannot be scored."""
    run = tmp_path / "v2"
    shutil.copytree(tiny_run, run)
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    cfg["data"]["name"] = "vqa-v2"
    cfg["data"]["root"] = str(tmp_path / "vqa")
    (run / "config.yaml").write_text(yaml.safe_dump(cfg))
    result = mumo("explain", run, "--evaluate", "--images", "2")
    _assert_clean_error(result, "no ground-truth maps for 'vqa-v2'")
    assert "easy-vqa" in result.output and "sort-of-clevr" in result.output
