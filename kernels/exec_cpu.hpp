#pragma once
/// @file exec_cpu.hpp
/// @brief The CPU backend's execution context: Thrust's OpenMP system over host memory.
/// Compiled by g++ only (the CPU instantiation units).

#include <thrust/system/omp/execution_policy.h>

#include "kernels/backend.hpp"

namespace trove::kernels::detail {

/// @brief What the kernel templates need from a backend: a policy and memory.
struct cpu_exec {
  backend* be;
  stream_view stream{};

  /// @brief Thrust policy running algorithms on the OpenMP thread pool.
  [[nodiscard]] auto policy() const { return thrust::omp::par; }
};

}  // namespace trove::kernels::detail
