"""Temperature scaling of a trained VQA run: fit on validation, saved with the run, used by evaluate and predict."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from mumo.errors import MumoError
from tests.cli.test_cli import _assert_clean_error, mumo


@pytest.fixture
def run(tiny_run, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(tiny_run, out)  # the session's run stays without a temperature
    return out


def test_predictive_probs_divide_the_logits(tiny_run, easy_vqa_data):
    from mumo.tasks.vqa.model import load_model
    from mumo.tasks.vqa.predictive import predictive_probs

    model = load_model(tiny_run)
    batch = easy_vqa_data.val.batch(torch.arange(3))
    with torch.no_grad():
        logits = model(batch).logits  # (N, C)
    probs = predictive_probs(model, batch, temperature=2.5)  # (1, N, C)
    torch.testing.assert_close(probs[0], (logits / 2.5).softmax(-1), rtol=1e-5, atol=1e-6)
    with pytest.raises(MumoError, match="temperature must be > 0"):
        predictive_probs(model, batch, temperature=0.0)


def test_fit_saves_a_temperature_that_evaluate_and_predict_use(run, shape_png):
    import mumo as mm
    from mumo.tasks.vqa.temperature import load_run_temperature

    result = mumo("fit-temperature", run, "--json")
    assert result.exit_code == 0, result.output
    res = json.loads(result.output)
    t = res["temperature"]
    assert 0.05 <= t <= 20 and res["fit_questions"] > 100
    assert res["val_nll_after"] <= res["val_nll_before"] + 1e-9  # the fit never makes the validation NLL worse
    assert load_run_temperature(run) == pytest.approx(t)

    args = ("evaluate", run, "--split", "val", "--mc-samples", "2", "--density-images", "0", "--question-bank", "0")
    scaled = json.loads(mumo(*args, "--json").output)
    plain = json.loads(mumo(*args, "--temperature", "none", "--json").output)
    assert scaled["temperature"] == pytest.approx(t) and plain["temperature"] == 1.0
    assert scaled["accuracy_mean_prediction"] == pytest.approx(plain["accuracy_mean_prediction"], abs=2e-3)
    assert scaled["nll"] != pytest.approx(plain["nll"])

    p = mm.load(run)
    a = p.predict(shape_png, "what shape is it?")
    b = p.predict(shape_png, "what shape is it?", temperature=1.0)
    assert a.uncertainty.temperature == pytest.approx(t) and b.uncertainty.temperature == 1.0
    assert a.answer == b.answer  # scaling never changes the argmax
    text = mumo("fit-temperature", run).output
    assert "temperature" in text and "NLL" in text and "wrote" in text


def test_bad_temperatures_are_clear_errors(run):
    for bad in ("hot", "0", "-1"):
        _assert_clean_error(mumo("evaluate", run, "--mc-samples", "2", "--temperature", bad), "--temperature")
    (run / "temperature.json").write_text("{not json")
    _assert_clean_error(mumo("evaluate", run, "--mc-samples", "2"), "fit-temperature")
    (run / "temperature.json").write_text('{"temperature": -2}')
    _assert_clean_error(mumo("evaluate", run, "--mc-samples", "2"), "not > 0")
