// Grouping pairs by atom, for reductions over pairs without atomics (the CPU pair sums).
#pragma once

#include <ATen/Parallel.h>

#include <algorithm>
#include <cstdint>
#include <vector>

namespace metamlip {

/// Positions k = 0..P-1 grouped by atom: atom a owns positions offsets[a] .. offsets[a+1] of
/// `order` (order empty: the identity, the index was already sorted).
struct Groups {
  std::vector<int64_t> offsets;
  std::vector<int64_t> order;
  int64_t at(int64_t k) const { return order.empty() ? k : order[k]; }
};

/// Groups positions k = 0..n_items-1 by key[k], stably.
inline Groups group_by(const int64_t* key, int64_t n_items, int64_t n_atoms) {
  Groups g;
  g.offsets.assign(n_atoms + 1, 0);
  bool sorted = true;
  int64_t previous = 0;
  for (int64_t k = 0; k < n_items; ++k) {
    const int64_t a = key[k];
    ++g.offsets[a + 1];
    sorted = sorted && a >= previous;
    previous = a;
  }
  for (int64_t a = 0; a < n_atoms; ++a) g.offsets[a + 1] += g.offsets[a];
  if (!sorted) {
    g.order.resize(n_items);
    std::vector<int64_t> fill(g.offsets.begin(), g.offsets.end() - 1);
    for (int64_t k = 0; k < n_items; ++k) g.order[fill[key[k]]++] = k;
  }
  return g;
}

/// Splits atoms [0, n_atoms) into chunks holding similar numbers of grouped items.
inline std::vector<int64_t> atom_chunks(const Groups& g, int64_t n_atoms) {
  const int64_t total = g.offsets[n_atoms] + n_atoms;
  const int64_t target = std::max<int64_t>(512, total / (16 * int64_t(at::get_num_threads())) + 1);
  std::vector<int64_t> bounds{0};
  int64_t since = 0;
  for (int64_t a = 0; a < n_atoms; ++a) {
    since += g.offsets[a + 1] - g.offsets[a] + 1;
    if (since >= target) {
      bounds.push_back(a + 1);
      since = 0;
    }
  }
  if (bounds.back() != n_atoms) bounds.push_back(n_atoms);
  return bounds;
}

}  // namespace metamlip
