#pragma once
/// @file device_stage.hpp
/// @brief The device step of the pipeline: one decoded batch in, emitted rows out. Maps the
/// pipeline's configuration onto the kernels (which columns are keys, fields, filters), moves the
/// batch to the device (zero-copy on the CPU backend, async H2D copies on CUDA), runs
/// classify → dedup → aggregate, and extracts changed and closed windows as result rows.

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "host/config.hpp"
#include "io/batch.hpp"
#include "io/result_batch.hpp"
#include "kernels/agg_table.hpp"
#include "kernels/backend.hpp"
#include "kernels/classify.hpp"
#include "kernels/dedup_set.hpp"
#include "kernels/row_status.hpp"
#include "kernels/table_stats.hpp"

namespace trove::host {

/// @brief One output's part of a step.
struct output_step {
  io::result_batch rows;                      ///< rows to hand to the output's sink, in order
  std::uint64_t emitted_into = 0;             ///< rows aggregated (or forwarded) by the output
  std::uint64_t filtered = 0;                 ///< rows the output's own filter rejected
  std::uint64_t late = 0;                     ///< rows late for the output's windows
  std::uint64_t windows_emitted = 0;          ///< windows closed by this step
  std::vector<std::uint32_t> late_rows;       ///< filled when late: dead_letter
  std::vector<std::uint32_t> forwarded_rows;  ///< forwarding outputs: the accepted rows, in order
};

/// @brief What one step produced.
struct step_output {
  /// The shared pass: every row once (with `outputs`, late is per output and 0 here).
  std::uint64_t status_counts[kernels::status_count] = {};
  std::vector<std::uint32_t> bad_rows;  ///< event time out of range (dead-lettered)
  std::vector<output_step> outputs;     ///< one per output (outputs_of(config)), in order
};

/// @brief Per-stage timings of the last step, in seconds (for metrics and the load harness).
struct step_timings {
  double h2d = 0;
  double kernels = 0;
  double extract = 0;
};

/// @brief Runs batches through the kernels of one backend, keeping device state across them.
class device_stage {
 public:
  /// @param stage_on_cpu copy batches into device buffers even on the CPU backend (where the host
  ///        batch is used in place): runs the CUDA upload path, prefetch included, in tests
  device_stage(const pipeline_config& config, kernels::backend& backend, bool stage_on_cpu = false);
  ~device_stage();
  device_stage(const device_stage&) = delete;
  device_stage& operator=(const device_stage&) = delete;

  /// @brief Processes a batch: rows are deduplicated with the watermark `before` (in force when
  /// the batch arrived), then windows closed by `after` are extracted.
  /// @param row_frontier empty, or per row the emitted-window frontier of its source partition
  ///        where that is ahead of the table's (a partition moved from an instance that was
  ///        ahead): its windows at or before it are late
  step_output process(const io::host_batch& batch, std::int64_t before, std::int64_t after,
                      std::span<const std::int64_t> row_frontier = {});

  /// @brief Starts copying the next batch to the device on a second stream, so that its H2D copy
  /// overlaps the kernels of the batch processed now (a no-op where batches are used in place,
  /// i.e. on the CPU backend). The batch must stay unchanged until process() has run on it.
  void prefetch(const io::host_batch& batch);

  /// @brief Whether prefetch() does anything (batches are copied to the device).
  [[nodiscard]] bool uploads() const noexcept { return !zero_copy_; }

  /// @brief Keep the dedup entries each batch adds (for checkpoints): see new_entries().
  void collect_new_entries(bool on) noexcept { collect_ = on; }

  /// @brief The dedup entries the last process() added (rows left accepted), in row order; valid
  /// until the next process(). Empty unless collect_new_entries(true).
  [[nodiscard]] std::span<const kernels::dedup_entry> new_entries() const noexcept {
    return {entries_.get(), entries_count_};
  }

  /// @brief For a checkpoint: every open group, or with `updated_only` those created or updated
  /// since the previous call (only while updated_groups_known()). The table is unchanged.
  [[nodiscard]] kernels::agg_snapshot snapshot_groups(bool updated_only = false);

  /// @brief Whether snapshot_groups(true) gives what changed since the previous call: checkpoints,
  /// and no reset_state() since the last full snapshot_groups() (or since
  /// construction). restore() keeps it: its groups are those of the chain they came from, which
  /// the caller continues only when that chain is its own (checkpoint_coordinator).
  [[nodiscard]] bool updated_groups_known() const noexcept {
    return track_group_updates_ && updates_since_full_;
  }

  /// @brief Groups listed as updated since the previous snapshot_groups() (an upper bound on
  /// what snapshot_groups(true) returns); 0 when not tracked.
  [[nodiscard]] std::size_t updated_groups() const noexcept;

  /// @brief The watermark up to which windows were emitted (of the first output).
  [[nodiscard]] std::int64_t emitted_watermark() const noexcept {
    return parts_.front().agg->emitted_watermark();
  }

  /// @brief The watermark up to which an output's windows were emitted.
  [[nodiscard]] std::int64_t emitted_watermark(std::size_t output) const {
    return parts_.at(output).agg->emitted_watermark();
  }

  /// @brief For a checkpoint of several outputs: every open group of an output past the first
  /// (the first one's go through snapshot_groups()).
  [[nodiscard]] kernels::agg_snapshot snapshot_output(std::size_t output);

  /// @brief Loads an output's (past the first) open groups and emitted-window frontier.
  void restore_output(std::size_t output, const kernels::agg_snapshot& groups,
                      std::int64_t emitted_watermark);

  /// @brief The outputs, in order (outputs_of(config)).
  [[nodiscard]] const std::vector<output_config>& outputs() const noexcept { return outputs_; }

