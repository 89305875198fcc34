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
  // HIP-NN pair sums (hippynn's envsum / sensesum / featsum); P pairs (pair_first i,
  // pair_second j), N atoms, S sensitivities, F features.
  //   envsum:   env[i, s, f] = sum_{p = (i, j)} sense[p, s] * features[j, f]        -> [N, S, F]
  //   sensesum: g[p, s] = sum_f env_grad[i_p, s, f] * features[j_p, f]               -> [P, S]
  //   featsum:  h[j, f] = sum_{p: j_p = j} sum_s env_grad[i_p, s, f] * sense[p, s]   -> [N, F]
  m.def("envsum(Tensor sense, Tensor features, Tensor pair_first, Tensor pair_second) -> Tensor");
  m.def("sensesum(Tensor env_grad, Tensor features, Tensor pair_first, Tensor pair_second) -> Tensor");
  m.def("featsum(Tensor env_grad, Tensor sense, Tensor pair_first, Tensor pair_second) -> Tensor");
  // HIP-NN-TS pair sums (metamlip/ops.h): the four partial derivatives of the multilinear form
  // T(G, s, t, V) = sum_p G[i_p, c, o] t[p, c] s[p, v] V[j_p, v, o] (summed over c, v, o), each
  // taking the other three; grad G [N, C, O], sense s [P, S], basis t [P, C], values V [N, S, O].
  m.def("tensorsum(Tensor sense, Tensor basis, Tensor values, Tensor pair_first, Tensor pair_second) -> Tensor");
  m.def("tensorsum_sense(Tensor grad, Tensor basis, Tensor values, Tensor pair_first, Tensor pair_second) -> Tensor");
  m.def("tensorsum_basis(Tensor grad, Tensor sense, Tensor values, Tensor pair_first, Tensor pair_second) -> Tensor");
  m.def("tensorsum_values(Tensor grad, Tensor sense, Tensor basis, Tensor pair_first, Tensor pair_second) -> Tensor");
  // HIP-NN sensitivities s[p, k] of distances [P] (metamlip/ops.h); differentiable once, with
  // respect to the distances only (fixed mu and sigma: exported models).
  m.def("sensitivity(Tensor distances, Tensor mu, Tensor sigma, float cutoff) -> Tensor");
  m.def("sensitivity_backward(Tensor grad, Tensor sense, Tensor distances, Tensor mu, Tensor sigma, float cutoff) -> Tensor");
}

TORCH_LIBRARY_IMPL(metamlip, CPU, m) {
  m.impl("neighbor_list", &metamlip::neighbor_list_cpu);
  m.impl("envsum", &metamlip::envsum_cpu);
  m.impl("sensesum", &metamlip::sensesum_cpu);
  m.impl("featsum", &metamlip::featsum_cpu);
  m.impl("tensorsum", &metamlip::tensorsum_cpu);
  m.impl("tensorsum_sense", &metamlip::tensorsum_sense_cpu);
  m.impl("tensorsum_basis", &metamlip::tensorsum_basis_cpu);
  m.impl("tensorsum_values", &metamlip::tensorsum_values_cpu);
  m.impl("sensitivity", &metamlip::sensitivity_cpu);
  m.impl("sensitivity_backward", &metamlip::sensitivity_backward_cpu);
}
