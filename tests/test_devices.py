"""Device choice for inference, and the GPU paths (run where a CUDA GPU is present, skipped elsewhere)."""

from __future__ import annotations

import pytest
import torch

from mumo.devices import resolve_device
from mumo.errors import ConfigError
from tests.conftest import tiny_config

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def test_auto_is_the_gpu_when_present_else_the_cpu():
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")


@pytest.mark.parametrize("name", ["tpu", "gpu0", "", "cuda:x"])
def test_unknown_devices_are_clear_errors(name):
    with pytest.raises(ConfigError, match="device"):
        resolve_device(name)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_asking_for_a_missing_gpu_says_so():
    with pytest.raises(ConfigError, match="no CUDA GPU"):
        resolve_device("cuda")


@pytest.mark.parametrize("command", ["predict", "evaluate", "fit-density", "explain", "probe"])
def test_cli_reports_a_bad_device_without_a_traceback(tiny_run, shape_png, command):
    from typer.testing import CliRunner

    from mumo.cli.__main__ import build_app

    args = ["--image", str(shape_png), "--question", "what shape?"] if command in ("predict", "explain") else []
    res = CliRunner().invoke(build_app(), [command, str(tiny_run), *args, "--device", "tpu"])
    assert res.exit_code == 2, res.output
    assert "unknown device 'tpu'" in res.output
    assert "Traceback" not in res.output


@cuda
def test_mc_dropout_fast_path_equals_the_naive_loop_on_the_gpu(tiny_run):
    from mumo.runs import Run
    from mumo.tasks.vqa.config import RunConfig
    from mumo.tasks.vqa.data import load_data
    from mumo.tasks.vqa.model import load_model
    from mumo.uncertainty.mc_dropout import mc_forward, mc_forward_naive

    model = load_model(tiny_run, device="cuda")
    batch = load_data(Run(tiny_run).config(RunConfig)).val.batch(torch.arange(8)).to("cuda")
    with torch.no_grad():
        fast = mc_forward(model, batch, num_samples=7, seed=3)  # (T, N, C)
        naive = mc_forward_naive(model, batch, num_samples=7, seed=3)
    assert fast.device.type == "cuda" and fast.shape[0] == 7
    assert torch.allclose(fast, naive, atol=1e-4)
    assert not torch.allclose(fast[0], fast[1])  # the passes differ: dropout sampled on the GPU


@cuda
def test_predict_on_the_gpu_matches_the_cpu(tiny_run, shape_png):
    from mumo.serve.predict import load

    gpu, cpu = load(tiny_run, device="cuda"), load(tiny_run, device="cpu")
    assert gpu.device.type == "cuda"
    a, b = gpu.predict(shape_png, "what shape is in the image?"), cpu.predict(shape_png, "what shape is in the image?")
    assert a.answer == b.answer
    assert a.probability == pytest.approx(b.probability, abs=1e-4)
    mc = gpu.predict(shape_png, "what shape is in the image?", mc_samples=10, abstain=-1.0)
    assert mc.abstained and mc.uncertainty.mc_samples == 10
    img = gpu.predict(shape_png, "what shape is in the image?", mc_samples=5, image_uncertainty=True)
    assert img.uncertainty.image_epistemic >= 0 and img.uncertainty.question_bank_size == 8


@cuda
def test_uncertainty_evaluation_and_density_on_the_gpu_match_the_cpu(tiny_run):
    from mumo.data.shift.ood import ood_split
    from mumo.runs import Run
    from mumo.tasks.vqa.config import RunConfig
    from mumo.tasks.vqa.data import load_data
    from mumo.tasks.vqa.model import load_model
    from mumo.tasks.vqa.uncertainty import evaluate_uncertainty

    data = load_data(Run(tiny_run).config(RunConfig))
    val = data.val.subset_images(torch.arange(40), "v")
    fit = data.train.subset_images(torch.arange(100), "fit")
    ood = ood_split("noise", val, seed=0)
    res = {
        d: evaluate_uncertainty(load_model(tiny_run, device=d), val, mc_samples=None, ood=ood, density_fit=fit)
        for d in ("cpu", "cuda")
    }
    for key in ("accuracy", "ece", "nll", "auroc_ood"):
        assert res["cuda"][key] == pytest.approx(res["cpu"][key], abs=1e-3), key
    dens = "feature_density"
    assert res["cuda"]["auroc_ood_by_score"][dens] == pytest.approx(res["cpu"]["auroc_ood_by_score"][dens], abs=1e-3)
    from mumo.tasks.vqa.question_bank import question_bank

    bank = question_bank(data.train, 4)
    mc = evaluate_uncertainty(load_model(tiny_run, device="cuda"), val, mc_samples=5, ood=ood, question_bank=bank)
    assert mc["ood_score"] == "mutual_information" and 0.0 <= mc["auroc_ood"] <= 1.0
    assert 0.0 <= mc["auroc_ood_by_score"]["image_mutual_information"] <= 1.0


@cuda
@pytest.mark.parametrize("precision", ["no", "bf16"])
def test_training_runs_on_the_gpu(tmp_path, precision):
    from mumo.tasks.vqa.model import load_model
    from mumo.tasks.vqa.train import train_vqa
    from mumo.train.checkpoint import read_state

    cfg = tiny_config("train.epochs=1", "data.max_train_images=64", f"train.mixed_precision={precision}")
    train_vqa(cfg, tmp_path / "run", progress=False, evaluate_test=False)
    assert len(read_state(tmp_path / "run")["history"]) == 1
    model = load_model(tmp_path / "run", device="cpu")  # weights saved from the GPU load on the CPU
    assert all(torch.isfinite(p).all() for p in model.parameters())


@cuda
def test_explanations_are_scored_on_the_gpu(tiny_run):
    from mumo.tasks.vqa.explain import explain_run

    res = explain_run(tiny_run, max_images=8, progress=False, device="cuda")
    assert res["num_images"] == 8
    assert set(res["methods"]) >= {"attention", "gradcam"}
