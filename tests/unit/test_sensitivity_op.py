"""The fused sensitivity op (torch.ops.metamlip.sensitivity) against the Python formula it
replaces in exported models: values and forces (first derivatives), refusals of what it does
not compute."""

from __future__ import annotations

import pytest
import torch

from metamlip.nn.sensitivity import InverseGaussianSensitivity

CUTOFF = 5.0


def fixed_sensitivity(dtype: torch.dtype, seed: int = 0) -> InverseGaussianSensitivity:
    """20 sensitivities with perturbed centres and widths, parameters fixed (as exported)."""
    torch.manual_seed(seed)
    module = InverseGaussianSensitivity(20, 0.75, 4.0, CUTOFF).to(dtype)
    with torch.no_grad():
        module.mu.mul_(1 + 0.05 * torch.randn_like(module.mu))
        module.sigma.mul_(1 + 0.05 * torch.randn_like(module.sigma))
    return module.requires_grad_(False)


def distances(dtype: torch.dtype) -> torch.Tensor:
    """Typical distances, very short ones (capped exponents), the cutoff itself and beyond."""
    r = torch.cat([torch.linspace(0.02, 6.0, 997, dtype=torch.float64), torch.tensor([CUTOFF, 0.3, 7.0])])
    return r.to(dtype).requires_grad_(True)


@pytest.mark.parametrize("dtype, tolerance", [(torch.float64, 1e-12), (torch.float32, 2e-6)])
def test_values_and_forces_equal_the_formula(dtype, tolerance):
    module = fixed_sensitivity(dtype)
    r = distances(dtype)
    reference, fused = module(r), module(r, fused=True)
    assert fused.grad_fn is not None and fused.shape == reference.shape == (len(r), 20)
    torch.testing.assert_close(fused, reference, rtol=tolerance, atol=tolerance)
    weights = torch.randn_like(reference)
    (expected,) = torch.autograd.grad(reference, r, weights)
    (grad,) = torch.autograd.grad(fused, r, weights)
    scale = float(expected.abs().max())
    torch.testing.assert_close(grad, expected, rtol=0, atol=tolerance * scale)
    assert bool((fused[r.detach() >= CUTOFF] == 0).all()) and bool((grad[r.detach() >= CUTOFF] == 0).all())


def test_gradcheck():
    module = fixed_sensitivity(torch.float64, seed=1)
    r = torch.linspace(0.6, 4.9, 40, dtype=torch.float64).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda x: module(x, fused=True), (r,))


def test_trainable_parameters_use_the_formula():
    module = InverseGaussianSensitivity(8, 0.75, 4.0, CUTOFF).double()
    r = distances(torch.float64)
    out = module(r, fused=True)
    (grad_mu,) = torch.autograd.grad(out.sum(), module.mu)  # the formula: mu gets its gradient
    assert grad_mu.shape == (8,)


def test_refuses_what_it_does_not_compute():
    module = fixed_sensitivity(torch.float64)
    r = distances(torch.float64)
    mu = module.mu.clone().requires_grad_(True)
    out = torch.ops.metamlip.sensitivity(r, mu, module.sigma, CUTOFF)
    with pytest.raises(RuntimeError, match="no gradient for mu and sigma"):
        torch.autograd.grad(out.sum(), mu)
    out = module(r, fused=True)
    with pytest.raises(RuntimeError, match="second derivatives are not implemented"):
        torch.autograd.grad(out.sum(), r, create_graph=True)
    with pytest.raises(RuntimeError, match="dtypes differ"):
        torch.ops.metamlip.sensitivity(r.detach(), module.mu.float(), module.sigma, CUTOFF)
    with pytest.raises(RuntimeError, match="cutoff must be positive"):
        torch.ops.metamlip.sensitivity(r.detach(), module.mu, module.sigma, 0.0)
