// empty_huge: large CPU outputs on huge pages, with a cache of freed blocks (memory.h).
#include "metamlip/memory.h"

#include <sys/mman.h>

#include <cstdlib>
#include <list>
#include <mutex>
#include <new>

namespace metamlip {
namespace {

constexpr size_t kHugePage = size_t(1) << 21;
constexpr size_t kMaxIdleBytes = size_t(1) << 30;

/// Idle blocks, most recently freed first. A block serves a request of up to its own size and
/// at least half of it, so a small request never pins a big block.
class BlockCache {
 public:
  struct Block {
    void* data;
    size_t bytes;
  };

  /// A block of at least `bytes` (a multiple of the huge-page size).
  Block acquire(size_t bytes) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      for (auto it = idle_.begin(); it != idle_.end(); ++it) {
        if (it->bytes == bytes || (it->bytes > bytes && it->bytes <= 2 * bytes)) {
          const Block block = *it;
          idle_bytes_ -= block.bytes;
          idle_.erase(it);
          return block;
        }
      }
    }
    void* data = nullptr;
    if (posix_memalign(&data, kHugePage, bytes) != 0) throw std::bad_alloc();
#ifdef MADV_HUGEPAGE
    madvise(data, bytes, MADV_HUGEPAGE);
#endif
    return {data, bytes};
  }

  /// Keeps the block for reuse, dropping the least recently freed ones above the limit.
  void release(const Block& block) {
    std::list<Block> dropped;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      idle_.push_front(block);
      idle_bytes_ += block.bytes;
      while (idle_bytes_ > kMaxIdleBytes) {
        idle_bytes_ -= idle_.back().bytes;
        dropped.splice(dropped.begin(), idle_, std::prev(idle_.end()));
      }
    }
    for (const Block& b : dropped) std::free(b.data);
  }

 private:
  std::mutex mutex_;
  std::list<Block> idle_;
  size_t idle_bytes_ = 0;
};

/// Never destroyed: tensors may be freed during interpreter shutdown, after static destructors.
BlockCache& block_cache() {
  static BlockCache* cache = new BlockCache();
  return *cache;
}

}  // namespace

torch::Tensor empty_huge(torch::IntArrayRef sizes, const torch::TensorOptions& options) {
  int64_t numel = 1;
  for (const int64_t s : sizes) numel *= s;
  const size_t bytes = size_t(numel) * options.dtype().itemsize();
  if (bytes < kHugePage) return torch::empty(sizes, options);
  TORCH_CHECK(options.device().is_cpu(), "empty_huge makes CPU tensors, got ", options.device());
  const size_t rounded = (bytes + kHugePage - 1) / kHugePage * kHugePage;
  const BlockCache::Block block = block_cache().acquire(rounded);
  return torch::from_blob(
      block.data, sizes, [block](void*) { block_cache().release(block); }, options);
}

}  // namespace metamlip
