// CPU HIP-NN-TS pair sums (OpenMP): the tensor interaction and its three derivatives.
//
// They are the partial derivatives of one multilinear form of grad G [N, C, O], sensitivities
// s [P, S], tensor basis t [P, C] and per-atom values V [N, S, O] (V = z W, the input features
// times the interaction weights):
//
//   T(G, s, t, V) = sum_p sum_{c, v, o} G[i_p, c, o] t[p, c] s[p, v] V[j_p, v, o]
//
//   tensorsum        dT/dG  out[i, c, o] = sum_{p = (i, j)} t[p, c] m_p[o],  m_p = sum_v s[p, v] V[j_p, v]
//   tensorsum_sense  dT/ds  out[p, v]    = sum_o V[j_p, v, o] g_p[o],        g_p = sum_c t[p, c] G[i_p, c]
//   tensorsum_basis  dT/dt  out[p, c]    = sum_o G[i_p, c, o] m_p[o]
//   tensorsum_values dT/dV  out[j, v, o] = sum_{p: j_p = j} s[p, v] g_p[o]
//
// Summing z W before the pairs costs (S + C) O per pair instead of the C S F of the tensor
// environment sum env[i, c, v, f] (nn/tensor_sensitivity.py), which these replace in the
// model. Sums over pairs are grouped by the receiving atom (no atomics), per atom in pair
// order, so results do not depend on the number of threads.
#include <algorithm>
#include <vector>

#include "metamlip/groups.h"
#include "metamlip/isa.h"
#include "metamlip/memory.h"
#include "metamlip/ops.h"
#include "metamlip/parallel.h"

