// CUDA HIP-NN inverse-Gaussian sensitivities and their gradient with respect to the distances
// (float32 and float64): the arithmetic of csrc/cpu/sensitivity.cpp, operation for operation.
//
//   sensitivity           thread per output element (p, k), grid-stride: coalesced writes of
//                         s[p, k] = exp(-min(0.5 z^2, 60)) cos^2(angle r_p), z = (1/r_p - mu_k) / sigma_k.
//   sensitivity_backward  thread per pair p: out[p] = sum_k g[p, k] ds[p, k]/dr_p from the forward's
//                         output s (no exp again); one thread sums the row, so no atomics.
#include "metamlip/cuda_kernels.h"

namespace metamlip {
namespace cuda {
namespace {

constexpr int kThreads = 256;
constexpr double kMaxExponent = 60.0;  // as csrc/cpu/sensitivity.cpp and the Python reference
/// Grid-stride kernels use at most this many blocks (far below every grid-size limit).
constexpr int64_t kMaxBlocks = int64_t(1) << 20;

unsigned blocks_for(int64_t n) {
  const int64_t blocks = (n + kThreads - 1) / kThreads;
  return unsigned(blocks < kMaxBlocks ? blocks : kMaxBlocks);
}

__device__ inline float cos_of(float x) { return cosf(x); }
__device__ inline double cos_of(double x) { return cos(x); }
__device__ inline float sin_of(float x) { return sinf(x); }
__device__ inline double sin_of(double x) { return sin(x); }
__device__ inline float exp_of(float x) { return expf(x); }
__device__ inline double exp_of(double x) { return exp(x); }

template <typename T>
__global__ void sensitivity_kernel(int64_t P, int64_t S, const T* distances, const T* mu, const T* sigma,
                                   T angle, T rc, T* out) {
  const int64_t total = P * S;
  for (int64_t e = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; e < total;
       e += int64_t(gridDim.x) * blockDim.x) {
    const int64_t p = e / S, k = e - p * S;
    const T r = distances[p];
    if (!(r < rc)) {
      out[e] = T(0);
      continue;
    }
    const T inverse = T(1) / r;
    const T cosine = cos_of(angle * r);
    const T c = cosine * cosine;
    const T z = (inverse - mu[k]) * (T(1) / sigma[k]);
    const T half_square = T(0.5) * (z * z);
    const T exponent = half_square < T(kMaxExponent) ? half_square : T(kMaxExponent);
    out[e] = exp_of(-exponent) * c;
  }
}

template <typename T>
__global__ void sensitivity_backward_kernel(int64_t P, int64_t S, const T* grad, const T* sense,
                                            const T* distances, const T* mu, const T* sigma, T angle, T rc,
                                            T* out) {
  for (int64_t p = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; p < P; p += int64_t(gridDim.x) * blockDim.x) {
    const T r = distances[p];
    const T cosine = cos_of(angle * r);
    const T c = cosine * cosine;
    if (!(r < rc) || c == T(0)) {
      out[p] = T(0);
      continue;
    }
    const T inverse = T(1) / r;
    // s = gauss * c: ds/dr = s (z / sigma) / r^2 (while the exponent is not capped) + s (dc/dr) / c,
    // with (dc/dr) / c = -2 angle tan(angle r).
    const T log_slope = T(-2) * angle * sin_of(angle * r) / cosine;
    const T* grow = grad + p * S;
    const T* srow = sense + p * S;
    T weighted_slope = T(0), weighted_sense = T(0);
    for (int64_t k = 0; k < S; ++k) {
      const T w = T(1) / sigma[k];
      const T z = (inverse - mu[k]) * w;
      const T gs = grow[k] * srow[k];
      weighted_slope += T(0.5) * (z * z) <= T(kMaxExponent) ? gs * z * w : T(0);
      weighted_sense += gs;
    }
    out[p] = weighted_slope * inverse * inverse + log_slope * weighted_sense;
  }
}

template <typename T>
cudaError_t launch_sensitivity(cudaStream_t stream, int64_t P, int64_t S, const T* distances, const T* mu,
                               const T* sigma, double cutoff, T* out) {
  if (P == 0 || S == 0) return cudaSuccess;
  const T angle = T(0.5 * kPi / cutoff), rc = T(cutoff);
  sensitivity_kernel<T><<<blocks_for(P * S), kThreads, 0, stream>>>(P, S, distances, mu, sigma, angle, rc, out);
  return cudaGetLastError();
}

template <typename T>
cudaError_t launch_sensitivity_backward(cudaStream_t stream, int64_t P, int64_t S, const T* grad,
                                        const T* sense, const T* distances, const T* mu, const T* sigma,
                                        double cutoff, T* out) {
  if (P == 0) return cudaSuccess;
  const T angle = T(0.5 * kPi / cutoff), rc = T(cutoff);
  sensitivity_backward_kernel<T><<<blocks_for(P), kThreads, 0, stream>>>(P, S, grad, sense, distances, mu,
                                                                          sigma, angle, rc, out);
  return cudaGetLastError();
}

}  // namespace

#define METAMLIP_SENSITIVITY_LAUNCHERS(T)                                                                 \
  cudaError_t sensitivity(cudaStream_t stream, int64_t P, int64_t S, const T* distances, const T* mu,   \
                          const T* sigma, double cutoff, T* out) {                                       \
    return launch_sensitivity(stream, P, S, distances, mu, sigma, cutoff, out);                          \
  }                                                                                                      \
  cudaError_t sensitivity_backward(cudaStream_t stream, int64_t P, int64_t S, const T* grad,            \
                                   const T* sense, const T* distances, const T* mu, const T* sigma,     \
                                   double cutoff, T* out) {                                              \
    return launch_sensitivity_backward(stream, P, S, grad, sense, distances, mu, sigma, cutoff, out);   \
  }

METAMLIP_SENSITIVITY_LAUNCHERS(float)
METAMLIP_SENSITIVITY_LAUNCHERS(double)
#undef METAMLIP_SENSITIVITY_LAUNCHERS

}  // namespace cuda
}  // namespace metamlip
