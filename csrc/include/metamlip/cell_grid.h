// Geometry of the cell-list search grid, shared by the CPU and CUDA neighbour lists.
//
// Plain C++ (no torch): the CUDA sources include it too. All lengths in Angstrom.
//
// Every molecule (structure) of a batch gets its own grid of bins. Positions are expressed in
// fractional coordinates s = x * inverse of an "effective cell" H whose rows are the user's
// lattice vectors along periodic directions and an orthonormal completion along the others.
// Along a periodic direction s is wrapped into [0, 1); along an open direction it is binned
// between the molecule's extremes. Bins are at least `cutoff` thick, except when the cell is
// thinner than the cutoff: then `reach` > 1 bins are searched on each side, which visits
// several periodic images of the same bin (including an atom's own images).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>

// bin_of, floor_div, for_each_stencil_run and half_list_keeps also run in CUDA kernels.
#ifdef __CUDACC__
#define METAMLIP_HOST_DEVICE __host__ __device__
#else
#define METAMLIP_HOST_DEVICE
#endif

namespace metamlip {
namespace grid {

/// Largest number of bins along one direction before the grid is coarsened.
constexpr int64_t kMaxBinsPerDirection = int64_t(1) << 20;
/// Largest number of (bin, image) combinations searched around one bin.
constexpr int64_t kMaxStencil = int64_t(1) << 22;

/// Effective cell of one molecule: lattice rows, their inverse, face distances.
struct Cell {
  double rows[3][3];     ///< H: periodic rows are the user's lattice vectors.
  double inverse[3][3];  ///< H^-1: fractional s_k = sum_a x_a * inverse[a][k].
  bool periodic[3];
  /// Real-space thickness of one fractional unit along k: 1 / |inverse[:, k]|.
  double thickness[3];
};

/// Search grid of one molecule (after Cell), plus where its bins start in the global bin array.
struct Grid {
  int64_t bins[3] = {1, 1, 1};   ///< bins along each direction
  int64_t reach[3] = {1, 1, 1};  ///< bins searched on each side of an atom's bin
  double origin[3] = {0, 0, 0};  ///< fractional coordinate of the first bin's lower face
  double width[3] = {1, 1, 1};   ///< fractional width of a bin
  int64_t first_bin = 0;         ///< offset of this grid's bins in the global bin array
  int64_t n_bins() const { return bins[0] * bins[1] * bins[2]; }
};

inline double dot3(const double* a, const double* b) { return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]; }

inline void cross3(const double* a, const double* b, double* out) {
  out[0] = a[1] * b[2] - a[2] * b[1];
  out[1] = a[2] * b[0] - a[0] * b[2];
  out[2] = a[0] * b[1] - a[1] * b[0];
}

inline double norm3(const double* a) { return std::sqrt(dot3(a, a)); }

/// Unit vector along a, or false when |a| == 0.
inline bool normalize3(double* a) {
  const double n = norm3(a);
  if (!(n > 0.0)) return false;
  a[0] /= n;
  a[1] /= n;
  a[2] /= n;
  return true;
}

/// Builds the effective cell from the user's cell (row vectors; ignored along open
/// directions; may be null when no direction is periodic). Returns an error message, or "".
inline std::string make_cell(const double* user_cell, const bool periodic[3], Cell& cell) {
  int periodic_rows[3], open_rows[3], n_periodic = 0, n_open = 0;
  for (int k = 0; k < 3; ++k) {
    cell.periodic[k] = periodic[k];
    if (periodic[k]) {
      periodic_rows[n_periodic++] = k;
      for (int a = 0; a < 3; ++a) cell.rows[k][a] = user_cell[3 * k + a];
      if (!(norm3(cell.rows[k]) > 0.0)) {
        return "the cell is singular: lattice vector " + std::to_string(k) +
               " is zero along a periodic direction";
      }
    } else {
      open_rows[n_open++] = k;
    }
  }
  // Orthonormal completion of the periodic rows for the open directions.
  double complement[3][3] = {{1, 0, 0}, {0, 1, 0}, {0, 0, 1}};
  if (n_periodic == 1) {
    double a[3] = {cell.rows[periodic_rows[0]][0], cell.rows[periodic_rows[0]][1],
                   cell.rows[periodic_rows[0]][2]};
    normalize3(a);
    // Axis least parallel to a.
    int axis = 0;
    for (int k = 1; k < 3; ++k)
      if (std::fabs(a[k]) < std::fabs(a[axis])) axis = k;
    double e[3] = {0, 0, 0};
    e[axis] = 1.0;
    cross3(a, e, complement[0]);
    normalize3(complement[0]);
    cross3(a, complement[0], complement[1]);
    normalize3(complement[1]);
  } else if (n_periodic == 2) {
    cross3(cell.rows[periodic_rows[0]], cell.rows[periodic_rows[1]], complement[0]);
    const double scale = norm3(cell.rows[periodic_rows[0]]) * norm3(cell.rows[periodic_rows[1]]);
    if (!(norm3(complement[0]) > 1e-10 * scale)) {
      return "the cell is singular: its two periodic lattice vectors are parallel";
    }
    normalize3(complement[0]);
  }
  for (int q = 0; q < n_open; ++q)
    for (int a = 0; a < 3; ++a) cell.rows[open_rows[q]][a] = complement[q][a];

  // Inverse by cofactors; det relative to the product of row lengths detects singular cells.
  const double(*h)[3] = cell.rows;
  double cof[3][3];
  for (int r = 0; r < 3; ++r) {
    for (int c = 0; c < 3; ++c) {
      const int r1 = (r + 1) % 3, r2 = (r + 2) % 3, c1 = (c + 1) % 3, c2 = (c + 2) % 3;
      cof[r][c] = h[r1][c1] * h[r2][c2] - h[r1][c2] * h[r2][c1];
    }
  }
  const double det = h[0][0] * cof[0][0] + h[0][1] * cof[0][1] + h[0][2] * cof[0][2];
  const double scale = norm3(h[0]) * norm3(h[1]) * norm3(h[2]);
  if (!(std::fabs(det) > 1e-10 * scale) || !std::isfinite(det)) {
    return "the cell is singular: its periodic lattice vectors are linearly dependent";
  }
  for (int a = 0; a < 3; ++a)
    for (int k = 0; k < 3; ++k) cell.inverse[a][k] = cof[k][a] / det;  // (H^-1)[a][k] = cof[k][a]/det
  for (int k = 0; k < 3; ++k) {
    const double column[3] = {cell.inverse[0][k], cell.inverse[1][k], cell.inverse[2][k]};
    cell.thickness[k] = 1.0 / norm3(column);
  }
  return "";
}

/// Chooses bins and search reach for one molecule of `n_atoms` atoms whose fractional
/// coordinates span [lo[k], hi[k]] along open directions. Returns an error message, or "".
inline std::string make_grid(const Cell& cell, const double lo[3], const double hi[3],
                             int64_t n_atoms, double cutoff, Grid& grid) {
  // Bins along each direction, from the cell thickness (periodic) or the extent (open).
  double extent[3];
  for (int k = 0; k < 3; ++k) {
    const double bins_wanted =
        cell.periodic[k] ? cell.thickness[k] / cutoff : (hi[k] - lo[k]) * cell.thickness[k] / cutoff;
    const double clamped = std::min(std::floor(bins_wanted), double(kMaxBinsPerDirection));
    grid.bins[k] = std::max<int64_t>(1, int64_t(clamped));
    extent[k] = cell.periodic[k] ? 1.0 : hi[k] - lo[k];
  }
  // Coarsen grids with many more bins than atoms (dilute gases, far-apart fragments): the
  // result is the same, only the bins are wider. Keeps memory O(atoms).
  const int64_t max_bins = 2 * n_atoms + 8;
  while (grid.bins[0] * grid.bins[1] * grid.bins[2] > max_bins) {
    int k = 0;
    for (int q = 1; q < 3; ++q)
      if (grid.bins[q] > grid.bins[k]) k = q;
    grid.bins[k] = (grid.bins[k] + 1) / 2;
  }
  int64_t stencil = 1;
  for (int k = 0; k < 3; ++k) {
    if (cell.periodic[k]) {
      grid.origin[k] = 0.0;
      grid.width[k] = 1.0 / double(grid.bins[k]);
      // A bin is thickness / bins thick; neighbours lie within cutoff / that many bins.
      const double reach = std::ceil(cutoff * double(grid.bins[k]) / cell.thickness[k]);
      if (!(reach <= double(kMaxStencil))) {
        return "the cutoff is too large for the cell: " + std::to_string(cutoff) +
               " A against a cell thickness of " + std::to_string(cell.thickness[k]) + " A";
      }
      grid.reach[k] = std::max<int64_t>(1, int64_t(reach));
    } else {
      grid.origin[k] = lo[k];
      const double min_width = cutoff / cell.thickness[k];
      grid.width[k] = std::max(extent[k] / double(grid.bins[k]), min_width);
      grid.reach[k] = 1;
    }
    stencil *= 2 * grid.reach[k] + 1;
    if (stencil > kMaxStencil) {
      return "the cutoff (" + std::to_string(cutoff) +
             " A) is so much larger than the periodic cell that more than " +
             std::to_string(kMaxStencil) + " periodic images would have to be searched";
    }
  }
  return "";
}

/// Bin index along k of fractional coordinate s (already wrapped along periodic directions).
METAMLIP_HOST_DEVICE inline int64_t bin_of(const Grid& grid, int k, double s) {
  const double t = ::floor((s - grid.origin[k]) / grid.width[k]);
  if (!(t >= 0.0)) return 0;
  if (t >= double(grid.bins[k])) return grid.bins[k] - 1;
  return int64_t(t);
}

/// floor(a / b) for b > 0.
METAMLIP_HOST_DEVICE inline int64_t floor_div(int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }

/// Calls visit(bin_begin, bin_end, rel, image) for every run of consecutive bins of the stencil
/// around the bin `ci[3]` of an atom at wrapped position `xi[3]`, in one fixed order (the CPU
/// and CUDA searches agree pair by pair). A run is a stretch of bins along the last direction
/// seen through the same lattice image, so its atoms are contiguous in bin-sorted order:
/// global bins [bin_begin, bin_end). `image[3]` is that image and `rel[3]` = image @ H - x_i, so
/// x_j(wrapped) + rel is the vector from atom i to that image of atom j. Bins outside the grid
/// along open directions are skipped.
template <typename Visit>
METAMLIP_HOST_DEVICE inline void for_each_stencil_run(const Cell& c, const Grid& g, const int64_t* ci,
                                                      const double* xi, Visit&& visit) {
  int64_t image[3], row_bin[2];
  for (int64_t d0 = -g.reach[0]; d0 <= g.reach[0]; ++d0) {
    for (int64_t d1 = -g.reach[1]; d1 <= g.reach[1]; ++d1) {
      const int64_t t[2] = {ci[0] + d0, ci[1] + d1};
      bool inside = true;
      for (int k = 0; k < 2; ++k) {
        if (c.periodic[k]) {
          image[k] = floor_div(t[k], g.bins[k]);
          row_bin[k] = t[k] - image[k] * g.bins[k];
        } else {
          inside = inside && t[k] >= 0 && t[k] < g.bins[k];
          image[k] = 0;
          row_bin[k] = t[k];
        }
      }
      if (!inside) continue;
      const int64_t row = g.first_bin + (row_bin[0] * g.bins[1] + row_bin[1]) * g.bins[2];
      int64_t t2 = ci[2] - g.reach[2], t2_end = ci[2] + g.reach[2] + 1;
      if (!c.periodic[2]) {
        t2 = t2 < 0 ? 0 : t2;
        t2_end = t2_end > g.bins[2] ? g.bins[2] : t2_end;
      }
      while (t2 < t2_end) {
        image[2] = c.periodic[2] ? floor_div(t2, g.bins[2]) : 0;
        const int64_t first = t2 - image[2] * g.bins[2];
        const int64_t left = t2_end - t2, to_edge = g.bins[2] - first;
        const int64_t length = left < to_edge ? left : to_edge;
        double rel[3];
        for (int a = 0; a < 3; ++a) {
          rel[a] = image[0] * c.rows[0][a] + image[1] * c.rows[1][a] + image[2] * c.rows[2][a] - xi[a];
        }
        visit(row + first, row + first + length, rel, image);
        t2 += length;
      }
    }
  }
}

/// Whether a half list keeps the pair (i, j, S): i < j, and for an atom's own images (j == i)
/// only shifts S > 0 lexicographically, so each unordered pair appears once.
template <typename Int>
METAMLIP_HOST_DEVICE inline bool half_list_keeps(int64_t i, int64_t j, const Int* shift) {
  if (j != i) return j > i;
  return shift[0] > 0 || (shift[0] == 0 && (shift[1] > 0 || (shift[1] == 0 && shift[2] > 0)));
}

}  // namespace grid
}  // namespace metamlip