  /// @brief Loads a checkpoint's state into the (empty) tables: dedup entries live at
  /// `watermark`, the open groups and the emitted-window frontier.
  void restore(const std::vector<kernels::dedup_entry>& entries, std::int64_t watermark,
               const kernels::agg_snapshot& groups, std::int64_t emitted_watermark);

  /// @brief Drops all state: empty tables, as at construction (partitions moved to another
  /// instance; what stays is restored next).
  void reset_state();

  /// @brief Emits every window closed by the watermark (INT64_MAX at end of input).
  step_output close_windows(std::int64_t watermark);

  /// @brief Columns of an output's result rows, in order.
  [[nodiscard]] io::result_batch empty_result(std::size_t output = 0) const;

  [[nodiscard]] kernels::table_stats dedup_stats() const;
  /// @brief Open groups of one output's aggregation table.
  [[nodiscard]] std::size_t open_groups(std::size_t output) const {
    return parts_.at(output).agg->stats().entries;
  }
  /// @brief The aggregation tables' stats, summed over the outputs.
  [[nodiscard]] kernels::table_stats agg_stats() const;
  /// @brief Updates of aggregation groups by rows of another source partition than the group's
  /// creator, since the stage was made (kernels::agg_table::cross_partition_rows).
  [[nodiscard]] std::uint64_t cross_partition_rows() const;
  [[nodiscard]] const step_timings& timings() const noexcept { return timings_; }
  [[nodiscard]] kernels::backend& backend() noexcept { return backend_; }

 private:
  /// Device copies of one batch's used columns. Two slots: the batch being processed and the one
  /// being prefetched; buffers grow and are reused, so steady state allocates nothing.
  struct staged_batch {
    const io::host_batch* batch = nullptr;        // the batch held; null = free
    bool on_copy_stream = false;                  // copies enqueued on copy_stream_
    std::vector<kernels::column_view> views;      // by schema column (used columns only)
    std::vector<kernels::device_buffer> buffers;  // 3 per column: values/offsets, chars, validity;
                                                  // then the rows' partitions
    std::vector<std::int32_t> partitions;         // the rows' partitions, packed for the upload
    const std::int32_t* d_partition = nullptr;    // their device copy
  };
  void stage(const io::host_batch& batch, staged_batch& slot, bool on_copy_stream);
  kernels::column_view column(const io::host_batch& batch, int index);

  struct aggregate_output {
    std::string name;
    aggregate_fn fn;
    int field_slot;  // index into agg_options::fields; -1 for count
    io::field_type type;
  };
  /// What one output keeps: its aggregation table (forwarding outputs: an idle one), the columns
  /// it reads and, with `outputs`, its own filter and statuses.
  struct output_part {
    const output_config* config = nullptr;  // into outputs_
    std::vector<int> group_columns;
    std::vector<int> field_columns;  // schema columns of the aggregated numeric fields
    std::vector<aggregate_output> aggregates;
    std::unique_ptr<kernels::agg_table> agg;
    kernels::agg_options agg_options;  // reset_state() makes the table again from these
    std::int64_t lateness_offset = 0;  // its watermark = the shared one + this (`outputs`)
    kernels::device_buffer filter_strings;
    kernels::device_buffer status;    // `outputs`: its rows' statuses
    kernels::device_buffer selected;  // forwarding: indices of the accepted rows
  };
  void make_part(output_part& part, bool first);
  /// The output's watermark for the shared watermark `watermark`.
  static std::int64_t watermark_of(const output_part& part, std::int64_t watermark) noexcept;
  /// Fills `in`'s predicates from `filter`, string constants from `strings`.
  void set_predicates(const io::host_batch& batch, const std::vector<filter_predicate>& filter,
                      const kernels::device_buffer& strings, kernels::classify_input& in);
  void convert(const output_part& part, const kernels::agg_result& result,
               io::result_batch& out) const;
  /// Forwarding: the accepted rows' records (as received) into out.rows.
  void forward(const io::host_batch& batch, output_step& out) const;
  void emit(const output_part& part, kernels::agg_result&& result, output_step& out, bool rows);
  /// Every output's extraction for the shared watermark.
  void extract(std::int64_t watermark, bool updates, step_output& out);

  const pipeline_config& config_;
  kernels::backend& backend_;
  kernels::stream_view stream_;
  bool zero_copy_;
  kernels::stream_view copy_stream_;  // prefetch copies (CUDA: overlap the kernels on stream_)
  staged_batch slots_[2];
  staged_batch* current_ = nullptr;  // the slot of the batch in process()
  std::vector<int> used_columns_;    // schema columns the kernels read
  std::unique_ptr<kernels::dedup_set> dedup_;
  kernels::dedup_options dedup_options_;
  std::vector<output_config> outputs_;
  std::vector<output_part> parts_;            // one per output
  bool several_ = false;                      // `outputs`: each output refines the shared statuses
  std::uint64_t cross_partition_before_ = 0;  // counted by tables reset_state() dropped
  bool track_group_updates_ = false;          // checkpoints (snapshot_groups)
  // The table's list of updated groups covers every change since the last snapshot_groups():
  // true from construction (an empty table), false after reset_state() until a full one.
  bool updates_since_full_ = true;
  int event_time_column_ = -1;
  std::vector<int> dedup_columns_;
  kernels::device_buffer status_;
  kernels::device_buffer keys_;
  kernels::device_buffer row_frontier_;  // upload path: the batch's row frontiers
  kernels::device_buffer filter_strings_;  // the top-level filter's string constants
  step_timings timings_;
  bool collect_ = false;
  // Not a vector: a batch's entries are written by the copy out, never initialised first.
  std::unique_ptr<kernels::dedup_entry[]> entries_;
  std::size_t entries_capacity_ = 0;
  std::size_t entries_count_ = 0;
};

}  // namespace trove::host
