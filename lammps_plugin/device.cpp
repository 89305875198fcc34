#include "device.h"

#include <dlfcn.h>
#include <torch/cuda.h>

#include <cstdlib>
#include <stdexcept>

namespace metamlip {

namespace {

/// Whether the torch in this process is a CUDA build (its libtorch_cuda is loaded: libtorch.so
/// of a CUDA build needs it, a CPU build has none).
bool torch_has_cuda() {
  void *handle = dlopen("libtorch_cuda.so", RTLD_NOW | RTLD_NOLOAD);
  if (handle == nullptr) return false;
  dlclose(handle);
  return true;
}

/// Why cuda cannot be used here, or "" when it can.
std::string cuda_problem(const std::string &op_library_info, int n_gpus) {
  if (!torch_has_cuda()) {
    return "the torch this plugin uses (" + std::string(METAMLIP_TORCH_VERSION) +
           ") was built without CUDA";
  }
  if (n_gpus == 0) {
    const char *visible = std::getenv("CUDA_VISIBLE_DEVICES");
    return "no CUDA GPU is visible to torch " + std::string(METAMLIP_TORCH_VERSION) +
           (visible ? " (CUDA_VISIBLE_DEVICES=" + std::string(visible) + ")" : "");
  }
  if (!op_library_info.empty() && op_library_info.find(";cuda=1") == std::string::npos) {
    return "the op library the model needs was built without CUDA (" + op_library_info +
           "); rebuild metamlip where nvcc and a CUDA torch are installed";
  }
  return "";
}

}  // namespace

DeviceChoice choose_device(DeviceRequest request, const std::string &op_library_info,
                           int node_local_rank) {
  DeviceChoice choice;
  if (request == DeviceRequest::kCpu) {
    choice.reason = "asked for";
    return choice;
  }
  choice.n_gpus = torch_has_cuda() ? static_cast<int>(torch::cuda::device_count()) : 0;
  const std::string problem = cuda_problem(op_library_info, choice.n_gpus);
  if (!problem.empty()) {
    if (request == DeviceRequest::kCuda) {
      throw std::runtime_error("pair_style metamlip device cuda: " + problem +
                               ". Use `device cpu`, or run where a GPU and a CUDA build are "
                               "present.");
    }
    choice.reason = problem;
    return choice;
  }
  const int index = node_local_rank % choice.n_gpus;
  choice.device = torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(index));
  choice.reason = request == DeviceRequest::kCuda ? "asked for" : "a GPU is visible";
  return choice;
}

std::string device_name(const torch::Device &device) {
  return device.is_cuda() ? "cuda:" + std::to_string(device.index()) : "cpu";
}

}  // namespace metamlip
