#pragma once
/// @file non_null.hpp
/// @brief Accumulator: how many values of a field were present. Kept only for nullable fields
/// (a required field's equals the group's count); avg divides by it, and a group whose values
/// were all null outputs null for sum/min/max/avg.

#include <cstdint>

#include "kernels/aggregates/accumulator.hpp"
#include "kernels/atomics.hpp"
#include "kernels/column_view.hpp"

namespace trove::kernels::detail {

struct non_null_acc {
  static constexpr acc_kind kind = acc_kind::non_null;
  static constexpr std::uint32_t words = 1;

  TROVE_HD static void init(std::uint64_t* w, value_kind) noexcept { w[0] = 0; }

  template <bool Atomic>
  TROVE_HD TROVE_FORCEINLINE static void update(std::uint64_t* w, std::uint64_t,
                                                value_kind) noexcept {
    if constexpr (Atomic) {
      fetch_add(w[0], std::uint64_t{1});
    } else {
      ++w[0];
    }
  }

  /// @brief w = the accumulator of the union of both groups' values (not atomic).
  TROVE_HD static void merge(std::uint64_t* w, const std::uint64_t* other, value_kind) noexcept {
    w[0] += other[0];
  }
};

}  // namespace trove::kernels::detail
