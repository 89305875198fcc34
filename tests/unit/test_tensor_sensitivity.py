"""HIP-NN-TS pieces: the tensor basis, the tensor environment sum, the C++ tensor pair sums
(torch.ops.metamlip.tensorsum*) against the reference, and the invariants."""

from __future__ import annotations

import pytest
import torch
from scipy.spatial.transform import Rotation

from metamlip.nn.pairsums import envsum_reference
from metamlip.nn.tensor_sensitivity import (
    N_COMPONENTS,
    TensorInvariants,
    tensor_basis,
    tensor_envsum,
    tensor_interaction,
    tensorsum_reference,
)


def unit_vectors(n: int, seed: int = 0) -> torch.Tensor:
    vectors = torch.randn(n, 3, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return vectors / vectors.norm(dim=1, keepdim=True)


def full_quadrupole(components: torch.Tensor) -> torch.Tensor:
    """[..., 5] (xx, xy, xz, yy, yz) -> [..., 3, 3] traceless symmetric."""
    xx, xy, xz, yy, yz = components.unbind(-1)
    rows = [torch.stack([xx, xy, xz], -1), torch.stack([xy, yy, yz], -1), torch.stack([xz, yz, -xx - yy], -1)]
    return torch.stack(rows, -2)


@pytest.mark.parametrize("order", [0, 1, 2])
def test_basis_is_the_unit_vector_tensors(order: int) -> None:
    u = unit_vectors(7)
    basis = tensor_basis(u, order)
    assert basis.shape == (7, N_COMPONENTS[order])
    torch.testing.assert_close(basis[:, 0], torch.ones(7, dtype=torch.float64))
    if order >= 1:
        torch.testing.assert_close(basis[:, 1:4], u)
    if order == 2:
        expected = u.unsqueeze(2) * u.unsqueeze(1) - torch.eye(3, dtype=torch.float64) / 3
        torch.testing.assert_close(full_quadrupole(basis[:, 4:9]), expected)


def test_tensor_envsum_is_the_pair_sum_of_basis_times_sensitivities() -> None:
    g = torch.Generator().manual_seed(1)
    n_atoms, n_pairs, n_sense, n_features = 5, 17, 3, 4
    sense = torch.rand(n_pairs, n_sense, generator=g, dtype=torch.float64)
    features = torch.randn(n_atoms, n_features, generator=g, dtype=torch.float64)
    first = torch.randint(0, n_atoms, (n_pairs,), generator=g)
    second = torch.randint(0, n_atoms, (n_pairs,), generator=g)
    basis = tensor_basis(unit_vectors(n_pairs, 2), 2)
    env = tensor_envsum(sense, basis, features, first, second)
    assert env.shape == (n_atoms, 9, n_sense, n_features)
    for c in range(9):
        expected = envsum_reference(sense * basis[:, c : c + 1], features, first, second)
        torch.testing.assert_close(env[:, c], expected)


@pytest.mark.parametrize("order", [1, 2])
def test_invariants_are_scalar_plus_scaled_tensor_norms_and_rotation_invariant(order: int) -> None:
    torch.manual_seed(0)
    invariants = TensorInvariants(order, n_out=6).double()
    assert invariants.scales.shape == (order, 6)
    features = torch.randn(4, N_COMPONENTS[order], 6, dtype=torch.float64)
    out = invariants(features)
    eps = invariants.cusp_reg
    expected = features[:, 0] + torch.sqrt(features[:, 1:4].square().sum(1) + eps) * invariants.scales[0]
    if order == 2:
        quad = full_quadrupole(features[:, 4:9].transpose(1, 2))  # [4, 6, 3, 3]
        expected = expected + torch.sqrt(quad.square().sum((-1, -2)) + eps) * invariants.scales[1]
    torch.testing.assert_close(out, expected)
    # rotate every tensor feature: R v, and R Q R^T (back to its five components)
    rotation = torch.from_numpy(Rotation.random(random_state=5).as_matrix())
    rotated = features.clone()
    rotated[:, 1:4] = torch.einsum("ab,nbo->nao", rotation, features[:, 1:4])
    if order == 2:
        quad = full_quadrupole(features[:, 4:9].transpose(1, 2))
        turned = rotation @ quad @ rotation.T
        rotated[:, 4:9] = torch.stack(
            [turned[..., 0, 0], turned[..., 0, 1], turned[..., 0, 2], turned[..., 1, 1], turned[..., 1, 2]], 1
        )
    torch.testing.assert_close(invariants(rotated), out, rtol=1e-12, atol=1e-12)


def test_tensor_order_is_checked() -> None:
    from metamlip.nn.hipnn import HIPNN

    with pytest.raises(ValueError, match="tensor_order must be one of"):
        HIPNN(4, tensor_order=3)


def random_pairs(n_atoms: int, n_pairs: int, n_sense: int, n_features: int, order: int, dtype: torch.dtype, seed: int = 3):
    g = torch.Generator().manual_seed(seed)
    sense = torch.rand(n_pairs, n_sense, generator=g, dtype=torch.float64).to(dtype)
    features = torch.randn(n_atoms, n_features, generator=g, dtype=torch.float64).to(dtype)
    first = torch.randint(0, n_atoms, (n_pairs,), generator=g)
    second = torch.randint(0, n_atoms, (n_pairs,), generator=g)
    basis = tensor_basis(unit_vectors(n_pairs, seed), order).to(dtype)
    return sense, basis, features, first, second


TENSOR_OPS = ("tensorsum", "tensorsum_sense", "tensorsum_basis", "tensorsum_values")


def multilinear_form(grad, sense, basis, values, first, second) -> torch.Tensor:
    """T = sum_p sum_{c,s,o} grad[i_p, c, o] basis[p, c] sense[p, s] values[j_p, s, o] (reference)."""
    return (grad * tensorsum_reference(sense, basis, values, first, second)).sum()


@pytest.mark.parametrize("n_pairs", [0, 23])
@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-12), (torch.float32, 1e-5)])
def test_cpp_tensorsum_ops_are_the_partial_derivatives(n_pairs: int, dtype: torch.dtype, tol: float) -> None:
    """Each op equals the reference's derivative of the multilinear form; pairs unsorted."""
    sense, basis, features, first, second = random_pairs(6, n_pairs, 3, 5, 2, dtype)
    g = torch.Generator().manual_seed(11)
    values = torch.randn(6, 3, 4, generator=g, dtype=torch.float64).to(dtype)
    grad = torch.randn(6, 9, 4, generator=g, dtype=torch.float64).to(dtype)
    slots = [t.clone().requires_grad_(True) for t in (grad, sense, basis, values)]
    partials = torch.autograd.grad(multilinear_form(*slots, first, second), slots)
    for k, name in enumerate(TENSOR_OPS):
        args = [t.detach() for m, t in enumerate(slots) if m != k]
        ours = getattr(torch.ops.metamlip, name)(*args, first, second)
        assert ours.shape == partials[k].shape and ours.dtype == dtype, name
        torch.testing.assert_close(ours, partials[k], rtol=tol, atol=tol, msg=name)


