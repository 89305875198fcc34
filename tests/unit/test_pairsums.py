"""HIP-NN pair sums: C++ ops (torch.ops.metamlip) against the plain-PyTorch reference.

Values, first and second derivatives, for empty pair lists, duplicated and shuffled pairs,
atoms without neighbours, and sizes that exercise every vector-tail path of the kernels.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

from metamlip.nn.pairsums import envsum, envsum_reference, featsum_reference, sensesum_reference

REFERENCES = {"envsum": envsum_reference, "sensesum": sensesum_reference, "featsum": featsum_reference}
OPS = list(REFERENCES)


def pair_sum(name, a, b, first, second, implementation="torch"):
    """The op `name` on the C++ library ("cpp") or its plain-PyTorch reference ("torch")."""
    if implementation == "cpp":
        return getattr(torch.ops.metamlip, name)(a, b, first, second)
    return REFERENCES[name](a, b, first, second)


def make_problem(n_atoms, n_pairs, n_sense, n_feat, dtype=torch.float64, seed=0, pairs="shuffled"):
    """Random inputs of all three ops. pairs: "shuffled", "sorted" (by first), "duplicated"."""
    g = torch.Generator().manual_seed(seed)
    first = torch.randint(0, max(n_atoms, 1), (n_pairs,), generator=g)
    second = torch.randint(0, max(n_atoms, 1), (n_pairs,), generator=g)
    if n_atoms > 3:  # the last atoms have no pairs at all
        first = first % (n_atoms - 2)
        second = second % (n_atoms - 2)
    if pairs == "sorted":
        first = torch.sort(first).values
    elif pairs == "duplicated" and n_pairs > 1:
        half = n_pairs // 2
        first[half : 2 * half] = first[:half]
        second[half : 2 * half] = second[:half]
    sense = torch.randn(n_pairs, n_sense, dtype=dtype, generator=g)
    sense[torch.rand(n_pairs, n_sense, generator=g) < 0.3] = 0.0  # exact zeros are skipped
    features = torch.randn(n_atoms, n_feat, dtype=dtype, generator=g)
    env_grad = torch.randn(n_atoms, n_sense, n_feat, dtype=dtype, generator=g)
    return sense, features, env_grad, first, second


def arguments(name, sense, features, env_grad, first, second):
    return {
        "envsum": (sense, features, first, second),
        "sensesum": (env_grad, features, first, second),
        "featsum": (env_grad, sense, first, second),
    }[name]


SHAPES = [  # (atoms, pairs, sensitivities, features)
    (1, 0, 3, 4),
    (6, 0, 20, 64),
    (5, 1, 1, 1),
    (8, 40, 3, 5),
    (20, 300, 20, 64),
    (17, 200, 21, 65),
    (13, 150, 7, 33),
    (30, 400, 20, 4),
    (12, 120, 16, 16),
]


@pytest.mark.parametrize("pairs", ["shuffled", "sorted", "duplicated"])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("name", OPS)
def test_values_equal_reference(name, shape, pairs):
    for dtype, tol in [(torch.float64, 1e-12), (torch.float32, 2e-5)]:
        args = arguments(name, *make_problem(*shape, dtype=dtype, pairs=pairs))
        ours = pair_sum(name, *args, implementation="cpp")
        ref = pair_sum(name, *args, implementation="torch")
        assert ours.dtype == ref.dtype and ours.shape == ref.shape
        torch.testing.assert_close(ours, ref, rtol=tol, atol=tol)


@pytest.mark.parametrize("pairs", ["shuffled", "duplicated"])
@pytest.mark.parametrize("shape", [(6, 0, 3, 4), (7, 25, 3, 5), (6, 14, 5, 9)], ids=str)
@pytest.mark.parametrize("name", OPS)
def test_gradcheck_and_gradgradcheck(name, shape, pairs):
    tensors = make_problem(*shape, pairs=pairs)
    args = arguments(name, *tensors)
    x, y = (t.clone().requires_grad_(True) for t in args[:2])

    def op(a, b):
        return pair_sum(name, a, b, args[2], args[3], implementation="cpp")

    assert torch.autograd.gradcheck(op, (x, y))
    assert torch.autograd.gradgradcheck(op, (x, y))


@pytest.mark.parametrize("name", OPS)
def test_first_and_second_derivatives_equal_reference(name):
    """Force-training pattern: a loss on the gradient, differentiated again."""
    tensors = make_problem(15, 120, 6, 9, pairs="shuffled", seed=3)
    args = arguments(name, *tensors)
    results = {}
    for impl in ("cpp", "torch"):
        x, y = (t.clone().requires_grad_(True) for t in args[:2])
        out = pair_sum(name, x, y, args[2], args[3], implementation=impl)
        energy = (out * torch.sin(out)).sum()
        gx, gy = torch.autograd.grad(energy, (x, y), create_graph=True)
        loss = gx.square().sum() + (gy * torch.cos(gy)).sum()
        hx, hy = torch.autograd.grad(loss, (x, y))
        results[impl] = (out, gx, gy, hx, hy)
    for ours, ref in zip(results["cpp"], results["torch"]):
        torch.testing.assert_close(ours, ref, rtol=1e-11, atol=1e-11)


def test_independent_of_thread_count():
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = [pair_sum(n, *arguments(n, *make_problem(300, 6000, 20, 64)), implementation="cpp") for n in OPS]
        torch.set_num_threads(max(2, threads))
        many = [pair_sum(n, *arguments(n, *make_problem(300, 6000, 20, 64)), implementation="cpp") for n in OPS]
    finally:
        torch.set_num_threads(threads)
    for a, b in zip(one, many):
        assert torch.equal(a, b)


def test_noncontiguous_inputs():
    sense, features, env_grad, first, second = make_problem(10, 60, 4, 6)
    sense_t = sense.t().contiguous().t()  # same values, transposed strides
    features_t = features.t().contiguous().t()
    env_t = env_grad.transpose(1, 2).contiguous().transpose(1, 2)
    for name, args in [
        ("envsum", (sense_t, features_t, first, second)),
        ("sensesum", (env_t, features_t, first, second)),
        ("featsum", (env_t, sense_t, first, second)),
    ]:
        torch.testing.assert_close(pair_sum(name, *args, implementation="cpp"), pair_sum(name, *args, implementation="torch"))


_ISA_SCRIPT = """
import torch
from metamlip.nn.pairsums import envsum_reference, sensesum_reference, featsum_reference
g = torch.Generator().manual_seed(1)
for dtype in (torch.float64, torch.float32):
    for (n, p, s, f) in [(20, 300, 20, 64), (17, 200, 21, 65), (9, 50, 3, 5)]:
        first = torch.randint(0, n, (p,), generator=g); second = torch.randint(0, n, (p,), generator=g)
        sense = torch.randn(p, s, dtype=dtype, generator=g); z = torch.randn(n, f, dtype=dtype, generator=g)
        G = torch.randn(n, s, f, dtype=dtype, generator=g)
        tol = 1e-12 if dtype == torch.float64 else 2e-5
        for name, reference, args in [("envsum", envsum_reference, (sense, z)),
                                      ("sensesum", sensesum_reference, (G, z)),
                                      ("featsum", featsum_reference, (G, sense))]:
            torch.testing.assert_close(getattr(torch.ops.metamlip, name)(*args, first, second),
                                       reference(*args, first, second), rtol=tol, atol=tol)
