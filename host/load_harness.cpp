#include "host/load_harness.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <sys/resource.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <sstream>
#include <thread>

#include "host/absl_baseline.hpp"
#include "host/histogram.hpp"
#include "host/kafka_tools.hpp"
#include "host/pipeline.hpp"
#include "host/run_observer.hpp"
#include "host/version.hpp"
#include "io/batch.hpp"
#include "io/dev_broker.hpp"
#include "io/encoder.hpp"
#include "io/kafka_consumer.hpp"
#include "io/kafka_producer.hpp"
#include "io/result_batch.hpp"
#include "io/synthetic.hpp"
#include "kernels/error.hpp"

namespace trove::host {
namespace {

constexpr const char* default_config_yaml = R"(
source:
  type: synthetic
  events: 0
  keys: 1000000
  zipf: 1.1
  duplicate_ratio: 0.05
  types: 4
schema: { event_id: u64, user_id: u64, type: string, ts: timestamp_ms, amount: f64 }
event_time: ts
dedup: { key: [event_id], ttl: 10m }
window: { type: tumbling, size: 1m, allowed_lateness: 5s }
group_by: [user_id, type]
aggregates: [count, sum(amount), min(amount), max(amount), avg(amount)]
emit: update
sink: { type: file, path: /dev/null, format: json }
progress_interval: 0
)";

double seconds_between(observer_clock::time_point from, observer_clock::time_point to) {
  return std::chrono::duration<double>(to - from).count();
}

/// One batch as the harness saw it at the sink (for the backlog trend).
struct batch_sample {
  double scheduled_s = 0;  ///< scheduled time of the batch's last event, since schedule start
  double mean_latency_ms = 0;
  double max_latency_ms = 0;  ///< its first (oldest) event's
};

/// Observes one run: latencies into a histogram, per-batch stage times and queue depths.
class load_observer final : public run_observer {
 public:
  /// `kafka_partitions` > 0: the events come through a topic of that many partitions, event k
  /// at offset k / P of partition k % P, and the schedule starts at kafka_schedule_start().
  load_observer(double rate, emit_mode emit, std::int64_t start_time_ms, double warmup_s,
                int kafka_partitions = 0)
      : rate_(rate),
        emit_(emit),
        start_time_ms_(start_time_ms),
        warmup_s_(warmup_s),
        warmup_events_(static_cast<std::int64_t>(std::ceil(warmup_s * rate))),
        partitions_(kafka_partitions),
        next_offset_(static_cast<std::size_t>(std::max(0, kafka_partitions)), 0),
        latency_(0.001) {}

  void on_source_ready() noexcept override { source_ready_.store(true); }

  /// Kafka: the producer is about to produce event 0, due now (producer thread).
  void kafka_schedule_start(observer_clock::time_point at) noexcept {
    kafka_start_.store(at.time_since_epoch().count(), std::memory_order_release);
  }

  void on_device_ready(const std::string& device) noexcept override {
    try {
      device_ = device;
    } catch (...) {
    }
  }

  void on_progress(const run_stats& stats, const state_report& state) noexcept override {
    const std::uint64_t bytes = state.dedup.bytes + state.agg.bytes;
    if (bytes > state_bytes_peak_.load(std::memory_order_relaxed)) {
      state_bytes_peak_.store(bytes, std::memory_order_relaxed);
    }
    accepted_.store(stats.accepted, std::memory_order_relaxed);
    const std::uint64_t rebuilds = state.dedup.rebuilds + state.agg.rebuilds;
    if (rebuilds != rebuilds_.load(std::memory_order_relaxed) &&
        rebuild_times_.size() < rebuild_times_.capacity()) {
      rebuild_times_.push_back(observer_clock::now());  // reserved: no allocation here
    }
    rebuilds_.store(rebuilds, std::memory_order_relaxed);
    blocking_rebuilds_.store(state.dedup.blocking_rebuilds + state.agg.blocking_rebuilds,
                             std::memory_order_relaxed);
  }

  void on_batch(const batch_report& r) noexcept override {
    if (partitions_ > 0) {
      schedule_start_ = observer_clock::time_point(
          observer_clock::duration(kafka_start_.load(std::memory_order_acquire)));
    } else {
      schedule_start_ = r.schedule_start;
    }
    const double since_start = seconds_between(schedule_start_, r.sink_done);
    double batch_mean_ms = 0;
    if (partitions_ > 0) {
      record_kafka(r, since_start);
    } else if (r.rows > 0) {
      // Synthetic offsets are event indices: event k was due at schedule_start + k/rate.
      const auto first = static_cast<double>(r.offset_first);
      const auto last = static_cast<double>(r.offset_last);
      const double first_ms = (since_start - first / rate_) * 1000;
      const double last_ms = (since_start - last / rate_) * 1000;
      batch_mean_ms = (first_ms + last_ms) / 2;
      if (emit_ == emit_mode::update && r.offset_last >= warmup_events_) {
        const std::int64_t measured = std::max(r.offset_first, warmup_events_);
        const auto n = static_cast<std::uint64_t>(r.offset_last - measured + 1);
        latency_.record_series((since_start - static_cast<double>(measured) / rate_) * 1000,
                               -1000 / rate_, n);
      }
      batch_rows_max_ = std::max<std::uint64_t>(batch_rows_max_, r.rows);
      batch_rows_sum_ += r.rows;
      if (samples_.size() < samples_.capacity()) {
        samples_.push_back({last / rate_, batch_mean_ms, first_ms});
      }
      done_events_.store(static_cast<std::uint64_t>(r.offset_last) + 1, std::memory_order_relaxed);
    }
    if (emit_ == emit_mode::final && r.result_rows) record_final(*r.result_rows, since_start);
    last_sink_s_ = std::max(last_sink_s_, since_start);
    ++batches_;
    decode_ += r.decode_seconds;
    h2d_ += r.h2d_seconds;
    kernels_ += r.kernel_seconds;
    extract_ += r.extract_seconds;
    encode_ += r.encode_seconds;
    sink_ += r.sink_seconds;
    rows_out_ += r.rows_out;
    ready_sum_ += static_cast<double>(r.ready_queue_depth);
    out_sum_ += static_cast<double>(r.out_queue_depth);
    ready_max_ = std::max(ready_max_, r.ready_queue_depth);
    out_max_ = std::max(out_max_, r.out_queue_depth);
  }

  void reserve(std::size_t batches) {
    samples_.reserve(batches);
    rebuild_times_.reserve(256);
  }

  const histogram& latency() const noexcept { return latency_; }
  /// Events whose batch reached the sink (synthetic: through the last one; Kafka: counted).
  std::uint64_t done_events() const noexcept { return done_events_.load(); }
  /// Kafka: events the broker deleted before they were read (gaps in a partition's offsets).
  std::uint64_t lost_events() const noexcept { return lost_events_.load(); }
  bool source_ready() const noexcept { return source_ready_.load(); }

