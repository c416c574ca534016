/// @file bench_kafka.cpp
/// @brief Kafka throughput: trove (consume → dedup + aggregate → produce) against the raw consume
/// rate of the same topic, both from the embedded broker and measured in the same process, rounds
/// alternating, so that the ratio holds on a noisy machine.
///
///   build/bench/bench_kafka [--events N] [--partitions P] [--rounds R]
///
/// Setup: a dev broker (librdkafka's mock cluster on loopback) with topic `events` of P partitions
/// holding N W1-shaped JSON events (trove's generator: Zipf users, 5% re-sends). Each round:
///  - raw: a bare consumer (trove's io::kafka_consumer: librdkafka's high-level consumer,
///    batch polls, no decoding) reads the topic to its end in a fresh group;
///  - trove: `run_pipeline` — the code path of `trove run` — with the clickstream job (dedup on
///    event_id, 1-minute tumbling windows, count/sum/min/max/avg by user and type), the Kafka
///    source with exit_at_end and a Kafka sink (`results`), in a fresh group.
/// Both rates are steady-state rates: events consumed between 20% and 80% of the topic, divided
/// by the time between those two points (for trove: records that reached the device stage, from
/// its per-batch progress). Start-up (the coordinator's join delay, first fetches, table
/// allocation) and the end (the final emission of every window) are excluded; the whole-run rate
/// from assignment to the last delivered result is printed too.

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <unistd.h>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "host/config.hpp"
#include "host/pipeline.hpp"
#include "host/run_observer.hpp"
#include "io/dev_broker.hpp"
#include "io/kafka_consumer.hpp"
#include "io/kafka_producer.hpp"
#include "io/synthetic.hpp"

namespace {

using clock_type = std::chrono::steady_clock;

/// Times the passage from 20% to 80% of `total` events.
class steady_window {
 public:
  explicit steady_window(std::uint64_t total) : low_(total / 5), high_(total * 4 / 5) {}
  void observe(std::uint64_t count) {
    const auto now = clock_type::now();
    if (count >= low_ && !low_seen_) {
      low_seen_ = true;
      low_at_ = now;
      low_count_ = count;
    }
    if (count >= high_ && !high_seen_) {
      high_seen_ = true;
      high_at_ = now;
      high_count_ = count;
    }
  }
  /// events per second between the two points
  [[nodiscard]] double rate() const {
    const double seconds = std::chrono::duration<double>(high_at_ - low_at_).count();
    return seconds > 0 ? static_cast<double>(high_count_ - low_count_) / seconds : 0;
  }

 private:
  std::uint64_t low_;
  std::uint64_t high_;
  bool low_seen_ = false;
  bool high_seen_ = false;
  clock_type::time_point low_at_{};
  clock_type::time_point high_at_{};
  std::uint64_t low_count_ = 0;
  std::uint64_t high_count_ = 0;
};

/// Steady-state and whole-run timing of a trove run.
class timing_observer final : public trove::host::run_observer {
 public:
  explicit timing_observer(std::uint64_t total) : window_(total) {}
  void on_source_ready() noexcept override { ready_ = clock_type::now(); }
  void on_progress(const trove::host::run_stats& stats,
                   const trove::host::state_report&) noexcept override {
    window_.observe(stats.in);
  }
  void on_finished(const trove::host::run_stats&) noexcept override { done_ = clock_type::now(); }
  [[nodiscard]] double seconds() const {
    return std::chrono::duration<double>(done_ - ready_).count();
  }
  [[nodiscard]] double steady_rate() const { return window_.rate(); }

 private:
  steady_window window_;
  clock_type::time_point ready_{};
  clock_type::time_point done_{};
};

/// Returns the steady-state rate; `whole` gets the rate from assignment to the last message.
double raw_consume(const std::string& brokers, const std::string& group, std::uint64_t total,
                   std::uint64_t& messages, double& whole) {
  steady_window window(total);
  trove::io::kafka_consumer_options o;
  o.brokers = brokers;
  o.topics = {"events"};
  o.group_id = group;
  o.exit_at_end = true;
  trove::io::kafka_consumer consumer(o);
  messages = 0;
  std::uint64_t bytes = 0;
  auto count = [&](const trove::io::kafka_record& r) {
    ++messages;
    bytes += r.payload.size();  // touch the payload, as a decoder would
  };
  while (!consumer.assigned()) consumer.poll(65536, 10, count);
  const auto start = clock_type::now();
  while (!consumer.at_end()) {
    consumer.poll(65536, 100, count);
    window.observe(messages);
  }
  const double seconds = std::chrono::duration<double>(clock_type::now() - start).count();
  whole = static_cast<double>(messages) / seconds;
  consumer.close();
  return bytes > 0 ? window.rate() : 0;
}

/// Returns the steady-state rate; `whole` gets the rate from assignment to the end of the run.
/// kcat reading the whole topic (simple consumer, payloads to /dev/null): the rate the issue
/// quotes as "raw consume" on this machine. Whole-run rate including kcat's start; 0 when kcat is
/// not installed.
double kcat_consume(const std::string& brokers) {
  if (std::system("command -v kcat >/dev/null 2>&1") != 0) return 0;
  const std::string command = fmt::format(
      "kcat -b {} -C -t events -o beginning -e -q -f '%s\\n' > /dev/null 2>&1", brokers);
  const auto start = clock_type::now();
  if (std::system(command.c_str()) != 0) return 0;
  return std::chrono::duration<double>(clock_type::now() - start).count();
}

double trove_run(const std::string& brokers, const std::string& group, std::uint64_t total,
                 trove::host::run_stats& stats, double& whole) {
  const std::string yaml = fmt::format(
      "source: {{type: kafka, brokers: \"{}\", topics: [events], group_id: {}, exit_at_end: "
      "true}}\n"
      "schema: {{event_id: u64, user_id: u64, type: string, ts: timestamp_ms, amount: f64}}\n"
      "event_time: ts\n"
      "dedup: {{key: [event_id], ttl: 10m}}\n"
      "window: {{type: tumbling, size: 1m, allowed_lateness: 5s}}\n"
      "group_by: [user_id, type]\n"
      "aggregates: [count, sum(amount), min(amount), max(amount), avg(amount)]\n"
      "sink: {}\n",
      brokers, group,
      std::getenv("BENCH_SINK") ? std::getenv("BENCH_SINK") : "{type: kafka, topic: results}");
  std::vector<trove::host::config_error> errors;
  const auto config = trove::host::load_config_string(yaml, {}, errors);
  if (!errors.empty()) {
    fmt::print(stderr, "bench_kafka: config error: {}\n", errors.front().message());
    std::exit(2);
  }
  timing_observer timing(total);
  trove::host::run_options options;
  options.quiet = true;
  options.observers.push_back(&timing);
  stats = trove::host::run_pipeline(config, options);
  whole = static_cast<double>(stats.in) / timing.seconds();
  return timing.steady_rate();
}

}  // namespace

