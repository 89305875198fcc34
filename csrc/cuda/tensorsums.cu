// CUDA HIP-NN-TS pair sums: tensorsum and its three derivatives (float32 and float64), the
// same four ops as csrc/cpu/tensorsums.cpp (see metamlip/ops.h for the multilinear form).
//
// No atomics: tensorsum and tensorsum_values take the pairs grouped by their output atom
// (offsets + order, built by the wrapper) and give each atom one block, one thread per output
// feature o, summing in group order; tensorsum_sense and tensorsum_basis write one output row
// per pair and give each pair one warp (its per-pair vector over o staged in shared memory).
//
//   tensorsum         block per atom i, thread per o: out[i, c, o] += t[p, c] sum_v s[p, v] V[j_p, v, o]
//   tensorsum_values  block per atom j, thread per o: out[j, v, o] += s[p, v] sum_c t[p, c] G[i_p, c, o]
//   tensorsum_sense   warp per pair: g[o] = sum_c t[p, c] G[i_p, c, o]; out[p, v] = sum_o V[j_p, v, o] g[o]
//   tensorsum_basis   warp per pair: m[o] = sum_v s[p, v] V[j_p, v, o]; out[p, c] = sum_o G[i_p, c, o] m[o]
#include "metamlip/cuda_kernels.h"