  // Read after the run (run_pipeline joined every pipeline thread).
  std::string device_;
  std::atomic<std::uint64_t> state_bytes_peak_{0};
  std::atomic<std::uint64_t> accepted_{0};
  std::atomic<std::uint64_t> rebuilds_{0};
  std::atomic<std::uint64_t> blocking_rebuilds_{0};
  std::vector<observer_clock::time_point> rebuild_times_;  // device thread
  observer_clock::time_point schedule_start_;              // sink thread
  std::vector<batch_sample> samples_;
  double last_sink_s_ = 0;
  std::uint64_t batches_ = 0, rows_out_ = 0, batch_rows_sum_ = 0, batch_rows_max_ = 0;
  double decode_ = 0, h2d_ = 0, kernels_ = 0, extract_ = 0, encode_ = 0, sink_ = 0;
  double ready_sum_ = 0, out_sum_ = 0;
  std::size_t ready_max_ = 0, out_max_ = 0;

 private:
  /// emit final: a window's end, mapped onto the schedule (event time advances 1000/rate ms per
  /// event from start_time), to the moment its rows reached the sink.
  void record_final(const io::result_batch& rows, double since_start) noexcept {
    const io::result_column* end = nullptr;
    for (const auto& column : rows.columns) {
      if (column.name == "window_end") end = &column;
    }
    if (!end) return;
    for (std::size_t row = 0; row < rows.rows;) {
      const std::uint64_t value = end->fixed[row];
      std::size_t same = row + 1;
      while (same < rows.rows && end->fixed[same] == value) ++same;
      const double due_s =
          static_cast<double>(static_cast<std::int64_t>(value) - start_time_ms_) / 1000;
      if (due_s >= warmup_s_) latency_.record((since_start - due_s) * 1000, same - row);
      row = same;
    }
  }

  /// Kafka: each partition's offsets map back to event indices (k = offset · P + partition), so
  /// every span of a batch is one closed-form latency series, as a synthetic batch is.
  void record_kafka(const batch_report& r, double since_start) noexcept {
    const auto parts = static_cast<std::int64_t>(partitions_);
    const double step_ms = -1000.0 * static_cast<double>(parts) / rate_;
    std::uint64_t count = 0;
    double weighted_ms = 0;
    double oldest_ms = 0;
    std::int64_t newest = -1;
    for (const offset_span& span : r.offsets) {
      if (span.partition < 0 || span.partition >= parts || span.last < span.first) continue;
      auto& next = next_offset_[static_cast<std::size_t>(span.partition)];
      if (span.first > next) lost_events_.fetch_add(static_cast<std::uint64_t>(span.first - next));
      next = std::max(next, span.last + 1);
      const auto n = static_cast<std::uint64_t>(span.last - span.first + 1);
      const auto event_of = [&](std::int64_t offset) { return offset * parts + span.partition; };
      const double first_ms =
          (since_start - static_cast<double>(event_of(span.first)) / rate_) * 1000;
      if (emit_ == emit_mode::update) {
        // The first offset at or after the warm-up: event index ≥ warmup_events_.
        const std::int64_t after_warmup =
            (std::max<std::int64_t>(0, warmup_events_ - span.partition) + parts - 1) / parts;
        const std::int64_t measured = std::max(span.first, after_warmup);
        if (measured <= span.last) {
          latency_.record_series(
              (since_start - static_cast<double>(event_of(measured)) / rate_) * 1000, step_ms,
              static_cast<std::uint64_t>(span.last - measured + 1));
        }
      }
      count += n;
      weighted_ms += static_cast<double>(n) * (first_ms + step_ms * static_cast<double>(n - 1) / 2);
      oldest_ms = std::max(oldest_ms, first_ms);
      newest = std::max(newest, event_of(span.last));
    }
    if (count == 0) return;
    batch_rows_max_ = std::max<std::uint64_t>(batch_rows_max_, r.rows);
    batch_rows_sum_ += r.rows;
    if (samples_.size() < samples_.capacity()) {
      samples_.push_back({static_cast<double>(newest) / rate_,
                          weighted_ms / static_cast<double>(count), oldest_ms});
    }
    done_events_.fetch_add(count, std::memory_order_relaxed);
  }

  double rate_;
  emit_mode emit_;
  std::int64_t start_time_ms_;
  double warmup_s_;
  std::int64_t warmup_events_;
  int partitions_;
  std::vector<std::int64_t> next_offset_;  // Kafka: next offset expected per partition
  std::atomic<observer_clock::rep> kafka_start_{0};
  std::atomic<bool> source_ready_{false};
  histogram latency_;
  std::atomic<std::uint64_t> done_events_{0};
  std::atomic<std::uint64_t> lost_events_{0};
};

double process_cpu_seconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
         static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
}

/// Busy CPU seconds of the whole machine so far (/proc/stat: user, nice, system, irq, softirq,
/// steal); 0 when unreadable.
double machine_busy_seconds() {
  std::ifstream in("/proc/stat");
  std::string cpu;
  unsigned long long user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0,
                     steal = 0;
  if (!(in >> cpu >> user >> nice >> system >> idle >> iowait >> irq >> softirq >> steal)) return 0;
  return static_cast<double>(user + nice + system + irq + softirq + steal) /
         static_cast<double>(sysconf(_SC_CLK_TCK));
}

/// VmHWM of /proc/self/status in bytes (0 when unreadable).
std::uint64_t peak_rss_bytes() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmHWM:", 0) == 0) {
      return std::strtoull(line.c_str() + 6, nullptr, 10) * 1024;
    }
  }
  return 0;
}

/// Resets VmHWM to the current RSS (Linux ≥ 4.0), so each run reports its own peak.
void reset_peak_rss() {
  std::ofstream out("/proc/self/clear_refs");
  out << "5";
}

std::string human_rate(double rate) {
  // thresholds just below the unit, so that 999.7k prints as 1M and not as 1e+03k
  if (rate >= 999.5e3) return fmt::format("{:.3g}M", rate / 1e6);
  if (rate >= 999.5) return fmt::format("{:.3g}k", rate / 1e3);
  return fmt::format("{:.3g}", rate);
}

/// A rate rounded to 3 significant digits (sweep midpoints read better).
double round_rate(double rate) {
  if (rate <= 0) return rate;
  const double scale = std::pow(10.0, std::floor(std::log10(rate)) - 2);
  return std::round(rate / scale) * scale;
}

std::string utc_now() {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char buffer[32];
  std::strftime(buffer, sizeof buffer, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buffer;
}

std::string json_string(std::string_view text) {
  std::string out;
  io::append_json_string(out, text);
  return out;
}

/// A finite number for JSON (NaN/inf would make the file unreadable).
double finite(double value) {
  return std::isfinite(value) ? value : 0.0;
}

}  // namespace

const char* default_load_config_yaml() noexcept {
  return default_config_yaml;
}

pipeline_config default_load_config() {
  std::vector<config_error> errors;
  pipeline_config config = load_config_string(default_config_yaml, {}, errors);
  TROVE_EXPECTS(errors.empty(), "the built-in load harness config is invalid: " +
                                    (errors.empty() ? std::string() : errors.front().message()));
  return config;
}

