// Input validation of metamlip::neighbor_list, shared by the CPU and CUDA implementations.
#include <cmath>

#include "metamlip/ops.h"

namespace metamlip {

NeighborQuery check_neighbor_query(const torch::Tensor& positions, double cutoff,
                                   const std::optional<torch::Tensor>& cell,
                                   const std::optional<torch::Tensor>& pbc,
                                   const std::optional<torch::Tensor>& batch, bool full_list,
                                   bool return_vectors) {
  constexpr const char* op = "metamlip::neighbor_list: ";
  TORCH_CHECK(positions.dim() == 2 && positions.size(1) == 3, op,
              "positions must have shape [N, 3], got ", positions.sizes());
  TORCH_CHECK(positions.is_floating_point(), op, "positions must be floating point, got ",
              positions.scalar_type());
  TORCH_CHECK(std::isfinite(cutoff) && cutoff > 0.0, op,
              "cutoff must be a positive finite number, got ", cutoff);
  TORCH_CHECK(positions.size(0) < (int64_t(1) << 31), op, "at most 2^31 - 1 atoms are supported");
  TORCH_CHECK(torch::isfinite(positions).all().item<bool>(), op,
              "positions contain NaN or infinite values");

  NeighborQuery q;
  q.n_atoms = positions.size(0);
  q.cutoff = cutoff;
  q.full_list = full_list;
  q.return_vectors = return_vectors;
  q.n_molecules = q.n_atoms > 0 ? 1 : 0;
  if (batch.has_value() && batch->defined()) {
    const auto& b = *batch;
    TORCH_CHECK(b.dim() == 1 && b.size(0) == q.n_atoms, op, "batch must have shape [N] = [",
                q.n_atoms, "], got ", b.sizes());
    TORCH_CHECK(!b.is_floating_point() && !b.is_complex(), op,
                "batch must hold integer molecule indices, got ", b.scalar_type());
    TORCH_CHECK(b.device() == positions.device(), op, "batch is on ", b.device(),
                " but positions are on ", positions.device());
    if (q.n_atoms > 0) {
      auto extremes = torch::aminmax(b.to(torch::kInt64));
      const int64_t lowest = std::get<0>(extremes).item<int64_t>();
      TORCH_CHECK(lowest >= 0, op, "batch (molecule index per atom) must be >= 0, got ", lowest);
      q.n_molecules = std::get<1>(extremes).item<int64_t>() + 1;
    }
  }

  if (pbc.has_value() && pbc->defined()) {
    const auto& p = *pbc;
    TORCH_CHECK((p.dim() == 1 && p.size(0) == 3) || (p.dim() == 2 && p.size(1) == 3), op,
                "pbc must have shape [3] or [molecules, 3], got ", p.sizes());
    q.pbc = p.to(torch::kCPU).to(torch::kBool).reshape({-1, 3}).contiguous();
    TORCH_CHECK(q.pbc.size(0) == 1 || q.pbc.size(0) >= q.n_molecules, op, "pbc has ",
                q.pbc.size(0), " rows but batch has ", q.n_molecules, " molecules");
  } else {
    q.pbc = torch::zeros({1, 3}, torch::kBool);
  }
  const bool any_periodic = q.pbc.any().item<bool>();

  if (cell.has_value() && cell->defined()) {
    const auto& c = *cell;
    TORCH_CHECK((c.dim() == 2 && c.size(0) == 3 && c.size(1) == 3) ||
                    (c.dim() == 3 && c.size(1) == 3 && c.size(2) == 3),
                op, "cell must have shape [3, 3] or [molecules, 3, 3], got ", c.sizes());
    TORCH_CHECK(c.is_floating_point(), op, "cell must be floating point, got ", c.scalar_type());
    q.cells = c.detach().to(torch::kCPU, torch::kFloat64).reshape({-1, 3, 3}).contiguous();
    TORCH_CHECK(q.cells.size(0) == 1 || q.cells.size(0) >= q.n_molecules, op, "cell has ",
                q.cells.size(0), " matrices but batch has ", q.n_molecules, " molecules");
    TORCH_CHECK(torch::isfinite(q.cells).all().item<bool>(), op,
                "cell contains NaN or infinite values");
  } else {
    TORCH_CHECK(!any_periodic, op, "pbc is set along some direction but no cell was given");
    q.cells = torch::zeros({1, 3, 3}, torch::kFloat64);
  }
  return q;
}

}  // namespace metamlip
