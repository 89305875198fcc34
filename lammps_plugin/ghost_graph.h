// The graph an MPI rank passes to the model: its own atoms plus the fewest ghost atoms that
// make the energies of its own atoms exact.
//
// A HIP-NN model with n interactions gives atom i an energy that depends on atoms up to n
// hops (each shorter than the cutoff) away. Ghost atoms are folded by atom ID: all images of
// one atom (periodic images, or copies of another rank's atom) become one node, whose edges
// carry the image's lattice shift, r_ij = x[node j] - x[node i] + shift. Nodes are found by
// breadth-first search from the local atoms: a node at depth d < n gets the edges of its
// neighbour list, a node at depth n only contributes its species. So in serial (all ghosts are
// periodic images of local atoms) the graph is exactly the periodic graph of the local atoms,
// with no ghost work, and under MPI only ghosts within n hops are evaluated.
//
// In serial the local atoms' lists are all the search needs (every ghost folds onto a local
// atom). Under MPI the neighbour lists of ghost nodes at depth < n are complete when the ghost
// shell reaches n * cutoff + skin from the subdomain (the pair style sets the communication
// cutoff to that and requests ghost lists).
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
/// x: positions of local + ghost atoms; tag: their IDs (> 0); numneigh/firstneigh: a full
/// neighbour list indexed by atom (entries may carry LAMMPS's special bits) for the first
/// `n_listed` atoms (nall with ghost lists, nlocal without: enough in serial, where every
/// ghost is an image of a local atom); pairs count only when |x_j - x_i| < cutoff.
class GhostGraphBuilder {
 public:
  template <typename TagInt>
  void build(const double *const *x, const TagInt *tag, int nlocal, int nall, int n_listed,
             const int *numneigh, int *const *firstneigh, double cutoff, int n_interactions,
             GhostGraph &graph);

 private:
  std::vector<int> node_of_tag_;  // indexed by atom ID; -1 when not (yet) a node
};

}  // namespace metamlip

#endif
