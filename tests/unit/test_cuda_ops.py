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
