"""Bad config values are refused when the config is built, naming the key, before anything is written.

The library half builds every bad config with ``mumo.load_config``; the CLI half runs ``mumo train vqa`` on a
representative subset (a subprocess costs seconds) and checks the one-line error, the exit status and that the
run directory was never created.
"""

from __future__ import annotations

import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import torch

import mumo
from mumo.errors import ConfigError
from tests.reliability._cli import assert_one_line_error

no_cuda = pytest.mark.skipif(torch.cuda.is_available(), reason="fp16 is valid on a machine with a CUDA GPU")

# (preset, overrides, the key the error must name)
BAD = [
    # the loop: optimiser and schedule
    ("mcan-cpu", ["train.lr=-0.001"], "train.lr"),
    ("mcan-cpu", ["train.lr=0"], "train.lr"),
    ("mcan-cpu", ["train.lr=nan"], "train.lr"),
    ("mcan-cpu", ["train.lr=inf"], "train.lr"),
    ("mcan-cpu", ["train.betas=[2.0,-1]"], "train.betas"),
    ("mcan-cpu", ["train.betas=[0.9,1.0]"], "train.betas"),
    ("mcan-cpu", ["train.betas=[0.9]"], "train.betas"),
    ("mcan-cpu", ["train.betas=[0.9,0.98,0.999]"], "train.betas"),
    ("mcan-cpu", ["train.betas=[nan,0.98]"], "train.betas"),
    ("mcan-cpu", ["train.eps=0"], "train.eps"),
    ("mcan-cpu", ["train.eps=-1e-8"], "train.eps"),
    ("mcan-cpu", ["train.weight_decay=-0.1"], "train.weight_decay"),
    ("mcan-cpu", ["train.decay_rate=-1"], "train.decay_rate"),
    ("mcan-cpu", ["train.decay_rate=0"], "train.decay_rate"),
    ("mcan-cpu", ["train.decay_rate=1.5"], "train.decay_rate"),
    ("mcan-cpu", ["train.warmup_epochs=-1"], "train.warmup_epochs"),
    ("mcan-cpu", ["train.decay_epochs=[0,11]"], "train.decay_epochs"),
    ("mcan-cpu", ["train.grad_clip=-1"], "train.grad_clip"),
    ("mcan-cpu", ["train.grad_clip=nan"], "train.grad_clip"),
    ("mcan-cpu", ["train.seed=-1"], "train.seed"),
    ("mcan-cpu", ["train.seed=4294967296"], "train.seed"),
    ("mcan-cpu", ["train.eval_batch_size=0"], "train.eval_batch_size"),
    # VQA data and objective
    ("mcan-cpu", ["data.max_question_len=0"], "data.max_question_len"),
    ("mcan-cpu", ["data.image_size=0"], "data.image_size"),
    ("mcan-cpu", ["data.max_train_images=-5"], "data.max_train_images"),
    ("mcan-cpu", ["objective.attention_weight=nan"], "objective.attention_weight"),
    ("mcan-cpu", ["objective.uncertainty_weight=-1"], "objective.uncertainty_weight"),
    # MCAN sizes
    ("mcan-cpu", ["model.hidden=0"], "model.hidden"),
    ("mcan-cpu", ["model.heads=0"], "model.heads"),
    ("mcan-cpu", ["model.layers=0"], "model.layers"),
    ("mcan-cpu", ["model.ff=0"], "model.ff"),
    ("mcan-cpu", ["model.flat_mlp=-1"], "model.flat_mlp"),
    ("mcan-cpu", ["model.flat_glimpses=0"], "model.flat_glimpses"),
    ("mcan-cpu", ["model.flat_out=0"], "model.flat_out"),
    ("mcan-cpu", ["model.word_dim=0"], "model.word_dim"),
    ("mcan-cpu", ["model.region_dim=0"], "model.region_dim"),
    ("mcan-cpu", ["model.cnn_channels=[16,0,64,64]"], "model.cnn_channels"),
    ("mcan-cpu", ["model.cnn_pool=-1"], "model.cnn_pool"),
    ("mcan-cpu", ["model.aleatoric_samples=0"], "model.aleatoric_samples"),
    # MCAN sizes that cannot fit: refused from the config, before a weight is allocated
    ("mcan-cpu", ["model.ff=100000000000"], "model.ff"),
    ("mcan-cpu", ["model.hidden=1000000000"], "model.hidden"),
    ("mcan-cpu", ["model.word_dim=1000000000"], "model.word_dim"),
    ("mcan-cpu", ["model.layers=1000000"], "model.layers"),
    ("mcan-cpu", ["model.cnn_channels=[16,32,1000000,1000000]"], "model.cnn_channels"),
    # the lip-sync expert
    ("sync-cpu", ["data.max_clips=-1"], "data.max_clips"),
    ("sync-cpu", ["data.pairs_per_epoch=1"], "data.pairs_per_epoch"),
    ("sync-cpu", ["data.eval_pairs=0"], "data.eval_pairs"),
    ("sync-cpu", ["data.min_shift=0"], "data.min_shift"),
    ("sync-cpu", ["model.frames=0"], "model.frames"),
    ("sync-cpu", ["model.audio_channels=[16,32,0,128]"], "model.audio_channels"),
    ("sync-cpu", ["model.face_residual=[0,1,-1,1,0,0]"], "model.face_residual"),
    ("sync-cpu", ["model.embedding=100000"], "model.embedding"),
    ("sync-cpu", ["model.face_channels=[16,32,64,128,128,1000000]"], "model.face_channels"),
    ("sync-cpu", ["train.lr=-1"], "train.lr"),
]


