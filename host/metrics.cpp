#include "host/metrics.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>

#include "host/pipeline.hpp"
#include "host/version.hpp"

namespace trove::host {
namespace {

constexpr double no_value = std::numeric_limits<double>::quiet_NaN();

std::int64_t ticks(observer_clock::time_point t) noexcept {
  return t.time_since_epoch().count();
}

void add(std::atomic<double>& target, double value) noexcept {
  double seen = target.load(std::memory_order_relaxed);
  while (!target.compare_exchange_weak(seen, seen + value, std::memory_order_relaxed)) {
  }
}

/// A sample value as Prometheus writes it: integers exactly, NaN and infinities by name.
std::string value_text(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  return fmt::format("{}", value);
}

/// Appends metric families in the text exposition format.
class writer {
 public:
  void family(std::string_view name, std::string_view type, std::string_view help) {
    fmt::format_to(std::back_inserter(out_), "# HELP {} {}\n# TYPE {} {}\n", name, help, name,
                   type);
  }
  void sample(std::string_view name, std::string_view labels, std::uint64_t value) {
    fmt::format_to(std::back_inserter(out_), "{}{}{}{} {}\n", name, labels.empty() ? "" : "{",
                   labels, labels.empty() ? "" : "}", value);
  }
  void sample(std::string_view name, std::string_view labels, std::int64_t value) {
    fmt::format_to(std::back_inserter(out_), "{}{}{}{} {}\n", name, labels.empty() ? "" : "{",
                   labels, labels.empty() ? "" : "}", value);
  }
  void sample(std::string_view name, std::string_view labels, double value) {
    fmt::format_to(std::back_inserter(out_), "{}{}{}{} {}\n", name, labels.empty() ? "" : "{",
                   labels, labels.empty() ? "" : "}", value_text(value));
  }
  /// A histogram family from a log-bucketed histogram, with `bounds` on its bucket grid.
  void histogram_family(std::string_view name, std::string_view help, const histogram& h,
                        const std::vector<double>& bounds) {
    family(name, "histogram", help);
    // One snapshot of the buckets, so that the cumulative counts and _count agree.
    std::array<std::uint64_t, histogram::bucket_count> counts{};
    for (std::size_t b = 0; b < histogram::bucket_count; ++b) counts[b] = h.bucket(b);
    std::uint64_t cumulative = 0;
    std::size_t b = 0;
    const std::string bucket = std::string(name) + "_bucket";
    for (const double bound : bounds) {
      for (; b < histogram::bucket_count && h.upper_bound(b) <= bound * (1 + 1e-12); ++b) {
        cumulative += counts[b];
      }
      sample(bucket, fmt::format("le=\"{}\"", value_text(bound)), cumulative);
    }
    for (; b < histogram::bucket_count; ++b) cumulative += counts[b];
    sample(bucket, "le=\"+Inf\"", cumulative);
    sample(std::string(name) + "_sum", "", h.sum());
    sample(std::string(name) + "_count", "", cumulative);
  }
  std::string take() { return std::move(out_); }

