"""The bundled dataset (examples/data): consistent files, and labels that can be recomputed."""

from pathlib import Path

import ase.io
import numpy as np
import pytest

from metamlip.qm.calculators import compute
from metamlip.qm.levels import parse_level

DATA = Path(__file__).resolve().parents[2] / "examples" / "data"
LEVEL_FILES = sorted(DATA.glob("*.extxyz.gz"))


def _frames(path: Path) -> list:
    if not path.exists():
        pytest.skip(f"{path} not generated yet (examples/data/generate.sh)")
    return ase.io.read(path, ":")


def _check_recomputed(path: Path, n_frames: int, seed: int) -> None:
    frames = _frames(path)
    rng = np.random.default_rng(seed)
    for index in rng.choice(len(frames), size=min(n_frames, len(frames)), replace=False):
        stored = frames[index]
        label = compute(stored, parse_level(stored.info["level"]))
        where = f"{path.name} frame {stored.info['config_id']}"
        assert abs(label.energy - stored.get_potential_energy()) / len(stored) < 1e-6, where
        np.testing.assert_allclose(label.forces, stored.get_forces(), atol=1e-4, err_msg=where)


@pytest.mark.parametrize("path", LEVEL_FILES, ids=lambda p: p.name)
def test_level_files_label_the_shared_configurations(path):
    configs = {a.info["config_id"]: a for a in _frames(DATA / "configs.extxyz")}
    frames = _frames(path)
    levels = {a.info["level"] for a in frames}
    assert len(levels) == 1 and parse_level(levels.pop()).file_stem + ".extxyz.gz" == path.name
    for atoms in frames:
        source = configs[atoms.info["config_id"]]
        assert atoms.info["molecule"] == source.info["molecule"] and atoms.info["converged"]
        np.testing.assert_array_equal(atoms.positions, source.positions)


@pytest.mark.parametrize("stem", ["gfn2-xtb", "hf_sto-3g"])
def test_two_random_frames_recomputed(stem):
    _check_recomputed(DATA / f"{stem}.extxyz.gz", n_frames=2, seed=0)


@pytest.mark.slow
@pytest.mark.parametrize("path", LEVEL_FILES, ids=lambda p: p.name)
def test_one_random_frame_recomputed_at_every_level(path):
    _check_recomputed(path, n_frames=1, seed=1)
