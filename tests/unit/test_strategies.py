"""Strategies and fine-tuning: what a fine-tuned model keeps and adds, stability across levels
with very different absolute energies, and the data splits of multi-level experiments."""

from collections import Counter

import numpy as np
import pytest
import torch
from model_helpers import ARCHITECTURE, SPECIES
from synthetic import morse_energy_forces, synthetic_dataset

from metamlip.data import Configuration, Dataset, fit_self_energies
from metamlip.data.self_energies import composition_matrix
from metamlip.meta import strategies
from metamlip.meta.tasks import SourceTask, balanced_order, geometry_key, split_sources, split_target
from metamlip.nn.build import build_potential
from metamlip.train.checkpoint import save_checkpoint
from metamlip.train.config import Config, DataConfig, FinetuneConfig, ModelConfig, PretrainConfig
from metamlip.train.metrics import error_metrics, predict

NAMES = ("CH3CH2OH", "H3CNH2", "HCOOH", "CH3CONH2")


def level_data(level, per_atom_offset, depth=0.3, n=8, seed=0):
    """The same geometries (for a given seed) labelled with a level-dependent Morse surface."""
    out = []
    for c in synthetic_dataset(n, names=NAMES, seed=seed):
        energy, forces = morse_energy_forces(c.positions, depth=depth)
        out.append(Configuration(c.numbers, c.positions, level, energy + per_atom_offset * c.n_atoms, forces, molecule=c.molecule))
    return Dataset(out)


def two_level_model(n_heads=1):
    torch.manual_seed(0)
    se = torch.tensor([[-10.0, -20.0, -30.0, -40.0], [-1.0, -2.0, -3.0, -4.0]], dtype=torch.float64)
    return build_potential(ARCHITECTURE, SPECIES, ["src/a", "src/b"], se, 0.6, n_heads=n_heads,
                           head_of_level=[0, 1] if n_heads > 1 else None).double()


@pytest.mark.parametrize("mode", ["residual", "data"])
def test_finetune_keeps_species_cutoff_scale_and_adds_the_level(tmp_path, mode):
    save_checkpoint(tmp_path / "pre.ckpt", two_level_model(), {})
    potential = strategies.load_init(str(tmp_path / "pre.ckpt"))
    before = {k: v.clone() for k, v in potential.state_dict().items()}
    train = level_data("new/level", -500.0, depth=0.4, n=3)
    strategies.add_target_level(potential, "new/level", train, FinetuneConfig(self_energies=mode))
    assert potential.species == SPECIES and potential.cutoff == ARCHITECTURE["cutoff"]
    assert potential.levels == ["src/a", "src/b", "new/level"]
    assert float(potential.energy_scale) == pytest.approx(0.6)
    assert potential.head_of_level.tolist() == [0, 0, 0] and potential.hipnn.n_heads == 1
    for key, value in before.items():  # nothing pre-trained changed
        if key not in ("self_energies", "head_of_level"):
            torch.testing.assert_close(potential.state_dict()[key], value, rtol=0, atol=0)
    torch.testing.assert_close(potential.self_energies[:2], before["self_energies"])
    fitted = potential.self_energies[2].numpy()
    if mode == "data":
        np.testing.assert_allclose(fitted, fit_self_energies(train, SPECIES)["new/level"], rtol=1e-10)
    else:  # least squares on E - E_network: the remaining error is orthogonal to every composition
        pred = predict(potential, strategies.GraphSet(train.configurations, potential.cutoff))
        counts = composition_matrix(train, SPECIES)
        assert np.abs(counts.T @ (pred.energy_pred - pred.energy_ref)).max() < 1e-6
    assert fitted.mean() == pytest.approx(-500.0, abs=60)


def test_multihead_finetune_adds_a_mean_head_and_can_freeze_the_body():
    potential = two_level_model(n_heads=2)
    heads_before = potential.hipnn.input_head.weight.detach().clone()
    strategies.add_target_level(potential, "new/level", level_data("new/level", -3.0, n=2), FinetuneConfig(freeze_body=True))
    assert potential.hipnn.n_heads == 3 and potential.head_of_level.tolist() == [0, 1, 2]
    torch.testing.assert_close(potential.hipnn.input_head.weight[2], heads_before.mean(0))
    heads = {id(p) for p in potential.hipnn.head_parameters()}
    assert heads == {id(p) for name, p in potential.named_parameters() if "head" in name}  # what freeze_body trains (test_training_protocol)


def test_levels_thousands_of_eV_apart_train_stably_together(tmp_path):
    """An xTB-like level (~-4 eV/atom) and an ab-initio-like one (~-1000 eV/atom): thousands of
    eV apart per molecule. With per-level self energies joint training fits both."""
    xtb, abinitio = level_data("xtb", -4.0, depth=0.25, n=10, seed=1), level_data("abinitio", -1000.0, depth=0.35, n=10, seed=2)
    gap = np.mean([c.energy for c in abinitio]) - np.mean([c.energy for c in xtb])
    assert gap < -5000
    config = Config(
        strategy="joint",
        model=ModelConfig(**ARCHITECTURE),
        pretrain=PretrainConfig(batch_size=8, learning_rate=3e-3, max_epochs=8, progress=False),
    )
    sources = {
        level: SourceTask(level, data.subset(range(32)), data.subset(range(32, 40)))
        for level, data in (("xtb", xtb), ("abinitio", abinitio))
    }
    potential, metrics = strategies.pretrain(config, sources, SPECIES, tmp_path / "joint")
    assert potential.self_energies.dtype == torch.float64
    assert potential.self_energies[1].mean() - potential.self_energies[0].mean() < -900
    val = metrics["validation"]
    rows = [r for r in (tmp_path / "joint" / "train_log.csv").read_text().splitlines()[1:]]
    losses = [float(r.split(",")[4]) for r in rows]
    assert np.all(np.isfinite(losses)) and min(losses) < losses[0] / 3, losses
    for level in ("xtb", "abinitio"):
        assert val[level]["energy_rmse_meV_per_atom"] < 30, val
        assert val[level]["force_rmse_meV_per_A"] < 400, val
    # the same data with one set of self energies for both levels cannot be fitted
    merged = Dataset(Configuration(c.numbers, c.positions, "merged", c.energy, c.forces) for c in xtb + abinitio)
    residual_std = np.std([c.energy - composition_matrix(Dataset([c]), SPECIES)[0] @ fit_self_energies(merged, SPECIES)["merged"] for c in merged])
    assert residual_std > 100  # eV: what a single-level fit would leave to the network


def test_target_geometries_are_kept_out_of_the_sources():
    target = level_data("t", -2.0, n=10)
    source = level_data("s", -1.0, n=10)  # same geometries (same seed)
    data = DataConfig(level="t", n_val=5, n_test=5, source_n_val=0.2)
    split = split_target(target + source, data)
    assert len(split.val) == 5 and len(split.test) == 5 and len(split.pool) == 30 and len(split.train) == 30
    tasks = split_sources(target + source, ["s"], data, exclude=split.val + split.test)
    kept = {geometry_key(c) for c in tasks["s"].train + tasks["s"].val}
    assert len(kept) == 30 and not kept & {geometry_key(c) for c in split.val + split.test}


def test_balanced_order_gives_balanced_nested_prefixes():
    pool = level_data("t", -2.0, n=12)
    order = balanced_order(pool, seed=3)
    assert sorted(order) == list(range(len(pool)))
    counts = Counter(pool[k].molecule for k in order[:10])
    assert set(counts) == set(NAMES) and max(counts.values()) - min(counts.values()) <= 1
    assert balanced_order(pool, seed=4)[:10] != order[:10]
