#pragma once
/// @file sketch_arena.hpp
/// @brief Where sketch accumulators (hll.hpp) keep the part of a group that outgrew its slot:
/// blocks of 8-byte words in one device array, handed out by bumping a counter. A block is taken
/// once per group and never reused; the table compacts the arena when it rebuilds.
///
/// Taking a block can fail: the arena is full (the table's flag d_full says so). The accumulator
/// then leaves the group as it was, and the table, seeing the flag after the pass, doubles the
/// arena and applies what was left out: HyperLogLog the batch's sketch updates again (idempotent:
/// register maxima), DDSketch the values it put on the pending list (counts: once each).
///
/// A sketch's state word (its first) is shared by every sketch kind: sketch_sparse while it lives
/// in its slot, sketch_locked while a thread moves it to a block, sketch_in_record in a snapshot
/// (its block follows the group's key record), otherwise 1 + its block's word offset.

#include <cstdint>

#include "kernels/atomics.hpp"
#include "kernels/macros.hpp"

namespace trove::kernels::detail {

inline constexpr std::uint64_t sketch_sparse = 0;
inline constexpr std::uint64_t sketch_locked = ~std::uint64_t{0};
inline constexpr std::uint64_t sketch_in_record = ~std::uint64_t{0} - 1;

/// @brief Whether a sketch's state word points at a block of the arena.
TROVE_HD constexpr bool sketch_dense(std::uint64_t state) noexcept {
  return state != sketch_sparse && state != sketch_locked && state != sketch_in_record;
}

/// @brief A DDSketch addition deferred because the arena was full: n values of one counter for
/// the sketch whose words start at `w`.
struct sketch_pending {
  std::uint64_t* w;
  std::uint32_t counter;
  std::uint32_t n;
};

/// @brief Non-owning view of the sketch arena and the sketch parameters of a table.
struct sketch_arena_ref {
  std::uint64_t* d_words = nullptr;
  std::uint64_t capacity = 0;       ///< words
  std::uint64_t* d_used = nullptr;  ///< words handed out (never past capacity)
  std::uint64_t* d_full = nullptr;  ///< set when a block could not be handed out
  std::uint32_t hll_precision = 14;
  // DDSketch: ln gamma, the key of bucket 0, buckets per sign (dd_params).
  double dd_log_gamma = 0;
  std::int32_t dd_key_min = 0;
  std::uint32_t dd_buckets = 0;
  sketch_pending* d_pending = nullptr;  ///< room for every addition of a batch
  std::uint64_t* d_pending_count = nullptr;

  /// @brief Puts an addition on the pending list (the arena was full).
  TROVE_HD TROVE_FORCEINLINE void defer(std::uint64_t* w, std::uint32_t counter,
                                        std::uint32_t n) const noexcept {
    d_pending[fetch_add(*d_pending_count, std::uint64_t{1})] = sketch_pending{w, counter, n};
  }

  /// @brief The word offset of a fresh (zeroed) block of `words`, or UINT64_MAX when the arena
  /// is full.
  /// A CAS, not a fetch_add: a full arena must not count the blocks it refused, or every row of
  /// a group waiting for one would ask again and the growth would follow the attempts (bug: 1.3 GB
  /// for 40 groups of W1), not the groups.
  TROVE_HD TROVE_FORCEINLINE std::uint64_t allocate(std::uint64_t words) const noexcept {
    std::uint64_t at = load_relaxed(*d_used);
    while (true) {
      if (at + words > capacity) {
        store_relaxed(*d_full, std::uint64_t{1});
        return UINT64_MAX;
      }
      if (atomic_ref<std::uint64_t>(*d_used).compare_exchange_weak(
              at, at + words, cuda::std::memory_order_relaxed)) {
        return at;
      }
    }
  }
};

}  // namespace trove::kernels::detail
