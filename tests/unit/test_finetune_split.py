"""The one-command fine-tune's split by N and the `pretrained:default` alias."""

import pytest

from metamlip import pretrained
from metamlip.data import DataError
from metamlip.nn.checkpoint import CheckpointError, load_potential, read_checkpoint
from metamlip.train.config import config_from_dict
from metamlip.train.finetune_split import apply_split_defaults


def data_section(**values):
    return config_from_dict({"data": values}).data


@pytest.mark.parametrize(
    ("n_total", "n_train", "n_val", "n_test"),
    [(600, 50, 10, 540), (600, 10, 5, 585), (600, 100, 20, 480), (5000, 1000, 100, 1000), (12, 6, 5, 1)],
)
def test_split_defaults_by_n(n_total, n_train, n_val, n_test):
    data = data_section(n_train=n_train)
    assert apply_split_defaults(data, n_total, "mp2/cc-pvdz") == n_train
    assert (data.n_val, data.n_test) == (n_val, n_test)


def test_split_keeps_what_the_user_set():
    data = data_section(n_train=50, n_val=0.1, n_test=30)
    assert apply_split_defaults(data, 600, "x") == 50
    assert (data.n_val, data.n_test) == (60, 30)
    data = data_section()  # no --n-train: the usual 10% / 10%, training on the rest
    assert apply_split_defaults(data, 600, "x") == 480
    assert (data.n_val, data.n_test) == (60, 60)


def test_too_few_configurations_say_how_many():
    with pytest.raises(DataError, match=r"--n-train 700: the data hold only 600 configurations at level mp2/cc-pvdz; "
                       r"with 100 for validation and at least 1 for testing, at most 499 can train"):
        apply_split_defaults(data_section(n_train=700), 600, "mp2/cc-pvdz")
    with pytest.raises(DataError, match="with 80 for validation and 200 for testing, at most 320 can train"):
        apply_split_defaults(data_section(n_train=400, n_test=200), 600, "x")
    with pytest.raises(DataError, match="at most 0 can train"):
        apply_split_defaults(data_section(n_train=1), 5, "x")


def test_pretrained_default_is_an_alias():
    target = pretrained.ALIASES["default"]
    assert target in pretrained.available()
    assert pretrained.resolve("pretrained:default") == pretrained.resolve(f"pretrained:{target}")
    assert pretrained.canonical_spec("pretrained:default") == f"pretrained:{target}"
    assert pretrained.canonical_spec("runs/a/model.ckpt") == "runs/a/model.ckpt"
    assert pretrained.model_card("default") == pretrained.model_card(target)
    assert "pretrained:default" in pretrained.model_card("default")  # the card mentions the alias
    model = load_potential("pretrained:default")  # every checkpoint reader takes pretrained:NAME
    assert model.levels == load_potential(f"pretrained:{target}").levels
    assert read_checkpoint("pretrained:default")["format"] == "metamlip-checkpoint"


def test_unknown_pretrained_name_lists_the_known_ones():
    target = pretrained.ALIASES["default"]
    with pytest.raises(pretrained.PretrainedError, match=rf"no pre-trained model named 'nope' \(shipped: default \(= {target}\), .*hipnn-meta-hcno"):
        pretrained.resolve("pretrained:nope")
    with pytest.raises(CheckpointError, match="no pre-trained model named 'nope'"):
        load_potential("pretrained:nope")
