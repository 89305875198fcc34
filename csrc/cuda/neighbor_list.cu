// CUDA cell-list neighbour search: the algorithm of csrc/cpu/neighbor_list.cpp, one thread per
// atom. The torch wrapper (register_cuda.cpp) builds cells and grids on the host (cell_grid.h),
// sorts the atoms by bin, and runs the search twice: count, then fill at prefix-sum offsets.
// The pairs come out ordered by i, then in the CPU search order (same stencil order, same
// stable bin sort), so CPU and CUDA results are identical.
#include "metamlip/cuda_kernels.h"

namespace metamlip {
namespace cuda {
namespace {

constexpr int kThreads = 128;

int blocks_for(int64_t n) { return int((n + kThreads - 1) / kThreads); }

__global__ void wrap_kernel(int64_t n, const double* x, const int64_t* molecule,
                            const grid::Cell* cells, bool shared_cell, double* frac, int64_t* image,
                            double* wrapped, int* far_away) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n) return;
  const grid::Cell& c = cells[shared_cell || molecule == nullptr ? 0 : molecule[i]];
  const double* xi = x + 3 * i;
  double wrap[3] = {0.0, 0.0, 0.0};
  for (int k = 0; k < 3; ++k) {
    double s = xi[0] * c.inverse[0][k] + xi[1] * c.inverse[1][k] + xi[2] * c.inverse[2][k];
    int64_t w = 0;
    if (c.periodic[k]) {
      wrap[k] = floor(s);
      if (!(fabs(wrap[k]) < double(1 << 30))) {
        *far_away = 1;
        wrap[k] = 0.0;
      }
      s -= wrap[k];
      w = int64_t(wrap[k]);
    }
    frac[3 * i + k] = s;
    image[3 * i + k] = w;
  }
  for (int a = 0; a < 3; ++a) {
    wrapped[3 * i + a] = xi[a] - (wrap[0] * c.rows[0][a] + wrap[1] * c.rows[1][a] + wrap[2] * c.rows[2][a]);
  }
}

__global__ void bin_kernel(int64_t n, const double* frac, const int64_t* molecule,
                           const grid::Grid* grids, int64_t* bin, int64_t* global_bin) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n) return;
  const grid::Grid& g = grids[molecule == nullptr ? 0 : molecule[i]];
  int64_t* c = bin + 3 * i;
  for (int k = 0; k < 3; ++k) c[k] = grid::bin_of(g, k, frac[3 * i + k]);
  global_bin[i] = g.first_bin + (c[0] * g.bins[1] + c[1]) * g.bins[2] + c[2];
}

/// Calls visit(j, shift) for every neighbour of atom i, in the CPU search order.
template <typename Visit>
__device__ void search_atom(const BinnedDevice& b, int64_t i, Visit& visit) {
  const int64_t m = b.molecule == nullptr ? 0 : b.molecule[i];
  const grid::Cell& c = b.cells[b.shared_cell ? 0 : m];
  const grid::Grid& g = b.grids[m];
  const double rc2 = b.cutoff * b.cutoff;
  const double* pi = b.wrapped + 3 * i;
  const int64_t* ci = b.bin + 3 * i;
  const int64_t* wi = b.image + 3 * i;
  grid::for_each_stencil_run(c, g, ci, pi, [&](int64_t bin_begin, int64_t bin_end, const double* rel,
                                                const int64_t* image) {
    const bool own_image = image[0] == 0 && image[1] == 0 && image[2] == 0;
    for (int64_t slot = b.bin_start[bin_begin]; slot < b.bin_start[bin_end]; ++slot) {
      const double* xs = b.sorted_wrapped + 3 * slot;
      const double dx = xs[0] + rel[0], dy = xs[1] + rel[1], dz = xs[2] + rel[2];
      if (dx * dx + dy * dy + dz * dz >= rc2) continue;
      const int64_t j = b.sorted_atom[slot];
      if (own_image && j == i) continue;
      const int64_t* wj = b.image + 3 * j;
      int64_t shift[3];
      for (int k = 0; k < 3; ++k) shift[k] = image[k] + wi[k] - wj[k];
      if (!b.full_list && !grid::half_list_keeps(i, j, shift)) continue;
      visit(j, shift);
    }
  });
}

struct Counter {
  int64_t n = 0;
  __device__ void operator()(int64_t, const int64_t*) { ++n; }
};

struct Writer {
  int64_t i, p;
  int64_t* pair_i;
  int64_t* pair_j;
  int64_t* shifts;
  __device__ void operator()(int64_t j, const int64_t* shift) {
    pair_i[p] = i;
    pair_j[p] = j;
    for (int k = 0; k < 3; ++k) shifts[3 * p + k] = shift[k];
    ++p;
  }
};

