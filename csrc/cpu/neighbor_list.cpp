// CPU cell-list neighbour search (OpenMP), O(N) for a fixed density.
//
// 1. Effective cell and grid per molecule (cell_grid.h); every atom is wrapped into its cell
//    along periodic directions (integer image w_i) and put into a bin.
// 2. Atoms are counting-sorted by bin (stable, so the order is deterministic).
// 3. Each chunk of consecutive atoms i searches the stencil of bins around i's bin into its
//    own buffer; chunks are concatenated in atom order, so the output is ordered by i and does
//    not depend on the number of threads.
#include <algorithm>
#include <cmath>
#include <vector>

#include "metamlip/cell_grid.h"
#include "metamlip/memory.h"
#include "metamlip/ops.h"
#include "metamlip/parallel.h"

namespace metamlip {
namespace {

using grid::Cell;
using grid::Grid;

/// One found neighbour of the atom being searched: j and the cell shift S.
struct Found {
  int32_t j;
  int32_t shift[3];
};

/// Atoms binned and sorted by bin, with what the search needs in sorted order.
struct BinnedAtoms {
  std::vector<Cell> cells;           // per cell row of the query (1 shared or per molecule)
  std::vector<Grid> grids;           // per molecule
  std::vector<int64_t> molecule;     // per atom
  std::vector<int64_t> image;        // [N, 3] periodic image the atom was wrapped from
  std::vector<int64_t> bin;          // [N, 3] bin coordinates within the molecule's grid
  std::vector<int64_t> bin_start;    // [bins + 1] start of each global bin in sorted order
  std::vector<int32_t> sorted_atom;  // [N] atom index, sorted by global bin
  std::vector<double> sorted_x, sorted_y, sorted_z;  // wrapped positions, sorted by bin
  std::vector<double> wrapped;       // [N, 3] wrapped positions in atom order
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
  auto cell_of = [&](int64_t m) -> const Cell& { return b.cells[shared ? 0 : m]; };

