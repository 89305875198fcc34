#include "pair_metamlip.h"

#include <ATen/Parallel.h>
#include <c10/core/DeviceGuard.h>
#include <torch/autograd.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <exception>
#include <stdexcept>

#include "atom.h"
#include "comm.h"
#include "error.h"
#include "force.h"
#include "memory.h"
#include "neigh_list.h"
#include "neighbor.h"
#include "update.h"
#include "utils.h"

using namespace LAMMPS_NS;

namespace {

std::string joined(const std::vector<std::string> &items) {
  std::string out;
  for (const auto &item : items) out += (out.empty() ? "" : " ") + item;
  return out;
}

}  // namespace

PairMetamlip::PairMetamlip(LAMMPS *lmp) : Pair(lmp) {
  single_enable = 0;
  restartinfo = 0;
  one_coeff = 1;
  manybody_flag = 1;
  no_virial_fdotr_compute = 1;  // the virial comes from the pair vectors (ghosts are folded)
  centroidstressflag = CENTROID_NOTAVAIL;
}

PairMetamlip::~PairMetamlip() {
  memory->destroy(feature_rows_);
  if (allocated) {
    memory->destroy(setflag);
    memory->destroy(cutsq);
  }
}

void PairMetamlip::allocate() {
  allocated = 1;
  const int n = atom->ntypes;
  memory->create(setflag, n + 1, n + 1, "pair:setflag");
  memory->create(cutsq, n + 1, n + 1, "pair:cutsq");
  for (int i = 0; i <= n; ++i)
    for (int j = 0; j <= n; ++j) setflag[i][j] = 0;
}

void PairMetamlip::settings(int narg, char **arg) {
  threads_ = 0;  // a repeated pair_style starts from the defaults
  device_request_ = metamlip::DeviceRequest::kAuto;
  int iarg = 0;
  while (iarg < narg) {
    if (strcmp(arg[iarg], "threads") == 0 && iarg + 1 < narg) {
      threads_ = utils::inumeric(FLERR, arg[iarg + 1], false, lmp);
      if (threads_ < 1) error->all(FLERR, "pair_style metamlip threads N: N must be >= 1");
      iarg += 2;
    } else if (strcmp(arg[iarg], "device") == 0 && iarg + 1 < narg) {
      if (strcmp(arg[iarg + 1], "cuda") == 0) {
        device_request_ = metamlip::DeviceRequest::kCuda;
      } else if (strcmp(arg[iarg + 1], "cpu") == 0) {
        device_request_ = metamlip::DeviceRequest::kCpu;
      } else {
        error->all(FLERR, "pair_style metamlip device '{}': use `device cuda` or `device cpu`",
                   arg[iarg + 1]);
      }
      iarg += 2;
    } else {
      error->all(FLERR,
                 "Illegal pair_style metamlip argument '{}': use `pair_style metamlip "
                 "[threads N] [device cuda|cpu]` (torch threads per MPI rank; where the model "
                 "runs, default cuda when a GPU is visible)",
                 arg[iarg]);
    }
  }
}

int PairMetamlip::node_local_rank() const {
  MPI_Comm node;
  MPI_Comm_split_type(world, MPI_COMM_TYPE_SHARED, comm->me, MPI_INFO_NULL, &node);
  int rank = 0;
  MPI_Comm_rank(node, &rank);
  MPI_Comm_free(&node);
  return rank;
}

