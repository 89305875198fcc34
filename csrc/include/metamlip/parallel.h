// OpenMP loop over independent work items, sized by torch's intra-op thread count.
#pragma once

#include <ATen/Parallel.h>
#include <omp.h>

#include <cstdint>
#include <exception>

namespace metamlip {

/// Calls fn(k) for k in [0, n) on at::get_num_threads() threads (dynamic schedule).
/// The first exception thrown by fn is rethrown here, after the loop.
/// Results must not depend on which thread runs which k (callers write to per-k slots).
template <typename F>
void parallel_items(int64_t n, const F& fn) {
  if (n <= 0) return;
  const int threads = (n == 1 || omp_in_parallel()) ? 1 : at::get_num_threads();
  if (threads <= 1) {
    for (int64_t k = 0; k < n; ++k) fn(k);
    return;
  }
  std::exception_ptr error = nullptr;
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads)
  for (int64_t k = 0; k < n; ++k) {
    try {
      fn(k);
    } catch (...) {
#pragma omp critical(metamlip_parallel_error)
      if (!error) error = std::current_exception();
    }
  }
  if (error) std::rethrow_exception(error);
}

/// Splits [0, n) into at most `max_chunks` contiguous chunks of at least `min_size` items,
/// independent of the thread count. Returns the chunk size.
inline int64_t chunk_size(int64_t n, int64_t min_size, int64_t max_chunks) {
  int64_t size = (n + max_chunks - 1) / max_chunks;
  return size < min_size ? min_size : size;
}

}  // namespace metamlip
