#include "host/kafka_tools.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <thread>

#include "io/dev_broker.hpp"
#include "io/kafka_producer.hpp"

namespace trove::host {
namespace {

std::atomic<bool> broker_stop{false};
extern "C" void on_broker_signal(int) {
  broker_stop = true;
}

/// The user_id of one generated JSON line (the generator writes `"user_id":N`).
std::string_view user_id_of(std::string_view line) {
  constexpr std::string_view field = "\"user_id\":";
  const auto at = line.find(field);
  if (at == std::string_view::npos) return {};
  const auto begin = at + field.size();
  auto end = begin;
  while (end < line.size() && line[end] >= '0' && line[end] <= '9') ++end;
  return line.substr(begin, end - begin);
}

}  // namespace

int run_dev_broker(int partitions, const std::vector<std::string>& topics) {
  std::vector<io::dev_topic> create;
  for (const auto& topic : topics) create.push_back({topic, partitions});
  io::dev_broker broker(1, create);
  std::signal(SIGINT, on_broker_signal);
  std::signal(SIGTERM, on_broker_signal);
  // The address alone on stdout (scripts read it); the explanation on stderr.
  fmt::print("{}\n", broker.bootstrap_servers());
  std::fflush(stdout);
  fmt::print(stderr,
             "trove broker: development Kafka broker (librdkafka mock cluster, in memory) at {}; "
             "topics: {} ({} partitions each; others are created on first use). Keeps only about "
             "5 MiB per partition: consume while producing. Ctrl-C stops it.\n",
             broker.bootstrap_servers(),
             topics.empty() ? "none" : fmt::format("{}", fmt::join(topics, ", ")), partitions);
  while (!broker_stop.load()) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  return 0;
}

std::uint64_t produce_events(io::synthetic_generator& gen, io::kafka_producer& producer,
                             const produce_plan& plan,
                             std::chrono::steady_clock::time_point start) {
  using clock = std::chrono::steady_clock;
  constexpr std::uint64_t max_chunk = 16384;
  std::string buffer;
  auto last_report = clock::now();
  std::uint64_t produced = 0;
  while (!gen.done() && !(plan.cancel && plan.cancel->load(std::memory_order_relaxed))) {
    std::uint64_t chunk = max_chunk;
    if (plan.rate > 0) {  // open loop: never ahead of the schedule, catch up when behind
      const double elapsed = std::chrono::duration<double>(clock::now() - start).count();
      const auto due = static_cast<std::uint64_t>(std::max(0.0, elapsed) * plan.rate) + 1;
      chunk = due > gen.produced() ? std::min(due - gen.produced(), max_chunk) : 0;
      if (chunk == 0) {
        producer.poll();
        // Sleep until the next event is due (at most 1 ms, so delivery reports keep flowing).
        const double next_s = static_cast<double>(gen.produced()) / plan.rate;
        const auto wait = std::chrono::duration<double>(next_s - elapsed);
        std::this_thread::sleep_for(
            std::min<std::chrono::duration<double>>(wait, std::chrono::milliseconds(1)));
        continue;
      }
    }
    buffer.clear();
    const std::uint64_t first = gen.produced();
    gen.write_json(chunk, buffer);
    std::string_view text(buffer);
    for (std::uint64_t k = first; !text.empty(); ++k) {
      const auto end = text.find('\n');
      const std::string_view line = text.substr(0, end);
      if (plan.partitions > 0) {
        producer.produce(
            {}, line, static_cast<std::int32_t>(k % static_cast<std::uint64_t>(plan.partitions)));
      } else {
        producer.produce(user_id_of(line), line);
      }
      ++produced;
      text.remove_prefix(end == std::string_view::npos ? text.size() : end + 1);
    }
    const auto now = clock::now();
    if (plan.progress && now - last_report >= plan.progress_every) {
      last_report = now;
      plan.progress(gen.produced(), producer.delivered());
    }
  }
  producer.flush();
  return produced;
}

int produce_synthetic(const io::synthetic_options& options, const std::string& brokers,
                      const std::string& topic, bool quiet) {
  io::synthetic_generator gen(options);
  io::kafka_producer producer({.brokers = brokers, .topic = topic});
  std::signal(SIGINT, on_broker_signal);
  std::signal(SIGTERM, on_broker_signal);
  produce_plan plan;
  plan.rate = options.rate;
  plan.cancel = &broker_stop;
  if (!quiet) {
    plan.progress = [&](std::uint64_t produced, std::uint64_t delivered) {
      fmt::print(stderr, "trove gen: {} events produced to {} ({} delivered)\n", produced, topic,
                 delivered);
    };
  }
  produce_events(gen, producer, plan, std::chrono::steady_clock::now());
  if (!quiet) {
    fmt::print(stderr, "trove gen: {} events delivered to topic {}\n", producer.delivered(), topic);
  }
  return 0;
}

}  // namespace trove::host