namespace metamlip {
namespace cuda {
namespace {

constexpr int kThreads = 128;
constexpr int kWarp = 32;
constexpr int kWarpsPerBlock = kThreads / kWarp;

template <typename T>
__device__ T warp_sum(T value) {
  for (int offset = kWarp / 2; offset > 0; offset /= 2) value += __shfl_down_sync(0xffffffffu, value, offset);
  return value;
}

template <typename T>
__global__ void tensorsum_kernel(int64_t S, int64_t C, int64_t O, const T* sense, const T* basis,
                                 const T* values, const int64_t* pair_second, const int64_t* offsets,
                                 const int64_t* order, T* out) {
  const int64_t atom = blockIdx.x;
  const int64_t k0 = offsets[atom], k1 = offsets[atom + 1];
  for (int64_t o = threadIdx.x; o < O; o += blockDim.x) {
    T acc[kMaxTensorComponents];
    for (int c = 0; c < kMaxTensorComponents; ++c) acc[c] = T(0);
    for (int64_t k = k0; k < k1; ++k) {
      const int64_t p = order[k];
      const T* V = values + pair_second[p] * S * O + o;
      const T* sp = sense + p * S;
      T m = T(0);
      for (int64_t v = 0; v < S; ++v) m += sp[v] * V[v * O];
      const T* tp = basis + p * C;
      for (int64_t c = 0; c < C; ++c) acc[c] += tp[c] * m;
    }
    for (int64_t c = 0; c < C; ++c) out[(atom * C + c) * O + o] = acc[c];
  }
}

template <typename T>
__global__ void tensorsum_values_kernel(int64_t S, int64_t C, int64_t O, const T* grad, const T* sense,
                                        const T* basis, const int64_t* pair_first, const int64_t* offsets,
                                        const int64_t* order, T* out) {
  const int64_t atom = blockIdx.x;
  const int64_t k0 = offsets[atom], k1 = offsets[atom + 1];
  for (int64_t o = threadIdx.x; o < O; o += blockDim.x) {
    T* row = out + atom * S * O + o;  // this thread alone writes row[v * O]
    for (int64_t v = 0; v < S; ++v) row[v * O] = T(0);
    for (int64_t k = k0; k < k1; ++k) {
      const int64_t p = order[k];
      const T* G = grad + pair_first[p] * C * O + o;
      const T* tp = basis + p * C;
      T g = T(0);
      for (int64_t c = 0; c < C; ++c) g += tp[c] * G[c * O];
      const T* sp = sense + p * S;
      for (int64_t v = 0; v < S; ++v) row[v * O] += sp[v] * g;
    }
  }
}

template <typename T>
__global__ void tensorsum_sense_kernel(int64_t P, int64_t S, int64_t C, int64_t O, const T* grad,
                                       const T* basis, const T* values, const int64_t* pair_first,
                                       const int64_t* pair_second, T* out) {
  extern __shared__ unsigned char shared_bytes[];
  const int warp = threadIdx.x / kWarp, lane = threadIdx.x % kWarp;
  T* g = reinterpret_cast<T*>(shared_bytes) + warp * O;  // [O] per warp
  const int64_t p = int64_t(blockIdx.x) * kWarpsPerBlock + warp;
  if (p >= P) return;  // uniform across the warp; no block-wide barrier below
  const T* G = grad + pair_first[p] * C * O;
  const T* tp = basis + p * C;
  for (int64_t o = lane; o < O; o += kWarp) {
    T sum = T(0);
    for (int64_t c = 0; c < C; ++c) sum += tp[c] * G[c * O + o];
    g[o] = sum;
  }
  __syncwarp();
  const T* V = values + pair_second[p] * S * O;
  for (int64_t v = 0; v < S; ++v) {
    T partial = T(0);
    for (int64_t o = lane; o < O; o += kWarp) partial += V[v * O + o] * g[o];
    partial = warp_sum(partial);
    if (lane == 0) out[p * S + v] = partial;
  }
}

template <typename T>
__global__ void tensorsum_basis_kernel(int64_t P, int64_t S, int64_t C, int64_t O, const T* grad,
                                       const T* sense, const T* values, const int64_t* pair_first,
                                       const int64_t* pair_second, T* out) {
  extern __shared__ unsigned char shared_bytes[];
  const int warp = threadIdx.x / kWarp, lane = threadIdx.x % kWarp;
  T* m = reinterpret_cast<T*>(shared_bytes) + warp * O;  // [O] per warp
  const int64_t p = int64_t(blockIdx.x) * kWarpsPerBlock + warp;
  if (p >= P) return;
  const T* V = values + pair_second[p] * S * O;
  const T* sp = sense + p * S;
  for (int64_t o = lane; o < O; o += kWarp) {
    T sum = T(0);
    for (int64_t v = 0; v < S; ++v) sum += sp[v] * V[v * O + o];
    m[o] = sum;
  }
  __syncwarp();
  const T* G = grad + pair_first[p] * C * O;
  for (int64_t c = 0; c < C; ++c) {
    T partial = T(0);
    for (int64_t o = lane; o < O; o += kWarp) partial += G[c * O + o] * m[o];
    partial = warp_sum(partial);
    if (lane == 0) out[p * C + c] = partial;
  }
}

int threads_for(int64_t O) { return O >= kThreads ? kThreads : int((O + kWarp - 1) / kWarp * kWarp); }

bool bad_sizes(int64_t C, int64_t O, size_t element) {
  return C > kMaxTensorComponents || size_t(kWarpsPerBlock) * size_t(O) * element > 48 * 1024;
}

template <typename T>
cudaError_t launch_tensorsum(cudaStream_t stream, int64_t N, int64_t S, int64_t C, int64_t O, const T* sense,
                             const T* basis, const T* values, const int64_t* pair_second,
                             const int64_t* offsets, const int64_t* order, T* out) {
  if (N == 0 || C == 0 || O == 0) return cudaSuccess;
  if (bad_sizes(C, O, sizeof(T))) return cudaErrorInvalidValue;
  tensorsum_kernel<T><<<unsigned(N), threads_for(O), 0, stream>>>(S, C, O, sense, basis, values, pair_second,
                                                                   offsets, order, out);
  return cudaGetLastError();
}

template <typename T>
cudaError_t launch_tensorsum_values(cudaStream_t stream, int64_t N, int64_t S, int64_t C, int64_t O,
                                    const T* grad, const T* sense, const T* basis, const int64_t* pair_first,
                                    const int64_t* offsets, const int64_t* order, T* out) {
  if (N == 0 || S == 0 || O == 0) return cudaSuccess;
  if (bad_sizes(C, O, sizeof(T))) return cudaErrorInvalidValue;
  tensorsum_values_kernel<T><<<unsigned(N), threads_for(O), 0, stream>>>(S, C, O, grad, sense, basis, pair_first,
                                                                          offsets, order, out);
  return cudaGetLastError();
}

template <typename T>
cudaError_t launch_tensorsum_sense(cudaStream_t stream, int64_t P, int64_t S, int64_t C, int64_t O,
                                   const T* grad, const T* basis, const T* values, const int64_t* pair_first,
                                   const int64_t* pair_second, T* out) {
  if (P == 0 || S == 0) return cudaSuccess;
  if (bad_sizes(C, O, sizeof(T))) return cudaErrorInvalidValue;
  const int64_t blocks = (P + kWarpsPerBlock - 1) / kWarpsPerBlock;
  const size_t shared = size_t(kWarpsPerBlock) * size_t(O) * sizeof(T);
  tensorsum_sense_kernel<T><<<unsigned(blocks), kThreads, shared, stream>>>(P, S, C, O, grad, basis, values,
                                                                             pair_first, pair_second, out);
  return cudaGetLastError();
}

template <typename T>
cudaError_t launch_tensorsum_basis(cudaStream_t stream, int64_t P, int64_t S, int64_t C, int64_t O,
                                   const T* grad, const T* sense, const T* values, const int64_t* pair_first,
                                   const int64_t* pair_second, T* out) {
  if (P == 0 || C == 0) return cudaSuccess;
  if (bad_sizes(C, O, sizeof(T))) return cudaErrorInvalidValue;
  const int64_t blocks = (P + kWarpsPerBlock - 1) / kWarpsPerBlock;
  const size_t shared = size_t(kWarpsPerBlock) * size_t(O) * sizeof(T);
  tensorsum_basis_kernel<T><<<unsigned(blocks), kThreads, shared, stream>>>(P, S, C, O, grad, sense, values,
                                                                             pair_first, pair_second, out);
  return cudaGetLastError();
}

}  // namespace

#define METAMLIP_TENSORSUM_LAUNCHERS(T)                                                                  \
  cudaError_t tensorsum(cudaStream_t stream, int64_t N, int64_t S, int64_t C, int64_t O, const T* sense, \
                        const T* basis, const T* values, const int64_t* pair_second,                      \
                        const int64_t* offsets, const int64_t* order, T* out) {                           \
    return launch_tensorsum(stream, N, S, C, O, sense, basis, values, pair_second, offsets, order, out);  \
  }                                                                                                       \
  cudaError_t tensorsum_values(cudaStream_t stream, int64_t N, int64_t S, int64_t C, int64_t O,          \
                               const T* grad, const T* sense, const T* basis, const int64_t* pair_first,  \
                               const int64_t* offsets, const int64_t* order, T* out) {                    \
    return launch_tensorsum_values(stream, N, S, C, O, grad, sense, basis, pair_first, offsets, order,   \
                                   out);                                                                  \
  }                                                                                                       \
  cudaError_t tensorsum_sense(cudaStream_t stream, int64_t P, int64_t S, int64_t C, int64_t O,           \
                              const T* grad, const T* basis, const T* values, const int64_t* pair_first,  \
                              const int64_t* pair_second, T* out) {                                       \
    return launch_tensorsum_sense(stream, P, S, C, O, grad, basis, values, pair_first, pair_second, out); \
  }                                                                                                       \
  cudaError_t tensorsum_basis(cudaStream_t stream, int64_t P, int64_t S, int64_t C, int64_t O,           \
                              const T* grad, const T* sense, const T* values, const int64_t* pair_first,  \
                              const int64_t* pair_second, T* out) {                                       \
    return launch_tensorsum_basis(stream, P, S, C, O, grad, sense, values, pair_first, pair_second, out); \
  }

METAMLIP_TENSORSUM_LAUNCHERS(float)
METAMLIP_TENSORSUM_LAUNCHERS(double)
#undef METAMLIP_TENSORSUM_LAUNCHERS

}  // namespace cuda
}  // namespace metamlip
