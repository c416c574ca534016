#pragma once
/// @file metrics.hpp
/// @brief The run's Prometheus metrics and its readiness: a run_observer that keeps counters,
/// gauges and latency histograms from the pipeline's callbacks, and renders them in the
/// Prometheus text exposition format (version 0.0.4) for `/metrics`.
///
/// Readiness (`/readyz`) holds when the device is initialised, the source is open and the run is
/// not stalled. Stalled means: input is waiting — batches queued for the device or the sink, a
/// batch processed but not yet written, or a Kafka partition with consumer lag — and no batch has
/// made progress (device or sink) for `metrics.stall_timeout`. A quiet source with nothing
/// waiting is idle, not stalled: a sidecar whose producer pauses stays ready.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "host/histogram.hpp"
#include "host/pipeline.hpp"
#include "host/run_observer.hpp"

namespace trove::host {

/// @brief Whether the run can take traffic, and if not, why (the `/readyz` body).
struct readiness {
  bool ready = false;
  std::string reason;  ///< "ready", or what is missing, e.g. "source not connected yet"
};

/// @brief Metrics of one run, fed by the pipeline as an observer and read by the HTTP endpoint.
/// Callbacks and readers may run on different threads at the same time.
class metrics_registry final : public run_observer {
 public:
  /// @param stall_timeout no progress for this long while input waits makes the run not ready
  explicit metrics_registry(std::chrono::milliseconds stall_timeout = std::chrono::seconds(60));

  void on_device_ready(const std::string& device) noexcept override;
  void on_source_ready() noexcept override;
  void on_progress(const run_stats& stats, const state_report& state) noexcept override;
  void on_partition_lag(const std::string& topic, std::int32_t partition,
                        std::int64_t lag) noexcept override;
  void on_partitions_revoked() noexcept override;
  void on_batch(const batch_report& report) noexcept override;
  void on_finished(const run_stats& stats) noexcept override;

  /// @brief A stop signal arrived: the run drains and is no longer ready (so an orchestrator
  /// stops routing to it while it finishes).
  void on_stop_requested() noexcept;

  /// @brief The run ended with an error (the pipeline does not report that to observers).
  void on_failed(const std::string& why) noexcept;

  /// @brief Readiness at `now` (see the file comment for the rule).
  [[nodiscard]] readiness ready(observer_clock::time_point now = observer_clock::now()) const;

  /// @brief Every metric in the Prometheus text format. `wall_ms`: the wall clock in epoch ms, for
  /// the watermark's lag behind real time (a parameter so that tests can fix it).
  [[nodiscard]] std::string render(observer_clock::time_point now, std::int64_t wall_ms) const;
  /// @brief render() at the current time.
  [[nodiscard]] std::string render() const;

  /// @brief Upper bounds (seconds) of the latency histograms' `le` buckets, +Inf excluded.
  [[nodiscard]] static const std::vector<double>& latency_bounds();

 private:
  /// Input is waiting somewhere (queues, unwritten batches, Kafka lag).
  [[nodiscard]] bool input_waiting() const;
  void touch() noexcept;

  std::chrono::milliseconds stall_timeout_;
  observer_clock::time_point started_;

  // Life cycle.
  std::atomic<bool> device_ready_{false};
  std::atomic<bool> source_ready_{false};
  std::atomic<bool> finished_{false};
  std::atomic<bool> failed_{false};
  std::atomic<bool> stopping_{false};
  /// observer_clock ticks of the last sign of progress (source open, batch processed, written)
  std::atomic<std::int64_t> last_progress_{0};

  // Record accounting (cumulative, from on_progress).
  /// The accounting counters of one report, copied together under counts_mutex_: a scrape must
  /// never mix two batches' counters, or `in = accepted + ... + bad` would not hold in it.
  struct record_counts {
    std::uint64_t in = 0, accepted = 0, duplicate = 0, late = 0, filtered = 0, bad = 0;
    std::uint64_t rows_out = 0, windows_emitted = 0;
    std::uint64_t routes_rewritten = 0;
    std::vector<output_stats> outputs;  ///< `outputs`: per output
  };
  mutable std::mutex counts_mutex_;
  record_counts counts_;
  /// Copies a report's counters into counts_ (counts_mutex_ held).
  void set_counts(const run_stats& stats) noexcept;
  std::atomic<std::uint64_t> batches_processed_{0};
  std::atomic<std::uint64_t> batches_written_{0};

  // State after the last batch.
  std::atomic<std::uint64_t> dedup_entries_{0}, dedup_capacity_{0}, dedup_used_{0}, dedup_bytes_{0},
      dedup_rebuilds_{0}, dedup_blocking_rebuilds_{0};
  std::atomic<std::uint64_t> agg_entries_{0}, agg_capacity_{0}, agg_used_{0}, agg_bytes_{0},
      agg_sketch_bytes_{0}, agg_rebuilds_{0}, agg_blocking_rebuilds_{0};
  std::atomic<std::int64_t> watermark_{INT64_MIN};
  std::atomic<std::int64_t> max_event_time_{INT64_MIN};
  std::atomic<std::uint64_t> cross_partition_rows_{0};
  std::atomic<std::uint64_t> ready_queue_{0}, out_queue_{0}, free_buffers_{0};
  std::atomic<bool> checkpoints_enabled_{false}, checkpoint_in_flight_{false},
      transactional_{false};
  std::atomic<std::uint64_t> transactions_committed_{0}, transactions_aborted_{0};
  std::atomic<std::uint64_t> checkpoints_{0}, checkpoints_delayed_{0}, checkpoint_id_{0},
      checkpoint_bytes_{0}, checkpoint_groups_{0}, checkpoints_updates_only_{0};
  std::atomic<double> checkpoint_write_s_{0}, checkpoint_cut_s_{0};

  // Per-stage time (seconds, from on_batch) and latencies.
  std::atomic<double> decode_s_{0}, h2d_s_{0}, kernel_s_{0}, extract_s_{0}, encode_s_{0},
      sink_s_{0};
  histogram batch_latency_{1e-4};  ///< seconds from a batch's close to its rows in the sink
  histogram e2e_latency_{1e-4};    ///< seconds from a batch's first record to its rows in the sink

  mutable std::mutex mutex_;  // guards the members below (rarely written)
  std::string device_;
  std::string failure_;
  std::map<std::pair<std::string, std::int32_t>, std::int64_t> lag_;
};

/// @brief Escapes a Prometheus label value (backslash, double quote, newline).
[[nodiscard]] std::string escape_label_value(const std::string& value);

}  // namespace trove::host
