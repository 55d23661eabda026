import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
import torch
from safetensors.torch import load_file

from mumo.errors import ConfigError
from mumo.tasks.vqa.accuracy import evaluate_split
from mumo.tasks.vqa.loss import vqa_loss
from mumo.tasks.vqa.model import load_model
from mumo.tasks.vqa.train import train_vqa
from mumo.types import VQABatch, VQAOutput
from tests.conftest import TINY_OVERRIDES, tiny_config


class _FixedLogits(torch.nn.Module):
    def __init__(self, logits):
        super().__init__()
        self.logits = logits

    def forward(self, batch):
        return VQAOutput(self.logits)


def test_loss_equals_soft_target_bce_summed_over_batch_and_classes():
    logits = torch.tensor([[2.0, -1.0, 0.5], [0.0, 3.0, -2.0]])
    targets = torch.tensor([[1.0, 0.0, 0.3], [0.0, 0.6, 1.0]])
    batch = VQABatch(torch.zeros(1), torch.zeros(2, 1, dtype=torch.long), torch.zeros(2, dtype=torch.long), targets)
    p = torch.sigmoid(logits)
    manual = -(targets * p.log() + (1 - targets) * (1 - p).log())
    loss, _ = vqa_loss(_FixedLogits(logits), batch, "sum")
    assert torch.allclose(loss, manual.sum())
    loss_mean, _ = vqa_loss(_FixedLogits(logits), batch, "mean")
    assert torch.allclose(loss_mean, manual.sum() / 2)


def test_softmax_loss_is_the_cross_entropy_against_targets_normalised_to_sum_1():
    logits = torch.tensor([[2.0, -1.0, 0.5], [0.0, 3.0, -2.0], [1.0, 1.0, 1.0]])
    targets = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.6, 0.3], [0.0, 0.0, 0.0]])  # the last: no answer in vocabulary
    batch = VQABatch(torch.zeros(1), torch.zeros(3, 1, dtype=torch.long), torch.zeros(3, dtype=torch.long), targets)
    logp = logits.log_softmax(-1)
    manual = torch.stack([-logp[0, 0], -(2 / 3 * logp[1, 1] + 1 / 3 * logp[1, 2]), torch.tensor(0.0)])
    loss, _ = vqa_loss(_FixedLogits(logits), batch, "sum", loss="softmax")
    assert torch.allclose(loss, manual.sum())
    loss_mean, _ = vqa_loss(_FixedLogits(logits), batch, "mean", loss="softmax")
    assert torch.allclose(loss_mean, manual.sum() / 3)
    with pytest.raises(ConfigError, match=r"objective\.loss"):
        tiny_config("objective.loss=hinge")


def test_short_training_beats_the_majority_answer_baseline(tiny_run, easy_vqa_data):
    model = load_model(tiny_run)
    val = easy_vqa_data.val
    res = evaluate_split(model, val)
    majority = float(val.targets.sum(0).max() / val.num_questions)
    assert res["accuracy"] > majority + 0.05, (res["accuracy"], majority)
    assert set(res["accuracy_by_type"]) == {"yes/no", "color", "shape"}


def test_run_directory_layout_and_checkpoint_round_trip(tiny_run, easy_vqa_data):
    state = json.loads((tiny_run / "state.json").read_text())
    assert state["last"] == "epoch-0002" and len(state["history"]) == 2
    for name in ("config.yaml", "artifacts.json", "logs"):
        assert (tiny_run / name).exists()
    ckpt = tiny_run / "checkpoints" / state["last"]
    assert {p.name for p in ckpt.iterdir()} >= {
        "model.safetensors",
        "optimizer.safetensors",
        "optimizer.json",
    }
    assert any((tiny_run / "logs").iterdir())
    a, b = load_model(tiny_run, "last"), load_model(tiny_run, "last")
    batch = easy_vqa_data.test.batch(torch.arange(20))
    assert torch.equal(a(batch).logits, b(batch).logits)
    weights = load_file(str(ckpt / "model.safetensors"))
    assert all(torch.equal(weights[k], v) for k, v in a.state_dict().items())


