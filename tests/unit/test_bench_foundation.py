"""bench/foundation_data.py and bench/foundation.py: held-out molecules and level really held
out at every level, fixed target split, a pre-training and a fine-tune that finish and report,
and shipping a model with its card."""

import csv
import importlib.util
import json
import shutil
import sys
from pathlib import Path

import ase.build
import ase.io
import numpy as np
import pytest

from metamlip.nn.checkpoint import load_potential
from metamlip.qm.library import load_library

ROOT = Path(__file__).resolve().parents[2]


def _load(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / "bench" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def fd():
    sys.path.insert(0, str(ROOT / "bench"))
    return _load("foundation_data")


@pytest.fixture(scope="module")
def foundation(fd):
    return _load("foundation")


def test_heldout_molecules_are_fixed_mp2_molecules_outside_the_anchor(fd):
    import yaml

    manifest = yaml.safe_load((fd.FOUNDATION / "manifest.yaml").read_text())
    mp2 = next(d for d in manifest["datasets"] if d["level"] == fd.TARGET_LEVEL)["systems"]
    held = fd.heldout_molecules()
    assert held == fd.heldout_molecules() and len(held) == fd.N_HELDOUT >= 20
    library = load_library()
    assert all(m in mp2 and m not in manifest["anchor"] and m in library.molecules for m in held)
    assert held[:3] == ["H2CCHCN", "2-butyne", "n-methylacetamide"]  # manifest order
    banned = fd.banned_systems(held)
    assert {"urea-dimer", "urea-water-2", "n-methylacetamide-dimer", "acetic-acid-dimer"} <= banned
    assert all(set(library.clusters[c].members) & set(held) for c in banned - set(held))


def _write(path, frames, molecule, level):
    path.parent.mkdir(parents=True, exist_ok=True)
    for k, atoms in enumerate(frames):
        atoms.info.update(molecule=molecule, level=level, config_id=f"{molecule}-{k}")
    ase.io.write(path, frames, format="extxyz")


@pytest.fixture(scope="module")
def tiny(fd, tmp_path_factory):
    """A foundation tree: held-out urea and cluster urea-dimer at gfn2-xtb, CH4 and H2O at two
    levels, urea (3 chunks) and CH4 at mp2; prepared into WORK."""
    root = tmp_path_factory.mktemp("foundation")
    shutil.copy(fd.FOUNDATION / "manifest.yaml", root / "manifest.yaml")
    frames = ase.io.read(ROOT / "examples" / "data" / "gfn2-xtb.extxyz.gz", index=":60")
    labels = root / "labels"
    _write(labels / "gfn2-xtb" / "urea.000.extxyz.gz", frames[0:5], "urea", "gfn2-xtb")
    _write(labels / "gfn2-xtb" / "urea-dimer.000.extxyz.gz", frames[5:8], "urea-dimer", "gfn2-xtb")
    _write(labels / "gfn2-xtb" / "CH4.000.extxyz.gz", frames[8:38], "CH4", "gfn2-xtb")
    _write(labels / "hf_sto-3g" / "H2O.000.extxyz.gz", frames[38:50], "H2O", "hf/sto-3g")
    # mp2: chunk files out of order on purpose (002 is written first)
    _write(labels / "mp2_cc-pvdz" / "urea.002.extxyz.gz", frames[58:60], "urea", "mp2/cc-pvdz")
    _write(labels / "mp2_cc-pvdz" / "urea.000.extxyz.gz", frames[50:54], "urea", "mp2/cc-pvdz")
    _write(labels / "mp2_cc-pvdz" / "urea.001.extxyz.gz", frames[54:58], "urea", "mp2/cc-pvdz")
    _write(labels / "mp2_cc-pvdz" / "CH4.000.extxyz.gz", frames[8:12], "CH4", "mp2/cc-pvdz")
    work = root / "work"
    info = fd.prepare(work, root, bundled=None)
    return root, work, info, frames


def test_prepare_holds_out_molecules_and_level(fd, tiny):
    root, work, info, frames = tiny
    prepared = fd.load_sources(work)
    assert set(prepared.sources) == {"gfn2-xtb", "hf/sto-3g"}  # no mp2/cc-pvdz
    for train, val in prepared.sources.values():
        assert not {c.molecule for c in train} & {"urea", "urea-dimer"}
        assert not {c.molecule for c in val} & {"urea", "urea-dimer"}
    assert info["sources"]["gfn2-xtb"]["removed_heldout_frames"] == 8
    assert info["sources"]["gfn2-xtb"]["train"] + info["sources"]["gfn2-xtb"]["val"] == 30
    assert info["heldout_with_labels"] == ["urea"] and info["transfer_source"] == "gfn2-xtb"
    # gfn2-xtb labels the CH4 geometries that mp2 labels too: a force RMSD on 4 shared geometries
    assert info["force_rmsd_to_target_meV_per_A"]["gfn2-xtb"]["shared_geometries"] == 4
    target = fd.load_target(work)
    positions = [f.positions.tolist() for f in frames]
    index = [positions.index(c.positions.tolist()) for c in [*target.test, *target.val, *target.pool]]
    assert index == list(range(50, 60))  # chunk 000 = test, then validation, then the pool
    assert (len(target.test), len(target.val), len(target.pool)) == (4, 1, 5)
    assert json.loads((work / "prepared.json").read_text())["n_pool"] == 5


def test_source_split_is_fixed_and_disjoint(fd, tiny):
    *_, frames = tiny
    from metamlip.data import read_dataset

    configs = list(read_dataset(ROOT / "examples" / "data" / "hf_sto-3g.extxyz.gz"))
    train, val = fd.split_source(configs, "hf/sto-3g")
    again = fd.split_source(configs, "hf/sto-3g")
    assert len(val) == 60 and len(train) == 540 and [c.source for c in val] == [c.source for c in again[1]]
    assert not {c.source for c in train} & {c.source for c in val}
    assert len(fd.split_source(configs * 10, "x")[1]) == 200  # at most 200
    names = [Path(f).name for f in fd.bundled_files(fd.BUNDLED)]
    assert names and not [n for n in names if n.startswith("mp2") or "configs" in n]


def test_scan_torsion_is_the_backbone_torsion(foundation, tmp_path):
    scans = _load("foundation_scan")
    for molecule in scans.SCANS:
        atoms = ase.io.read(scans.first_conformer(molecule, tmp_path))
        a, b, c, d = scans.backbone_torsion(atoms)
        assert all(atoms.numbers[k] > 1 for k in (a, b, c, d)) and {b, c} < set(range(len(atoms)))
    with pytest.raises(scans.ScanError, match="0 backbone torsions"):
        scans.backbone_torsion(ase.build.molecule("C6H6"))  # ring bonds only


def test_step_plan_ends_the_schedule_at_the_deadline(foundation):
    plan = foundation.StepPlan(deadline=1000.0, margin=10.0)
    assert plan.total(100, now=100.0) is None  # one point: no rate yet
    assert plan.total(200, now=200.0) == 200 + 790  # 1 s per step, 790 s left before the margin
    assert plan.total(400, now=300.0) == 400 + 2 * 690  # faster now: the recent half counts
    assert plan.total(401, now=995.0) == 402  # past the margin: stop at the next step
    assert foundation.StepPlan(1000.0, 10.0, adaptive=False).total(5, now=1.0) is None


def test_recommendation_ships_only_a_start_better_at_every_size(foundation):
    rows = [
        {"start": "scratch", "force_ratio_to_hcno": 1.5},
        {"start": "joint", "force_ratio_to_hcno": 0.8},
        {"start": "joint", "force_ratio_to_hcno": 1.01},
        {"start": "multihead", "force_ratio_to_hcno": 0.9},
        {"start": "multihead", "force_ratio_to_hcno": 0.95},
    ]
    assert "`multihead`" in foundation.recommendation(rows) and "ship it" in foundation.recommendation(rows)
    assert "keep `hipnn-meta-hcno`" in foundation.recommendation(rows[:3])
    assert "nothing to compare" in foundation.recommendation([{"start": "joint", "force_ratio_to_hcno": ""}])


def test_resumable_pretrain_continues_exactly(foundation, tiny, tmp_path, monkeypatch):
    """--resume: a run stopped at step 2 (SIGINT, as the deadline sends) keeps last.ckpt and
    reports nothing; the same call finishes it with the weights of an uninterrupted run."""
    import os
    import signal

    import torch

    root, work, info, frames = tiny
    for name in ("stopped", "straight"):
        (tmp_path / name).mkdir()
        for path in work.glob("*.*"):
            shutil.copy(path, tmp_path / name / path.name)
    with pytest.raises(ValueError, match="needs --max-steps"):
        foundation.pretrain(tmp_path / "stopped", "multihead", 120, "cpu", resume=True)
    real_step = foundation.PlannedTrainer.train_step

    def step_then_stop(self, indices):
        loss = real_step(self, indices)
        if self.state.global_step == 1:  # the step being taken is the second
            os.kill(os.getpid(), signal.SIGINT)
        return loss

    monkeypatch.setattr(foundation.PlannedTrainer, "train_step", step_then_stop)
    stopped = foundation.pretrain(tmp_path / "stopped", "multihead", 120, "cpu", max_steps=5, resume=True)
    out = tmp_path / "stopped" / "pretrain" / "multihead"
    assert stopped == {"variant": "multihead", "gradient_steps": 2, "finished": False}
    assert (out / "last.ckpt").exists() and not (out / "metrics.json").exists()
    taken = []
    monkeypatch.setattr(foundation.PlannedTrainer, "train_step", lambda self, indices: taken.append(1) or real_step(self, indices))
    resumed = foundation.pretrain(tmp_path / "stopped", "multihead", 120, "cpu", max_steps=5, resume=True)
    assert len(taken) == 3  # continued from step 2, not started again
    straight = foundation.pretrain(tmp_path / "straight", "multihead", 120, "cpu", max_steps=5, resume=True)
    assert resumed["gradient_steps"] == straight["gradient_steps"] == 5
    assert resumed["segments"] == 2 and straight["segments"] == 1 and not (out / "last.ckpt").exists()
    weights = [torch.load(tmp_path / name / "pretrain" / "multihead" / "model.ckpt", weights_only=False)["model"]["state_dict"]
               for name in ("stopped", "straight")]
    assert weights[0].keys() == weights[1].keys()
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])


