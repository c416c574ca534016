/// @file backend_cpu.cpp
/// @brief The CPU backend: host memory, Thrust's OpenMP system, and the CPU instantiation of every
/// kernel template.

#include <omp.h>
#include <sys/mman.h>
#include <thrust/copy.h>
#include <thrust/reduce.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <new>
#include <string>
#include <unordered_map>

#include "kernels/agg_table_impl.hpp"
#include "kernels/backend.hpp"
#include "kernels/classify.hpp"
#include "kernels/dedup_set_impl.hpp"
#include "kernels/exec_cpu.hpp"

namespace trove::kernels {

int cpu_backend_threads() noexcept {
  return omp_get_max_threads();
}

namespace {

/// Memory is host memory; "device" copies are memcpy and every call completes before it returns,
/// so streams are null handles and synchronize() has nothing to wait for.
template <class Exec>
class cpu_backend final : public backend {
 public:
  explicit cpu_backend(backend_op_log* log) : log_(log) {}
  [[nodiscard]] backend_kind kind() const noexcept override { return backend_kind::cpu; }
  [[nodiscard]] std::string description() const override {
    return "cpu (" + std::to_string(cpu_backend_threads()) + " OpenMP threads" +
           (Exec::owner_partitioned ? "" : ", atomic") + ")";
  }
  ~cpu_backend() override {
    for (auto& [bytes, ptr] : cache_) std::free(ptr);
  }
  void* allocate(std::size_t bytes, stream_view stream) override {
    void* ptr = allocate_block(bytes);
    note(backend_op::kind::allocate, stream, ptr, bytes);
    return ptr;
  }
  void* allocate_block(std::size_t bytes) {
    if (bytes >= cache_min_bytes) {
      // Reuse a cached block of up to twice the size: per-extraction scratch would otherwise be
      // mmap'ed, zeroed by the kernel page by page, and unmapped again, batch after batch.
      std::lock_guard lock(cache_mutex_);
      auto it = cache_.lower_bound(bytes);
      if (it != cache_.end() && it->first <= 2 * bytes) {
        void* ptr = it->second;
        cached_bytes_ -= it->first;
        sizes_[ptr] = it->first;
        cache_.erase(it);
        return ptr;
      }
    }
    void* ptr = aligned(bytes);
    if (bytes >= cache_min_bytes) {
      std::lock_guard lock(cache_mutex_);
      sizes_[ptr] = bytes;
    }
    return ptr;
  }
  void deallocate(void* ptr, std::size_t bytes, stream_view stream) noexcept override {
    note(backend_op::kind::deallocate, stream, ptr, bytes);
    if (ptr && bytes >= cache_min_bytes) {
      std::lock_guard lock(cache_mutex_);
      auto size = sizes_.find(ptr);
      const std::size_t real = size != sizes_.end() ? size->second : bytes;
      if (size != sizes_.end()) sizes_.erase(size);
      if (cached_bytes_ + real <= cache_max_bytes) {
        cache_.emplace(real, ptr);
        cached_bytes_ += real;
        return;
      }
    }
    std::free(ptr);
  }
  void* allocate_host(std::size_t bytes) override {
    void* ptr = aligned(bytes);
    note(backend_op::kind::allocate_host, {}, ptr, bytes);
    return ptr;
  }
  void deallocate_host(void* ptr, std::size_t bytes) noexcept override {
    note(backend_op::kind::deallocate_host, {}, ptr, bytes);
    std::free(ptr);
  }
  void copy_to_device(void* d_dst, const void* h_src, std::size_t bytes,
                      stream_view stream) override {
    note(backend_op::kind::copy, stream, d_dst, bytes);
    if (bytes) std::memcpy(d_dst, h_src, bytes);
  }
  void copy_to_host(void* h_dst, const void* d_src, std::size_t bytes,
                    stream_view stream) override {
    note(backend_op::kind::copy, stream, h_dst, bytes, true);
    if (bytes) std::memcpy(h_dst, d_src, bytes);
  }
  void copy_on_device(void* d_dst, const void* d_src, std::size_t bytes,
                      stream_view stream) override {
    note(backend_op::kind::copy, stream, d_dst, bytes);
    if (bytes) std::memcpy(d_dst, d_src, bytes);
  }
  void fill_bytes(void* d_dst, int value, std::size_t bytes, stream_view stream) override {
    note(backend_op::kind::fill, stream, d_dst, bytes);
    if (bytes) std::memset(d_dst, value, bytes);
  }
  stream_view create_stream() override {
    // Recording: distinct fake handles, so that the log tells streams apart (never dereferenced).
    if (log_) return stream_view{reinterpret_cast<void*>(++streams_)};
    return {};
  }
  void destroy_stream(stream_view) noexcept override {}
  void synchronize(stream_view) override {}
  std::int64_t reduce_sum(const std::int64_t* d_values, std::size_t n,
                          stream_view stream) override {
    note(backend_op::kind::kernel, stream, nullptr);
    return thrust::reduce(thrust::omp::par, d_values, d_values + n, std::int64_t{0});
  }
  void classify(const classify_input& input, std::uint8_t* d_status, hash128* d_dedup_keys,
                stream_view stream) override {
    note(backend_op::kind::kernel, stream, nullptr);
    const auto rows = thrust::counting_iterator<std::size_t>(0);
    thrust::for_each(thrust::omp::par, rows, rows + input.num_rows,
                     detail::classify_fn{input, d_status, d_dedup_keys});
  }
  void count_status(const std::uint8_t* d_status, std::size_t n, std::uint64_t* counts,
                    stream_view stream) override {
    note(backend_op::kind::kernel, stream, nullptr);
    const auto rows = thrust::counting_iterator<std::size_t>(0);
    const detail::status_counts total =
        thrust::transform_reduce(thrust::omp::par, rows, rows + n, detail::status_one_fn{d_status},
                                 detail::status_counts{}, detail::status_merge_fn{});
    for (int s = 0; s < status_count; ++s) counts[s] = total.counts[s];
  }
  std::size_t select_rows(const std::uint8_t* d_status, std::size_t n, std::uint8_t status,
                          std::uint32_t* d_rows, stream_view stream) override {
    note(backend_op::kind::kernel, stream, nullptr);
    const auto rows = thrust::counting_iterator<std::uint32_t>(0);
    std::uint32_t* end =
        thrust::copy_if(thrust::omp::par, rows, rows + static_cast<std::uint32_t>(n), d_status,
                        d_rows, detail::status_is_fn{status});
    return static_cast<std::size_t>(end - d_rows);
  }
  std::unique_ptr<dedup_set> make_dedup_set(const dedup_options& options,
                                            stream_view stream) override {
    return detail::make_dedup_set(Exec{this, stream, log_}, options);
  }
  std::unique_ptr<agg_table> make_agg_table(const agg_options& options,
                                            stream_view stream) override {
    return std::make_unique<detail::agg_table_impl<Exec>>(Exec{this, stream, log_}, options);
  }

