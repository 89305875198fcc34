"""TorchScript with the C++ ops: a scripted HIP-NN using metamlip::neighbor_list and the cpp pair
sums, saved and reloaded in a fresh process (as LAMMPS and OpenMM do), gives the energies and
forces of the eager PyTorch reference; its forces come from C++ autograd alone."""

from __future__ import annotations

import subprocess
import sys
from typing import List, Optional, Tuple

import pytest
import torch
from fixtures.structures import water_density_box
from model_helpers import SPECIES

from metamlip.nn.hipnn import HIPNN


class EnergyForces(torch.nn.Module):
    """(energy [] eV, forces [N, 3] eV/A) of one periodic structure; pairs from the C++ op."""

    def __init__(self, hipnn: HIPNN) -> None:
        super().__init__()
        self.hipnn = hipnn
        self.cutoff = hipnn.cutoff

    def forward(
        self, species: torch.Tensor, positions: torch.Tensor, cell: torch.Tensor, pbc: torch.Tensor
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        positions = positions.detach().requires_grad_(True)
        i, j, shifts, _, _ = torch.ops.metamlip.neighbor_list(positions, self.cutoff, cell, pbc, None, True, False)
        vectors = positions[j] - positions[i] + shifts.to(positions.dtype) @ cell
        energy = self.hipnn(species, torch.linalg.vector_norm(vectors, dim=1), i, j).sum()
        grads: List[Optional[torch.Tensor]] = torch.autograd.grad([energy], [positions])
        gradient = grads[0]
        assert gradient is not None
        return energy.detach(), -gradient


RELOAD = """
import sys
import torch
import metamlip.ops  # loads the op library, as the engines do before the model
model = torch.jit.load(sys.argv[1])
inputs = torch.load(sys.argv[2])
energy, forces = model(inputs["species"], inputs["positions"], inputs["cell"], inputs["pbc"])
torch.save({"energy": energy, "forces": forces}, sys.argv[3])
"""


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_scripted_cpp_model_reloaded_in_fresh_process(tmp_path, dtype):
    torch.manual_seed(0)
    hipnn = HIPNN(len(SPECIES), n_features=16, n_sensitivities=8, cutoff=4.0, soft_max=3.5).to(dtype)
    positions, cell = water_density_box(90, seed=3)
    inputs = {
        "species": torch.randint(0, len(SPECIES), (90,)),
        "positions": torch.tensor(positions - 2.0, dtype=dtype),  # some atoms outside the cell
        "cell": torch.tensor(cell, dtype=dtype),
        "pbc": torch.tensor([True, True, True]),
    }
    hipnn.set_implementation("torch")
    reference = EnergyForces(hipnn)(**inputs)
    hipnn.set_implementation("cpp")
    scripted = torch.jit.script(EnergyForces(hipnn))
    in_process = scripted(**inputs)
    scripted.save(str(tmp_path / "model.pt"))
    torch.save(inputs, tmp_path / "inputs.pt")
    subprocess.run(
        [sys.executable, "-c", RELOAD, str(tmp_path / "model.pt"), str(tmp_path / "inputs.pt"), str(tmp_path / "out.pt")],
        check=True,
        timeout=300,
    )
    reloaded = torch.load(tmp_path / "out.pt")
    rtol = 1e-10 if dtype == torch.float64 else 1e-4
    assert float(reference[1].abs().max()) > 1e-3  # real forces, not zeros
    for ours, theirs in ((in_process, reference), ((reloaded["energy"], reloaded["forces"]), reference)):
        torch.testing.assert_close(ours[0], theirs[0], rtol=rtol, atol=0.0)
        torch.testing.assert_close(ours[1], theirs[1], rtol=rtol, atol=rtol * float(theirs[1].abs().max()))
