// The one place where metamlip's op schemas are declared and bound.
//
// Implementations: CPU in csrc/cpu/, CUDA in csrc/cuda/ (when built with METAMLIP_CUDA),
// autograd (device-agnostic, backward written with the pair-sum ops themselves) in
// csrc/autograd.cpp.
#include <torch/library.h>

#include "metamlip/ops.h"

namespace {

/// "torch=<version>;cxx11_abi=<0|1>;cuda=<0|1>": what this library was built with, checked by
/// the loader.
std::string build_info() {
  return std::string("torch=") + METAMLIP_TORCH_VERSION +
         ";cxx11_abi=" + std::to_string(METAMLIP_TORCH_CXX11_ABI) +
#ifdef METAMLIP_WITH_CUDA
         ";cuda=1";
#else
         ";cuda=0";
#endif
}

}  // namespace

TORCH_LIBRARY(metamlip, m) {
  m.def("build_info() -> str", &build_info);
  // Cell-list neighbour search; see metamlip/ops.h. Distances and vectors are filled only when
  // return_vectors is true and carry no autograd history (recompute them from S for gradients).
  m.def(
      "neighbor_list(Tensor positions, float cutoff, Tensor? cell=None, Tensor? pbc=None, "
      "Tensor? batch=None, bool full_list=True, bool return_vectors=False) "
      "-> (Tensor i, Tensor j, Tensor S, Tensor distances, Tensor vectors)");
}

TORCH_LIBRARY_IMPL(metamlip, CPU, m) {
  m.impl("neighbor_list", &metamlip::neighbor_list_cpu);
}