print("ok")
"""


@pytest.mark.parametrize("isa", ["baseline", "avx2"])
def test_other_instruction_sets(isa):
    """The kernels compiled for older CPUs, forced with METAMLIP_CPU_ISA."""
    env = dict(os.environ, METAMLIP_CPU_ISA=isa, OMP_NUM_THREADS="1")
    run = subprocess.run([sys.executable, "-c", _ISA_SCRIPT], env=env, capture_output=True, text=True, timeout=120)
    if "not supported by this CPU" in run.stderr:
        pytest.skip(f"{isa} not supported here")
    assert run.returncode == 0 and "ok" in run.stdout, run.stderr[-2000:]


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda a: (a[0], a[1], a[2] + 100, a[3]), "pair indices must lie"),
        (lambda a: (a[0], a[1], a[2] - 100, a[3]), "pair indices must lie"),
        (lambda a: (a[0], a[1], a[2].int(), a[3]), "int64"),
        (lambda a: (a[0].float(), a[1], a[2], a[3]), "dtypes differ"),
        (lambda a: (a[0][:-1], a[1], a[2], a[3]), "shape"),
        (lambda a: (a[0].half(), a[1].half(), a[2], a[3]), "float32 and float64"),
    ],
)
def test_errors(mutate, message):
    args = mutate(arguments("envsum", *make_problem(10, 30, 3, 4)))
    with pytest.raises(RuntimeError, match=message):
        envsum(*args, implementation="cpp")


def test_unknown_implementation():
    with pytest.raises(ValueError, match="unknown implementation"):
        envsum(*arguments("envsum", *make_problem(3, 4, 2, 2)), implementation="numba")


class _Energy(torch.nn.Module):
    """A toy model: energy from envsum; forces by autograd inside TorchScript."""

    def forward(self, sense, features, first, second):
        env = envsum(sense, features, first, second, "cpp")
        energy = (env.square().sum(dim=(1, 2)) * 0.5).sum()
        grads = torch.autograd.grad([energy], [sense, features], create_graph=True)
        g0 = grads[0]
        g1 = grads[1]
        assert g0 is not None and g1 is not None
        return energy, g0, g1


def test_torchscript_with_derivatives(tmp_path):
    sense, features, _, first, second = make_problem(12, 80, 5, 7)
    scripted = torch.jit.script(_Energy())
    path = tmp_path / "energy.pt"
    scripted.save(str(path))
    loaded = torch.jit.load(str(path))
    for model in (_Energy(), loaded):
        s, z = sense.clone().requires_grad_(True), features.clone().requires_grad_(True)
        energy, gs, gz = model(s, z, first, second)
        (gs.square().sum() + gz.square().sum()).backward()  # second derivatives
        s_ref, z_ref = sense.clone().requires_grad_(True), features.clone().requires_grad_(True)
        env = envsum(s_ref, z_ref, first, second, "torch")
        e_ref = (env.square().sum(dim=(1, 2)) * 0.5).sum()
        gs_ref, gz_ref = torch.autograd.grad(e_ref, (s_ref, z_ref), create_graph=True)
        (gs_ref.square().sum() + gz_ref.square().sum()).backward()
        torch.testing.assert_close(energy, e_ref)
        torch.testing.assert_close(gs, gs_ref)
        torch.testing.assert_close(s.grad, s_ref.grad)
        torch.testing.assert_close(z.grad, z_ref.grad)
