"""Labelling campaigns: manifests, pools, shards, resumption, failures, status, merge, cards."""

import json

import numpy as np
import pytest

from metamlip.qm import calculators, campaign
from metamlip.qm.cards import merge
from metamlip.qm.labelling import label_chunk
from metamlip.qm.library import load_library
from metamlip.qm.manifest import load_manifest, parse_shard
from metamlip.qm.pool import START_FMAX, PoolSettings, sample_pool

TINY = """
name: tiny
seed: 1
sampling: {conformers: 2, md_temperatures: [300, 600], md_frames: 2, stride: 2,
           equilibration: 4, nm_temperatures: [300], nm_frames: 2}
cluster_sampling: {conformers: 1, md_temperatures: [200], md_frames: 3, stride: 2,
                   equilibration: 4, nm_frames: 0}
anchor: [H2O]
datasets:
  - {level: gfn2-xtb, systems: [NH3, water-dimer], frames: 5, chunk: 3}
  - {level: gfn1-xtb, systems: [CH4], frames: 4, chunk: 2}
"""


@pytest.fixture
def manifest_path(tmp_path):
    path = tmp_path / "manifest.yaml"
    path.write_text(TINY)
    return path


def _chunks(root):
    return {p.relative_to(root).as_posix(): campaign.read_chunk(p)
            for p in sorted((root / "labels").glob("*/*.extxyz.gz"))}


def test_units_and_shards(manifest_path):
    manifest = load_manifest(manifest_path)
    names = [u.name for u in manifest.units()]
    assert names[:4] == ["gfn2-xtb/H2O.000", "gfn2-xtb/H2O.001", "gfn2-xtb/NH3.000",
                         "gfn2-xtb/NH3.001"]
    assert len(names) == 3 * 2 + 2 * 2
    shards = [{u.name for u in manifest.shard_units(k, 3)} for k in (1, 2, 3)]
    assert set.union(*shards) == set(names) and sum(map(len, shards)) == len(names)
    assert all(any(n.startswith("gfn1-xtb") for n in s) for s in shards[:2])  # every level spread
    assert parse_shard("2/8") == (2, 8)
    for bad in ("0/2", "3/2", "2", "a/b"):
        with pytest.raises(ValueError, match="expected K/N"):
            parse_shard(bad)


@pytest.mark.parametrize("edit, message", [
    (("frames: 5", "frames: -1"), "datasets\\[0\\].frames: expected a positive integer"),
    (("[NH3, water-dimer]", "[NH3, kryptonite]"), "'kryptonite' is not a molecule"),
    (("level: gfn1-xtb", "level: hf/nobasis"), "unknown basis 'nobasis'"),
    (("md_frames: 2", "md_frame: 2"), "sampling: unknown key\\(s\\) md_frame"),
    (("level: gfn1-xtb", "level: gfn2-xtb"), "a level occurs twice"),
    (("chunk: 2}", "chunk: 2, density_fit: true}"),
     "datasets\\[1\\].density_fit: level 'gfn1-xtb': density fitting is supported for HF"),
    (("chunk: 2}", "chunk: 2, density_fit: yes please}"),
     "datasets\\[1\\].density_fit: expected true or false"),
])
def test_manifest_errors_name_the_key(manifest_path, edit, message):
    manifest_path.write_text(TINY.replace(*edit))
    with pytest.raises(ValueError, match=message):
        load_manifest(manifest_path)


def test_pool_is_deterministic_and_mixed():
    library = load_library()
    settings = PoolSettings(conformers=2, md_temperatures=(300.0,), md_frames=3, stride=2,
                            equilibration=4, nm_temperatures=(300.0,), nm_frames=2, seed=4)
    first, problems = sample_pool("CH3CH2OH", library, settings)
    second, _ = sample_pool("CH3CH2OH", library, settings)
    assert not problems and len(first) == 2 + 3 + 2
    assert [f.info["config_id"] for f in first] == [f.info["config_id"] for f in second]
    for a, b in zip(first, second, strict=True):
        np.testing.assert_allclose(a.positions, b.positions, atol=1e-7)
    assert {f.info["sampling"] for f in first} == {"conformer", "md", "nm"}
    assert len({f.info["config_id"] for f in first}) == len(first)

    relaxed, _ = label_chunk([f for f in first if f.info["sampling"] == "conformer"], "gfn2-xtb")
    assert len(relaxed) == 2  # conformers are GFN2-xTB relaxed (MD starts there)
    assert all(np.linalg.norm(f.get_forces(), axis=1).max() < START_FMAX for f in relaxed)


