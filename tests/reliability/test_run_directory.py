"""A run directory never loses work: a user's files are never deleted, one training at a time holds it, a run that
never finished an epoch is not stuck, a full disk keeps the last good checkpoint, and only the run's own
checkpoints are ever followed."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from mumo.errors import CheckpointError, ConfigError
from mumo.tasks.vqa.model import load_model
from mumo.tasks.vqa.train import train_vqa
from tests.conftest import TINY_OVERRIDES, tiny_config
from tests.reliability._cli import assert_one_line_error

SMALL = ("train.epochs=1", "data.max_train_images=32")


def _cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "TQDM_DISABLE": "1", "CUDA_VISIBLE_DEVICES": "", **(env or {})}
    return subprocess.run([sys.executable, "-m", "mumo.cli", *args], capture_output=True, text=True, env=env)


def _tree(path: Path) -> dict[str, bytes]:
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


def test_a_folder_of_user_files_is_refused_and_left_as_it_was(tmp_path):
    out = tmp_path / "X"
    (out / "checkpoints" / "mine").mkdir(parents=True)
    (out / "checkpoints" / "mine" / "w.bin").write_bytes(b"weights of my own")
    (out / "notes.txt").write_text("keep me")
    before = _tree(out)
    assert_one_line_error(_cli("train", "vqa", "--out", str(out), *TINY_OVERRIDES, *SMALL), "not empty", "checkpoints")
    assert _tree(out) == before and sorted(p.name for p in out.iterdir()) == ["checkpoints", "notes.txt"]


def test_pruning_keeps_what_mumo_did_not_write(tmp_path):
    out = tmp_path / "run"
    train_vqa(tiny_config(*SMALL), out, progress=False, evaluate_test=False)
    (out / "checkpoints" / "mine").mkdir()
    (out / "checkpoints" / "mine" / "w.bin").write_bytes(b"x")
    (out / "checkpoints" / "epoch-notes.txt").write_text("not a checkpoint name")
    train_vqa(tiny_config("train.epochs=3", "data.max_train_images=32"), out, resume=True, progress=False,
              evaluate_test=False)  # fmt: skip
    state = json.loads((out / "state.json").read_text())
    names = {p.name for p in (out / "checkpoints").iterdir()}
    assert names == {"epoch-notes.txt", "mine", state["last"], state["best"]} and state["last"] == "epoch-0003"
    assert (out / "checkpoints" / "mine" / "w.bin").read_bytes() == b"x"


def test_a_second_training_into_the_same_folder_is_refused_at_once_and_the_first_completes(tmp_path):
    out = tmp_path / "run"
    first = subprocess.Popen(
        [sys.executable, "-m", "mumo.cli", "train", "vqa", "--out", str(out), "--json", *TINY_OVERRIDES,
         "train.epochs=3", "data.max_train_images=150"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "TQDM_DISABLE": "1", "CUDA_VISIBLE_DEVICES": ""},
    )  # fmt: skip
    lock, deadline = out / ".lock", time.time() + 120
    while not (lock.exists() and lock.read_text().startswith("mumo pid")):
        assert first.poll() is None, first.communicate()[1][-2000:]
        assert time.time() < deadline, "the first training never took the lock"
        time.sleep(0.05)
    t0 = time.perf_counter()
    second = _cli("train", "vqa", "--out", str(out), *TINY_OVERRIDES, "model.hidden=32", *SMALL)
    assert_one_line_error(second, "in use by mumo pid", str(first.pid))
    assert time.perf_counter() - t0 < 60  # refused at once, not after the first one's training
    resumed = _cli("train", "vqa", "--out", str(out), "--resume")  # a resume is refused the same way
    if first.poll() is None:
        assert_one_line_error(resumed, "in use by")
    stdout, stderr = first.communicate(timeout=600)
    assert first.returncode == 0, stderr[-2000:]
    summary = json.loads(stdout)
    state = json.loads((out / "state.json").read_text())
    assert len(state["history"]) == 3 and summary["best_val_accuracy"] == max(h["accuracy"] for h in state["history"])
    assert load_model(out).cfg.hidden == 16  # the first run's model, untouched by the second
    assert (out / ".lock").read_text() == ""  # released


@pytest.fixture
def one_thread():
    """One torch thread for the test: then equal seeds give equal weights whatever else the machine runs
    (docs/reliability.md, "What is reproducible")."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_a_run_that_never_finished_an_epoch_is_not_stuck(tmp_path, one_thread):
    # what a kill -9 in the first epoch (or a failure as training started) leaves: config and artifacts, no state
    done = tmp_path / "done"
    train_vqa(tiny_config(*SMALL), done, progress=False, evaluate_test=False)
    for name in ("resumed", "taken"):
        stuck = tmp_path / name
        stuck.mkdir()
        for f in ("config.yaml", "artifacts.json", "question_bank.json"):
            shutil.copy(done / f, stuck / f)
        (stuck / "checkpoints" / ".epoch-0001.tmp").mkdir(parents=True)  # a half-written first checkpoint
        (stuck / "logs").mkdir()
    # --resume trains from the start with the saved config (as `mumo train vqa --out RUN --resume` asks)
    train_vqa(None, tmp_path / "resumed", resume=True, progress=False, evaluate_test=False)
    # a new run takes the folder (it held no finished epoch: nothing to lose)
    train_vqa(tiny_config(*SMALL), tmp_path / "taken", progress=False, evaluate_test=False)
    for name in ("resumed", "taken"):
        ckpts = sorted(p.name for p in (tmp_path / name / "checkpoints").iterdir())
        assert ckpts == ["epoch-0001"], ckpts
        a, b = (load_file(r / "checkpoints" / "epoch-0001" / "model.safetensors") for r in (done, tmp_path / name))
        assert all(torch.equal(a[k], b[k]) for k in a)  # the same seed, the same training: the same weights


