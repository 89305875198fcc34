// Launchers of the CUDA kernels (csrc/cuda/*.cu): plain CUDA C++, no torch.
//
// The torch wrapper (csrc/cuda/register_cuda.cpp) allocates every array, checks the input and
// passes raw device pointers and its current stream. Every launcher returns the launch error
// (cudaSuccess when the kernels were queued). Lengths in Angstrom; indices int64.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "metamlip/cell_grid.h"

namespace metamlip {
namespace cuda {

// ---------------------------------------------------------------------------------------------
// Neighbour list (same cell-list algorithm and output order as csrc/cpu/neighbor_list.cpp).

/// Fractional coordinates of every atom in its molecule's effective cell, wrapped into [0, 1)
/// along periodic directions. x [n, 3]; molecule [n] (null: all in molecule 0); cells: one
/// per molecule, or one shared (shared_cell). Writes frac [n, 3], image [n, 3] (the periodic
/// image each atom was wrapped from), wrapped [n, 3] = x - image @ cell rows, and sets
/// *far_away to 1 when an atom lies 2^30 cells or more from the origin.
cudaError_t wrap_positions(cudaStream_t stream, int64_t n, const double* x, const int64_t* molecule,
                           const grid::Cell* cells, bool shared_cell, double* frac, int64_t* image,
                           double* wrapped, int* far_away);

/// Bin coordinates bin [n, 3] and global bin index global_bin [n] of every atom.
cudaError_t bin_positions(cudaStream_t stream, int64_t n, const double* frac, const int64_t* molecule,
                          const grid::Grid* grids, int64_t* bin, int64_t* global_bin);

/// Atoms binned and sorted by global bin (device arrays), with their molecules' cells and grids.
struct BinnedDevice {
  int64_t n_atoms;
  double cutoff;
  bool full_list;
  bool shared_cell;
  const int64_t* molecule;    ///< [n] or null
  const grid::Cell* cells;    ///< per molecule, or one (shared_cell)
  const grid::Grid* grids;    ///< per molecule
  const double* wrapped;      ///< [n, 3] wrapped positions, atom order
  const int64_t* image;       ///< [n, 3]
  const int64_t* bin;         ///< [n, 3]
  const int64_t* bin_start;   ///< [bins + 1] start of each global bin in sorted order
  const int64_t* sorted_atom; ///< [n] atom index sorted by global bin (stable)
  const double* sorted_wrapped;  ///< [n, 3] wrapped positions in sorted order
};

/// count[i] = number of neighbours of atom i.
cudaError_t count_neighbors(cudaStream_t stream, const BinnedDevice& b, int64_t* count);

/// Writes the pairs of atom i at offsets[i] .. offsets[i] + count[i]: pair_i [P], pair_j [P],
/// shifts [P, 3], in the order of the CPU implementation.
cudaError_t fill_neighbors(cudaStream_t stream, const BinnedDevice& b, const int64_t* offsets,
                           int64_t* pair_i, int64_t* pair_j, int64_t* shifts);

/// vectors [P, 3] = x_j - x_i + S @ cell (cells [C, 3, 3] row vectors, C = 1 shared or one per
/// molecule via molecule[i]), distances [P] = |vectors|; x is float64, outputs T.
cudaError_t pair_vectors(cudaStream_t stream, int64_t n_pairs, const double* x, const int64_t* molecule,
                         const double* cells, bool shared_cell, const int64_t* pair_i,
                         const int64_t* pair_j, const int64_t* shifts, float* distances, float* vectors);
cudaError_t pair_vectors(cudaStream_t stream, int64_t n_pairs, const double* x, const int64_t* molecule,
                         const double* cells, bool shared_cell, const int64_t* pair_i,
                         const int64_t* pair_j, const int64_t* shifts, double* distances, double* vectors);

// ---------------------------------------------------------------------------------------------
// HIP-NN pair sums. P pairs, N atoms, S sensitivities, F features; grouped sums take the pairs
// grouped by atom: atom a owns positions offsets[a] .. offsets[a + 1] of `order` (pair index).
// Each output element is written by one thread (or warp), summing in group order: no atomics,
// deterministic.

/// env [N, S, F] = sum over the pairs p of atom i (grouped by pair_first) of
/// sense[p, :] (x) features[pair_second[p], :].
cudaError_t envsum(cudaStream_t stream, int64_t N, int64_t S, int64_t F, const float* sense,
                   const float* features, const int64_t* pair_second, const int64_t* offsets,
                   const int64_t* order, float* env);
cudaError_t envsum(cudaStream_t stream, int64_t N, int64_t S, int64_t F, const double* sense,
                   const double* features, const int64_t* pair_second, const int64_t* offsets,
                   const int64_t* order, double* env);

/// g [P, S] = sum_f env_grad[pair_first[p], s, f] * features[pair_second[p], f] (ungrouped).
cudaError_t sensesum(cudaStream_t stream, int64_t P, int64_t S, int64_t F, const float* env_grad,
                     const float* features, const int64_t* pair_first, const int64_t* pair_second,
                     float* g);
cudaError_t sensesum(cudaStream_t stream, int64_t P, int64_t S, int64_t F, const double* env_grad,
                     const double* features, const int64_t* pair_first, const int64_t* pair_second,
                     double* g);

/// h [N, F] = sum over the pairs p with second index j (grouped by pair_second) of
/// sum_s env_grad[pair_first[p], s, :] * sense[p, s].
cudaError_t featsum(cudaStream_t stream, int64_t N, int64_t S, int64_t F, const float* env_grad,
                    const float* sense, const int64_t* pair_first, const int64_t* offsets,
                    const int64_t* order, float* h);
cudaError_t featsum(cudaStream_t stream, int64_t N, int64_t S, int64_t F, const double* env_grad,
                    const double* sense, const int64_t* pair_first, const int64_t* offsets,
                    const int64_t* order, double* h);

// ---------------------------------------------------------------------------------------------
// HIP-NN inverse-Gaussian sensitivities (csrc/cpu/sensitivity.cpp), P pairs, S sensitivities.

/// pi, as M_PI (which CUDA device code cannot rely on).
constexpr double kPi = 3.14159265358979323846;

/// out [P, S] = exp(-min((1/r_p - mu_k)^2 / (2 sigma_k^2), 60)) * cos^2(pi r_p / (2 cutoff)) for
/// r_p < cutoff, else 0. distances [P], mu [S], sigma [S].
cudaError_t sensitivity(cudaStream_t stream, int64_t P, int64_t S, const float* distances, const float* mu,
                        const float* sigma, double cutoff, float* out);
cudaError_t sensitivity(cudaStream_t stream, int64_t P, int64_t S, const double* distances, const double* mu,
                        const double* sigma, double cutoff, double* out);

/// out [P] = sum_k grad[p, k] * d sense[p, k] / d r_p, given the forward's output sense [P, S].
cudaError_t sensitivity_backward(cudaStream_t stream, int64_t P, int64_t S, const float* grad,
                                 const float* sense, const float* distances, const float* mu,
                                 const float* sigma, double cutoff, float* out);
cudaError_t sensitivity_backward(cudaStream_t stream, int64_t P, int64_t S, const double* grad,
                                 const double* sense, const double* distances, const double* mu,
                                 const double* sigma, double cutoff, double* out);

// ---------------------------------------------------------------------------------------------
// HIP-NN-TS pair sums (csrc/cuda/tensorsums.cu; the same four ops as csrc/cpu/tensorsums.cpp):
// sense [P, S], basis [P, C], values [N, S, O], grad [N, C, O]; C <= kMaxTensorComponents and
// O * 4 * sizeof(T) <= 48 kB, else cudaErrorInvalidValue. Grouped as the pair sums above.

constexpr int kMaxTensorComponents = 9;  ///< tensor basis size for tensor order 2

#define METAMLIP_DECLARE_TENSORSUMS(T)                                                                 \
  /** out [N, C, O] = sum over the pairs p of atom i (grouped by pair_first) of                      \
      basis[p, c] sum_v sense[p, v] values[pair_second[p], v, o]. */                                   \
  cudaError_t tensorsum(cudaStream_t stream, int64_t N, int64_t S, int64_t C, int64_t O, const T* sense, \
                        const T* basis, const T* values, const int64_t* pair_second,                    \
                        const int64_t* offsets, const int64_t* order, T* out);                          \
  /** out [N, S, O] = sum over the pairs p with second index j (grouped by pair_second) of             \
      sense[p, v] sum_c basis[p, c] grad[pair_first[p], c, o]. */                                      \
  cudaError_t tensorsum_values(cudaStream_t stream, int64_t N, int64_t S, int64_t C, int64_t O,        \
                               const T* grad, const T* sense, const T* basis, const int64_t* pair_first, \
                               const int64_t* offsets, const int64_t* order, T* out);                   \
  /** out [P, S] = sum_{c, o} grad[pair_first[p], c, o] basis[p, c] values[pair_second[p], v, o]. */   \
  cudaError_t tensorsum_sense(cudaStream_t stream, int64_t P, int64_t S, int64_t C, int64_t O,         \
                              const T* grad, const T* basis, const T* values, const int64_t* pair_first, \
                              const int64_t* pair_second, T* out);                                      \
  /** out [P, C] = sum_{v, o} grad[pair_first[p], c, o] sense[p, v] values[pair_second[p], v, o]. */   \
  cudaError_t tensorsum_basis(cudaStream_t stream, int64_t P, int64_t S, int64_t C, int64_t O,         \
                              const T* grad, const T* sense, const T* values, const int64_t* pair_first, \
                              const int64_t* pair_second, T* out);
METAMLIP_DECLARE_TENSORSUMS(float)
METAMLIP_DECLARE_TENSORSUMS(double)
#undef METAMLIP_DECLARE_TENSORSUMS

}  // namespace cuda
}  // namespace metamlip
