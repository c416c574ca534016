#pragma once
/// @file state.hpp
/// @brief What one checkpoint holds: a consistent cut between two batches — every piece of state
/// needed to continue as if the run had never stopped, plus the source and sink positions at the
/// cut. Written by checkpoint_store, produced and consumed by the pipeline.

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "kernels/agg_snapshot.hpp"

namespace trove::host {

/// @brief A dedup entry tagged with the source partition of the record that created it (state is
/// owned per partition, so it can move with the partition).
/// 32 bytes without padding: segments store the array as it is in memory.
struct dedup_record {
  std::int64_t first_seen = 0;
  std::uint64_t key_hi = 0;
  std::uint64_t key_lo = 0;
  std::int32_t partition = 0;
  std::uint32_t reserved = 0;  ///< zero
};
static_assert(sizeof(dedup_record) == 32 && std::is_trivially_copyable_v<dedup_record>);

/// @brief One append-only file of the dedup entries accepted during one checkpoint interval.
/// Dropped from the checkpoint once every entry in it expired (max_first_seen + ttl <= watermark).
struct segment_ref {
  std::uint64_t id = 0;  ///< the id of the checkpoint that wrote it
  std::uint64_t entries = 0;
  std::int64_t max_first_seen = INT64_MIN;
  std::uint64_t checksum = 0;  ///< of the file's payload, checked when loaded
};

/// @brief One file of open aggregation groups (`groups-<id>.seg`, written by checkpoint `id`):
/// every group open at that cut, or only those created or updated since the checkpoint before.
struct group_segment_ref {
  std::uint64_t id = 0;
  std::uint64_t rows = 0;
  std::uint64_t checksum = 0;  ///< of the file's payload, checked when loaded
};

/// @brief The next offset of one Kafka topic-partition at the cut.
struct kafka_position {
  std::string topic;
  std::int32_t partition = 0;
  std::int64_t next_offset = 0;
  /// The owner epoch this instance holds the partition's state at (partition_ownership); 0 when
  /// the checkpoint directory is not shared (file sources).
  std::uint64_t epoch = 0;
};

/// @brief Where the source is at the cut: the first record not yet in any processed batch.
struct source_position_state {
  std::uint64_t file_offset = 0;  ///< file: bytes (decompressed) before the next record
  std::uint64_t file_line = 0;    ///< file: lines before the next record
  std::uint64_t generated = 0;    ///< synthetic: events generated
  std::vector<kafka_position> kafka;
};

/// @brief A partition's largest event time seen (watermark state) and the frontier up to which
/// its windows were emitted (the checkpoint's emitted_watermark, or further for a partition that
/// moved here from an instance that was ahead).
struct partition_event_time {
  std::int32_t partition = 0;
  std::int64_t max_event_time = INT64_MIN;
  std::int64_t emitted_frontier = INT64_MIN;
};

/// @brief The cumulative counters of the run at the cut.
struct run_counters {
  std::uint64_t accepted = 0;
  std::uint64_t duplicate = 0;
  std::uint64_t late = 0;
  std::uint64_t filtered = 0;
  std::uint64_t bad = 0;
  std::uint64_t rows_out = 0;
  std::uint64_t windows_emitted = 0;
  std::uint64_t batches = 0;
  [[nodiscard]] std::uint64_t in() const noexcept {
    return accepted + duplicate + late + filtered + bad;
  }
};

/// @brief What a checkpoint keeps of one output of several (`outputs`). The first output's open
/// groups are the checkpoint's own (agg, group_segments: a chain of updates); the others' are
/// written whole, here, at every checkpoint.
struct output_state {
  std::int64_t emitted_watermark = INT64_MIN;  ///< its windows ending at or before it were emitted
  std::uint64_t sink_length = 0;               ///< its file sink: bytes at the cut
  std::uint64_t accepted = 0;                  ///< its cumulative counters (output_stats)
  std::uint64_t emitted_into = 0;
  std::uint64_t filtered = 0;
  std::uint64_t late = 0;
  std::uint64_t rows_out = 0;
  std::uint64_t windows_emitted = 0;
  kernels::agg_snapshot groups;  ///< every open group (the first output: none, see above)
};

/// @brief One checkpoint.
struct checkpoint_state {
  std::uint64_t id = 0;         ///< 1, 2, 3, ... (newest is largest)
  std::int64_t created_ms = 0;  ///< wall-clock time of the cut (Unix ms)
  /// The configuration keys whose change would make the state meaningless, with their values
  /// (e.g. {"group_by", "[user_id, type]"}); a restart with other values is refused.
  std::vector<std::pair<std::string, std::string>> compat;
  run_counters counters;
  std::int64_t watermark = INT64_MIN;  ///< the highest watermark reached
  std::int64_t max_event_time = INT64_MIN;
  std::vector<partition_event_time> partitions;
  std::int64_t emitted_watermark = INT64_MIN;  ///< windows ending at or before it were emitted
  source_position_state source;
  std::uint64_t sink_length = 0;         ///< file sink: bytes at the cut (the first output's)
  std::uint64_t dead_letter_length = 0;  ///< dead-letter file: bytes at the cut
  /// When loaded: every open group at the cut (group_segments merged). When written: the groups
  /// this checkpoint writes as segment `id` — every open group, or with agg_updates_only those
  /// created or updated since the previous checkpoint of the chain.
  kernels::agg_snapshot agg;
  bool agg_updates_only = false;  ///< when written: `agg` continues group_segments
  /// The open groups as a chain, oldest first (this one's last when it wrote one): a segment of
  /// every open group, then segments of the groups updated after it. Merging them (newest wins,
  /// windows emitted since left out) gives the open groups at the cut (merge_snapshots).
  std::vector<group_segment_ref> group_segments;
  std::int64_t window_size_ms = 0;       ///< for the merge: which groups were emitted since
  std::uint64_t open_groups = 0;         ///< open groups at the cut
  std::vector<segment_ref> segments;     ///< live dedup segments, oldest first (this one's last)
  /// `outputs`: one per output, in order (format 5 on); empty for the single-output form.
  std::vector<output_state> outputs;
  /// When loaded: every entry of every segment, oldest first.
  std::vector<dedup_record> dedup_entries;
  /// When written: the entries accepted since the previous cut, written as segment `id` (not part
  /// of the manifest). Chunks of record_log (record_log.hpp) or any other storage.
  std::vector<std::span<const dedup_record>> new_entries;
  std::shared_ptr<void> new_entries_owner;  ///< keeps new_entries alive until written
  /// Not stored in the manifest: the rows since the previous checkpoint are in a Kafka
  /// transaction that commits only after this checkpoint is durable. The store marks it pending
  /// until mark_committed(); a pending checkpoint is never restored (its transaction may have
  /// been aborted), the one before it is.
  bool transaction_pending = false;
  std::uint64_t manifest_bytes = 0;  ///< size of the manifest file (filled by the store)
  std::uint64_t segment_bytes = 0;   ///< size of the segment files it references (store)
};

}  // namespace trove::host
