"""metamlip-train across levels: pre-train + fine-tune in one command, pre-training alone,
fine-tuning a checkpoint with --init, the shipped pre-trained models, clear errors."""

import json

import pytest
import yaml
from synthetic import morse_energy_forces, synthetic_dataset

from metamlip import pretrained
from metamlip.cli.train import main
from metamlip.data import Configuration, Dataset, write_extxyz
from metamlip.nn.checkpoint import load_potential, read_checkpoint

SMALL = {
    "model": {"n_features": 12, "n_sensitivities": 6, "n_interactions": 1, "n_atom_layers": 2,
              "cutoff": 4.0, "soft_min": 0.75, "soft_max": 3.5},
    "training": {"batch_size": 8, "learning_rate": 3e-3, "max_epochs": 3, "progress": False},
    "pretrain": {"batch_size": 8, "learning_rate": 3e-3, "max_epochs": 2, "progress": False},
    "reptile": {"outer_steps": 6, "inner_steps": 2, "eval_every": 3, "meta_batch_size": 2},
    "data": {"n_val": 6, "n_test": 6, "source_n_val": 0.2},
}
LEVELS = {"gfn2-xtb": (0.25, -4.0), "hf/sto-3g": (0.35, -1000.0), "mp2/cc-pvdz": (0.3, -1010.0)}


@pytest.fixture(scope="module")
def level_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("levels")
    base = synthetic_dataset(8)
    for level, (depth, offset) in LEVELS.items():
        configs = []
        for c in base:
            energy, forces = morse_energy_forces(c.positions, depth=depth)
            configs.append(Configuration(c.numbers, c.positions, level, energy + offset * c.n_atoms, forces, molecule=c.molecule))
        write_extxyz(Dataset(configs), folder / f"{level.replace('/', '_')}.extxyz")
    return folder


def config_file(path, **top):
    path.write_text(yaml.safe_dump({**SMALL, **top}))
    return str(path)


@pytest.mark.parametrize("strategy", ["reptile", "multihead"])
def test_pretrain_and_finetune_in_one_command(tmp_path, level_files, capsys, strategy):
    out = tmp_path / strategy
    args = [config_file(tmp_path / "c.yaml"), "--data", str(level_files / "*.extxyz"), "--level", "mp2/cc-pvdz",
            "--n-train", "8", "--strategy", strategy, "--out", str(out)]
    assert main(args) == 0
    for name in ("model.ckpt", "last.ckpt", "metrics.json", "train_log.csv", "parity.png", "pretrain/model.ckpt", "pretrain/metrics.json"):
        assert (out / name).exists(), name
    pre = json.loads((out / "pretrain" / "metrics.json").read_text())
    assert pre["strategy"] == strategy and set(pre["levels"]) == {"gfn2-xtb", "hf/sto-3g"}
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics["test"]) == {"mp2/cc-pvdz", "all"}
    model = load_potential(out / "model.ckpt")
    assert model.levels[-1] == "mp2/cc-pvdz" and model.species == [1, 6, 7, 8]
    assert model.hipnn.n_heads == (3 if strategy == "multihead" else 1)
    config = read_checkpoint(out / "model.ckpt")["config"]
    assert config["strategy"] == strategy and config["data"]["n_train"] == 8
    assert "force RMSE" in capsys.readouterr().out
    assert main(args) == 2  # refuses to overwrite
    assert main(args + ["--resume"]) == 0  # a finished run resumes to the same end


def test_pretrain_alone_then_finetune_with_init(tmp_path, level_files, capsys):
    pre = tmp_path / "meta"
    config = config_file(tmp_path / "c.yaml", strategy="reptile")
    data = ["--data", str(level_files / "gfn2-xtb.extxyz"), str(level_files / "hf_sto-3g.extxyz")]
    assert main([config, *data, "--out", str(pre)]) == 0
    assert "pre-trained (reptile) on gfn2-xtb, hf/sto-3g" in capsys.readouterr().out
    meta = load_potential(pre / "model.ckpt")
    assert meta.levels == ["gfn2-xtb", "hf/sto-3g"]
    assert "val_loss[hf/sto-3g]" in (pre / "train_log.csv").read_text().splitlines()[0]

    out = tmp_path / "fine"
    finetune = [config_file(tmp_path / "f.yaml"), "--init", str(pre / "model.ckpt"), "--data", str(level_files / "mp2_cc-pvdz.extxyz"),
                "--level", "mp2/cc-pvdz", "--n-train", "10", "--out", str(out)]
    assert main(finetune) == 0
    tuned = load_potential(out / "model.ckpt")
    assert tuned.levels == ["gfn2-xtb", "hf/sto-3g", "mp2/cc-pvdz"]
    assert tuned.species == meta.species and tuned.cutoff == meta.cutoff
    assert float(tuned.energy_scale) == float(meta.energy_scale)
    saved = read_checkpoint(out / "model.ckpt")["config"]
    assert saved["init"] == str(pre / "model.ckpt") and saved["model"]["n_features"] == 12