 private:
  std::string out_;
};

double table_load(std::uint64_t used, std::uint64_t capacity) {
  return capacity ? static_cast<double>(used) / static_cast<double>(capacity) : 0.0;
}

/// A watermark or event time in epoch ms as seconds; NaN when not a finite time (no event yet,
/// or the watermark moved to +infinity at the end of a finite input).
double epoch_seconds(std::int64_t ms) {
  if (ms == INT64_MIN || ms == INT64_MAX) return no_value;
  return static_cast<double>(ms) / 1000.0;
}

}  // namespace

std::string escape_label_value(const std::string& value) {
  std::string out;
  out.reserve(value.size());
  for (const char c : value) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

metrics_registry::metrics_registry(std::chrono::milliseconds stall_timeout)
    // The config accepts any int64 milliseconds (`1000000d` for "never"); ready() compares in the
    // clock's nanoseconds, so a longer timeout is clamped to what they can hold (~292 years).
    : stall_timeout_(std::min(stall_timeout, std::chrono::duration_cast<std::chrono::milliseconds>(
                                                 observer_clock::duration::max()))),
      started_(observer_clock::now()) {
  last_progress_ = ticks(started_);
}

const std::vector<double>& metrics_registry::latency_bounds() {
  // Powers of two from 0.1 ms to ~105 s: on the grid of the histograms (base 1e-4 s, 8 buckets
  // per doubling), so each `le` count is exact, and fine enough for the p99 of a micro-batch.
  static const std::vector<double> bounds = [] {
    const histogram grid(1e-4);
    std::vector<double> out;
    for (int k = 0; k <= 20; ++k) out.push_back(grid.upper_bound(histogram::sub_buckets * k));
    return out;
  }();
  return bounds;
}

void metrics_registry::touch() noexcept {
  last_progress_.store(ticks(observer_clock::now()), std::memory_order_relaxed);
}

void metrics_registry::on_device_ready(const std::string& device) noexcept {
  try {
    std::lock_guard lock(mutex_);
    device_ = device;
  } catch (...) {  // a failed string copy only loses the label
  }
  device_ready_ = true;
}

void metrics_registry::on_source_ready() noexcept {
  // The stall clock starts when input can first arrive.
  touch();
  source_ready_ = true;
}

void metrics_registry::set_counts(const run_stats& stats) noexcept {
  counts_.in = stats.in;
  counts_.accepted = stats.accepted;
  counts_.duplicate = stats.duplicate;
  counts_.late = stats.late;
  counts_.filtered = stats.filtered;
  counts_.bad = stats.bad;
  counts_.rows_out = stats.rows_out;
  counts_.windows_emitted = stats.windows_emitted;
  counts_.routes_rewritten = stats.routes_rewritten;
  try {
    counts_.outputs = stats.outputs;
  } catch (...) {  // out of memory: the outputs' series keep their last values
  }
}

void metrics_registry::on_progress(const run_stats& stats, const state_report& state) noexcept {
  constexpr auto relaxed = std::memory_order_relaxed;
  {
    std::lock_guard lock(counts_mutex_);  // once per batch: uncontended but for a scrape
    set_counts(stats);
  }
  batches_processed_.store(stats.batches, relaxed);
  dedup_entries_.store(state.dedup.entries, relaxed);
  dedup_capacity_.store(state.dedup.capacity, relaxed);
  dedup_used_.store(state.dedup.used, relaxed);
  dedup_bytes_.store(state.dedup.bytes, relaxed);
  dedup_rebuilds_.store(state.dedup.rebuilds, relaxed);
  dedup_blocking_rebuilds_.store(state.dedup.blocking_rebuilds, relaxed);
  agg_entries_.store(state.agg.entries, relaxed);
  agg_capacity_.store(state.agg.capacity, relaxed);
  agg_used_.store(state.agg.used, relaxed);
  agg_bytes_.store(state.agg.bytes, relaxed);
  agg_sketch_bytes_.store(state.agg.sketch_bytes, relaxed);
  agg_rebuilds_.store(state.agg.rebuilds, relaxed);
  agg_blocking_rebuilds_.store(state.agg.blocking_rebuilds, relaxed);
  watermark_.store(state.watermark, relaxed);
  max_event_time_.store(state.max_event_time, relaxed);
  cross_partition_rows_.store(state.cross_partition_rows, relaxed);
  ready_queue_.store(state.ready_queue_depth, relaxed);
  out_queue_.store(state.out_queue_depth, relaxed);
  free_buffers_.store(state.free_buffers, relaxed);
  checkpoints_enabled_.store(state.checkpoint.enabled, relaxed);
  checkpoints_.store(state.checkpoint.written, relaxed);
  checkpoints_delayed_.store(state.checkpoint.delayed, relaxed);
  checkpoint_id_.store(state.checkpoint.last_id, relaxed);
  checkpoint_bytes_.store(state.checkpoint.last_bytes, relaxed);
  checkpoint_write_s_.store(state.checkpoint.last_write_seconds, relaxed);
  checkpoint_cut_s_.store(state.checkpoint.last_cut_seconds, relaxed);
  checkpoint_groups_.store(state.checkpoint.last_groups, relaxed);
  checkpoints_updates_only_.store(state.checkpoint.updates_only, relaxed);
  checkpoint_in_flight_.store(state.checkpoint.in_flight, relaxed);
  transactional_.store(state.checkpoint.transactional, relaxed);
  transactions_committed_.store(state.checkpoint.transactions_committed, relaxed);
  transactions_aborted_.store(state.checkpoint.transactions_aborted, relaxed);
  touch();
}

void metrics_registry::on_partition_lag(const std::string& topic, std::int32_t partition,
                                        std::int64_t lag) noexcept {
  try {
    std::lock_guard lock(mutex_);
    lag_[{topic, partition}] = lag;
  } catch (...) {  // out of memory: the partition's lag is missing until the next report
  }
}

void metrics_registry::on_partitions_revoked() noexcept {
  // A moved partition's lag is its new owner's to report: a stale series here would count it
  // twice in a sum over members (and hold /readyz's "input waiting" up).
  std::lock_guard lock(mutex_);
  lag_.clear();
}

void metrics_registry::on_batch(const batch_report& report) noexcept {
  batch_latency_.record(std::chrono::duration<double>(report.sink_done - report.closed).count());
  e2e_latency_.record(std::chrono::duration<double>(report.sink_done - report.opened).count());
  add(decode_s_, report.decode_seconds);
  add(h2d_s_, report.h2d_seconds);
  add(kernel_s_, report.kernel_seconds);
  add(extract_s_, report.extract_seconds);
  add(encode_s_, report.encode_seconds);
  add(sink_s_, report.sink_seconds);
  batches_written_.store(report.seq + 1, std::memory_order_relaxed);
  touch();
}

void metrics_registry::on_finished(const run_stats& stats) noexcept {
  {
    std::lock_guard lock(counts_mutex_);
    set_counts(stats);
  }
  finished_ = true;
}

void metrics_registry::on_stop_requested() noexcept {
  stopping_ = true;
}

void metrics_registry::on_failed(const std::string& why) noexcept {
  try {
    std::lock_guard lock(mutex_);
    failure_ = why;
  } catch (...) {
  }
  failed_ = true;
}

bool metrics_registry::input_waiting() const {
  constexpr auto relaxed = std::memory_order_relaxed;
  if (ready_queue_.load(relaxed) > 0 || out_queue_.load(relaxed) > 0) return true;
  if (batches_processed_.load(relaxed) > batches_written_.load(relaxed)) return true;
  std::lock_guard lock(mutex_);
  for (const auto& [where, lag] : lag_) {
    if (lag > 0) return true;
  }
  return false;
}

readiness metrics_registry::ready(observer_clock::time_point now) const {
  if (failed_) {
    std::lock_guard lock(mutex_);
    return {false, "run failed: " + failure_};
  }
  if (finished_) return {false, "run finished"};
  if (stopping_) return {false, "stopping: draining after a stop signal"};
  if (!device_ready_) return {false, "device not initialised yet"};
  if (!source_ready_) return {false, "source not connected yet"};
  const observer_clock::time_point last{
      observer_clock::duration(last_progress_.load(std::memory_order_relaxed))};
  if (now - last > stall_timeout_ && input_waiting()) {
    return {false,
            fmt::format("stalled: input is waiting and no batch made progress for {:.0f} s "
                        "(metrics.stall_timeout {} ms); check the device and the sink",
                        std::chrono::duration<double>(now - last).count(), stall_timeout_.count())};
  }
  return {true, "ready"};
}

std::string metrics_registry::render() const {
  const auto wall = std::chrono::duration_cast<std::chrono::milliseconds>(
                        std::chrono::system_clock::now().time_since_epoch())
                        .count();
  return render(observer_clock::now(), wall);
}

std::string metrics_registry::render(observer_clock::time_point now, std::int64_t wall_ms) const {
  constexpr auto relaxed = std::memory_order_relaxed;
  writer w;
  std::string device;
  std::map<std::pair<std::string, std::int32_t>, std::int64_t> lag;
  {
    std::lock_guard lock(mutex_);
    device = device_;
    lag = lag_;
  }

  w.family("trove_build_info", "gauge", "trove's version (always 1).");
  w.sample("trove_build_info", fmt::format("version=\"{}\"", escape_label_value(trove::version)),
           std::uint64_t{1});
  w.family("trove_device_info", "gauge", "The backend running the kernels (1 once initialised).");
  if (device_ready_) {
    w.sample("trove_device_info", fmt::format("device=\"{}\"", escape_label_value(device)),
             std::uint64_t{1});
  }
  const readiness r = ready(now);
  w.family("trove_ready", "gauge",
           "1 when /readyz succeeds: device initialised, source connected, not stalled.");
  w.sample("trove_ready", "", std::uint64_t{r.ready ? 1u : 0u});
  w.family("trove_source_ready", "gauge", "1 once the source is open (file opened, consumer up).");
  w.sample("trove_source_ready", "", std::uint64_t{source_ready_ ? 1u : 0u});
  const observer_clock::time_point last{observer_clock::duration(last_progress_.load(relaxed))};
  w.family("trove_seconds_since_progress", "gauge",
           "Seconds since a batch was last processed or written (or the source opened).");
  w.sample("trove_seconds_since_progress", "", std::chrono::duration<double>(now - last).count());

  // Record accounting: in = accepted + duplicate + late + filtered + bad (from one batch's
  // counters; a scrape between two batches sees the identity hold).
  w.family("trove_records_in_total", "counter", "Input records read (every status).");
  record_counts counts;
  {
    std::lock_guard lock(counts_mutex_);
    counts = counts_;
  }
  w.sample("trove_records_in_total", "", counts.in);
  w.family("trove_records_total", "counter",
           "Input records by outcome; the statuses add up to trove_records_in_total.");
  w.sample("trove_records_total", "status=\"accepted\"", counts.accepted);
  w.sample("trove_records_total", "status=\"duplicate\"", counts.duplicate);
  w.sample("trove_records_total", "status=\"late\"", counts.late);
  w.sample("trove_records_total", "status=\"filtered\"", counts.filtered);
  w.sample("trove_records_total", "status=\"bad\"", counts.bad);
  w.family("trove_rows_out_total", "counter", "Result rows written to the sink.");
  w.sample("trove_rows_out_total", "", counts.rows_out);
  w.family("trove_routes_rewritten_total", "counter",
           "Rows of a routed sink whose target the unsafe-value rule rewrote.");
  w.sample("trove_routes_rewritten_total", "", counts.routes_rewritten);
  w.family("trove_windows_emitted_total", "counter", "Windows closed and emitted.");
  w.sample("trove_windows_emitted_total", "", counts.windows_emitted);
  if (!counts.outputs.empty()) {
    // `outputs`: each output's own accounting, accepted = emitted_into + filtered + late.
    w.family("trove_output_records_total", "counter",
             "Per output, the records the shared pass accepted by their outcome in the output; "
             "per output they add up to trove_records_total{status=\"accepted\"}.");
    for (const output_stats& o : counts.outputs) {
      const std::string name = escape_label_value(o.name);
      w.sample("trove_output_records_total",
               fmt::format("output=\"{}\",status=\"emitted_into\"", name), o.emitted_into);
      w.sample("trove_output_records_total", fmt::format("output=\"{}\",status=\"filtered\"", name),
               o.filtered);
      w.sample("trove_output_records_total", fmt::format("output=\"{}\",status=\"late\"", name),
               o.late);
    }
    w.family("trove_output_rows_out_total", "counter", "Per output, result rows written.");
    for (const output_stats& o : counts.outputs) {
      w.sample("trove_output_rows_out_total",
               fmt::format("output=\"{}\"", escape_label_value(o.name)), o.rows_out);
    }
    w.family("trove_output_windows_emitted_total", "counter",
             "Per output, windows closed and emitted.");
    for (const output_stats& o : counts.outputs) {
      w.sample("trove_output_windows_emitted_total",
               fmt::format("output=\"{}\"", escape_label_value(o.name)), o.windows_emitted);
    }
    w.family("trove_output_routes_rewritten_total", "counter",
             "Per output, rows whose routed target the unsafe-value rule rewrote.");
    for (const output_stats& o : counts.outputs) {
      w.sample("trove_output_routes_rewritten_total",
               fmt::format("output=\"{}\"", escape_label_value(o.name)), o.routes_rewritten);
    }
  }
  w.family("trove_batches_total", "counter", "Micro-batches by stage reached.");
  w.sample("trove_batches_total", "stage=\"device\"", batches_processed_.load(relaxed));
  w.sample("trove_batches_total", "stage=\"sink\"", batches_written_.load(relaxed));

  w.histogram_family("trove_batch_latency_seconds",
                     "Seconds from a batch's close to its result rows written to the sink.",
                     batch_latency_, latency_bounds());
  w.histogram_family("trove_end_to_end_latency_seconds",
                     "Seconds from a batch's first record read to its result rows written.",
                     e2e_latency_, latency_bounds());
  w.family("trove_stage_seconds_total", "counter", "Time spent per pipeline stage.");
  w.sample("trove_stage_seconds_total", "stage=\"decode\"", decode_s_.load(relaxed));
  w.sample("trove_stage_seconds_total", "stage=\"h2d\"", h2d_s_.load(relaxed));
  w.sample("trove_stage_seconds_total", "stage=\"kernels\"", kernel_s_.load(relaxed));
  w.sample("trove_stage_seconds_total", "stage=\"extract\"", extract_s_.load(relaxed));
  w.sample("trove_stage_seconds_total", "stage=\"encode\"", encode_s_.load(relaxed));
  w.sample("trove_stage_seconds_total", "stage=\"sink\"", sink_s_.load(relaxed));

  const std::int64_t watermark = watermark_.load(relaxed);
  const std::int64_t max_event = max_event_time_.load(relaxed);
  const double wm_s = epoch_seconds(watermark);
  const double max_s = epoch_seconds(max_event);
  w.family("trove_watermark_seconds", "gauge",
           "Event-time watermark (epoch seconds; NaN before any event and after the end).");
  w.sample("trove_watermark_seconds", "", wm_s);
  w.family("trove_max_event_time_seconds", "gauge", "Largest event time seen (epoch seconds).");
  w.sample("trove_max_event_time_seconds", "", max_s);
  w.family("trove_watermark_lag_seconds", "gauge",
           "How far the watermark trails: max event time - watermark (event time), and wall "
           "clock - watermark (real time).");
  w.sample("trove_watermark_lag_seconds", "clock=\"event\"", max_s - wm_s);
  w.sample("trove_watermark_lag_seconds", "clock=\"wall\"",
           static_cast<double>(wall_ms) / 1000.0 - wm_s);

  w.family("trove_table_entries", "gauge", "Live entries of the device state tables.");
  w.sample("trove_table_entries", "table=\"dedup\"", dedup_entries_.load(relaxed));
  w.sample("trove_table_entries", "table=\"aggregation\"", agg_entries_.load(relaxed));
  w.family("trove_table_capacity", "gauge", "Slots of the device state tables.");
  w.sample("trove_table_capacity", "table=\"dedup\"", dedup_capacity_.load(relaxed));
  w.sample("trove_table_capacity", "table=\"aggregation\"", agg_capacity_.load(relaxed));
  w.family("trove_table_load_factor", "gauge",
           "Used slots (tombstones included) / capacity; tables rebuild before probing degrades.");
  w.sample("trove_table_load_factor", "table=\"dedup\"",
           table_load(dedup_used_.load(relaxed), dedup_capacity_.load(relaxed)));
  w.sample("trove_table_load_factor", "table=\"aggregation\"",
           table_load(agg_used_.load(relaxed), agg_capacity_.load(relaxed)));
  w.family("trove_table_bytes", "gauge", "Device memory held by each state table.");
  w.sample("trove_table_bytes", "table=\"dedup\"", dedup_bytes_.load(relaxed));
  w.sample("trove_table_bytes", "table=\"aggregation\"", agg_bytes_.load(relaxed));
  w.family("trove_sketch_bytes", "gauge",
           "Of the aggregation table's bytes: the sketch arena (approx_count_distinct and quantile "
           "groups past their inline entries).");
  w.sample("trove_sketch_bytes", "", agg_sketch_bytes_.load(relaxed));
  w.family("trove_table_rebuilds_total", "counter", "Rebuilds (rehash, growth) of each table.");
  w.sample("trove_table_rebuilds_total", "table=\"dedup\"", dedup_rebuilds_.load(relaxed));
  w.sample("trove_table_rebuilds_total", "table=\"aggregation\"", agg_rebuilds_.load(relaxed));
  w.family("trove_table_blocking_rebuilds_total", "counter",
           "Rebuilds done at once, pausing one batch (the others were spread over batches).");
  w.sample("trove_table_blocking_rebuilds_total", "table=\"dedup\"",
           dedup_blocking_rebuilds_.load(relaxed));
  w.sample("trove_table_blocking_rebuilds_total", "table=\"aggregation\"",
           agg_blocking_rebuilds_.load(relaxed));
  w.family("trove_device_memory_bytes", "gauge",
           "Device memory in use by the run's state (dedup set + aggregation table).");
  w.sample("trove_device_memory_bytes", "", dedup_bytes_.load(relaxed) + agg_bytes_.load(relaxed));
  if (checkpoints_enabled_.load(relaxed)) {
    w.family("trove_checkpoints_total", "counter", "Checkpoints made durable by this process.");
    w.sample("trove_checkpoints_total", "", checkpoints_.load(relaxed));
    w.family("trove_checkpoints_delayed_total", "counter",
             "Checkpoints that came late because the previous write was still running (the data "
             "path never waits; a growing count means checkpoint.interval is too short for the "
             "disk).");
    w.sample("trove_checkpoints_delayed_total", "", checkpoints_delayed_.load(relaxed));
    w.family("trove_checkpoint_last_id", "gauge", "Id of the newest durable checkpoint.");
    w.sample("trove_checkpoint_last_id", "", checkpoint_id_.load(relaxed));
    w.family("trove_checkpoint_last_bytes", "gauge",
             "Size of the newest checkpoint: manifest plus the dedup and group segments it "
             "references.");
    w.sample("trove_checkpoint_last_bytes", "", checkpoint_bytes_.load(relaxed));
    w.family("trove_checkpoint_last_groups", "gauge",
             "Aggregation groups the newest checkpoint wrote: every open group, or only those "
             "updated since the checkpoint before (see trove_checkpoints_updates_only_total).");
    w.sample("trove_checkpoint_last_groups", "", checkpoint_groups_.load(relaxed));
    w.family("trove_checkpoints_updates_only_total", "counter",
             "Checkpoints that wrote only the aggregation groups updated since the one before "
             "(the others write every open group).");
    w.sample("trove_checkpoints_updates_only_total", "", checkpoints_updates_only_.load(relaxed));
    w.family("trove_checkpoint_last_seconds", "gauge",
             "Time of the newest checkpoint: phase=cut is the data-path pause (copy-out), "
             "phase=write the background encode, write and fsync.");
    w.sample("trove_checkpoint_last_seconds", "phase=\"cut\"", checkpoint_cut_s_.load(relaxed));
    w.sample("trove_checkpoint_last_seconds", "phase=\"write\"", checkpoint_write_s_.load(relaxed));
    w.family("trove_checkpoint_in_flight", "gauge", "1 while a checkpoint is being written.");
    w.sample("trove_checkpoint_in_flight", "",
             std::uint64_t{checkpoint_in_flight_.load(relaxed) ? 1u : 0u});
  }
  if (transactional_.load(relaxed)) {
    w.family("trove_kafka_transactions_total", "counter",
             "Kafka sink transactions (sink.delivery: exactly_once), one per checkpoint: "
             "result=aborted ones were redone from the last committed checkpoint.");
    w.sample("trove_kafka_transactions_total", "result=\"committed\"",
             transactions_committed_.load(relaxed));
    w.sample("trove_kafka_transactions_total", "result=\"aborted\"",
             transactions_aborted_.load(relaxed));
  }

  w.family("trove_input_cross_partition_rows_total", "counter",
           "Rows that updated a group created from another source partition: the input is not "
           "partitioned by the group key, so results split across instances are not exact.");
  w.sample("trove_input_cross_partition_rows_total", "", cross_partition_rows_.load(relaxed));

  w.family("trove_queue_depth", "gauge",
           "Batches waiting between stages: ready = decoded, waiting for the device; out = "
           "results waiting for the sink.");
  w.sample("trove_queue_depth", "queue=\"ready\"", ready_queue_.load(relaxed));
  w.sample("trove_queue_depth", "queue=\"out\"", out_queue_.load(relaxed));
  w.family("trove_free_buffers", "gauge",
           "Batch buffers not in flight (0: the source waits for the device).");
  w.sample("trove_free_buffers", "", free_buffers_.load(relaxed));

  w.family("trove_kafka_consumer_lag", "gauge",
           "Messages between a partition's next offset to read and its high watermark.");
  for (const auto& [where, value] : lag) {
    w.sample(
        "trove_kafka_consumer_lag",
        fmt::format("topic=\"{}\",partition=\"{}\"", escape_label_value(where.first), where.second),
        value);
  }
  return w.take();
}

}  // namespace trove::host
