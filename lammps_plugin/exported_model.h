// Loading an exported metamlip model (a TorchScript file from `metamlip-export`) for LAMMPS.
//
// The module's forward(positions [N,3], atomic_numbers [N] int64, edge_index [2,P] int64,
// edge_shift_vectors [P,3], energy_atom_mask [N] bool) -> [N] returns per-atom energies in eV,
// zero where the mask is false; r_ij = positions[j] - positions[i] + edge_shift_vectors[p].
// Engines that split the atoms between processes call its method stage(block, positions,
// atomic_numbers, edge_index, edge_shift_vectors, features, n_receivers) once per interaction
// block (python/metamlip/deploy/model.py). The file's extra file `metadata.json` describes the
// model (format_version 1).
#ifndef METAMLIP_EXPORTED_MODEL_H
#define METAMLIP_EXPORTED_MODEL_H

#include <torch/script.h>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace metamlip {

/// A problem with the model file; what() says what is wrong and what to do about it.
class ModelError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// What LAMMPS needs from metadata.json.
struct ModelMetadata {
  int format_version = 0;
  std::vector<std::string> elements;       // symbols, in model order
  std::vector<int64_t> atomic_numbers;     // same order as elements
  double cutoff = 0.0;                     // Angstrom
  int n_interactions = 0;
  int n_features = 0;                      // width of each block's output features (0: absent)
  int tensor_order = 0;                    // HIP-NN-TS order; > 0: stage takes pair vectors
  double receptive_field = 0.0;            // Angstrom, n_interactions * cutoff
  double min_pair_distance = 0.1;          // Angstrom: closer atoms are an error
  std::string level;
  torch::Dtype dtype = torch::kFloat64;
  std::string dtype_name;
  std::string op_library_file;             // "" when the model needs no op library
                                           // (a bare name is looked up beside the plugin)
  std::string op_library_namespace;
};

/// The format versions this plugin reads.
constexpr int kSupportedFormatVersion = 1;

/// Read and check metadata.json of a TorchScript archive (without loading the model).
ModelMetadata read_metadata(const std::string &path);

/// Load the op library the model needs (searched as an absolute path, then beside this
/// plugin), once per process, and check it was built for the torch this plugin uses. Returns
/// its build_info ("torch=...;cxx11_abi=...;cuda=0|1"), "" when the model needs no op library.
std::string load_op_library(const ModelMetadata &metadata);

/// read_metadata + load_op_library + torch::jit::load onto `device` (parameters, buffers and
/// the constants of the frozen model), in eval mode.
struct ExportedModel {
  ModelMetadata metadata;
  torch::jit::Module module;
};
ExportedModel load_exported_model(const std::string &path, const torch::Device &device);

/// Directory holding this plugin's shared library (where the op library is installed too).
std::string plugin_directory();

}  // namespace metamlip

#endif
