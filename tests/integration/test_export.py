"""`metamlip-export`: the exported file reproduces the Python model, carries its metadata, and
bad files (corrupt, truncated, newer format, not ours) are refused with a clear message."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from ase.build import molecule

from metamlip.deploy import (
    ExportedModelError,
    export_model,
    load_exported,
    load_model,
    read_metadata,
)
from metamlip.train.checkpoint import save_checkpoint
from deploy_helpers import ethanol_box, exported_energy_forces, python_energy_forces
from model_helpers import small_potential


@pytest.mark.parametrize("implementation,tensor_order", [("cpp", 0), ("torch", 0), ("cpp", 1), ("cpp", 2), ("torch", 2)])
def test_exported_model_reproduces_python_model(tmp_path: Path, implementation: str, tensor_order: int) -> None:
    potential = small_potential(seed=1, tensor_order=tensor_order)
    path = tmp_path / "model.pt"
    metadata = export_model(potential, path, implementation=implementation)
    assert metadata["pair_sums"] == implementation and metadata["tensor_order"] == tensor_order
    # Frozen: the pair-sum switch is folded, so only the cpp pair sums need the op library.
    assert metadata["op_library"]["required"] is (implementation == "cpp")
    model, _ = load_exported(path)
    a = molecule("CH3CH2OH")
    numbers, positions, cell = ethanol_box()
    for args in ((a.numbers, a.positions), (numbers, positions, cell)):
        e_ref, f_ref = python_energy_forces(potential, *args)
        e, f = exported_energy_forces(model, metadata["cutoff"], *args)
        assert abs(e - e_ref) <= 1e-10 * max(1.0, abs(e_ref))
        np.testing.assert_allclose(f, f_ref, rtol=0, atol=1e-10)


@pytest.mark.parametrize("tensor_order", [0, 2])
def test_float32_export_and_metadata(tmp_path: Path, tensor_order: int) -> None:
    potential = small_potential(seed=2, tensor_order=tensor_order)
    metadata = export_model(potential, tmp_path / "model32.pt", dtype="float32")
    assert read_metadata(tmp_path / "model32.pt") == metadata
    assert metadata["dtype"] == "float32" and metadata["format_version"] == 1
    assert metadata["elements"] == ["H", "C", "N", "O"] and metadata["atomic_numbers"] == [1, 6, 7, 8]
    assert metadata["receptive_field"] == metadata["cutoff"] * metadata["n_interactions"] == 8.0
    assert metadata["units"] == {"energy": "eV", "length": "Angstrom"}
    assert metadata["torch_version"] == torch.__version__ and metadata["level"] == "test"
    model, _ = load_exported(tmp_path / "model32.pt")
    assert all(p.dtype == torch.float32 for p in model.parameters())
    a = molecule("CH3CH2NH2")
    e_ref, f_ref = python_energy_forces(potential, a.numbers, a.positions)
    e, f = exported_energy_forces(model, metadata["cutoff"], a.numbers, a.positions)
    assert abs(e - e_ref) < 1e-4 * len(a)  # float32 network, float64 self energies
    np.testing.assert_allclose(f, f_ref, atol=1e-4)


def test_level_selection(tmp_path: Path) -> None:
    potential = small_potential(seed=3, levels=("gfn2", "hf"))
    with pytest.raises(ValueError, match=r"several levels of theory \(gfn2, hf\)"):
        export_model(potential, tmp_path / "m.pt")
    with pytest.raises(ValueError, match=r"unknown level 'mp2' \(known: gfn2, hf\)"):
        export_model(potential, tmp_path / "m.pt", level="mp2")
    assert not (tmp_path / "m.pt").exists()
    a = molecule("HCOOH")
    for level in ("gfn2", "hf"):
        model, metadata = load_model(potential, level=level)
        assert metadata["level"] == level
        e_ref, _ = python_energy_forces(potential, a.numbers, a.positions, level=level)
        e, _ = exported_energy_forces(model, metadata["cutoff"], a.numbers, a.positions)
        assert abs(e - e_ref) <= 1e-10 * abs(e_ref)


def test_unsupported_element_is_refused(tmp_path: Path) -> None:
    model, metadata = load_model(small_potential(seed=4))
    with pytest.raises(torch.jit.Error, match=r"element S \(atomic number 16\) is not supported by this model"):
        exported_energy_forces(model, metadata["cutoff"], [16, 1], [[0.0, 0.0, 0.0], [1.3, 0.0, 0.0]])


def run_export(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "metamlip.cli.export", *args], capture_output=True, text=True, timeout=300
    )


ROUND_TRIP = """
import json, sys
import numpy as np
from metamlip.deploy import load_exported
from deploy_helpers import exported_energy_forces
model, metadata = load_exported(sys.argv[1])
positions = np.array(json.loads(sys.argv[2]))
energy, forces = exported_energy_forces(model, metadata["cutoff"], [8, 6, 8, 1, 1], positions)
print(json.dumps({"energy": energy, "forces": forces.tolist()}))
"""


def test_cli_round_trip_in_a_fresh_process(tmp_path: Path) -> None:
    potential = small_potential(seed=5, levels=("gfn2", "hf"))
    checkpoint = tmp_path / "model.ckpt"
    save_checkpoint(checkpoint, potential, config={})
    output = tmp_path / "model.pt"
    refused = run_export(str(checkpoint), "-o", str(output), "--level", "ccsd")
    assert refused.returncode == 2 and "unknown level 'ccsd' (known: gfn2, hf)" in refused.stderr
    done = run_export(str(checkpoint), "-o", str(output), "--level", "hf")
    assert done.returncode == 0, done.stderr
    info = run_export("--info", str(output))
    assert info.returncode == 0, info.stderr
    for expected in ("level of theory     hf", "elements            H C N O", "receptive field     8.0 Angstrom"):
        assert expected in info.stdout
    a = molecule("HCOOH")
    assert a.numbers.tolist() == [8, 6, 8, 1, 1]
    env = {"PYTHONPATH": str(Path(__file__).parents[1])}
    result = subprocess.run(
        [sys.executable, "-c", ROUND_TRIP, str(output), json.dumps(a.positions.tolist())],
        capture_output=True, text=True, timeout=300, env={**os.environ, **env},
    )
    assert result.returncode == 0, result.stderr
    values = json.loads(result.stdout)
    e_ref, f_ref = python_energy_forces(potential, a.numbers, a.positions, level="hf")
    assert abs(values["energy"] - e_ref) <= 1e-10 * abs(e_ref)
    np.testing.assert_allclose(values["forces"], f_ref, atol=1e-10)


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("exported") / "model.pt"
    export_model(small_potential(seed=6), path)
    return path


def rewritten(source: Path, target: Path, change) -> Path:
    """A copy of the archive `source` with each (name, bytes) passed through `change`."""
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w") as new:
        for item in old.infolist():
            new.writestr(item, change(item.filename, old.read(item.filename)))
    return target


def test_corrupted_file(exported: Path, tmp_path: Path) -> None:
    data = bytearray(exported.read_bytes())
    with zipfile.ZipFile(exported) as archive:
        record = max(archive.infolist(), key=lambda item: item.file_size)
    offset = record.header_offset + 30 + len(record.filename.encode()) + len(record.extra) + record.file_size // 2
    data[offset] ^= 0xFF
    bad = tmp_path / "corrupt.pt"
    bad.write_bytes(bytes(data))
    with pytest.raises(ExportedModelError, match="corrupted file"):
        load_exported(bad)
    result = run_export("--info", str(bad))
    assert result.returncode == 2 and "corrupted file (checksum mismatch" in result.stderr


def test_truncated_file(exported: Path, tmp_path: Path) -> None:
    bad = tmp_path / "truncated.pt"
    bad.write_bytes(exported.read_bytes()[: exported.stat().st_size // 2])
    with pytest.raises(ExportedModelError, match=r"not a TorchScript archive \(a corrupted or truncated file"):
        load_exported(bad)


def test_newer_format_version(exported: Path, tmp_path: Path) -> None:
    def newer(name: str, data: bytes) -> bytes:
        if not name.endswith("extra/metadata.json"):
            return data
        return json.dumps(json.loads(data) | {"format_version": 2, "metamlip_version": "9.0"}).encode()

    bad = rewritten(exported, tmp_path / "newer.pt", newer)
    with pytest.raises(ExportedModelError, match=r"format version 2 \(written by metamlip 9.0\) is newer"):
        load_exported(bad)
    result = run_export("--info", str(bad))
    assert result.returncode == 2 and "upgrade metamlip" in result.stderr


def test_not_a_metamlip_file(tmp_path: Path) -> None:
    other = tmp_path / "other.pt"
    torch.jit.script(torch.nn.Linear(3, 1)).save(str(other))
    with pytest.raises(ExportedModelError, match="TorchScript file without metamlip metadata"):
        load_exported(other)
    checkpoint = tmp_path / "model.ckpt"
    save_checkpoint(checkpoint, small_potential(), config={})
    with pytest.raises(ExportedModelError, match="a training checkpoint, not an exported model"):
        read_metadata(checkpoint)
    with pytest.raises(ExportedModelError, match="file not found"):
        read_metadata(tmp_path / "missing.pt")
    text = tmp_path / "model.txt"
    text.write_text("not a model")
    with pytest.raises(ExportedModelError, match="not a TorchScript archive"):
        load_exported(text)


def test_export_a_pretrained_model(tmp_path: Path) -> None:
    """`metamlip-export pretrained:NAME` exports the shipped checkpoint (as train and eval take it)."""
    from metamlip.pretrained import available

    name = available()[0]
    output = tmp_path / "m.pt"
    several = run_export(f"pretrained:{name}", "-o", str(output))
    assert several.returncode == 2 and "several levels of theory" in several.stderr and "--level" in several.stderr
    level = several.stderr.split("(")[1].split(",")[0]
    done = run_export(f"pretrained:{name}", "-o", str(output), "--level", level)
    assert done.returncode == 0, done.stderr
    assert read_metadata(output)["level"] == level
    unknown = run_export("pretrained:no-such-model", "-o", str(tmp_path / "x.pt"))
    assert unknown.returncode == 2 and "no pre-trained model named 'no-such-model' (shipped: " in unknown.stderr


def test_python_api_level_errors_name_the_argument() -> None:
    """load_model (behind create_force and MetaMLIPCalculator) says `level=`, not a CLI option."""
    potential = small_potential(seed=3, levels=("gfn2", "hf"))
    with pytest.raises(ValueError, match=r"several levels of theory \(gfn2, hf\): choose one with level=") as error:
        load_model(potential)
    assert "--level" not in str(error.value)
