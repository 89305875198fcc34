"""metamlip-data end to end: sample -> label -> info, and error reporting."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import ase.io
import numpy as np
import pytest

from metamlip.cli.data import main
from metamlip.qm.extxyz import write_frames


def test_sample_label_info(tmp_path, capsys):
    configs = tmp_path / "configs.extxyz"
    assert main(["sample", "H2O", "NH3", "--temperatures", "300", "--n-frames", "3",
                 "--stride", "2", "--equilibration", "4", "--seed", "5", "-q",
                 "-o", str(configs)]) == 0
    labelled = tmp_path / "gfn2-xtb.extxyz.gz"
    assert main(["label", str(configs), "--level", "GFN2-xTB", "-o", str(labelled),
                 "--chunk-size", "2", "-q"]) == 0
    frames = ase.io.read(labelled, ":")
    assert [f.info["config_id"] for f in frames] == [
        f"{m}-300K-s5-{i:04d}" for m in ("H2O", "NH3") for i in range(3)]
    assert all(f.info["level"] == "gfn2-xtb" and f.info["program"].startswith("tblite ")
               for f in frames)
    capsys.readouterr()
    assert main(["info", str(configs), str(labelled)]) == 0
    out = capsys.readouterr().out
    rows = [line.split() for line in out.splitlines()]
    assert ["-", "H2O", "3", "-", "-", "-", "-", "-", "H,O"] in rows  # configs: no labels
    labelled_rows = [r for r in rows if r[0] == "gfn2-xtb"]
    assert [(r[1], r[2], r[-1]) for r in labelled_rows] == [
        ("H2O", "3", "H,O"), ("NH3", "3", "H,N")]
    for row in labelled_rows:  # E min <= E max < 0, E/atom = E / n_atoms, max |F| > 0
        e_min, e_max, ea_min, ea_max, f_max = map(float, row[3:8])
        assert e_min <= e_max < 0 and ea_min <= ea_max < 0 and f_max > 0
    assert out.count("total frames: 6") == 2


def test_bad_level_is_reported(tmp_path, capsys):
    code = main(["label", str(tmp_path / "none.extxyz"), "--level", "hf/nobasis",
                 "-o", str(tmp_path / "out.extxyz")])
    assert code == 2
    assert "unknown basis 'nobasis'" in capsys.readouterr().err
    code = main(["label", str(tmp_path / "none.extxyz"), "--level", "mp2/cc-pvdz",
                 "--density-fit", "-o", str(tmp_path / "out.extxyz")])
    assert code == 2
    assert "density fitting is supported for HF and DFT levels only" in capsys.readouterr().err


def _waters(n, seed=0):
    from ase.build import molecule

    rng = np.random.default_rng(seed)
    frames = []
    for i in range(n):
        water = molecule("H2O")
        water.positions += rng.normal(scale=0.03, size=water.positions.shape)
        water.info.update(molecule="H2O", config_id=f"H2O-{i:04d}")
        frames.append(water)
    return frames


def test_label_records_bad_geometries_and_goes_on(tmp_path, capsys):
    frames = _waters(4)
    frames[1].positions[2] = frames[1].positions[0]  # two atoms at the same position
    frames[2].positions[1, 0] = np.nan
    configs = tmp_path / "configs.extxyz"
    write_frames(configs, frames)
    out = tmp_path / "out.extxyz"
    for _ in range(2):  # a rerun skips the recorded failures
        assert main(["label", str(configs), "--level", "gfn2-xtb", "-o", str(out), "-q"]) == 0
    assert [f.info["config_id"] for f in ase.io.read(out, ":")] == ["H2O-0000", "H2O-0003"]
    failures = [json.loads(line) for line in
                out.with_name("out.extxyz.failures.jsonl").read_text().splitlines()]
    assert [f["config_id"] for f in failures] == ["H2O-0001", "H2O-0002"]
    assert "atoms 0 and 2 are 0.000 Angstrom apart" in failures[0]["reason"]
    assert "atom 1 has a NaN or infinite position" in failures[1]["reason"]


def test_label_truncated_gzip_is_one_line(tmp_path, capsys):
    configs = tmp_path / "configs.extxyz.gz"
    write_frames(configs, _waters(40))
    configs.write_bytes(configs.read_bytes()[:300])
    code = main(["label", str(configs), "--level", "gfn2-xtb", "-o", str(tmp_path / "o.xyz")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert f"{configs}: truncated gzip file" in err


@pytest.mark.parametrize("flags, message", [
    (["--temperatures", "-300"], "argument --temperatures: expected a positive float, got '-300'"),
    (["--n-frames", "-2"], "argument --n-frames: expected a positive int, got '-2'"),
    (["--n-frames", "0"], "argument --n-frames: expected a positive int, got '0'"),
    (["--stride", "x"], "argument --stride: expected a positive int, got 'x'"),
])
def test_sample_rejects_bad_numbers(tmp_path, capsys, flags, message):
    out = tmp_path / "configs.extxyz"
    with pytest.raises(SystemExit) as exit_info:
        main(["sample", "H2O", *flags, "-o", str(out), "-q"])
    assert exit_info.value.code == 2 and message in capsys.readouterr().err
    assert not out.exists()


def test_sampling_settings_validated():
    from metamlip.qm.sampling import SamplingSettings

    with pytest.raises(ValueError, match="temperatures must be positive"):
        SamplingSettings(temperatures=(-300.0,))
    with pytest.raises(ValueError, match="n_frames must be >= 1, got -2"):
        SamplingSettings(n_frames=-2)


def _labelled_waters(tmp_path):
    from ase.calculators.singlepoint import SinglePointCalculator

    frames = _waters(4)
    for k, atoms in enumerate(frames):
        atoms.info["level"] = "gfn2-xtb"
        atoms.calc = SinglePointCalculator(atoms, energy=-100.0 - k, forces=np.ones((3, 3)))
    return frames


def test_info_reports_nan_and_missing_energies(tmp_path, capsys):
    from ase.calculators.singlepoint import SinglePointCalculator

    frames = _labelled_waters(tmp_path)
    frames[1].calc = SinglePointCalculator(frames[1], energy=float("nan"), forces=np.ones((3, 3)))
    frames[2].calc = None
    frames[3].positions[0, 0] = np.nan
    path = tmp_path / "bad.extxyz"
    ase.io.write(path, frames)
    assert main(["info", str(path)]) == 1
    out = capsys.readouterr().out
    assert "problem: 1 frame(s) with NaN or infinite energy (frame 1)" in out
    assert "problem: 1 frame(s) with missing energy (frame 2)" in out
    assert "problem: 1 frame(s) with NaN or infinite position (frame 3)" in out
    row = next(line.split() for line in out.splitlines() if line.startswith("gfn2-xtb"))
    assert row[2] == "4" and float(row[3]) == -103.0 and float(row[4]) == -100.0


def test_info_reads_hdf5_and_npz(tmp_path, capsys):
    from metamlip.data import read_extxyz, write_hdf5

    frames = _labelled_waters(tmp_path)
    xyz = tmp_path / "w.extxyz"
    ase.io.write(xyz, frames)
    h5 = tmp_path / "w.h5"
    write_hdf5(read_extxyz(xyz), h5)
    npz = tmp_path / "w.npz"
    np.savez(npz, numbers=frames[0].numbers, positions=np.array([f.positions for f in frames]),
             energies=np.array([-100.0, -101, -102, -103]), forces=np.ones((4, 3, 3)),
             level="gfn2-xtb")
    assert main(["info", str(h5), str(npz)]) == 0
    out = capsys.readouterr().out
    assert out.count("total frames: 4") == 2
    rows = [line.split() for line in out.splitlines() if line.startswith("gfn2-xtb")]
    assert len(rows) == 2 and all(r[2] == "4" and float(r[3]) == -103.0 for r in rows)


@pytest.mark.parametrize("content, message", [
    (b"", "no frames (empty file)"),
    (b"hello world\n", "not a readable extxyz file"),
])
def test_info_bad_files_one_line(tmp_path, capsys, content, message):
    path = tmp_path / "bad.extxyz"
    path.write_bytes(content)
    assert main(["info", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err and str(path) in err


def test_info_truncated_gzip_one_line(tmp_path, capsys):
    path = tmp_path / "w.extxyz.gz"
    write_frames(path, _waters(40))
    path.write_bytes(path.read_bytes()[:300])
    assert main(["info", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(path) in err


def _children(pid):
    """(pid, command line) of the live processes whose parent is ``pid``."""
    out = []
    for entry in Path("/proc").iterdir():
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, ValueError):
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == pid and fields[0] != "Z":
            out.append((int(entry.name), cmdline))
    return out


def _alive(pid):
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_label_workers_die_with_killed_parent(tmp_path):
    from ase.build import molecule

    frames = []
    for i in range(12):
        atoms = molecule("CH3CH2OH")
        atoms.positions += np.random.default_rng(i).normal(scale=0.02, size=atoms.positions.shape)
        atoms.info.update(molecule="CH3CH2OH", config_id=f"e-{i:02d}")
        frames.append(atoms)
    configs = tmp_path / "configs.extxyz"
    write_frames(configs, frames)
    proc = subprocess.Popen(
        [sys.executable, "-m", "metamlip.cli.data", "label", str(configs), "--level",
         "mp2/cc-pvdz", "-o", str(tmp_path / "out.extxyz"), "--workers", "2", "--chunk-size",
         "1", "-q"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            children = _children(proc.pid)
            if sum("spawn_main" in c for _, c in children) == 2 and (
                    tmp_path / "out.extxyz.parts").exists():
                break
            assert proc.poll() is None, "labelling ended before the workers were seen"
            time.sleep(0.2)
        else:
            pytest.fail("workers did not start within 120 s")
        children = _children(proc.pid)
    finally:
        proc.kill()
        proc.wait()
    assert sum("spawn_main" in c for _, c in children) == 2
    assert any("resource_tracker" in c for _, c in children)
    deadline = time.monotonic() + 30
    while any(_alive(pid) for pid, _ in children) and time.monotonic() < deadline:
        time.sleep(0.2)
    left = [(pid, cmd) for pid, cmd in children if _alive(pid)]
    for pid, _ in left:  # clean up before failing
        os.kill(pid, signal.SIGKILL)
    assert not left, f"still running after the parent was killed: {left}"


def test_library_and_campaign_commands(tmp_path, capsys):
    assert main(["library", "--source", "nucleobase"]) == 0
    out = capsys.readouterr().out
    assert "adenine" in out and "C5H5N5" in out and out.rstrip().endswith("molecules, 0 clusters")
    manifest = tmp_path / "m.yaml"
    manifest.write_text("datasets:\n  - {level: gfn2-xtb, systems: [H2O], frames: 2}\n"
                        "sampling: {conformers: 1, md_frames: 1, md_temperatures: [300],"
                        " stride: 1, equilibration: 2, nm_frames: 0}\n")
    assert main(["campaign", "run", str(manifest), "--shard", "3/2"]) == 2
    assert "--shard '3/2': expected K/N" in capsys.readouterr().err
    assert main(["campaign", "run", str(manifest), "-q"]) == 0
    assert main(["campaign", "merge", str(manifest), "-o", str(tmp_path / "merged")]) == 0
    assert len(ase.io.read(tmp_path / "merged" / "gfn2-xtb.extxyz.gz", ":")) == 2
    assert (tmp_path / "merged" / "gfn2-xtb.md").exists()
