"""xTB Langevin sampling: reproducible with a seed, documented frame info."""

import numpy as np
import pytest

from metamlip.qm.sampling import MDSettings, load_molecule, sample

TINY = {"temperatures": (300.0, 900.0), "n_frames": 5, "stride": 2, "equilibration": 5}


def test_same_seed_same_frames():
    first = sample(["H2O"], MDSettings(seed=7, **TINY))
    second = sample(["H2O"], MDSettings(seed=7, **TINY))
    other = sample(["H2O"], MDSettings(seed=8, **TINY))
    assert len(first) == 10
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a.positions, b.positions)
    assert not np.allclose(first[-1].positions, other[-1].positions)


def test_frame_info():
    frames = sample(["H2O"], MDSettings(seed=3, **TINY))
    assert frames[6].info == {"molecule": "H2O", "temperature": 900.0, "seed": 3,
                              "config_id": "H2O-900K-s3-0001"}
    assert len({f.info["config_id"] for f in frames}) == len(frames)
    assert frames[0].calc is None and not frames[0].constraints


def test_duplicate_molecule_rejected():
    with pytest.raises(ValueError, match="duplicate config_id"):
        sample(["H2O", "H2O"], MDSettings(**TINY))


def test_unknown_molecule_named():
    with pytest.raises(ValueError, match="molecule 'NotAMolecule'"):
        load_molecule("NotAMolecule")


def test_molecule_from_file_named_by_stem(tmp_path):
    from ase.build import molecule
    from ase.io import write

    write(tmp_path / "water.xyz", molecule("H2O"))
    name, atoms = load_molecule(str(tmp_path / "water.xyz"))
    assert name == "water" and atoms.get_chemical_formula() == "H2O"
