"""Resumable labelling: extxyz round trip, resume after interruption, SCF failures."""

import json

import ase.io
import numpy as np
import pytest
from ase.build import molecule

from metamlip.qm import calculators
from metamlip.qm.extxyz import write_frames
from metamlip.qm.labelling import failures_path, label_file, parts_dir
from metamlip.qm.levels import parse_level

LEVEL = "hf/sto-3g"


@pytest.fixture
def configs(tmp_path):
    """Four distorted water molecules with config_ids, written to configs.extxyz."""
    rng = np.random.default_rng(0)
    frames = []
    for i in range(4):
        water = molecule("H2O")
        water.positions += rng.normal(scale=0.05, size=water.positions.shape)
        water.info.update(molecule="H2O", config_id=f"H2O-{i:04d}")
        frames.append(water)
    path = tmp_path / "configs.extxyz"
    write_frames(path, frames)
    return path


@pytest.fixture
def counted(monkeypatch):
    """Count calls to calculators.compute; ``calls['fail_at']`` raises KeyboardInterrupt there."""
    calls = {"n": 0, "fail_at": None}
    real = calculators.compute

    def wrapper(atoms, level, **kwargs):
        calls["n"] += 1
        if calls["n"] == calls["fail_at"]:
            raise KeyboardInterrupt
        return real(atoms, level, **kwargs)

    monkeypatch.setattr(calculators, "compute", wrapper)
    return calls


def test_plain_ase_round_trip_gz(configs, tmp_path):
    out = tmp_path / "hf.extxyz.gz"
    label_file(configs, out, LEVEL, chunk_size=2, progress=False)
    frames = ase.io.read(out, ":")
    assert len(frames) == 4 and not parts_dir(out).exists()
    direct = calculators.compute(frames[1], parse_level(LEVEL))
    assert frames[1].get_potential_energy() == pytest.approx(direct.energy, abs=1e-8)
    np.testing.assert_allclose(frames[1].get_forces(), direct.forces, atol=1e-7)
    info = frames[1].info
    assert info["level"] == LEVEL and info["config_id"] == "H2O-0001"
    assert info["molecule"] == "H2O" and info["converged"] is True
    assert info["program"].startswith("pyscf ") and info["scf_cycles"] > 0


@pytest.mark.parametrize("damage", ["none", "drop_out", "drop_parts"])
def test_resume_computes_only_missing_frames(configs, tmp_path, counted, damage):
    reference = tmp_path / "reference.extxyz.gz"
    label_file(configs, reference, LEVEL, chunk_size=2, progress=False)
    out = tmp_path / "out.extxyz.gz"
    counted.update(n=0, fail_at=3)  # interrupted inside the second chunk
    with pytest.raises(KeyboardInterrupt):
        label_file(configs, out, LEVEL, chunk_size=2, progress=False)
    assert len(ase.io.read(out, ":")) == 2
    assert len(list(parts_dir(out).glob("part-*.extxyz"))) == 1
    if damage == "drop_out":
        out.unlink()
    elif damage == "drop_parts":
        for part in parts_dir(out).iterdir():
            part.unlink()
    counted.update(n=0, fail_at=None)
    summary = label_file(configs, out, LEVEL, chunk_size=2, progress=False)
    assert counted["n"] == 2 and summary.n_done_before == 2 and summary.n_labelled == 2
    assert out.read_bytes() == reference.read_bytes()
    assert not parts_dir(out).exists()
    counted.update(n=0)
    label_file(configs, out, LEVEL, chunk_size=2, progress=False)
    assert counted["n"] == 0 and out.read_bytes() == reference.read_bytes()


def test_unconverged_scf_is_recorded_not_labelled(configs, tmp_path, monkeypatch):
    def never_converged(mf, dm0=None):
        mf.kernel(dm0=dm0)
        return False

    monkeypatch.setattr(calculators, "_kernel", never_converged)
    out = tmp_path / "out.extxyz"
    summary = label_file(configs, out, LEVEL, chunk_size=2, progress=False)
    assert summary.n_failed == 4 and summary.n_labelled == 0 and not out.exists()
    records = [json.loads(line) for line in failures_path(out).read_text().splitlines()]
    assert [r["config_id"] for r in records] == [f"H2O-{i:04d}" for i in range(4)]
    assert all(r["level"] == LEVEL and "SCF not converged" in r["reason"] for r in records)
    again = label_file(configs, out, LEVEL, chunk_size=2, progress=False)
    assert again.n_failed_before == 4 and again.n_labelled == again.n_failed == 0


def test_retry_with_level_shift_gives_the_same_label(configs, tmp_path, monkeypatch):
    plain = tmp_path / "plain.extxyz"
    label_file(configs, plain, LEVEL, progress=False)
    real = calculators._kernel

    def diis_fails(mf, dm0=None):  # first attempts start without a density
        return real(mf, dm0) and dm0 is not None

    monkeypatch.setattr(calculators, "_kernel", diis_fails)
    retried = tmp_path / "retried.extxyz"
    label_file(configs, retried, LEVEL, progress=False)
    for a, b in zip(ase.io.read(plain, ":"), ase.io.read(retried, ":"), strict=True):
        assert (a.info["scf_strategy"], b.info["scf_strategy"]) == ("diis", "level_shift")
        assert b.get_potential_energy() == pytest.approx(a.get_potential_energy(), abs=1e-6)
        np.testing.assert_allclose(b.get_forces(), a.get_forces(), atol=1e-4)


def test_output_of_another_level_is_refused(configs, tmp_path):
    out = tmp_path / "out.extxyz"
    label_file(configs, out, "gfn2-xtb", progress=False)
    with pytest.raises(ValueError, match="has level 'gfn2-xtb', not 'hf/sto-3g'"):
        label_file(configs, out, LEVEL, progress=False)


def test_density_fit_is_recorded_and_never_mixed_in_one_output(configs, tmp_path):
    out = tmp_path / "fitted.extxyz"
    label_file(configs, out, "hf/6-31g*", chunk_size=2, progress=False, density_fit=True)
    frames = ase.io.read(out, ":")
    assert [a.info["density_fit"] for a in frames] == ["cc-pvdz-jkfit"] * 4
    with pytest.raises(ValueError, match="labelled with density fitting \\(cc-pvdz-jkfit\\), "
                                         "this run uses exact integrals"):
        label_file(configs, out, "hf/6-31g*", progress=False)
    again = label_file(configs, out, "hf/6-31g*", progress=False, density_fit=True)
    assert again.n_done_before == 4 and again.n_labelled == 0


def test_thread_budget_limits_blas_pools_loaded_before_it(tmp_path):
    """NumPy/SciPy imported first start OpenBLAS pools of their own size; the budget must
    still hold for them (oversubscribed pools made the campaign 3x slower per frame)."""
    import os
    import subprocess
    import sys

    script = ("import json, numpy, scipy.linalg\n"
              "from threadpoolctl import threadpool_info\n"
              "before = [p['num_threads'] for p in threadpool_info() if p['user_api'] == 'blas']\n"
              "from metamlip.qm.labelling import set_thread_budget\n"
              "set_thread_budget(1)\n"
              "after = [p['num_threads'] for p in threadpool_info()]\n"
              "print(json.dumps([before, after]))\n")
    env = {k: v for k, v in os.environ.items() if not k.endswith("_NUM_THREADS")}
    env["OPENBLAS_NUM_THREADS"] = "2"
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                         text=True, check=True, timeout=120)
    before, after = json.loads(out.stdout.strip().splitlines()[-1])
    assert before and max(before) == 2  # the situation being guarded against
    assert after and set(after) == {1}