def test_new_run_refuses_an_existing_run_directory(tiny_run):
    with pytest.raises(ConfigError, match="already holds a run"):
        train_vqa(tiny_config(), tiny_run)


def test_resume_refuses_a_different_config(tiny_run):
    with pytest.raises(ConfigError, match=r"train\.lr"):
        train_vqa(tiny_config("train.epochs=2", "train.lr=0.5", "data.max_train_images=300"), tiny_run, resume=True)
    with pytest.raises(ConfigError, match=r"train\.epochs"):  # fewer epochs than trained is not an extension
        train_vqa(tiny_config("train.epochs=1", "data.max_train_images=300"), tiny_run, resume=True)


def test_resume_with_more_epochs_extends_the_run(tiny_run, tmp_path):
    import shutil

    run = tmp_path / "extended"
    shutil.copytree(tiny_run, run)
    summary = train_vqa(tiny_config("train.epochs=3", "data.max_train_images=300"), run, resume=True,
                        progress=False, evaluate_test=False)  # fmt: skip
    assert [h["epoch"] for h in json.loads((run / "state.json").read_text())["history"]] == [0, 1, 2]
    assert "epochs: 3" in (run / "config.yaml").read_text() and summary["best_epoch"] >= 1


def _train_cmd(out, epochs=3):
    overrides = [
        *TINY_OVERRIDES,
        f"train.epochs={epochs}",
        "data.max_train_images=300",
        "train.batch_size=8",
    ]
    return [sys.executable, "-m", "mumo.cli", "train", "vqa", "--out", str(out), *overrides]


@pytest.mark.slow
def test_sigkill_mid_epoch_then_resume_gives_the_same_weights(tmp_path):
    # bit-identical resumption is promised on the CPU (GPU kernels need not be deterministic): hide any GPU
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "CUDA_VISIBLE_DEVICES": ""}
    full, killed = tmp_path / "full", tmp_path / "killed"
    subprocess.run(_train_cmd(full), check=True, capture_output=True, env=env)

    proc = subprocess.Popen(_train_cmd(killed), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    state_file = killed / "state.json"
    deadline = time.time() + 300
    while time.time() < deadline:
        if state_file.exists() and json.loads(state_file.read_text() or "{}").get("last") == "epoch-0001":
            break
        if proc.poll() is not None:
            pytest.fail("training ended before it could be killed")
        time.sleep(0.02)
    time.sleep(0.3)  # into epoch 2
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert json.loads(state_file.read_text())["last"] == "epoch-0001", "kill came too late to be mid-epoch"

    subprocess.run([*_train_cmd(killed)[:7], "--resume"], check=True, capture_output=True, env=env)
    a = load_file(str(full / "checkpoints" / "epoch-0003" / "model.safetensors"))
    b = load_file(str(killed / "checkpoints" / "epoch-0003" / "model.safetensors"))
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


@pytest.mark.slow
def test_two_process_torchrun_keeps_ranks_in_sync_and_writes_one_checkpoint(tmp_path):
    torchrun = shutil.which("torchrun") or pytest.skip("torchrun not installed")
    out = tmp_path / "ddp"
    overrides = [*TINY_OVERRIDES, "train.epochs=2", "data.max_train_images=200"]
    cmd = [torchrun, "--nproc_per_node=2", "--master_port=29533", "-m", "mumo.cli", "train", "vqa", "--out", str(out),
           "--json", *overrides]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}  # CPU DDP (gloo), on any machine
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.count('"run_dir"') == 1  # only rank 0 reports
    history = json.loads((out / "state.json").read_text())["history"]
    assert len(history) == 2 and all(h["ranks_in_sync"] == 1.0 for h in history)
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["epoch-0002"]
    assert not list((out / "checkpoints").glob(".*"))  # no half-written temporaries


