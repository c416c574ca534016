#pragma once
/// @file agg_slot.hpp
/// @brief The fixed part of an aggregation-table slot: what host code that reads snapshots
/// (agg_snapshot.cpp, checkpoints) and the device code share. Plain types, no device headers.

#include <cstdint>

namespace trove::kernels::detail {

inline constexpr std::uint32_t agg_empty = 0;  // zeroed memory is an empty table
inline constexpr std::uint32_t agg_busy = 1;
inline constexpr std::uint32_t agg_full = 2;
inline constexpr std::uint32_t agg_freed = 3;  // emitted; a tombstone until the next rebuild

/// @brief agg_header::dirty bits: the group is on the list of groups updated since the last
/// changelog (extract_updated) or since the last checkpoint (snapshot_updated).
inline constexpr std::uint32_t agg_on_changelog = 1;
inline constexpr std::uint32_t agg_on_checkpoint_list = 2;

/// @brief The fixed part of a slot.
struct agg_header {
  std::uint64_t k0;
  std::uint64_t k1;
  std::int64_t window_start;
  std::uint32_t key_ref;   // word offset of the key record in the arena (< max_arena_words)
  std::int32_t partition;  // source partition of the row that created the group
  std::uint64_t count;
  std::uint32_t state;
  std::uint32_t dirty;  // agg_on_changelog | agg_on_checkpoint_list: the lists it is on
};
static_assert(sizeof(agg_header) == 48);

}  // namespace trove::kernels::detail
