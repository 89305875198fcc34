"""hippynn, the HIP-NN reference implementation, trained with its own standard loop on the
frames of a bench/accuracy.py split (the `hippynn` method of that benchmark).

The network is hippynn's `Hipnn` with the shipped model's sizes (features, sensitivities,
interactions, onsite layers, soft_min/soft_max/cutoff; inverse sensitivities, no resnet, as
ours), float64. Everything else is hippynn's as its examples set it up:
- loss (examples/ani1x_training.py, molecules of H, C, N, O): RMSE + MAE of the total energy,
  RMSE + MAE of the forces, plus the hierarchicality term, in eV and eV/Å;
- hierarchical_energy_initialization: self energies by least squares on the training frames,
  frozen, the energy heads of later blocks initialised ×1e-2 per block;
- controller (examples/ani_aluminum_example.py, a small data set): Adam at 1e-3,
  RaiseBatchSizeOnPlateau from batch 16 up to 64 (patience 25 epochs, factor 0.5; past the
  largest batch it halves the learning rate), PatienceController stopping after 50 epochs
  without improvement of the validation loss, at most 500 epochs; the best model is kept.
hippynn's eager plain-PyTorch pair sums are used (its numba/triton/compiled ones give the same numbers).

Variant `hippynn-steps` (an ablation): the same, but with metamlip's step budget: batches of
training.batch_size (4) throughout, at most training.max_steps (6000) optimiser steps and
stopping after training.patience_steps (3000) without improvement, both in epochs of the
training set (hippynn counts epochs), so that only hippynn's loss, initialisation, learning
rate and plateau schedule differ from metamlip's protocol.
"""

from __future__ import annotations

import contextlib
import io
import math
import os
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

SETTINGS: dict[str, Any] = {
    "learning_rate": 1e-3,
    "batch_size": 16,
    "max_batch_size": 64,
    "patience": 25,
    "termination_patience": 50,
    "max_epochs": 500,
    "loss": "E_rmse+E_mae+F_rmse+F_mae+hier",
    "resnet": False,
    "dtype": "float64",
}


VARIANTS = ("hippynn", "hippynn-steps")


def settings_for(variant: str, n_train: int, quick: bool) -> dict[str, Any]:
    """The training settings of `variant` for `n_train` frames (quick: 20 epochs at most)."""
    settings = dict(SETTINGS)
    if variant == "hippynn-steps":
        from metamlip.train.config import TrainingConfig

        ours = TrainingConfig()
        steps_per_epoch = math.ceil(n_train / ours.batch_size)
        settings.update(
            batch_size=ours.batch_size, max_batch_size=ours.batch_size,
            max_epochs=math.ceil(ours.max_steps / steps_per_epoch),
            termination_patience=math.ceil(ours.patience_steps / steps_per_epoch),
        )
    elif variant != "hippynn":
        raise ValueError(f"unknown hippynn variant {variant!r}; expected one of {VARIANTS}")
    if quick:
        settings["max_epochs"] = min(settings["max_epochs"], 20)
    return settings


def hippynn_parameters(architecture: dict[str, Any], species: list[int]) -> dict[str, Any]:
    """hippynn's Hipnn keyword arguments for our model section `architecture`: our
    n_atom_layers counts the interaction layer, hippynn's counts only the onsite layers."""
    return {
        "possible_species": [0, *species],
        "n_features": architecture["n_features"],
        "n_sensitivities": architecture["n_sensitivities"],
        "dist_soft_min": architecture["soft_min"],
        "dist_soft_max": architecture["soft_max"],
        "dist_hard_max": architecture["cutoff"],
        "n_interaction_layers": architecture["n_interactions"],
        "n_atom_layers": architecture["n_atom_layers"] - 1,
        "sensitivity_type": "inverse",
        "resnet": SETTINGS["resnet"],
    }


def padded_arrays(dataset, species: list[int]) -> dict[str, np.ndarray]:
    """hippynn's database arrays: species [frames, atoms] (0 pads), coordinates and forces
    [frames, atoms, 3] (Å, eV/Å), energy [frames, 1] (eV)."""
    n = len(dataset)
    width = max(c.n_atoms for c in dataset)
    z = np.zeros((n, width), dtype=np.int64)
    r = np.zeros((n, width, 3))
    f = np.zeros((n, width, 3))
    for k, c in enumerate(dataset):
        missing = set(np.unique(c.numbers).tolist()) - set(species)
        if missing:
            raise ValueError(f"{c.source}: element(s) {sorted(missing)} outside the model's species {species}")
        z[k, : c.n_atoms] = c.numbers
        r[k, : c.n_atoms] = c.positions
        f[k, : c.n_atoms] = c.forces
    energy = np.array([[c.energy] for c in dataset])
    return {"species": z, "coordinates": r, "forces": f, "energy": energy}