void PairMetamlip::coeff(int narg, char **arg) {
  if (!allocated) allocate();
  const int ntypes = atom->ntypes;
  if (narg < 3 || strcmp(arg[0], "*") != 0 || strcmp(arg[1], "*") != 0) {
    error->all(FLERR,
               "pair_style metamlip needs `pair_coeff * * MODEL_FILE ELEMENT...` with one "
               "element per atom type ({} atom types)",
               ntypes);
  }
  model_path_ = arg[2];
  metamlip::DeviceChoice device;
  try {
    const std::string op_library = metamlip::load_op_library(metamlip::read_metadata(model_path_));
    const bool cpu = device_request_ == metamlip::DeviceRequest::kCpu;
    device = metamlip::choose_device(device_request_, op_library, cpu ? 0 : node_local_rank());
    device_ = device.device;
    model_ = std::make_unique<metamlip::ExportedModel>(
        metamlip::load_exported_model(model_path_, device_));
  } catch (const std::exception &error_) {
    model_.reset();
    error->all(FLERR, std::string("pair_coeff metamlip: ") + error_.what());
  }
  const auto &meta = model_->metadata;
  const int n_names = narg - 3;
  if (n_names != ntypes) {
    error->all(FLERR,
               "pair_coeff * * {}: got {} element name(s) but there are {} atom types; give "
               "one element per atom type, in type order, from the model's elements: {}",
               model_path_, n_names, ntypes, joined(meta.elements));
  }
  type_atomic_number_.assign(ntypes + 1, 0);
  for (int type = 1; type <= ntypes; ++type) {
    const std::string name = arg[2 + type];
    int found = -1;
    for (size_t k = 0; k < meta.elements.size(); ++k)
      if (meta.elements[k] == name) found = static_cast<int>(k);
    if (found < 0) {
      error->all(FLERR,
                 "pair_coeff * * {}: element '{}' (atom type {}) is not one of the model's "
                 "elements: {}",
                 model_path_, name, type, joined(meta.elements));
    }
    type_atomic_number_[type] = meta.atomic_numbers[found];
  }
  for (int i = 1; i <= ntypes; ++i)
    for (int j = i; j <= ntypes; ++j) setflag[i][j] = 1;

  if (comm->me == 0) {
    utils::logmesg(lmp,
                   "metamlip: model {} (format {}, level '{}', elements {}, cutoff {} A, {} "
                   "interactions, receptive field {} A, {})\n",
                   model_path_, meta.format_version, meta.level, joined(meta.elements),
                   meta.cutoff, meta.n_interactions, meta.receptive_field, meta.dtype_name);
    if (device_.is_cuda()) {
      utils::logmesg(lmp,
                     "metamlip: device cuda ({}; {} GPU(s) visible per node, each MPI rank takes "
                     "GPU node-local rank % {}; rank 0: {})\n",
                     device.reason, device.n_gpus, device.n_gpus, metamlip::device_name(device_));
    } else {
      utils::logmesg(lmp, "metamlip: device cpu ({})\n", device.reason);
    }
  }
}

void PairMetamlip::init_style() {
  if (!model_) error->all(FLERR, "pair_style metamlip: missing `pair_coeff * * MODEL_FILE ...`");
  if (strcmp(update->unit_style, "metal") == 0) {
    energy_factor_ = 1.0;
  } else if (strcmp(update->unit_style, "real") == 0) {
    energy_factor_ = utils::get_conversion_factor(utils::ENERGY, utils::METAL2REAL);
  } else {
    error->all(FLERR,
               "pair_style metamlip needs `units metal` (eV, Angstrom; the model's units) or "
               "`units real` (energies converted to kcal/mol); this input uses `units {}`",
               update->unit_style);
  }
  if (!force->newton_pair) {
    error->all(FLERR,
               "pair_style metamlip needs `newton on`: forces on ghost atoms are sent back to "
               "their owners by reverse communication (remove `newton off` from the input)");
  }
  if (!atom->tag_enable) {
    error->all(FLERR, "pair_style metamlip needs atom IDs (remove `atom_modify id no`)");
  }
  if (comm->mode != Comm::SINGLE) {
    error->all(FLERR, "pair_style metamlip supports only `comm_modify mode single`");
  }
  // Only the local atoms' lists: in serial every ghost is a periodic image of a local atom
  // and is folded onto it; under MPI the blocks run for local atoms only and the ghosts one
  // hop away get their features by communication (default ghost cutoff: cutoff + skin).
  neighbor->add_request(this, NeighConst::REQ_FULL);
  if (comm->nprocs > 1) {
    const auto &meta = model_->metadata;
    if (!model_->module.find_method("stage") || (meta.n_interactions > 1 && meta.n_features < 1)) {
      error->all(FLERR,
                 "pair_style metamlip: model {} was exported by an older metamlip and cannot "
                 "run on several MPI ranks (it lacks the method `stage` or the metadata entry "
                 "n_features). Export it again with `metamlip-export`, or run on one rank.",
                 model_path_);
    }
    feature_width_ = meta.n_features;
    comm_forward = comm_reverse = feature_width_;
    if (comm->me == 0) {
      utils::logmesg(lmp,
                     "metamlip: {} MPI ranks: each block runs for the local atoms; ghosts get "
                     "their {} features from their owners after each block\n",
                     comm->nprocs, feature_width_);
    }
  } else if (comm->me == 0) {
    utils::logmesg(lmp, "metamlip: 1 MPI rank: periodic images folded onto their atoms\n");
  }
  set_threads();
}