  // Fractional coordinates, wrapped along periodic directions.
  std::vector<double> frac(3 * n);
  b.image.assign(3 * n, 0);
  b.wrapped.assign(3 * n, 0.0);
  parallel_items((n + 4095) / 4096, [&](int64_t chunk) {
    for (int64_t i = chunk * 4096; i < std::min(n, (chunk + 1) * 4096); ++i) {
      const Cell& c = cell_of(b.molecule[i]);
      const double* xi = x + 3 * i;
      double wrap[3] = {0, 0, 0};
      for (int k = 0; k < 3; ++k) {
        double s = xi[0] * c.inverse[0][k] + xi[1] * c.inverse[1][k] + xi[2] * c.inverse[2][k];
        if (c.periodic[k]) {
          wrap[k] = std::floor(s);
          TORCH_CHECK(std::fabs(wrap[k]) < double(1 << 30), op, "atom ", i,
                      " lies more than 2^30 cells away from the origin");
          s -= wrap[k];
          b.image[3 * i + k] = int64_t(wrap[k]);
        }
        frac[3 * i + k] = s;
      }
      for (int a = 0; a < 3; ++a) {
        b.wrapped[3 * i + a] =
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
          grid::make_grid(cell_of(m), &lo[3 * m], &hi[3 * m], atoms_in[m], q.cutoff, g);
      TORCH_CHECK(error.empty(), op, error);
    }
    g.first_bin = total_bins;
    total_bins += g.n_bins();
  }

  // Bins, then a stable counting sort of the atoms by global bin.
  b.bin.assign(3 * n, 0);
  std::vector<int64_t> global_bin(n);
  for (int64_t i = 0; i < n; ++i) {
    const Grid& g = b.grids[b.molecule[i]];
    int64_t* c = &b.bin[3 * i];
    for (int k = 0; k < 3; ++k) c[k] = grid::bin_of(g, k, frac[3 * i + k]);
    global_bin[i] = g.first_bin + (c[0] * g.bins[1] + c[1]) * g.bins[2] + c[2];
  }
  b.bin_start.assign(total_bins + 1, 0);
  for (int64_t i = 0; i < n; ++i) ++b.bin_start[global_bin[i] + 1];
  for (int64_t k = 0; k < total_bins; ++k) b.bin_start[k + 1] += b.bin_start[k];
  std::vector<int64_t> fill(b.bin_start.begin(), b.bin_start.end() - 1);
  b.sorted_atom.resize(n);
  b.sorted_x.resize(n);
  b.sorted_y.resize(n);
  b.sorted_z.resize(n);
  for (int64_t i = 0; i < n; ++i) {
    const int64_t slot = fill[global_bin[i]]++;
    b.sorted_atom[slot] = int32_t(i);
    b.sorted_x[slot] = b.wrapped[3 * i];
    b.sorted_y[slot] = b.wrapped[3 * i + 1];
    b.sorted_z[slot] = b.wrapped[3 * i + 2];
  }
  return b;
}

/// Appends every neighbour of atom i (within its molecule's grid) to `out`.
void search_atom(const BinnedAtoms& b, const Cell& c, const Grid& g, int64_t i, double cutoff,
                 bool full_list, std::vector<Found>& out) {
  const double rc2 = cutoff * cutoff;
  const double* pi = &b.wrapped[3 * i];
  const int64_t* ci = &b.bin[3 * i];
  const int64_t* wi = &b.image[3 * i];
  const double* xs = b.sorted_x.data();
  const double* ys = b.sorted_y.data();
  const double* zs = b.sorted_z.data();
  grid::for_each_stencil_bin(c, g, ci, pi, [&](int64_t bin, const double* rel, const int64_t* image) {
    const bool own_image = image[0] == 0 && image[1] == 0 && image[2] == 0;
    for (int64_t slot = b.bin_start[bin]; slot < b.bin_start[bin + 1]; ++slot) {
      const double dx = xs[slot] + rel[0], dy = ys[slot] + rel[1], dz = zs[slot] + rel[2];
      if (dx * dx + dy * dy + dz * dz >= rc2) continue;
      const int32_t j = b.sorted_atom[slot];
      if (own_image && j == i) continue;
      const int64_t* wj = &b.image[3 * j];
      Found f;
      f.j = j;
      for (int k = 0; k < 3; ++k) f.shift[k] = int32_t(image[k] + wi[k] - wj[k]);
      if (!full_list && !grid::half_list_keeps(i, j, f.shift)) continue;
      out.push_back(f);
    }
  });
}

template <typename scalar_t>
void write_vectors(const double* x, const NeighborQuery& q, const std::vector<int64_t>& molecule,
                   const int64_t* i_out, const int64_t* j_out, const int64_t* s_out, int64_t begin,
                   int64_t end, scalar_t* distances, scalar_t* vectors) {
  const double* cells = q.cells.data_ptr<double>();
  const bool shared = q.cells.size(0) == 1;
  for (int64_t p = begin; p < end; ++p) {
    const int64_t i = i_out[p], j = j_out[p];
    const double* h = cells + 9 * (shared ? 0 : molecule[i]);
    const int64_t* s = s_out + 3 * p;
    double d2 = 0.0;
    for (int a = 0; a < 3; ++a) {
      const double shift = double(s[0]) * h[a] + double(s[1]) * h[3 + a] + double(s[2]) * h[6 + a];
      const double v = x[3 * j + a] - x[3 * i + a] + shift;
      vectors[3 * p + a] = scalar_t(v);
      d2 += v * v;
    }
    distances[p] = scalar_t(std::sqrt(d2));
  }
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
  const double* x = pos.data_ptr<double>();
  const int64_t n = q.n_atoms;

  const BinnedAtoms b = bin_atoms(q, x, mol.defined() ? mol.data_ptr<int64_t>() : nullptr);

  // Search chunks of consecutive atoms; each chunk has its own buffer.
  const int64_t chunk = chunk_size(n, 64, 64 * int64_t(at::get_num_threads()));
  const int64_t n_chunks = (n + chunk - 1) / chunk;
  std::vector<std::vector<Found>> found(n_chunks);
  std::vector<int64_t> count(n + 1, 0);  // count[i + 1]: neighbours of atom i
  parallel_items(n_chunks, [&](int64_t k) {
    std::vector<Found>& out = found[k];
    for (int64_t i = k * chunk; i < std::min(n, (k + 1) * chunk); ++i) {
      const size_t before = out.size();
      const int64_t m = b.molecule[i];
      search_atom(b, b.cells[b.cells.size() == 1 ? 0 : m], b.grids[m], i, q.cutoff, q.full_list, out);
      count[i + 1] = int64_t(out.size() - before);
    }
  });
  for (int64_t i = 0; i < n; ++i) count[i + 1] += count[i];
  const int64_t n_pairs = count[n];

  auto index_options = torch::TensorOptions().dtype(torch::kInt64);
  auto i_out = torch::empty({n_pairs}, index_options);
  auto j_out = torch::empty({n_pairs}, index_options);
  auto s_out = torch::empty({n_pairs, 3}, index_options);
  torch::Tensor distances, vectors;
  if (q.return_vectors) {
    distances = torch::empty({n_pairs}, positions.options());
    vectors = torch::empty({n_pairs, 3}, positions.options());
  } else {
    distances = torch::empty({0}, positions.options());
    vectors = torch::empty({0, 3}, positions.options());
  }
  for (const auto* t : {&i_out, &j_out, &s_out, &distances, &vectors}) advise_huge_pages(*t);
  int64_t* ip = i_out.data_ptr<int64_t>();
  int64_t* jp = j_out.data_ptr<int64_t>();
  int64_t* sp = s_out.data_ptr<int64_t>();
  parallel_items(n_chunks, [&](int64_t k) {
    const int64_t first_atom = k * chunk, last_atom = std::min(n, (k + 1) * chunk);
    const int64_t begin = count[first_atom];
    const std::vector<Found>& in = found[k];
    int64_t p = begin;
    for (int64_t i = first_atom; i < last_atom; ++i) {
      for (; p < count[i + 1]; ++p) {
        const Found& f = in[p - begin];
        ip[p] = i;
        jp[p] = f.j;
        sp[3 * p] = f.shift[0];
        sp[3 * p + 1] = f.shift[1];
        sp[3 * p + 2] = f.shift[2];
      }
    }
    std::vector<Found>().swap(found[k]);
    if (q.return_vectors) {
      AT_DISPATCH_FLOATING_TYPES(vectors.scalar_type(), "metamlip::neighbor_list", [&] {
        write_vectors<scalar_t>(x, q, b.molecule, ip, jp, sp, begin, count[last_atom],
                                distances.data_ptr<scalar_t>(), vectors.data_ptr<scalar_t>());
      });
    }
  });
  return {i_out, j_out, s_out, distances, vectors};
}

}  // namespace metamlip
