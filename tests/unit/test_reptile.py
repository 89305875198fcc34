"""Reptile: reduction to plain optimiser steps, the exact outer update, schedule, resume."""

import copy
import os
import signal

import numpy as np
import pytest
import torch
from model_helpers import ARCHITECTURE, SPECIES
from synthetic import morse_energy_forces, synthetic_dataset

from metamlip.data import Configuration, Dataset
from metamlip.data.batching import GraphSet
from metamlip.meta import reptile as reptile_module
from metamlip.meta.reptile import ReptileTrainer, epsilon, inner_batch, sample_tasks
from metamlip.nn.build import build_potential
from metamlip.nn.checkpoint import read_checkpoint
from metamlip.train.config import ConfigError, ReptileConfig, TrainingConfig
from metamlip.train.interrupt import TrainingInterrupted
from metamlip.train.loss import energy_force_loss

LEVELS = ("xtb-like", "abinitio-like")


def relabelled(level: str, depth: float, width: float, offset: float, seed: int) -> Dataset:
    """Synthetic molecules with a level-dependent Morse surface and self energies."""
    configs = []
    for c in synthetic_dataset(6, names=("CH3CH2OH", "HCOOH"), seed=seed):
        energy, forces = morse_energy_forces(c.positions, depth=depth, width=width)
        energy += offset * c.n_atoms
        configs.append(Configuration(c.numbers, c.positions, level, energy, forces, molecule=c.molecule))
    return Dataset(configs)


@pytest.fixture(scope="module")
def tasks():
    data = {
        LEVELS[0]: relabelled(LEVELS[0], 0.25, 1.7, -5.0, seed=1),
        LEVELS[1]: relabelled(LEVELS[1], 0.35, 1.5, -1000.0, seed=2),
    }
    return {level: GraphSet(d.configurations, ARCHITECTURE["cutoff"]) for level, d in data.items()}


def fresh_potential(seed=0):
    torch.manual_seed(seed)
    self_energies = torch.tensor([[-5.0] * 4, [-1000.0] * 4], dtype=torch.float64)
    return build_potential(ARCHITECTURE, SPECIES, list(LEVELS), self_energies, energy_scale=0.5).double()


def make_trainer(tasks, tmp_path, **reptile):
    settings = TrainingConfig(dtype="float64", batch_size=4, grad_clip=1e9, progress=False, seed=3)
    values = {"outer_steps": 100, "eval_every": 1000, **reptile}
    return ReptileTrainer(fresh_potential(), tasks, {}, settings, ReptileConfig(**values), tmp_path, {})


def loss_on(potential, data, indices):
    index = {z: k for k, z in enumerate(potential.species)}
    levels = {name: k for k, name in enumerate(potential.levels)}
    batch = data.batch(indices, index, levels, torch.float64)
    return energy_force_loss(potential, batch, 1.0, 1.0)[0]


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_k1_epsilon1_is_plain_optimiser_steps_on_alternating_tasks(tasks, tmp_path, optimizer):
    trainer = make_trainer(
        tasks, tmp_path, inner_steps=1, outer_lr=1.0, outer_schedule="constant", meta_batch_size=1,
        inner_optimizer=optimizer, inner_lr=2e-3, task_sampling="cycle", inner_state="carry",
    )
    reference = fresh_potential()
    opt_class = torch.optim.Adam if optimizer == "adam" else torch.optim.SGD
    plain = opt_class(reference.parameters(), lr=2e-3)
    levels = list(tasks)
    for step in range(6):
        trainer.outer_step()
        level = levels[step % 2]  # alternating tasks
        indices = inner_batch(len(tasks[level]), 4, 3, step, 0, 0)
        plain.zero_grad()
        loss_on(reference, tasks[level], indices).backward()
        plain.step()
    assert [trainer.task_plan(s)[0] for s in range(4)] == [levels[0], levels[1]] * 2
    for (name, got), want in zip(trainer.potential.named_parameters(), reference.parameters()):
        torch.testing.assert_close(got, want, rtol=0, atol=1e-12, msg=name)


def test_outer_update_moves_theta_by_epsilon_times_mean_difference(tasks, tmp_path):
    k, eps = 3, 0.3
    trainer = make_trainer(
        tasks, tmp_path, inner_steps=k, outer_lr=eps, outer_schedule="constant", meta_batch_size=2,
        inner_lr=1e-3, inner_state="reset",
    )
    theta = copy.deepcopy(trainer.potential)
    differences = []
    for slot, level in enumerate(trainer.task_plan(0)):  # phi_tau by a hand-written Adam loop
        phi = copy.deepcopy(theta)
        adam = torch.optim.Adam(phi.parameters(), lr=1e-3)
        for inner in range(k):
            adam.zero_grad()
            loss_on(phi, tasks[level], inner_batch(len(tasks[level]), 4, 3, 0, slot, inner)).backward()
            adam.step()
        differences.append([a.detach() - b.detach() for a, b in zip(phi.parameters(), theta.parameters())])
    trainer.outer_step()
    moved = False
    for k_param, ((name, new), old) in enumerate(zip(trainer.potential.named_parameters(), theta.parameters())):
        mean_diff = (differences[0][k_param] + differences[1][k_param]) / 2
        torch.testing.assert_close(new - old, eps * mean_diff, rtol=1e-9, atol=1e-14, msg=name)
        moved |= bool(mean_diff.abs().max() > 0)
    assert moved
    assert set(trainer.task_plan(0)) == set(LEVELS)  # a meta-batch holds distinct tasks


