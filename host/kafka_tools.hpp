#pragma once
/// @file kafka_tools.hpp
/// @brief Kafka commands of the CLI: `trove broker` (the embedded dev broker, served until
/// stopped) and `trove gen --kafka` (synthetic events produced into a topic).

#include <string>
#include <vector>

#include "io/synthetic.hpp"

namespace trove::host {

/// @brief Runs the dev broker with the given topics (each with `partitions` partitions), prints
/// its bootstrap address on stdout, and serves until SIGINT/SIGTERM. Returns the exit code.
int run_dev_broker(int partitions, const std::vector<std::string>& topics);

/// @brief Produces synthetic events (JSON, one per message, keyed by user_id so that the topic is
/// partitioned by user) into `topic`, paced to options.rate. `brokers` may be `embedded` only
/// together with a running broker elsewhere, so it must be real bootstrap servers here.
int produce_synthetic(const io::synthetic_options& options, const std::string& brokers,
                      const std::string& topic, bool quiet);

}  // namespace trove::host