def test_pretrained_models_are_listed_and_loadable(capsys):
    assert "hipnn-meta-hcno" in pretrained.available()
    assert main(["--list-pretrained"]) == 0
    listed = capsys.readouterr().out
    for name in pretrained.available():
        assert f"pretrained:{name}" in listed
        path = pretrained.resolve(f"pretrained:{name}")
        assert path.stat().st_size < 2_000_000
        model = load_potential(path)
        assert model.species == [1, 6, 7, 8] and len(model.levels) >= 2
        card = pretrained.model_card(name)
        assert "## Validation errors" in card and all(f"`{level}`" in card for level in model.levels)
        assert read_checkpoint(path)["training_state"] is None  # weights only, no optimiser state


def test_the_shipped_model_fine_tunes_to_a_new_level(tmp_path, level_files):
    out = tmp_path / "tuned"
    args = [config_file(tmp_path / "c.yaml"), "--init", "pretrained:hipnn-meta-hcno", "--data", str(level_files / "mp2_cc-pvdz.extxyz"),
            "--level", "mp2/cc-pvdz", "--n-train", "8", "--max-epochs", "1", "--out", str(out)]
    assert main(args) == 0
    shipped = load_potential(pretrained.resolve("pretrained:hipnn-meta-hcno"))
    tuned = load_potential(out / "model.ckpt")
    assert tuned.levels == shipped.levels + ["mp2/cc-pvdz"] and tuned.architecture == shipped.architecture
    # The shipped model predates the core repulsion: fine-tuning adds one fitted on the new data.
    assert shipped.repulsion is None and tuned.repulsion is not None


def test_meta_errors_are_clear(tmp_path, level_files, capsys):
    config = config_file(tmp_path / "c.yaml")
    data = ["--data", str(level_files / "*.extxyz")]
    assert main([config, *data, "--init", "pretrained:no-such-model", "--level", "mp2/cc-pvdz", "--out", str(tmp_path / "a")]) == 2
    assert "no pre-trained model named 'no-such-model'" in capsys.readouterr().err
    assert main([config, *data, "--strategy", "joint", "--level", "mp2/cc-pvdz", "--source-levels", "b3lyp/6-31g*", "--out", str(tmp_path / "b")]) == 2
    assert "source level(s) b3lyp/6-31g* not in the data" in capsys.readouterr().err
    assert main([config, "--data", str(tmp_path / "none*.extxyz"), "--out", str(tmp_path / "c")]) == 2
    assert "no file matches" in capsys.readouterr().err


@pytest.mark.parametrize("strategy", ["scratch", "transfer", "joint", "multihead", "reptile"])
def test_every_strategy_trains_a_tensor_model(tmp_path, level_files, strategy):
    """HIP-NN-TS (model.tensor_order 2) through pre-training and fine-tuning of every strategy."""
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({**SMALL, "model": {**SMALL["model"], "tensor_order": 2}}))
    out = tmp_path / strategy
    args = [str(path), "--data", str(level_files / "*.extxyz"), "--level", "mp2/cc-pvdz", "--n-train", "8",
            "--strategy", strategy, "--out", str(out)]
    assert main(args) == 0
    model = load_potential(out / "model.ckpt")
    assert model.hipnn.tensor_order == 2 and model.levels[-1] == "mp2/cc-pvdz"
    metrics = json.loads((out / "metrics.json").read_text())
    assert all(value == value for value in metrics["test"]["all"].values())  # no NaN
