#pragma once
/// @file run_observer.hpp
/// @brief The pipeline's instrumentation seam: a run reports its life cycle and every batch to the
/// observers named in `run_options`. The metrics endpoint (`/metrics`, `/readyz`) and the load
/// harness (`trove bench`) are observers; the pipeline knows nothing about either.
///
/// Callbacks come from the pipeline's own threads (noted on each) and must be cheap and
/// non-throwing: they run on the hot path, once per batch, never once per record.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "kernels/table_stats.hpp"

namespace trove::io {
struct result_batch;
}

namespace trove::host {

struct run_stats;

/// @brief Clock of every time point the pipeline reports.
using observer_clock = std::chrono::steady_clock;

/// @brief The offsets first..last (inclusive) of one source partition in a batch.
struct offset_span {
  std::int32_t partition = 0;  ///< dense source-partition id (topic index << 20 | partition)
  std::int64_t first = 0;
  std::int64_t last = 0;
};

/// @brief What the pipeline knows about one batch once its results were handed to the sink.
struct batch_report {
  std::uint64_t seq = 0;             ///< 0, 1, 2, ... in processing order
  std::size_t rows = 0;              ///< records in the batch (every status)
  std::int32_t partition_first = 0;  ///< source position of the first row
  std::int64_t offset_first = 0;     ///< (synthetic source: offset = event index)
  std::int64_t offset_last = 0;      ///< source position of the last row (its partition may differ)
  observer_clock::time_point opened;        ///< first record decoded into the batch
  observer_clock::time_point closed;        ///< batch handed to the device stage
  observer_clock::time_point device_begin;  ///< device stage started on it
  observer_clock::time_point device_end;    ///< rows extracted (D2H done)
  observer_clock::time_point sink_done;     ///< its result rows written to the sink
  /// Synthetic source with a `rate`: when event 0 was due, so event k was due at
  /// schedule_start + k/rate (open-loop latency); the clock's epoch for other sources.
  observer_clock::time_point schedule_start;
  double decode_seconds = 0;          ///< source thread: read + decode time spent filling the batch
  double h2d_seconds = 0;             ///< device stage: host → device copies
  double kernel_seconds = 0;          ///< device stage: classify, dedup, aggregate
  double extract_seconds = 0;         ///< device stage: extraction of result rows (D2H)
  double encode_seconds = 0;          ///< sink thread: encoding the rows
  double sink_seconds = 0;            ///< sink thread: writing (and flushing) them
  std::uint64_t rows_out = 0;         ///< result rows this batch produced
  std::size_t ready_queue_depth = 0;  ///< batches waiting for the device when it was picked up
  std::size_t out_queue_depth = 0;    ///< result sets waiting for the sink when it was written
  /// Kafka source (filled only when there are observers): each partition's offsets in the batch,
  /// records dead-lettered before the batch included.
  std::vector<offset_span> offsets;
  /// The batch's result rows, valid only during on_batch() (e.g. window_end of each final row).
  const io::result_batch* result_rows = nullptr;
};

/// @brief Size of the device state after a batch (device thread).
struct state_report {
  kernels::table_stats dedup;               ///< the dedup set (all zero without a `dedup` section)
  kernels::table_stats agg;                 ///< the aggregation table
  std::int64_t watermark = INT64_MIN;       ///< event-time watermark (ms; INT64_MIN before any)
  std::int64_t max_event_time = INT64_MIN;  ///< largest event time seen (ms)
  std::size_t ready_queue_depth = 0;        ///< decoded batches waiting for the device
  std::size_t out_queue_depth = 0;          ///< result sets waiting for the sink
  std::size_t free_buffers = 0;             ///< batch buffers not in flight
  /// Rows that updated a group created from another source partition (input not partitioned by
  /// the group key: results across instances are then not exact).
  std::uint64_t cross_partition_rows = 0;
  /// Checkpoints (all zero without a `checkpoint` section).
  struct checkpoints {
    bool enabled = false;
    std::uint64_t written = 0;
    std::uint64_t delayed = 0;     ///< cuts that waited for the previous write
    std::uint64_t last_id = 0;     ///< the newest durable checkpoint
    std::uint64_t last_bytes = 0;  ///< its size (manifest + referenced segments)
    double last_write_seconds = 0;
    double last_cut_seconds = 0;               ///< its data-path pause
    std::uint64_t last_groups = 0;             ///< aggregation groups it wrote
    std::uint64_t updates_only = 0;            ///< checkpoints that wrote only updated groups
    bool in_flight = false;                    ///< a cut is being written
    bool transactional = false;                ///< sink.delivery: exactly_once
    std::uint64_t transactions_committed = 0;  ///< Kafka transactions committed by this process
    std::uint64_t transactions_aborted = 0;    ///< aborted (each redone from a checkpoint)
  } checkpoint;
};

/// @brief Receives a run's life cycle and per-batch reports. Default implementations do nothing.
class run_observer {
 public:
  virtual ~run_observer() = default;

  /// @brief The device is initialised and the state tables exist (main thread, before the source
  /// opens). `device` is the backend's description.
  virtual void on_device_ready(const std::string& device) noexcept { (void)device; }

  /// @brief The source is open (file opened, Kafka consumer connected) (source thread).
  virtual void on_source_ready() noexcept {}

  /// @brief Counters after each batch and at the end (device thread). `stats` are cumulative.
  virtual void on_progress(const run_stats& stats, const state_report& state) noexcept {
    (void)stats;
    (void)state;
  }

  /// @brief Consumer lag of one source partition: messages between the next one to read and the
  /// partition's high watermark (source thread; Kafka sources only, about once a second).
  virtual void on_partition_lag(const std::string& topic, std::int32_t partition,
                                std::int64_t lag) noexcept {
    (void)topic;
    (void)partition;
    (void)lag;
  }

  /// @brief Every partition was revoked from this member (a rebalance): lags reported before are
  /// no longer this member's (source thread).
  virtual void on_partitions_revoked() noexcept {}

  /// @brief One batch's results reached the sink (sink thread). Batches of one run arrive in
  /// `seq` order.
  virtual void on_batch(const batch_report& report) noexcept { (void)report; }

  /// @brief The run ended, normally or not (main thread).
  virtual void on_finished(const run_stats& stats) noexcept { (void)stats; }
};

}  // namespace trove::host