namespace metamlip {
namespace {

#define METAMLIP_INLINE inline __attribute__((always_inline))

/// y[o] += a * x[o], o < n.
template <typename T>
METAMLIP_INLINE void axpy(T* __restrict y, T a, const T* __restrict x, int64_t n) {
#pragma omp simd
  for (int64_t o = 0; o < n; ++o) y[o] += a * x[o];
}

template <typename T>
METAMLIP_INLINE T dot(const T* __restrict x, const T* __restrict y, int64_t n) {
  T acc = 0;
#pragma omp simd reduction(+ : acc)
  for (int64_t o = 0; o < n; ++o) acc += x[o] * y[o];
  return acc;
}

/// m[o] = sum_v s[v] V[v, o] (m has O entries; zero sensitivities skipped).
template <typename T>
METAMLIP_INLINE void pair_values(T* m, const T* s, const T* V, int64_t S, int64_t O) {
  std::fill(m, m + O, T(0));
  for (int64_t v = 0; v < S; ++v)
    if (s[v] != T(0)) axpy(m, s[v], V + v * O, O);
}

/// g[o] = sum_c t[c] G[c, o].
template <typename T>
METAMLIP_INLINE void pair_grad(T* g, const T* t, const T* G, int64_t C, int64_t O) {
  std::fill(g, g + O, T(0));
  for (int64_t c = 0; c < C; ++c) axpy(g, t[c], G + c * O, O);
}

struct Sizes {
  int64_t S, C, O;
};

template <typename T>
METAMLIP_INLINE void tensorsum_atoms(T* out, const T* s, const T* t, const T* V, const int64_t* second,
                     const Groups& g, int64_t a0, int64_t a1, Sizes n) {
  std::vector<T> m(n.O);
  for (int64_t a = a0; a < a1; ++a) {
    T* row = out + a * n.C * n.O;
    std::fill(row, row + n.C * n.O, T(0));
    for (int64_t k = g.offsets[a]; k < g.offsets[a + 1]; ++k) {
      const int64_t p = g.at(k);
      pair_values(m.data(), s + p * n.S, V + second[p] * n.S * n.O, n.S, n.O);
      for (int64_t c = 0; c < n.C; ++c) axpy(row + c * n.O, t[p * n.C + c], m.data(), n.O);
    }
  }
}

template <typename T>
METAMLIP_INLINE void sense_pairs(T* out, const T* G, const T* t, const T* V, const int64_t* first,
                 const int64_t* second, int64_t p0, int64_t p1, Sizes n) {
  std::vector<T> g(n.O);
  for (int64_t p = p0; p < p1; ++p) {
    pair_grad(g.data(), t + p * n.C, G + first[p] * n.C * n.O, n.C, n.O);
    const T* Vj = V + second[p] * n.S * n.O;
    for (int64_t v = 0; v < n.S; ++v) out[p * n.S + v] = dot(Vj + v * n.O, g.data(), n.O);
  }
}

template <typename T>
METAMLIP_INLINE void basis_pairs(T* out, const T* G, const T* s, const T* V, const int64_t* first,
                 const int64_t* second, int64_t p0, int64_t p1, Sizes n) {
  std::vector<T> m(n.O);
  for (int64_t p = p0; p < p1; ++p) {
    pair_values(m.data(), s + p * n.S, V + second[p] * n.S * n.O, n.S, n.O);
    const T* Gi = G + first[p] * n.C * n.O;
    for (int64_t c = 0; c < n.C; ++c) out[p * n.C + c] = dot(Gi + c * n.O, m.data(), n.O);
  }
}

template <typename T>
METAMLIP_INLINE void values_atoms(T* out, const T* G, const T* s, const T* t, const int64_t* first,
                  const Groups& g, int64_t a0, int64_t a1, Sizes n) {
  std::vector<T> grad(n.O);
  for (int64_t a = a0; a < a1; ++a) {
    T* row = out + a * n.S * n.O;
    std::fill(row, row + n.S * n.O, T(0));
    for (int64_t k = g.offsets[a]; k < g.offsets[a + 1]; ++k) {
      const int64_t p = g.at(k);
      pair_grad(grad.data(), t + p * n.C, G + first[p] * n.C * n.O, n.C, n.O);
      const T* sp = s + p * n.S;
      for (int64_t v = 0; v < n.S; ++v)
        if (sp[v] != T(0)) axpy(row + v * n.O, sp[v], grad.data(), n.O);
    }
  }
}

// Entry points compiled once per instruction set (metamlip/isa.h), chosen at run time.
template <typename T>
struct TensorKernels {
  void (*tensorsum)(T*, const T*, const T*, const T*, const int64_t*, const Groups&, int64_t, int64_t, Sizes);
  void (*sense)(T*, const T*, const T*, const T*, const int64_t*, const int64_t*, int64_t, int64_t, Sizes);
  void (*basis)(T*, const T*, const T*, const T*, const int64_t*, const int64_t*, int64_t, int64_t, Sizes);
  void (*values)(T*, const T*, const T*, const T*, const int64_t*, const Groups&, int64_t, int64_t, Sizes);
};

#define METAMLIP_TENSOR_KERNELS(NAME, ATTRIBUTES)                                                      \
  template <typename T>                                                                              \
  ATTRIBUTES void tensorsum_##NAME(T* out, const T* s, const T* t, const T* V, const int64_t* second, \
                                   const Groups& g, int64_t a0, int64_t a1, Sizes n) {               \
    tensorsum_atoms(out, s, t, V, second, g, a0, a1, n);                                             \
  }                                                                                                  \
  template <typename T>                                                                              \
  ATTRIBUTES void sense_##NAME(T* out, const T* G, const T* t, const T* V, const int64_t* first,     \
                               const int64_t* second, int64_t p0, int64_t p1, Sizes n) {             \
    sense_pairs(out, G, t, V, first, second, p0, p1, n);                                             \
  }                                                                                                  \
  template <typename T>                                                                              \
  ATTRIBUTES void basis_##NAME(T* out, const T* G, const T* s, const T* V, const int64_t* first,     \
                               const int64_t* second, int64_t p0, int64_t p1, Sizes n) {             \
    basis_pairs(out, G, s, V, first, second, p0, p1, n);                                             \
  }                                                                                                  \
  template <typename T>                                                                              \
  ATTRIBUTES void values_##NAME(T* out, const T* G, const T* s, const T* t, const int64_t* first,    \
                                const Groups& g, int64_t a0, int64_t a1, Sizes n) {                  \
    values_atoms(out, G, s, t, first, g, a0, a1, n);                                                 \
  }                                                                                                  \
  template <typename T>                                                                              \
  TensorKernels<T> tensor_kernels_##NAME() {                                                         \
    return {&tensorsum_##NAME<T>, &sense_##NAME<T>, &basis_##NAME<T>, &values_##NAME<T>};            \
  }

#ifdef METAMLIP_X86
METAMLIP_TENSOR_KERNELS(avx512, METAMLIP_TARGET_AVX512)
METAMLIP_TENSOR_KERNELS(avx2, METAMLIP_TARGET_AVX2)
#endif
METAMLIP_TENSOR_KERNELS(baseline, )
#undef METAMLIP_TENSOR_KERNELS
#undef METAMLIP_INLINE