def test_training_on_generated_sort_of_clevr_reports_relational_accuracy(tmp_path):
    from mumo.data.vqa.sort_of_clevr import generate

    root = tmp_path / "soc"
    generate(root, n_train=80, n_test=20, seed=0)
    cfg = tiny_config("data.name=sort-of-clevr", f"data.root={root}", "train.epochs=1")
    summary = train_vqa(cfg, tmp_path / "run", progress=False)
    state = json.loads((tmp_path / "run" / "state.json").read_text())
    assert {"accuracy_relational", "accuracy_non_relational", "accuracy_closest_shape"} <= set(state["history"][0])
    assert 0.0 <= summary["test_accuracy"] <= 1.0
    assert set(summary["test_accuracy_by_type"]) >= {"shape", "left_right", "same_shape_count"}


@pytest.mark.slow
def test_more_processes_than_batches_is_a_clear_error(tmp_path):
    torchrun = shutil.which("torchrun") or pytest.skip("torchrun not installed")
    overrides = [*TINY_OVERRIDES, "train.epochs=1", "data.max_train_images=8", "train.batch_size=16"]
    cmd = [torchrun, "--nproc_per_node=2", "--master_port=29534", "-m", "mumo.cli", "train", "vqa", "--out",
           str(tmp_path / "run"), *overrides]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode != 0
    assert "2 processes but only 1 training batches" in proc.stderr
    assert not (tmp_path / "run").exists()  # nothing written


def test_pixel_noise_augmentation_gives_fresh_reproducible_noise_each_epoch(easy_vqa_data):
    from dataclasses import replace

    from mumo.tasks.vqa.train import build_task

    data = replace(easy_vqa_data, train=easy_vqa_data.train.first_images(40))
    clean = next(iter(build_task(tiny_config("train.batch_size=40"), data).batches(0, 0, 1)))
    task = build_task(tiny_config("train.batch_size=40", "objective.augment_pixel_noise=0.3"), data)

    def noisy(epoch: int, rank: int, world: int) -> list:  # an epoch's batches, streamed
        return list(task.batches(epoch, rank, world))

    first = noisy(0, 0, 1)[0]
    assert torch.equal(first.tokens, clean.tokens) and torch.equal(first.targets, clean.targets)
    residual = (first.images - clean.images).flatten(1).std(1)  # (40,) each image's own noise level
    assert 0.05 < float(residual.mean()) < 0.2 and float(residual.max()) < 0.3
    assert torch.equal(first.images, noisy(0, 0, 1)[0].images)  # the same on a resume
    assert not torch.equal(first.images, noisy(1, 0, 1)[0].images)  # fresh every epoch
    # validation stays clean: the augmentation only touches the training batches
    assert torch.equal(data.val.images, easy_vqa_data.val.images)


def test_pixel_noise_augmentation_trains_and_refuses_what_it_cannot_do(tmp_path, easy_vqa_data):
    from dataclasses import replace

    from mumo.tasks import load_config
    from mumo.tasks.sync.config import load_sync_config
    from mumo.tasks.vqa.train import build_task

    cfg = tiny_config("train.epochs=1", "data.max_train_images=64", "objective.augment_pixel_noise=0.2")
    summary = train_vqa(cfg, tmp_path / "run", progress=False, evaluate_test=False)
    assert summary["best_val_accuracy"] > 0
    for bad in ("-0.1", "nan", "inf"):
        with pytest.raises(ConfigError, match="augment_pixel_noise"):
            load_config("mcan-cpu", [f"objective.augment_pixel_noise={bad}"])
    regions = replace(easy_vqa_data.train.first_images(4), images=torch.zeros(4, 6, 8))  # (I, R, D) features
    with pytest.raises(ConfigError, match="region features"):
        build_task(tiny_config("objective.augment_pixel_noise=0.2"), replace(easy_vqa_data, train=regions))
    # the loop's settings hold no VQA recipe: the expert's config has no such key, under either name
    for key in ("objective.augment_pixel_noise", "train.augment_pixel_noise"):
        with pytest.raises(ConfigError, match=f"unknown config key '{key.split('.')[0]}"):
            load_sync_config("sync-cpu", [f"{key}=0.2"])
