#include "ghost_graph.h"

#include <algorithm>
#include <stdexcept>

namespace metamlip {

namespace {
constexpr int kNeighMask = 0x1FFFFFFF;  // LAMMPS's NEIGHMASK: strips the special-bond bits
}

template <typename TagInt>
void GhostGraphBuilder::build(const double *const *x, const TagInt *tag, int nlocal, int nall,
                              const int *numneigh, int *const *firstneigh, double cutoff,
                              int max_depth, GhostGraph &graph) {
  graph.node_atom.clear();
  graph.node_depth.clear();
  graph.edge_first.clear();
  graph.edge_second.clear();
  graph.edge_second_atom.clear();
  graph.shifts.clear();

  TagInt max_tag = 0;
  for (int a = 0; a < nall; ++a) max_tag = std::max(max_tag, tag[a]);
  if (static_cast<int64_t>(node_of_tag_.size()) <= static_cast<int64_t>(max_tag)) {
    node_of_tag_.assign(static_cast<size_t>(max_tag) + 1, -1);
  }

  for (int i = 0; i < nlocal; ++i) {
    if (node_of_tag_[tag[i]] >= 0) {
      for (int atom : graph.node_atom) node_of_tag_[tag[atom]] = -1;
      throw std::runtime_error("atom ID " + std::to_string(static_cast<int64_t>(tag[i])) +
                               " is used by two local atoms; pair_style metamlip needs unique "
                               "atom IDs (see `reset_atoms id`)");
    }
    node_of_tag_[tag[i]] = i;
    graph.node_atom.push_back(i);
    graph.node_depth.push_back(0);
  }

  const double cutoff_sq = cutoff * cutoff;
  // Breadth-first: nodes are appended in order of depth, so the scan stops at depth n.
  for (size_t k = 0; k < graph.node_atom.size(); ++k) {
    const int depth = graph.node_depth[k];
    if (depth >= max_depth) break;
    const int a = graph.node_atom[k];
    if (a >= nlocal) {
      for (int atom : graph.node_atom) node_of_tag_[tag[atom]] = -1;
      throw std::runtime_error("ghost atom " + std::to_string(static_cast<int64_t>(tag[a])) +
                               " needs a neighbour list but has none (an atom ID that no "
                               "local atom has, in a serial run)");
    }
    const double *xa = x[a];
    const int *neighbours = firstneigh[a];
    const int count = numneigh[a];
    for (int jj = 0; jj < count; ++jj) {
      const int b = neighbours[jj] & kNeighMask;
      const double *xb = x[b];
      const double dx = xb[0] - xa[0], dy = xb[1] - xa[1], dz = xb[2] - xa[2];
      if (dx * dx + dy * dy + dz * dz >= cutoff_sq) continue;
      int node = node_of_tag_[tag[b]];
      if (node < 0) {
        node = static_cast<int>(graph.node_atom.size());
        node_of_tag_[tag[b]] = node;
        graph.node_atom.push_back(b);
        graph.node_depth.push_back(depth + 1);
      }
      const double *xn = x[graph.node_atom[node]];
      graph.edge_first.push_back(static_cast<int64_t>(k));
      graph.edge_second.push_back(node);
      graph.edge_second_atom.push_back(b);
      graph.shifts.push_back(xb[0] - xn[0]);
      graph.shifts.push_back(xb[1] - xn[1]);
      graph.shifts.push_back(xb[2] - xn[2]);
    }
  }

  for (int atom : graph.node_atom) node_of_tag_[tag[atom]] = -1;
}

template void GhostGraphBuilder::build<int>(const double *const *, const int *, int, int,
                                            const int *, int *const *, double, int, GhostGraph &);
template void GhostGraphBuilder::build<int64_t>(const double *const *, const int64_t *, int, int,
                                                const int *, int *const *, double, int,
                                                GhostGraph &);

}  // namespace metamlip