template <typename T>
const TensorKernels<T>& tensor_kernels() {
  static const TensorKernels<T> chosen = [] {
    switch (detect_isa()) {
#ifdef METAMLIP_X86
      case Isa::avx512:
        return tensor_kernels_avx512<T>();
      case Isa::avx2:
        return tensor_kernels_avx2<T>();
#endif
      default:
        return tensor_kernels_baseline<T>();
    }
  }();
  return chosen;
}

/// Pair blocks [k * size, (k + 1) * size) of about equal work, independent of the thread count.
int64_t pair_block(int64_t P) { return chunk_size(P, 256, 1024); }

std::string shapes(std::initializer_list<const torch::Tensor*> tensors) {
  std::string out;
  for (const auto* t : tensors) out += (out.empty() ? "" : ", ") + c10::str(t->sizes());
  return out;
}

}  // namespace

torch::Tensor tensorsum_cpu(const torch::Tensor& sense, const torch::Tensor& basis,
                            const torch::Tensor& values, const torch::Tensor& pair_first,
                            const torch::Tensor& pair_second) {
  constexpr const char* what = "metamlip::tensorsum";
  const int64_t P = pair_first.numel();
  // (TORCH_CHECK builds its message only when the check fails.)
  TORCH_CHECK(sense.dim() == 2 && basis.dim() == 2 && values.dim() == 3 && sense.size(0) == P &&
              basis.size(0) == P && values.size(1) == sense.size(1),
              what, ": shapes do not match: sense [P, S], basis [P, C], values [N, S, O] expected, got ",
              shapes({&sense, &basis, &values}), " with P = ", P);
  check_pair_sum(what, sense, values, values.size(0), pair_first, pair_second);
  check_pair_sum(what, basis, values, values.size(0), pair_first, pair_second);
  const int64_t N = values.size(0);
  const Sizes n{sense.size(1), basis.size(1), values.size(2)};
  if (P == 0 || n.S == 0 || n.C == 0 || n.O == 0) return torch::zeros({N, n.C, n.O}, values.options());
  auto out = empty_huge({N, n.C, n.O}, values.options());
  const auto s = sense.contiguous(), t = basis.contiguous(), V = values.contiguous();
  const auto i = pair_first.contiguous(), j = pair_second.contiguous();
  const Groups g = group_by(i.data_ptr<int64_t>(), P, N);
  const auto chunks = atom_chunks(g, N);
  AT_DISPATCH_FLOATING_TYPES(s.scalar_type(), what, [&] {
    parallel_items(int64_t(chunks.size()) - 1, [&](int64_t c) {
      tensor_kernels<scalar_t>().tensorsum(out.data_ptr<scalar_t>(), s.data_ptr<scalar_t>(), t.data_ptr<scalar_t>(),
                       V.data_ptr<scalar_t>(), j.data_ptr<int64_t>(), g, chunks[c], chunks[c + 1], n);
    });
  });
  return out;
}

torch::Tensor tensorsum_sense_cpu(const torch::Tensor& grad, const torch::Tensor& basis,
                                  const torch::Tensor& values, const torch::Tensor& pair_first,
                                  const torch::Tensor& pair_second) {
  constexpr const char* what = "metamlip::tensorsum_sense";
  const int64_t P = pair_first.numel();
  // (TORCH_CHECK builds its message only when the check fails.)
  TORCH_CHECK(grad.dim() == 3 && basis.dim() == 2 && values.dim() == 3 && basis.size(0) == P &&
              grad.size(0) == values.size(0) && grad.size(1) == basis.size(1) &&
              grad.size(2) == values.size(2),
              what, ": shapes do not match: grad [N, C, O], basis [P, C], values [N, S, O] expected, got ",
              shapes({&grad, &basis, &values}), " with P = ", P);
  check_pair_sum(what, grad, values, values.size(0), pair_first, pair_second);
  check_pair_sum(what, basis, values, values.size(0), pair_first, pair_second);
  const Sizes n{values.size(1), basis.size(1), values.size(2)};
  if (P == 0 || n.S == 0 || n.C == 0 || n.O == 0) return torch::zeros({P, n.S}, values.options());
  auto out = torch::empty({P, n.S}, values.options());
  const auto G = grad.contiguous(), t = basis.contiguous(), V = values.contiguous();
  const auto i = pair_first.contiguous(), j = pair_second.contiguous();
  const int64_t block = pair_block(P);
  AT_DISPATCH_FLOATING_TYPES(G.scalar_type(), what, [&] {
    parallel_items((P + block - 1) / block, [&](int64_t q) {
      tensor_kernels<scalar_t>().sense(out.data_ptr<scalar_t>(), G.data_ptr<scalar_t>(), t.data_ptr<scalar_t>(),
                   V.data_ptr<scalar_t>(), i.data_ptr<int64_t>(), j.data_ptr<int64_t>(), q * block,
                   std::min(P, (q + 1) * block), n);
    });
  });
  return out;
}