pipeline_config config_for_rate(const pipeline_config& base, double rate, double duration_s) {
  pipeline_config config = base;
  auto& syn = config.source.synthetic;
  config.source.type = source_type::synthetic;
  syn.rate = rate;
  syn.events =
      std::max<std::uint64_t>(1, static_cast<std::uint64_t>(std::llround(rate * duration_s)));
  // A bounded run spreads event time over `span`: span = duration makes event time follow the
  // offered time (event k at start_time + k·1000/rate ms), as on a live stream.
  syn.span_ms = std::max<std::int64_t>(1, std::llround(duration_s * 1000));
  config.progress_interval_ms = 0;
  return config;
}

bool is_sustainable(const load_run& run, const load_options& options) noexcept {
  return run.error.empty() && run.latency_samples > 0 && run.lost_events == 0 &&
         run.p99_ms <= options.p99_bound_ms &&
         run.achieved_rate >= options.min_achieved_ratio * run.offered_rate && !run.backlog_growing;
}

pipeline_config kafka_config_for(const pipeline_config& base, const std::string& brokers,
                                 const std::string& topic, const std::string& group) {
  pipeline_config config = base;
  config.source.type = source_type::kafka;
  config.source.format = data_format::json;
  config.source.kafka = kafka_source_config{};
  config.source.kafka.brokers = brokers;
  config.source.kafka.topics = {topic};
  config.source.kafka.group_id = group;
  config.source.kafka.start = kafka_start::earliest;
  return config;
}

void size_tables_for_run(pipeline_config& config) {
  const auto& syn = config.source.synthetic;
  const double events = static_cast<double>(syn.events);
  const double batch = static_cast<double>(config.batch.max_events);
  // The tables rebuild before a batch could push their load past 0.7 (kernels/dedup_set.hpp,
  // agg_table.hpp): room for every key of the run plus one batch, and 10% to spare.
  constexpr double load = 0.7 / 1.1;
  if (config.dedup) {
    config.dedup->initial_capacity = static_cast<std::uint64_t>((events + batch) / load);
  }
  const double windows = static_cast<double>(config.window.size_ms /
                                             std::max<std::int64_t>(1, config.window.slide_ms));
  const double groups =
      std::min(events, static_cast<double>(syn.keys) *
                           static_cast<double>(std::max<std::uint32_t>(1, syn.types)));
  config.window.initial_capacity =
      static_cast<std::uint64_t>((groups + batch) * std::max(1.0, windows) / load);
}