 private:
  void note(backend_op::kind what, stream_view stream, const void* memory, std::size_t bytes = 0,
            bool to_host = false) noexcept {
    if (log_) log_->record({what, stream.handle, memory, bytes, to_host});
  }
  backend_op_log* log_ = nullptr;
  std::uintptr_t streams_ = 0;  // fake stream handles handed out (recording only)
  static constexpr std::size_t cache_min_bytes = std::size_t{1} << 20;
  static constexpr std::size_t cache_max_bytes = std::size_t{1} << 30;
  std::mutex cache_mutex_;
  std::multimap<std::size_t, void*> cache_;       // free blocks by size
  std::unordered_map<void*, std::size_t> sizes_;  // size of each block handed out
  std::size_t cached_bytes_ = 0;

  static void* aligned(std::size_t bytes) {
    // Tables are probed at random: on large allocations 2 MiB pages cut TLB misses, which
    // otherwise cost as much as the cache misses themselves once a table outgrows the TLB reach.
    constexpr std::size_t huge = std::size_t{2} << 20;
    if (bytes >= 4 * huge) {
      const std::size_t rounded = (bytes + huge - 1) / huge * huge;
      void* ptr = std::aligned_alloc(huge, rounded);
      if (!ptr) throw std::bad_alloc();
      madvise(ptr, rounded, MADV_HUGEPAGE);  // advisory: ignored where THP is off
      return ptr;
    }
    // 64-byte aligned (a cache line); aligned_alloc needs a multiple of the alignment.
    void* ptr = std::aligned_alloc(64, ((bytes + 63) / 64) * 64 + 64);
    if (!ptr) throw std::bad_alloc();
    return ptr;
  }
};

}  // namespace

std::unique_ptr<backend> make_cpu_backend(cpu_strategy strategy, backend_op_log* log) {
  if (strategy == cpu_strategy::owned) return std::make_unique<cpu_backend<detail::cpu_exec>>(log);
  return std::make_unique<cpu_backend<detail::cpu_shared_exec>>(log);
}

}  // namespace trove::kernels