def test_run_resume_failures_status_merge(manifest_path, tmp_path, monkeypatch, capsys):
    manifest = load_manifest(manifest_path)
    reference_dir = tmp_path / "reference"
    reference_dir.mkdir()
    (reference_dir / "manifest.yaml").write_text(TINY)
    reference = load_manifest(reference_dir / "manifest.yaml")
    assert campaign.run(reference, progress=False) == (10, 22, 0)

    real = calculators.compute
    calls = {"n": 0}

    def flaky(atoms, level, **kwargs):
        """Frame 4 (unit H2O.001) fails, frame 8 (unit NH3.000) is killed."""
        calls["n"] += 1
        if calls["n"] == 8:
            raise KeyboardInterrupt
        if calls["n"] == 4:
            raise calculators.LabelError("SCF not converged (test)")
        return real(atoms, level, **kwargs)

    monkeypatch.setattr(calculators, "compute", flaky)
    with pytest.raises(KeyboardInterrupt):
        campaign.run(manifest, progress=False)
    monkeypatch.setattr(calculators, "compute", real)
    n_units, n_labelled, n_failed = campaign.run(manifest, progress=False)
    assert n_units < 10 and n_failed == 0
    failures = [json.loads(line) for line in
                (manifest.root / "labels/gfn2-xtb/failures.jsonl").read_text().splitlines()]
    assert len(failures) == 1 and failures[0]["reason"] == "SCF not converged (test)"

    ours, theirs = _chunks(manifest.root), _chunks(reference.root)
    assert ours.keys() == theirs.keys()
    failed_id = failures[0]["config_id"]
    for name, frames in theirs.items():
        kept = [f for f in frames  # the frame failed at gfn2-xtb only
                if f.info["config_id"] != failed_id or name.startswith("labels/gfn1-xtb")]
        assert [f.info["config_id"] for f in ours[name]] == [f.info["config_id"] for f in kept]
        for a, b in zip(ours[name], kept, strict=True):
            np.testing.assert_allclose(a.get_forces(), b.get_forces(), atol=1e-6)

    rows = {r.spec.level.name: r for r in campaign.status(manifest)}
    assert (rows["gfn2-xtb"].frames, rows["gfn2-xtb"].failed) == (13, 1)
    assert rows["gfn2-xtb"].frames_target == 15  # water-dimer's pool has only 4 frames
    assert (rows["gfn1-xtb"].frames, rows["gfn1-xtb"].units_done) == (8, 4)
    paths = merge(manifest, tmp_path / "merged")
    frames = campaign.read_chunk(paths[1])
    assert [f.info["level"] for f in frames] == ["gfn1-xtb"] * 8
    card = (tmp_path / "merged" / "gfn2-xtb.md").read_text()
    assert "13 labelled of 15 asked" in card and "1 failed" in card
    assert "| water-dimer | 4 |" in card


def test_shards_run_disjoint_work_seen_by_status(manifest_path):
    manifest = load_manifest(manifest_path)
    with pytest.raises(ValueError, match="no dataset at level\\(s\\) hf/sto-3g"):
        campaign.run(manifest, levels=["HF/STO-3G"], progress=False)
    only = campaign.run(manifest, shard=(1, 2), levels=["GFN1-xTB"], progress=False)
    assert only[0] == 2 and [r.units_done for r in campaign.status(manifest)] == [0, 2]
    first = campaign.run(manifest, shard=(1, 2), progress=False)
    rows = campaign.status(manifest)
    assert sum(r.units_done for r in rows) == first[0] + 2 == 5
    second = campaign.run(manifest, shard=(2, 2), progress=False)
    assert second[0] == 5 and campaign.run(manifest, shard=(1, 1), progress=False)[0] == 0
    assert sum(r.units_done for r in campaign.status(manifest)) == 10
    logs = sorted(p.name for p in (manifest.root / "labels/gfn2-xtb").glob("log*.jsonl"))
    assert logs == ["log.1-of-2.jsonl", "log.2-of-2.jsonl"]


def test_resume_after_sigkill(manifest_path, tmp_path):
    import subprocess
    import sys
    import time

    command = [sys.executable, "-m", "metamlip.cli.data", "campaign", "run", str(manifest_path),
               "-q"]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    labels = manifest_path.parent / "labels"
    deadline = time.monotonic() + 120
    while not list(labels.glob("*/*.extxyz.gz")) and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.kill()
    proc.wait()
    done_before = len(list(labels.glob("*/*.extxyz.gz")))
    assert 1 <= done_before < 10
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    manifest = load_manifest(manifest_path)
    rows = campaign.status(manifest)
    assert [r.units_done for r in rows] == [6, 4] and [r.frames for r in rows] == [14, 8]
    for path in labels.glob("*/*.extxyz.gz"):
        frames = campaign.read_chunk(path)
        assert all(f.info["level"] == path.parent.name for f in frames)


def test_density_fit_reaches_the_labels(manifest_path, monkeypatch):
    from ase.build import molecule

    manifest_path.write_text(TINY.replace(
        "  - {level: gfn1-xtb, systems: [CH4], frames: 4, chunk: 2}",
        "  - {level: hf/6-31g*, systems: [], frames: 1, density_fit: true}"))
    manifest = load_manifest(manifest_path)
    assert [spec.density_fit for spec in manifest.datasets] == [False, True]
    water = molecule("H2O")
    water.info.update(molecule="H2O", config_id="H2O-0000")
    monkeypatch.setattr(campaign, "load_pool", lambda *args: [water.copy()])
    unit = next(u for u in manifest.units() if u.dataset.density_fit)
    assert campaign.run_unit(manifest, unit, load_library()) == (1, 0)
    (frame,) = campaign.read_chunk(campaign.chunk_path(manifest, unit))
    assert frame.info["density_fit"] == "cc-pvdz-jkfit" and frame.info["level"] == "hf/6-31g*"