void PairMetamlip::set_threads() {
  // LAMMPS and torch share the OpenMP runtime: default to LAMMPS's thread count
  // (OMP_NUM_THREADS or `package omp N`, 1 if unset), i.e. one torch thread per MPI rank.
  const int threads = threads_ > 0 ? threads_ : std::max(1, comm->nthreads);
  if (at::get_num_threads() != threads) at::set_num_threads(threads);
  if (comm->me == 0) {
    utils::logmesg(lmp, "metamlip: {} torch thread(s) per MPI rank, {} rank(s)\n", threads,
                   comm->nprocs);
  }
}

double PairMetamlip::init_one(int i, int j) {
  if (setflag[i][j] == 0) error->all(FLERR, "All pair coeffs are not set");
  const double cutoff = model_->metadata.cutoff;
  return cutoff;
}

void PairMetamlip::compute(int eflag, int vflag) {
  ev_init(eflag, vflag);
  const c10::DeviceGuard guard(device_);  // this rank's GPU is current for the model's ops
  try {
    // Depth 1 under MPI: ghost atoms only send; their features come from their owners.
    builder_.build(atom->x, atom->tag, atom->nlocal, atom->nlocal + atom->nghost,
                   list->numneigh, list->firstneigh, model_->metadata.cutoff,
                   comm->nprocs == 1 ? model_->metadata.n_interactions : 1, graph_);
  } catch (const std::exception &error_) {
    error->one(FLERR, std::string("pair_style metamlip: ") + error_.what());
  }
  check_close_atoms();
  if (comm->nprocs == 1) {
    if (atom->nlocal > 0) compute_whole();
  } else {
    compute_by_blocks();  // every rank takes part in the communication, with atoms or not
  }
}

void PairMetamlip::check_close_atoms() {
  // Overlapping atoms would give the model infinite or NaN forces: stop, naming them (IDs).
  double **x = atom->x;
  const double limit = model_->metadata.min_pair_distance;
  for (int64_t p = 0; p < graph_.n_edges(); ++p) {
    const int a = graph_.node_atom[graph_.edge_first[p]];
    const int b = graph_.node_atom[graph_.edge_second[p]];
    const double *s = &graph_.shifts[3 * p];
    const double d[3] = {x[b][0] + s[0] - x[a][0], x[b][1] + s[1] - x[a][1], x[b][2] + s[2] - x[a][2]};
    const double r = std::sqrt(d[0] * d[0] + d[1] * d[1] + d[2] * d[2]);
    if (!(r >= limit)) {
      error->one(FLERR,
                 "pair_style metamlip: atoms {} and {} (atom IDs) are {:.4g} Angstrom apart, "
                 "closer than {} Angstrom (overlapping atoms: check the structure)",
                 atom->tag[a], atom->tag[b], r, limit);
    }
  }
}

PairMetamlip::GraphInputs PairMetamlip::graph_inputs() {
  const int64_t n_nodes = graph_.n_nodes();
  const int64_t n_edges = graph_.n_edges();
  const auto f64 = torch::TensorOptions().dtype(torch::kFloat64);
  const auto i64 = torch::TensorOptions().dtype(torch::kInt64);
  GraphInputs in;
  in.positions = torch::empty({n_nodes, 3}, f64);
  in.numbers = torch::empty({n_nodes}, i64);
  auto p = in.positions.accessor<double, 2>();
  auto z = in.numbers.accessor<int64_t, 1>();
  double **x = atom->x;
  const int *type = atom->type;
  for (int64_t k = 0; k < n_nodes; ++k) {
    const int a = graph_.node_atom[k];
    p[k][0] = x[a][0];
    p[k][1] = x[a][1];
    p[k][2] = x[a][2];
    z[k] = type_atomic_number_[type[a]];
  }
  in.edge_index = torch::empty({2, n_edges}, i64);
  std::memcpy(in.edge_index.data_ptr<int64_t>(), graph_.edge_first.data(), n_edges * sizeof(int64_t));
  std::memcpy(in.edge_index.data_ptr<int64_t>() + n_edges, graph_.edge_second.data(),
              n_edges * sizeof(int64_t));
  const auto dtype = model_->metadata.dtype;
  in.positions = in.positions.to(device_, dtype).requires_grad_(true);
  in.numbers = in.numbers.to(device_);
  in.edge_index = in.edge_index.to(device_);
  in.shifts = torch::from_blob(graph_.shifts.data(), {n_edges, 3}, f64)
                  .to(device_, dtype, /*non_blocking=*/false, /*copy=*/true);
  if (vflag_either) in.shifts.requires_grad_(true);
  return in;
}

