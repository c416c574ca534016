#pragma once
/// @file exec_cuda.cuh
/// @brief The CUDA backend's execution context: Thrust's CUDA system on one stream.
/// Compiled by nvcc only.

#include <cuda_runtime.h>
#include <thrust/system/cuda/execution_policy.h>

#include <cstddef>

#include "kernels/backend.hpp"
#include "kernels/error.hpp"

namespace trove::kernels::detail {

/// @brief Thrust's temporary storage (scan, copy_if, reduce scratch), stream-ordered on the
/// algorithm's own stream from the device's default memory pool, which the CUDA backend keeps
/// (release threshold: never), so that it caches: Thrust's default would cudaMalloc and cudaFree
/// (each synchronizing the device) several times per batch.
struct stream_ordered_temporaries {
  using value_type = char;
  cudaStream_t stream = nullptr;

  /// @brief `bytes` of device memory, usable by work on `stream` from now on.
  char* allocate(std::ptrdiff_t bytes) {
    void* ptr = nullptr;
    TROVE_CUDA_TRY(cudaMallocAsync(&ptr, static_cast<std::size_t>(bytes), stream));
    return static_cast<char*>(ptr);
  }
  /// @brief Back to the pool once the work queued on `stream` so far is done.
  void deallocate(char* ptr, std::size_t) noexcept { cudaFreeAsync(ptr, stream); }
};

/// @brief The Thrust policy for work on `stream`: par_nosync (the runtime synchronizes
/// explicitly, when it needs a result on the host, not after every algorithm) with its
/// temporaries from stream_ordered_temporaries.
inline auto cuda_policy(cudaStream_t stream) {
  return thrust::cuda::par_nosync(stream_ordered_temporaries{stream}).on(stream);
}

/// @brief What the kernel templates need from a backend: a policy and memory.
struct cuda_exec {
  static constexpr bool owner_partitioned = false;  // rows in parallel, atomics on shared slots
  backend* be;
  stream_view stream{};
  int device = 0;  ///< the backend's device ordinal

  /// @brief Thrust policy on the table's work stream (cuda_policy()), on the backend's device:
  /// the current device is per host thread, and a table is driven from the device thread, not
  /// the one that made the backend (cudaSetDevice is a cheap thread-local switch).
  [[nodiscard]] auto policy() const {
    TROVE_CUDA_TRY(cudaSetDevice(device));
    return cuda_policy(static_cast<cudaStream_t>(stream.handle));
  }
  /// @brief Owned passes are a CPU strategy: none here.
  [[nodiscard]] static std::size_t parallelism() noexcept { return 0; }
};

}  // namespace trove::kernels::detail
