#pragma once
/// @file pipeline.hpp
/// @brief `trove run`: source → decode → batcher → device → encode → sink, each stage on its own
/// thread, connected by bounded queues over a fixed pool of (pinned) batch buffers.

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "host/config.hpp"
#include "host/run_observer.hpp"

namespace trove::host {

/// @brief Command-line options of a run that are not part of the pipeline's configuration.
struct run_options {
  std::string stats_json;  ///< write the final stats here (empty: don't)
  bool quiet = false;      ///< no progress lines
  bool strict = false;     ///< the first bad record stops the run (exit code 1)
  /// Told about the run's life cycle and every batch (metrics endpoint, load harness); not owned.
  std::vector<run_observer*> observers;
};

/// @brief Counters of one output of several (`outputs`): `accepted = emitted_into + filtered +
/// late` always, `accepted` being the records the shared pass (top-level filter, dedup) accepted.
struct output_stats {
  std::string name;
  std::uint64_t accepted = 0;
  std::uint64_t emitted_into = 0;  ///< aggregated into a window (or forwarded)
  std::uint64_t filtered = 0;      ///< rejected by the output's own filter
  std::uint64_t late = 0;          ///< every window of the record was already emitted
  std::uint64_t rows_out = 0;
  std::uint64_t windows_emitted = 0;
  std::uint64_t routes_rewritten = 0;  ///< rows whose routed target the unsafe-value rule rewrote
};

/// @brief Counters of a run; `in = accepted + duplicate + late + filtered + bad` always. After a
/// restore from a checkpoint they are cumulative (they include the runs before it).
struct run_stats {
  std::uint64_t in = 0;
  std::uint64_t accepted = 0;
  std::uint64_t duplicate = 0;
  std::uint64_t late = 0;
  std::uint64_t filtered = 0;
  std::uint64_t bad = 0;
  std::uint64_t rows_out = 0;
  std::uint64_t windows_emitted = 0;
  std::uint64_t batches = 0;
  double seconds = 0;
  double events_per_second = 0;
  std::string device;
  std::int64_t watermark = INT64_MIN;
  std::uint64_t open_groups = 0;  ///< groups still open at exit (non-zero only after a signal)
  bool interrupted = false;
  std::uint64_t checkpoints = 0;             ///< checkpoints written by this run
  std::uint64_t restored_checkpoint = 0;     ///< the checkpoint the run started from (0: none)
  double restore_seconds = 0;                ///< loading and restoring that checkpoint
  std::uint64_t checkpoints_delayed = 0;     ///< cuts that waited for the previous write
  std::uint64_t checkpoint_bytes = 0;        ///< size of the last checkpoint (manifest + segments)
  double checkpoint_max_cut_seconds = 0;     ///< longest data-path pause for a cut (copy-out)
  double checkpoint_max_write_seconds = 0;   ///< longest background write (encode, write, fsync)
  std::uint64_t transactions_committed = 0;  ///< exactly_once: Kafka transactions committed
  /// exactly_once: transactions aborted (each followed by a restart from the last committed
  /// checkpoint inside the same `trove run`)
  std::uint64_t transactions_aborted = 0;
  /// routed sink (`{field}` in sink.topic): rows whose target the unsafe-value rule rewrote (null,
  /// empty or all-dots values, bytes a topic name cannot hold, names over 249 bytes), this run
  std::uint64_t routes_rewritten = 0;
  /// `outputs`: per output, in order (then `late` above is 0: lateness is per output, and
  /// rows_out, windows_emitted and routes_rewritten are the outputs' sums). Empty otherwise.
  std::vector<output_stats> outputs;

  /// @brief The stats as one JSON object (the --stats-json file).
  [[nodiscard]] std::string to_json() const;
};

/// @brief Asks every running pipeline to stop: stop reading, drain, flush (signal-safe).
void request_stop() noexcept;

/// @brief Runs a pipeline to the end of its input (or until request_stop()).
/// @throws trove::logic_error for configuration problems found at start-up, std::runtime_error
/// (or a subclass) for I/O, device and capacity failures.
run_stats run_pipeline(const pipeline_config& config, const run_options& options);

}  // namespace trove::host
