"""CUDA kernels against the CPU ones (run where a GPU and a METAMLIP_CUDA=ON build exist).

The CUDA neighbour list gives the CPU list exactly (same pairs in the same order); the CUDA pair
sums give the CPU values and first and second derivatives.
"""

from __future__ import annotations

import pytest
import torch
from fixtures.structures import random_cases

import metamlip.ops  # noqa: F401

BUILT_WITH_CUDA = "cuda=1" in torch.ops.metamlip.build_info()
pytestmark = pytest.mark.skipif(
    not (BUILT_WITH_CUDA and torch.cuda.is_available()),
    reason="needs a GPU and the op library built with METAMLIP_CUDA=ON",
)


def tensors_of(case, device):
    cell = None if case.cell is None else torch.tensor(case.cell, device=device)
    batch = None if case.batch is None else torch.tensor(case.batch, device=device)
    return torch.tensor(case.positions, device=device), cell, torch.tensor(case.pbc, device=device), batch


@pytest.mark.parametrize("full_list", [True, False])
def test_neighbor_list_cuda_equals_cpu(full_list):
    for case in random_cases(70, seed=7):
        outputs = []
        for device in ("cpu", "cuda"):
            x, cell, pbc, batch = tensors_of(case, device)
            outputs.append(torch.ops.metamlip.neighbor_list(x, case.cutoff, cell, pbc, batch, full_list, True))
        for cpu, gpu in zip(*outputs):
            torch.testing.assert_close(gpu.cpu(), cpu, rtol=1e-12, atol=1e-12, msg=case.name)


def random_pair_sum_inputs(device, n_atoms=13, n_pairs=60, S=5, F=7):
    generator = torch.Generator().manual_seed(0)
    first = torch.randint(0, n_atoms, (n_pairs,), generator=generator)
    second = torch.randint(0, n_atoms, (n_pairs,), generator=generator)
    first[-3:] = first[0]  # duplicated pairs; atoms without pairs are likely too
    second[-3:] = second[0]

    def leaf(*shape):
        return torch.randn(*shape, generator=generator, dtype=torch.float64).to(device).requires_grad_(True)

    return leaf(n_pairs, S), leaf(n_atoms, F), leaf(n_atoms, S, F), first.to(device), second.to(device)


@pytest.mark.parametrize("op", ["envsum", "sensesum", "featsum"])
def test_pair_sums_cuda_values_and_derivatives(op):
    results = {}
    for device in ("cpu", "cuda"):
        sense, features, env_grad, first, second = random_pair_sum_inputs(device)
        args = {"envsum": (sense, features), "sensesum": (env_grad, features), "featsum": (env_grad, sense)}[op]
        out = getattr(torch.ops.metamlip, op)(*args, first, second)
        grads = torch.autograd.grad(out.square().sum(), args, create_graph=True)
        second_order = torch.autograd.grad(sum(g.square().sum() for g in grads), args)
        results[device] = [out, *grads, *second_order]
    for cpu, gpu in zip(results["cpu"], results["cuda"]):
        torch.testing.assert_close(gpu.detach().cpu(), cpu.detach(), rtol=1e-10, atol=1e-12)
    sense, features, _, first, second = random_pair_sum_inputs("cuda")
    torch.autograd.gradcheck(lambda s, z: torch.ops.metamlip.envsum(s, z, first, second), (sense, features))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_neighbor_list_cuda_float32_and_float64_vectors(dtype):
    tolerance = 1e-6 if dtype == torch.float32 else 1e-12
    for case in random_cases(14, seed=3):
        outputs = []
        for device in ("cpu", "cuda"):
            x, cell, pbc, batch = tensors_of(case, device)
            cell = None if cell is None else cell.to(dtype)
            outputs.append(torch.ops.metamlip.neighbor_list(x.to(dtype), case.cutoff, cell, pbc, batch, True, True))
        for cpu, gpu in zip(*outputs):
            assert gpu.is_cuda and gpu.dtype == cpu.dtype
            torch.testing.assert_close(gpu.cpu(), cpu, rtol=tolerance, atol=tolerance, msg=case.name)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize(("n_pairs", "S", "F"), [(0, 20, 64), (60, 20, 64), (5000, 20, 64), (500, 300, 3)])