@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-12), (torch.float32, 1e-4)])
def test_cpp_tensor_interaction_equals_reference_with_first_and_second_gradients(dtype: torch.dtype, tol: float) -> None:
    sense, basis, features, first, second = random_pairs(7, 40, 3, 5, 2, dtype)
    weights = torch.randn(15, 6, generator=torch.Generator().manual_seed(5), dtype=torch.float64).to(dtype)
    results = {}
    for implementation in ("torch", "cpp"):
        leaves = [t.detach().clone().requires_grad_(True) for t in (sense, basis, features, weights)]
        out = tensor_interaction(*leaves[:3], leaves[3], first, second, implementation)
        cotangent = torch.randn(out.shape, generator=torch.Generator().manual_seed(9), dtype=torch.float64).to(dtype)
        grads = torch.autograd.grad((out * cotangent).sum(), leaves, create_graph=True)
        second_order = torch.autograd.grad(sum((g * g).sum() for g in grads), leaves)
        results[implementation] = [out, *grads, *second_order]
    for ours, ref in zip(results["cpp"], results["torch"]):
        torch.testing.assert_close(ours, ref, rtol=tol, atol=tol * float(ref.abs().max()))


def test_cpp_tensorsum_gradcheck() -> None:
    sense, basis, _, first, second = random_pairs(4, 9, 2, 3, 1, torch.float64, seed=4)
    values = torch.randn(4, 2, 3, dtype=torch.float64)
    leaves = tuple(t.requires_grad_(True) for t in (sense, basis, values))

    def fn(s, b, v):
        return torch.ops.metamlip.tensorsum(s, b, v, first, second)

    assert torch.autograd.gradcheck(fn, leaves)
    assert torch.autograd.gradgradcheck(fn, leaves)


def test_cpp_tensorsum_refuses_bad_input() -> None:
    sense, basis, _, first, second = random_pairs(4, 9, 2, 3, 1, torch.float64)
    with pytest.raises(RuntimeError, match="shapes do not match"):
        torch.ops.metamlip.tensorsum(sense, basis, torch.zeros(4, 3, 5, dtype=torch.float64), first, second)
    with pytest.raises(RuntimeError, match="pair indices must lie in"):
        torch.ops.metamlip.tensorsum(sense, basis, torch.zeros(2, 2, 5, dtype=torch.float64), first, second)


def test_checkpoints_without_tensor_order_load_as_hipnn() -> None:
    from model_helpers import small_potential

    from metamlip.nn.build import potential_from_dict, potential_to_dict

    values = potential_to_dict(small_potential(seed=3))
    assert values["architecture"].pop("tensor_order") == 0
    loaded = potential_from_dict(values)
    assert loaded.hipnn.tensor_order == 0 and loaded.architecture["tensor_order"] == 0
    assert all(block.interaction.tensor is None for block in loaded.hipnn.blocks)
