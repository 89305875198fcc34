// CPU cell-list neighbour search (OpenMP), O(N) for a fixed density.
//
// 1. Effective cell and grid per molecule (cell_grid.h); every atom is wrapped into its cell
//    along periodic directions (integer image w_i) and put into a bin.
// 2. Atoms are counting-sorted by bin (stable, so the order is deterministic); what the search
//    reads is copied into bin order, so an atom's candidates are contiguous in memory.
// 3. The atoms are searched in bin order (neighbouring atoms share their candidate bins in
//    cache) twice, as on the GPU: once to count each atom's neighbours, then, at prefix-sum
//    offsets in atom order, to write the pairs straight into the outputs. The output is
//    ordered by i, then by the stencil order, whatever the number of threads.
#if defined(__x86_64__)
#include <emmintrin.h>
#endif

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "metamlip/cell_grid.h"
#include "metamlip/memory.h"
#include "metamlip/ops.h"
#include "metamlip/parallel.h"

namespace metamlip {
namespace {

using grid::Cell;
using grid::Grid;

/// Atoms binned, and sorted by bin: a slot is an atom's place in bin order.
struct BinnedAtoms {
  std::vector<Cell> cells;         // 1 shared, or one per molecule
  std::vector<Grid> grids;         // per molecule
  std::vector<int64_t> molecule;   // [N] per atom
  std::vector<int64_t> bin_start;  // [bins + 1] first slot of each global bin
  // Per slot:
  std::vector<int32_t> atom;             // [N] atom index
  std::vector<double> x, y, z;           // [N] wrapped positions
  std::vector<double> position;          // [N, 3] the caller's positions
  std::vector<int64_t> bin;              // [N, 3] bin coordinates in the molecule's grid
  std::vector<int32_t> image;            // [N, 3] periodic image the atom was wrapped from

