// Which torch device pair_style metamlip runs the model on (`pair_style metamlip device cuda|cpu`).
//
// Without the keyword: cuda when the torch this plugin uses has CUDA, a GPU is visible and the
// op library the model needs was built with CUDA; else cpu. Under MPI each rank takes the GPU
// of its node-local rank (rank % number of visible GPUs).
#ifndef METAMLIP_DEVICE_H
#define METAMLIP_DEVICE_H

#include <torch/types.h>

#include <string>

namespace metamlip {

enum class DeviceRequest { kAuto, kCpu, kCuda };

struct DeviceChoice {
  torch::Device device = torch::kCPU;
  std::string reason;  // why this device, for the log ("asked for", "no GPU visible", ...)
  int n_gpus = 0;      // GPUs visible to this process
};

/// The device for this rank. op_library_info: the op library's build_info ("torch=...;cuda=0|1"),
/// "" when the model needs no op library; node_local_rank: this rank's index among the ranks of
/// its node. Throws std::runtime_error (a one-line reason and what to do) when cuda is asked for
/// and cannot be used.
DeviceChoice choose_device(DeviceRequest request, const std::string &op_library_info,
                           int node_local_rank);

/// "cpu" or "cuda:K".
std::string device_name(const torch::Device &device);

}  // namespace metamlip

#endif