def test_epsilon_schedules_and_task_sampling():
    linear = ReptileConfig(outer_steps=11, outer_lr=1.0, outer_lr_end=0.0)
    assert [round(epsilon(linear, s), 6) for s in (0, 5, 10)] == [1.0, 0.5, 0.0]
    cosine = ReptileConfig(outer_steps=11, outer_lr=0.8, outer_lr_end=0.2, outer_schedule="cosine")
    assert epsilon(cosine, 0) == pytest.approx(0.8) and epsilon(cosine, 10) == pytest.approx(0.2)
    assert epsilon(cosine, 5) == pytest.approx(0.5)
    assert sample_tasks(5, 3, seed=0, step=4, mode="random") == sample_tasks(5, 3, seed=0, step=4, mode="random")
    assert len(set(sample_tasks(5, 5, seed=0, step=1, mode="random"))) == 5
    assert sample_tasks(3, 2, seed=0, step=1, mode="cycle") == [2, 0]


def test_resume_after_crash_continues_exactly(tasks, tmp_path, monkeypatch):
    options = dict(inner_steps=2, meta_batch_size=2, inner_state="carry", outer_steps=6, eval_every=2)
    straight = make_trainer(tasks, tmp_path / "straight", **options)
    straight.settings.checkpoint_every = 3
    straight.fit()

    crashing = make_trainer(tasks, tmp_path / "resumed", **options)
    crashing.settings.checkpoint_every = 3
    original = reptile_module.ReptileTrainer.outer_step
    calls = {"n": 0}

    def crash(self):
        calls["n"] += 1
        if calls["n"] == 5:
            raise KeyboardInterrupt("simulated kill")
        return original(self)

    monkeypatch.setattr(reptile_module.ReptileTrainer, "outer_step", crash)
    with pytest.raises(KeyboardInterrupt):
        crashing.fit()
    monkeypatch.setattr(reptile_module.ReptileTrainer, "outer_step", original)
    assert read_checkpoint(tmp_path / "resumed" / "last.ckpt")["training_state"]["reptile"]["outer_step"] == 3
    resumed = make_trainer(tasks, tmp_path / "resumed", **options)
    resumed.settings.checkpoint_every = 3
    resumed.fit(resume=True)
    for (name, a), b in zip(straight.potential.named_parameters(), resumed.potential.parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=name)
    assert [r["outer_step"] for r in resumed.state.log] == [2, 4, 6]
    assert np.isfinite(resumed.state.log[-1]["train_loss"])


def test_ctrl_c_saves_after_the_outer_step_and_resumes_exactly(tasks, tmp_path, monkeypatch):
    options = dict(inner_steps=2, meta_batch_size=2, outer_steps=6, eval_every=2)
    straight = make_trainer(tasks, tmp_path / "straight", **options)
    straight.fit()

    original = reptile_module.ReptileTrainer.outer_step
    calls = {"n": 0}

    def ctrl_c(self):
        calls["n"] += 1
        if calls["n"] == 4:
            os.kill(os.getpid(), signal.SIGINT)
        return original(self)

    monkeypatch.setattr(reptile_module.ReptileTrainer, "outer_step", ctrl_c)
    with pytest.raises(TrainingInterrupted):
        make_trainer(tasks, tmp_path / "resumed", **options).fit()
    monkeypatch.setattr(reptile_module.ReptileTrainer, "outer_step", original)
    assert read_checkpoint(tmp_path / "resumed" / "last.ckpt")["training_state"]["reptile"]["outer_step"] == 4

    one_task = {LEVELS[0]: tasks[LEVELS[0]]}
    with pytest.raises(ConfigError, match=r"cannot resume: the training data differ .*\(levels of theory"):
        ReptileTrainer(fresh_potential(), one_task, {}, straight.settings, straight.reptile, tmp_path / "resumed", {}).fit(resume=True)
    resumed = make_trainer(tasks, tmp_path / "resumed", **options)
    resumed.fit(resume=True)
    for (name, a), b in zip(straight.potential.named_parameters(), resumed.potential.parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=name)
