#pragma once
/// @file agg_table.hpp
/// @brief Windowed grouped aggregation, device-resident across batches.
///
/// Keyed by (group key fingerprint, window start). Every accepted row updates each window that
/// contains its event time and has not been emitted yet: count, and per numeric field the
/// accumulators the pipeline asked for (aggregates/: sum, min, max; the count of non-null values
/// for a nullable field; avg = sum / non-null count is derived on output). Integer
/// sums are exact modulo 2^64; float sums are exact up to the order of additions (atomics), within
/// 1e-12 relative for realistic data. The group key values are copied into a device key arena when
/// a group is created, so string keys come back as the original strings. Every group also keeps
/// the source partition of the row that created it, so that a checkpoint can select the open
/// groups of one partition (select_partitions).
///
/// Memory policy as for the dedup set: rebuilt (tombstones dropped, arena compacted, capacity
/// doubled when needed) before a batch could push the load past max_load; a capacity beyond
/// max_bytes throws trove::capacity_error before any row of the batch is applied. The rebuild
/// pauses one batch, but its new table is allocated and zeroed ahead, over the batches before it
/// (zeroing fresh pages was about half of a rebuild on the CPU).

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "kernels/agg_snapshot.hpp"
#include "kernels/aggregates/accumulator.hpp"
#include "kernels/backend.hpp"
#include "kernels/column_view.hpp"
#include "kernels/table_stats.hpp"
#include "kernels/window.hpp"

namespace trove::kernels {

/// @brief Up to this many numeric fields are aggregated by one table.
inline constexpr std::size_t max_agg_fields = 16;

/// @brief Configuration of an aggregation table.
struct agg_options {
  std::vector<bool> key_is_string;  ///< one entry per group key column (at most max_key_columns)
  std::vector<value_kind> fields;   ///< numeric fields aggregated (at most max_agg_fields)
  /// Per field: may hold nulls (default: all nullable). A field that cannot be null needs no
  /// non-null counter (it equals count), which saves an atomic per row.
  std::vector<bool> field_nullable;
  /// Per field: the accumulators to keep, a mask of acc_bit(sum | min | max | hll | ddsketch)
  /// (default, and for fields past the end: acc_value_bits, all three). Only these exist in a slot,
  /// so a pipeline that asks for sum(amount) keeps one word per group for it, and updates one. A
  /// nullable field also keeps its count of non-null values.
  std::vector<std::uint8_t> field_accumulators;
  /// HyperLogLog precision of the hll accumulators (4..18): 2^p registers, one byte each, for a
  /// group past 6 distinct values; relative standard error 1.04 / sqrt(2^p).
  std::uint32_t hll_precision = 14;
  /// Relative accuracy of the ddsketch accumulators (0.001..0.1): every quantile within this
  /// factor of the exact value at its rank.
  double quantile_accuracy = 0.01;
  window_spec window;
  std::size_t initial_capacity = std::size_t{1} << 16;  ///< slots (rounded up to a power of 2)
  std::size_t max_bytes = std::size_t{8} << 30;         ///< cap on slots + key arena bytes
  double max_load = 0.7;  ///< rebuild before the load (tombstones included) passes this
  /// Tables of at least this many slots allocate and zero their next table ahead of the rebuild,
  /// a slice per batch from prefill_start_load on, so that the rebuild itself only rehashes
  /// (0: always; SIZE_MAX: never).
  std::size_t prefill_min_slots = std::size_t{1} << 18;
  double prefill_start_load = 0.35;
  /// The least the prefill advances per row of a batch (slots zeroed); more when the room left
  /// before the rebuild needs it to finish in time.
  std::size_t prefill_slots_per_row = 16;
  bool track_updates = false;  ///< keep the "updated since last extract_updated" list
  /// Keep the "updated since the last snapshot_updated / forget_updated" list (checkpoints),
  /// a list of its own beside extract_updated's.
  bool track_checkpoint = false;
};

/// @brief One batch as the aggregation sees it (device pointers).
struct agg_input {
  std::size_t num_rows = 0;
  key_columns keys;  ///< group key columns
  const std::int64_t* d_event_time = nullptr;
  const std::uint8_t* d_status = nullptr;  ///< only status_accepted rows are aggregated
  column_view fields[max_agg_fields];      ///< one per agg_options::fields
  std::size_t key_string_bytes = 0;        ///< total bytes of the batch's string key columns
  /// Source partition of each row: row r's is d_partition[r * partition_stride]. The stride (in
  /// int32 elements) lets the table read the partition member of an array of positions in place
  /// (io::source_position: stride 4). Null: every row is partition 0.
  const std::int32_t* d_partition = nullptr;
  std::size_t partition_stride = 1;
  /// Per row, a frontier ahead of the table's for the row's partition (kernels::row_frontier): its
  /// windows at or before it were emitted by the partition's previous owner. Null: none.
  const std::int64_t* d_row_frontier = nullptr;
};

/// @brief A group key column of a result, decoded to host values.
struct result_key_column {
  bool is_string = false;
  std::vector<std::uint64_t> values;   ///< fixed-width
  std::vector<std::uint32_t> offsets;  ///< string: rows+1
  std::string chars;                   ///< string bytes
  std::vector<std::uint8_t> valid;     ///< 1 = present
};

/// @brief Aggregates of one numeric field; 8-byte words read as the field's value_kind. The
/// accumulators the table does not keep (agg_options::field_accumulators) are empty vectors.
struct result_field {
  value_kind kind = value_kind::f64;
  std::vector<std::uint64_t> non_null;  ///< values that were present (always filled)
  std::vector<std::uint64_t> sum;
  std::vector<std::uint64_t> min;  ///< meaningless when non_null == 0
  std::vector<std::uint64_t> max;
  std::vector<std::uint64_t> approx_distinct;  ///< hll: the estimate, rounded (nulls not counted)
  /// ddsketch: p50, p90, p95, p99, p999 as doubles (bits; NaN when no value was counted).
  std::array<std::vector<std::uint64_t>, dd_quantile_count> quantiles;
};

/// @brief Rows emitted by the table, ordered by (window_start, group fingerprint) so the same
/// input gives the same order on every backend and run.
struct agg_result {
  std::size_t rows = 0;
  std::vector<result_key_column> keys;
  std::vector<std::int64_t> window_start;
  std::vector<std::int64_t> window_end;
  std::vector<std::uint64_t> count;
  std::vector<result_field> fields;
  std::size_t windows = 0;  ///< distinct windows among the rows
};

/// @brief A device-resident table of (group, window) aggregates.
/// Every call passes the stream the table was made for (backend::make_agg_table): its work, memory
/// included, is ordered on that stream; another stream is refused (trove::logic_error).
class agg_table {
 public:
  virtual ~agg_table() = default;