__global__ void count_kernel(BinnedDevice b, int64_t* count) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= b.n_atoms) return;
  Counter counter;
  search_atom(b, i, counter);
  count[i] = counter.n;
}

__global__ void fill_kernel(BinnedDevice b, const int64_t* offsets, int64_t* pair_i, int64_t* pair_j,
                            int64_t* shifts) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= b.n_atoms) return;
  Writer writer{i, offsets[i], pair_i, pair_j, shifts};
  search_atom(b, i, writer);
}

template <typename T>
__global__ void vectors_kernel(int64_t n_pairs, const double* x, const int64_t* molecule,
                               const double* cells, bool shared_cell, const int64_t* pair_i,
                               const int64_t* pair_j, const int64_t* shifts, T* distances, T* vectors) {
  const int64_t p = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (p >= n_pairs) return;
  const int64_t i = pair_i[p], j = pair_j[p];
  const double* h = cells + 9 * (shared_cell || molecule == nullptr ? 0 : molecule[i]);
  const int64_t* s = shifts + 3 * p;
  double d2 = 0.0;
  for (int a = 0; a < 3; ++a) {
    const double shift = double(s[0]) * h[a] + double(s[1]) * h[3 + a] + double(s[2]) * h[6 + a];
    const double v = x[3 * j + a] - x[3 * i + a] + shift;
    vectors[3 * p + a] = T(v);
    d2 += v * v;
  }
  distances[p] = T(sqrt(d2));
}

template <typename T>
cudaError_t launch_vectors(cudaStream_t stream, int64_t n_pairs, const double* x, const int64_t* molecule,
                           const double* cells, bool shared_cell, const int64_t* pair_i,
                           const int64_t* pair_j, const int64_t* shifts, T* distances, T* vectors) {
  if (n_pairs == 0) return cudaSuccess;
  vectors_kernel<T><<<blocks_for(n_pairs), kThreads, 0, stream>>>(n_pairs, x, molecule, cells, shared_cell,
                                                                   pair_i, pair_j, shifts, distances, vectors);
  return cudaGetLastError();
}

}  // namespace

cudaError_t wrap_positions(cudaStream_t stream, int64_t n, const double* x, const int64_t* molecule,
                           const grid::Cell* cells, bool shared_cell, double* frac, int64_t* image,
                           double* wrapped, int* far_away) {
  if (n == 0) return cudaSuccess;
  wrap_kernel<<<blocks_for(n), kThreads, 0, stream>>>(n, x, molecule, cells, shared_cell, frac, image,
                                                      wrapped, far_away);
  return cudaGetLastError();
}

cudaError_t bin_positions(cudaStream_t stream, int64_t n, const double* frac, const int64_t* molecule,
                          const grid::Grid* grids, int64_t* bin, int64_t* global_bin) {
  if (n == 0) return cudaSuccess;
  bin_kernel<<<blocks_for(n), kThreads, 0, stream>>>(n, frac, molecule, grids, bin, global_bin);
  return cudaGetLastError();
}

cudaError_t count_neighbors(cudaStream_t stream, const BinnedDevice& b, int64_t* count) {
  if (b.n_atoms == 0) return cudaSuccess;
  count_kernel<<<blocks_for(b.n_atoms), kThreads, 0, stream>>>(b, count);
  return cudaGetLastError();
}

cudaError_t fill_neighbors(cudaStream_t stream, const BinnedDevice& b, const int64_t* offsets,
                           int64_t* pair_i, int64_t* pair_j, int64_t* shifts) {
  if (b.n_atoms == 0) return cudaSuccess;
  fill_kernel<<<blocks_for(b.n_atoms), kThreads, 0, stream>>>(b, offsets, pair_i, pair_j, shifts);
  return cudaGetLastError();
}

cudaError_t pair_vectors(cudaStream_t stream, int64_t n_pairs, const double* x, const int64_t* molecule,
                         const double* cells, bool shared_cell, const int64_t* pair_i,
                         const int64_t* pair_j, const int64_t* shifts, float* distances, float* vectors) {
  return launch_vectors(stream, n_pairs, x, molecule, cells, shared_cell, pair_i, pair_j, shifts, distances,
                        vectors);
}

cudaError_t pair_vectors(cudaStream_t stream, int64_t n_pairs, const double* x, const int64_t* molecule,
                         const double* cells, bool shared_cell, const int64_t* pair_i,
                         const int64_t* pair_j, const int64_t* shifts, double* distances, double* vectors) {
  return launch_vectors(stream, n_pairs, x, molecule, cells, shared_cell, pair_i, pair_j, shifts, distances,
                        vectors);
}

}  // namespace cuda
}  // namespace metamlip
