// pair_style metamlip: runs a model exported by `metamlip-export` (a TorchScript file).
//
//   pair_style metamlip [threads N]
//   pair_coeff * * model.pt H C N O      (one element of the model per LAMMPS atom type)
//
// Needs units metal (or real: energies are converted), newton pair on, atom IDs. Each rank
// evaluates its own atoms plus the ghost atoms within the model's receptive field
// (see ghost_graph.h); forces on ghosts go back to their owners by LAMMPS's reverse
// communication. The virial (global and per atom) comes from the pair vectors.
#ifndef METAMLIP_PAIR_METAMLIP_H
#define METAMLIP_PAIR_METAMLIP_H

#include <memory>
#include <string>
#include <vector>

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

 private:
  void allocate();
  void set_threads();
  void accumulate(const torch::Tensor &atom_energy, const torch::Tensor &position_grad,
                  const torch::Tensor &shift_grad);

  std::unique_ptr<metamlip::ExportedModel> model_;
  std::string model_path_;
  std::vector<int64_t> type_atomic_number_;  // by LAMMPS type (index 0 unused)
  metamlip::GhostGraphBuilder builder_;
  metamlip::GhostGraph graph_;
  int threads_ = 0;                 // 0: LAMMPS's OpenMP thread count (comm->nthreads)
  double energy_factor_ = 1.0;      // eV -> LAMMPS energy unit
};

}  // namespace LAMMPS_NS

#endif
