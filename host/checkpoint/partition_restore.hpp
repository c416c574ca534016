#pragma once
/// @file partition_restore.hpp
/// @brief The state of newly assigned Kafka partitions, from a shared checkpoint.dir: for each
/// partition, the newest checkpoint that holds it at its latest owner epoch — the previous
/// owner's final checkpoint (written when the partition was revoked), or, if that owner died, its
/// last periodic one; a claim whose owner never checkpointed the partition falls back to the
/// claim before it. The partition's dedup entries, open groups, largest event time and next
/// offset are taken from it; the claim of a new epoch for this instance comes first (fencing).

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "host/checkpoint/ownership.hpp"
#include "host/checkpoint/state.hpp"
#include "kernels/agg_snapshot.hpp"

namespace trove::host {

/// @brief A partition to load: its topic, Kafka partition and source partition id (the tag its
/// rows and state carry).
struct partition_to_load {
  std::string topic;
  std::int32_t partition = 0;
  std::int32_t source_id = 0;
};

/// @brief Where one partition's state came from.
struct loaded_partition {
  partition_to_load which;
  std::uint64_t epoch = 0;       ///< the epoch this instance claimed
  bool found = false;            ///< false: no checkpoint holds it (starts as `source.start` says)
  std::int64_t next_offset = 0;  ///< when found
  std::string member;            ///< when found: whose checkpoint
  std::uint64_t checkpoint_id = 0;
  std::uint64_t from_epoch = 0;
};

/// @brief The state of a set of partitions, merged from the checkpoints that hold them.
struct partitions_state {
  std::vector<loaded_partition> partitions;
  std::vector<dedup_record> entries;
  kernels::agg_snapshot groups;
  /// Per source id: the largest event time and the emitted-window frontier.
  std::vector<partition_event_time> marks;
  /// The lowest watermark and emitted-window frontier of the sources (INT64_MIN without any): the
  /// windows still open for any loaded partition stay open; a partition whose frontier is ahead
  /// keeps it (marks), so its rows for windows it had emitted stay late.
  std::int64_t watermark = INT64_MIN;
  std::int64_t emitted_watermark = INT64_MIN;
};

/// @brief Claims the partitions for this instance and loads their newest state.
/// @param check_compat throws when a source checkpoint was written under another configuration
partitions_state load_partitions(partition_ownership& ownership,
                                 const std::vector<partition_to_load>& assigned,
                                 const std::function<void(const checkpoint_state&)>& check_compat);

}  // namespace trove::host
