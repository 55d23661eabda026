import pytest

from mumo.config import config_from_yaml, config_to_yaml, list_presets, preset_section
from mumo.errors import ConfigError
from mumo.tasks import get_task, load_config
from mumo.tasks.sync.config import SyncRunConfig
from mumo.tasks.vqa.config import RunConfig


@pytest.mark.parametrize("name", list_presets())
def test_every_preset_loads_and_round_trips(name, tmp_path):
    task = get_task(preset_section(name, "task"))
    cfg = load_config(name)
    assert isinstance(cfg, task.schema) and cfg.preset == name and cfg.task == task.name
    (tmp_path / "c.yaml").write_text(config_to_yaml(cfg))
    assert config_from_yaml(tmp_path / "c.yaml", schema=task.schema) == cfg


def test_overrides_are_typed():
    cfg = load_config(
        "mcan-cpu", ["train.epochs=3", "model.dropout=0.2", "model.cnn_channels=[4,4]", "model.cnn_pool=2"]
    )
    assert cfg.train.epochs == 3 and cfg.model.dropout == 0.2 and cfg.model.cnn_channels == [4, 4]


def test_mixed_precision_no_survives_yaml_reading_it_as_false():
    # YAML 1.1 turns a bare `no` into false; the documented spelling must still work
    assert load_config("mcan-cpu", ["train.mixed_precision=no"]).train.mixed_precision == "no"
    assert load_config("mcan-cpu", ["train.mixed_precision=bf16"]).train.mixed_precision == "bf16"


@pytest.mark.parametrize(
    ("preset", "overrides", "message"),
    [
        ("mcan-cpu", ["model.hiddn=3"], "unknown config key 'model.hiddn'"),
        ("mcan-cpu", ["nosuch=1"], "unknown config key 'nosuch'"),
        ("mcan-cpu", ["model.hidden=abc"], "model.hidden"),
        ("mcan-cpu", ["model.hidden=65"], "divisible"),
        ("mcan-cpu", ["train.epochs"], "key=value"),
        ("mcan-cpu", ["train.mixed_precision=fp8"], "'fp8'"),
        ("mcan-cpu", ["objective.attention_loss=maybe"], "objective.attention_loss must be one of"),
        ("mcan-huge", [], "unknown preset 'mcan-huge'"),
        # the loop's settings hold no task's objective: the expert refuses VQA's augmentation by name
        ("sync-cpu", ["train.augment_pixel_noise=0.2"], "unknown config key 'train.augment_pixel_noise'"),
        ("sync-cpu", ["objective.loss_reduction=sum"], "unknown config key 'objective'"),
    ],
)
def test_bad_configs_name_the_problem(preset, overrides, message):
    with pytest.raises(ConfigError, match=message):
        load_config(preset, overrides)


def test_each_task_states_its_batch_unit_and_the_loop_holds_no_objective():
    from mumo.config import TrainConfig

    assert not {"loss_reduction", "augment_pixel_noise", "attention_loss"} & set(TrainConfig.__dataclass_fields__)
    import mumo.tasks.vqa.config as vqa_config

    assert "``train.batch_size`` counts images" in vqa_config.__doc__
    assert "counts (frames, audio) pairs" in SyncRunConfig.__doc__


def test_keys_and_presets_of_earlier_versions_are_read_under_their_names_now(tmp_path):
    # overrides: users' scripts keep working
    old = load_config("mcan-cpu", ["train.images_per_batch=8", "train.attention_loss=mse", "train.loss_reduction=mean"])
    assert (
        old.train.batch_size == 8 and old.objective.attention_loss == "mse" and old.objective.loss_reduction == "mean"
    )
    assert old == load_config(
        "mcan-cpu", ["train.batch_size=8", "objective.attention_loss=mse", "objective.loss_reduction=mean"]
    )
    assert load_config("syncnet-cpu") == load_config("sync-cpu")  # the preset's earlier name
    # runs on disk: a config.yaml as earlier versions wrote it (the objective inside train, images_per_batch)
    import yaml

    from mumo.config import config_to_dict

    data = config_to_dict(load_config("mcan-cpu", ["train.attention_loss=aan", "train.augment_pixel_noise=0.2"]))
    objective = data.pop("objective")
    objective.pop("loss")  # newer than the layout imitated here
    data["train"].update(objective, images_per_batch=data["train"].pop("batch_size"))
    (tmp_path / "vqa.yaml").write_text(yaml.safe_dump(data))
    cfg = config_from_yaml(tmp_path / "vqa.yaml", schema=RunConfig)
    assert cfg.train.batch_size == 32 and cfg.objective.attention_loss == "aan"
    assert cfg.objective.augment_pixel_noise == 0.2
    # an expert run of an earlier version: task "syncnet", and VQA's keys in its train section (dropped)
    data = config_to_dict(load_config("sync-cpu"))
    data["train"].update(loss_reduction="mean", attention_loss="none", augment_pixel_noise=0.0)
    (tmp_path / "sync.yaml").write_text(yaml.safe_dump({**data, "task": "syncnet"}))
    assert config_from_yaml(tmp_path / "sync.yaml", schema=SyncRunConfig).train == load_config("sync-cpu").train
