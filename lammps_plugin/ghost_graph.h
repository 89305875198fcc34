// The graph a rank passes to the model: its own atoms plus the ghost atoms it needs.
//
// A HIP-NN model with n interactions gives atom i an energy that depends on atoms up to n
// hops (each shorter than the cutoff) away. Ghost atoms are folded by atom ID: all images of
// one atom (periodic images, or copies of another rank's atom) become one node, whose edges
// carry the image's lattice shift, r_ij = x[node j] - x[node i] + shift. Nodes are found by
// breadth-first search from the local atoms: a node at depth d < depth gets the edges of its
// neighbour list, a node at the last depth only sends.
//
// In serial (depth n) every ghost is a periodic image of a local atom, so the graph is exactly
// the periodic graph of the local atoms and the local atoms' lists are all the search needs.
// Under MPI (depth 1) the graph is the local atoms' pairs and the ghosts they reach; the
// ghosts' features come from their owners block by block (pair_metamlip.h).
#ifndef METAMLIP_GHOST_GRAPH_H
#define METAMLIP_GHOST_GRAPH_H

#include <cstdint>
#include <vector>

namespace metamlip {

struct GhostGraph {
  // Node k's representative LAMMPS atom index; nodes [0, nlocal) are the local atoms in order.
  std::vector<int> node_atom;
  std::vector<int> node_depth;
  // Edge p joins node edge_first[p] to node edge_second[p]; edge_second_atom[p] is the atom
  // (image) actually found in the neighbour list, shifts[3p..3p+2] = x[that image] - x[node].
  std::vector<int64_t> edge_first;
  std::vector<int64_t> edge_second;
  std::vector<int> edge_second_atom;
  std::vector<double> shifts;

  int64_t n_nodes() const { return static_cast<int64_t>(node_atom.size()); }
  int64_t n_edges() const { return static_cast<int64_t>(edge_first.size()); }
};

/// Builds GhostGraphs, keeping its buffers between calls.
///
/// x: positions of local + ghost atoms; tag: their IDs (> 0); numneigh/firstneigh: the full
/// neighbour lists of the local atoms (entries may carry LAMMPS's special bits); pairs count
/// only when |x_j - x_i| < cutoff. max_depth: hops from the local atoms (>= 1); nodes deeper
/// than 0 must fold onto local atoms, or be at max_depth.
class GhostGraphBuilder {
 public:
  template <typename TagInt>
  void build(const double *const *x, const TagInt *tag, int nlocal, int nall,
             const int *numneigh, int *const *firstneigh, double cutoff, int max_depth,
             GhostGraph &graph);

 private:
  std::vector<int> node_of_tag_;  // indexed by atom ID; -1 when not (yet) a node
};

}  // namespace metamlip

#endif