def train_hippynn(train, val, test, architecture: dict[str, Any], species: list[int], seed: int, directory: Path,
                  device: str, settings: dict[str, Any] = SETTINGS) -> tuple[dict[str, float], float, int]:
    """Train on `train` (validation `val`) in `directory` (hippynn's files and its printed log,
    hippynn_log.txt); return (test metrics in meV, seconds, epochs)."""
    import torch

    torch.set_num_threads(1)
    torch.manual_seed(seed)
    torch.set_default_dtype(torch.float64)
    directory.mkdir(parents=True, exist_ok=True)
    log = io.StringIO()
    cwd = os.getcwd()
    try:
        with contextlib.redirect_stdout(log), warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # hippynn's scheduler `verbose`, torch's pin_memory without a GPU
            os.chdir(directory)  # hippynn writes its checkpoints and plots into the working directory
            return _train(train, val, test, architecture, species, seed, torch.device(device), settings)
    finally:
        os.chdir(cwd)
        (directory / "hippynn_log.txt").write_text(log.getvalue())


def _train(train, val, test, architecture, species, seed, device, settings):
    import hippynn
    import torch

    hippynn.settings.PROGRESS = None
    hippynn.settings.WARN_LOW_DISTANCES = False
    import hippynn.custom_kernels

    # hippynn's eager plain-PyTorch pair sums: the same numbers as its numba/triton/compiled kernels,
    # which only pay off for large systems and would be compiled again in every run's process
    hippynn.custom_kernels.set_custom_kernels("_pytorch_raw")
    from hippynn.databases import Database
    from hippynn.experiment import SetupParams, assemble_for_training, setup_and_train
    from hippynn.experiment.controllers import PatienceController, RaiseBatchSizeOnPlateau
    from hippynn.graphs import Predictor, inputs, loss, networks, physics, targets
    from hippynn.pretraining import hierarchical_energy_initialization

    species_node = inputs.SpeciesNode(db_name="species")
    positions = inputs.PositionsNode(db_name="coordinates")
    network = networks.Hipnn("hipnn", (species_node, positions), module_kwargs=hippynn_parameters(architecture, species))
    henergy = targets.HEnergyNode("energy", network)
    henergy.mol_energy.db_name = "energy"
    force = physics.GradientNode("forces", (henergy.mol_energy, positions), sign=-1)
    force.db_name = "forces"

    e_rmse = loss.MSELoss.of_node(henergy) ** (1 / 2)
    e_mae = loss.MAELoss.of_node(henergy)
    f_rmse = loss.MSELoss.of_node(force) ** (1 / 2)
    f_mae = loss.MAELoss.of_node(force)
    hier = loss.Mean.of_node(henergy.hierarchicality)
    error = e_rmse + e_mae + f_rmse + f_mae
    validation = {"E-RMSE": e_rmse, "E-MAE": e_mae, "F-RMSE": f_rmse, "F-MAE": f_mae, "Hier": hier, "LossErr": error}
    training_modules, db_info = assemble_for_training(error + hier, validation)

    parts = {"train": train, "valid": val, "test": test}
    arrays = {key: np.concatenate([padded_arrays(d, species)[key] for d in parts.values()]) for key in ("species", "coordinates", "forces", "energy")}
    arrays = {k: torch.as_tensor(v) for k, v in arrays.items()}
    arrays["indices"] = torch.arange(sum(len(d) for d in parts.values()))
    start = time.perf_counter()
    database = Database(arrays, seed=seed, quiet=True, **db_info)
    first = 0
    for name, part in parts.items():
        database.make_explicit_split(name, torch.arange(first, first + len(part)))
        first += len(part)
    hierarchical_energy_initialization(henergy, database, trainable_after=False)
    optimizer = torch.optim.Adam(training_modules.model.parameters(), lr=settings["learning_rate"])
    scheduler = RaiseBatchSizeOnPlateau(optimizer=optimizer, max_batch_size=settings["max_batch_size"], patience=settings["patience"], factor=0.5)
    controller = PatienceController(
        optimizer=optimizer, scheduler=scheduler, batch_size=settings["batch_size"], eval_batch_size=64,
        max_epochs=settings["max_epochs"], termination_patience=settings["termination_patience"], stopping_key="LossErr",
    )
    setup_and_train(training_modules, database, SetupParams(controller=controller, device=device))
    seconds = time.perf_counter() - start

    predictor = Predictor.from_graph(training_modules.model, model_device=device, requires_grad=True)
    split = database.splits["test"]
    out = predictor(species=split["species"].to(device), coordinates=split["coordinates"].to(device))
    real = split["species"] > 0
    e_pred = out[henergy.mol_energy].detach().double().cpu().reshape(-1)
    f_pred = out[force].detach().double().cpu()
    e = ((e_pred - split["energy"].reshape(-1)) / real.sum(1).double()).numpy()
    f = (f_pred - split["forces"])[real].numpy()
    metrics = {
        "force_rmse_meV_per_A": float(np.sqrt(np.mean(f**2)) * 1000),
        "force_mae_meV_per_A": float(np.mean(np.abs(f)) * 1000),
        "energy_rmse_meV_per_atom": float(np.sqrt(np.mean(e**2)) * 1000),
        "energy_mae_meV_per_atom": float(np.mean(np.abs(e)) * 1000),
        "n_configurations": len(test),
    }
    return metrics, seconds, int(controller.current_epoch)
