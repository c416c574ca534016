#pragma once
/// @file sum.hpp
/// @brief Accumulator: the sum of a field's values. Integers add modulo 2^64 (exact for any
/// order); doubles add in the order the updates happen, so with atomics (rows in parallel) the
/// last bits of a float sum depend on the interleaving.

#include <cstdint>
#include <cuda/std/bit>

#include "kernels/aggregates/accumulator.hpp"
#include "kernels/atomics.hpp"
#include "kernels/column_view.hpp"

namespace trove::kernels::detail {

/// @brief Atomically word += value, the word read as a double.
TROVE_HD TROVE_FORCEINLINE void atomic_add_f64(std::uint64_t& word, double value) noexcept {
#if defined(__CUDA_ARCH__)
  atomicAdd(reinterpret_cast<double*>(&word), value);  // native double atomics (sm_60+)
#else
  std::uint64_t current = load_relaxed(word);
  while (!atomic_ref<std::uint64_t>(word).compare_exchange_weak(
      current, cuda::std::bit_cast<std::uint64_t>(cuda::std::bit_cast<double>(current) + value),
      cuda::std::memory_order_relaxed)) {
  }
#endif
}

struct sum_acc {
  static constexpr acc_kind kind = acc_kind::sum;
  static constexpr std::uint32_t words = 1;

  TROVE_HD static void init(std::uint64_t* w, value_kind) noexcept { w[0] = 0; }

  template <bool Atomic>
  TROVE_HD TROVE_FORCEINLINE static void update(std::uint64_t* w, std::uint64_t value,
                                                value_kind kind) noexcept {
    if (kind == value_kind::f64) {
      const double v = cuda::std::bit_cast<double>(value);
      if constexpr (Atomic) {
        atomic_add_f64(w[0], v);
      } else {
        w[0] = cuda::std::bit_cast<std::uint64_t>(cuda::std::bit_cast<double>(w[0]) + v);
      }
    } else if constexpr (Atomic) {
      fetch_add(w[0], value);  // two's complement: unsigned add == signed add mod 2^64
    } else {
      w[0] += value;
    }
  }

  TROVE_HD static void merge(std::uint64_t* w, const std::uint64_t* other,
                             value_kind kind) noexcept {
    update<false>(w, other[0], kind);
  }
};

}  // namespace trove::kernels::detail
