#pragma once
/// @file kafka_tools.hpp
/// @brief Kafka commands of the CLI: `trove broker` (the embedded dev broker, served until
/// stopped) and `trove gen --kafka` (synthetic events produced into a topic).

#include <atomic>
#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include "io/kafka_producer.hpp"
#include "io/synthetic.hpp"

namespace trove::host {

/// @brief Runs the dev broker with the given topics (each with `partitions` partitions), prints
/// its bootstrap address on stdout, and serves until SIGINT/SIGTERM. Returns the exit code.
int run_dev_broker(int partitions, const std::vector<std::string>& topics);

/// @brief How produce_events() places and paces generated events.
struct produce_plan {
  /// Offered events/s: event k is produced no earlier than start + k/rate (0: as fast as the
  /// producer takes them).
  double rate = 0;
  /// > 0: event k goes to partition k % partitions, unkeyed, so that (partition, offset) names
  /// the event (k = offset * partitions + partition) on a fresh topic; 0: keyed by user_id.
  int partitions = 0;
  const std::atomic<bool>* cancel = nullptr;  ///< stops producing when set (may be null)
  /// Called about every `progress_every` with (produced, delivered); may be empty.
  std::function<void(std::uint64_t, std::uint64_t)> progress;
  std::chrono::milliseconds progress_every{5000};
};

/// @brief Produces the generator's events (JSON, one per message) as `plan` says, from `start`
/// on, and flushes. Returns the events produced (all of them unless cancelled).
std::uint64_t produce_events(io::synthetic_generator& gen, io::kafka_producer& producer,
                             const produce_plan& plan, std::chrono::steady_clock::time_point start);

/// @brief Produces synthetic events (JSON, one per message, keyed by user_id so that the topic is
/// partitioned by user) into `topic`, paced to options.rate. `brokers` may be `embedded` only
/// together with a running broker elsewhere, so it must be real bootstrap servers here.
int produce_synthetic(const io::synthetic_options& options, const std::string& brokers,
                      const std::string& topic, bool quiet);

}  // namespace trove::host
