#include "exported_model.h"

#include <ATen/core/dispatch/Dispatcher.h>
#include <caffe2/serialize/inline_container.h>
#include <dlfcn.h>

#include <fstream>
#include <mutex>

#include "json.h"  // LAMMPS's bundled nlohmann::json

namespace metamlip {

namespace {

using json = LAMMPS_NS::json;

const char *const kReexport =
    "Export the model again with `metamlip-export` from this metamlip installation.";

template <typename T>
T required(const json &meta, const std::string &key, const std::string &path) {
  if (!meta.contains(key)) {
    throw ModelError("model file " + path + ": metadata.json lacks '" + key + "'. " + kReexport);
  }
  try {
    return meta.at(key).get<T>();
  } catch (const std::exception &error) {
    throw ModelError("model file " + path + ": metadata.json entry '" + key +
                     "' has the wrong type (" + error.what() + "). " + kReexport);
  }
}

std::string read_extra_file(const std::string &path, const std::string &name) {
  {
    std::ifstream probe(path, std::ios::binary);
    if (!probe.good()) {
      throw ModelError("cannot open model file '" + path +
                       "': no such readable file (give its path relative to the directory "
                       "LAMMPS runs in, or an absolute path)");
    }
  }
  try {
    caffe2::serialize::PyTorchStreamReader reader(path);
    const std::string record = "extra/" + name;
    // torch.save archives (training checkpoints) have data.pkl but, unlike TorchScript, no
    // constants.pkl.
    if (!reader.hasRecord(record) && reader.hasRecord("data.pkl") &&
        !reader.hasRecord("constants.pkl")) {
      throw ModelError("model file " + path +
                       " is a training checkpoint, not an exported model: export it first with "
                       "`metamlip-export " + path + " -o model.pt` and give model.pt to "
                       "pair_coeff");
    }
    if (!reader.hasRecord(record)) {
      throw ModelError("model file " + path + " has no " + name +
                       ": it is a TorchScript file but not one written by metamlip-export. " +
                       kReexport);
    }
    auto [data, size] = reader.getRecord(record);
    return std::string(static_cast<const char *>(data.get()), size);
  } catch (const c10::Error &error) {
    throw ModelError("model file " + path +
                     " is not a readable TorchScript archive (corrupt, truncated, or not a "
                     "model file): " + error.what_without_backtrace() + ". " + kReexport);
  }
}

}  // namespace

ModelMetadata read_metadata(const std::string &path) {
  const std::string text = read_extra_file(path, "metadata.json");
  json meta;
  try {
    meta = json::parse(text);
  } catch (const std::exception &error) {
    throw ModelError("model file " + path + ": metadata.json is not valid JSON (" + error.what() +
                     "). " + kReexport);
  }
  if (!meta.is_object()) {
    throw ModelError("model file " + path + ": metadata.json is not a JSON object. " + kReexport);
  }
  ModelMetadata out;
  out.format_version = required<int>(meta, "format_version", path);
  if (out.format_version != kSupportedFormatVersion) {
    throw ModelError("model file " + path + " has format_version " +
                     std::to_string(out.format_version) + ", but this LAMMPS plugin reads " +
                     "format_version " + std::to_string(kSupportedFormatVersion) +
                     ". Export the model with the metamlip version that built this plugin, or "
                     "install the metamlip version that exported it (`make install`).");
  }
  out.elements = required<std::vector<std::string>>(meta, "elements", path);
  out.atomic_numbers = required<std::vector<int64_t>>(meta, "atomic_numbers", path);
  if (out.elements.empty() || out.elements.size() != out.atomic_numbers.size()) {
    throw ModelError("model file " + path +
                     ": metadata.json 'elements' and 'atomic_numbers' must be non-empty lists of "
                     "the same length. " + kReexport);
  }
  out.cutoff = required<double>(meta, "cutoff", path);
  out.n_interactions = required<int>(meta, "n_interactions", path);
  if (!(out.cutoff > 0.0) || out.n_interactions < 1) {
    throw ModelError("model file " + path + ": metadata.json needs cutoff > 0 and "
                     "n_interactions >= 1. " + kReexport);
  }
  out.n_features = meta.contains("n_features") ? required<int>(meta, "n_features", path) : 0;
  out.tensor_order = meta.contains("tensor_order") ? required<int>(meta, "tensor_order", path) : 0;
  out.receptive_field = meta.contains("receptive_field")
                            ? required<double>(meta, "receptive_field", path)
                            : out.n_interactions * out.cutoff;
  out.receptive_field = std::max(out.receptive_field, out.n_interactions * out.cutoff);
  if (meta.contains("min_pair_distance"))
    out.min_pair_distance = required<double>(meta, "min_pair_distance", path);
  if (meta.contains("units")) {
    const json &units = meta.at("units");
    const bool ok = units.is_object() && units.value("energy", "") == "eV" &&
                    units.value("length", "") == "Angstrom";
    if (!ok) {
      throw ModelError("model file " + path + ": units " + units.dump() +
                       " are not supported (the plugin expects energy eV, length Angstrom). " +
                       kReexport);
    }
  }
  out.level = meta.contains("level") && meta.at("level").is_string()
                  ? meta.at("level").get<std::string>() : "";
  out.dtype_name = required<std::string>(meta, "dtype", path);
  if (out.dtype_name == "float64") {
    out.dtype = torch::kFloat64;
  } else if (out.dtype_name == "float32") {
    out.dtype = torch::kFloat32;
  } else {
    throw ModelError("model file " + path + ": dtype '" + out.dtype_name +
                     "' is not supported (float64 or float32). " + kReexport);
  }
  if (meta.contains("op_library") && !meta.at("op_library").is_null()) {
    const json &ops = meta.at("op_library");
    // "required": false when the model's code calls no op (then nothing needs loading).
    if (!ops.contains("required") || ops.at("required").is_null() || ops.value("required", true)) {
      out.op_library_file = required<std::string>(ops, "file", path);
      out.op_library_namespace = required<std::string>(ops, "namespace", path);
    }
  }
  return out;
}

std::string plugin_directory() {
  Dl_info info;
  if (dladdr(reinterpret_cast<void *>(&plugin_directory), &info) == 0 || !info.dli_fname) {
    return ".";
  }
  const std::string file = info.dli_fname;
  const auto slash = file.rfind('/');
  return slash == std::string::npos ? "." : file.substr(0, slash);
}

namespace {

std::optional<c10::OperatorHandle> find_op(const std::string &name) {
  return c10::Dispatcher::singleton().findSchema({name, ""});
}

}  // namespace

std::string load_op_library(const ModelMetadata &metadata) {
  if (metadata.op_library_file.empty()) return "";
  static std::mutex mutex;
  std::lock_guard<std::mutex> lock(mutex);
  const std::string build_info = metadata.op_library_namespace + "::build_info";
  // Already registered (an earlier model, or a Python process that loaded metamlip.ops):
  // loading a second copy of the library would register the ops twice and abort.
  if (!find_op(build_info)) {
    std::string file = metadata.op_library_file;
    if (file.find('/') == std::string::npos) file = plugin_directory() + "/" + file;
    if (dlopen(file.c_str(), RTLD_NOW | RTLD_GLOBAL) == nullptr) {
      const char *reason = dlerror();
      throw ModelError("cannot load the op library the model needs, " + file + ": " +
                       (reason ? reason : "unknown error") +
                       ". Reinstall metamlip so that the plugin and its op library are built "
                       "together (`make install`, or `pip install --no-build-isolation -e .`).");
    }
    if (!find_op(build_info)) {
      throw ModelError("the op library " + file + " does not register " + build_info +
                       "; the model needs a different op library than this metamlip provides.");
    }
  }
  auto op = find_op(build_info)->typed<std::string()>();
  const std::string info = op.call();
  const std::string expected = std::string("torch=") + METAMLIP_TORCH_VERSION + ";";
  if (info.rfind(expected, 0) != 0) {
    throw ModelError("the op library was built for a different torch (" + info +
                     ") than this plugin (torch " + METAMLIP_TORCH_VERSION +
                     "). Rebuild both: `make install`.");
  }
  return info;
}

ExportedModel load_exported_model(const std::string &path, const torch::Device &device) {
  ExportedModel out;
  out.metadata = read_metadata(path);
  load_op_library(out.metadata);
  try {
    out.module = torch::jit::load(path, device);
  } catch (const c10::Error &error) {
    throw ModelError("cannot load the TorchScript model in " + path + ": " +
                     error.what_without_backtrace() + ". " + kReexport);
  }
  out.module.eval();
  for (const auto &parameter : out.module.parameters()) {
    if (parameter.scalar_type() != out.metadata.dtype) {
      throw ModelError("model file " + path + ": metadata.json says dtype " +
                       out.metadata.dtype_name + " but the model's parameters are " +
                       std::string(c10::toString(parameter.scalar_type())) + ". " + kReexport);
    }
    break;
  }
  return out;
}

}  // namespace metamlip