void PairMetamlip::compute_whole() {
  const int nlocal = atom->nlocal;
  const int64_t n_nodes = graph_.n_nodes();
  GraphInputs in = graph_inputs();
  torch::Tensor mask =
      torch::zeros({n_nodes}, torch::TensorOptions().dtype(torch::kBool).device(device_));
  mask.slice(0, 0, nlocal).fill_(true);
  torch::Tensor atom_energy, position_grad, shift_grad;
  try {
    atom_energy = model_->module.forward({in.positions, in.numbers, in.edge_index, in.shifts, mask}).toTensor();
    if (atom_energy.dim() != 1 || atom_energy.size(0) != n_nodes) {
      throw std::runtime_error("the model returned energies of shape " +
                               c10::str(atom_energy.sizes()) + ", expected [" +
                               std::to_string(n_nodes) + "]");
    }
    atom_energy = atom_energy.slice(0, 0, nlocal);
    std::vector<torch::Tensor> inputs{in.positions};
    if (vflag_either) inputs.push_back(in.shifts);
    auto grads = torch::autograd::grad({atom_energy.sum()}, inputs, /*grad_outputs=*/{},
                                       /*retain_graph=*/false, /*create_graph=*/false,
                                       /*allow_unused=*/true);
    position_grad = grads[0];
    if (vflag_either) shift_grad = grads[1];
  } catch (const std::exception &error_) {
    error->one(FLERR, std::string("pair_style metamlip: evaluating the model failed: ") +
                          error_.what());
  }
  accumulate(atom_energy.detach(), position_grad, shift_grad);
}

void PairMetamlip::compute_by_blocks() {
  const int nlocal = atom->nlocal;
  const int n_blocks = model_->metadata.n_interactions;
  GraphInputs in = graph_inputs();
  // Pair distances (pair vectors for HIP-NN-TS models, which need their directions) once;
  // every block takes them as a leaf, and their gradient goes back to positions and shifts
  // once, after the last block's backward.
  const torch::Tensor first = in.edge_index[0], second = in.edge_index[1];
  const torch::Tensor vectors =
      in.positions.index_select(0, second) - in.positions.index_select(0, first) + in.shifts;
  const torch::Tensor geometry =
      model_->metadata.tensor_order > 0 ? vectors : vectors.norm(2, {1});
  const torch::Tensor geometry_leaf = geometry.detach().requires_grad_(true);
  // Forward: block k for the local atoms; its input features are a leaf tensor over all
  // nodes, the local rows copied from block k-1, the ghost rows received from their owners.
  std::vector<torch::Tensor> inputs(n_blocks), energies(n_blocks), outputs(n_blocks);
  torch::Tensor atom_energy =
      torch::zeros({nlocal}, torch::TensorOptions().dtype(torch::kFloat64).device(device_));
  torch::Tensor position_grad, shift_grad;
  try {
    torch::jit::Method stage = model_->module.get_method("stage");
    for (int k = 0; k < n_blocks; ++k) {
      c10::IValue features;  // None: block 0 starts from the species
      if (k > 0) {
        inputs[k] = send_features(outputs[k - 1]).requires_grad_(true);
        features = inputs[k];
      }
      if (nlocal == 0) continue;
      auto result = stage({k, geometry_leaf, in.numbers, in.edge_index, features,
                           static_cast<int64_t>(nlocal)}).toTuple();
      energies[k] = result->elements()[0].toTensor();
      outputs[k] = result->elements()[1].toTensor();
      atom_energy += energies[k].detach();
    }
    // Backward, last block first: dE/d(outputs[k]) is the gradient of block k+1 with respect
    // to the local rows of its input plus what the ranks holding ghost copies send back.
    torch::Tensor upstream, geometry_grad = torch::zeros_like(geometry_leaf);
    for (int k = n_blocks - 1; k >= 0; --k) {
      torch::Tensor input_grad;
      if (nlocal > 0) {
        std::vector<torch::Tensor> roots{energies[k].sum()};
        std::vector<torch::Tensor> seeds{torch::ones({}, energies[k].options())};
        if (upstream.defined()) {
          roots.push_back(outputs[k]);
          seeds.push_back(upstream);
        }
        std::vector<torch::Tensor> wrt{geometry_leaf};
        if (k > 0) wrt.push_back(inputs[k]);
        auto grads = torch::autograd::grad(roots, wrt, seeds, /*retain_graph=*/false,
                                           /*create_graph=*/false, /*allow_unused=*/true);
        if (grads[0].defined()) geometry_grad += grads[0];
        if (k > 0) input_grad = grads[1].defined() ? grads[1] : torch::zeros_like(inputs[k]);
      }
      if (k > 0) upstream = return_feature_grads(input_grad);
    }
    if (nlocal > 0) {
      std::vector<torch::Tensor> wrt{in.positions};
      if (vflag_either) wrt.push_back(in.shifts);
      auto grads = torch::autograd::grad({geometry}, wrt, {geometry_grad}, /*retain_graph=*/false,
                                         /*create_graph=*/false, /*allow_unused=*/true);
      position_grad = grads[0];
      if (vflag_either) shift_grad = grads[1];
    }
  } catch (const std::exception &error_) {
    error->one(FLERR, std::string("pair_style metamlip: evaluating the model failed: ") +
                          error_.what());
  }
  if (nlocal > 0) accumulate(atom_energy, position_grad, shift_grad);
}