def test_pair_sums_cuda_dtypes_and_empty_pair_lists(dtype, n_pairs, S, F):
    """Values and first derivatives of the three sums in both dtypes, also without pairs and
    with more sensitivities than fit 32 pairs' rows in envsum's shared memory."""
    tolerance = 1e-5 if dtype == torch.float32 else 1e-10
    generator = torch.Generator().manual_seed(n_pairs)
    n_atoms = 50
    first = torch.randint(0, n_atoms, (n_pairs,), generator=generator)
    second = torch.randint(0, n_atoms, (n_pairs,), generator=generator)
    leaves = [torch.randn(*shape, generator=generator, dtype=dtype) for shape in ((n_pairs, S), (n_atoms, F), (n_atoms, S, F))]
    for op in ("envsum", "sensesum", "featsum"):
        results = []
        for device in ("cpu", "cuda"):
            sense, features, env_grad = (t.to(device).requires_grad_(True) for t in leaves)
            args = {"envsum": (sense, features), "sensesum": (env_grad, features), "featsum": (env_grad, sense)}[op]
            out = getattr(torch.ops.metamlip, op)(*args, first.to(device), second.to(device))
            weights = torch.randn(out.shape, generator=torch.Generator().manual_seed(7), dtype=dtype).to(device)
            results.append([out, *torch.autograd.grad((out * weights).sum(), args)])
        for cpu, gpu in zip(*results):
            assert gpu.is_cuda and gpu.shape == cpu.shape and gpu.dtype == dtype
            # float32 atomics add in another order than the CPU loop: absolute tolerance on the scale of the result
            scale = max(1.0, float(cpu.detach().abs().max())) if cpu.numel() else 1.0
            torch.testing.assert_close(
                gpu.detach().cpu(), cpu.detach(), rtol=tolerance, atol=tolerance * scale, msg=lambda m: f"{op}: {m}"
            )


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize(("n_pairs", "n_sensitivities"), [(4000, 20), (0, 20), (50, 0), (7, 1)])
def test_sensitivity_cuda_equals_cpu(dtype, n_pairs, n_sensitivities):
    """The fused sensitivity op and its backward (through autograd and called directly)."""
    from metamlip.nn.sensitivity import InverseGaussianSensitivity

    tolerance = 2e-6 if dtype == torch.float32 else 1e-12
    module = InverseGaussianSensitivity(max(n_sensitivities, 1), 0.75, 4.0, 5.0).to(dtype).requires_grad_(False)
    mu, sigma = module.mu[:n_sensitivities], module.sigma[:n_sensitivities]
    generator = torch.Generator().manual_seed(n_pairs)
    distances = torch.rand(n_pairs, generator=generator, dtype=torch.float64).mul(6.0).add(0.3).to(dtype)
    if n_pairs:
        distances[:2] = 5.0  # exactly at the cutoff: zero value and slope
    weights = torch.randn(n_pairs, n_sensitivities, generator=generator, dtype=dtype)
    results = []
    for device in ("cpu", "cuda"):
        r = distances.to(device).requires_grad_(True)
        sense = torch.ops.metamlip.sensitivity(r, mu.to(device), sigma.to(device), 5.0)
        (grad,) = torch.autograd.grad((sense * weights.to(device)).sum(), r)
        direct = torch.ops.metamlip.sensitivity_backward(
            weights.to(device), sense.detach(), r.detach(), mu.to(device), sigma.to(device), 5.0
        )
        results.append((sense.detach(), grad, direct))
    for cpu, gpu in zip(*results):
        assert gpu.is_cuda and gpu.shape == cpu.shape
        torch.testing.assert_close(gpu.cpu(), cpu, rtol=tolerance, atol=tolerance)
    if n_pairs and n_sensitivities > 1:
        assert bool((results[1][0][:2] == 0).all()) and bool((results[1][1][:2] == 0).all())


def test_sensitivity_cuda_gradcheck_and_fused_model_path():
    """The module's fused path runs the CUDA op (a C++ autograd node) and agrees with the formula."""
    from metamlip.nn.sensitivity import InverseGaussianSensitivity

    module = InverseGaussianSensitivity(8, 0.75, 4.0, 5.0).double().cuda().requires_grad_(False)
    r = torch.rand(40, dtype=torch.float64, device="cuda").mul(5.5).add(0.5).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda x: module(x, fused=True), (r,))
    fused, reference = module(r, fused=True), module(r)
    assert "SensitivityFunction" in fused.grad_fn.name()
    torch.testing.assert_close(fused, reference, rtol=1e-12, atol=1e-12)
    with pytest.raises(RuntimeError, match="all tensors must be on one device"):
        torch.ops.metamlip.sensitivity(r.detach(), module.mu.cpu(), module.sigma, 5.0)


def test_exported_model_cuda_equals_cpu(tmp_path):
    """An exported model (C++ pair sums, fused sensitivities): energies and forces on CUDA = CPU,
    to 1e-10 in float64; in float32 to 1e-6 for energies, and for forces (sums of large pair
    terms that cancel) to within twice float32's own rounding (CPU float32 against float64)."""
    from model_helpers import small_potential

    from metamlip.deploy import export_module, save_exported

    generator = torch.Generator().manual_seed(1)
    side = torch.arange(7, dtype=torch.float64) * 2.2
    positions = torch.cartesian_prod(side, side, side) + 0.1 * torch.randn(343, 3, generator=generator, dtype=torch.float64)
    numbers = torch.tensor([1, 6, 7, 8])[torch.randint(0, 4, (343,), generator=generator)]
    cell = torch.eye(3, dtype=torch.float64) * 7 * 2.2
    results = {}
    for dtype in ("float64", "float32"):
        scripted, metadata = export_module(small_potential(seed=5), dtype=dtype, implementation="cpp")
        save_exported(scripted, metadata, tmp_path / f"{dtype}.pt")
        for device in ("cpu", "cuda"):
            model = torch.jit.load(str(tmp_path / f"{dtype}.pt"), map_location=device)
            x = positions.to(device).requires_grad_(True)
            h, pbc = cell.to(device), torch.ones(3, dtype=torch.bool, device=device)
            i, j, shifts, _, _ = torch.ops.metamlip.neighbor_list(x.detach(), metadata["cutoff"], h, pbc)
            mask = torch.ones(343, dtype=torch.bool, device=device)
            energies = model(x, numbers.to(device), torch.stack([i, j]), shifts.to(x.dtype) @ h, mask)
            (gradient,) = torch.autograd.grad(energies.sum(), x)
            assert energies.is_cuda == (device == "cuda")
            results[dtype, device] = (energies.detach().cpu(), -gradient.cpu())

    def error(a, b):
        return float((a - b).norm() / b.norm())

    for k in (0, 1):
        assert error(results["float64", "cuda"][k], results["float64", "cpu"][k]) <= 1e-10
    assert error(results["float32", "cuda"][0], results["float32", "cpu"][0]) <= 1e-6
    rounding = error(results["float32", "cpu"][1], results["float64", "cpu"][1])
    assert error(results["float32", "cuda"][1], results["float32", "cpu"][1]) <= max(1e-6, 2 * rounding)
