import pytest

from mumo.config import RunConfig, config_from_yaml, config_to_yaml, list_presets, load_config
from mumo.errors import ConfigError


@pytest.mark.parametrize("name", list_presets())
def test_every_preset_loads_and_round_trips(name, tmp_path):
    from mumo.config import preset_section
    from mumo.tasks.sync.task import SyncRunConfig

    schema = {"vqa": RunConfig, "syncnet": SyncRunConfig}[preset_section(name, "task")]
    cfg = load_config(name, schema=schema)
    assert isinstance(cfg, schema) and cfg.preset == name
    (tmp_path / "c.yaml").write_text(config_to_yaml(cfg))
    assert config_from_yaml(tmp_path / "c.yaml", schema=schema) == cfg


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
        ("mcan-huge", [], "unknown preset 'mcan-huge'"),
    ],
)
def test_bad_configs_name_the_problem(preset, overrides, message):
    with pytest.raises(ConfigError, match=message):
        load_config(preset, overrides)
