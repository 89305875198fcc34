"""The training config schema: types, ranges, defaults and messages naming the key."""

from pathlib import Path

import pytest
import yaml

from metamlip.meta.learning_curve import load_curve_config
from metamlip.train.config import Config, ConfigError, config_from_dict, load_config, validate_config

EXAMPLES = sorted((Path(__file__).parents[2] / "examples").rglob("*.yaml"))


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_every_example_config_loads(path):
    if "learning_curve" in path.name:
        load_curve_config(path)
    else:
        load_config(path)


def test_defaults():
    config = config_from_dict({"model": None})
    assert config.to_dict() == Config().to_dict()
    assert config.model.n_features == 64 and config.data.n_val == 0.1 and config.training.device == "cpu"
    assert config.data.files == [] and Config().data.files is not config.data.files


@pytest.mark.parametrize(
    "values,message",
    [
        ({"model": {"n_features": "abc"}}, "model.n_features: input should be a valid integer, got 'abc'"),
        ({"model": {"n_features": 16.5}}, "model.n_features: input should be a valid integer, got 16.5"),
        ({"model": {"n_features": True}}, "model.n_features: input should be a valid integer"),
        ({"model": {"cutoff": "5 A"}}, "model.cutoff: input should be a valid number"),
        ({"data": {"files": "a.extxyz"}}, "data.files: expected a list, e.g. [a.extxyz], not a string"),
        ({"data": {"n_train": 0}}, "data.n_train: input should be greater than or equal to 1, got 0"),
        ({"data": {"n_val": -0.2}}, "data.n_val: must be a count >= 0 or a fraction in [0, 1)"),
        ({"data": {"n_test": 2.5}}, "data.n_test: a value >= 1 is a count and must be a whole number"),
        ({"model": {"n_feature": 3}}, "model: unknown key(s) n_feature (known: n_features,"),
        ({"modle": {}}, "config: unknown top-level key(s) modle"),
        ({"model": [1, 2]}, "model: expected a mapping of keys"),
        ({"training": {"device": "gpu"}}, "training.device: must be 'cpu' or 'cuda[:N]', got 'gpu'"),
        ({"pretrain": {"dtype": "float16"}}, "pretrain.dtype: input should be 'float32' or 'float64'"),
        ({"strategy": "maml"}, "strategy: input should be 'scratch', 'transfer', 'joint', 'multihead' or 'reptile'"),
        ({"model": {"soft_min": 5.0, "soft_max": 4.0}}, "model: need 0 < soft_min < soft_max <= cutoff"),
        ({"model": {"tensor_order": 3}}, "model.tensor_order: input should be 0, 1 or 2, got 3"),
        ({"reptile": {"outer_lr": 2}}, "reptile.outer_lr: input should be less than or equal to 1"),
        ({"training": {"energy_weight": 0, "force_weight": 0}}, "training: energy_weight and force_weight are both 0"),
    ],
)
def test_bad_values_name_the_key(values, message):
    with pytest.raises(ConfigError) as info:
        config_from_dict(values)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_yaml_quirks_and_counts():
    # PyYAML reads 1e-3 as a string; a count >= 1 stays an int, a fraction a float
    config = config_from_dict(yaml.safe_load("training: {learning_rate: 1e-3}\ndata: {n_val: 50, n_test: 0.2}"))
    assert config.training.learning_rate == 1e-3
    assert config.data.n_val == 50 and isinstance(config.data.n_val, int) and config.data.n_test == 0.2


def test_overrides_are_validated_again(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("model:\n  n_features: abc\n")
    with pytest.raises(ConfigError, match=r"c.yaml: model.n_features"):
        load_config(path)
    config = Config()
    config.data.n_train = 0  # as `--n-train 0` sets it
    with pytest.raises(ConfigError, match="data.n_train"):
        validate_config(config)
