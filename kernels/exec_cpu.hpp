#pragma once
/// @file exec_cpu.hpp
/// @brief The CPU backend's execution context: Thrust's OpenMP system over host memory.
/// Compiled by g++ only (the CPU instantiation units).

#include <omp.h>
#include <thrust/system/omp/execution_policy.h>

#include <cstdint>

#include "kernels/backend.hpp"

namespace trove::kernels::detail {

/// @brief What the kernel templates need from a backend: a policy and memory. This context runs
/// the single-source kernels exactly as the GPU does (rows in parallel, atomics on shared slots).
struct cpu_shared_exec {
  static constexpr bool owner_partitioned = false;
  backend* be;
  stream_view stream{};
  backend_op_log* log = nullptr;  ///< a recording backend's log: every algorithm is noted there

  /// @brief Thrust policy running algorithms on the OpenMP thread pool.
  [[nodiscard]] auto policy() const {
    if (log) log->record({backend_op::kind::kernel, stream.handle, nullptr});
    return thrust::omp::par;
  }
  [[nodiscard]] static std::size_t parallelism() noexcept { return 0; }  // no owned passes
};

/// @brief The CPU backend's default context: like cpu_shared_exec, but the table passes that
/// probe (dedup, aggregate) give each thread the keys whose home slot lies in its share of the
/// table. Every key then has one owner that visits its rows in arrival order: no contention on
/// hot keys, plain (non-atomic) aggregate updates, deterministic float sums, and dedup in one pass
/// without the claim protocol. Slots are still claimed with a CAS, because a probe sequence can
/// run past the end of its owner's share.
struct cpu_exec {
  static constexpr bool owner_partitioned = true;
  backend* be;
  stream_view stream{};
  backend_op_log* log = nullptr;  ///< a recording backend's log: every algorithm is noted there

  [[nodiscard]] auto policy() const {
    if (log) log->record({backend_op::kind::kernel, stream.handle, nullptr});
    return thrust::omp::par;
  }

  /// @brief Threads an owned pass runs on.
  [[nodiscard]] static std::size_t parallelism() noexcept {
    return static_cast<std::size_t>(omp_get_max_threads());
  }

  /// @brief Runs fn(lo, hi) on every thread for its share [lo, hi) of a table's slots and returns
  /// the sum of the results.
  template <class F>
  std::uint64_t owned(std::uint64_t capacity, F&& fn) const {
    if (log) log->record({backend_op::kind::kernel, stream.handle, nullptr});
    std::uint64_t total = 0;
#pragma omp parallel reduction(+ : total)
    {
      const auto threads = static_cast<std::uint64_t>(omp_get_num_threads());
      const auto t = static_cast<std::uint64_t>(omp_get_thread_num());
      total += fn(capacity * t / threads, capacity * (t + 1) / threads);
    }
    return total;
  }
};

}  // namespace trove::kernels::detail
