// Large fresh output tensors: ask for transparent huge pages before the first touch.
#pragma once

#include <sys/mman.h>
#include <torch/torch.h>

#include <cstdint>

namespace metamlip {

/// Advises the kernel to back the 2 MB-aligned part of t's storage with transparent huge pages
/// (where THP is in "madvise" mode). The outputs of the ops are often hundreds of MB, and 4 kB
/// page faults on their first touch cost about as much as the computation. A no-op for
/// tensors smaller than 2 MB, and where MADV_HUGEPAGE does not exist.
inline void advise_huge_pages(const torch::Tensor& t) {
#ifdef MADV_HUGEPAGE
  constexpr uintptr_t huge = uintptr_t(1) << 21;
  const uintptr_t begin = reinterpret_cast<uintptr_t>(t.data_ptr());
  const uintptr_t end = begin + uintptr_t(t.nbytes());
  const uintptr_t first = (begin + huge - 1) & ~(huge - 1), last = end & ~(huge - 1);
  if (last > first) madvise(reinterpret_cast<void*>(first), last - first, MADV_HUGEPAGE);
#endif
}

/// torch::empty(sizes, options), advised to use huge pages (CPU tensors).
inline torch::Tensor empty_huge(torch::IntArrayRef sizes, const torch::TensorOptions& options) {
  torch::Tensor t = torch::empty(sizes, options);
  advise_huge_pages(t);
  return t;
}

}  // namespace metamlip
