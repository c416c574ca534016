#pragma once
/// @file exec_cuda.cuh
/// @brief The CUDA backend's execution context: Thrust's CUDA system on one stream.
/// Compiled by nvcc only.

#include <cuda_runtime.h>
#include <thrust/system/cuda/execution_policy.h>

#include <cstddef>

#include "kernels/backend.hpp"

namespace trove::kernels::detail {

/// @brief What the kernel templates need from a backend: a policy and memory.
struct cuda_exec {
  static constexpr bool owner_partitioned = false;  // rows in parallel, atomics on shared slots
  backend* be;
  stream_view stream{};

  /// @brief Thrust policy on the stream; par_nosync because the runtime synchronizes explicitly
  /// once per batch, not after every algorithm.
  [[nodiscard]] auto policy() const {
    return thrust::cuda::par_nosync.on(static_cast<cudaStream_t>(stream.handle));
  }
  /// @brief Owned passes are a CPU strategy: none here.
  [[nodiscard]] static std::size_t parallelism() noexcept { return 0; }
};

}  // namespace trove::kernels::detail
