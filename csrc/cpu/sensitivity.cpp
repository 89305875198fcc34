// HIP-NN's inverse-Gaussian sensitivities in one pass over the pairs (CPU, OpenMP).
//
// s[p, k] = exp(-min(e, 60)) * c(r_p),  e = (1/r_p - mu_k)^2 / (2 sigma_k^2),
// c(r) = cos^2(pi r / (2 r_c)) for r < r_c, else 0 -- the formula of
// python/metamlip/nn/sensitivity.py, which is the reference. The backward gives the gradient
// with respect to the distances only (models whose sensitivity parameters are fixed: exported
// ones): sum over k of grad[p, k] * ds[p, k]/dr_p, from the forward's output s (no exp again).
#include <cmath>
#include <vector>

#include "metamlip/memory.h"
#include "metamlip/ops.h"
#include "metamlip/parallel.h"

namespace metamlip {
namespace {

constexpr double kMaxExponent = 60.0;  // as the reference: exp(-60) ~ 1e-26, and no subnormals

template <typename T>
std::vector<T> reciprocals(const T* values, int64_t n) {
  std::vector<T> out(n);
  for (int64_t k = 0; k < n; ++k) out[k] = T(1) / values[k];
  return out;
}

/// Pairs per parallel work item.
constexpr int64_t kChunk = 2048;

}  // namespace

void check_sensitivity(const char* what, const torch::Tensor& distances, const torch::Tensor& mu,
                       const torch::Tensor& sigma, double cutoff) {
  TORCH_CHECK(distances.dim() == 1, what, ": distances must have shape [P], got ", distances.sizes());
  TORCH_CHECK(mu.dim() == 1 && sigma.sizes() == mu.sizes(), what,
              ": mu and sigma must have the same shape [S], got ", mu.sizes(), " and ", sigma.sizes());
  TORCH_CHECK(distances.scalar_type() == torch::kFloat32 || distances.scalar_type() == torch::kFloat64, what,
              ": only float32 and float64 are supported, got ", distances.scalar_type());
  TORCH_CHECK(mu.scalar_type() == distances.scalar_type() && sigma.scalar_type() == distances.scalar_type(),
              what, ": dtypes differ (distances ", distances.scalar_type(), ", mu ", mu.scalar_type(),
              ", sigma ", sigma.scalar_type(), ")");
  TORCH_CHECK(mu.device() == distances.device() && sigma.device() == distances.device(), what,
              ": all tensors must be on one device, got distances on ", distances.device(), ", mu on ",
              mu.device(), ", sigma on ", sigma.device());
  TORCH_CHECK(std::isfinite(cutoff) && cutoff > 0.0, what, ": cutoff must be positive, got ", cutoff);
}

void check_sensitivity_backward(const torch::Tensor& grad, const torch::Tensor& sense,
                                const torch::Tensor& distances, const torch::Tensor& mu,
                                const torch::Tensor& sigma, double cutoff) {
  check_sensitivity("metamlip::sensitivity_backward", distances, mu, sigma, cutoff);
  const int64_t P = distances.size(0), S = mu.size(0);
  for (const auto* t : {&grad, &sense}) {
    TORCH_CHECK(t->dim() == 2 && t->size(0) == P && t->size(1) == S,
                "metamlip::sensitivity_backward: grad and sense must have shape [P, S] = [", P, ", ",
                S, "], got ", t->sizes());
    TORCH_CHECK(t->scalar_type() == distances.scalar_type(), "metamlip::sensitivity_backward: dtypes differ");
    TORCH_CHECK(t->device() == distances.device(),
                "metamlip::sensitivity_backward: all tensors must be on one device, got ", t->device(),
                " and ", distances.device());
  }
}

torch::Tensor sensitivity_cpu(const torch::Tensor& distances, const torch::Tensor& mu,
                              const torch::Tensor& sigma, double cutoff) {
  check_sensitivity("metamlip::sensitivity", distances, mu, sigma, cutoff);
  const int64_t P = distances.size(0), S = mu.size(0);
  auto out = empty_huge({P, S}, distances.options());
  const auto r = distances.contiguous(), m = mu.contiguous(), w = sigma.contiguous();
  AT_DISPATCH_FLOATING_TYPES(r.scalar_type(), "metamlip::sensitivity", [&] {
    const scalar_t* rp = r.data_ptr<scalar_t>();
    const scalar_t* mp = m.data_ptr<scalar_t>();
    const std::vector<scalar_t> inverse_width = reciprocals(w.data_ptr<scalar_t>(), S);
    const scalar_t* wp = inverse_width.data();
    scalar_t* sp = out.data_ptr<scalar_t>();
    const scalar_t angle = scalar_t(0.5 * M_PI / cutoff), rc = scalar_t(cutoff);
    parallel_items((P + kChunk - 1) / kChunk, [&](int64_t chunk) {
      for (int64_t p = chunk * kChunk; p < std::min(P, (chunk + 1) * kChunk); ++p) {
        scalar_t* row = sp + p * S;
        if (!(rp[p] < rc)) {
          for (int64_t k = 0; k < S; ++k) row[k] = scalar_t(0);
          continue;
        }
        const scalar_t inverse = scalar_t(1) / rp[p];
        const scalar_t cosine = std::cos(angle * rp[p]);
        const scalar_t c = cosine * cosine;
        for (int64_t k = 0; k < S; ++k) {
          const scalar_t z = (inverse - mp[k]) * wp[k];
          const scalar_t e = std::min(scalar_t(0.5) * (z * z), scalar_t(kMaxExponent));
          row[k] = std::exp(-e) * c;
        }
      }
    });
  });
  return out;
}

torch::Tensor sensitivity_backward_cpu(const torch::Tensor& grad, const torch::Tensor& sense,
                                       const torch::Tensor& distances, const torch::Tensor& mu,
                                       const torch::Tensor& sigma, double cutoff) {
  check_sensitivity_backward(grad, sense, distances, mu, sigma, cutoff);
  const int64_t P = distances.size(0), S = mu.size(0);
  auto out = torch::empty({P}, distances.options());
  const auto g = grad.contiguous(), s = sense.contiguous(), r = distances.contiguous(), m = mu.contiguous();
  AT_DISPATCH_FLOATING_TYPES(r.scalar_type(), "metamlip::sensitivity_backward", [&] {
    const scalar_t* gp = g.data_ptr<scalar_t>();
    const scalar_t* spp = s.data_ptr<scalar_t>();
    const scalar_t* rp = r.data_ptr<scalar_t>();
    const scalar_t* mp = m.data_ptr<scalar_t>();
    const std::vector<scalar_t> inverse_width = reciprocals(sigma.contiguous().data_ptr<scalar_t>(), S);
    const scalar_t* wp = inverse_width.data();
    scalar_t* op = out.data_ptr<scalar_t>();
    const scalar_t angle = scalar_t(0.5 * M_PI / cutoff), rc = scalar_t(cutoff);
    parallel_items((P + kChunk - 1) / kChunk, [&](int64_t chunk) {
      for (int64_t p = chunk * kChunk; p < std::min(P, (chunk + 1) * kChunk); ++p) {
        const scalar_t cosine = std::cos(angle * rp[p]);
        const scalar_t c = cosine * cosine;
        if (!(rp[p] < rc) || c == scalar_t(0)) {
          op[p] = scalar_t(0);
          continue;
        }
        const scalar_t inverse = scalar_t(1) / rp[p];
        // s = gauss * c: ds/dr = s * (z / sigma) / r^2 (while the exponent is not capped, as
        // clamp) + s * (dc/dr) / c, with (dc/dr) / c = -2 angle tan(angle r).
        const scalar_t log_slope = scalar_t(-2) * angle * std::sin(angle * rp[p]) / cosine;
        const scalar_t* grow = gp + p * S;
        const scalar_t* srow = spp + p * S;
        scalar_t weighted_slope = 0, weighted_sense = 0;
        for (int64_t k = 0; k < S; ++k) {
          const scalar_t z = (inverse - mp[k]) * wp[k];
          const scalar_t gs = grow[k] * srow[k];
          weighted_slope += scalar_t(0.5) * (z * z) <= scalar_t(kMaxExponent) ? gs * z * wp[k] : scalar_t(0);
          weighted_sense += gs;
        }
        op[p] = weighted_slope * inverse * inverse + log_slope * weighted_sense;
      }
    });
  });
  return out;
}

}  // namespace metamlip
