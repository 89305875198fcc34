// CUDA HIP-NN pair sums: envsum, sensesum, featsum (float32 and float64).
//
// No atomics: envsum and featsum take the pairs grouped by receiving atom (offsets + order,
// built by the wrapper with a stable sort) and give each atom one block; sensesum writes one
// output row per pair and gives each pair one warp. Sums run in group order, so results are
// deterministic.
//
//   envsum    block per atom i, thread per (s, f): env[i, s, f] = sum_p s[p, s] z[j_p, f];
//             the pairs' indices and sensitivity rows are staged in shared memory in tiles
//             (up to 32 pairs, fewer when S is large).
//   sensesum  warp per pair p: lanes stride over f, one warp reduction per sensitivity.
//   featsum   block per atom j, thread per f: h[j, f] = sum_p sum_s G[i_p, s, f] s[p, s].
#include <algorithm>

#include "metamlip/cuda_kernels.h"

namespace metamlip {
namespace cuda {
namespace {

constexpr int kThreads = 128;
constexpr int kWarp = 32;
constexpr int kPairTile = 32;  ///< pairs staged in shared memory at a time (envsum), at most
constexpr size_t kSharedBytes = 48 * 1024;  ///< shared memory a block may use without opting in

template <typename T>
__global__ void envsum_kernel(int64_t S, int64_t F, int pair_tile, const T* sense, const T* features,
                              const int64_t* pair_second, const int64_t* offsets, const int64_t* order,
                              T* env) {
  extern __shared__ int64_t shared_words[];  // 8-byte aligned for both T
  int64_t* tile_second = shared_words;                                           // [pair_tile]
  T* tile_sense = reinterpret_cast<T*>(tile_second + pair_tile);                 // [pair_tile, S]
  const int64_t atom = blockIdx.x;
  const int64_t k0 = offsets[atom], k1 = offsets[atom + 1];
  const int64_t outputs = S * F;
  T* out = env + atom * outputs;
  // Each thread owns outputs t = sweep + threadIdx.x + q * blockDim.x, kPerThread of them in
  // registers per sweep over the pairs.
  constexpr int kPerThread = 8;
  for (int64_t sweep = 0; sweep < outputs; sweep += int64_t(kPerThread) * blockDim.x) {
    T acc[kPerThread];
    for (int q = 0; q < kPerThread; ++q) acc[q] = T(0);
    for (int64_t base = k0; base < k1; base += pair_tile) {
      const int tile = k1 - base < pair_tile ? int(k1 - base) : pair_tile;
      __syncthreads();
      for (int r = threadIdx.x; r < tile; r += blockDim.x) {
        const int64_t p = order[base + r];
        tile_second[r] = pair_second[p];
      }
      for (int64_t e = threadIdx.x; e < int64_t(tile) * S; e += blockDim.x) {
        const int64_t r = e / S, s = e % S;
        const int64_t p = order[base + r];
        tile_sense[r * S + s] = sense[p * S + s];
      }
      __syncthreads();
      for (int q = 0; q < kPerThread; ++q) {
        const int64_t t = sweep + threadIdx.x + int64_t(q) * blockDim.x;
        if (t >= outputs) break;
        const int64_t s = t / F, f = t % F;
        T sum = acc[q];
        for (int r = 0; r < tile; ++r) sum += tile_sense[r * S + s] * features[tile_second[r] * F + f];
        acc[q] = sum;
      }
    }
    for (int q = 0; q < kPerThread; ++q) {
      const int64_t t = sweep + threadIdx.x + int64_t(q) * blockDim.x;
      if (t < outputs) out[t] = acc[q];
    }
  }
}

template <typename T>
__global__ void sensesum_kernel(int64_t P, int64_t S, int64_t F, const T* env_grad, const T* features,
                                const int64_t* pair_first, const int64_t* pair_second, T* g) {
  const int64_t p = (int64_t(blockIdx.x) * blockDim.x + threadIdx.x) / kWarp;
  const int lane = threadIdx.x % kWarp;
  if (p >= P) return;  // uniform across the warp
  const T* G = env_grad + pair_first[p] * S * F;
  const T* z = features + pair_second[p] * F;
  for (int64_t s = 0; s < S; ++s) {
    T partial = T(0);
    for (int64_t f = lane; f < F; f += kWarp) partial += G[s * F + f] * z[f];
    for (int offset = kWarp / 2; offset > 0; offset /= 2)
      partial += __shfl_down_sync(0xffffffffu, partial, offset);
    if (lane == 0) g[p * S + s] = partial;
  }
}

template <typename T>
__global__ void featsum_kernel(int64_t S, int64_t F, const T* env_grad, const T* sense,
                               const int64_t* pair_first, const int64_t* offsets, const int64_t* order,
                               T* h) {
  const int64_t atom = blockIdx.x;
  const int64_t k0 = offsets[atom], k1 = offsets[atom + 1];
  for (int64_t f = threadIdx.x; f < F; f += blockDim.x) {
    T acc = T(0);
    for (int64_t k = k0; k < k1; ++k) {
      const int64_t p = order[k];
      const T* G = env_grad + pair_first[p] * S * F + f;
      const T* sp = sense + p * S;
      for (int64_t s = 0; s < S; ++s) acc += G[s * F] * sp[s];
    }
    h[atom * F + f] = acc;
  }
}

template <typename T>
cudaError_t launch_envsum(cudaStream_t stream, int64_t N, int64_t S, int64_t F, const T* sense,
                          const T* features, const int64_t* pair_second, const int64_t* offsets,
                          const int64_t* order, T* env) {
  if (N == 0 || S == 0 || F == 0) return cudaSuccess;
  // As many pairs per tile as fit (up to kPairTile): any S up to ~6000 sensitivities.
  const size_t row = size_t(S) * sizeof(T) + sizeof(int64_t);
  const int pair_tile = int(std::min<size_t>(kPairTile, kSharedBytes / row));
  if (pair_tile < 1) return cudaErrorInvalidValue;
  const size_t shared = size_t(pair_tile) * row;
  envsum_kernel<T><<<unsigned(N), kThreads, shared, stream>>>(S, F, pair_tile, sense, features, pair_second,
                                                              offsets, order, env);
  return cudaGetLastError();
}

template <typename T>
cudaError_t launch_sensesum(cudaStream_t stream, int64_t P, int64_t S, int64_t F, const T* env_grad,
                            const T* features, const int64_t* pair_first, const int64_t* pair_second, T* g) {
  if (P == 0 || S == 0) return cudaSuccess;
  const int64_t warps_per_block = kThreads / kWarp;
  const int64_t blocks = (P + warps_per_block - 1) / warps_per_block;
  sensesum_kernel<T><<<unsigned(blocks), kThreads, 0, stream>>>(P, S, F, env_grad, features, pair_first,
                                                                pair_second, g);
  return cudaGetLastError();
}

template <typename T>
cudaError_t launch_featsum(cudaStream_t stream, int64_t N, int64_t S, int64_t F, const T* env_grad,
                           const T* sense, const int64_t* pair_first, const int64_t* offsets,
                           const int64_t* order, T* h) {
  if (N == 0 || F == 0) return cudaSuccess;
  const int threads = F >= kThreads ? kThreads : int((F + kWarp - 1) / kWarp * kWarp);
  featsum_kernel<T><<<unsigned(N), threads, 0, stream>>>(S, F, env_grad, sense, pair_first, offsets, order, h);
  return cudaGetLastError();
}

}  // namespace

#define METAMLIP_PAIRSUM_LAUNCHERS(T)                                                                   \
  cudaError_t envsum(cudaStream_t stream, int64_t N, int64_t S, int64_t F, const T* sense,            \
                     const T* features, const int64_t* pair_second, const int64_t* offsets,            \
                     const int64_t* order, T* env) {                                                   \
    return launch_envsum(stream, N, S, F, sense, features, pair_second, offsets, order, env);          \
  }                                                                                                    \
  cudaError_t sensesum(cudaStream_t stream, int64_t P, int64_t S, int64_t F, const T* env_grad,       \
                       const T* features, const int64_t* pair_first, const int64_t* pair_second, T* g) { \
    return launch_sensesum(stream, P, S, F, env_grad, features, pair_first, pair_second, g);           \
  }                                                                                                    \
  cudaError_t featsum(cudaStream_t stream, int64_t N, int64_t S, int64_t F, const T* env_grad,        \
                      const T* sense, const int64_t* pair_first, const int64_t* offsets,               \
                      const int64_t* order, T* h) {                                                    \
    return launch_featsum(stream, N, S, F, env_grad, sense, pair_first, offsets, order, h);            \
  }

METAMLIP_PAIRSUM_LAUNCHERS(float)
METAMLIP_PAIRSUM_LAUNCHERS(double)
#undef METAMLIP_PAIRSUM_LAUNCHERS

}  // namespace cuda
}  // namespace metamlip