  /// @brief Applies every accepted row of a batch to each of its open windows.
  virtual void aggregate(const agg_input& input, stream_view stream) = 0;

  /// @brief Returns and frees every group of every window whose end <= watermark.
  /// Afterwards rows of those windows are late (see emitted_watermark()).
  virtual agg_result extract_closed(std::int64_t watermark, stream_view stream) = 0;

  /// @brief Returns the groups updated since the previous call (requires track_updates).
  virtual agg_result extract_updated(stream_view stream) = 0;

  /// @brief Copies every open group out (the table is unchanged), in slot order.
  virtual agg_snapshot snapshot(stream_view stream) = 0;

  /// @brief Copies out the open groups created or updated since this call or forget_updated()
  /// last emptied the checkpoint list (requires track_checkpoint; extract_updated keeps a list of
  /// its own), and empties it: the groups that changed between two checkpoints. The cost follows
  /// them, not the table's capacity.
  virtual agg_snapshot snapshot_updated(stream_view stream) = 0;

  /// @brief Empties the checkpoint list of updated groups (a full snapshot() was taken).
  virtual void forget_updated(stream_view stream) = 0;

  /// @brief Entries in the checkpoint list: at least the rows snapshot_updated() returns (groups
  /// emitted since they were updated are counted, not returned).
  [[nodiscard]] virtual std::size_t updated_count() const noexcept = 0;

  /// @brief Loads a snapshot into an empty table and sets the emitted-window frontier, so that the
  /// table behaves exactly as the one the snapshot was taken from.
  virtual void restore(const agg_snapshot& snapshot, std::int64_t emitted_watermark,
                       stream_view stream) = 0;

  /// @brief The largest watermark passed to extract_closed (INT64_MIN before the first call).
  [[nodiscard]] virtual std::int64_t emitted_watermark() const noexcept = 0;

  /// @brief Occupancy of the table.
  [[nodiscard]] virtual table_stats stats() const = 0;

  /// @brief Updates of a group by a row of another source partition than the row that created
  /// the group, since the table was made: how far the input is from being partitioned by group
  /// key. A row counts once per group it updates (a row of hopping windows in each window).
  [[nodiscard]] virtual std::uint64_t cross_partition_rows() const noexcept = 0;
};

}  // namespace trove::kernels
