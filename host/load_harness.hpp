#pragma once
/// @file load_harness.hpp
/// @brief `trove bench`: the load harness. It runs the real pipeline (run_pipeline(), the code
/// path of `trove run`) against the synthetic generator at offered rates, measures open-loop
/// latency percentiles and sustained throughput, finds the maximum sustainable rate, runs the
/// hand-written absl baseline on the same events, and writes results.json, results.md and
/// gnuplot plots.
///
/// Open loop: the generator schedules event k at schedule_start + k/rate and never runs ahead;
/// when the pipeline stalls (every batch buffer in flight) it falls behind and catches up later,
/// and latency is measured from the *scheduled* time, so a stall shows up as latency of every
/// event that was due meanwhile (no coordinated omission).
///
/// Latency: `emit: update` — event k's scheduled time → its batch's rows handed to the sink;
/// `emit: final` — a window's end (mapped to the schedule: event time follows offered time) →
/// the batch that emitted the window reached the sink.

#include <cstdint>
#include <cstdio>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "host/config.hpp"

namespace trove::host {

/// @brief What `trove bench` runs.
struct load_options {
  /// Pipeline to load; its source is replaced by the synthetic generator (rate, events, span set
  /// per run). default_load_config() when not given.
  pipeline_config config;
  std::vector<double> rates;      ///< offered events/s, run in this order (empty: sweep)
  double sweep_start = 250'000;   ///< sweep: first rate, doubled while sustainable
  double sweep_max = 16'000'000;  ///< sweep: never above this
  int bisect_steps = 3;           ///< sweep: bisections between the last good and first bad rate
  double duration_s = 10;         ///< per rate
  /// Latency of events scheduled in the first warmup_s of a run is not recorded (table growth
  /// from empty, page faults of fresh memory); the run is duration_s + warmup_s long.
  double warmup_s = 0;
  double p99_bound_ms = 250;         ///< sustainable: p99 at most this
  double min_achieved_ratio = 0.95;  ///< sustainable: achieved ≥ this × offered
  /// Events for the absl baseline (same generator settings as the runs); 0 = no baseline.
  std::uint64_t baseline_events = 10'000'000;
  /// "synthetic": the generator inside the pipeline's source thread; "kafka": the generator
  /// produces open loop into a fresh topic of the embedded broker (librdkafka's mock cluster, in
  /// this process) and the pipeline consumes it with its Kafka source, as `trove run` would.
  std::string source = "synthetic";
  int kafka_partitions = 32;  ///< kafka: partitions of the topic (the broker keeps ~5 MiB each)
  /// kafka: events for the raw-consume baseline (a bare consumer reading a topic of this many
  /// events to its end, no decoding); 0 = skip it.
  std::uint64_t raw_consume_events = 1'000'000;
  /// Size the dedup set and the aggregation table for each run's events up front (the steady
  /// state of a long-running deployment whose tables have grown, or one configured with
  /// dedup.initial_capacity and window.initial_capacity): no growth pauses during the run.
  bool size_tables = false;
  std::FILE* progress = stderr;  ///< progress lines (null: none)
};

/// @brief One offered rate's measurements.
struct load_run {
  double offered_rate = 0;    ///< events/s scheduled
  double duration_s = 0;      ///< scheduled length (events / offered_rate)
  std::uint64_t events = 0;   ///< records offered
  double wall_s = 0;          ///< schedule start → last batch at the sink
  double achieved_rate = 0;   ///< events / wall_s (events/s in)
  double rows_out_per_s = 0;  ///< result rows / wall_s (rows/s out)
  std::uint64_t rows_out = 0;
  std::uint64_t accepted = 0, duplicate = 0, late = 0;
  double p50_ms = 0, p90_ms = 0, p99_ms = 0, p999_ms = 0, max_ms = 0, mean_ms = 0;
  std::uint64_t latency_samples = 0;  ///< events (update) or emitted rows (final) measured
  /// Backlog trend: mean latency of the batches in the last quarter of the run minus that of the
  /// second quarter (the first is warm-up); growing when above p99_bound / 4.
  double backlog_growth_ms = 0;
  bool backlog_growing = false;
  bool sustainable = false;
  std::uint64_t batches = 0;
  double batch_rows_mean = 0;
  std::uint64_t batch_rows_max = 0;
  /// Mean seconds per batch of each stage (ms in the reports).
  double decode_ms = 0, h2d_ms = 0, kernels_ms = 0, extract_ms = 0, encode_ms = 0, sink_ms = 0;
  double ready_queue_mean = 0, out_queue_mean = 0;
  std::size_t ready_queue_max = 0, out_queue_max = 0;
  std::uint64_t peak_rss_bytes = 0;    ///< VmHWM during the run (reset before it when possible)
  std::uint64_t state_bytes_peak = 0;  ///< dedup + aggregation tables (device memory on CUDA)
  double cpu_seconds = 0;              ///< user + system CPU of the process during the run
  double cpu_cores_used = 0;           ///< cpu_seconds / wall_s
  /// CPU the rest of the machine used meanwhile (cores; /proc/stat busy time minus ours): a
  /// shared machine's noise, reported so that a slow run can be told from a busy neighbour.
  double other_cpu_cores = 0;
  std::uint64_t table_rebuilds = 0;  ///< dedup + aggregation table rebuilds (growth) in the run
  std::uint64_t table_blocking_rebuilds = 0;  ///< of those, done at once (pausing one batch)
  /// kafka: events the broker deleted before the pipeline read them (it keeps ~5 MiB per
  /// partition); non-zero makes the run unsustainable.
  std::uint64_t lost_events = 0;
  /// When each rebuild was seen (s since the schedule start; the batch after it), to line up
  /// with the timeline's latency spikes.
  std::vector<double> rebuild_at_s;
  /// Per batch: (scheduled time of its last event in s, latency of its first = oldest event in
  /// ms), for timeline.dat / timeline.png (where the spikes are).
  std::vector<std::pair<double, double>> timeline;
  std::string error;  ///< the run failed (then nothing else is meaningful)
};

/// @brief The machine and build a report was measured on.
struct machine_info {
  std::string cpu_model;
  unsigned cores = 0;
  std::uint64_t memory_bytes = 0;
  std::string kernel;
};

/// @brief Everything `trove bench` measured.
struct load_report {
  std::vector<load_run> runs;
  double max_sustainable_events_per_second = 0;  ///< highest sustainable offered rate, or 0
  /// Highest offered rate the pipeline kept up with (achieved ≥ min ratio, backlog not growing),
  /// whatever its p99; 0 when none.
  double max_keepup_events_per_second = 0;
  double baseline_events_per_second = 0;  ///< absl baseline, 1 thread (0: not run)
  std::uint64_t baseline_events = 0;
  std::size_t baseline_groups = 0;
  double ratio_vs_baseline = 0;  ///< max sustainable ÷ baseline
  /// kafka: a bare consumer's rate reading raw_consume_events from the same broker (0: not run).
  double raw_consume_events_per_second = 0;
  std::uint64_t raw_consume_events = 0;
  double ratio_vs_raw_consume = 0;  ///< max sustainable ÷ raw consume
  int kafka_partitions = 0;         ///< kafka: partitions of each run's topic
  bool size_tables = false;
  std::string config_yaml;  ///< effective config of the runs (rate/events of the last run)
  std::string emit;         ///< "update" or "final"
  std::string device;
  std::string version;
  machine_info machine;
  double duration_s = 0;
  double warmup_s = 0;
  double p99_bound_ms = 0;
  double min_achieved_ratio = 0;
  std::string source;
  std::string started_utc;  ///< ISO 8601
};

/// @brief The YAML of default_load_config() (so `--set` overrides apply to it).
[[nodiscard]] const char* default_load_config_yaml() noexcept;

/// @brief The built-in W1-shaped pipeline: synthetic source (1M users, Zipf 1.1, 4 types, 5%
/// re-sends), dedup on event_id (ttl 10m), tumbling 1m windows (lateness 5s), by (user_id, type),
/// count/sum/min/max/avg of amount, `emit: update`, rows written to /dev/null as JSON.
pipeline_config default_load_config();

/// @brief The pipeline config of one run at `rate` for `duration_s`: a bounded synthetic source
/// whose event time spans the run (event time follows offered time).
pipeline_config config_for_rate(const pipeline_config& base, double rate, double duration_s);

/// @brief Runs the pipeline once at `rate` (open loop) and measures it.
load_run run_at_rate(const pipeline_config& base, double rate, const load_options& options,
                     std::string* device = nullptr);

/// @brief Sustainable: no error, p99 ≤ bound, achieved ≥ min ratio × offered, backlog not
/// growing.
bool is_sustainable(const load_run& run, const load_options& options) noexcept;

/// @brief The rates a sweep runs next, given the runs so far (empty: done). Doubles from
/// sweep_start while sustainable (up to sweep_max), then bisects bisect_steps times between the
/// best sustainable and the lowest unsustainable rate; halves (down to sweep_start / 64) while
/// even the first rate is not sustainable.
std::vector<double> next_sweep_rates(const std::vector<load_run>& runs,
                                     const load_options& options);

/// @brief Single-threaded absl baseline on `events` events of the runs' generator settings
/// (generated up front, not timed); returns events/s and the groups it built.
double run_baseline(const pipeline_config& base, std::uint64_t events, double duration_s,
                    std::size_t* groups = nullptr);

/// @brief The pipeline config of one Kafka run: `base` (a config_for_rate()) reading `topic` of
/// the broker at `brokers` from the earliest offset in consumer group `group`.
pipeline_config kafka_config_for(const pipeline_config& base, const std::string& brokers,
                                 const std::string& topic, const std::string& group);

/// @brief Sizes the dedup set and the aggregation table of a config_for_rate() config for all of
/// its events (every event a new dedup key; at most min(events, keys × types) groups per window).
void size_tables_for_run(pipeline_config& config);

/// @brief The raw consume rate: `events` of the runs' generator produced into a fresh topic of
/// `partitions` partitions of a new embedded broker (not timed), then read to its end by a bare
/// consumer (librdkafka's high-level consumer in batch polls, no decoding), timed from its first
/// message to its last. Returns events/s.
/// @throws std::runtime_error when not every event came back
double run_raw_consume(const pipeline_config& base, std::uint64_t events, int partitions,
                       double duration_s);

/// @brief Runs the rates (or the sweep) and the baselines.
/// @throws trove::logic_error for unusable options (e.g. an unknown --source)
load_report run_load(const load_options& options);

/// @brief The report as JSON (results.json).
[[nodiscard]] std::string to_json(const load_report& report);
/// @brief The report as a markdown table with its context (results.md).
[[nodiscard]] std::string to_markdown(const load_report& report);
/// @brief Writes results.json, results.md, the plot data (*.dat), gnuplot scripts (*.gp) and,
/// when gnuplot is installed, latency.png and stages.png into dir (created if missing).
/// @return warnings (e.g. "gnuplot not found"), empty when everything was written
std::vector<std::string> write_load_outputs(const load_report& report, const std::string& dir);

/// @brief Parses "250k", "1M", "1.5m", "4000000" (events/s); false when malformed.
bool parse_rate(std::string_view text, double& out) noexcept;

/// @brief The machine description (/proc/cpuinfo, /proc/meminfo, uname).
machine_info describe_machine();

}  // namespace trove::host