  const Cell& cell_of(int64_t m) const { return cells[cells.size() == 1 ? 0 : m]; }
};

BinnedAtoms bin_atoms(const NeighborQuery& q, const double* x, const int64_t* batch) {
  constexpr const char* op = "metamlip::neighbor_list: ";
  const int64_t n = q.n_atoms, n_mol = q.n_molecules;
  BinnedAtoms b;
  b.molecule.assign(n, 0);
  if (batch != nullptr) std::copy(batch, batch + n, b.molecule.begin());
  std::vector<int64_t> atoms_in(n_mol, 0);
  for (int64_t i = 0; i < n; ++i) ++atoms_in[b.molecule[i]];

  // Effective cells: one per molecule (only molecules with atoms are checked).
  const int64_t n_cells = q.cells.size(0), n_pbc = q.pbc.size(0);
  const double* user_cells = q.cells.data_ptr<double>();
  const bool* user_pbc = q.pbc.data_ptr<bool>();
  const bool shared = n_cells == 1 && n_pbc == 1;
  b.cells.resize(shared ? 1 : n_mol);
  for (int64_t m = 0; m < int64_t(b.cells.size()); ++m) {
    if (!shared && atoms_in[m] == 0) continue;
    const double* c = user_cells + 9 * (n_cells == 1 ? 0 : m);
    const bool* p = user_pbc + 3 * (n_pbc == 1 ? 0 : m);
    const bool periodic[3] = {p[0], p[1], p[2]};
    const std::string error = grid::make_cell(c, periodic, b.cells[m]);
    TORCH_CHECK(error.empty(), op, error, shared ? std::string() : " (molecule " + std::to_string(m) + ")");
  }

  // Fractional coordinates, wrapped along periodic directions.
  std::vector<double> frac(3 * n), wrapped(3 * n);
  std::vector<int32_t> image(3 * n, 0);
  parallel_items((n + 4095) / 4096, [&](int64_t chunk) {
    for (int64_t i = chunk * 4096; i < std::min(n, (chunk + 1) * 4096); ++i) {
      const Cell& c = b.cell_of(b.molecule[i]);
      const double* xi = x + 3 * i;
      double wrap[3] = {0, 0, 0};
      for (int k = 0; k < 3; ++k) {
        double s = xi[0] * c.inverse[0][k] + xi[1] * c.inverse[1][k] + xi[2] * c.inverse[2][k];
        if (c.periodic[k]) {
          wrap[k] = std::floor(s);
          TORCH_CHECK(std::fabs(wrap[k]) < double(1 << 30), op, "atom ", i,
                      " lies more than 2^30 cells away from the origin");
          s -= wrap[k];
          image[3 * i + k] = int32_t(wrap[k]);
        }
        frac[3 * i + k] = s;
      }
      for (int a = 0; a < 3; ++a) {
        wrapped[3 * i + a] =
            xi[a] - (wrap[0] * c.rows[0][a] + wrap[1] * c.rows[1][a] + wrap[2] * c.rows[2][a]);
      }
    }
  });

  // Extent of every molecule along open directions, then its grid.
  std::vector<double> lo(3 * n_mol, INFINITY), hi(3 * n_mol, -INFINITY);
  for (int64_t i = 0; i < n; ++i) {
    const int64_t m = b.molecule[i];
    for (int k = 0; k < 3; ++k) {
      lo[3 * m + k] = std::min(lo[3 * m + k], frac[3 * i + k]);
      hi[3 * m + k] = std::max(hi[3 * m + k], frac[3 * i + k]);
    }
  }
  b.grids.resize(n_mol);
  int64_t total_bins = 0;
  for (int64_t m = 0; m < n_mol; ++m) {
    Grid& g = b.grids[m];
    if (atoms_in[m] == 0) {
      g.bins[0] = g.bins[1] = g.bins[2] = 0;
    } else {
      const std::string error =
          grid::make_grid(b.cell_of(m), &lo[3 * m], &hi[3 * m], atoms_in[m], q.cutoff, g);
      TORCH_CHECK(error.empty(), op, error);
    }
    g.first_bin = total_bins;
    total_bins += g.n_bins();
  }

  // Bins, then a stable counting sort of the atoms by global bin.
  std::vector<int64_t> bin(3 * n), global_bin(n);
  for (int64_t i = 0; i < n; ++i) {
    const Grid& g = b.grids[b.molecule[i]];
    int64_t* c = &bin[3 * i];
    for (int k = 0; k < 3; ++k) c[k] = grid::bin_of(g, k, frac[3 * i + k]);
    global_bin[i] = g.first_bin + (c[0] * g.bins[1] + c[1]) * g.bins[2] + c[2];
  }
  b.bin_start.assign(total_bins + 1, 0);
  for (int64_t i = 0; i < n; ++i) ++b.bin_start[global_bin[i] + 1];
  for (int64_t k = 0; k < total_bins; ++k) b.bin_start[k + 1] += b.bin_start[k];
  std::vector<int64_t> fill(b.bin_start.begin(), b.bin_start.end() - 1);
  b.atom.resize(n);
  b.x.resize(n);
  b.y.resize(n);
  b.z.resize(n);
  b.position.resize(3 * n);
  b.bin.resize(3 * n);
  b.image.resize(3 * n);
  for (int64_t i = 0; i < n; ++i) {
    const int64_t s = fill[global_bin[i]]++;
    b.atom[s] = int32_t(i);
    b.x[s] = wrapped[3 * i];
    b.y[s] = wrapped[3 * i + 1];
    b.z[s] = wrapped[3 * i + 2];
    for (int k = 0; k < 3; ++k) {
      b.position[3 * s + k] = x[3 * i + k];
      b.bin[3 * s + k] = bin[3 * i + k];
      b.image[3 * s + k] = image[3 * i + k];
    }
  }
  return b;
}

/// Calls visit(first, end, rel, image) for every run of candidate slots [first, end) of the
/// atom in slot s, in stencil order (grid::for_each_stencil_run in slots); the vector from the
/// atom to that image of candidate t is (x[t], y[t], z[t]) + rel.
template <typename Visit>
inline void for_each_candidate_run(const BinnedAtoms& b, int64_t s, Visit&& visit) {
  const int64_t m = b.molecule[b.atom[s]];
  const double xi[3] = {b.x[s], b.y[s], b.z[s]};
  grid::for_each_stencil_run(b.cell_of(m), b.grids[m], &b.bin[3 * s], xi,
                             [&](int64_t bin_begin, int64_t bin_end, const double* rel, const int64_t* image) {
                               visit(b.bin_start[bin_begin], b.bin_start[bin_end], rel, image);
                             });
}

/// |candidate t - atom|^2 < rc2, with `rel` from for_each_candidate_run.
inline bool within(const BinnedAtoms& b, int64_t t, const double* rel, double rc2) {
  const double dx = b.x[t] + rel[0], dy = b.y[t] + rel[1], dz = b.z[t] + rel[2];
  return dx * dx + dy * dy + dz * dz < rc2;
}

/// Calls visit(slot_j, shift[3]) for every neighbour of the atom in slot s, in stencil order.
/// Candidates are tested in blocks without branches; the hits are then visited in order.
template <typename Visit>
inline void for_each_neighbor(const BinnedAtoms& b, int64_t s, double cutoff, bool full_list, Visit&& visit) {
  constexpr int64_t kBlock = 64;
  const double rc2 = cutoff * cutoff;
  const int64_t i = b.atom[s];
  const int32_t* wi = &b.image[3 * s];
  for_each_candidate_run(b, s, [&](int64_t begin, int64_t end, const double* rel, const int64_t* image) {
    const bool own_image = image[0] == 0 && image[1] == 0 && image[2] == 0;
    for (int64_t first = begin; first < end; first += kBlock) {
      const int64_t last = std::min(end, first + kBlock);
      int64_t hit[kBlock], n_hits = 0;
      for (int64_t t = first; t < last; ++t) {
        hit[n_hits] = t;
        n_hits += within(b, t, rel, rc2);
      }
      for (int64_t h = 0; h < n_hits; ++h) {
        const int64_t t = hit[h];
        if (own_image && t == s) continue;
        const int32_t* wj = &b.image[3 * t];
        const int64_t shift[3] = {image[0] + wi[0] - wj[0], image[1] + wi[1] - wj[1], image[2] + wi[2] - wj[2]};
        if (!full_list && !grid::half_list_keeps(i, b.atom[t], shift)) continue;
        visit(t, shift);
      }
    }
  });
}

/// Number of neighbours of the atom in slot s in a full list: for_each_neighbor's count, as a
/// plain sum over the candidates (minus the atom itself, always found in its own bin).
inline int64_t count_full_list(const BinnedAtoms& b, int64_t s, double cutoff) {
  const double rc2 = cutoff * cutoff;
  int64_t count = -1;
  for_each_candidate_run(b, s, [&](int64_t begin, int64_t end, const double* rel, const int64_t*) {
    for (int64_t t = begin; t < end; ++t) count += within(b, t, rel, rc2);
  });
  return count;
}

/// Stores v at p bypassing the caches (the outputs are far larger than the caches, and nothing
/// reads them before the op returns); callers end with stream_fence(). Plain stores off x86.
template <typename T>
inline void stream(T* p, T v) {
  static_assert(sizeof(T) == 8 || sizeof(T) == 4, "8- or 4-byte values");
#if defined(__x86_64__)
  if constexpr (sizeof(T) == 8) {
    long long bits;
    std::memcpy(&bits, &v, 8);
    _mm_stream_si64(reinterpret_cast<long long*>(p), bits);
  } else {
    int bits;
    std::memcpy(&bits, &v, 4);
    _mm_stream_si32(reinterpret_cast<int*>(p), bits);
  }
#else
  *p = v;
#endif
}

/// Orders the streaming stores before whatever follows.
inline void stream_fence() {
#if defined(__x86_64__)
  _mm_sfence();
#endif
}

/// Pairs of the atoms in slots [begin, end), written at offset[i] onwards for each atom i:
/// i, j, S and (when `vectors` is not null) vectors x_j - x_i + S @ cell and their lengths.
template <typename scalar_t>
void write_pairs(const BinnedAtoms& b, const NeighborQuery& q, const int64_t* offset, int64_t begin,
                 int64_t end, int64_t* pair_i, int64_t* pair_j, int64_t* shifts, scalar_t* distances,
                 scalar_t* vectors) {
  const double* cells = q.cells.data_ptr<double>();
  const bool shared_cell = q.cells.size(0) == 1;
  for (int64_t s = begin; s < end; ++s) {
    const int64_t i = b.atom[s];
    const double* h = cells + 9 * (shared_cell ? 0 : b.molecule[i]);
    const double* xi = &b.position[3 * s];
    int64_t p = offset[i];
    for_each_neighbor(b, s, q.cutoff, q.full_list, [&](int64_t t, const int64_t* shift) {
      stream(pair_i + p, i);
      stream(pair_j + p, int64_t(b.atom[t]));
      for (int k = 0; k < 3; ++k) stream(shifts + 3 * p + k, shift[k]);
      if (vectors != nullptr) {
        const double* xj = &b.position[3 * t];
        double d2 = 0.0;
        for (int a = 0; a < 3; ++a) {
          const double lattice = double(shift[0]) * h[a] + double(shift[1]) * h[3 + a] + double(shift[2]) * h[6 + a];
          const double v = xj[a] - xi[a] + lattice;
          stream(vectors + 3 * p + a, scalar_t(v));
          d2 += v * v;
        }
        stream(distances + p, scalar_t(std::sqrt(d2)));
      }
      ++p;
    });
    TORCH_CHECK(p == offset[i + 1], "metamlip::neighbor_list: internal error: atom ", i, " has ",
                offset[i + 1] - offset[i], " neighbours when counted but ", p - offset[i], " when written");
  }
  stream_fence();
}

}  // namespace

NeighborResult neighbor_list_cpu(const torch::Tensor& positions, double cutoff,
                                 const std::optional<torch::Tensor>& cell,
                                 const std::optional<torch::Tensor>& pbc,
                                 const std::optional<torch::Tensor>& batch, bool full_list,
                                 bool return_vectors) {
  const NeighborQuery q =
      check_neighbor_query(positions, cutoff, cell, pbc, batch, full_list, return_vectors);
  TORCH_CHECK(positions.device().is_cpu(), "metamlip::neighbor_list (CPU) got positions on ",
              positions.device());
  const auto pos = positions.detach().to(torch::kFloat64).contiguous();
  torch::Tensor mol;
  if (batch.has_value() && batch->defined()) mol = batch->to(torch::kInt64).contiguous();
  const int64_t n = q.n_atoms;
  const BinnedAtoms b = bin_atoms(q, pos.data_ptr<double>(), mol.defined() ? mol.data_ptr<int64_t>() : nullptr);

  // Count every atom's neighbours (chunks of slots, i.e. of bins), then offsets in atom order.
  const int64_t chunk = chunk_size(n, 64, 64 * int64_t(at::get_num_threads()));
  const int64_t n_chunks = (n + chunk - 1) / chunk;
  std::vector<int64_t> offset(n + 1, 0);  // offset[i + 1]: neighbours of atom i, then prefix sums
  parallel_items(n_chunks, [&](int64_t k) {
    for (int64_t s = k * chunk; s < std::min(n, (k + 1) * chunk); ++s) {
      int64_t count = 0;
      if (q.full_list) {
        count = count_full_list(b, s, q.cutoff);
      } else {
        for_each_neighbor(b, s, q.cutoff, false, [&](int64_t, const int64_t*) { ++count; });
      }
      offset[b.atom[s] + 1] = count;
    }
  });
  for (int64_t i = 0; i < n; ++i) offset[i + 1] += offset[i];
  const int64_t n_pairs = offset[n];

  const auto index_options = torch::TensorOptions().dtype(torch::kInt64);
  const torch::Tensor i_out = empty_huge({n_pairs}, index_options);
  const torch::Tensor j_out = empty_huge({n_pairs}, index_options);
  const torch::Tensor s_out = empty_huge({n_pairs, 3}, index_options);
  const int64_t n_vectors = q.return_vectors ? n_pairs : 0;
  const torch::Tensor distances = empty_huge({n_vectors}, positions.options());
  const torch::Tensor vectors = empty_huge({n_vectors, 3}, positions.options());
  AT_DISPATCH_FLOATING_TYPES(vectors.scalar_type(), "metamlip::neighbor_list", [&] {
    scalar_t* d = q.return_vectors ? distances.data_ptr<scalar_t>() : nullptr;
    scalar_t* v = q.return_vectors ? vectors.data_ptr<scalar_t>() : nullptr;
    parallel_items(n_chunks, [&](int64_t k) {
      write_pairs<scalar_t>(b, q, offset.data(), k * chunk, std::min(n, (k + 1) * chunk),
                            i_out.data_ptr<int64_t>(), j_out.data_ptr<int64_t>(),
                            s_out.data_ptr<int64_t>(), d, v);
    });
  });
  return {i_out, j_out, s_out, distances, vectors};
}

}  // namespace metamlip
