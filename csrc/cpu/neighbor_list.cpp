// CPU neighbour search.
#include "metamlip/ops.h"

#include <cmath>
#include <vector>

namespace metamlip {

std::tuple<torch::Tensor, torch::Tensor> brute_force_pairs_cpu(
    const torch::Tensor& positions, double cutoff, const torch::Tensor& batch) {
  TORCH_CHECK(positions.dim() == 2 && positions.size(1) == 3,
              "metamlip::brute_force_pairs: positions must have shape [N, 3], got ",
              positions.sizes());
  TORCH_CHECK(batch.dim() == 1 && batch.size(0) == positions.size(0),
              "metamlip::brute_force_pairs: batch must have shape [N] = [", positions.size(0),
              "], got ", batch.sizes());
  TORCH_CHECK(cutoff > 0.0 && std::isfinite(cutoff),
              "metamlip::brute_force_pairs: cutoff must be a positive finite number, got ", cutoff);
  TORCH_CHECK(torch::isfinite(positions).all().item<bool>(),
              "metamlip::brute_force_pairs: positions contain NaN or inf");
  auto pos = positions.detach().to(torch::kCPU, torch::kFloat64).contiguous();
  auto mol = batch.to(torch::kCPU, torch::kInt64).contiguous();
  const int64_t n = pos.size(0);
  const double* x = pos.data_ptr<double>();
  const int64_t* m = mol.data_ptr<int64_t>();
  const double rc2 = cutoff * cutoff;

  std::vector<int64_t> first, second;
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j < n; ++j) {
      if (i == j || m[i] != m[j]) continue;
      const double dx = x[3 * j] - x[3 * i];
      const double dy = x[3 * j + 1] - x[3 * i + 1];
      const double dz = x[3 * j + 2] - x[3 * i + 2];
      if (dx * dx + dy * dy + dz * dz < rc2) {
        first.push_back(i);
        second.push_back(j);
      }
    }
  }
  auto opts = torch::TensorOptions().dtype(torch::kInt64);
  auto i_t = torch::tensor(first, opts).to(positions.device());
  auto j_t = torch::tensor(second, opts).to(positions.device());
  return {i_t, j_t};
}

}  // namespace metamlip