int main(int argc, char** argv) {
  // As `trove` itself does (host/main.cpp): OpenMP threads spinning at barriers would steal the
  // cores of the source and sink threads; libgomp reads its settings before main, so re-execute.
  if (!std::getenv("OMP_WAIT_POLICY") && !std::getenv("GOMP_SPINCOUNT")) {
    setenv("GOMP_SPINCOUNT", "1000", 1);
    execv("/proc/self/exe", argv);
  }
  std::uint64_t events = 1'000'000;
  int partitions = 32;  // the mock cluster keeps ~5 MiB per partition: 1M events need ~20
  int rounds = 3;
  for (int idx = 1; idx + 1 < argc; idx += 2) {
    if (!std::strcmp(argv[idx], "--events")) events = std::strtoull(argv[idx + 1], nullptr, 10);
    if (!std::strcmp(argv[idx], "--partitions")) partitions = std::atoi(argv[idx + 1]);
    if (!std::strcmp(argv[idx], "--rounds")) rounds = std::atoi(argv[idx + 1]);
  }
  spdlog::set_level(spdlog::level::warn);
  trove::io::dev_broker broker(1, {{"events", partitions}, {"results", partitions}});
  const std::string brokers = broker.bootstrap_servers();
  {
    trove::io::synthetic_options so;
    so.events = events;
    trove::io::synthetic_generator gen(so);
    trove::io::kafka_producer producer({.brokers = brokers, .topic = "events"});
    std::string buffer;
    while (!gen.done()) {
      buffer.clear();
      gen.write_json(16384, buffer);
      std::string_view text(buffer);
      std::uint64_t line_idx = 0;
      while (!text.empty()) {
        const auto end = text.find('\n');
        producer.produce(std::to_string(line_idx++), text.substr(0, end));
        text.remove_prefix(end + 1);
      }
    }
    producer.flush();
  }
  fmt::print("bench_kafka: {} events in topic events ({} partitions) at {}\n", events, partitions,
             brokers);
  fmt::print("{:>6} {:>14} {:>14} {:>8}   {:>14} {:>14} {:>14} {:>8}\n", "round", "raw ev/s",
             "trove ev/s", "ratio", "raw whole", "trove whole", "kcat whole", "ratio");
  std::vector<double> raw_rates;
  std::vector<double> trove_rates;
  std::vector<double> trove_wholes;
  std::vector<double> kcat_wholes;
  for (int round = 0; round < rounds; ++round) {
    std::uint64_t messages = 0;
    double raw_whole = 0;
    double trove_whole = 0;
    const double raw_rate =
        raw_consume(brokers, fmt::format("raw-{}", round), events, messages, raw_whole);
    trove::host::run_stats stats;
    const double trove_rate =
        trove_run(brokers, fmt::format("trove-{}", round), events, stats, trove_whole);
    if (messages != events || stats.in != events) {
      fmt::print(stderr, "bench_kafka: consumed {} (raw) and {} (trove) of {} events\n", messages,
                 stats.in, events);
      return 1;
    }
    const double kcat_s = kcat_consume(brokers);
    const double kcat_whole = kcat_s > 0 ? static_cast<double>(events) / kcat_s : 0;
    raw_rates.push_back(raw_rate);
    trove_rates.push_back(trove_rate);
    trove_wholes.push_back(trove_whole);
    kcat_wholes.push_back(kcat_whole);
    fmt::print("{:>6} {:>14.0f} {:>14.0f} {:>8.2f}   {:>14.0f} {:>14.0f} {:>14.0f} {:>8.2f}\n",
               round, raw_rate, trove_rate, trove_rate / raw_rate, raw_whole, trove_whole,
               kcat_whole, kcat_whole > 0 ? trove_whole / kcat_whole : 0.0);
  }
  auto median = [](std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
  };
  const double raw = median(raw_rates);
  const double trove = median(trove_rates);
  fmt::print(
      "median steady state: raw consume {:.0f} events/s, trove {:.0f} events/s, trove / raw = "
      "{:.2f}\n",
      raw, trove, trove / raw);
  const double kcat = median(kcat_wholes);
  if (kcat > 0) {
    fmt::print(
        "median whole run: kcat {:.0f} events/s, trove {:.0f} events/s, trove / kcat = "
        "{:.2f}\n",
        kcat, median(trove_wholes), median(trove_wholes) / kcat);
  }
  return 0;
}
