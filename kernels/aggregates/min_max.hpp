#pragma once
/// @file min_max.hpp
/// @brief Accumulators: the least (min) and the greatest (max) of a field's values — one
/// accumulator with a direction. Integers compare exactly (i64 signed, u64 unsigned); doubles by
/// < or >, so NaN never replaces a value. Each starts at its kind's identity (min: INT64_MAX,
/// UINT64_MAX, +inf; max: INT64_MIN, 0, -inf), which any value replaces.

#include <cstdint>
#include <cuda/std/bit>
#include <cuda/std/limits>

#include "kernels/aggregates/accumulator.hpp"
#include "kernels/atomics.hpp"
#include "kernels/column_view.hpp"

namespace trove::kernels::detail {

template <bool Greatest>
struct extremum_acc {
  static constexpr acc_kind kind = Greatest ? acc_kind::max : acc_kind::min;
  static constexpr std::uint32_t words = 1;

  /// @brief Whether `value` replaces `current`.
  template <class T>
  TROVE_HD TROVE_FORCEINLINE static bool better(T value, T current) noexcept {
    if constexpr (Greatest) {
      return value > current;
    } else {
      return value < current;
    }
  }

  TROVE_HD static std::uint64_t identity(value_kind kind) noexcept {
    constexpr double inf = cuda::std::numeric_limits<double>::infinity();
    switch (kind) {
      case value_kind::i64:
        return static_cast<std::uint64_t>(Greatest
                                              ? cuda::std::numeric_limits<std::int64_t>::min()
                                              : cuda::std::numeric_limits<std::int64_t>::max());
      case value_kind::u64:
        return Greatest ? 0 : ~std::uint64_t{0};
      default:
        return cuda::std::bit_cast<std::uint64_t>(Greatest ? -inf : inf);
    }
  }

  TROVE_HD static void init(std::uint64_t* w, value_kind kind) noexcept { w[0] = identity(kind); }

  /// @brief word = the better of word and value, read as T (a CAS loop: reads first, so the
  /// common case — no improvement — costs one plain load and no write).
  template <class T>
  TROVE_HD TROVE_FORCEINLINE static void atomic_improve(std::uint64_t& word, T value) noexcept {
    std::uint64_t current = load_relaxed(word);
    while (
        better(value, cuda::std::bit_cast<T>(current)) &&
        !atomic_ref<std::uint64_t>(word).compare_exchange_weak(
            current, cuda::std::bit_cast<std::uint64_t>(value), cuda::std::memory_order_relaxed)) {
    }
  }

  template <bool Atomic, class T>
  TROVE_HD TROVE_FORCEINLINE static void update_as(std::uint64_t* w, T value) noexcept {
    if constexpr (Atomic) {
      atomic_improve(w[0], value);
    } else if (better(value, cuda::std::bit_cast<T>(w[0]))) {
      w[0] = cuda::std::bit_cast<std::uint64_t>(value);
    }
  }

  template <bool Atomic>
  TROVE_HD TROVE_FORCEINLINE static void update(std::uint64_t* w, std::uint64_t value,
                                                value_kind kind) noexcept {
    switch (kind) {
      case value_kind::i64:
        return update_as<Atomic>(w, static_cast<std::int64_t>(value));
      case value_kind::u64:
        return update_as<Atomic>(w, value);
      case value_kind::f64:
        return update_as<Atomic>(w, cuda::std::bit_cast<double>(value));
    }
  }

  /// @brief w = the accumulator of both groups' values (the identity never wins, so an empty side
  /// is harmless; not atomic).
  TROVE_HD static void merge(std::uint64_t* w, const std::uint64_t* other,
                             value_kind kind) noexcept {
    update<false>(w, other[0], kind);
  }
};

using min_acc = extremum_acc<false>;
using max_acc = extremum_acc<true>;

}  // namespace trove::kernels::detail
