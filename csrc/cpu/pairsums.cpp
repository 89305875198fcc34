// CPU HIP-NN pair sums (OpenMP): envsum, sensesum, featsum.
//
// Reductions over pairs are done per receiving atom, never with atomics: the pairs are grouped
// by receiving atom with a stable counting sort (skipped when the index is already sorted, as
// the neighbour list's pair_first is), and each atom's sum is accumulated by one thread in pair
// order, so the result does not depend on the number of threads.
//
//   envsum    per atom i: env_i[S, F] = sum_p s_p (x) z_{j_p}           (vector over features)
//   sensesum  per atom i: g_p[S] = G_i z_{j_p} for its pairs p          (vector over sensitivities,
//                         G_i transposed once per atom)
//   featsum   c_p[F] = sum_v s_pv G_{i_p v} computed per atom i (G_i stays in cache), then
//             h_j = sum of c_p over the pairs with second index j, block by block of pairs
//             (bounded scratch memory).
//
// The kernels are register-tiled with GCC/Clang vector extensions and compiled for AVX-512,
// AVX2+FMA and baseline x86-64; the best one the CPU supports is chosen at run time
// (METAMLIP_CPU_ISA=baseline|avx2|avx512 forces one, for tests). Exact zeros in the
// sensitivities (pairs where every Gaussian underflowed) are skipped, which changes nothing.
#include <algorithm>
#include <cstring>
#include <vector>

#include "metamlip/groups.h"
#include "metamlip/isa.h"
#include "metamlip/memory.h"
#include "metamlip/ops.h"
#include "metamlip/parallel.h"

#define METAMLIP_INLINE inline __attribute__((always_inline))
// Vector types wider than the baseline ISA only ever live inside inlined code.
#pragma GCC diagnostic ignored "-Wpsabi"

