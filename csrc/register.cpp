// The one place where metamlip's op schemas are declared and bound.
#include <torch/library.h>

#include "metamlip/ops.h"

namespace {

/// "torch=<version>;cxx11_abi=<0|1>": what this library was built against, checked by the loader.
std::string build_info() {
  return std::string("torch=") + METAMLIP_TORCH_VERSION +
         ";cxx11_abi=" + std::to_string(METAMLIP_TORCH_CXX11_ABI);
}

}  // namespace

TORCH_LIBRARY(metamlip, m) {
  m.def("build_info() -> str", &build_info);
  m.def("brute_force_pairs(Tensor positions, float cutoff, Tensor batch) -> (Tensor, Tensor)");
}

TORCH_LIBRARY_IMPL(metamlip, CPU, m) {
  m.impl("brute_force_pairs", &metamlip::brute_force_pairs_cpu);
}