torch::Tensor PairMetamlip::send_features(const torch::Tensor &own) {
  const int nlocal = atom->nlocal;
  const int nall = nlocal + atom->nghost;
  const int width = feature_width_;
  if (nall > feature_capacity_) {
    feature_capacity_ = std::max(nall, atom->nmax);
    memory->grow(feature_rows_, static_cast<bigint>(feature_capacity_) * width, "pair:feature_rows");
  }
  if (nlocal > 0) {
    if (own.dim() != 2 || own.size(0) != nlocal || own.size(1) != width) {
      error->one(FLERR, "pair_style metamlip: the model's block output has shape {}, expected [{}, {}] "
                        "(n_features in the model's metadata)", c10::str(own.sizes()), nlocal, width);
    }
    const torch::Tensor rows = own.detach().to(torch::kCPU, torch::kFloat64).contiguous();
    std::memcpy(feature_rows_, rows.data_ptr<double>(), sizeof(double) * nlocal * width);
  }
  comm->forward_comm(this);
  const int64_t n_nodes = graph_.n_nodes();
  torch::Tensor all = torch::empty({n_nodes, width}, torch::TensorOptions().dtype(torch::kFloat64));
  double *out = all.data_ptr<double>();
  for (int64_t k = 0; k < n_nodes; ++k) {
    std::memcpy(out + k * width, feature_rows_ + static_cast<bigint>(graph_.node_atom[k]) * width,
                sizeof(double) * width);
  }
  return all.to(device_, model_->metadata.dtype);
}

torch::Tensor PairMetamlip::return_feature_grads(const torch::Tensor &grad) {
  const int nlocal = atom->nlocal;
  const int nall = nlocal + atom->nghost;
  const int width = feature_width_;
  // Local rows are all overwritten below (the local atoms are nodes 0..nlocal-1); ghost rows
  // other than the nodes' representatives must send zeros.
  std::fill(feature_rows_ + static_cast<bigint>(nlocal) * width,
            feature_rows_ + static_cast<bigint>(nall) * width, 0.0);
  if (nlocal > 0) {
    const torch::Tensor rows = grad.to(torch::kCPU, torch::kFloat64).contiguous();
    const double *g = rows.data_ptr<double>();
    // Local nodes are rows [0, nlocal); a ghost node's gradient goes to its representative atom.
    for (int64_t k = 0; k < graph_.n_nodes(); ++k) {
      std::memcpy(feature_rows_ + static_cast<bigint>(graph_.node_atom[k]) * width, g + k * width,
                  sizeof(double) * width);
    }
  }
  comm->reverse_comm(this);  // ghost rows are added to their owners' rows
  if (nlocal == 0) return torch::Tensor();
  return torch::from_blob(feature_rows_, {nlocal, width}, torch::TensorOptions().dtype(torch::kFloat64))
      .to(device_, model_->metadata.dtype, /*non_blocking=*/false, /*copy=*/true);
}

