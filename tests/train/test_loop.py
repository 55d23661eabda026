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