def test_killed_reptile_pretrain_keeps_its_last_checkpoint(foundation, tiny, tmp_path, monkeypatch):
    """A Reptile pre-training killed without a signal handler running (a session stopped) keeps
    last.ckpt of its last epoch's worth of outer steps, so `--resume` has something to continue."""
    import torch

    root, work, info, frames = tiny
    for path in work.glob("*.*"):
        shutil.copy(path, tmp_path / path.name)
    real_outer = foundation.PlannedReptile.outer_step

    def outer_then_die(self):
        if self.state.outer_step == 1:
            raise RuntimeError("killed")
        return real_outer(self)

    monkeypatch.setattr(foundation.PlannedReptile, "outer_step", outer_then_die)
    with pytest.raises(RuntimeError, match="killed"):
        foundation.pretrain(tmp_path, "reptile-tuned", 120, "cpu", max_steps=256, resume=True)  # 2 outer steps of k = 128
    last = torch.load(tmp_path / "pretrain" / "reptile-tuned" / "last.ckpt", weights_only=False)
    assert last["training_state"]["reptile"]["outer_step"] == 1


def test_pretrain_finetune_report_ship(foundation, tiny, tmp_path, monkeypatch):
    root, work, info, frames = tiny
    metrics = foundation.pretrain(work, "multihead", budget_s=120, device="cpu", max_steps=3)
    assert metrics["gradient_steps"] == 3 and not metrics["truncated"]
    assert set(metrics["validation"]) == {"gfn2-xtb", "hf/sto-3g", "all"}
    model = load_potential(work / "pretrain" / "multihead" / "model.ckpt")
    assert model.hipnn.n_heads == 2 and model.repulsion is not None
    reptile = foundation.pretrain(work, "reptile-k8", budget_s=120, device="cpu", max_steps=16)
    assert reptile["gradient_steps"] == 16 and (work / "pretrain" / "reptile-k8" / "model.ckpt").exists()
    rows = {}
    for start in ("scratch", "multihead"):
        rows[start] = foundation.finetune(work, start, 3, 0, overrides={"finetune": {"max_steps": 2}, "training": {"max_steps": 2}})
        assert rows[start]["n_test"] == 4 and rows[start]["steps"] == 2 and rows[start]["force_rmse_meV_per_A"] > 0
    assert foundation.finetune(work, "scratch", 3, 0) == rows["scratch"]  # finished: read back, not trained again
    scans = _load("foundation_scan")
    monkeypatch.setattr("metamlip.meta.scan.reference_energies", lambda geometries, level: np.array(
        [np.cos(np.radians(g.get_dihedral(0, 1, 2, 3))) + g.get_distance(0, 4) ** 2 + g.get_angle(1, 0, 4) ** 2 / 1e4 for g in geometries]))
    assert scans.main(["--work", str(work), "--results", str(tmp_path / "scan"), "--molecules", "butadiene",
                       "--starts", "scratch", "multihead", "--n", "3", "--points", "7"]) == 0
    with open(tmp_path / "scan" / "foundation_scan.csv", newline="") as handle:
        scanned = list(csv.DictReader(handle))
    assert [(r["start"], r["scan"]) for r in scanned] == [(s, k) for s in ("scratch", "multihead") for k in ("bond", "angle", "torsion")]
    assert all(float(r["rmse_meV"]) > 0 for r in scanned) and (tmp_path / "scan" / "scan" / "butadiene" / "scan.png").exists()
    assert "| multihead |" in (tmp_path / "scan" / "foundation_scan.md").read_text()
    with pytest.raises(SystemExit):  # no model fine-tuned on 50 frames
        scans.main(["--work", str(work), "--results", str(tmp_path / "scan"), "--molecules", "butadiene", "--n", "50"])
    results = tmp_path / "results"
    foundation.report(work, results)
    with open(results / "foundation.csv", newline="") as handle:
        table = list(csv.DictReader(handle))
    assert [r["start"] for r in table] == ["scratch", "multihead"] and float(table[0]["force_ratio_to_scratch"]) == 1.0
    assert (results / "foundation.png").exists() and (results / "foundation_pretrain.csv").exists()
    with open(results / "foundation_molecules.csv", newline="") as handle:
        per_molecule = list(csv.DictReader(handle))
    assert [(r["start"], r["molecule"]) for r in per_molecule] == [("scratch", "urea"), ("multihead", "urea")]
    assert float(per_molecule[1]["force_rmse_meV_per_A"]) == pytest.approx(rows["multihead"]["force_rmse_meV_per_A"], rel=1e-3)
    package = tmp_path / "pretrained"
    package.mkdir()
    init = ROOT / "python" / "metamlip" / "pretrained" / "__init__.py"
    shutil.copy(init, package / "__init__.py")
    monkeypatch.setattr(foundation, "PRETRAINED_DIR", package)
    shipped = foundation.ship(work, results, "multihead", make_default=True)
    card = (package / "hipnn-meta-chno.md").read_text()
    assert "| `hf/sto-3g` |" in card and "| **hipnn-meta-chno** (this model) | " in card and "`urea`" in card
    assert "| scratch | " in card and "| this model / HIP-NN from scratch | " in card
    assert "--init pretrained:default" in card and "Energy-surface scans" not in card  # the scans went to another folder
    assert 'ALIASES = {DEFAULT: "hipnn-meta-chno"}' in (package / "__init__.py").read_text()
    assert load_potential(shipped).levels == model.levels
    archive = foundation.pack(work, results, tmp_path / "out")
    assert archive.stat().st_size < 16e6
    with pytest.raises(FileNotFoundError, match="no pre-trained model of variant 'joint'"):
        foundation.ship(work, results, "joint")
