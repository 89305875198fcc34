// pair_style metamlip: runs a model exported by `metamlip-export` (a TorchScript file).
//
//   pair_style metamlip [threads N] [device cuda|cpu]
//   pair_coeff * * model.pt H C N O      (one element of the model per LAMMPS atom type)
//
// device: where the model runs (device.h; default cuda when available, else cpu). On a GPU
// the graph is built on the host, copied to the device, and energies, forces and the
// communicated features come back to LAMMPS's host arrays.
//
// Needs units metal (or real: energies are converted), newton pair on, atom IDs. On one rank
// periodic images are folded onto their atoms and the model runs once (see ghost_graph.h).
// Under MPI each rank runs the interaction blocks one at a time for its own atoms, and after
// each block sends the output features of its atoms to the ranks holding them as ghosts
// (forward communication); the gradients with respect to the ghosts' features come back the
// same way in reverse, block by block. So no rank recomputes another's atoms. Forces on ghosts
// go back to their owners by LAMMPS's reverse communication. The virial (global and per atom)
// comes from the pair vectors.
#ifndef METAMLIP_PAIR_METAMLIP_H
#define METAMLIP_PAIR_METAMLIP_H

#include <memory>
#include <string>
#include <vector>

#include "device.h"
#include "exported_model.h"
#include "ghost_graph.h"
#include "pair.h"

namespace LAMMPS_NS {

class PairMetamlip : public Pair {
 public:
  explicit PairMetamlip(class LAMMPS *lmp);
  ~PairMetamlip() override;

  void compute(int eflag, int vflag) override;
  void settings(int narg, char **arg) override;
  void coeff(int narg, char **arg) override;
  void init_style() override;
  double init_one(int i, int j) override;

  // Block output features of atoms (forward) and their gradients (reverse), feature_width_
  // doubles per atom, in feature_rows_.
  int pack_forward_comm(int n, int *list, double *buf, int pbc_flag, int *pbc) override;
  void unpack_forward_comm(int n, int first, double *buf) override;
  int pack_reverse_comm(int n, int first, double *buf) override;
  void unpack_reverse_comm(int n, int *list, double *buf) override;

 private:
  /// The graph as model inputs: node positions [N,3] (requiring grad), atomic numbers [N],
  /// edge_index [2,P], edge shift vectors [P,3] in the model's dtype (requiring grad for the virial).
  struct GraphInputs {
    torch::Tensor positions, numbers, edge_index, shifts;
  };

  void allocate();
  void set_threads();
  int node_local_rank() const;
  GraphInputs graph_inputs();
  void check_close_atoms();
  void compute_whole();
  void compute_by_blocks();
  torch::Tensor send_features(const torch::Tensor &own);
  torch::Tensor return_feature_grads(const torch::Tensor &grad);
  void accumulate(const torch::Tensor &atom_energy, const torch::Tensor &position_grad,
                  const torch::Tensor &shift_grad);

  std::unique_ptr<metamlip::ExportedModel> model_;
  std::string model_path_;
  std::vector<int64_t> type_atomic_number_;  // by LAMMPS type (index 0 unused)
  metamlip::GhostGraphBuilder builder_;
  metamlip::GhostGraph graph_;
  int threads_ = 0;                 // 0: LAMMPS's OpenMP thread count (comm->nthreads)
  metamlip::DeviceRequest device_request_ = metamlip::DeviceRequest::kAuto;
  torch::Device device_ = torch::kCPU;  // where the model and its inputs live
  double energy_factor_ = 1.0;      // eV -> LAMMPS energy unit
  double *feature_rows_ = nullptr;  // [atom->nmax, feature_width_] communication buffer
  int feature_width_ = 0;
  int feature_capacity_ = 0;        // rows allocated
};

}  // namespace LAMMPS_NS

#endif
