// Declarations of the metamlip op implementations (CPU; CUDA beside them when built).
#pragma once

#include <torch/torch.h>

#include <tuple>

namespace metamlip {

/// All pairs (i, j), i != j, of atoms in the same molecule closer than `cutoff`.
/// positions: [N, 3] float; batch: [N] int64 molecule index per atom.
/// Returns (i [P], j [P]) int64, both directions, ordered by i then j. Non-periodic, O(N^2).
std::tuple<torch::Tensor, torch::Tensor> brute_force_pairs_cpu(
    const torch::Tensor& positions, double cutoff, const torch::Tensor& batch);

}  // namespace metamlip
