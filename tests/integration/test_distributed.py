"""torchrun with 2 CPU processes (gloo) gives the single-process result for the same
effective batch: Reptile's meta-batch split across processes, then data-parallel fine-tuning.

Tolerance: float64, parameters equal to 1e-9 absolute. Only the order of floating-point sums
differs between the runs (gradients and Reptile updates are summed across processes).
"""

import os
import subprocess
import sys

import torch
import yaml
from synthetic import morse_energy_forces, synthetic_dataset

from metamlip.cli.train import main
from metamlip.data import Configuration, Dataset, write_extxyz
from metamlip.nn.checkpoint import read_checkpoint

CONFIG = {
    "strategy": "reptile",
    "model": {"n_features": 8, "n_sensitivities": 4, "n_interactions": 1, "n_atom_layers": 2,
              "cutoff": 4.0, "soft_min": 0.75, "soft_max": 3.5},
    "training": {"batch_size": 6, "learning_rate": 3e-3, "max_epochs": 2, "dtype": "float64", "progress": False},
    "pretrain": {"batch_size": 4, "dtype": "float64", "progress": False},
    "reptile": {"outer_steps": 3, "inner_steps": 2, "meta_batch_size": 2, "eval_every": 3, "inner_state": "carry"},
    "data": {"level": "c", "n_val": 4, "n_test": 4, "n_train": 9, "source_n_val": 0.25},
}


def test_two_processes_equal_one(tmp_path):
    base = synthetic_dataset(6)
    for level, depth in (("a", 0.25), ("b", 0.35), ("c", 0.3)):
        configs = [Configuration(c.numbers, c.positions, level, morse_energy_forces(c.positions, depth=depth)[0] - 10 * c.n_atoms,
                                 morse_energy_forces(c.positions, depth=depth)[1], molecule=c.molecule) for c in base]
        write_extxyz(Dataset(configs), tmp_path / f"{level}.extxyz")
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({**CONFIG, "data": {**CONFIG["data"], "files": [str(tmp_path / "*.extxyz")]}}))

    assert main([str(config), "--out", str(tmp_path / "single")]) == 0
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               "-m", "metamlip.train", str(config), "--out", str(tmp_path / "two")]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count("data-parallel training on 2 processes") == 1

    for name in ("pretrain/model.ckpt", "last.ckpt"):
        one = read_checkpoint(tmp_path / "single" / name)["model"]["state_dict"]
        two = read_checkpoint(tmp_path / "two" / name)["model"]["state_dict"]
        for key in one:
            torch.testing.assert_close(two[key], one[key], rtol=0, atol=1e-9, msg=f"{name}: {key}")
    state = read_checkpoint(tmp_path / "two" / "last.ckpt")["training_state"]["trainer"]
    assert state["global_step"] == 2 * 2  # 9 configurations, global batch 6 (6 + 3): 2 steps per epoch
