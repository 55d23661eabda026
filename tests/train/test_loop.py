"""The training loop's accelerator: runs with different precisions in one process."""

from __future__ import annotations

import pytest
import torch

from mumo.config import TrainConfig
from mumo.errors import MumoError
from mumo.train.loop import make_accelerator


def test_a_second_run_in_the_same_process_may_change_precision():
    # accelerate alone refuses this ("AcceleratorState has already been initialized")
    assert make_accelerator(TrainConfig(mixed_precision="no", cpu=True)).mixed_precision == "no"
    b = make_accelerator(TrainConfig(mixed_precision="bf16", cpu=True))
    assert b.mixed_precision == "bf16"
    model = b.prepare(torch.nn.Linear(4, 2))
    out = model(torch.randn(3, 4))  # computed under bf16 autocast, handed back as float32
    assert torch.equal(out, out.to(torch.bfloat16).float())
    assert make_accelerator(TrainConfig(cpu=True)).mixed_precision == "no"


def test_more_processes_than_gpus_is_a_clear_error(monkeypatch):
    # torchrun --nproc_per_node=2 on a machine with one GPU: rank 1 would ask for a GPU that is not there
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    with pytest.raises(MumoError, match="2 processes on this machine but only 1 GPU"):
        make_accelerator(TrainConfig())


# -- several models and optimisers in one step, epoch-end hooks, streamed batches ------------------------------


class _Batch:
    """A batch of real samples (B, 2) from a shifted Gaussian; ``to`` as the loop expects."""

    def __init__(self, real: torch.Tensor) -> None:
        self.real = real

    def to(self, device: torch.device) -> _Batch:
        return _Batch(self.real.to(device))

    def __len__(self) -> int:
        return int(self.real.shape[0])


def _gan_task(weights: list[float]):
    """A 1-layer generator and discriminator trained as a GAN (two steps per batch, the generator's first), with
    an epoch-end hook that switches a loss weight on once the validation figure passes a threshold (the
    Wav2Lip-style schedule), recording each value it set in ``weights``."""
    from mumo.train.loop import Step, Task

    torch.manual_seed(0)
    generator, discriminator = torch.nn.Linear(2, 2), torch.nn.Linear(2, 1)
    schedule = {"weight": 0.0}
    bce = torch.nn.functional.binary_cross_entropy_with_logits

    def batches(epoch: int, rank: int, world: int):  # streamed: a generator, no list
        gen = torch.Generator().manual_seed(epoch)
        for _ in range(4):
            yield _Batch(torch.randn(16, 2, generator=gen) + 3.0)

    def generator_step(models, batch, shared):
        noise = torch.randn(len(batch), 2)  # (B, 2) from the loop's seeded global generator
        fake = models["model"](noise)  # (B, 2)
        shared["fake"] = fake.detach()
        logits = models["discriminator"](fake)  # (B, 1)
        l1 = (fake - batch.real).abs().mean()
        return bce(logits, torch.ones_like(logits)) * schedule["weight"] + l1, {}

    def discriminator_step(models, batch, shared):
        real, fake = models["discriminator"](batch.real), models["discriminator"](shared["fake"])  # (B, 1) each
        return bce(real, torch.ones_like(real)) + bce(fake, torch.zeros_like(fake)), {}

    def evaluate(model, accelerator):
        with torch.no_grad():
            out = model(torch.zeros(1, 2))  # (1, 2)
        return {"accuracy": -float((out - 3.0).abs().mean())}

    def switch_on(epoch: int, record: dict) -> None:
        schedule["weight"] = 0.5 if record["accuracy"] > -2.9 else 0.0
        weights.append(schedule["weight"])

    task = Task(
        model=generator, others={"discriminator": discriminator}, batches=batches, evaluate=evaluate,
        steps=(Step(("model",), generator_step), Step(("discriminator",), discriminator_step)),
        epoch_end=(switch_on,), num_batches=4,
    )  # fmt: skip
    return task


def test_a_gan_trains_both_models_checkpoints_each_and_resumes_bit_identically(tmp_path):
    from safetensors.torch import load_file

    from mumo.train.checkpoint import checkpoint_dir
    from mumo.train.loop import fit

    cfg = TrainConfig(epochs=3, lr=0.05, warmup_epochs=0, decay_epochs=[], cpu=True)
    weights: list[float] = []
    task = _gan_task(weights)
    d0 = {k: v.clone() for k, v in task.others["discriminator"].state_dict().items()}
    whole = fit(task, cfg, tmp_path / "whole", progress=False)
    assert len(whole.history) == 3 and weights == sorted(weights) and weights[-1] == 0.5  # the hook switched on
    ckpt = checkpoint_dir(tmp_path / "whole", "last")
    files = sorted(p.name for p in ckpt.iterdir())
    assert files == ["discriminator.safetensors", "meta.json", "model.safetensors", "optimizer-1.json",
                     "optimizer-1.safetensors", "optimizer.json", "optimizer.safetensors"]  # fmt: skip
    assert set(load_file(ckpt / "model.safetensors")) == {"weight", "bias"}  # the bare generator
    assert not torch.equal(load_file(ckpt / "discriminator.safetensors")["weight"], d0["weight"])

    # stopped after epoch 1, resumed to 3: the same weights, and the hook's schedule replayed from the history
    fit(_gan_task([]), TrainConfig(**{**cfg.__dict__, "epochs": 1}), tmp_path / "split", progress=False)
    replayed: list[float] = []
    fit(_gan_task(replayed), cfg, tmp_path / "split", resume=True, progress=False)
    assert replayed == weights
    for name in ("model", "discriminator"):
        a = load_file(checkpoint_dir(tmp_path / "whole", "last") / f"{name}.safetensors")
        b = load_file(checkpoint_dir(tmp_path / "split", "last") / f"{name}.safetensors")
        assert all(torch.equal(a[k], b[k]) for k in a), name


def test_a_step_naming_an_unknown_model_is_refused():
    from mumo.train.loop import Step, Task

    with pytest.raises(MumoError, match="names models"):
        Task(model=torch.nn.Linear(1, 1), batches=lambda *_: [], evaluate=lambda *_: {},
             steps=(Step(("critic",), lambda *_: None),))  # fmt: skip
    with pytest.raises(MumoError, match="needs a loss_fn or steps"):
        Task(model=torch.nn.Linear(1, 1), batches=lambda *_: [], evaluate=lambda *_: {})
