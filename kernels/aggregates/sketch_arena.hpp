#pragma once
/// @file sketch_arena.hpp
/// @brief Where sketch accumulators (hll.hpp) keep the part of a group that outgrew its slot:
/// blocks of 8-byte words in one device array, handed out by bumping a counter. A block is taken
/// once per group and never reused; the table compacts the arena when it rebuilds.
///
/// Taking a block can fail: the counter passes the capacity. The accumulator then leaves the
/// group as it was, and the table, seeing the counter past the capacity after the pass, grows the
/// arena and applies the batch's sketch updates again (they are idempotent: a register maximum).

#include <cstdint>

#include "kernels/atomics.hpp"
#include "kernels/macros.hpp"

namespace trove::kernels::detail {

/// @brief Non-owning view of the sketch arena and the sketch parameters of a table.
struct sketch_arena_ref {
  std::uint64_t* d_words = nullptr;
  std::uint64_t capacity = 0;       ///< words
  std::uint64_t* d_used = nullptr;  ///< words handed out (past capacity: some could not be)
  std::uint32_t hll_precision = 14;

  /// @brief The word offset of a fresh (zeroed) block of `words`, or UINT64_MAX when the arena
  /// is full.
  TROVE_HD TROVE_FORCEINLINE std::uint64_t allocate(std::uint64_t words) const noexcept {
    const std::uint64_t at = fetch_add(*d_used, words);
    return at + words <= capacity ? at : UINT64_MAX;
  }
};

}  // namespace trove::kernels::detail