int PairMetamlip::pack_forward_comm(int n, int *list, double *buf, int /*pbc_flag*/, int * /*pbc*/) {
  const int width = feature_width_;
  for (int i = 0; i < n; ++i)
    std::memcpy(buf + static_cast<bigint>(i) * width, feature_rows_ + static_cast<bigint>(list[i]) * width,
                sizeof(double) * width);
  return n * width;
}

void PairMetamlip::unpack_forward_comm(int n, int first, double *buf) {
  std::memcpy(feature_rows_ + static_cast<bigint>(first) * feature_width_, buf,
              sizeof(double) * n * feature_width_);
}

int PairMetamlip::pack_reverse_comm(int n, int first, double *buf) {
  std::memcpy(buf, feature_rows_ + static_cast<bigint>(first) * feature_width_,
              sizeof(double) * n * feature_width_);
  return n * feature_width_;
}

void PairMetamlip::unpack_reverse_comm(int n, int *list, double *buf) {
  const int width = feature_width_;
  for (int i = 0; i < n; ++i) {
    double *row = feature_rows_ + static_cast<bigint>(list[i]) * width;
    const double *in = buf + static_cast<bigint>(i) * width;
    for (int c = 0; c < width; ++c) row[c] += in[c];
  }
}

void PairMetamlip::accumulate(const torch::Tensor &atom_energy, const torch::Tensor &position_grad,
                              const torch::Tensor &shift_grad) {
  const int nlocal = atom->nlocal;
  const double factor = energy_factor_;
  double **x = atom->x;
  double **f = atom->f;

  const torch::Tensor energies = atom_energy.to(torch::kCPU, torch::kFloat64).contiguous();
  const double *e = energies.data_ptr<double>();
  if (eflag_global) {
    double sum = 0.0;
    for (int i = 0; i < nlocal; ++i) sum += e[i];
    eng_vdwl += factor * sum;
  }
  if (eflag_atom) {
    for (int i = 0; i < nlocal; ++i) eatom[i] += factor * e[i];
  }

  if (position_grad.defined()) {
    const torch::Tensor grad = position_grad.to(torch::kCPU, torch::kFloat64).contiguous();
    const double *g = grad.data_ptr<double>();
    for (int64_t k = 0; k < graph_.n_nodes(); ++k) {
      double *fa = f[graph_.node_atom[k]];
      fa[0] -= factor * g[3 * k];
      fa[1] -= factor * g[3 * k + 1];
      fa[2] -= factor * g[3 * k + 2];
    }
  }

  if (vflag_either && shift_grad.defined()) {
    // W = sum_atoms x (x) f = -sum_pairs r_p (x) dE/dr_p, with dE/dr_p = dE/d(shift_p).
    const torch::Tensor grad = shift_grad.to(torch::kCPU, torch::kFloat64).contiguous();
    const double *g = grad.data_ptr<double>();
    for (int64_t p = 0; p < graph_.n_edges(); ++p) {
      const int a = graph_.node_atom[graph_.edge_first[p]];
      const int b = graph_.edge_second_atom[p];
      const double r[3] = {x[b][0] - x[a][0], x[b][1] - x[a][1], x[b][2] - x[a][2]};
      const double *gp = g + 3 * p;
      const double v[6] = {-factor * r[0] * gp[0], -factor * r[1] * gp[1], -factor * r[2] * gp[2],
                           -factor * r[0] * gp[1], -factor * r[0] * gp[2], -factor * r[1] * gp[2]};
      if (vflag_global)
        for (int c = 0; c < 6; ++c) virial[c] += v[c];
      if (vflag_atom) {
        for (int c = 0; c < 6; ++c) {
          vatom[a][c] += 0.5 * v[c];
          vatom[b][c] += 0.5 * v[c];
        }
      }
    }
  }
}