namespace metamlip {
namespace {

// ---------------------------------------------------------------------------------------------
// Vectors of VB bytes (GCC/Clang vector extensions; lowered to the target's registers).

template <typename T, int VB>
struct Simd {
  typedef T vec __attribute__((vector_size(VB)));
  static constexpr int lanes = VB / int(sizeof(T));
};

template <typename V, typename T>
METAMLIP_INLINE V load(const T* p) {
  V v;
  std::memcpy(&v, p, sizeof(V));
  return v;
}
template <typename V, typename T>
METAMLIP_INLINE void store(T* p, const V& v) {
  std::memcpy(p, &v, sizeof(V));
}

// ---------------------------------------------------------------------------------------------
// envsum: env_i[v, f] = sum_{p of i} s[p, v] z[j_p, f]. Tile: RV sensitivities x RF vectors.

template <typename T, int VB, int RV, int RF>
METAMLIP_INLINE void envsum_tile(T* out, const T* s, const T* z, const int64_t* second,
                                 const Groups& g, int64_t atom, int64_t S, int64_t F, int64_t v0,
                                 int64_t f0) {
  using V = typename Simd<T, VB>::vec;
  constexpr int W = Simd<T, VB>::lanes;
  V acc[RV][RF];
#pragma GCC unroll 16
  for (int r = 0; r < RV; ++r)
#pragma GCC unroll 16
    for (int c = 0; c < RF; ++c) acc[r][c] = V{};
  for (int64_t k = g.offsets[atom]; k < g.offsets[atom + 1]; ++k) {
    const int64_t p = g.at(k);
    const T* sp = s + p * S + v0;
    bool any = false;
#pragma GCC unroll 16
    for (int r = 0; r < RV; ++r) any = any || sp[r] != T(0);
    if (!any) continue;
    const T* zp = z + second[p] * F + f0;
    V zv[RF];
#pragma GCC unroll 16
    for (int c = 0; c < RF; ++c) zv[c] = load<V>(zp + c * W);
#pragma GCC unroll 16
    for (int r = 0; r < RV; ++r) {
      const V a = V{} + sp[r];
#pragma GCC unroll 16
      for (int c = 0; c < RF; ++c) acc[r][c] += a * zv[c];
    }
  }
#pragma GCC unroll 16
  for (int r = 0; r < RV; ++r)
#pragma GCC unroll 16
    for (int c = 0; c < RF; ++c) store(out + (v0 + r) * F + f0 + c * W, acc[r][c]);
}

template <typename T, int VB, int RV, int RF>
METAMLIP_INLINE void envsum_atom(T* out, const T* s, const T* z, const int64_t* second,
                                 const Groups& g, int64_t atom, int64_t S, int64_t F) {
  constexpr int W = Simd<T, VB>::lanes;
  const int64_t f_vectors = F / W * W;
  for (int64_t v0 = 0; v0 < S; v0 += RV) {
    const bool full = v0 + RV <= S;
    int64_t f0 = 0;
    for (; f0 + RF * W <= F; f0 += RF * W) {
      if (full) {
        envsum_tile<T, VB, RV, RF>(out, s, z, second, g, atom, S, F, v0, f0);
      } else {
        for (int64_t v = v0; v < S; ++v) envsum_tile<T, VB, 1, RF>(out, s, z, second, g, atom, S, F, v, f0);
      }
    }
    for (; f0 < f_vectors; f0 += W) {
      for (int64_t v = v0; v < std::min(S, v0 + RV); ++v)
        envsum_tile<T, VB, 1, 1>(out, s, z, second, g, atom, S, F, v, f0);
    }
  }
  if (f_vectors < F) {  // last F % W features, scalar
    for (int64_t v = 0; v < S; ++v)
      for (int64_t f = f_vectors; f < F; ++f) out[v * F + f] = T(0);
    for (int64_t k = g.offsets[atom]; k < g.offsets[atom + 1]; ++k) {
      const int64_t p = g.at(k);
      const T* zp = z + second[p] * F;
      for (int64_t v = 0; v < S; ++v) {
        const T a = s[p * S + v];
        for (int64_t f = f_vectors; f < F; ++f) out[v * F + f] += a * zp[f];
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// sensesum: g[p, v] = sum_f G[i_p, v, f] z[j_p, f]. Per atom i, with GT = G_i transposed
// ([F, Sp], Sp = S rounded up to whole vectors, zero padded). Tile: RP pairs x RS vectors.

template <typename T, int VB, int RP, int RS>
METAMLIP_INLINE void sensesum_tile(T* out, const T* GT, const T* z, const int64_t* second,
                                   const int64_t* pairs, int64_t S, int64_t Sp, int64_t F,
                                   int64_t vv0) {
  using V = typename Simd<T, VB>::vec;
  constexpr int W = Simd<T, VB>::lanes;
  V acc[RP][RS];
  const T* zr[RP];
#pragma GCC unroll 16
  for (int r = 0; r < RP; ++r) {
    zr[r] = z + second[pairs[r]] * F;
#pragma GCC unroll 16
    for (int c = 0; c < RS; ++c) acc[r][c] = V{};
  }
  const T* gt = GT + vv0 * W;
  for (int64_t f = 0; f < F; ++f, gt += Sp) {
    V gv[RS];
#pragma GCC unroll 16
    for (int c = 0; c < RS; ++c) gv[c] = load<V>(gt + c * W);
#pragma GCC unroll 16
    for (int r = 0; r < RP; ++r) {
      const V b = V{} + zr[r][f];
#pragma GCC unroll 16
      for (int c = 0; c < RS; ++c) acc[r][c] += b * gv[c];
    }
  }
#pragma GCC unroll 16
  for (int r = 0; r < RP; ++r) {
    T* o = out + pairs[r] * S;
#pragma GCC unroll 16
    for (int c = 0; c < RS; ++c) {
      const int64_t v = (vv0 + c) * W;
      if (v + W <= S) {
        store(o + v, acc[r][c]);
      } else {
        T lanes[W];
        store(lanes, acc[r][c]);
        for (int64_t q = 0; v + q < S; ++q) o[v + q] = lanes[q];
      }
    }
  }
}

template <typename T, int VB, int RP, int RS>
METAMLIP_INLINE void sensesum_atom(T* out, const T* G, const T* z, const int64_t* second,
                                   const Groups& g, int64_t atom, int64_t S, int64_t F,
                                   std::vector<T>& scratch) {
  constexpr int W = Simd<T, VB>::lanes;
  const int64_t k0 = g.offsets[atom], k1 = g.offsets[atom + 1];
  if (k0 == k1) return;
  const int64_t n_vectors = (S + W - 1) / W, Sp = n_vectors * W;
  scratch.assign(F * Sp, T(0));
  T* GT = scratch.data();
  const T* Gi = G + atom * S * F;
  for (int64_t v = 0; v < S; ++v)
    for (int64_t f = 0; f < F; ++f) GT[f * Sp + v] = Gi[v * F + f];
  int64_t pairs[RP];
  int64_t k = k0;
  for (; k + RP <= k1; k += RP) {
    for (int r = 0; r < RP; ++r) pairs[r] = g.at(k + r);
    int64_t vv = 0;
    for (; vv + RS <= n_vectors; vv += RS)
      sensesum_tile<T, VB, RP, RS>(out, GT, z, second, pairs, S, Sp, F, vv);
    for (; vv < n_vectors; ++vv) sensesum_tile<T, VB, RP, 1>(out, GT, z, second, pairs, S, Sp, F, vv);
  }
  for (; k < k1; ++k) {
    pairs[0] = g.at(k);
    int64_t vv = 0;
    for (; vv + RS <= n_vectors; vv += RS)
      sensesum_tile<T, VB, 1, RS>(out, GT, z, second, pairs, S, Sp, F, vv);
    for (; vv < n_vectors; ++vv) sensesum_tile<T, VB, 1, 1>(out, GT, z, second, pairs, S, Sp, F, vv);
  }
}

// ---------------------------------------------------------------------------------------------
// featsum, first phase: c[k, f] = sum_v s[p_k, v] G[i, v, f] for positions k of one atom i.
// Tile: RP pairs x RF vectors.

template <typename T, int VB, int RP, int RF>
METAMLIP_INLINE void pair_features_tile(T* c_rows, const T* Gi, const T* s, const int64_t* pairs,
                                        int64_t S, int64_t F, int64_t f0) {
  using V = typename Simd<T, VB>::vec;
  constexpr int W = Simd<T, VB>::lanes;
  V acc[RP][RF];
#pragma GCC unroll 16
  for (int r = 0; r < RP; ++r)
#pragma GCC unroll 16
    for (int c = 0; c < RF; ++c) acc[r][c] = V{};
  for (int64_t v = 0; v < S; ++v) {
    T a[RP];
    bool any = false;
#pragma GCC unroll 16
    for (int r = 0; r < RP; ++r) {
      a[r] = s[pairs[r] * S + v];
      any = any || a[r] != T(0);
    }
    if (!any) continue;
    V gv[RF];
#pragma GCC unroll 16
    for (int c = 0; c < RF; ++c) gv[c] = load<V>(Gi + v * F + f0 + c * W);
#pragma GCC unroll 16
    for (int r = 0; r < RP; ++r) {
      const V b = V{} + a[r];
#pragma GCC unroll 16
      for (int c = 0; c < RF; ++c) acc[r][c] += b * gv[c];
    }
  }
#pragma GCC unroll 16
  for (int r = 0; r < RP; ++r)
#pragma GCC unroll 16
    for (int c = 0; c < RF; ++c) store(c_rows + r * F + f0 + c * W, acc[r][c]);
}

template <typename T, int VB, int RP, int RF>
METAMLIP_INLINE void pair_features_run(T* c_rows, const T* Gi, const T* s, const Groups& gi,
                                       int64_t k0, int64_t k1, int64_t S, int64_t F) {
  constexpr int W = Simd<T, VB>::lanes;
  const int64_t f_vectors = F / W * W;
  int64_t pairs[RP];
  int64_t k = k0;
  for (; k < k1; k += RP) {
    const int rp = int(std::min<int64_t>(RP, k1 - k));
    for (int r = 0; r < rp; ++r) pairs[r] = gi.at(k + r);
    T* rows = c_rows + (k - k0) * F;
    int64_t f0 = 0;
    if (rp == RP) {
      for (; f0 + RF * W <= F; f0 += RF * W) pair_features_tile<T, VB, RP, RF>(rows, Gi, s, pairs, S, F, f0);
      for (; f0 < f_vectors; f0 += W) pair_features_tile<T, VB, RP, 1>(rows, Gi, s, pairs, S, F, f0);
    } else {
      for (int r = 0; r < rp; ++r) {
        int64_t f = 0;
        for (; f + RF * W <= F; f += RF * W)
          pair_features_tile<T, VB, 1, RF>(rows + r * F, Gi, s, pairs + r, S, F, f);
        for (; f < f_vectors; f += W) pair_features_tile<T, VB, 1, 1>(rows + r * F, Gi, s, pairs + r, S, F, f);
      }
    }
    for (int r = 0; r < rp; ++r) {  // last F % W features, scalar
      T* row = rows + r * F;
      const T* sp = s + pairs[r] * S;
      for (int64_t f = f_vectors; f < F; ++f) row[f] = T(0);
      for (int64_t v = 0; v < S; ++v)
        for (int64_t f = f_vectors; f < F; ++f) row[f] += sp[v] * Gi[v * F + f];
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Per-ISA entry points (one chunk of atoms or positions each).

template <typename T>
struct Kernels {
  void (*envsum)(T* out, const T* s, const T* z, const int64_t* second, const Groups& g, int64_t a0,
                 int64_t a1, int64_t S, int64_t F);
  void (*sensesum)(T* out, const T* G, const T* z, const int64_t* second, const Groups& g,
                   int64_t a0, int64_t a1, int64_t S, int64_t F);
  /// c rows for positions [k0, k1) (of the i-grouping gi; row k - k_base).
  void (*pair_features)(T* c, const T* G, const T* s, const int64_t* first, const Groups& gi,
                        int64_t k0, int64_t k1, int64_t k_base, int64_t S, int64_t F);
};

#define METAMLIP_DEFINE_KERNELS(NAME, ATTRIBUTES, VB, ENV_RV, ENV_RF, SENSE_RP, SENSE_RS, FEAT_RP,  \
                                FEAT_RF)                                                           \
  template <typename T>                                                                            \
  ATTRIBUTES void envsum_##NAME(T* out, const T* s, const T* z, const int64_t* second,             \
                                const Groups& g, int64_t a0, int64_t a1, int64_t S, int64_t F) {   \
    for (int64_t a = a0; a < a1; ++a)                                                              \
      envsum_atom<T, VB, ENV_RV, ENV_RF>(out + a * S * F, s, z, second, g, a, S, F);               \
  }                                                                                                \
  template <typename T>                                                                            \
  ATTRIBUTES void sensesum_##NAME(T* out, const T* G, const T* z, const int64_t* second,           \
                                  const Groups& g, int64_t a0, int64_t a1, int64_t S, int64_t F) { \
    std::vector<T> scratch;                                                                        \
    for (int64_t a = a0; a < a1; ++a)                                                              \
      sensesum_atom<T, VB, SENSE_RP, SENSE_RS>(out, G, z, second, g, a, S, F, scratch);            \
  }                                                                                                \
  template <typename T>                                                                            \
  ATTRIBUTES void pair_features_##NAME(T* c, const T* G, const T* s, const int64_t* first,         \
                                       const Groups& gi, int64_t k0, int64_t k1, int64_t k_base,   \
                                       int64_t S, int64_t F) {                                     \
    for (int64_t k = k0; k < k1;) { /* runs of positions sharing atom i */                         \
      const int64_t atom = first[gi.at(k)];                                                        \
      const int64_t end = std::min(k1, gi.offsets[atom + 1]);                                      \
      pair_features_run<T, VB, FEAT_RP, FEAT_RF>(c + (k - k_base) * F, G + atom * S * F, s, gi,    \
                                                  k, end, S, F);                                   \
      k = end;                                                                                     \
    }                                                                                              \
  }                                                                                                \
  template <typename T>                                                                            \
  Kernels<T> kernels_##NAME() {                                                                    \
    return {&envsum_##NAME<T>, &sensesum_##NAME<T>, &pair_features_##NAME<T>};                    \
  }

#ifdef METAMLIP_X86
METAMLIP_DEFINE_KERNELS(avx512, METAMLIP_TARGET_AVX512, 64, 4, 4, 4, 2, 4, 4)
METAMLIP_DEFINE_KERNELS(avx2, METAMLIP_TARGET_AVX2, 32, 2, 4, 4, 2, 2, 4)
#endif
METAMLIP_DEFINE_KERNELS(baseline, , 16, 2, 4, 4, 2, 2, 4)
#undef METAMLIP_DEFINE_KERNELS

template <typename T>
const Kernels<T>& kernels() {
  static const Kernels<T> chosen = [] {
    switch (detect_isa()) {
#ifdef METAMLIP_X86
      case Isa::avx512:
        return kernels_avx512<T>();
      case Isa::avx2:
        return kernels_avx2<T>();
#endif
      default:
        return kernels_baseline<T>();
    }
  }();
  return chosen;
}

}  // namespace

// ---------------------------------------------------------------------------------------------

void check_pair_sum(const char* what, const torch::Tensor& a, const torch::Tensor& b,
                    int64_t n_atoms, const torch::Tensor& pair_first,
                    const torch::Tensor& pair_second) {
  TORCH_CHECK(pair_first.dim() == 1 && pair_second.dim() == 1 &&
                  pair_first.size(0) == pair_second.size(0),
              what, ": pair_first and pair_second must have shape [P], got ", pair_first.sizes(),
              " and ", pair_second.sizes());
  TORCH_CHECK(pair_first.scalar_type() == torch::kInt64 && pair_second.scalar_type() == torch::kInt64,
              what, ": pair indices must be int64, got ", pair_first.scalar_type(), " and ",
              pair_second.scalar_type());
  TORCH_CHECK(a.scalar_type() == b.scalar_type(), what, ": dtypes differ: ", a.scalar_type(),
              " and ", b.scalar_type());
  TORCH_CHECK(a.scalar_type() == torch::kFloat32 || a.scalar_type() == torch::kFloat64, what,
              ": only float32 and float64 are supported, got ", a.scalar_type());
  for (const auto* t : {&b, &pair_first, &pair_second}) {
    TORCH_CHECK(t->device() == a.device(), what, ": all tensors must be on one device, got ",
                t->device(), " and ", a.device());
  }
  if (pair_first.numel() > 0) {
    for (const auto* index : {&pair_first, &pair_second}) {
      auto extremes = torch::aminmax(*index);
      const int64_t lo = std::get<0>(extremes).item<int64_t>();
      const int64_t hi = std::get<1>(extremes).item<int64_t>();
      TORCH_CHECK(lo >= 0 && hi < n_atoms, what, ": pair indices must lie in [0, ", n_atoms,
                  "), got values from ", lo, " to ", hi);
    }
  }
}

torch::Tensor envsum_cpu(const torch::Tensor& sense, const torch::Tensor& features,
                         const torch::Tensor& pair_first, const torch::Tensor& pair_second) {
  TORCH_CHECK(sense.dim() == 2 && features.dim() == 2 && sense.size(0) == pair_first.size(0),
              "metamlip::envsum: sense must have shape [P, S] and features [N, F], got ",
              sense.sizes(), " and ", features.sizes(), " with P = ", pair_first.size(0));
  check_pair_sum("metamlip::envsum", sense, features, features.size(0), pair_first, pair_second);
  const int64_t N = features.size(0), S = sense.size(1), F = features.size(1);
  if (pair_first.numel() == 0 || S == 0 || F == 0) return torch::zeros({N, S, F}, features.options());
  auto out = empty_huge({N, S, F}, features.options());
  const auto s = sense.contiguous(), z = features.contiguous();
  const auto i = pair_first.contiguous(), j = pair_second.contiguous();
  const Groups g = group_by(i.data_ptr<int64_t>(), i.numel(), N);
  const auto chunks = atom_chunks(g, N);
  AT_DISPATCH_FLOATING_TYPES(s.scalar_type(), "metamlip::envsum", [&] {
    const auto& k = kernels<scalar_t>();
    parallel_items(int64_t(chunks.size()) - 1, [&](int64_t c) {
      k.envsum(out.data_ptr<scalar_t>(), s.data_ptr<scalar_t>(), z.data_ptr<scalar_t>(),
               j.data_ptr<int64_t>(), g, chunks[c], chunks[c + 1], S, F);
    });
  });
  return out;
}

torch::Tensor sensesum_cpu(const torch::Tensor& env_grad, const torch::Tensor& features,
                           const torch::Tensor& pair_first, const torch::Tensor& pair_second) {
  TORCH_CHECK(env_grad.dim() == 3 && features.dim() == 2 && env_grad.size(0) == features.size(0) &&
                  env_grad.size(2) == features.size(1),
              "metamlip::sensesum: env_grad [N, S, F] and features [N, F] do not match: ",
              env_grad.sizes(), " and ", features.sizes());
  const int64_t N = features.size(0), P = pair_first.numel(), S = env_grad.size(1),
                F = features.size(1);
  check_pair_sum("metamlip::sensesum", env_grad, features, N, pair_first, pair_second);
  if (P == 0 || S == 0 || F == 0) return torch::zeros({P, S}, features.options());
  auto out = empty_huge({P, S}, features.options());
  const auto G = env_grad.contiguous(), z = features.contiguous();
  const auto i = pair_first.contiguous(), j = pair_second.contiguous();
  const Groups g = group_by(i.data_ptr<int64_t>(), P, N);
  const auto chunks = atom_chunks(g, N);
  AT_DISPATCH_FLOATING_TYPES(G.scalar_type(), "metamlip::sensesum", [&] {
    const auto& k = kernels<scalar_t>();
    parallel_items(int64_t(chunks.size()) - 1, [&](int64_t c) {
      k.sensesum(out.data_ptr<scalar_t>(), G.data_ptr<scalar_t>(), z.data_ptr<scalar_t>(),
                 j.data_ptr<int64_t>(), g, chunks[c], chunks[c + 1], S, F);
    });
  });
  return out;
}

torch::Tensor featsum_cpu(const torch::Tensor& env_grad, const torch::Tensor& sense,
                          const torch::Tensor& pair_first, const torch::Tensor& pair_second) {
  TORCH_CHECK(env_grad.dim() == 3 && sense.dim() == 2 && env_grad.size(1) == sense.size(1) &&
                  sense.size(0) == pair_first.size(0),
              "metamlip::featsum: env_grad [N, S, F] and sense [P, S] do not match: ",
              env_grad.sizes(), " and ", sense.sizes());
  const int64_t N = env_grad.size(0), S = env_grad.size(1), F = env_grad.size(2);
  const int64_t P = pair_first.numel();
  check_pair_sum("metamlip::featsum", env_grad, sense, N, pair_first, pair_second);
  if (P == 0 || S == 0 || F == 0) return torch::zeros({N, F}, env_grad.options());
  auto out = empty_huge({N, F}, env_grad.options()).zero_();
  const auto G = env_grad.contiguous(), s = sense.contiguous();
  const auto i = pair_first.contiguous(), j = pair_second.contiguous();
  const int64_t* first = i.data_ptr<int64_t>();
  const int64_t* second = j.data_ptr<int64_t>();
  // Positions k in pair_first order; then the same positions grouped by second index, in
  // increasing k within each atom (so that blocks of k reach each atom's list in order).
  const Groups gi = group_by(first, P, N);
  const Groups gj = [&] {
    Groups g;
    g.offsets.assign(N + 1, 0);
    for (int64_t k = 0; k < P; ++k) ++g.offsets[second[gi.at(k)] + 1];
    for (int64_t a = 0; a < N; ++a) g.offsets[a + 1] += g.offsets[a];
    g.order.resize(P);
    std::vector<int64_t> fill(g.offsets.begin(), g.offsets.end() - 1);
    for (int64_t k = 0; k < P; ++k) g.order[fill[second[gi.at(k)]]++] = k;
    return g;
  }();
  const auto atom_bounds = atom_chunks(gj, N);
  AT_DISPATCH_FLOATING_TYPES(G.scalar_type(), "metamlip::featsum", [&] {
    const auto& k = kernels<scalar_t>();
    // Scratch of at most ~32 MB: c rows for one block of positions.
    const int64_t block = std::max<int64_t>(4096, (int64_t(32) << 20) / int64_t(F * sizeof(scalar_t)));
    const auto c_rows = empty_huge({std::min(block, P), F}, G.options());
    scalar_t* c = c_rows.data_ptr<scalar_t>();
    std::vector<int64_t> cursor(gj.offsets.begin(), gj.offsets.end() - 1);
    scalar_t* h = out.data_ptr<scalar_t>();
    for (int64_t kb0 = 0; kb0 < P; kb0 += block) {
      const int64_t kb1 = std::min(P, kb0 + block);
      const int64_t piece = std::max<int64_t>(256, (kb1 - kb0) / (8 * int64_t(at::get_num_threads())) + 1);
      parallel_items((kb1 - kb0 + piece - 1) / piece, [&](int64_t q) {
        const int64_t k0 = kb0 + q * piece, k1 = std::min(kb1, k0 + piece);
        k.pair_features(c, G.data_ptr<scalar_t>(), s.data_ptr<scalar_t>(), first, gi, k0, k1,
                        kb0, S, F);
      });
      parallel_items(int64_t(atom_bounds.size()) - 1, [&](int64_t q) {
        for (int64_t a = atom_bounds[q]; a < atom_bounds[q + 1]; ++a) {
          int64_t cur = cursor[a];
          const int64_t end = gj.offsets[a + 1];
          scalar_t* row = h + a * F;
          for (; cur < end && gj.order[cur] < kb1; ++cur) {
            const scalar_t* src = c + (gj.order[cur] - kb0) * F;
            for (int64_t f = 0; f < F; ++f) row[f] += src[f];
          }
          cursor[a] = cur;
        }
      });
    }
  });
  return out;
}

}  // namespace metamlip