torch::Tensor tensorsum_basis_cpu(const torch::Tensor& grad, const torch::Tensor& sense,
                                  const torch::Tensor& values, const torch::Tensor& pair_first,
                                  const torch::Tensor& pair_second) {
  constexpr const char* what = "metamlip::tensorsum_basis";
  const int64_t P = pair_first.numel();
  // (TORCH_CHECK builds its message only when the check fails.)
  TORCH_CHECK(grad.dim() == 3 && sense.dim() == 2 && values.dim() == 3 && sense.size(0) == P &&
              grad.size(0) == values.size(0) && sense.size(1) == values.size(1) &&
              grad.size(2) == values.size(2),
              what, ": shapes do not match: grad [N, C, O], sense [P, S], values [N, S, O] expected, got ",
              shapes({&grad, &sense, &values}), " with P = ", P);
  check_pair_sum(what, grad, values, values.size(0), pair_first, pair_second);
  check_pair_sum(what, sense, values, values.size(0), pair_first, pair_second);
  const Sizes n{sense.size(1), grad.size(1), values.size(2)};
  if (P == 0 || n.S == 0 || n.C == 0 || n.O == 0) return torch::zeros({P, n.C}, values.options());
  auto out = torch::empty({P, n.C}, values.options());
  const auto G = grad.contiguous(), s = sense.contiguous(), V = values.contiguous();
  const auto i = pair_first.contiguous(), j = pair_second.contiguous();
  const int64_t block = pair_block(P);
  AT_DISPATCH_FLOATING_TYPES(G.scalar_type(), what, [&] {
    parallel_items((P + block - 1) / block, [&](int64_t q) {
      tensor_kernels<scalar_t>().basis(out.data_ptr<scalar_t>(), G.data_ptr<scalar_t>(), s.data_ptr<scalar_t>(),
                   V.data_ptr<scalar_t>(), i.data_ptr<int64_t>(), j.data_ptr<int64_t>(), q * block,
                   std::min(P, (q + 1) * block), n);
    });
  });
  return out;
}

torch::Tensor tensorsum_values_cpu(const torch::Tensor& grad, const torch::Tensor& sense,
                                   const torch::Tensor& basis, const torch::Tensor& pair_first,
                                   const torch::Tensor& pair_second) {
  constexpr const char* what = "metamlip::tensorsum_values";
  const int64_t P = pair_first.numel();
  // (TORCH_CHECK builds its message only when the check fails.)
  TORCH_CHECK(grad.dim() == 3 && sense.dim() == 2 && basis.dim() == 2 && sense.size(0) == P &&
              basis.size(0) == P && grad.size(1) == basis.size(1),
              what, ": shapes do not match: grad [N, C, O], sense [P, S], basis [P, C] expected, got ",
              shapes({&grad, &sense, &basis}), " with P = ", P);
  check_pair_sum(what, grad, sense, grad.size(0), pair_first, pair_second);
  check_pair_sum(what, grad, basis, grad.size(0), pair_first, pair_second);
  const int64_t N = grad.size(0);
  const Sizes n{sense.size(1), basis.size(1), grad.size(2)};
  if (P == 0 || n.S == 0 || n.C == 0 || n.O == 0) return torch::zeros({N, n.S, n.O}, grad.options());
  auto out = empty_huge({N, n.S, n.O}, grad.options());
  const auto G = grad.contiguous(), s = sense.contiguous(), t = basis.contiguous();
  const auto i = pair_first.contiguous(), j = pair_second.contiguous();
  const Groups g = group_by(j.data_ptr<int64_t>(), P, N);
  const auto chunks = atom_chunks(g, N);
  AT_DISPATCH_FLOATING_TYPES(G.scalar_type(), what, [&] {
    parallel_items(int64_t(chunks.size()) - 1, [&](int64_t c) {
      tensor_kernels<scalar_t>().values(out.data_ptr<scalar_t>(), G.data_ptr<scalar_t>(), s.data_ptr<scalar_t>(),
                    t.data_ptr<scalar_t>(), i.data_ptr<int64_t>(), g, chunks[c], chunks[c + 1], n);
    });
  });
  return out;
}

}  // namespace metamlip
