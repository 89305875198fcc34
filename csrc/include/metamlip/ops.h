// Declarations of the metamlip op implementations (CPU; CUDA beside them when built).
//
// Schemas are declared once, in register.cpp. Units: Angstrom.
#pragma once

#include <torch/torch.h>

#include <optional>
#include <tuple>

namespace metamlip {

using NeighborResult =
    std::tuple<torch::Tensor, torch::Tensor, torch::Tensor, torch::Tensor, torch::Tensor>;

/// Validated neighbour-list query, shared by the CPU and CUDA implementations.
struct NeighborQuery {
  int64_t n_atoms = 0;
  int64_t n_molecules = 0;  ///< max(batch) + 1 (1 without batch; 0 without atoms)
  double cutoff = 0.0;
  /// [C, 3, 3] float64 CPU row vectors (zeros when absent), C = 1 (shared) or >= n_molecules.
  torch::Tensor cells;
  /// [C', 3] bool CPU, C' = 1 (shared) or >= n_molecules.
  torch::Tensor pbc;
  bool full_list = true;
  bool return_vectors = false;
};

/// Checks shapes, dtypes and values (NaN positions, cutoff <= 0, negative molecule index...)
/// and throws a c10::Error with an explanation for bad input.
NeighborQuery check_neighbor_query(const torch::Tensor& positions, double cutoff,
                                   const std::optional<torch::Tensor>& cell,
                                   const std::optional<torch::Tensor>& pbc,
                                   const std::optional<torch::Tensor>& batch, bool full_list,
                                   bool return_vectors);

/// Cell-list neighbour search. positions [N, 3]; cell [3, 3] or [M, 3, 3] row vectors;
/// pbc [3] or [M, 3] bool; batch [N] molecule index (no pairs across molecules).
/// Returns (i [P], j [P], S [P, 3] int64, distances [P], vectors [P, 3]) with
/// vectors = x_j - x_i + S @ cell and |vectors| < cutoff; pairs ordered by i. Distances and
/// vectors are empty unless return_vectors (they carry no autograd history).
NeighborResult neighbor_list_cpu(const torch::Tensor& positions, double cutoff,
                                 const std::optional<torch::Tensor>& cell,
                                 const std::optional<torch::Tensor>& pbc,
                                 const std::optional<torch::Tensor>& batch, bool full_list,
                                 bool return_vectors);

// HIP-NN pair sums. sense [P, S], features [N, F], env [N, S, F], pair_first/second [P] int64.

/// env[i, s, f] = sum over pairs p = (i, j) of sense[p, s] * features[j, f]  -> [N, S, F].
torch::Tensor envsum_cpu(const torch::Tensor& sense, const torch::Tensor& features,
                         const torch::Tensor& pair_first, const torch::Tensor& pair_second);
/// g[p, s] = sum_f env_grad[i_p, s, f] * features[j_p, f]  -> [P, S].
torch::Tensor sensesum_cpu(const torch::Tensor& env_grad, const torch::Tensor& features,
                           const torch::Tensor& pair_first, const torch::Tensor& pair_second);
/// h[j, f] = sum over pairs p with second index j of sum_s env_grad[i_p, s, f] * sense[p, s].
torch::Tensor featsum_cpu(const torch::Tensor& env_grad, const torch::Tensor& sense,
                          const torch::Tensor& pair_first, const torch::Tensor& pair_second);

/// HIP-NN inverse-Gaussian sensitivities (python/metamlip/nn/sensitivity.py) in one pass:
/// distances [P], mu [S], sigma [S] (1/Angstrom), cutoff (Angstrom) -> [P, S].
torch::Tensor sensitivity_cpu(const torch::Tensor& distances, const torch::Tensor& mu,
                              const torch::Tensor& sigma, double cutoff);
/// Gradient of sensitivity with respect to the distances, sum_k grad[p, k] ds[p, k]/dr_p -> [P],
/// given the forward's output sense [P, S].
torch::Tensor sensitivity_backward_cpu(const torch::Tensor& grad, const torch::Tensor& sense,
                                       const torch::Tensor& distances, const torch::Tensor& mu,
                                       const torch::Tensor& sigma, double cutoff);

// HIP-NN-TS pair sums (csrc/cpu/tensorsums.cpp): the partial derivatives of
// T(G, s, t, V) = sum_p sum_{c,v,o} G[i_p, c, o] t[p, c] s[p, v] V[j_p, v, o] with grad G [N, C, O],
// sense s [P, S], tensor basis t [P, C], values V [N, S, O] (input features times weights).
/// dT/dG: out[i, c, o] = sum_{p = (i, j)} t[p, c] sum_v s[p, v] V[j, v, o]  -> [N, C, O].
torch::Tensor tensorsum_cpu(const torch::Tensor& sense, const torch::Tensor& basis,
                            const torch::Tensor& values, const torch::Tensor& pair_first,
                            const torch::Tensor& pair_second);
/// dT/ds: out[p, v] = sum_{c, o} G[i_p, c, o] t[p, c] V[j_p, v, o]  -> [P, S].
torch::Tensor tensorsum_sense_cpu(const torch::Tensor& grad, const torch::Tensor& basis,
                                  const torch::Tensor& values, const torch::Tensor& pair_first,
                                  const torch::Tensor& pair_second);
/// dT/dt: out[p, c] = sum_{v, o} G[i_p, c, o] s[p, v] V[j_p, v, o]  -> [P, C].
torch::Tensor tensorsum_basis_cpu(const torch::Tensor& grad, const torch::Tensor& sense,
                                  const torch::Tensor& values, const torch::Tensor& pair_first,
                                  const torch::Tensor& pair_second);
/// dT/dV: out[j, v, o] = sum_{p: j_p = j} s[p, v] sum_c t[p, c] G[i_p, c, o]  -> [N, S, O].
torch::Tensor tensorsum_values_cpu(const torch::Tensor& grad, const torch::Tensor& sense,
                                   const torch::Tensor& basis, const torch::Tensor& pair_first,
                                   const torch::Tensor& pair_second);
/// Shape, dtype and device checks of sensitivity / sensitivity_backward (CPU and CUDA); `what`
/// names the op.
void check_sensitivity(const char* what, const torch::Tensor& distances, const torch::Tensor& mu,
                       const torch::Tensor& sigma, double cutoff);
void check_sensitivity_backward(const torch::Tensor& grad, const torch::Tensor& sense,
                                const torch::Tensor& distances, const torch::Tensor& mu,
                                const torch::Tensor& sigma, double cutoff);

/// Dtype, device and index-range checks shared by all pair-sum implementations; `what` names
/// the op, a and b are its floating-point inputs, indices must lie in [0, n_atoms).
void check_pair_sum(const char* what, const torch::Tensor& a, const torch::Tensor& b,
                    int64_t n_atoms, const torch::Tensor& pair_first,
                    const torch::Tensor& pair_second);

/// Autograd-aware pair sums (dispatcher calls): what the autograd kernels' backwards use.
torch::Tensor envsum(const torch::Tensor& sense, const torch::Tensor& features,
                     const torch::Tensor& pair_first, const torch::Tensor& pair_second);
torch::Tensor sensesum(const torch::Tensor& env_grad, const torch::Tensor& features,
                       const torch::Tensor& pair_first, const torch::Tensor& pair_second);
torch::Tensor featsum(const torch::Tensor& env_grad, const torch::Tensor& sense,
                      const torch::Tensor& pair_first, const torch::Tensor& pair_second);

}  // namespace metamlip