def _id(case) -> str:
    values = case.values if hasattr(case, "values") else case
    return f"{values[0]}:{' '.join(values[1])}"


@pytest.mark.parametrize(("preset", "overrides", "key"), BAD, ids=[_id(c) for c in BAD])
def test_a_bad_value_is_refused_when_the_config_is_built(preset, overrides, key):
    with pytest.raises(ConfigError) as info:
        mumo.load_config(preset, overrides)
    assert key in str(info.value), str(info.value)


def test_fp16_is_refused_for_training_on_a_machine_without_a_gpu_but_a_saved_fp16_run_still_loads(tmp_path):
    from mumo.config import config_from_yaml, config_to_yaml
    from mumo.runs import Run
    from mumo.tasks.vqa.config import RunConfig

    cfg = mumo.load_config("mcan-cpu", ["train.cpu=true", "train.mixed_precision=fp16"])  # a GPU run's config
    (tmp_path / "config.yaml").write_text(config_to_yaml(cfg))
    assert config_from_yaml(tmp_path / "config.yaml", schema=RunConfig) == cfg  # evaluates on a laptop
    with pytest.raises(ConfigError, match=r"train.mixed_precision=fp16 needs a GPU \(train.cpu=true\)"):
        Run(tmp_path / "new").prepare(cfg, resume=False, schema=RunConfig)
    if not torch.cuda.is_available():
        plain = mumo.load_config("mcan-cpu", ["train.mixed_precision=fp16"])
        with pytest.raises(ConfigError, match="no CUDA GPU on this machine"):
            plain.train.check_machine()
    assert not (tmp_path / "new").exists()


# a representative subset through the real CLI: every section, NaN, a list, the memory bound and fp16
CLI = [
    ["train.lr=nan"],
    ["train.betas=[2.0,-1]"],
    ["train.decay_rate=-1"],
    ["train.cpu=true", "train.mixed_precision=fp16"],
    ["data.max_train_images=-5"],
    ["model.layers=0"],
    ["model.ff=100000000000"],
    ["objective.attention_weight=nan"],
]


def _train(folder: Path, overrides: list[str]) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "mumo.cli", "train", "vqa", "--out", str(folder / "run"), *overrides]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=folder, timeout=120)


@pytest.fixture(scope="module")
def cli_runs(tmp_path_factory) -> dict[str, tuple[subprocess.CompletedProcess, Path]]:
    """Every CLI case, run two at a time (each process spends ~2 s importing torch): id -> (result, --out)."""
    folders = {" ".join(c): tmp_path_factory.mktemp("cli") for c in CLI}
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = dict(zip(folders, pool.map(_train, folders.values(), CLI), strict=True))
    return {name: (results[name], folders[name] / "run") for name in folders}


@pytest.mark.parametrize("overrides", CLI, ids=[" ".join(c) for c in CLI])
def test_the_cli_refuses_a_bad_value_in_one_line_and_writes_nothing(cli_runs, overrides):
    res, out = cli_runs[" ".join(overrides)]
    assert_one_line_error(res, overrides[-1].split("=")[0])
    assert not out.exists()


def test_the_boundary_values_are_valid():
    cfg = mumo.load_config(
        "mcan-cpu",
        [
            "train.lr=1e-12", "train.betas=[0,0.999]", "train.eps=1e-30", "train.weight_decay=0",
            "train.warmup_epochs=0", "train.decay_epochs=[1]", "train.decay_rate=1", "train.grad_clip=0",
            "train.seed=4294967295", "train.cpu=true", "train.mixed_precision=bf16", "data.max_train_images=0",
            "data.max_question_len=1", "data.image_size=1", "model.layers=1", "model.cnn_channels=[]",
            "model.cnn_pool=0", "objective.attention_weight=0",
        ],
    )  # fmt: skip
    assert cfg.train.lr == 1e-12 and cfg.train.betas == [0.0, 0.999] and cfg.data.max_train_images == 0
    assert cfg.model.cnn_channels == [] and cfg.train.seed == 2**32 - 1
    sync = mumo.load_config("sync-cpu", ["data.max_clips=0", "data.pairs_per_epoch=2", "data.min_shift=1"])
    assert sync.data.max_clips == 0


def test_the_largest_shipped_models_are_far_below_the_size_bound():
    # mcan-small (the paper's MCAN-small) and MCAN-large's sizes load; the bound is 2**31 weights
    mumo.load_config("mcan-small")
    mumo.load_config("mcan-small", ["model.hidden=1024", "model.heads=16", "model.ff=4096", "model.flat_out=2048"])
    mumo.load_config("sync-wav2lip")
