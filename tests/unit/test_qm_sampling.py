"""xTB Langevin sampling: reproducible with a seed, documented frame info."""

import numpy as np
import pytest

from metamlip.qm.sampling import SamplingSettings, load_molecule, sample

TINY = {"temperatures": (300.0, 900.0), "n_frames": 5, "stride": 2, "equilibration": 5}


def test_same_seed_same_frames():
    first = sample(["H2O"], SamplingSettings(seed=7, **TINY))
    second = sample(["H2O"], SamplingSettings(seed=7, **TINY))
    other = sample(["H2O"], SamplingSettings(seed=8, **TINY))
    assert len(first) == 10
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a.positions, b.positions)
    assert not np.allclose(first[-1].positions, other[-1].positions)


def test_frame_info():
    frames = sample(["H2O"], SamplingSettings(seed=3, **TINY))
    assert frames[6].info == {"molecule": "H2O", "temperature": 900.0, "seed": 3,
                              "config_id": "H2O-900K-s3-0001"}
    assert len({f.info["config_id"] for f in frames}) == len(frames)
    assert frames[0].calc is None and not frames[0].constraints


def test_duplicate_molecule_rejected():
    with pytest.raises(ValueError, match="duplicate config_id"):
        sample(["H2O", "H2O"], SamplingSettings(**TINY))


def test_unknown_molecule_named():
    with pytest.raises(ValueError, match="molecule 'NotAMolecule'"):
        load_molecule("NotAMolecule")


def test_molecule_from_file_named_by_stem(tmp_path):
    from ase.build import molecule
    from ase.io import write

    write(tmp_path / "water.xyz", molecule("H2O"))
    name, atoms = load_molecule(str(tmp_path / "water.xyz"))
    assert name == "water" and atoms.get_chemical_formula() == "H2O"


def test_normal_modes_of_water_and_co2():
    from ase.build import molecule

    from metamlip.qm import normal_modes

    for name, n_modes in (("H2O", 3), ("CO2", 4)):
        minimum = normal_modes.relax(molecule(name))
        modes, constants = normal_modes.vibrational_modes(minimum)
        assert modes.shape == (n_modes, len(minimum), 3) and (constants > 0).all()
        np.testing.assert_allclose(np.linalg.norm(modes.reshape(n_modes, -1), axis=1), 1.0)


def test_normal_mode_sampling_reproducible():
    settings = SamplingSettings(method="normal-modes", temperatures=(300.0, 900.0), n_frames=4,
                                seed=2)
    first, second = sample(["H2O"], settings), sample(["H2O"], settings)
    assert [f.info["config_id"] for f in first[:2]] == ["H2O-300K-s2-nm0000", "H2O-300K-s2-nm0001"]
    for a, b in zip(first, second, strict=True):  # tblite sums in parallel: not bitwise
        np.testing.assert_allclose(a.positions, b.positions, atol=1e-7)
    spread = [np.std([f.positions for f in first[i:i + 4]], axis=0).mean() for i in (0, 4)]
    assert 0 < spread[0] < spread[1]  # hotter, larger displacements
