#include "host/kafka_tools.hpp"

#include <fmt/format.h>

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

int produce_synthetic(const io::synthetic_options& options, const std::string& brokers,
                      const std::string& topic, bool quiet) {
  io::synthetic_generator gen(options);
  io::kafka_producer producer({brokers, topic, {}});
  std::signal(SIGINT, on_broker_signal);
  std::signal(SIGTERM, on_broker_signal);
  std::string buffer;
  const auto start = std::chrono::steady_clock::now();
  auto last_report = start;
  while (!gen.done() && !broker_stop.load()) {
    std::size_t chunk = 16384;
    if (options.rate > 0) {  // pace to the offered rate
      const double elapsed =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      const auto due = static_cast<std::uint64_t>(elapsed * options.rate) + 1;
      chunk = due > gen.produced() ? std::min<std::uint64_t>(due - gen.produced(), 16384) : 0;
      if (chunk == 0) {
        producer.poll();
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
        continue;
      }
    }
    buffer.clear();
    gen.write_json(chunk, buffer);
    std::string_view text(buffer);
    while (!text.empty()) {
      const auto end = text.find('\n');
      const std::string_view line = text.substr(0, end);
      producer.produce(user_id_of(line), line);
      text.remove_prefix(end == std::string_view::npos ? text.size() : end + 1);
    }
    const auto now = std::chrono::steady_clock::now();
    if (!quiet && now - last_report >= std::chrono::seconds(5)) {
      last_report = now;
      fmt::print(stderr, "trove gen: {} events produced to {} ({} delivered)\n", gen.produced(),
                 topic, producer.delivered());
    }
  }
  producer.flush();
  if (!quiet) {
    fmt::print(stderr, "trove gen: {} events delivered to topic {}\n", producer.delivered(), topic);
  }
  return 0;
}

}  // namespace trove::host