def test_resume_overrides_apply_to_the_saved_config(tmp_path):
    out = tmp_path / "run"
    train_vqa(tiny_config("model.hidden=8", *SMALL), out, progress=False, evaluate_test=False)
    proc = _cli("train", "vqa", "--out", str(out), "--resume", "train.epochs=2", "--json")  # nothing restated
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert len(json.loads((out / "state.json").read_text())["history"]) == 2
    assert_one_line_error(_cli("train", "vqa", "--out", str(out), "--resume", "model.hidden=16"), "model.hidden")


def test_out_that_is_a_file_is_refused_in_one_line(tmp_path):
    out = tmp_path / "a-file"
    out.write_text("mine")
    assert_one_line_error(_cli("train", "vqa", "--out", str(out), *TINY_OVERRIDES, *SMALL), "is a file")
    assert out.read_text() == "mine"


def test_out_in_a_read_only_directory_is_refused_in_one_line(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(ro)]).returncode:
        pytest.skip("needs root to mount a read-only tmpfs (root writes through file permissions)")
    try:
        assert_one_line_error(_cli("train", "vqa", "--out", str(ro / "run"), *TINY_OVERRIDES, *SMALL), "cannot write")
    finally:
        subprocess.run(["umount", str(ro)])


@pytest.mark.parametrize("best", ["../../../etc", "/tmp", 3, "epoch-1/../../x"])
def test_only_the_runs_own_checkpoints_are_followed(tiny_run, tmp_path, best):
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    state = json.loads((run / "state.json").read_text())
    (run / "state.json").write_text(json.dumps({**state, "best": best}))
    with pytest.raises(CheckpointError, match=r"corrupted run: .*state.json.*not one of the run.s own"):
        load_model(run)


def _mount_tmpfs(path: Path, size: str) -> bool:
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0 or not shutil.which("mount"):
        return False
    return subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)]).returncode == 0


def test_a_full_disk_keeps_the_last_good_checkpoint_and_says_so(tmp_path):
    sizes = tmp_path / "sizes"  # how much one checkpoint (and the rest of a run) takes
    train_vqa(tiny_config(*SMALL), sizes, progress=False, evaluate_test=False)
    ckpt = sum(p.stat().st_size for p in (sizes / "checkpoints").rglob("*") if p.is_file())
    fitted_after = ("ood_check.safetensors", "feature_density.safetensors")  # written once training has ended
    rest = sum(p.stat().st_size for p in sizes.rglob("*") if p.is_file() and p.name not in fitted_after) - ckpt
    disk = tmp_path / "disk"
    # room for the run and one checkpoint, not for the second one (written before the first is pruned)
    if not _mount_tmpfs(disk, f"{(rest + int(ckpt * 1.6)) // 1024 + 64}k"):
        pytest.skip("needs root to mount a small tmpfs")
    try:
        out = disk / "run"
        proc = _cli("train", "vqa", "--out", str(out), *TINY_OVERRIDES, "train.epochs=3", "data.max_train_images=32")
        last = proc.stderr.strip().splitlines()[-1]  # after the first epoch's progress: the one-line error
        assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
        for needle in ("error: could not write the checkpoint of epoch 2", "No space left", "epoch-0001, is kept"):
            assert needle in last, last
        assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["epoch-0001"]  # no half-written folder
        assert json.loads((out / "state.json").read_text())["last"] == "epoch-0001"
        assert not list(out.rglob(".*.tmp"))
        load_model(out, "last")  # the kept checkpoint is whole
    finally:
        subprocess.run(["umount", str(disk)])


def test_two_uninterrupted_single_thread_runs_of_one_seed_end_with_identical_weights_even_under_load(tmp_path):
    # with several threads, a run made while other processes take the cores can end a little elsewhere
    # (docs/reliability.md); one thread is identical under any load
    threads = torch.get_num_threads()
    cfg = ("train.epochs=2", "data.max_train_images=200")
    torch.set_num_threads(1)
    try:
        train_vqa(tiny_config(*cfg), tmp_path / "a", progress=False, evaluate_test=False)
        burners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(2)]
        try:
            train_vqa(tiny_config(*cfg), tmp_path / "b", progress=False, evaluate_test=False)
        finally:
            for b in burners:
                b.kill()
    finally:
        torch.set_num_threads(threads)
    a, b = (load_file(tmp_path / r / "checkpoints" / "epoch-0002" / "model.safetensors") for r in ("a", "b"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_bad_overrides_on_resume_are_config_errors(tmp_path):
    with pytest.raises(CheckpointError, match="not a mumo run"):
        from mumo.config import apply_overrides
        from mumo.runs import Run
        from mumo.tasks.vqa.config import RunConfig

        Run(tmp_path / "none").config(RunConfig)
    from mumo.config import apply_overrides
    from mumo.tasks.vqa.config import RunConfig

    with pytest.raises(ConfigError, match="key=value"):
        apply_overrides(tiny_config(), ["train.epochs"], schema=RunConfig)
    assert apply_overrides(tiny_config(), ["train.images_per_batch=4"], schema=RunConfig).train.batch_size == 4
