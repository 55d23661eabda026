"""Run.config_section: one section of another task's run config, as a dict or read into a schema."""

from __future__ import annotations

import shutil

import pytest

from mumo.errors import CheckpointError
from mumo.models.mcan_vqa import MCANConfig
from mumo.models.sync_expert import SyncExpertConfig
from mumo.runs import Run
from mumo.tasks.vqa.config import RunConfig


def test_a_section_reads_back_as_the_run_config_holds_it(tiny_run):
    run = Run(tiny_run)
    full = run.config(RunConfig)
    assert run.config_section("data")["image_size"] == full.data.image_size
    assert run.config_section("model", MCANConfig) == full.model


def test_a_section_that_does_not_fit_the_schema_is_a_corrupted_run(tiny_run):
    with pytest.raises(CheckpointError, match="'model' section does not fit"):
        Run(tiny_run).config_section("model", SyncExpertConfig)  # a VQA model is no lip-sync expert


def test_a_missing_section_or_config_is_a_checkpoint_error(tiny_run, tmp_path):
    with pytest.raises(CheckpointError, match="no 'nothing' section"):
        Run(tiny_run).config_section("nothing")
    with pytest.raises(CheckpointError, match="not a mumo run"):
        Run(tmp_path).config_section("model")
    copy = tmp_path / "copy"
    shutil.copytree(tiny_run, copy)
    (copy / "config.yaml").write_text("[1, 2")
    with pytest.raises(CheckpointError, match="not a config file"):
        Run(copy).config_section("model")