double run_raw_consume(const pipeline_config& base, std::uint64_t events, int partitions,
                       double duration_s) {
  TROVE_EXPECTS(partitions > 0, "--partitions must be > 0");
  pipeline_config config = config_for_rate(base, 1'000'000, duration_s);
  io::synthetic_options o = to_synthetic_options(config.source.synthetic);
  o.events = events;
  o.rate = 0;
  io::dev_broker broker(1, {{"raw", partitions}});
  {
    io::synthetic_generator gen(o);
    io::kafka_producer out({.brokers = broker.bootstrap_servers(), .topic = "raw"});
    produce_plan plan;
    plan.partitions = partitions;
    produce_events(gen, out, plan, observer_clock::now());
  }
  io::kafka_consumer_options co;
  co.brokers = broker.bootstrap_servers();
  co.topics = {"raw"};
  co.group_id = "trove-bench-raw";
  co.start = io::kafka_start_from::earliest;
  co.exit_at_end = true;
  io::kafka_consumer consumer(co);
  std::uint64_t messages = 0;
  std::uint64_t bytes = 0;
  observer_clock::time_point first{};
  auto count = [&](const io::kafka_record& r) {
    if (messages++ == 0) first = observer_clock::now();
    bytes += r.payload.size();  // touch the payload, as a decoder would
  };
  while (!consumer.at_end()) consumer.poll(65'536, 100, count);
  const double seconds = seconds_between(first, observer_clock::now());
  consumer.close();
  if (messages != events || bytes == 0) {
    throw std::runtime_error(fmt::format(
        "raw consume read {} of {} events (the embedded broker keeps about 5 MiB per partition: "
        "raise --partitions or lower --raw-events)",
        messages, events));
  }
  return seconds > 0 ? static_cast<double>(messages) / seconds : 0;
}

load_run run_at_rate(const pipeline_config& base, double rate, const load_options& options,
                     std::string* device) {
  TROVE_EXPECTS(rate > 0, "an offered rate must be > 0 events/s");
  TROVE_EXPECTS(options.duration_s > 0, "--duration must be > 0");
  TROVE_EXPECTS(options.warmup_s >= 0, "--warmup must be >= 0");
  TROVE_EXPECTS(options.source == "synthetic" || options.source == "kafka",
                "--source must be synthetic or kafka");
  pipeline_config config = config_for_rate(base, rate, options.duration_s + options.warmup_s);
  if (options.size_tables) size_tables_for_run(config);
  // Checkpoints (--checkpoint-interval): every run starts from an empty directory of its own, so
  // no run restores another's state; removed afterwards.
  struct remove_on_exit {
    std::string dir;
    ~remove_on_exit() {
      std::error_code ec;
      if (!dir.empty()) std::filesystem::remove_all(dir, ec);
    }
  } checkpoint_dir;
  if (config.checkpoint) {
    static std::atomic<int> runs{0};
    config.checkpoint->dir += "/run-" + std::to_string(::getpid()) + "-" + std::to_string(runs++);
    std::error_code ec;
    std::filesystem::remove_all(config.checkpoint->dir, ec);
    checkpoint_dir.dir = config.checkpoint->dir;
  }
  load_run run;
  run.offered_rate = rate;
  run.events = config.source.synthetic.events;
  run.duration_s = static_cast<double>(run.events) / rate;

  // Kafka: a fresh broker per run (the mock cluster keeps everything in memory), one topic, and
  // the generator on a producer thread instead of the pipeline's source thread.
  const bool kafka = options.source == "kafka";
  TROVE_EXPECTS(!kafka || options.kafka_partitions > 0, "--partitions must be > 0");
  const io::synthetic_options generated = to_synthetic_options(config.source.synthetic);
  std::unique_ptr<io::dev_broker> broker;
  if (kafka) {
    broker = std::make_unique<io::dev_broker>(
        1, std::vector<io::dev_topic>{{"events", options.kafka_partitions}});
    config = kafka_config_for(config, broker->bootstrap_servers(), "events", "trove-bench");
  }

  load_observer observer(rate, config.emit, generated.start_time_ms, options.warmup_s,
                         kafka ? options.kafka_partitions : 0);
  // One sample per batch: linger closes a batch at least every linger ms; x4 for slack.
  const double linger_s =
      std::max<double>(0.001, static_cast<double>(config.batch.linger_ms) / 1000);
  observer.reserve(static_cast<std::size_t>(std::min<double>(
      4e6, 4 * (run.duration_s / linger_s) +
               4 * static_cast<double>(run.events) / static_cast<double>(config.batch.max_events) +
               64)));
  run_options ro;
  ro.quiet = true;
  ro.observers.push_back(&observer);

  // Kafka: once the consumer has its partitions, produce open loop: event k due k/rate after
  // the start, to partition k % P.
  std::atomic<bool> cancel_producer{false};
  std::atomic<bool> produced_all{false};
  std::string producer_error;
  std::thread producer;
  if (kafka) {
    producer = std::thread([&] {
      while (!observer.source_ready() && !cancel_producer.load()) {
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
      }
      if (cancel_producer.load()) return;
      try {
        io::synthetic_generator gen(generated);
        io::kafka_producer out({.brokers = broker->bootstrap_servers(), .topic = "events"});
        produce_plan plan;
        plan.rate = rate;
        plan.partitions = options.kafka_partitions;
        plan.cancel = &cancel_producer;
        const auto start = observer_clock::now();
        observer.kafka_schedule_start(start);
        produce_events(gen, out, plan, start);
        produced_all.store(!cancel_producer.load());
      } catch (const std::exception& e) {
        producer_error = e.what();
        request_stop();
      }
    });
  }

  // Progress: which rate, how far along, what latency so far (every second). Kafka: the run is
  // over when every event reached the sink (or was lost), so this thread also stops it.
  std::mutex mutex;
  std::condition_variable wake;
  bool finished = false;
  bool stalled = false;
  const auto begin = observer_clock::now();
  std::thread reporter([&] {
    if (!options.progress && !kafka) return;
    std::unique_lock lock(mutex);
    auto last_report = observer_clock::now();
    auto last_change = last_report;
    std::uint64_t last_done = 0;
    bool stop_sent = false;
    const auto tick = kafka ? std::chrono::milliseconds(20) : std::chrono::milliseconds(1000);
    while (!wake.wait_for(lock, tick, [&] { return finished; })) {
      const auto now = observer_clock::now();
      if (kafka && !stop_sent) {
        const std::uint64_t seen = observer.done_events() + observer.lost_events();
        if (seen != last_done) last_change = now;
        last_done = seen;
        // No progress for 30 s after the last event was produced: the run is stuck.
        const bool stuck = produced_all.load() && now - last_change > std::chrono::seconds(30);
        if (seen >= run.events || stuck) {
          stalled = seen < run.events;
          stop_sent = true;
          request_stop();
        }
      }
      if (!options.progress || now - last_report < std::chrono::seconds(1)) continue;
      last_report = now;
      const double elapsed = seconds_between(begin, now);
      const std::uint64_t done = observer.done_events();
      fmt::print(options.progress,
                 "[bench]   {:>5.1f}/{:.1f} s  {} of {} events at the sink ({:.0f}%)  "
                 "p99 so far {:.1f} ms\n",
                 elapsed, run.duration_s, done, run.events,
                 100.0 * static_cast<double>(done) / static_cast<double>(run.events),
                 observer.latency().percentile(0.99));
      std::fflush(options.progress);
    }
  });

  reset_peak_rss();
  const double cpu_before = process_cpu_seconds();
  const double machine_before = machine_busy_seconds();
  try {
    const run_stats stats = run_pipeline(config, ro);
    run.accepted = stats.accepted;
    run.duplicate = stats.duplicate;
    run.late = stats.late;
  } catch (const std::exception& e) {
    run.error = e.what();
  }
  const double cpu_after = process_cpu_seconds();
  const double machine_after = machine_busy_seconds();
  cancel_producer.store(true);
  if (producer.joinable()) producer.join();
  {
    std::lock_guard lock(mutex);
    finished = true;
  }
  wake.notify_all();
  reporter.join();
  run.lost_events = observer.lost_events();
  if (run.error.empty() && !producer_error.empty()) run.error = "producer: " + producer_error;
  if (run.error.empty() && stalled) {
    run.error = fmt::format("only {} of {} events reached the sink; nothing moved for 30 s",
                            observer.done_events() + observer.lost_events(), run.events);
  }
  if (device && !observer.device_.empty()) *device = observer.device_;

  const histogram& h = observer.latency();
  run.latency_samples = h.count();
  run.p50_ms = h.percentile(0.50);
  run.p90_ms = h.percentile(0.90);
  run.p99_ms = h.percentile(0.99);
  run.p999_ms = h.percentile(0.999);
  run.max_ms = h.max();
  run.mean_ms = h.count() ? h.sum() / static_cast<double>(h.count()) : 0;
  run.wall_s = observer.last_sink_s_;
  run.achieved_rate = run.wall_s > 0 ? static_cast<double>(observer.done_events()) / run.wall_s : 0;
  // An event cannot be handed over before it was due, so achieved ≤ offered up to the last
  // event's own processing; clamp the rounding of a tiny run.
  run.rows_out = observer.rows_out_;
  run.rows_out_per_s = run.wall_s > 0 ? static_cast<double>(observer.rows_out_) / run.wall_s : 0;
  run.batches = observer.batches_;
  const double batches = std::max<double>(1, static_cast<double>(observer.batches_));
  run.batch_rows_mean = static_cast<double>(observer.batch_rows_sum_) / batches;
  run.batch_rows_max = observer.batch_rows_max_;
  run.decode_ms = observer.decode_ / batches * 1000;
  run.h2d_ms = observer.h2d_ / batches * 1000;
  run.kernels_ms = observer.kernels_ / batches * 1000;
  run.extract_ms = observer.extract_ / batches * 1000;
  run.encode_ms = observer.encode_ / batches * 1000;
  run.sink_ms = observer.sink_ / batches * 1000;
  run.ready_queue_mean = observer.ready_sum_ / batches;
  run.out_queue_mean = observer.out_sum_ / batches;
  run.ready_queue_max = observer.ready_max_;
  run.out_queue_max = observer.out_max_;
  run.peak_rss_bytes = peak_rss_bytes();
  run.state_bytes_peak = observer.state_bytes_peak_.load();
  run.cpu_seconds = cpu_after - cpu_before;
  run.table_rebuilds = observer.rebuilds_.load();
  run.table_blocking_rebuilds = observer.blocking_rebuilds_.load();
  if (run.wall_s > 0 && machine_after > 0) {
    run.other_cpu_cores =
        std::max(0.0, (machine_after - machine_before) - run.cpu_seconds) / run.wall_s;
  }
  for (const auto& at : observer.rebuild_times_) {
    run.rebuild_at_s.push_back(seconds_between(observer.schedule_start_, at));
  }
  run.timeline.reserve(observer.samples_.size());
  for (const batch_sample& s : observer.samples_) {
    run.timeline.emplace_back(s.scheduled_s, s.max_latency_ms);
  }
  run.cpu_cores_used = run.wall_s > 0 ? run.cpu_seconds / run.wall_s : 0;

  // Backlog trend: a pipeline slower than the offered rate falls further behind the schedule
  // with every batch, so its batch latency climbs through the run; a keeping-up one stays flat.
  double q2 = 0, q4 = 0;
  std::size_t n2 = 0, n4 = 0;
  for (const batch_sample& s : observer.samples_) {
    if (s.scheduled_s >= run.duration_s / 4 && s.scheduled_s < run.duration_s / 2) {
      q2 += s.mean_latency_ms;
      ++n2;
    } else if (s.scheduled_s >= 3 * run.duration_s / 4) {
      q4 += s.mean_latency_ms;
      ++n4;
    }
  }
  if (n2 > 0 && n4 > 0)
    run.backlog_growth_ms = q4 / static_cast<double>(n4) - q2 / static_cast<double>(n2);
  run.backlog_growing = run.backlog_growth_ms > options.p99_bound_ms / 4;
  run.sustainable = is_sustainable(run, options);
  return run;
}

std::vector<double> next_sweep_rates(const std::vector<load_run>& runs,
                                     const load_options& options) {
  if (runs.empty()) return {options.sweep_start};
  double best_good = 0;
  double lowest = runs.front().offered_rate;
  for (const auto& r : runs) {
    lowest = std::min(lowest, r.offered_rate);
    if (r.sustainable) best_good = std::max(best_good, r.offered_rate);
  }
  auto tried = [&](double rate) {
    return std::any_of(runs.begin(), runs.end(), [&](const load_run& r) {
      return std::abs(r.offered_rate - rate) <= 1e-9 * rate;
    });
  };
  if (best_good == 0) {  // not even the lowest rate: halve, within reason
    const double next = round_rate(lowest / 2);
    if (next >= options.sweep_start / 64 && !tried(next)) return {next};
    return {};
  }
  double lowest_bad = 0;
  for (const auto& r : runs) {
    if (!r.sustainable && r.offered_rate > best_good &&
        (lowest_bad == 0 || r.offered_rate < lowest_bad)) {
      lowest_bad = r.offered_rate;
    }
  }
  if (lowest_bad == 0) {  // still doubling
    const double next = std::min(best_good * 2, options.sweep_max);
    if (next > best_good * (1 + 1e-9) && !tried(next)) return {next};
    return {};
  }
  // Each bisection at least halves the gap while best_good only grows, so gap/best ≤ 2^-k after
  // k bisections: stop there.
  if ((lowest_bad - best_good) / best_good <= std::ldexp(1.0, -options.bisect_steps) * 1.0001) {
    return {};
  }
  const double mid = round_rate((best_good + lowest_bad) / 2);
  if (mid <= best_good || mid >= lowest_bad || tried(mid)) return {};
  return {mid};
}

double run_baseline(const pipeline_config& base, std::uint64_t events, double duration_s,
                    std::size_t* groups) {
  if (events == 0) return 0;
  // The same generator settings as the runs (events spread over one run's event-time span), in
  // memory, generated before the clock starts: the baseline is the job alone, as in
  // bench/bench_kernels.cpp.
  const pipeline_config config = config_for_rate(base, 1'000'000, duration_s);
  io::synthetic_options o = to_synthetic_options(config.source.synthetic);
  o.events = events;
  o.rate = 0;  // in memory, before the clock starts
  io::synthetic_generator gen(o);
  const io::schema schema = io::synthetic_generator::w1_schema();
  constexpr std::size_t chunk = 262'144;
  std::vector<std::unique_ptr<io::host_batch>> batches;
  while (!gen.done()) {
    batches.push_back(std::make_unique<io::host_batch>(schema, chunk, 32 * chunk));
    while (!batches.back()->full() && !gen.done()) {
      if (gen.fill(*batches.back(), chunk) == 0) break;
    }
  }
  // W1 column order: event_id, user_id, type, ts, amount
  absl_baseline baseline(config.window.size_ms);
  const auto begin = observer_clock::now();
  for (const auto& b : batches) {
    baseline.process(b->fixed(0), b->fixed(1), b->offsets(2), b->chars(2),
                     reinterpret_cast<const std::int64_t*>(b->fixed(3)),
                     reinterpret_cast<const double*>(b->fixed(4)), b->size());
  }
  const double seconds = seconds_between(begin, observer_clock::now());
  if (groups) *groups = baseline.groups();
  return seconds > 0 ? static_cast<double>(events) / seconds : 0;
}

load_report run_load(const load_options& options) {
  if (options.source != "synthetic" && options.source != "kafka") {
    throw logic_error("trove bench --source " + options.source + ": must be synthetic or kafka");
  }
  const bool kafka = options.source == "kafka";
  if (kafka && options.kafka_partitions <= 0) {
    throw logic_error("trove bench --partitions must be > 0");
  }
  TROVE_EXPECTS(options.duration_s > 0, "--duration must be > 0");
  TROVE_EXPECTS(options.p99_bound_ms > 0, "--p99-bound must be > 0");
  load_report report;
  report.started_utc = utc_now();
  report.version = trove::version;
  report.machine = describe_machine();
  report.duration_s = options.duration_s;
  report.warmup_s = options.warmup_s;
  report.p99_bound_ms = options.p99_bound_ms;
  report.min_achieved_ratio = options.min_achieved_ratio;
  report.source = options.source;
  report.kafka_partitions = kafka ? options.kafka_partitions : 0;
  report.size_tables = options.size_tables;
  report.emit = to_string(options.config.emit);
  if (options.config.emit == emit_mode::final &&
      static_cast<double>(options.config.window.size_ms) >= options.duration_s * 1000) {
    if (options.progress) {
      fmt::print(options.progress,
                 "[bench] warning: emit final with windows of {} ms and runs of {} s: no window "
                 "closes before the end of a run, so there is no latency to measure; use a "
                 "shorter window.size (e.g. --set window.size=1s)\n",
                 options.config.window.size_ms, options.duration_s);
    }
  }

  if (options.baseline_events > 0) {
    if (options.progress) {
      fmt::print(options.progress, "[bench] absl baseline (1 thread) on {} events ...\n",
                 options.baseline_events);
      std::fflush(options.progress);
    }
    report.baseline_events = options.baseline_events;
    report.baseline_events_per_second = run_baseline(options.config, options.baseline_events,
                                                     options.duration_s, &report.baseline_groups);
    if (options.progress) {
      fmt::print(options.progress, "[bench] absl baseline: {} events/s ({} groups)\n",
                 human_rate(report.baseline_events_per_second), report.baseline_groups);
    }
  }

  if (kafka && options.raw_consume_events > 0) {
    if (options.progress) {
      fmt::print(options.progress,
                 "[bench] raw consume baseline: {} events through the embedded broker ({} "
                 "partitions) ...\n",
                 options.raw_consume_events, options.kafka_partitions);
      std::fflush(options.progress);
    }
    report.raw_consume_events = options.raw_consume_events;
    report.raw_consume_events_per_second = run_raw_consume(
        options.config, options.raw_consume_events, options.kafka_partitions, options.duration_s);
    if (options.progress) {
      fmt::print(options.progress, "[bench] raw consume: {} events/s\n",
                 human_rate(report.raw_consume_events_per_second));
    }
  }

  const bool sweep = options.rates.empty();
  std::vector<double> pending = sweep ? next_sweep_rates({}, options) : options.rates;
  std::size_t index = 0;
  while (!pending.empty()) {
    const double rate = pending.front();
    pending.erase(pending.begin());
    ++index;
    if (options.progress) {
      fmt::print(options.progress, "[bench] run {}{}: offered {} events/s for {} s\n", index,
                 sweep ? " (sweep)" : fmt::format("/{}", options.rates.size()), human_rate(rate),
                 options.duration_s);
      std::fflush(options.progress);
    }
    load_run run = run_at_rate(options.config, rate, options, &report.device);
    if (options.progress) {
      if (!run.error.empty()) {
        fmt::print(options.progress, "[bench]   failed: {}\n", run.error);
      } else {
        fmt::print(options.progress,
                   "[bench]   achieved {} events/s  p50 {:.1f}  p99 {:.1f}  max {:.1f} ms  "
                   "backlog {:+.1f} ms  CPU {:.2f} cores (others {:.2f})  {}\n",
                   human_rate(run.achieved_rate), run.p50_ms, run.p99_ms, run.max_ms,
                   run.backlog_growth_ms, run.cpu_cores_used, run.other_cpu_cores,
                   run.sustainable ? "sustainable" : "NOT sustainable");
      }
      std::fflush(options.progress);
    }
    report.runs.push_back(std::move(run));
    if (sweep) pending = next_sweep_rates(report.runs, options);
  }
  for (const auto& r : report.runs) {
    if (r.error.empty() && !r.backlog_growing &&
        r.achieved_rate >= options.min_achieved_ratio * r.offered_rate) {
      report.max_keepup_events_per_second =
          std::max(report.max_keepup_events_per_second, r.offered_rate);
    }
    if (r.sustainable) {
      report.max_sustainable_events_per_second =
          std::max(report.max_sustainable_events_per_second, r.offered_rate);
    }
  }
  if (report.baseline_events_per_second > 0) {
    report.ratio_vs_baseline =
        report.max_sustainable_events_per_second / report.baseline_events_per_second;
  }
  if (report.raw_consume_events_per_second > 0) {
    report.ratio_vs_raw_consume =
        report.max_sustainable_events_per_second / report.raw_consume_events_per_second;
  }
  const double last_rate = report.runs.empty() ? 0 : report.runs.back().offered_rate;
  pipeline_config last =
      config_for_rate(options.config, last_rate > 0 ? last_rate : 1, options.duration_s);
  if (options.size_tables) size_tables_for_run(last);
  if (kafka) last = kafka_config_for(last, "(embedded broker of the run)", "events", "trove-bench");
  report.config_yaml = to_yaml(last);
  return report;
}

std::string to_json(const load_report& report) {
  std::string out = "{\n";
  out += fmt::format("  \"max_sustainable_events_per_second\": {:.1f},\n",
                     report.max_sustainable_events_per_second);
  out += fmt::format("  \"max_keepup_events_per_second\": {:.1f},\n",
                     report.max_keepup_events_per_second);
  out += fmt::format("  \"warmup_s\": {},\n", report.warmup_s);
  out += fmt::format("  \"baseline_events_per_second\": {:.1f},\n",
                     finite(report.baseline_events_per_second));
  out += fmt::format("  \"baseline_events\": {},\n", report.baseline_events);
  out += fmt::format("  \"baseline_groups\": {},\n", report.baseline_groups);
  out += fmt::format("  \"ratio_vs_baseline\": {:.4f},\n", finite(report.ratio_vs_baseline));
  out += fmt::format("  \"raw_consume_events_per_second\": {:.1f},\n",
                     finite(report.raw_consume_events_per_second));
  out += fmt::format("  \"raw_consume_events\": {},\n", report.raw_consume_events);
  out += fmt::format("  \"ratio_vs_raw_consume\": {:.4f},\n", finite(report.ratio_vs_raw_consume));
  out += fmt::format("  \"emit\": {},\n", json_string(report.emit));
  out += fmt::format("  \"source\": {},\n", json_string(report.source));
  out += fmt::format("  \"kafka_partitions\": {},\n", report.kafka_partitions);
  out += fmt::format("  \"size_tables\": {},\n", report.size_tables ? "true" : "false");
  out += fmt::format("  \"duration_s\": {},\n", report.duration_s);
  out += fmt::format("  \"p99_bound_ms\": {},\n", report.p99_bound_ms);
  out += fmt::format("  \"min_achieved_ratio\": {},\n", report.min_achieved_ratio);
  out += fmt::format("  \"version\": {},\n", json_string(report.version));
  out += fmt::format("  \"device\": {},\n", json_string(report.device));
  out += fmt::format("  \"started_utc\": {},\n", json_string(report.started_utc));
  out += fmt::format(
      "  \"machine\": {{\"cpu_model\": {}, \"cores\": {}, \"memory_bytes\": {}, \"kernel\": "
      "{}}},\n",
      json_string(report.machine.cpu_model), report.machine.cores, report.machine.memory_bytes,
      json_string(report.machine.kernel));
  out += fmt::format("  \"config_yaml\": {},\n", json_string(report.config_yaml));
  out += "  \"runs\": [";
  for (std::size_t i = 0; i < report.runs.size(); ++i) {
    const load_run& r = report.runs[i];
    out += i ? ",\n    " : "\n    ";
    out += fmt::format(
        "{{\"offered_rate\": {:.1f}, \"achieved_rate\": {:.1f}, \"rows_out_per_s\": {:.1f}, "
        "\"events\": {}, \"duration_s\": {:.3f}, \"wall_s\": {:.3f}, "
        "\"p50_ms\": {:.3f}, \"p90_ms\": {:.3f}, \"p99_ms\": {:.3f}, \"p999_ms\": {:.3f}, "
        "\"max_ms\": {:.3f}, \"mean_ms\": {:.3f}, \"latency_samples\": {}, "
        "\"backlog_growth_ms\": {:.3f}, \"backlog_growing\": {}, \"sustainable\": {}, "
        "\"accepted\": {}, \"duplicate\": {}, \"late\": {}, \"rows_out\": {}, "
        "\"batches\": {}, \"batch_rows_mean\": {:.1f}, \"batch_rows_max\": {}, "
        "\"stage_ms_per_batch\": {{\"decode\": {:.4f}, \"h2d\": {:.4f}, \"kernels\": {:.4f}, "
        "\"extract\": {:.4f}, \"encode\": {:.4f}, \"sink\": {:.4f}}}, "
        "\"ready_queue_mean\": {:.3f}, \"ready_queue_max\": {}, \"out_queue_mean\": {:.3f}, "
        "\"out_queue_max\": {}, \"peak_rss_bytes\": {}, \"state_bytes_peak\": {}, "
        "\"cpu_seconds\": {:.3f}, \"cpu_cores_used\": {:.3f}, \"table_rebuilds\": {}, "
        "\"table_blocking_rebuilds\": {}, \"other_cpu_cores\": {:.3f}, \"lost_events\": {}, "
        "\"rebuild_at_s\": [{}], \"error\": {}}}",
        r.offered_rate, finite(r.achieved_rate), finite(r.rows_out_per_s), r.events, r.duration_s,
        r.wall_s, r.p50_ms, r.p90_ms, r.p99_ms, r.p999_ms, r.max_ms, finite(r.mean_ms),
        r.latency_samples, finite(r.backlog_growth_ms), r.backlog_growing ? "true" : "false",
        r.sustainable ? "true" : "false", r.accepted, r.duplicate, r.late, r.rows_out, r.batches,
        r.batch_rows_mean, r.batch_rows_max, r.decode_ms, r.h2d_ms, r.kernels_ms, r.extract_ms,
        r.encode_ms, r.sink_ms, r.ready_queue_mean, r.ready_queue_max, r.out_queue_mean,
        r.out_queue_max, r.peak_rss_bytes, r.state_bytes_peak, r.cpu_seconds,
        finite(r.cpu_cores_used), r.table_rebuilds, r.table_blocking_rebuilds,
        finite(r.other_cpu_cores), r.lost_events, fmt::join(r.rebuild_at_s, ", "),
        json_string(r.error));
  }
  out += "\n  ]\n}\n";
  return out;
}

std::string to_markdown(const load_report& report) {
  std::string out;
  const std::string source =
      report.source == "kafka"
          ? fmt::format(
                "kafka (the generator produces open loop into the embedded broker, {} "
                "partitions, in this process; the pipeline consumes it)",
                report.kafka_partitions)
          : report.source + " (in process)";
  out += fmt::format(
      "trove {} load harness, {}, source {}, emit {}, {} s per rate (after {} s of "
      "warm-up whose latencies are not recorded){}, sustainable = "
      "p99 ≤ {} ms, achieved ≥ {:.0f}% of offered and no growing backlog. Machine: {}, {} cores, "
      "{:.1f} GiB. Started {}.\n\n",
      report.version, report.device, source, report.emit, report.duration_s, report.warmup_s,
      report.size_tables ? ", tables sized for each run's events up front (--size-tables)" : "",
      report.p99_bound_ms, report.min_achieved_ratio * 100, report.machine.cpu_model,
      report.machine.cores, static_cast<double>(report.machine.memory_bytes) / (1ull << 30),
      report.started_utc);
  out +=
      "| offered ev/s | achieved ev/s | rows out/s | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms "
      "| backlog Δ ms | rebuilds (at once) | batches | rows/batch | decode | h2d | kernels | "
      "extract | "
      "encode | sink "
      "| queue max (ready/out) | RSS MiB | state MiB | CPU cores (other procs) | sustainable |\n";
  out +=
      "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|:"
      "---:|---:|---:|---:|:---:|\n";
  for (const load_run& r : report.runs) {
    if (!r.error.empty()) {
      out += fmt::format("| {} | failed: {} |\n", human_rate(r.offered_rate), r.error);
      continue;
    }
    out += fmt::format(
        "| {} | {} | {} | {:.1f} | {:.1f} | {:.1f} | {:.1f} | {:.1f} | {:+.1f} | {} ({}) | {} | "
        "{:.0f} "
        "| "
        "{:.2f} | {:.2f} | {:.2f} | {:.2f} | {:.2f} | {:.2f} | {}/{} | {:.0f} | {:.0f} | {:.2f} "
        "({:.2f}) | "
        "{} |\n",
        human_rate(r.offered_rate), human_rate(r.achieved_rate), human_rate(r.rows_out_per_s),
        r.p50_ms, r.p90_ms, r.p99_ms, r.p999_ms, r.max_ms, r.backlog_growth_ms, r.table_rebuilds,
        r.table_blocking_rebuilds, r.batches, r.batch_rows_mean, r.decode_ms, r.h2d_ms,
        r.kernels_ms, r.extract_ms, r.encode_ms, r.sink_ms, r.ready_queue_max, r.out_queue_max,
        static_cast<double>(r.peak_rss_bytes) / (1 << 20),
        static_cast<double>(r.state_bytes_peak) / (1 << 20), r.cpu_cores_used, r.other_cpu_cores,
        r.sustainable ? "yes" : "**no**");
  }
  out +=
      "\nStage columns: mean ms per batch. Latency: open loop, from each event's scheduled "
      "time";
  out += report.emit == "final" ? " (window end) to the emission of its window at the sink.\n"
                                : " to the hand-over of its batch's result rows to the sink.\n";
  out += fmt::format(
      "\nKept up with (achieved ≥ {:.0f}%, backlog flat, any p99): up to {} "
      "events/s.\n",
      report.min_achieved_ratio * 100, human_rate(report.max_keepup_events_per_second));
  out += fmt::format("\n**Max sustainable: {} events/s**",
                     human_rate(report.max_sustainable_events_per_second));
  if (report.baseline_events_per_second > 0) {
    out += fmt::format(
        "; absl baseline (1 thread, in memory, {} events): {} events/s; ratio {:.2f}.\n",
        report.baseline_events, human_rate(report.baseline_events_per_second),
        report.ratio_vs_baseline);
  } else {
    out += ".\n";
  }
  if (report.raw_consume_events_per_second > 0) {
    out += fmt::format(
        "\nRaw consume baseline (a bare consumer reading {} events of the same broker to the end, "
        "no decoding): {} events/s; max sustainable ÷ raw consume = {:.2f}.\n",
        report.raw_consume_events, human_rate(report.raw_consume_events_per_second),
        report.ratio_vs_raw_consume);
  }
  out += "\nEffective config (rate and events of the last run):\n\n```yaml\n" + report.config_yaml +
         "```\n";
  return out;
}

std::vector<std::string> write_load_outputs(const load_report& report, const std::string& dir) {
  namespace fs = std::filesystem;
  std::vector<std::string> warnings;
  fs::create_directories(dir);
  auto write = [&](const std::string& name, const std::string& text) {
    std::ofstream out(fs::path(dir) / name);
    out << text;
    if (!out) throw std::runtime_error("cannot write " + (fs::path(dir) / name).string());
  };
  write("results.json", to_json(report));
  write("results.md", to_markdown(report));

  std::string latency = "# offered_Mev_s p50_ms p90_ms p99_ms p999_ms max_ms\n";
  std::string stages = "# offered decode h2d kernels extract encode sink (ms per batch)\n";
  for (const load_run& r : report.runs) {
    if (!r.error.empty() || r.latency_samples == 0) continue;
    latency +=
        fmt::format("{:.4f} {:.3f} {:.3f} {:.3f} {:.3f} {:.3f}\n", r.offered_rate / 1e6,
                    std::max(r.p50_ms, 0.01), std::max(r.p90_ms, 0.01), std::max(r.p99_ms, 0.01),
                    std::max(r.p999_ms, 0.01), std::max(r.max_ms, 0.01));
  }
  std::vector<const load_run*> by_rate;
  for (const load_run& r : report.runs) {
    if (r.error.empty()) by_rate.push_back(&r);
  }
  std::sort(by_rate.begin(), by_rate.end(),
            [](const load_run* a, const load_run* b) { return a->offered_rate < b->offered_rate; });
  for (const load_run* r : by_rate) {
    // x label: the rate and the mean batch size (time per batch grows with it)
    stages += fmt::format("\"{}\\n{} ev/batch\" {:.4f} {:.4f} {:.4f} {:.4f} {:.4f} {:.4f}\n",
                          human_rate(r->offered_rate), human_rate(r->batch_rows_mean), r->decode_ms,
                          r->h2d_ms, r->kernels_ms, r->extract_ms, r->encode_ms, r->sink_ms);
  }
  // latency.dat rows in rate order, for the lines to read left to right
  {
    std::istringstream in(latency);
    std::string header;
    std::getline(in, header);
    std::vector<std::pair<double, std::string>> rows;
    for (std::string line; std::getline(in, line);) rows.emplace_back(std::stod(line), line);
    std::sort(rows.begin(), rows.end());
    latency = header + "\n";
    for (const auto& [rate, line] : rows) latency += line + "\n";
  }
  write("latency.dat", latency);
  write("stages.dat", stages);
  // Latency of each batch's oldest event over the run, one data block per rate (gnuplot index).
  std::string timeline = "# per rate: scheduled_s oldest_event_latency_ms (one block per run)\n";
  std::string titles;
  std::string rebuild_marks = "# per rate: seconds at which a table rebuild was seen\n";
  int blocks = 0;
  for (const load_run* r : by_rate) {
    if (r->timeline.empty()) continue;
    timeline += fmt::format("# offered {}\n", human_rate(r->offered_rate));
    for (const auto& [t, ms] : r->timeline) {
      timeline += fmt::format("{:.4f} {:.3f}\n", t, std::max(ms, 0.01));
    }
    timeline += "\n\n";
    rebuild_marks += fmt::format("# offered {}\n", human_rate(r->offered_rate));
    for (double at : r->rebuild_at_s) rebuild_marks += fmt::format("{:.4f} 12\n", at);
    if (r->rebuild_at_s.empty()) rebuild_marks += "-1 12\n";  // keeps the block index aligned
    rebuild_marks += "\n\n";
    titles += (titles.empty() ? "" : " ") + human_rate(r->offered_rate);
    ++blocks;
  }
  write("timeline.dat", timeline);
  write("rebuilds.dat", rebuild_marks);
  const std::string title = fmt::format("trove {}, emit {}", report.device, report.emit);
  write(
      "latency.gp",
      fmt::format("set terminal pngcairo size 900,560 noenhanced\n"
                  "set output 'latency.png'\n"
                  "set title '{}: open-loop latency vs offered rate'\n"
                  "set xlabel 'offered rate (M events/s)'\nset ylabel 'latency (ms)'\n"
                  "set logscale y\nset grid\nset key left top\n"
                  "set arrow from graph 0, first {} to graph 1, first {} nohead dt 2 lc rgb 'red'\n"
                  "set label 'p99 bound {} ms' at graph 0.02, first {} offset 0,0.6 tc rgb 'red'\n"
                  "plot 'latency.dat' using 1:2 with linespoints title 'p50', \\\n"
                  "     '' using 1:3 with linespoints title 'p90', \\\n"
                  "     '' using 1:4 with linespoints lw 2 title 'p99', \\\n"
                  "     '' using 1:5 with linespoints title 'p99.9', \\\n"
                  "     '' using 1:6 with linespoints title 'max'\n",
                  title, report.p99_bound_ms, report.p99_bound_ms, report.p99_bound_ms,
                  report.p99_bound_ms));
  write("stages.gp",
        fmt::format("set terminal pngcairo size 900,560 noenhanced\n"
                    "set output 'stages.png'\n"
                    "set title '{}: time per batch by stage'\n"
                    "set bmargin 5\nset xlabel 'offered rate (events/s)' offset 0,-1\nset ylabel "
                    "'ms per batch'\n"
                    "set style data histograms\nset style histogram rowstacked\n"
                    "set style fill solid 0.8 border -1\nset boxwidth 0.7\nset grid ytics\n"
                    "set key left top\n"
                    "plot 'stages.dat' using 2:xtic(1) title 'decode (generate)', \\\n"
                    "     '' using 3 title 'h2d', '' using 4 title 'kernels', \\\n"
                    "     '' using 5 title 'extract', '' using 6 title 'encode', \\\n"
                    "     '' using 7 title 'sink'\n",
                    title));
  write("timeline.gp",
        fmt::format("set terminal pngcairo size 900,560 noenhanced\n"
                    "set output 'timeline.png'\n"
                    "set title \"{}: latency of each batch's oldest event during the run\"\n"
                    "set xlabel 'scheduled time (s)'\nset ylabel 'latency (ms)'\n"
                    "set logscale y\nset grid\nset key outside right title 'offered ev/s'\n"
                    "titles = '{}'\n"
                    "set xrange [0:*]\n"
                    "plot for [i=0:{}] 'timeline.dat' index i using 1:2 with lines lc i+1 "
                    "title word(titles, i+1), \\\n"
                    "     for [i=0:{}] 'rebuilds.dat' index i using 1:2 with points pt 9 ps 1.2 "
                    "lc i+1 title (i == 0 ? 'table rebuild' : '')\n",
                    title, titles, std::max(blocks - 1, 0), std::max(blocks - 1, 0)));
  if (std::system("command -v gnuplot >/dev/null 2>&1") != 0) {
    warnings.push_back(
        "gnuplot not found: wrote latency.gp/stages.gp and their .dat files; "
        "run `gnuplot latency.gp stages.gp timeline.gp` in " +
        dir + " (apt-get install gnuplot-nox)");
    return warnings;
  }
  const std::string command = "cd '" + dir + "' && gnuplot latency.gp && gnuplot stages.gp" +
                              (blocks > 0 ? " && gnuplot timeline.gp" : "");
  if (std::system(command.c_str()) != 0) {
    warnings.push_back("gnuplot failed in " + dir + " (the .gp and .dat files are there)");
  }
  return warnings;
}

bool parse_rate(std::string_view text, double& out) noexcept {
  if (text.empty()) return false;
  double multiplier = 1;
  switch (text.back()) {
    case 'k':
    case 'K':
      multiplier = 1e3;
      break;
    case 'm':
    case 'M':
      multiplier = 1e6;
      break;
    case 'g':
    case 'G':
      multiplier = 1e9;
      break;
    default:
      break;
  }
  if (multiplier != 1) text.remove_suffix(1);
  double value = 0;
  const auto result = std::from_chars(text.data(), text.data() + text.size(), value);
  if (result.ec != std::errc() || result.ptr != text.data() + text.size()) return false;
  if (!(value > 0) || !std::isfinite(value)) return false;
  out = value * multiplier;
  return true;
}

machine_info describe_machine() {
  machine_info info;
  {
    std::ifstream in("/proc/cpuinfo");
    std::string line;
    while (std::getline(in, line)) {
      if (line.rfind("model name", 0) == 0) {
        const auto colon = line.find(':');
        if (colon != std::string::npos) info.cpu_model = line.substr(colon + 2);
        break;
      }
    }
  }
  info.cores = std::thread::hardware_concurrency();
  {
    std::ifstream in("/proc/meminfo");
    std::string line;
    while (std::getline(in, line)) {
      if (line.rfind("MemTotal:", 0) == 0) {
        info.memory_bytes = std::strtoull(line.c_str() + 9, nullptr, 10) * 1024;
        break;
      }
    }
  }
  utsname name{};
  if (uname(&name) == 0) info.kernel = std::string(name.sysname) + " " + name.release;
  return info;
}

}  // namespace trove::host
