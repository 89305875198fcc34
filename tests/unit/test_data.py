"""Readers, writers, validation, self energies and splits."""

import gzip

import h5py
from ase.units import Hartree
import numpy as np
import pytest
from synthetic import PLANTED_SELF_ENERGIES, synthetic_dataset

from metamlip.data import (
    DataError,
    fit_self_energies,
    read_dataset,
    split_indices,
    validate_configuration,
    write_extxyz,
    write_hdf5,
)


def assert_same(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert x.level == y.level
        np.testing.assert_array_equal(x.numbers, y.numbers)
        np.testing.assert_allclose(x.positions, y.positions, atol=1e-8)
        assert x.energy == pytest.approx(y.energy, abs=1e-8)
        np.testing.assert_allclose(x.forces, y.forces, atol=1e-8)


@pytest.mark.parametrize("name", ["d.extxyz", "d.xyz.gz", "d.h5"])
def test_write_read_round_trip(tmp_path, name):
    data = synthetic_dataset(3)
    path = tmp_path / name
    (write_hdf5 if name.endswith(".h5") else write_extxyz)(data, path)
    back = read_dataset(path)
    assert_same(back, data)
    assert back[0].molecule == "CH3CH2OH"


def test_extxyz_level_from_argument_and_missing_level(tmp_path):
    data = synthetic_dataset(2, names=("HCOOH",))
    path = tmp_path / "a.extxyz"
    write_extxyz(data, path)
    text = path.read_text().replace('level=synthetic/morse', "")
    path.write_text(text)
    assert read_dataset(path, level="HF/STO-3G")[0].level == "hf/sto-3g"
    config = read_dataset(path)[1]
    with pytest.raises(DataError, match=r"a.extxyz:frame 1: no level of theory"):
        validate_configuration(config)


def test_ani_style_hdf5(tmp_path):
    path = tmp_path / "ani.h5"
    rng = np.random.default_rng(0)
    with h5py.File(path, "w") as f:
        g = f.create_group("set1").create_group("C1H4")
        g["species"] = np.array([b"C", b"H", b"H", b"H", b"H"])
        g["coordinates"] = rng.normal(size=(3, 5, 3)) * 2
        g["wb97x_dz.energy"] = np.array([-40.1, -40.2, -40.3])
        g["wb97x_dz.forces"] = np.zeros((3, 5, 3))
        g["ccsd(t)_cbs.energy"] = np.array([-40.0, -40.1, -40.2])
        g.attrs["energy_unit"] = "hartree"
    data = read_dataset(path)
    assert data.level_counts() == {"wb97x_dz": 3, "ccsd(t)_cbs": 3}
    dft = data.select_level("wb97x_dz")
    assert dft[0].numbers.tolist() == [6, 1, 1, 1, 1]
    assert dft[0].energy == pytest.approx(-40.1 * Hartree, rel=1e-12)
    assert dft[0].forces is not None and data.select_level("ccsd(t)_cbs")[0].forces is None


def test_npz_md17_keys(tmp_path):
    path = tmp_path / "md.npz"
    np.savez(path, z=np.array([8, 1, 1]), R=np.zeros((2, 3, 3)), E=np.array([[1.0], [2.0]]),
             F=np.ones((2, 3, 3)), level="pbe/def2-svp")
    with pytest.raises(DataError, match="needs `numbers`"):
        read_dataset(path)
    np.savez(path, Z=np.array([8, 1, 1]), R=np.arange(18.0).reshape(2, 3, 3), E=np.array([[1.0], [2.0]]),
             F=np.ones((2, 3, 3)), level="pbe/def2-svp")
    data = read_dataset(path)
    assert len(data) == 2 and data[1].energy == 2.0 and data[0].level == "pbe/def2-svp"


def test_bad_files_name_the_file(tmp_path):
    with pytest.raises(DataError, match="file not found"):
        read_dataset(tmp_path / "none.extxyz")
    bad = tmp_path / "bad.extxyz"
    bad.write_text("3\nnot a header\nH 0 0\n")
    with pytest.raises(DataError, match="bad.extxyz"):
        read_dataset(bad)
    with pytest.raises(DataError, match="unknown file type"):
        (tmp_path / "x.csv").write_text("1")
        read_dataset(tmp_path / "x.csv")
    gz = tmp_path / "trunc.h5"
    gz.write_bytes(gzip.compress(b"garbage"))
    with pytest.raises(DataError, match="trunc.h5: not a readable HDF5"):
        read_dataset(gz)


@pytest.mark.parametrize(
    "mutate,message",
    [
        (lambda c: setattr(c, "energy", None), "missing energy"),
        (lambda c: setattr(c, "energy", float("nan")), "energy is nan"),
        (lambda c: setattr(c, "forces", np.zeros((2, 3))), r"forces have shape \(2, 3\), expected \(9, 3\)"),
        (lambda c: setattr(c, "positions", np.zeros((8, 3))), r"positions have shape \(8, 3\)"),
        (lambda c: c.positions.__setitem__((4, 1), np.inf), "atom 4 has a NaN or infinite position"),
        (lambda c: c.forces.__setitem__((2, 0), np.nan), "atom 2 has a NaN or infinite force"),
        (lambda c: c.positions.__setitem__(5, c.positions[3]), "atoms 3 and 5 are at the same position"),
        (lambda c: c.numbers.__setitem__(0, 16), "atom 0 is element S, which the model does not support"),
    ],
)
def test_validation_errors(mutate, message):
    config = synthetic_dataset(1, names=("CH3CH2OH",))[0]
    config.numbers = config.numbers.copy()
    mutate(config)
    with pytest.raises(DataError, match=message) as info:
        validate_configuration(config, supported_elements=[1, 6, 7, 8])
    assert "synthetic:CH3CH2OH:0" in str(info.value)


def test_self_energy_fit_recovers_planted_values():
    species = [1, 6, 7, 8]
    # distinct compositions so that the element energies are identifiable
    data = synthetic_dataset(5, names=("CH3CH2OH", "H3CNH2", "HCOOH", "H2O", "CH4", "NH3"), noise=0.0)
    for c in data:  # remove the Morse part: energies are exactly sum_Z n_Z e_Z
        c.energy = sum(PLANTED_SELF_ENERGIES[int(z)] for z in c.numbers)
    fitted = fit_self_energies(data, species)["synthetic/morse"]
    np.testing.assert_allclose(fitted, [PLANTED_SELF_ENERGIES[z] for z in species], atol=1e-8)


def test_splits_are_deterministic_and_nested():
    a = split_indices(100, 10, 0.1, 0.2, seed=3)
    b = split_indices(100, 10, 0.1, 0.2, seed=3)
    c = split_indices(100, 40, 0.1, 0.2, seed=3)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    np.testing.assert_array_equal(a[2], c[2])
    assert set(a[0]) <= set(c[0]) and not set(c[0]) & set(c[2]) and len(a[2]) == 20
    with pytest.raises(DataError, match="--n-train 80 is more than the 70"):
        split_indices(100, 80, 0.1, 0.2, seed=3)
