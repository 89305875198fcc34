// Autograd of the HIP-NN pair sums, device-agnostic and in C++ (no Python needed, so
// TorchScript models keep their derivatives inside LAMMPS and OpenMM).
//
// Each op's backward is written with the ops themselves, called through the dispatcher with
// autograd enabled, so derivatives of any order work:
//   env = envsum(s, z)      ->  ds = sensesum(g, z),   dz = featsum(g, s)
//   g_s = sensesum(G, z)    ->  dG = envsum(g, z),     dz = featsum(G, g)
//   h   = featsum(G, s)     ->  dG = envsum(s, g),     ds = sensesum(G, g)
// and likewise the four HIP-NN-TS ops (tensorsum*) with each other.
#include <torch/autograd.h>
#include <torch/library.h>

#include <array>

#include "metamlip/ops.h"

namespace metamlip {

using torch::Tensor;
using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

namespace {

using PairSumFn = Tensor(const Tensor&, const Tensor&, const Tensor&, const Tensor&);

/// The dispatcher handle of the op `name` ("metamlip::..."), with C++ signature Signature.
template <typename Signature>
c10::TypedOperatorHandle<Signature> find_op(const char* name) {
  return c10::Dispatcher::singleton().findSchemaOrThrow(name, "").typed<Signature>();
}

Tensor call(const char* name, const Tensor& a, const Tensor& b, const Tensor& first,
            const Tensor& second) {
  return find_op<PairSumFn>(name).call(a, b, first, second);
}

/// The op below autograd (CPU or CUDA kernel).
Tensor call_kernel(const char* name, const Tensor& a, const Tensor& b, const Tensor& first,
                   const Tensor& second) {
  at::AutoDispatchBelowADInplaceOrView guard;
  return find_op<PairSumFn>(name).call(a, b, first, second);
}

/// Autograd of a pair sum op(a, b, first, second) whose derivative rules are Rule::grad_a and
/// Rule::grad_b (grad, a, b, first, second), each written with the ops themselves.
template <typename Rule>
class PairSumFunction : public torch::autograd::Function<PairSumFunction<Rule>> {
 public:
  static Tensor forward(AutogradContext* ctx, const Tensor& a, const Tensor& b, const Tensor& first,
                        const Tensor& second) {
    ctx->save_for_backward({a, b, first, second});
    return call_kernel(Rule::name, a, b, first, second);
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const Tensor& grad = grads[0];
    Tensor d_a, d_b;
    if (grad.defined()) {
      if (ctx->needs_input_grad(0)) d_a = Rule::grad_a(grad, saved[0], saved[1], saved[2], saved[3]);
      if (ctx->needs_input_grad(1)) d_b = Rule::grad_b(grad, saved[0], saved[1], saved[2], saved[3]);
    }
    return {d_a, d_b, Tensor(), Tensor()};
  }
};

/// env = envsum(s, z): ds = sensesum(g, z), dz = featsum(g, s).
struct EnvsumRule {
  static constexpr const char* name = "metamlip::envsum";
  static Tensor grad_a(const Tensor& g, const Tensor& s, const Tensor& z, const Tensor& i, const Tensor& j) {
    return sensesum(g, z, i, j);
  }
  static Tensor grad_b(const Tensor& g, const Tensor& s, const Tensor& z, const Tensor& i, const Tensor& j) {
    return featsum(g, s, i, j);
  }
};

/// g_s = sensesum(G, z): dG = envsum(g, z), dz = featsum(G, g).
struct SensesumRule {
  static constexpr const char* name = "metamlip::sensesum";
  static Tensor grad_a(const Tensor& g, const Tensor& G, const Tensor& z, const Tensor& i, const Tensor& j) {
    return envsum(g, z, i, j);
  }
  static Tensor grad_b(const Tensor& g, const Tensor& G, const Tensor& z, const Tensor& i, const Tensor& j) {
    return featsum(G, g, i, j);
  }
};

/// h = featsum(G, s): dG = envsum(s, g), ds = sensesum(G, g).
struct FeatsumRule {
  static constexpr const char* name = "metamlip::featsum";
  static Tensor grad_a(const Tensor& g, const Tensor& G, const Tensor& s, const Tensor& i, const Tensor& j) {
    return envsum(s, g, i, j);
  }
  static Tensor grad_b(const Tensor& g, const Tensor& G, const Tensor& s, const Tensor& i, const Tensor& j) {
    return sensesum(G, g, i, j);
  }
};

template <typename Rule>
Tensor pair_sum_autograd(const Tensor& a, const Tensor& b, const Tensor& first, const Tensor& second) {
  return PairSumFunction<Rule>::apply(a, b, first, second);
}

/// The HIP-NN-TS ops by the slot of T(G, s, t, V) they differentiate (metamlip/ops.h); op k
/// takes the other three slots, in order.
constexpr const char* kTensorSumOps[4] = {"metamlip::tensorsum", "metamlip::tensorsum_sense",
                                          "metamlip::tensorsum_basis", "metamlip::tensorsum_values"};
using TensorSumFn = Tensor(const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&);

/// dT/d(slot) from the other three slots of `slots` (slots[slot] is not used).
Tensor tensor_partial(int slot, const std::array<Tensor, 4>& slots, const Tensor& first,
                      const Tensor& second) {
  std::array<Tensor, 3> args;
  for (int k = 0, n = 0; k < 4; ++k)
    if (k != slot) args[n++] = slots[k];
  return find_op<TensorSumFn>(kTensorSumOps[slot]).call(args[0], args[1], args[2], first, second);
}

/// Autograd of the op dT/d(Slot). T is linear in every slot, so the derivative of
/// <grad, dT/dX> with respect to another slot Y is dT/dY with X replaced by grad: the backward
/// is written with the same four ops, and derivatives of any order follow.
template <int Slot>
class TensorSumFunction : public torch::autograd::Function<TensorSumFunction<Slot>> {
 public:
  static Tensor forward(AutogradContext* ctx, const Tensor& a, const Tensor& b, const Tensor& c,
                        const Tensor& first, const Tensor& second) {
    ctx->save_for_backward({a, b, c, first, second});
    at::AutoDispatchBelowADInplaceOrView guard;
    return find_op<TensorSumFn>(kTensorSumOps[Slot]).call(a, b, c, first, second);
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    std::array<Tensor, 4> slots;
    for (int k = 0, n = 0; k < 4; ++k) slots[k] = k == Slot ? grads[0] : saved[n++];
    variable_list out(5);
    if (!grads[0].defined()) return out;
    for (int k = 0, n = 0; k < 4; ++k) {
      if (k == Slot) continue;
      if (ctx->needs_input_grad(n)) out[n] = tensor_partial(k, slots, saved[3], saved[4]);
      ++n;
    }
    return out;
  }
};

template <int Slot>
Tensor tensor_sum_autograd(const Tensor& a, const Tensor& b, const Tensor& c, const Tensor& first,
                           const Tensor& second) {
  return TensorSumFunction<Slot>::apply(a, b, c, first, second);
}

/// Sensitivities, differentiable once with respect to the distances. Refuses what it cannot do
/// rather than return wrong numbers: gradients for mu or sigma, and a differentiable backward
/// (create_graph, as training on forces needs); the Python reference does both.
class SensitivityFunction : public torch::autograd::Function<SensitivityFunction> {
 public:
  static Tensor forward(AutogradContext* ctx, const Tensor& distances, const Tensor& mu,
                        const Tensor& sigma, double cutoff) {
    static const auto op =
        find_op<Tensor(const Tensor&, const Tensor&, const Tensor&, double)>("metamlip::sensitivity");
    Tensor sense;
    {
      at::AutoDispatchBelowADInplaceOrView guard;
      sense = op.call(distances, mu, sigma, cutoff);
    }
    ctx->save_for_backward({distances, mu, sigma, sense});
    ctx->saved_data["cutoff"] = cutoff;
    return sense;
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    constexpr const char* what = "metamlip::sensitivity: ";
    TORCH_CHECK(!ctx->needs_input_grad(1) && !ctx->needs_input_grad(2), what,
                "no gradient for mu and sigma here; use the reference (HIPNN implementation='torch' "
                "or parameters that require grad)");
    TORCH_CHECK(!torch::autograd::GradMode::is_enabled(), what,
                "second derivatives are not implemented (create_graph=True); use the reference "
                "(HIPNN implementation='torch')");
    const auto saved = ctx->get_saved_variables();
    Tensor d_distances;
    if (grads[0].defined() && ctx->needs_input_grad(0)) {
      static const auto op =
          find_op<Tensor(const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&, double)>(
              "metamlip::sensitivity_backward");
      d_distances = op.call(grads[0], saved[3], saved[0], saved[1], saved[2], ctx->saved_data["cutoff"].toDouble());
    }
    return {d_distances, Tensor(), Tensor(), Tensor()};
  }
};

Tensor sensitivity_autograd(const Tensor& distances, const Tensor& mu, const Tensor& sigma, double cutoff) {
  return SensitivityFunction::apply(distances, mu, sigma, cutoff);
}

/// The neighbour list has no derivative (integer outputs; distances and vectors are returned
/// detached): run it below autograd so that its outputs never carry a grad_fn.
NeighborResult neighbor_list_autograd(const Tensor& positions, double cutoff,
                                      const std::optional<Tensor>& cell,
                                      const std::optional<Tensor>& pbc,
                                      const std::optional<Tensor>& batch, bool full_list,
                                      bool return_vectors) {
  static const auto op =
      find_op<NeighborResult(const Tensor&, double, const std::optional<Tensor>&, const std::optional<Tensor>&,
                             const std::optional<Tensor>&, bool, bool)>("metamlip::neighbor_list");
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
  m.impl("envsum", &metamlip::pair_sum_autograd<metamlip::EnvsumRule>);
  m.impl("sensesum", &metamlip::pair_sum_autograd<metamlip::SensesumRule>);
  m.impl("featsum", &metamlip::pair_sum_autograd<metamlip::FeatsumRule>);
  m.impl("tensorsum", &metamlip::tensor_sum_autograd<0>);
  m.impl("tensorsum_sense", &metamlip::tensor_sum_autograd<1>);
  m.impl("tensorsum_basis", &metamlip::tensor_sum_autograd<2>);
  m.impl("tensorsum_values", &metamlip::tensor_sum_autograd<3>);
  m.impl("sensitivity", &metamlip::sensitivity_autograd);
}
