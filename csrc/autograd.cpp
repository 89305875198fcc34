// Autograd of the HIP-NN pair sums, device-agnostic and in C++ (no Python needed, so
// TorchScript models keep their derivatives inside LAMMPS and OpenMM).
//
// Each op's backward is written with the ops themselves, called through the dispatcher with
// autograd enabled, so derivatives of any order work:
//   env = envsum(s, z)      ->  ds = sensesum(g, z),   dz = featsum(g, s)
//   g_s = sensesum(G, z)    ->  dG = envsum(g, z),     dz = featsum(G, g)
//   h   = featsum(G, s)     ->  dG = envsum(s, g),     ds = sensesum(G, g)
#include <torch/autograd.h>
#include <torch/library.h>

#include "metamlip/ops.h"

namespace metamlip {

using torch::Tensor;
using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

namespace {

using PairSumFn = Tensor(const Tensor&, const Tensor&, const Tensor&, const Tensor&);

c10::TypedOperatorHandle<PairSumFn> find_op(const char* name) {
  return c10::Dispatcher::singleton().findSchemaOrThrow(name, "").typed<PairSumFn>();
}

Tensor call(const char* name, const Tensor& a, const Tensor& b, const Tensor& first,
            const Tensor& second) {
  return find_op(name).call(a, b, first, second);
}

/// The op below autograd (CPU or CUDA kernel).
Tensor call_kernel(const char* name, const Tensor& a, const Tensor& b, const Tensor& first,
                   const Tensor& second) {
  at::AutoDispatchBelowADInplaceOrView guard;
  return find_op(name).call(a, b, first, second);
}

class EnvsumFunction : public torch::autograd::Function<EnvsumFunction> {
 public:
  static Tensor forward(AutogradContext* ctx, const Tensor& sense, const Tensor& features,
                        const Tensor& first, const Tensor& second) {
    ctx->save_for_backward({sense, features, first, second});
    return call_kernel("metamlip::envsum", sense, features, first, second);
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const Tensor& grad = grads[0];
    Tensor d_sense, d_features;
    if (grad.defined()) {
      if (ctx->needs_input_grad(0)) d_sense = sensesum(grad, saved[1], saved[2], saved[3]);
      if (ctx->needs_input_grad(1)) d_features = featsum(grad, saved[0], saved[2], saved[3]);
    }
    return {d_sense, d_features, Tensor(), Tensor()};
  }
};

class SensesumFunction : public torch::autograd::Function<SensesumFunction> {
 public:
  static Tensor forward(AutogradContext* ctx, const Tensor& env_grad, const Tensor& features,
                        const Tensor& first, const Tensor& second) {
    ctx->save_for_backward({env_grad, features, first, second});
    return call_kernel("metamlip::sensesum", env_grad, features, first, second);
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const Tensor& grad = grads[0];  // [P, S]
    Tensor d_env, d_features;
    if (grad.defined()) {
      if (ctx->needs_input_grad(0)) d_env = envsum(grad, saved[1], saved[2], saved[3]);
      if (ctx->needs_input_grad(1)) d_features = featsum(saved[0], grad, saved[2], saved[3]);
    }
    return {d_env, d_features, Tensor(), Tensor()};
  }
};

class FeatsumFunction : public torch::autograd::Function<FeatsumFunction> {
 public:
  static Tensor forward(AutogradContext* ctx, const Tensor& env_grad, const Tensor& sense,
                        const Tensor& first, const Tensor& second) {
    ctx->save_for_backward({env_grad, sense, first, second});
    return call_kernel("metamlip::featsum", env_grad, sense, first, second);
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const Tensor& grad = grads[0];  // [N, F]
    Tensor d_env, d_sense;
    if (grad.defined()) {
      if (ctx->needs_input_grad(0)) d_env = envsum(saved[1], grad, saved[2], saved[3]);
      if (ctx->needs_input_grad(1)) d_sense = sensesum(saved[0], grad, saved[2], saved[3]);
    }
    return {d_env, d_sense, Tensor(), Tensor()};
  }
};

Tensor envsum_autograd(const Tensor& sense, const Tensor& features, const Tensor& first,
                       const Tensor& second) {
  return EnvsumFunction::apply(sense, features, first, second);
}
Tensor sensesum_autograd(const Tensor& env_grad, const Tensor& features, const Tensor& first,
                         const Tensor& second) {
  return SensesumFunction::apply(env_grad, features, first, second);
}
Tensor featsum_autograd(const Tensor& env_grad, const Tensor& sense, const Tensor& first,
                        const Tensor& second) {
  return FeatsumFunction::apply(env_grad, sense, first, second);
}

/// The neighbour list has no derivative (integer outputs; distances and vectors are returned
/// detached): run it below autograd so that its outputs never carry a grad_fn.
NeighborResult neighbor_list_autograd(const Tensor& positions, double cutoff,
                                      const std::optional<Tensor>& cell,
                                      const std::optional<Tensor>& pbc,
                                      const std::optional<Tensor>& batch, bool full_list,
                                      bool return_vectors) {
  static const auto op =
      c10::Dispatcher::singleton()
          .findSchemaOrThrow("metamlip::neighbor_list", "")
          .typed<NeighborResult(const Tensor&, double, const std::optional<Tensor>&,
                                const std::optional<Tensor>&, const std::optional<Tensor>&, bool,
                                bool)>();
  at::AutoDispatchBelowADInplaceOrView guard;
  return op.call(positions, cutoff, cell, pbc, batch, full_list, return_vectors);
}

}  // namespace

Tensor envsum(const Tensor& sense, const Tensor& features, const Tensor& pair_first,
              const Tensor& pair_second) {
  return call("metamlip::envsum", sense, features, pair_first, pair_second);
}
Tensor sensesum(const Tensor& env_grad, const Tensor& features, const Tensor& pair_first,
                const Tensor& pair_second) {
  return call("metamlip::sensesum", env_grad, features, pair_first, pair_second);
}
Tensor featsum(const Tensor& env_grad, const Tensor& sense, const Tensor& pair_first,
               const Tensor& pair_second) {
  return call("metamlip::featsum", env_grad, sense, pair_first, pair_second);
}

}  // namespace metamlip

TORCH_LIBRARY_IMPL(metamlip, Autograd, m) {
  m.impl("neighbor_list", &metamlip::neighbor_list_autograd);
  m.impl("envsum", &metamlip::envsum_autograd);
  m.impl("sensesum", &metamlip::sensesum_autograd);
  m.impl("featsum", &metamlip::featsum_autograd);
}
